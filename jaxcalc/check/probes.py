"""Full mode and fast mode: which directions and cotangents a check uses, and what it can miss.

Full mode differentiates along every entry of every argument leaf, d = max(1, |x_i|) e_i, and
(reverse mode) pulls back every entry of every output leaf, v = e_j: the whole Jacobian,
block by block, entry by entry. Fast mode draws, per argument leaf a, `probes` directions
d = max(1, |x|) ⊙ u, u ~ N(0, I), and per output leaf o as many cotangents v ~ N(0, I), and
compares, per pair (a, o):

    forward   J_oa d          (a vector over o's entries)  with the reference's J_oa d
    reverse   (vᵀ J_o)_a · d  (a number)                    with vᵀ (J_oa d)

so an error confined to a small leaf is measured against that leaf's own block, not drowned
by a large one. A wrong block E = J_yours − J shows in probe k as vᵀ E d. For an error of
relative size ρ = ‖E‖_F / ‖J‖_F, concentrated in one direction (rank one, E = ρ‖J‖ a bᵀ,
the hardest case), vᵀ E d = ρ‖J‖ z₁ z₂ with z₁, z₂ independent standard normals, so the chance
that k probes all stay below a bound β‖J‖ is at most

    P(miss) ≤ P(|z₁ z₂| ≤ β / ρ)ᵏ,    P(|z₁ z₂| ≤ τ) = E_z₂[erf(τ / (|z₂| √2))]

(`miss_chance`). With the float64 reference (β ≈ 1.5e-8) and 3 probes, an error of 1e-5 in
any block escapes with a chance below 1e-6.

The default (`choose`) is full mode when the float inputs and the float outputs each hold at
most `FULL_MAX` numbers, fast mode with `PROBES` probes otherwise: full mode evaluates f about
four times per entry, so beyond a few dozen entries it costs more than fast mode's dozen
evaluations per leaf, for a detection fast mode already makes all but certain.
"""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import numpy as np
from scipy.special import erf

from jaxcalc.check.evaluate import Directions
from jaxcalc.validation import InputError, check_positive_int

FULL_MAX = 16
PROBES = 3
#: The chance of missing an error that the report quotes the size of (`caught_above`).
MISS = 1e-6


class Plan(NamedTuple):
    full: bool
    probes: int  # fast mode: probes per pair
    seed: int


def choose(
    in_sizes: list[int], out_sizes: list[int], mode: str, probes: int | None, seed: int
) -> Plan:
    """The plan for `mode` "auto", "full" or "fast" (see the module docstring)."""
    if mode not in ("auto", "full", "fast"):
        raise InputError(f"unknown mode {mode!r}; choose one of auto, full, fast")
    k = PROBES if probes is None else check_positive_int("probes", probes)
    full = mode == "full" or (
        mode == "auto" and sum(in_sizes) <= FULL_MAX and sum(out_sizes) <= FULL_MAX
    )
    return Plan(full, k, seed)


def directions(plan: Plan, point: list[np.ndarray], rng: np.random.Generator) -> list[Directions]:
    """Per argument leaf, its directions scaled by max(1, |x|) (see the module docstring)."""
    out = []
    for x in point:
        scale = np.maximum(1.0, np.abs(x.astype(np.float64)))
        if plan.full:
            out.append(Directions(x.shape, index=np.arange(x.size), scale=scale.ravel()))
        else:
            dense = rng.standard_normal((plan.probes, *x.shape)) * scale[None]
            out.append(Directions(x.shape, dense=dense))
    return out


def cotangents(
    plan: Plan, shapes: list[tuple[int, ...]], rng: np.random.Generator
) -> list[Directions]:
    """Per output leaf, its cotangents: every unit vector, or N(0, I) draws."""
    out = []
    for shape in shapes:
        size = math.prod(shape)
        if plan.full:
            out.append(Directions(shape, index=np.arange(size), scale=np.ones(size)))
        else:
            out.append(Directions(shape, dense=rng.standard_normal((plan.probes, *shape))))
    return out


def _product_cdf(tau: float) -> float:
    """P(|z₁ z₂| ≤ τ) for independent standard normals, by quadrature over z₂."""
    z = np.linspace(0.0, 12.0, 24001)[1:]
    density = np.sqrt(2 / np.pi) * np.exp(-(z**2) / 2)
    inner = erf(tau / (z * np.sqrt(2)))
    return float(np.clip(np.trapezoid(density * inner, z), 0.0, 1.0))


def miss_chance(bound: float, error: float, probes: int) -> float:
    """Upper bound on the chance that `probes` probes miss a block error of relative size
    `error` when the check's relative bound is `bound` (rank-one error, see module doc)."""
    if error <= 0:
        return 1.0
    return _product_cdf(bound / error) ** probes


@cache
def _tau(probes: int, miss: float) -> float:
    """τ with P(|z₁ z₂| ≤ τ)^probes = miss, by bisection."""
    lo, hi = 1e-12, 1.0  # P(|z₁ z₂| ≤ τ) grows with τ
    target = miss ** (1 / probes)
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if _product_cdf(mid) < target else (lo, mid)
    return lo


def caught_above(bound: float, probes: int, miss: float = MISS) -> float:
    """The relative error ρ above which a block error escapes with a chance below `miss`."""
    return 0.0 if bound <= 0 else bound / _tau(probes, miss)
