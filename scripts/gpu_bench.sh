#!/usr/bin/env bash
# The GPU figures, in one run: the fused step against the XLA step numerically at each
# precision, and µs per kernel (scripts/gpu_check.py); the XLA scan (unrolled 1 and 8 steps
# per loop iteration) against the fused Pallas step (`jaxcalc.fused`); the default
# `jaxcalc train` with an empty and with a warm compile cache (time to result), then with
# `--kernel fused` (TF32, then bfloat16 products); other block shapes; one table of it all.
#
#   PYTHONPATH=. bash scripts/gpu_bench.sh          (from a checkout, jax[cuda] installed)
#
# Needs MNIST's four IDX files in data/mnist/ (git-ignored) or $JAXCALC_DATA_DIR/mnist/;
# without them the benchmarks use random data of MNIST's shape and the training runs are
# skipped. Results go to runs/gpu_bench/ (JSON, metrics.json) and the table to stdout.
# Settings (environment):
#   TRAIN_EPOCHS  epochs of each training run (default 20, the recipe's)
#   BENCH_EPOCHS  timed epochs of each benchmark, after a warm-up epoch (default 3)
#   PARTS         which parts to run (default "check bench train sweep"; sweep: the fused
#                 step with other block shapes, set through
#                 JAXCALC_FUSED_BLOCKS="batch,k,hidden[,warps[,stages[,precision]]]")
#   SMOKE=1       a dry run of this script on a CPU: tiny sizes, the kernels interpreted;
#                 it checks the script, not the speed
#   OUT           the results' folder (default runs/gpu_bench, emptied first)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_bench}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-20}
BENCH_EPOCHS=${BENCH_EPOCHS:-3}
PY=${PYTHON:-python}
DEVICE=gpu
SMALL=(--hidden 512 --batch-size 128)
LARGE=(--hidden 1024 --batch-size 1024)
EXTRA=()
TRAIN_EXTRA=()
CHECK_EXTRA=()
if [ "${SMOKE:-0}" = 1 ]; then
    DEVICE=cpu
    export JAXCALC_PALLAS_INTERPRET=1
    SMALL=(--hidden 32 --batch-size 32)
    LARGE=(--hidden 64 --batch-size 64)
    EXTRA=(--train-size 512 --peak-size 128)
    TRAIN_EXTRA=(--hidden 32 --train-limit 640)
    CHECK_EXTRA=(--smoke)
    TRAIN_EPOCHS=1
    BENCH_EPOCHS=1
fi
rm -rf "$OUT" && mkdir -p "$OUT"  # this script's own folder: no stale results in the table
status=0
want() { [[ " ${PARTS:-check bench train sweep} " == *" $1 "* ]]; }

"$PY" -c 'import jax; print("jax", jax.__version__, "devices", jax.devices())' || exit 2
if [ "$DEVICE" = gpu ]; then
    "$PY" -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' || {
        echo "gpu_bench: JAX sees no GPU; nothing to measure here (SMOKE=1: a dry run)" >&2
        exit 2
    }
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm \
        --format=csv,noheader
fi

if want check; then
    echo "== gpu_check: the fused step against XLA at each precision; µs per kernel" >&2
    "$PY" scripts/gpu_check.py --json "$OUT/check.json" ${CHECK_EXTRA[@]+"${CHECK_EXTRA[@]}"} \
        2>&1 | tee "$OUT/check.txt" || status=1
fi

bench() {  # name, then arguments of `jaxcalc bench`
    local name=$1
    shift
    echo "== bench $name: $*" >&2
    "$PY" -m jaxcalc bench --device "$DEVICE" --epochs "$BENCH_EPOCHS" --no-plot \
        --json "$OUT/bench_$name.json" "${EXTRA[@]}" "$@" > "$OUT/bench_$name.txt" || status=1
    cat "$OUT/bench_$name.txt"
}

IMPLS=(--impl manual-scan --impl autodiff-scan --impl fused-scan)
if want bench; then
    for unroll in 8 1; do
        bench "small_u$unroll" "${IMPLS[@]}" "${SMALL[@]}" --unroll "$unroll"
        bench "large_u$unroll" "${IMPLS[@]}" "${LARGE[@]}" --unroll "$unroll"
    done
fi

train() {  # name, then arguments of `jaxcalc train`; the command's own wall in wall.txt
    local name=$1
    shift
    echo "== train $name: $*" >&2
    local start end
    start=$(date +%s.%N)
    "$PY" -m jaxcalc train --epochs "$TRAIN_EPOCHS" --out "$OUT/train_$name" \
        ${TRAIN_EXTRA[@]+"${TRAIN_EXTRA[@]}"} "$@" || status=1
    end=$(date +%s.%N)
    echo "$start $end" | awk '{print $2 - $1}' > "$OUT/train_$name/wall.txt" 2> /dev/null
}

if ! want train; then
    :
elif "$PY" -c 'import sys; from jaxcalc.data import locate; sys.exit(locate("mnist") is None)'; then
    cache=$(mktemp -d)  # an empty compile cache: the cold run fills it, the warm run reads it
    XDG_CACHE_HOME=$cache train xla_cold
    XDG_CACHE_HOME=$cache train xla_warm
    XDG_CACHE_HOME=$cache train fused --kernel fused --no-figures
    rm -rf "$cache"
