"""A gradient checker for anyone's derivatives: `custom_vjp` and `custom_jvp` rules,
hand-written gradient functions, whatever JAX differentiates.

    from jaxcalc import check
    report = check.check_grads(f, args, order=1)   # f(*args): any JAX function; args: a tuple
    report.verdict                                  # "ok" | "warn" | "fail"
    print(report)                                   # one row per (argument leaf, output leaf,
                                                    # mode, order)
    check.assert_grads(f, args, order=1)            # for pytest: AssertionError with the report
    check.check_grads(f, args, grad_fn=my_grad)     # a hand-written gradient function

How it works, one module per concept:

- `problem`: f as a function of the float leaves of args (pytrees in and out; integer and
  boolean leaves held fixed; complex refused), with names for every leaf;
- `probes`: full mode (every entry) or fast mode (random directions and cotangents per block,
  with the chance of missing an error of a given size), chosen by size;
- `evaluate`: the batched calls: F along directions, JVPs, VJPs;
- `reference`: central differences with Richardson's extrapolation, the step searched and the
  error estimated from the function itself; or the autodiff of a plain twin;
- `kinks`: what happens where f is not differentiable (the point moves; never a false alarm);
- `second_order`: order 2 as an order-1 check of the first derivative;
- `compare`: a block's error and bound; `diagnosis`: worst entries and patterns;
- `engine`: one check at the right precision (float64 for float32 code where f allows);
- `report`: the rows, the verdict, the table; `api`: `check_grads`, `assert_grads`.
"""

from jaxcalc.check.api import assert_grads, check_grads
from jaxcalc.check.report import Report, Row

__all__ = ["Report", "Row", "assert_grads", "check_grads"]
