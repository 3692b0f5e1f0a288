"""Every text table of `jaxcalc bench`, and the aligned columns other tables are built with.

- `aligned_rows` (header, rule and rows in aligned columns) and `fmt` (a number or "-");
- `training_table` and `training_summary`: a `training.BenchResult`, and the hand-written
  scan against its targets;
- `scaling_table` and `caveat`: a `scaling.ScalingResult`, and the warning for virtual
  devices;
- `cost_table`: the points of `gradient_cost.gradient_cost`;
- `hvp_table`: `hvp.run_hvp_bench`'s products and its ratios against the goals.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jaxcalc.bench.training import BASELINE

if TYPE_CHECKING:
    from jaxcalc.bench.gradient_cost import CostPoint
    from jaxcalc.bench.hvp import HvpResult
    from jaxcalc.bench.scaling import ScalingResult
    from jaxcalc.bench.training import BenchResult


def fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    """`value / scale` formatted by `spec`, or "-" for None."""
    return "-" if value is None else format(value / scale, spec)


def aligned_rows(
    head: Sequence[str], lines: Sequence[Sequence[str]], *, left: Sequence[int] = (0,)
) -> list[str]:
    """Header, rule and rows in aligned columns (`left` columns left-aligned, the rest right);
    each row's last cell beyond `head` is a free-form note appended after two spaces."""
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt_row(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in pairs)

    rows = [fmt_row(head), fmt_row(["-" * w for w in widths])]
    return rows + [fmt_row(line[:-1]) + (f"  {line[-1]}" if line[-1] else "") for line in lines]


def machine_line(m: dict[str, Any]) -> str:
    """The line "machine: <device>, <n> CPUs, load <averages>" of a `harness.machine` dict."""
    load = "?" if m["load_average"] is None else " ".join(f"{x:.2f}" for x in m["load_average"])
    return f"machine: {m['jax_device']}, {m['cpu_count']} CPUs, load {load}"


def _median(seconds: Sequence[float]) -> float | None:
    return statistics.median(seconds) if seconds else None


# --------------------------------------------------------------------------- training


def training_table(result: BenchResult) -> str:
    """The result as an aligned text table, with the targets of the hand-written scan."""
    head = ("implementation", "samples/s", "µs/step", "kernels/step", "epoch s", "compile s")
    head += ("peak MB", "% peak", "x base")
    lines = []
    batch = result.config["batch_size"]
    for r in result.rows:
        sps = fmt(r.samples_per_second, ",.0f") + ("*" if r.extrapolated else "")
        step_us = fmt(batch / r.samples_per_second if r.samples_per_second else None, ".1f", 1e-6)
        kernels = fmt(r.kernels_per_step, ".1f")
        mem = fmt(r.peak_memory_bytes, ".1f", 2**20)
        if r.peak_memory_bytes is not None:
            mem += f" ({r.memory_measure})"
        pct = fmt(r.fraction_of_peak, ".1%")
        ratio = fmt(r.vs_baseline, ".2f" if (r.vs_baseline or 1) >= 0.01 else ".1e")
        status = "" if r.status == "ok" else f"{r.status.upper()}: "
        note = f"{status}{r.note}" if status or r.note else ""
        epoch, compile_s = fmt(_median(r.epoch_seconds), ".3f"), fmt(r.compile_seconds, ".2f")
        lines.append((r.impl, sps, step_us, kernels, epoch, compile_s, mem, pct, ratio, note))
    out = [
        f"job: 784-{result.config['hidden']}-10 ReLU, Adam, batch {result.config['batch_size']}, "
        f"{result.train_size} images/epoch; data: {result.data}",
        f"{machine_line(result.machine)}; matmul peak {result.matmul_peak_flops / 1e9:,.1f} "
        f"GFLOP/s; {result.flops_per_sample / 1e6:.2f} MFLOP/sample",
        "",
        *aligned_rows(head, lines, left=(0, 6)),
    ]
    out.append(f"x base: samples/s over {BASELINE}'s; * extrapolated; median of timed epochs")
    out.append("kernels/step: launches per step of the compiled epoch (bench.kernels; on a CPU,")
    out.append("XLA's thunks, and interpreted Pallas kernels count their operations)")
    out += training_summary(result)
    return "\n".join(out)


def training_summary(result: BenchResult) -> list[str]:
    """The hand-written scan against the issue's targets, where both sides ran."""
    me = result.row("manual-scan")
    if me is None or me.samples_per_second is None:
        return []
    lines = [f"manual-scan: {me.fraction_of_peak:.1%} of the matmul peak (target >= 65%)"]
    for impl, target in ((BASELINE, 1.0), ("torch", 1.8), ("numpy", 4.4)):
        other = result.row(impl)
        if other is not None and other.samples_per_second:
            ratio = me.samples_per_second / other.samples_per_second
            lines.append(f"manual-scan / {impl}: {ratio:.2f}x (target >= {target}x)")
    return lines


# --------------------------------------------------------------------------- scaling


