"""`jaxcalc exercises`: the chapter's rules, worked examples and exercises, checked."""

from __future__ import annotations

import argparse

import numpy as np

from jaxcalc.exercises import SECTIONS, Answer, gradient_checks


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "exercises",
        help="solve the chapter's worked examples and exercises, checked three ways",
        description=(
            "Print each derivative rule, worked example and exercise of the chapter: the "
            "problem, the closed form, its value, and the same value by autodiff (jax.grad) "
            "and by finite differences, all in float64; then check_grad on the chapter's "
            "functions. Exit status 1 if any disagree."
        ),
    )
    parser.set_defaults(func=run)


def _numbers(a: np.ndarray) -> str:
    return np.array2string(a, precision=6, floatmode="fixed", separator=", ").replace("\n", "")


def format_answer(answer: Answer) -> str:
    """The answer as an indented block: problem, closed form, and its three numbers."""
    lines = [
        f"{answer.name}: {answer.problem}",
        f"  closed form:        {answer.closed_form}",
        f"  value:              {_numbers(answer.value)}",
    ]
    for label, other in (
        ("autodiff:          ", answer.autodiff),
        ("finite differences:", answer.finite_difference),
    ):
        diff = float(np.max(np.abs(other - answer.value)))
        lines.append(f"  {label} {_numbers(other)}  (max |difference| {diff:.1e})")
    if answer.note:
        lines.append(f"  {answer.note}")
    lines.append(f"  check: {'ok' if answer.ok else 'FAILED'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    answers = []
    for section in SECTIONS:
        for answer in section():
            print(format_answer(answer), end="\n\n", flush=True)
            answers.append(answer)
    print("Gradient checks: jax.grad vs central differences in float64 (cs231n relative error)")
    checks = gradient_checks()
    for name, report in checks.items():
        print(f"  {name:32} max relative error {report.max_error:.1e}  {report.verdict}")
    print()
    failed = [a.name for a in answers if not a.ok]
    failed += [f"gradient check of {n}" for n, r in checks.items() if r.verdict == "fail"]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    print(
        f"all {len(answers)} answers confirmed by autodiff and finite differences; "
        f"{len(checks)} gradient checks passed"
    )
    return 0
