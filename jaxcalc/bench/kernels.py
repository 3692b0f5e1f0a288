"""Kernels per training step, counted in a compiled program's HLO text.

On a GPU at small batch a step costs about a microsecond per kernel launched, whatever the
kernel does (measured on an H100: an XLA while-loop iteration about 8 µs, about 1 µs per
further kernel), so the count says where the time goes.
`kernels_per_step(compiled.as_text(), steps)` finds the loop of the scan epoch (the `while`
of the entry computation with the most kernels in its body) and counts, per iteration, the
instructions of its body and condition that launch work: every fusion, custom call (a
cuBLAS GEMM, a Pallas/Triton kernel) and unfused operation. Tuples, parameters, constants,
bitcasts and the like launch nothing and are not counted; a nested loop counts the kernels
of one of its iterations. The count per iteration, times the loop's trip count, over the
steps of the epoch, is the count per step (a loop unrolled k times runs k steps an
iteration).

On a CPU the same count is of XLA's CPU thunks, and Pallas kernels in interpret mode
become loops of ordinary operations: the figure that matters is the GPU's.
"""

from __future__ import annotations

import re

#: Opcodes that launch nothing: bookkeeping of buffers and tuples.
FREE = frozenset(
    "parameter constant get-tuple-element tuple bitcast after-all opt-barrier partition-id "
    "replica-id add-dependency domain".split()
)
_HEADER = re.compile(r"^(ENTRY )?%(\S+) .*\{$")
_INSTR = re.compile(r"^\s+(?:ROOT )?%\S+ = .*?\s([a-z][a-z0-9\-]*)\((.*)$")
_CALLS = re.compile(r"(condition|body|to_apply|branch_computations)=\{?(%[^,}\s]+(?:, %[^,}\s]+)*)")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


def parse(hlo_text: str) -> tuple[dict[str, list[str]], str | None]:
    """(computation name -> its instruction lines, the entry computation's name)."""
    computations: dict[str, list[str]] = {}
    entry, current = None, None
    for line in hlo_text.splitlines():
        header = _HEADER.match(line)
        if header:
            current = header.group(2)
            computations[current] = []
            if header.group(1):
                entry = current
        elif line.startswith("}"):
            current = None
        elif current is not None and _INSTR.match(line):
            computations[current].append(line)
    return computations, entry


def _opcode(line: str) -> str:
    return _INSTR.match(line).group(1)  # type: ignore[union-attr]


def _called(line: str) -> dict[str, list[str]]:
    """The computations an instruction calls, by role (body, condition, to_apply, ...)."""
    return {
        role: [name.lstrip("%") for name in names.split(", ")]
        for role, names in _CALLS.findall(line)
    }


def count(computations: dict[str, list[str]], name: str) -> int:
    """Kernels launched by one run of computation `name` (a nested loop: one iteration)."""
    total = 0
    for line in computations.get(name, []):
        op = _opcode(line)
        if op in FREE:
            continue
        if op in ("while", "call", "conditional"):
            called = _called(line)
            parts = [n for role in ("condition", "body", "to_apply") for n in called.get(role, [])]
            branches = called.get("branch_computations", [])
            total += sum(count(computations, n) for n in parts)
            total += max((count(computations, n) for n in branches), default=0)
            total += op == "conditional"
        else:
            total += 1
    return total


def kernels_per_step(hlo_text: str, steps: int) -> float | None:
    """Kernels launched per training step by a compiled scan epoch of `steps` steps (see
    the module docstring); None when the program has no loop."""
    computations, entry = parse(hlo_text)
    loops = [line for line in computations.get(entry or "", []) if _opcode(line) == "while"]
    if not loops or steps <= 0:
        return None

    def per_iteration(line: str) -> int:
        called = _called(line)
        return sum(count(computations, n) for n in called["body"] + called["condition"])

    loop = max(loops, key=per_iteration)
    trip = _TRIP.search(loop)
    iterations = int(trip.group(1)) if trip else steps
    return per_iteration(loop) * iterations / steps