def caveat(result: ScalingResult) -> str | None:
    """The warning that virtual devices share the same cores, if they do."""
    if not result.virtual:
        return None
    return (
        f"caveat: the {max(result.devices)} CPU devices are virtual and share the same "
        f"{result.machine['cpu_count']} cores: this shows what the data-parallel program costs, "
        "not what more hardware gains"
    )


def scaling_table(result: ScalingResult) -> str:
    """The result as an aligned text table, with the caveat for virtual devices."""
    cfg = result.config
    head = ("implementation", "devices", "samples/s", "epoch s", "compile s", "speed-up", "eff.")
    lines = [
        (
            r.impl,
            str(r.devices),
            fmt(r.samples_per_second, ",.0f"),
            fmt(_median(r.epoch_seconds), ".3f"),
            fmt(r.compile_seconds, ".2f"),
            fmt(r.speedup, ".2f") + "x" * (r.speedup is not None),
            fmt(r.efficiency, ".0%"),
            "" if r.status == "ok" else f"{r.status.upper()}: {r.note}",
        )
        for r in result.rows
    ]
    out = [
        f"job: 784-{cfg['hidden']}-10 ReLU, Adam, global batch {cfg['batch_size']} split over "
        f"the devices, {result.train_size} images/epoch, scan unroll {cfg['unroll']}; "
        f"data: {result.data}",
        machine_line(result.machine),
        "",
        *aligned_rows(head, lines),
    ]
    out.append(
        f"speed-up: over the samples/s on {min(result.devices)} device(s); eff.: speed-up / "
        f"(devices / {min(result.devices)}); samples/s: median of timed epochs"
    )
    if caveat(result):
        out.append(caveat(result))
    return "\n".join(out)


# --------------------------------------------------------------------------- gradient cost


def cost_table(points: Sequence[CostPoint]) -> str:
    """The points as a text table: seconds, and each gradient's cost in evaluations of f."""
    head = f"{'n':>8}  {'f s':>9}  {'reverse s':>9}  {'fd s':>10}  {'reverse/f':>9}  {'fd/f':>9}"
    lines = [head, "-" * len(head)]
    for p in points:
        mark = "" if p.finite_difference_measured else "*"
        lines.append(
            f"{p.n:>8}  {p.function_seconds:9.2e}  {p.reverse_seconds:9.2e}  "
            f"{p.finite_difference_seconds:9.2e}{mark or ' '}  "
            f"{p.reverse_seconds / p.function_seconds:9.1f}  "
            f"{p.finite_difference_seconds / p.function_seconds:9.0f}"
        )
    lines.append("* extrapolated as fd(m) (n / m)² from the last measured m: a lower bound")
    return "\n".join(lines)


# --------------------------------------------------------------------------- HVP


def hvp_table(result: HvpResult) -> str:
    """The HVP bench as a table: seconds per product, against one gradient; then the goals."""
    from jaxcalc.bench.hvp import GOALS, ratios

    cfg, grad = result.config, result.seconds("gradient")
    head = ("product", "median s", "x gradient", "images/s", "compile s")
    lines = []
    for r in result.rows:
        s = _median(r.call_seconds)
        status = "" if r.status == "ok" else f"{r.status.upper()}: {r.note}"
        lines.append(
            (
                r.impl,
                fmt(s, ".3f"),
                fmt(s / grad if s and grad else None, ".2f"),
                fmt(r.images_per_second, ",.0f"),
                fmt(r.compile_seconds, ".2f"),
                status or r.label,
            )
        )
    out = [
        f"job: H v of the mean cross-entropy of 784-{cfg['hidden']}-10 ReLU over "
        f"{cfg['examples']} images at once; data: {result.data}",
        f"{machine_line(result.machine)}; median of {cfg['repeats']} interleaved calls after "
        f"a warm-up; lanczos: {cfg['lanczos_steps']} steps, k = 1",
        "",
        *aligned_rows(head, lines),
        "",
    ]
    measured = ratios(result)
    says = {
        "vs autodiff": ("hvp speed / hvp-autodiff's", "x", ">="),
        "vs gradient": ("hvp time / one gradient's", "x", "<="),
        "vs torch": ("hvp speed / PyTorch double backward's", "x", ">="),
        "lanczos overhead": ("lanczos time over its products' time", "%", "<="),
    }
    for name, goal in GOALS.items():
        what, unit, op = says[name]
        if name not in measured:
            out.append(f"{what}: not measured")
            continue
        value = measured[name]
        ok = value >= goal if op == ">=" else value <= goal
        shown = f"{value:+.1%}" if unit == "%" else f"{value:.2f}x"
        target = f"{goal:.0%}" if unit == "%" else f"{goal}x"
        out.append(f"{what}: {shown} (goal {op} {target}) {'ok' if ok else 'MISSED'}")
    lanczos = result.seconds("lanczos")
    if lanczos is not None:
        out.append(
            f"time to the top eigenvalue ({cfg['lanczos_steps']} Lanczos steps over "
            f"{cfg['examples']} images): {lanczos:.2f} s, compile apart"
        )
    return "\n".join(out)