else
    echo "gpu_bench: MNIST not found (data/mnist/); training runs skipped" >&2
fi

if want sweep; then  # other block shapes (default 32,64,32,4,3 below batch 512; 32,64,32,4,2 was the old one)
    for blocks in 16,64,32 32,64,64 64,64,32 32,128,32 32,64,32,8 32,64,32,4,3 \
        32,64,32,4,2 32,64,32,4,3,float32 32,64,32,4,3,bfloat16; do
        JAXCALC_FUSED_BLOCKS=$blocks bench "small_u8_blocks_$blocks" --impl fused-scan \
            "${SMALL[@]}" --unroll 8
    done
    for blocks in 32,64,32 128,64,64,8 64,128,64,8 64,64,64,8,2,bfloat16; do  # default 64,64,64,8,2
        JAXCALC_FUSED_BLOCKS=$blocks bench "large_u8_blocks_$blocks" --impl fused-scan \
            "${LARGE[@]}" --unroll 8
    done
    if [ -d "$OUT/train_fused" ]; then  # the default recipe (batch 256) with bfloat16 products
        JAXCALC_FUSED_BLOCKS=32,64,32,4,3,bfloat16 train fused_bf16 --kernel fused --no-figures
    fi
fi

"$PY" - "$OUT" << 'EOF'
"""The table: µs and kernels per step of each path, the ratios of the same run, and the
test accuracy of each kernel on the default recipe."""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
results = [json.loads(p.read_text()) | {"file": p.stem} for p in out.glob("bench_*.json")]
results.sort(key=lambda r: (r["config"]["hidden"], r["config"]["unroll"], r["file"]))
if results:
    machine = results[0]["machine"]["jax_device"]
    print(f"\n## {machine}: XLA scan vs fused Pallas step (each line's ratios within one run)\n")
    print("| job | unroll | implementation | samples/s | µs/step | kernels/step | x manual-scan | x autodiff-scan |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        cfg = result["config"]
        rows = {r["impl"]: r for r in result["rows"]}
        job = f"784-{cfg['hidden']}-10, batch {cfg['batch_size']}"
        blocks = result["file"].split("blocks_")[1] if "blocks_" in result["file"] else ""
        for impl, r in rows.items():
            sps = r["samples_per_second"]
            if not sps:
                print(f"| {job} | {cfg['unroll']} | {impl} | {r['status']}: {r['note']} | | | | |")
                continue
            ratios = []
            for base in ("manual-scan", "autodiff-scan"):
                other = rows.get(base, {}).get("samples_per_second")
                ratios.append(f"{sps / other:.2f}" if other else "-")
            kernels = r.get("kernels_per_step")
            label = impl + (f" (blocks {blocks})" if blocks else "")
            print(
                f"| {job} | {cfg['unroll']} | {label} | {sps:,.0f} | "
                f"{1e6 * cfg['batch_size'] / sps:.1f} | {'-' if kernels is None else f'{kernels:.1f}'} | "
                f"{ratios[0]} | {ratios[1]} |"
            )
    print("\ngoals: 784-512-10 batch 128 fused >= 10M samples/s (<= 12.8 µs/step) and >= 3x the XLA")
    print("scan; 784-1024-10 batch 1024 fused >= 1.5x the XLA scan")

runs = {}
for name in ("xla_cold", "xla_warm", "fused", "fused_bf16"):
    path = out / f"train_{name}" / "metrics.json"
    if path.is_file():
        wall = out / f"train_{name}" / "wall.txt"
        runs[name] = json.loads(path.read_text())
        runs[name]["wall"] = float(wall.read_text()) if wall.is_file() else float("nan")
if runs:
    device = next(iter(runs.values()))["device"]
    print(f"\n## Training, the default recipe, one device ({device})\n")
    print("| run | epochs | test accuracy | train s | compile s | samples/s | wall s | wall - train s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for k, r in runs.items():
        print(
            f"| {k} | {r['epochs']} | {100 * r['test_accuracy']:.2f}% | {r['train_seconds']:.1f} | "
            f"{r['compile_seconds']:.1f} | {r['samples_per_second']:,.0f} | {r['wall']:.1f} | "
            f"{r['wall'] - r['train_seconds']:.1f} |"
        )
    for k in ("xla_cold", "xla_warm"):
        if k in runs:
            t = runs[k]["timings"]
            print(f"{k} timings: " + ", ".join(f"{n} {v:.2f}" for n, v in t.items()))
    print("goals: time to result (wall - train) <= 8 s cold, <= 3 s warm")
    for k in ("fused", "fused_bf16"):
        if k in runs and "xla_warm" in runs:
            gap = 100 * abs(runs[k]["test_accuracy"] - runs["xla_warm"]["test_accuracy"])
            verdict = "within" if gap <= 0.1 else "OUTSIDE"
            print(f"|test accuracy {k} - xla| = {gap:.2f} points: {verdict} the 0.1-point goal")
EOF
exit $status
