"""jaxcalc.optim and jaxcalc.schedules against optax, step for step.

Each optimiser and option runs 50 steps on an ill-conditioned quadratic and on the MLP's
gradients, jaxcalc and optax side by side (each on its own trajectory); each transformation
runs 10 steps the same way. Parameters and states agree bit for bit, in float32 and
float64: the same tree (class and field names included), the same dtypes, the same bits.
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
    ("sgd", {"momentum": 0.9, "accumulator_dtype": "bfloat16"}, False),
    ("rmsprop", {"bias_correction": True}, False),
    ("rmsprop", {"centered": True, "bias_correction": True, "eps": 0.1}, True),
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


def assert_bit_identical(ours, theirs) -> None:
    """The same tree (NamedTuple class and field names included), dtypes and bits."""
    assert str(jax.tree.structure(ours)) == str(jax.tree.structure(theirs))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


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
    assert rel_err(p1, params) > 100 * TOL[dtype]  # the parameters did move
    assert_bit_identical(p1, p2)
    assert_bit_identical(s1, s2)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_optax_float32(case):
    check_against_optax(jnp.float32, case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_optax_float64(x64, case):
    check_against_optax(jnp.float64, case)


# Each transformation alone (and some combinations), built by optim or optax: `m` is either.
TRANSFORMS = {
    "trace": lambda m: m.trace(0.9),
    "trace-nesterov": lambda m: m.trace(0.5, nesterov=True),
    "trace-bfloat16": lambda m: m.trace(0.9, accumulator_dtype=jnp.bfloat16),
    "scale_by_rms": lambda m: m.scale_by_rms(),
    "scale_by_rms-debiased": lambda m: m.scale_by_rms(0.99, 1e-6, 0.0, False, True),
    "scale_by_stddev": lambda m: m.scale_by_stddev(initial_scale=0.1),
    "scale_by_stddev-debiased": lambda m: m.scale_by_stddev(bias_correction=True),
    "scale_by_adam": lambda m: m.scale_by_adam(b1=0.5, eps_root=1e-8),
    "scale_by_adam-nesterov-bfloat16": lambda m: m.scale_by_adam(
        mu_dtype=jnp.bfloat16, nesterov=True
    ),
    "add_decayed_weights": lambda m: m.add_decayed_weights(0.1),
    "add_decayed_weights-scheduled-masked": lambda m: m.add_decayed_weights(
        lambda t: 0.1 / (1 + t), weights_only
    ),
    "masked-prefix": lambda m: m.masked(m.trace(0.9), {"x": True, "W1": True, "b1": False,
                                                        "W2": False, "b2": True}),
    "scale": lambda m: m.scale(-0.5),
    "scale_by_schedule": lambda m: m.scale_by_schedule(lambda t: 1 / (1 + t)),
    "scale_by_learning_rate-flip_sign=False": lambda m: m.scale_by_learning_rate(
        0.1, flip_sign=False
    ),
    "identity": lambda m: m.identity(),
    "chain": lambda m: m.chain(
        m.scale_by_adam(), m.add_decayed_weights(0.01), m.scale_by_learning_rate(1.0),
        m.trace(0.5),
    ),
}  # fmt: skip


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", TRANSFORMS)
def test_transformation_matches_optax(name, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        grad_fn, params, lr = problem(dtype)

        def apply(p, u):  # the same small step for both, whatever the transformation's scale
            return optim.apply_updates(p, jax.tree.map(lambda u_: -lr * u_, u))

        ours = run(TRANSFORMS[name](optim), apply, grad_fn, params, steps=10)
        theirs = run(TRANSFORMS[name](optax), apply, grad_fn, params, steps=10)
        assert_bit_identical(ours, theirs)


def test_debias_matches_optax_eagerly_and_under_jit():
    moment = {"m": jnp.linspace(-1.0, 1.0, 5), "v": jnp.full(3, 0.3, jnp.bfloat16)}
    for count in (1, 2, 10, 1000):
        c = jnp.asarray(count, jnp.int32)
        ref = optax.tree.bias_correction(moment, 0.999, c)
        assert_bit_identical(optim.debias(moment, 0.999, c), ref)
        assert_bit_identical(jax.jit(optim.debias)(moment, 0.999, c), ref)


def test_chain_applies_in_order_and_keeps_each_state():
    opt = optim.chain(optim.trace(0.5), optim.scale(-2.0))
    state = opt.init(jnp.zeros(2))
    u, state = opt.update(jnp.ones(2), state)  # m = 1, u = −2
    u, state = opt.update(jnp.ones(2), state)  # m = 1 + 0.5, u = −3
    np.testing.assert_array_equal(u, [-3.0, -3.0])
    assert isinstance(state[0], optim.TraceState) and state[1] == optim.EmptyState()
    np.testing.assert_array_equal(state[0].trace, [1.5, 1.5])


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
    assert float(u[0]) == pytest.approx(-0.3) and float(s[0].trace[0]) == 2.0
    u, s = opt.update(x, s)  # m2 = 2 + 1 = 3, u = −0.1 (2 + 1.5) = −0.35
    assert float(u[0]) == pytest.approx(-0.35)


def test_adamw_mask_as_pytree_or_function():
    params = {"W": jnp.ones((2, 2)), "b": jnp.ones(2)}
    grads = jax.tree.map(jnp.zeros_like, params)
    for mask in ({"W": True, "b": False}, weights_only):
        opt = optim.adamw(0.1, weight_decay=0.5, mask=mask)
        u, _ = opt.update(grads, opt.init(params), params)
        assert float(u["W"][0, 0]) == pytest.approx(-0.05) and float(u["b"][0]) == 0.0


def test_adamw_docstring_example_runs_on_the_networks_params():
    """adamw's example, run as written on the MLP's own parameters: weights decay, biases not."""
    params = mlp.init_params(jax.random.key(0), (4, 3, 2))
    grads = jax.tree.map(jnp.ones_like, params)
    example = [ln.strip()[4:] for ln in optim.adamw.__doc__.splitlines() if ">>> " in ln]
    scope = {"adamw": optim.adamw, "params": params, "grads": grads}
    exec("\n".join(example), scope)  # noqa: S102 - the docstring's own lines
    u = scope["updates"]  # step 1 is −α g/|g| = −α (to float32 rounding); decay adds −α λ θ
    np.testing.assert_allclose(u["b1"], -1e-3 * np.ones(3), rtol=1e-4)
    np.testing.assert_allclose(u["W1"], -1e-3 * (1 + 1e-2 * params["W1"]), rtol=1e-4)


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
        (lambda: schedules.exponential_decay(0.1, 10, 0.5, -1), "transition_begin"),
        (lambda: optim.trace(-0.5), "decay"),
        (lambda: optim.scale(math.nan), "step_size"),
        (lambda: optim.add_decayed_weights(lambda t: -1.0), "weight_decay"),
    ],
)
def test_bad_input_names_the_argument(make_opt, argument):
    with pytest.raises(InputError, match=argument):
        make_opt()


def test_schedule_starting_at_zero_is_fine():
    optim.adam(schedules.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100))


def test_traced_hyperparameters_are_not_checked():
    """An optimiser built inside `jit` from traced hyperparameters works as with numbers."""

    @jax.jit
    def first_update(learning_rate, b1):
        opt = optim.adam(learning_rate, b1=b1)
        x = jnp.array([1.0, -2.0])
        return opt.update(x, opt.init(x))[0]

    ref = optax.adam(0.1, b1=0.5)
    x = jnp.array([1.0, -2.0])
    np.testing.assert_allclose(first_update(0.1, 0.5), ref.update(x, ref.init(x))[0], rtol=1e-6)
