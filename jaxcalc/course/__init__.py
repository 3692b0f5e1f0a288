"""The course's "your turn" exercises: what each asks, its check, its reference solution.

A notebook cell gives the learner a stub (`stub(exercise)`: the signature, the prompt, and
`raise NotImplementedError`), the next cell runs the check on the functions of that name:

    >>> from jaxcalc import course
    >>> print(course.check("stencil"))    # or course.check_central_difference(central_difference)
    ✓ central_difference: right for sin, exp and x³

A check never raises: a stub says "not written yet", a wrong answer one line naming what
is wrong (`checks`; the gradients by the gradient checker `jaxcalc.check`: `gradients`;
`diagnosis`, `feedback`). `solution_source(exercise)` is a reference solution (`solutions`)
as a cell holds it, `solutions_markdown()` all of them with their prompts, for a solutions
page; `notebook` runs the course's notebooks with the stubs or the solutions filled in, and
says when their stored outputs are stale; `interactive` draws a figure with a slider where a
widget frontend runs it.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from jaxcalc.course import solutions
from jaxcalc.course.checks import (
    check_activation_derivatives,
    check_adam_step,
    check_central_difference,
    check_gradient_descent,
    check_jacobian,
)
from jaxcalc.course.diagnosis import diagnose
from jaxcalc.course.feedback import NOT_WRITTEN, Feedback
from jaxcalc.course.gradients import (
    check_backprop_example,
    check_backward,
    check_dense_bwd,
    check_gradient_f,
)


class Exercise(NamedTuple):
    """One "your turn": the learner writes `solutions`' functions, `check` judges them."""

    key: str
    section: str  # the chapter's topic it belongs to
    title: str
    prompt: str  # what is asked, without the answer
    solutions: tuple[Callable, ...]  # the reference, same names and signatures as asked
    check: Callable[..., Feedback]


EXERCISES = (
    Exercise(
        "stencil", "Derivatives", "A derivative by a stencil",
        "Write `central_difference(f, x, h)`: the slope of the secant of f through the points "
        "h to the left and h to the right of x, an estimate of f'(x) whose error falls as h².",
        (solutions.central_difference,), check_central_difference,
    ),
    Exercise(
        "gradient", "Partial derivatives and gradients", "A partial derivative and a gradient",
        "For f(x, y) = x³y² + 2xy − y³, write `gradient_f(p)` returning the array "
        "(∂f/∂x, ∂f/∂y) at p = (x, y). Each partial derivative holds the other variable "
        "constant; work them out by hand.",
        (solutions.gradient_f,), check_gradient_f,
    ),
    Exercise(
        "chain_rule", "The chain rule", "A chain-rule backward step",
        "The network x → w1 → σ → w2 → y with L = ½ (y − target)². Write "
        "`backprop_example(x, w1, w2, target)` returning (dL/dw1, dL/dw2): first the forward "
        "pass (z1, a1, y), then one chain-rule step per line from dL/dy back to dL/dw1.",
        (solutions.backprop_example,), check_backprop_example,
    ),
    Exercise(
        "jacobian", "Jacobians and Hessians", "A Jacobian",
        "Write `jacobian(f, x, h)` for f: Rⁿ → Rᵐ, returning the (m, n) matrix of ∂f_i/∂x_j "
        "by central differences: one column per input x_j.",
        (solutions.jacobian,), check_jacobian,
    ),
    Exercise(
        "descent", "Gradient descent", "A gradient-descent loop",
        "Write `gradient_descent(grad, x0, learning_rate, steps)`: starting at x0, take "
        "`steps` steps downhill along the gradient `grad(x)`, scaled by the learning rate, "
        "and return every point visited, x0 first, stacked into one array.",
        (solutions.gradient_descent,), check_gradient_descent,
    ),
    Exercise(
        "activations", "Activation functions", "The sigmoid, tanh and ReLU derivatives",
        "Write `sigmoid_prime(z)`, `tanh_prime(z)` and `relu_prime(z)`, element-wise on an "
        "array z. Express σ' through σ and tanh' through tanh; take relu'(0) = 0.",
        (solutions.sigmoid_prime, solutions.tanh_prime, solutions.relu_prime),
        check_activation_derivatives,
    ),
    Exercise(
        "backward", "Backpropagation", "The 2-layer network's backward pass",
        "The network z1 = x W1 + b1, a1 = σ(z1), z2 = a1 W2 + b2, L = mean cross-entropy of "
        "softmax(z2) against one-hot rows y (n rows). Write `backward(params, x, y)` "
        'returning {"W1": dL/dW1, "b1": dL/db1, "W2": dL/dW2, "b2": dL/db2}, one chain-rule '
        "step per line: dL/dz2, dL/dW2, dL/db2, dL/da1, dL/dz1, dL/dW1, dL/db1.",
        (solutions.backward,), check_backward,
    ),
    Exercise(
        "adam", "Optimisers", "One optimiser's update: Adam",
        "Write `adam_step(params, grads, m, v, t, learning_rate=1e-3, b1=0.9, b2=0.999, "
        "eps=1e-8)` returning (params, m, v) after one Adam update at step t = 1, 2, …: "
        "update both moving averages, correct their bias, and step.",
        (solutions.adam_step,), check_adam_step,
    ),
    Exercise(
        "custom_vjp", "Check your own backward pass", "A custom_vjp's backward rule",
        "The dense layer y = tanh(x W + b) is a jax.custom_vjp whose forward rule saves "
        "res = (x, W, y). Write its backward rule `dense_bwd(res, g)`: given the cotangent g "
        "= dL/dy (same shape as y), return the cotangents (dx, dW, db), each shaped like its "
        "input. Go through tanh first, then through x W + b.",
        (solutions.dense_bwd,), check_dense_bwd,
    ),
)  # fmt: skip

