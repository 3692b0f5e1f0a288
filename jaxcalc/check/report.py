"""The report of a check: one row per (argument leaf, output leaf, mode, order), a verdict.

    verdict   "fail" if any row fails (yours differs from the reference by more than the
              reference's own error can explain, or is NaN), "warn" if any row is weak (the
              reference could not resolve a 0.1 % error there, f is not differentiable at
              the point along a probe, or the float32 run lost more than half its digits),
              else "ok".

`str(report)` is a table for a terminal or a pytest failure, then the worst entries of every
row that is not ok, then the notes; `report.summary()` is one line for a notebook.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from jaxcalc.check.diagnosis import format_index

VERDICTS = ("ok", "warn", "fail")

LEGEND = """\
error: ‖yours − reference‖ / ‖reference‖ over the block's entries (full mode) or probes
  (fast mode); bound: the reference's own error, estimated from two steps and floored at
  √eps, relative likewise: a row fails when error > bound; f32: yours in float32 against
  yours in float64, relative (warn above √eps of float32, 3.5e-4)."""


class Row(NamedTuple):
    """One block of the Jacobian (or of the derivative of the derivative), checked."""

    arg: str  # the argument leaf, as Python spells it: x, params['W1']
    out: str  # the output leaf: out, out[0], or at order 2 the derivative's leaf
    mode: str  # "fwd", "rev", "grad_fn"; at order 2 "fwd∘rev" (forward over reverse), ...
    order: int
    shape: tuple[int, ...]  # the argument leaf's shape
    error: float  # relative, see LEGEND
    bound: float
    f32: float | None  # relative deviation of the native (float32) run, if there was one
    verdict: str
    pattern: str = ""  # diagnosis.Diagnosis.pattern of a failed row
    text: str = ""  # the diagnosis or the reason for a warning
    hint: str = ""  # a phrase to follow the leaf's name: "has the wrong sign"
    worst: tuple = ()  # (index, yours, reference) of the worst entries
    yours: Any = None  # full mode: the block's entries, laid out like jax.jacobian
    reference: Any = None  # full mode: the reference's entries, likewise

    @property
    def leaf(self) -> str:
        """The last key of the argument leaf's name: `W1` for `params['W1']`."""
        name = self.arg
        if name.endswith("]"):
            name = name[name.rfind("[") + 1 : -1]
        return name.strip("'\"")


def worst_verdict(verdicts) -> str:
    return max(verdicts, key=VERDICTS.index, default="ok")


class Report:
    """What `check_grads` found: `verdict`, `rows`, `notes`; `str()` and `summary()`."""

    def __init__(self, rows: list[Row], notes: list[str], header: list[str]):
        self.rows = rows
        self.notes = notes
        self.header = header
        self.verdict = worst_verdict([r.verdict for r in rows] + ["ok"])

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "fail"]

    @property
    def warnings(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "warn"]

    def summary(self) -> str:
        """One line: the verdict and the first failing (else warning) row in words."""
        bad = self.failures or self.warnings
        if not bad:
            return f"ok: {len(self.rows)} blocks match the reference"
        r = bad[0]
        what = r.hint or r.text
        more = f"; {len(bad) - 1} more" if len(bad) > 1 else ""
        return f"{self.verdict}: {r.leaf} {what} ({r.out}, {r.mode}, order {r.order}){more}"

    def __str__(self) -> str:
        head = ("arg", "shape", "out", "mode", "order", "error", "bound", "f32", "verdict")
        lines = [
            (
                r.arg,
                "x".join(map(str, r.shape)) or "()",
                r.out,
                r.mode,
                str(r.order),
                f"{r.error:.1e}",
                f"{r.bound:.1e}",
                "-" if r.f32 is None else f"{r.f32:.1e}",
                r.verdict.upper() if r.verdict == "fail" else r.verdict,
                r.text if r.verdict != "ok" else "",
            )
            for r in self.rows
        ]
        text = [f"check_grads: {self.verdict}", *(f"  {h}" for h in self.header)]
        text += _aligned(head, lines, left=(0, 2, 3, 8))
        for r in self.rows:
            if r.verdict != "ok" and r.worst:
                text.append(f"{r.arg} → {r.out} ({r.mode}, order {r.order}): worst entries")
                text += _aligned(
                    ("  index", "yours", "reference"),
                    [("  " + format_index(i), f"{y:.6g}", f"{v:.6g}", "") for i, y, v in r.worst],
                    left=(0,),
                )
        text += [f"note: {n}" for n in self.notes]
        text.append(LEGEND)
        return "\n".join(text)

    def __repr__(self) -> str:
        return f"<Report {self.summary()}>"


def _aligned(head, lines, *, left) -> list[str]:
    """Header, rule and rows in aligned columns; a last cell beyond `head` is a note."""
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt(cells) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ).rstrip()

    rows = [fmt(head), fmt(["-" * w for w in widths])]
    return rows + [fmt(line[: len(head)]) + (f"  {line[-1]}" if line[-1] else "") for line in lines]
