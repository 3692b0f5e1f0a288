"""`jaxcalc hessian`: the spectrum of the training loss's Hessian at a trained (or fresh)
network, or the sharpness of full-batch gradient descent at the edge of stability."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jaxcalc.cli import nonnegative_int, positive_float, positive_int_at_most
from jaxcalc.mlp import HIDDEN_ACTIVATIONS, LOSSES

DEFAULT_OUT = "runs/hessian"
SPECTRUM_ONLY = ("checkpoint", "top", "tol", "trace", "density", "ggn", "samples", "runs")
SHARPNESS_ONLY = ("lr", "steps", "every", "hidden", "activation", "loss")
#: Caps on the sizes: beyond them a run would only take hours or exhaust memory.
IMAGES, PRODUCTS, GD_STEPS, HIDDEN = 60_000, 100_000, 1_000_000, 100_000
#: The spectrum's options with a default (also what `check` counts as not given).
DEFAULTS = {"top": 1, "samples": 30, "runs": 3}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "hessian",
        help="the Hessian's spectrum at a trained network, or sharpness at the edge of stability",
        description=(
            "By default: the spectrum of the Hessian H of the training loss (mean over "
            "--examples training images, as the run saw them) at the network of --checkpoint "
            "(or a fresh one), from hand-written Hessian-vector products: the --top "
            "eigenvalues by Lanczos, each ± its residual bound (an eigenvalue lies within it; "
            "--tol: Lanczos continues until every bound is within TOL), --trace by "
            "Hutchinson's estimator, --density by "
            "stochastic Lanczos quadrature, and with --ggn the same for the Gauss-Newton G. "
            "Writes hessian.json, density.png and saliency.png (the input Jacobian of a few "
            "test digits) to --out. With --sharpness: full-batch gradient descent on a fixed "
            "MNIST subset at each --lr, the top eigenvalue tracked every --every steps against "
            "2/lr (Cohen et al. 2021); writes sharpness.json and sharpness.png."
        ),
    )
    add, cap = p.add_argument, positive_int_at_most
    add("--checkpoint", metavar="FILE", help="from jaxcalc train: runs/mnist/checkpoint.npz")
    add("--examples", type=cap(IMAGES), metavar="N", help="images (10000; sharpness 5000)")
    top, samples, runs = DEFAULTS["top"], DEFAULTS["samples"], DEFAULTS["runs"]
    add("--top", type=cap(1000), default=top, metavar="K", help=f"top eigenvalues (default {top})")
    add("--trace", action="store_true", help="Hutchinson's trace estimate and its standard error")
    add("--density", action="store_true", help="spectral density by Lanczos quadrature")
    add("--ggn", action="store_true", help="the Gauss-Newton G too, beside H")
    add(
        "--lanczos-steps",
        type=cap(10_000),
        metavar="M",
        help="(default max(20, 2K + 10); with --tol the cap, default max(200, 2K + 10))",
    )
    add(
        "--tol",
        type=positive_float,
        metavar="TOL",
        help="continue Lanczos until each eigenvalue's bound is at most TOL (exit 1 if the cap "
        "comes first)",
    )
    add("--samples", type=cap(PRODUCTS), default=samples, help=f"trace probes (default {samples})")
    add("--runs", type=cap(1000), default=runs, help=f"density: Lanczos runs (default {runs})")
    add("--batch-size", type=cap(IMAGES), default=2000, help="rows per chunk (default 2000)")
    add("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    add("--data-dir", metavar="DIR", help="folder holding the four IDX files")
    add("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default {DEFAULT_OUT})")
    sharp = p.add_argument_group("edge of stability").add_argument
    sharp("--sharpness", action="store_true", help="track λ_max under gradient descent")
    sharp("--lr", type=positive_float, nargs="+", metavar="ETA", help="learning rates")
    sharp("--steps", type=cap(GD_STEPS), help="gradient descent steps (default 1000)")
    sharp("--every", type=cap(GD_STEPS), help="steps between λ_max (default 50)")
    sharp("--hidden", type=cap(HIDDEN), help="hidden units (default 200)")
    sharp("--activation", choices=HIDDEN_ACTIVATIONS, help="(default tanh)")
    sharp(
        "--loss",
        choices=LOSSES,
        help="(default mse, with a linear output: on MNIST cross-entropy's curvature falls as "
        "its loss goes to 0, where MSE's sharpens)",
    )
    p.set_defaults(func=run)


def _given(args: argparse.Namespace, name: str) -> bool:
    value = getattr(args, name)
    return value not in (None, False, DEFAULTS.get(name))


def check(args: argparse.Namespace) -> None:
    """Refuse a bad combination of options before any work (`InputError`)."""
    from jaxcalc.cli import check_writable
    from jaxcalc.training.config import SEEDS
    from jaxcalc.validation import InputError

    check_writable(args.out, "--out", folder=True)
    if args.seed >= SEEDS:
        raise InputError(f"--seed must be below 2**32, got {args.seed}")
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    if args.sharpness:
        wrong = [flag(n) for n in SPECTRUM_ONLY if _given(args, n)]
        if wrong:
            raise InputError(f"{', '.join(wrong)} belong to the spectrum, not to --sharpness")
        if not args.lr:
            raise InputError("--sharpness needs --lr ETA [ETA ...]")
        steps, every = args.steps or 1000, args.every or 50
        if every > steps or steps % every:
            raise InputError(f"--steps {steps} must be a multiple of --every {every}")
        return
    wrong = [flag(n) for n in SHARPNESS_ONLY if getattr(args, n) is not None]
    if wrong:
        raise InputError(f"{', '.join(wrong)} need --sharpness")
    steps = args.lanczos_steps
    if steps is not None and steps < args.top:
        raise InputError(f"--lanczos-steps {steps} is fewer than --top {args.top}")
    if args.samples < 2:
        raise InputError("--samples must be at least 2 for a standard error")


def run(args: argparse.Namespace) -> int:
    check(args)
    return run_sharpness(args) if args.sharpness else run_spectrum(args)


def _network(args: argparse.Namespace):
    """(params, config, a line saying which network) from --checkpoint, or a fresh one."""
    from jaxcalc import hessian, training

    if args.checkpoint:
        params, cfg, epochs = hessian.trained_network(args.checkpoint)
        return params, cfg, f"checkpoint {args.checkpoint} ({epochs} epochs, evaluated weights)"
    cfg = training.default_config("mnist")
    return hessian.fresh_network(cfg), cfg, f"a fresh network (seed {cfg.seed}, not trained)"


def run_spectrum(args: argparse.Namespace) -> int:
    import jax

    from jaxcalc import data, hessian, machine, mlp
    from jaxcalc.cli import progress_to_stderr
    from jaxcalc.curvature import lanczos_steps
    from jaxcalc.files import write_json
    from jaxcalc.plots import save
    from jaxcalc.plots.curvature import density_figure, saliency_figure

    params, cfg, source = _network(args)
    n_params = sum(int(p.size) for p in params.values())
    lanczos_steps(n_params, args.top, args.lanczos_steps, tol=args.tol is not None)  # up front
    lanczos_steps(n_params, 1, hessian.DENSITY_STEPS)  # the density's runs
    n = args.examples or 10_000
    d = data.load(cfg.dataset, data_dir=args.data_dir, val_size=cfg.val_size, val_fold=cfg.val_fold)
    d = hessian.examples(cfg, d, n, 8)  # 8 test digits for the saliency maps
    x, y, labels = hessian.training_examples(cfg, d)
    scores = jax.jit(lambda p, x, y, labels: (
        mlp.loss_fn(p, x, y, activation=cfg.activation),
        mlp.accuracy(p, x, labels, activation=cfg.activation),
    ))  # fmt: skip
    loss, accuracy = map(float, scores(params, x, y, jax.numpy.asarray(labels)))
    smoothing = f", label smoothing {cfg.label_smoothing:g}" * (cfg.label_smoothing > 0)
    info = {
        "network": source,
        "sizes": [x.shape[1], cfg.hidden, int(params["b2"].shape[0])],
        "activation": cfg.activation,
        "data": f"{cfg.dataset}, first {n} training images{', deskewed' * cfg.deskew}",
        "loss": f"mean cross-entropy{smoothing}",
        "loss_value": float(loss),
        "accuracy": accuracy,
    }
    spectra = hessian.spectrum(
        params, x, y, activation=cfg.activation, top=args.top, trace=args.trace,
        density=args.density, ggn=args.ggn, key=jax.random.key(args.seed),
        lanczos_steps=args.lanczos_steps, tol=args.tol, samples=args.samples, runs=args.runs,
        batch_size=args.batch_size, progress=progress_to_stderr,
    )  # fmt: skip
    x_test, images, test_labels = hessian.test_examples(d)
    maps, predictions = hessian.saliency(params, x_test, activation=cfg.activation)
    print(spectrum_table(info, spectra))
    out = Path(args.out)
    result = {**info, **spectra, "machine": machine.describe(jax.devices()[0])}
    print(f"wrote {write_json(out / 'hessian.json', result)}")
    if args.density:
        state = "trained" if args.checkpoint else "fresh, untrained"
        title = f"{'-'.join(map(str, info['sizes']))} {cfg.activation}, {state}; {info['data']}"
        print(f"wrote {save(density_figure(spectra, title=title), out / 'density.png')}")
    figure = saliency_figure(images, maps, test_labels, predictions)
    print(f"wrote {save(figure, out / 'saliency.png')}")
    return 0


def spectrum_table(info: dict[str, Any], spectra: dict[str, dict[str, Any]]) -> str:
    """The spectrum as an aligned table, one column per operator."""
    from jaxcalc.bench.report import aligned_rows

    names = list(spectra)
    bound = lambda s, i: f"{s['top'][i]:.6g} ± {s['top_bounds'][i]:.1g}"  # noqa: E731
    rows = [(f"λ{i + 1}", *(bound(spectra[n], i) for n in names), "± residual bound" * (i == 0))
            for i in range(len(spectra["H"]["top"]))]  # fmt: skip
    steps = (f"{spectra[n]['lanczos_steps']}, {spectra[n]['top_seconds']:.2f} s" for n in names)
    rows.append(("Lanczos", *steps, "steps, seconds"))
    if "trace" in spectra["H"]:
        cell = lambda t: f"{t['estimate']:.5g} ± {t['stderr']:.2g}"  # noqa: E731
        rows.append(("trace", *(cell(spectra[n]["trace"]) for n in names), "± 1 standard error"))
    if "density" in spectra["H"]:
        mass = (f"{spectra[n]['density']['negative_mass']:.3f}" for n in names)
        rows.append(("mass λ < 0", *mass, "of the density's weight"))
    head = ("", *({"H": "Hessian H", "G": "Gauss-Newton G"}[n] for n in names))
    lines = [
        f"network: {info['network']}, {'-'.join(map(str, info['sizes']))} {info['activation']}",
        f"data: {info['data']}; loss {info['loss_value']:.4f} ({info['loss']}), "
        f"accuracy {info['accuracy']:.4f}",
        "",
        *aligned_rows(head, rows),
    ]
    return "\n".join(lines)


def run_sharpness(args: argparse.Namespace) -> int:
    import jax

    from jaxcalc import hessian, machine
    from jaxcalc.cli import progress_to_stderr
    from jaxcalc.files import write_json
    from jaxcalc.plots import save
    from jaxcalc.plots.curvature import sharpness_figure

    n = args.examples or 5000
    x, labels = hessian.sharpness_examples(n, args.data_dir)
    setup = {
        "data": f"mnist, first {n} training images, centred",
        "hidden": args.hidden or 200,
        "activation": args.activation or "tanh",
        "loss": args.loss or "mse",
        "steps": args.steps or 1000,
        "every": args.every or 50,
        "lanczos_steps": args.lanczos_steps or 20,
    }
    runs = hessian.sharpness(
        x, labels, list(args.lr), steps=setup["steps"], every=setup["every"],
        hidden=setup["hidden"], activation=setup["activation"], loss=setup["loss"],
        seed=args.seed, lanczos_steps=setup["lanczos_steps"], progress=progress_to_stderr,
    )  # fmt: skip
    print(sharpness_table(setup, runs))
    out = Path(args.out)
    result = {**setup, "runs": runs, "machine": machine.describe(jax.devices()[0])}
    print(f"wrote {write_json(out / 'sharpness.json', result)}")
    title = (
        f"784-{setup['hidden']}-10 {setup['activation']}, {setup['loss']}, full-batch GD on "
        f"{n} MNIST images"
    )
    print(f"wrote {save(sharpness_figure(runs, title=title), out / 'sharpness.png')}")
    return 0


def sharpness_table(setup: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """One row per learning rate: λ_max's start, dip and peak, when it reached 2/η, and how
    close it stayed over the last half of the steps."""
    from jaxcalc.bench.report import aligned_rows

    head = ("η", "2/η", "λ_max start", "least", "at", "largest", "then ≥ 0.95·2/η")
    head += ("λ/(2/η) last half", "min", "max", "final loss")
    lines = []
    for r in runs:
        s = r["summary"]
        note = f"diverged at step {r['diverged_at']}" if r["diverged_at"] is not None else ""
        lines.append(
            (
                f"{r['lr']:g}",
                f"{r['threshold']:.4g}",
                f"{s['initial']:.4g}",
                f"{s['least']:.4g}",
                f"step {s['least_at']}",
                f"{s['largest']:.4g}",
                "-" if s["reached_at"] is None else f"step {s['reached_at']}",
                f"{s['late_mean_ratio']:.3f}",
                f"{s['late_min_ratio']:.3f}",
                f"{s['late_max_ratio']:.3f}",
                f"{r['loss'][-1]:.4f}" if r["loss"] else "-",
                note,
            )
        )
    intro = (
        f"784-{setup['hidden']}-10 {setup['activation']}, {setup['loss']}, {setup['data']}; "
        f"{setup['steps']} steps, λ_max every {setup['every']} ({setup['lanczos_steps']} "
        "Lanczos steps)"
    )
    return "\n".join([intro, "", *aligned_rows(head, lines)])