BY_KEY = {ex.key: ex for ex in EXERCISES}


def check(key: str, namespace: Mapping[str, Any] | None = None) -> Feedback:
    """Check exercise `key` on the functions of its names in `namespace` (default: the
    caller's globals, a notebook's namespace): `check("stencil")` checks the learner's
    `central_difference`. A function not defined yet says so, in one line."""
    if key not in BY_KEY:
        keys = ", ".join(BY_KEY)
        return Feedback(False, f"no exercise {key!r}: the exercises are {keys}")
    exercise = BY_KEY[key]
    namespace = sys._getframe(1).f_globals if namespace is None else namespace
    names = [fn.__name__ for fn in exercise.solutions]
    missing = [name for name in names if name not in namespace]
    if missing:
        what = f"{', '.join(missing)}: {NOT_WRITTEN} (run the cell that defines it)"
        return Feedback(False, what, written=False)
    return exercise.check(*(namespace[name] for name in names))


def stub(exercise: Exercise) -> str:
    """The source of the stubs a learner fills in: each function's signature, a docstring
    (the prompt for the first function), and `raise NotImplementedError`."""
    parts = []
    for i, fn in enumerate(exercise.solutions):
        (node,) = ast.parse(textwrap.dedent(inspect.getsource(fn))).body
        doc = exercise.prompt if i == 0 else ast.get_docstring(node) or ""
        header = ast.unparse(node).splitlines()[0]  # def name(arguments):
        doc = textwrap.fill(doc, 88, initial_indent="    ", subsequent_indent="    ")
        parts.append(
            f'{header}\n    """\n{doc}\n    """\n    raise NotImplementedError  # your code'
        )
    return "\n\n\n".join(parts) + "\n"


def solutions_markdown() -> str:
    """The solutions page: each exercise's prompt, its reference solution, how it is checked."""
    lines = [
        "# Solutions of the course's exercises",
        "",
        "Generated by `jaxcalc.course.solutions_markdown()` from `jaxcalc/course/solutions.py`;",
        "each solution passes its check (`tests/test_course.py`). They use:",
        "",
        "```python",
        *_imports(solutions),
        "```",
    ]
    for ex in EXERCISES:
        code, check = _solution_code(ex), ex.check.__name__
        lines += ["", f"## {ex.title} ({ex.section})", "", ex.prompt, "", "```python", code, "```",
                  "", f"Checked by `jaxcalc.course.{check}`."]  # fmt: skip
    return "\n".join(lines) + "\n"


def solution_source(exercise: Exercise) -> str:
    """The reference solution as a learner would type it into the cell: the imports the
    solutions use, then each function."""
    return "\n".join(_imports(solutions)) + "\n\n\n" + _solution_code(exercise) + "\n"


def _solution_code(exercise: Exercise) -> str:
    """Each of the exercise's reference functions, as written in `solutions`."""
    return "\n\n\n".join(
        textwrap.dedent(inspect.getsource(fn)).strip() for fn in exercise.solutions
    )


def _imports(module) -> list[str]:
    """The import lines of a module's source (not `from __future__`)."""
    lines = inspect.getsource(module).splitlines()
    return [ln for ln in lines if ln.startswith(("import ", "from ")) and "__future__" not in ln]


__all__ = [
    "BY_KEY",
    "EXERCISES",
    "NOT_WRITTEN",
    "Exercise",
    "Feedback",
    "check_activation_derivatives",
    "check_adam_step",
    "check_backprop_example",
    "check_backward",
    "check",
    "check_central_difference",
    "check_dense_bwd",
    "check_gradient_descent",
    "check_gradient_f",
    "check_jacobian",
    "diagnose",
    "solution_source",
    "solutions_markdown",
    "stub",
]
