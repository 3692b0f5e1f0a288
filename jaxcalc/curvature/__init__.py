"""Matrix-free spectra: of any symmetric matrix known only through its products v ↦ A v.

A Hessian of a network with 800,000 parameters has 6.4·10¹¹ entries; its product with a
vector costs about two gradients (`mlp.hvp`). Everything here needs only that product,
`matvec: Params -> Params` (H, the Gauss-Newton G, or any symmetric map on a pytree of
arrays), and runs jit-compiled (`operator`: the matvec is passed as data, so equal ones reuse
the compilation). One room per method:

- `lanczos`: `top_eigenvalues` by Lanczos with full re-orthogonalisation, `power_iteration`
  its textbook twin; each estimate can come with a bound on its error (`with_bounds=True`:
  a `Ritz` of values and residual bounds, |θ − λ| ≤ ‖A y − θ y‖ for an eigenvalue λ), and
  `tol=` continues until the bounds are within it (`NotConverged` at the cap);
- `trace`: `hutchinson_trace`, tr A = E[zᵀ A z] for Rademacher z, with its standard error;
- `density`: `spectral_density` by stochastic Lanczos quadrature (`lanczos_quadrature`,
  `density_on_grid`);
- `dataset`: `data_matvec`, the product of the mean loss over a whole data set, summed over
  chunks of rows in a `lax.scan`, so memory does not grow with the rows.

Every parameter outside its domain (k, steps, tol, samples, runs, sigma, grid, a key that is
not one, params with no entries, data with no rows) is an `InputError` before any product;
a matvec that produces NaN or infinity is one too, after.
"""

from jaxcalc.curvature.dataset import data_matvec
from jaxcalc.curvature.density import density_on_grid, lanczos_quadrature, spectral_density
from jaxcalc.curvature.lanczos import (
    MAX_BASIS_BYTES,
    NotConverged,
    Ritz,
    lanczos_steps,
    power_iteration,
    top_eigenvalues,
)
from jaxcalc.curvature.operator import Matvec, Params
from jaxcalc.curvature.trace import hutchinson_trace

__all__ = [
    "MAX_BASIS_BYTES",
    "Matvec",
    "NotConverged",
    "Params",
    "Ritz",
    "data_matvec",
    "density_on_grid",
    "hutchinson_trace",
    "lanczos_quadrature",
    "lanczos_steps",
    "power_iteration",
    "spectral_density",
    "top_eigenvalues",
]
