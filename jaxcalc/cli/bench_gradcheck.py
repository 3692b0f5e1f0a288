"""`jaxcalc bench --gradcheck`: jaxcalc.check against jax.test_util and torch.autograd on the
gradient-check corpus, and a 1,000,000-parameter network (`jaxcalc.bench.gradcheck`)."""

from __future__ import annotations

import argparse


def add_gradcheck(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("gradient checkers")
    group.add_argument(
        "--gradcheck",
        action="store_true",
        help="score jaxcalc.check, jax.test_util.check_grads and torch.autograd.gradcheck "
        "(where torch is installed) on a corpus of buggy derivative rules, their correct twins "
        "and JAX's own rules, in float32 and float64: bugs caught, false alarms, crashes, "
        "seconds; then a 1,000,000-parameter network with a 1%% bug in its smallest leaf",
    )
    group.add_argument(
        "--corpus",
        metavar="MODULE",
        help="with --gradcheck: a module with CASES (jaxcalc.bench.corpus.Case) to score instead",
    )


def run_gradcheck(args: argparse.Namespace) -> int:
    import jax

    from jaxcalc.bench import gradcheck as bench
    from jaxcalc.bench.report import machine_line
    from jaxcalc.cli import progress_to_stderr
    from jaxcalc.cli.bench import write_outputs
    from jaxcalc.machine import describe
    from jaxcalc.validation import InputError

    other = [
        f
        for f, on in (
            ("--devices", args.devices),
            ("--gradient-cost", args.gradient_cost),
            ("--hvp", args.hvp),
            ("--impl", args.impl),
        )
        if on
    ]
    if other:
        raise InputError(f"--gradcheck is a run of its own; drop {', '.join(other)}")
    cases = bench.load(args.corpus)
    results = bench.run_bench(cases, progress_to_stderr)
    scores = bench.score(results)
    bugs = sum(c.buggy for c in cases)
    print(
        f"gradient checkers on {len(cases)} rules ({bugs} with a bug), each in float32 and "
        "float64, every call timed from cold (jax.clear_caches() before it)"
    )
    print("\n".join(bench.table(scores)))
    by = {s.checker: s.seconds for s in scores}
    print(f"time, jaxcalc.check / jax.test_util: {by['jaxcalc.check'] / by['jax.test_util']:.2f}")
    network = bench.network()
    for name, summary, seconds, count in network:
        print(f"{count:,}-parameter ReLU network, {name}: {summary} ({seconds:.1f} s)")
    misses = bench.misses(results)
    if misses:
        print(
            "\n".join(
                ["", "missed, false alarms, crashes, leaves or patterns not named:"]
                + [f"  {m}" for m in misses]
            )
        )
    print(machine_line(describe(jax.devices("cpu")[0])))
    out = {
        "results": [r._asdict() for r in results],
        "scores": [s._asdict() for s in scores],
        "network": [
            dict(zip(("case", "summary", "seconds", "parameters"), n, strict=True)) for n in network
        ],
    }
    return write_outputs(args, out)
