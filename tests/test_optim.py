"""jaxcalc.optim and jaxcalc.schedules against optax, step for step.

Each optimiser and option runs 50 steps on an ill-conditioned quadratic and on the MLP's
gradients, jaxcalc and optax side by side (each on its own trajectory); parameters and
every state field agree to 1e-6 (float32) or 1e-12 (float64), relative to the largest
entry of each leaf.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcalc import mlp, optim, schedules
from jaxcalc.validation import InputError

STEPS = 50
TOL = {jnp.float32: 1e-6, jnp.float64: 1e-12}


def weights_only(params):
    """Weight decay on the weights, not on the biases (b1, b2)."""
    return {k: not k.startswith("b") for k in params}


# (name, keyword arguments, whether the learning rate is a schedule)
CASES = [
    ("sgd", {}, False),
    ("sgd", {"momentum": 0.9}, False),
    ("sgd", {"momentum": 0.9, "nesterov": True}, False),
    ("sgd", {"momentum": 0.5}, True),
    ("rmsprop", {}, False),
    ("rmsprop", {"eps_in_sqrt": False}, False),
    ("rmsprop", {"centered": True}, False),
    ("rmsprop", {"centered": True, "eps_in_sqrt": False}, False),
    ("rmsprop", {"momentum": 0.9}, False),
    ("rmsprop", {"momentum": 0.9, "nesterov": True}, False),
    ("rmsprop", {"initial_scale": 1.0}, False),
    ("rmsprop", {"decay": 0.99, "centered": True, "momentum": 0.5, "initial_scale": 0.1}, True),
    ("adam", {}, False),
    ("adam", {"nesterov": True}, False),
    ("adam", {"eps_root": 1e-8, "b1": 0.5, "b2": 0.9}, False),
    ("adam", {"nesterov": True}, True),
    ("adamw", {}, False),
    ("adamw", {"weight_decay": 0.1, "nesterov": True}, False),
    ("adamw", {"weight_decay": 0.1, "mask": weights_only}, True),
]
IDS = [
    "-".join([n, *(k if k == "mask" else f"{k}={v}" for k, v in kw.items())] + ["sched"] * s)
    for n, kw, s in CASES
]


def make(module, name, kwargs, scheduled, lr):
    sched = schedules if module is optim else optax
    learning_rate = (
        sched.warmup_cosine_decay_schedule(0.0, lr, 10, STEPS, lr / 20) if scheduled else lr
    )
    return getattr(module, name)(learning_rate, **kwargs)


def run(opt, apply, grad_fn, params, steps=STEPS):
    """`steps` updates, called eagerly (compiling each case would cost more than it runs)."""
    state = opt.init(params)
    for _ in range(steps):
        updates, state = opt.update(grad_fn(params), state, params)
        params = apply(params, updates)
    return params, state


def rel_err(a, b) -> float:
    """max over leaves of ‖a − b‖∞ / ‖b‖∞ (0 when both are 0)."""
    errs = jax.tree.map(
        lambda x, y: float(jnp.max(jnp.abs(x - y)) / jnp.maximum(jnp.max(jnp.abs(y)), 1e-30)),
        a,
        b,
    )
    return max(jax.tree.leaves(errs), default=0.0)


def optax_fields(state) -> dict:
    """The named moments of an optax chain state: trace, mu, nu (and a count)."""
    fields = {}
    for s in state:
        if hasattr(s, "_asdict"):
            fields.update(
                {k: v for k, v in s._asdict().items() if k in ("count", "mu", "nu", "trace")}
            )
    return fields


@functools.cache
def problem(dtype):
    """Gradients of two problems in one pytree, each leaf its own optimisation problem.

    "x": f(x) = ½ xᵀHx, H with eigenvalues 1 … 100 in a rotated basis (κ = 100);
    "W1", "b1", "W2", "b2": a small 2-layer MLP (tanh, cross-entropy) on a fixed batch.
    """
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))
    h = jnp.asarray(q @ np.diag(np.geomspace(1, 100, 6)) @ q.T, dtype)
    kp, kx, ky = jax.random.split(jax.random.key(0), 3)
    params = mlp.init_params(kp, (8, 16, 4), activation="tanh", dtype=dtype)
    x = jax.random.normal(kx, (32, 8), dtype)
    y = jax.random.randint(ky, (32,), 0, 4)

    @jax.jit
    def grad_fn(p):
        net = {k: v for k, v in p.items() if k != "x"}
        return {"x": h @ p["x"], **mlp.loss_and_grad_autodiff(net, x, y, activation="tanh")[1]}

    return grad_fn, {"x": jnp.linspace(-1, 1, 6, dtype=dtype), **params}, 0.01


def check_against_optax(dtype, case):
    name, kwargs, scheduled = case
    grad_fn, params, lr = problem(dtype)
    ours = make(optim, name, kwargs, scheduled, lr)
    ref = make(optax, name, kwargs, scheduled, lr)
    p1, s1 = run(ours, optim.apply_updates, grad_fn, params)
    p2, s2 = run(ref, optax.apply_updates, grad_fn, params)
    tol = TOL[dtype]
    assert rel_err(p1, p2) <= tol
    assert rel_err(p1, params) > 100 * tol  # the parameters did move
    theirs = optax_fields(s2)
    for field, value in s1._asdict().items():
        if value is None:
            continue
        if field == "count":
            assert int(value) == STEPS and int(theirs.get("count", STEPS)) == STEPS
        else:
            assert rel_err(value, theirs[field]) <= tol, field
            assert jax.tree.all(jax.tree.map(lambda a, b: a.dtype == b.dtype, value, theirs[field]))
    ours_fields = {k for k, v in s1._asdict().items() if v is not None}
    assert set(theirs) - {"count"} == ours_fields - {"count"}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_optax_float32(case):
    check_against_optax(jnp.float32, case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_optax_float64(x64, case):
    check_against_optax(jnp.float64, case)


@pytest.mark.parametrize("case", CASES[11::7], ids=IDS[11::7])
def test_jit_equals_eager_and_compiles_once(case):
    name, kwargs, scheduled = case
    grad_fn, params, lr = problem(jnp.float32)
    opt = make(optim, name, kwargs, scheduled, lr)
    traces = 0

    def step(p, s):
        nonlocal traces
        traces += 1
        u, s = opt.update(grad_fn(p), s, p)
        return optim.apply_updates(p, u), s

    jitted = jax.jit(step)
    p_eager = p_jit = params
    s_eager = s_jit = opt.init(params)
    for _ in range(10):
        p_eager, s_eager = step(p_eager, s_eager)
        p_jit, s_jit = jitted(p_jit, s_jit)
    assert rel_err(p_jit, p_eager) <= 1e-6
    assert traces == 10 + 1  # ten eager calls, one trace for the jitted function


def parabola():
    return (
        jnp.array([-1.0, 10.0, 1.0]),
        jnp.array([1.0, -1.0, 1.0]),
        lambda x: jnp.sum((x - jnp.array([1.0, -1.0, 1.0])) ** 2),
    )


def rosenbrock():
    return (
        jnp.array([0.0, 0.0]),
        jnp.array([1.0, 1.0]),
        lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2,
    )


# optax's own alias tests: these settings reach the minimum within 3e-2 in 10,000 steps
CONVERGING = [
    optim.sgd(1e-3, momentum=0.9),
    optim.rmsprop(5e-3),
    optim.rmsprop(5e-3, momentum=0.9),
    optim.adam(1e-1),
    optim.adam(1e-2, nesterov=True),
    optim.adamw(1e-1),
]


@pytest.mark.parametrize("target", [parabola, rosenbrock])
@pytest.mark.parametrize("opt", CONVERGING, ids=range(len(CONVERGING)))
def test_converges_to_known_minimum(opt, target):
    x0, x_min, f = target()

    def step(carry, _):
        x, s = carry
        u, s = opt.update(jax.grad(f)(x), s, x)
        return (optim.apply_updates(x, u), s), None

    (x, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), length=10_000)
    np.testing.assert_allclose(x, x_min, rtol=3e-2, atol=3e-2)


def test_apply_updates_keeps_dtype():
    p = {"w": jnp.ones(3, jnp.bfloat16)}
    out = optim.apply_updates(p, {"w": jnp.full(3, 0.5, jnp.float32)})
    assert out["w"].dtype == jnp.bfloat16 and float(out["w"][0]) == 1.5


def test_sgd_first_steps_by_hand():
    opt = optim.sgd(0.1, momentum=0.5, nesterov=True)
    x = jnp.array([2.0])
    s = opt.init(x)
    u, s = opt.update(x, s)  # m1 = 2, u = −0.1 (2 + 0.5·2) = −0.3
    assert float(u[0]) == pytest.approx(-0.3) and float(s.trace[0]) == 2.0
    u, s = opt.update(x, s)  # m2 = 2 + 1 = 3, u = −0.1 (2 + 1.5) = −0.35
    assert float(u[0]) == pytest.approx(-0.35)


def test_adamw_mask_as_pytree_or_function():
    params = {"W": jnp.ones((2, 2)), "b": jnp.ones(2)}
    grads = jax.tree.map(jnp.zeros_like, params)
    for mask in ({"W": True, "b": False}, weights_only):
        opt = optim.adamw(0.1, weight_decay=0.5, mask=mask)
        u, _ = opt.update(grads, opt.init(params), params)
        assert float(u["W"][0, 0]) == pytest.approx(-0.05) and float(u["b"][0]) == 0.0


def test_adamw_needs_params():
    opt = optim.adamw(0.1)
    with pytest.raises(InputError, match="params"):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)))


# --- schedules -------------------------------------------------------------------------

SCHEDULES = [
    ("constant_schedule", (0.3,)),
    ("exponential_decay", (0.1, 30, 0.5)),
    ("exponential_decay", (0.1, 30, 0.5, 10, True, 0.01)),
    ("exponential_decay", (0.1, 30, 1.5, 0, False, 0.5)),
    ("cosine_decay_schedule", (0.1, 100)),
    ("cosine_decay_schedule", (0.1, 100, 0.1, 2.0)),
    ("warmup_cosine_decay_schedule", (0.0, 0.1, 20, 200)),
    ("warmup_cosine_decay_schedule", (0.01, 0.1, 20, 200, 0.001, 1.5)),
]


@pytest.mark.parametrize("name,args", SCHEDULES)
def test_schedule_matches_optax(name, args):
    ours, ref = getattr(schedules, name)(*args), getattr(optax, name)(*args)
    steps = jnp.arange(0, 300)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(ours))(steps), jax.jit(jax.vmap(ref))(steps), rtol=1e-6, atol=0
    )
    for t in (0, 5, 20, 150, 299):
        assert float(ours(t)) == pytest.approx(float(ref(t)), rel=1e-6)


def test_schedule_values():
    s = schedules.warmup_cosine_decay_schedule(0.0, 0.1, 10, 110)
    assert [float(s(t)) for t in (0, 5, 10, 60, 110, 500)] == pytest.approx(
        [0.0, 0.05, 0.1, 0.05, 0.0, 0.0], abs=1e-7
    )
    assert float(schedules.exponential_decay(0.1, 100, 0.5)(200)) == pytest.approx(0.025)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_opt,argument",
    [
        (lambda: optim.sgd(0.0), "learning_rate"),
        (lambda: optim.sgd(-0.1), "learning_rate"),
        (lambda: optim.sgd(math.inf), "learning_rate"),
        (lambda: optim.sgd(math.nan), "learning_rate"),
        (lambda: optim.sgd("fast"), "learning_rate"),
        (lambda: optim.sgd(0.1, momentum=-0.9), "momentum"),
        (lambda: optim.adam(lambda t: jnp.nan), "learning_rate"),
        (lambda: optim.adam(lambda t: 0.1 * t - 1.0), "learning_rate"),
        (lambda: optim.adam(0.1, b1=1.0), "b1"),
        (lambda: optim.adam(0.1, b1=-0.1), "b1"),
        (lambda: optim.adam(0.1, b1="x"), "b1"),
        (lambda: optim.adam(0.1, b2=1.0), "b2"),
        (lambda: optim.adam(0.1, eps=-1e-8), "eps"),
        (lambda: optim.adam(0.1, eps_root=-1.0), "eps_root"),
        (lambda: optim.adamw(0.1, b2=1.5), "b2"),
        (lambda: optim.adamw(0.1, weight_decay=-1.0), "weight_decay"),
        (lambda: optim.rmsprop(0.1, decay=1.1), "decay"),
        (lambda: optim.rmsprop(0.1, eps=-1.0), "eps"),
        (lambda: optim.rmsprop(0.1, initial_scale=-1.0), "initial_scale"),
        (lambda: optim.rmsprop(0.1, momentum=-1.0), "momentum"),
        (lambda: schedules.cosine_decay_schedule(0.1, 0), "decay_steps"),
        (lambda: schedules.exponential_decay(0.1, 10, -0.5), "decay_rate"),
        (lambda: schedules.constant_schedule(math.nan), "value"),
        (lambda: schedules.warmup_cosine_decay_schedule(0.0, 0.1, 20, 10), "decay_steps"),
    ],
)
def test_bad_input_names_the_argument(make_opt, argument):
    with pytest.raises(InputError, match=argument):
        make_opt()


def test_schedule_starting_at_zero_is_fine():
    optim.adam(schedules.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100))
