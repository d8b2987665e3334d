#!/usr/bin/env bash
# The CUDA matrix through the CLI, in under 8 minutes on an H200, then one compact table.
#
#   bash bench/gpu_check.sh [F1_MODEL]        (from the repository root)
#
# Speed cells: bert-base architecture, synthetic fixed-shape batches, seq 128, the batch sizes of
# the H200 reference figures (bench/h200_reference.json). F1 cells: F1_MODEL (default: bundled;
# or a directory written by bench/make_fp16_model.py and carried along). Outputs under
# ${OUT:-/tmp/gpu_check}. A failing run is reported and the script goes on; BUDGET_S (default
# 450) caps the whole script, and FULL=1 adds the slow-to-compile cells (max-autotune, compiled
# training at batch 128).
# TARGETS=1 runs only the cells of the suite's H200 speed targets (best inference, best
# training, batch-1 latency), one batch per precision, each run under its own time limit so
# the mode fits one 600-second device call; GPU_FULL=1 runs only `--preset gpu-full` on
# F1_MODEL, timed. Both end with the targets checked (bench/gpu_table.py --targets).
# All runs share one Inductor/Triton cache (TORCHINDUCTOR_CACHE_DIR, default .cache/inductor,
# git-ignored, so a warm machine keeps it between calls). DRY_RUN=1 prints each run's command
# and time limit without a GPU and runs nothing.
set -u

OUT=${OUT:-/tmp/gpu_check}
PY=${PYTHON:-python3}
F1_MODEL=${1:-${F1_MODEL:-bundled}}
BUDGET_S=${BUDGET_S:-450}
DRY_RUN=${DRY_RUN:-0}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$PWD/.cache/inductor}
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-$TORCHINDUCTOR_CACHE_DIR/triton}
mkdir -p "$OUT" "$TORCHINDUCTOR_CACHE_DIR"
START=$SECONDS
DIRS=()
TIMING=(--min-iters 10 --min-time 1 --warmup-iters 3 --cell-timeout 240)
SPEED=(--model bert-base --synthetic --seq-len 128 --devices cuda)

run() { # run NAME LIMIT ARGS...: one `accelbench run` into $OUT/NAME, killed after LIMIT
    # seconds (`-`: whatever is left of BUDGET_S); failure is reported, not fatal
    local name=$1 asked=$2 limit=$2
    shift 2
    local left=$((BUDGET_S - (SECONDS - START)))
    if [[ "$asked" == - ]] || ((asked > left)); then
        limit=$left
    fi
    if ((limit < 30)); then
        echo "== $name: skipped, ${BUDGET_S}s budget spent"
        return 0
    fi
    echo "== $name (t=$((SECONDS - START))s, limit ${limit}s)"
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "   $PY -m accelbench run --out $OUT/$name ${TIMING[*]} $*"
        [[ "$asked" == - ]] || START=$((START - limit)) # a fixed limit counts as spent
        return 0
    fi
    rm -rf "${OUT:?}/$name"
    timeout -k 10 "$limit" "$PY" -m accelbench run --out "$OUT/$name" "${TIMING[@]}" "$@" \
        >"$OUT/$name.log" 2>&1
    local rc=$?
    if ((rc != 0)); then
        echo "   exit $rc; last lines of $OUT/$name.log:"
        tail -n 3 "$OUT/$name.log" | sed 's/^/   /'
    fi
    DIRS+=("$OUT/$name")
    return 0
}

if [[ "$DRY_RUN" != 1 ]]; then
    if ! "$PY" -c "import accelbench, torch; assert torch.cuda.is_available(), 'no CUDA'" 2>"$OUT/preflight.log"; then
        echo "preflight failed: $(tail -n 1 "$OUT/preflight.log")"
        exit 1
    fi
    "$PY" -c "import torch, transformers, onnxruntime as o; print('torch', torch.__version__, '| transformers', transformers.__version__, '| onnxruntime', o.__version__, o.get_available_providers(), '|', torch.cuda.get_device_name())"
    "$PY" -m accelbench env >"$OUT/env.json" 2>&1 || echo "accelbench env failed (see $OUT/env.json)"
    "$PY" -m accelbench list >"$OUT/list.txt" 2>&1 || echo "accelbench list failed (see $OUT/list.txt)"
fi

if [[ "${TARGETS:-0}" == 1 ]]; then
    # 240 + 180 + 130 s of limits, the rest of the 600 s device call for the checks above and
    # the table. A cell's own timeout sits under its run's limit (2 cells per run), so a stuck
    # cell is a `timeout` record, not a lost run. The limits are estimates until an H200 run.
    BUDGET_S=${TARGETS_BUDGET_S:-560}
    TIMING=(--min-iters 10 --min-time 1 --warmup-iters 3 --cell-timeout 110)
    run target-infer 240 "${SPEED[@]}" --workloads infer --runtimes compile \
        --compile-mode max-autotune-no-cudagraphs --precisions bf16-weights,fp16-weights \
        --batch-size 512
    TIMING=(--min-iters 10 --min-time 1 --warmup-iters 3 --cell-timeout 85)
    run target-train 180 "${SPEED[@]}" --workloads train --runtimes eager,compile \
        --precisions bf16 --batch-size 256 --train-steps 40
    TIMING=(--min-iters 10 --min-time 1 --warmup-iters 3 --cell-timeout 60)
    run target-latency 130 "${SPEED[@]}" --workloads infer --runtimes compile \
        --compile-mode reduce-overhead --precisions bf16,bf16-weights --batch-size 1 \
        --min-iters 200
elif [[ "${GPU_FULL:-0}" == 1 ]]; then
    TIMING=(--cell-timeout 300)
    run gpu-full - --preset gpu-full --model "$F1_MODEL"
else
    run infer-eager - "${SPEED[@]}" --workloads infer --runtimes eager \
        --precisions fp32,tf32,fp16,bf16 --batch-size 128
    run infer-weights - "${SPEED[@]}" --workloads infer --runtimes eager,compile \
        --precisions bf16-weights --batch-size 512
    run latency-b1 - "${SPEED[@]}" --workloads infer --runtimes eager,compile \
        --compile-mode reduce-overhead --precisions bf16 --batch-size 1
    run train-eager - "${SPEED[@]}" --workloads train --runtimes eager \
        --precisions fp32,tf32,bf16,fp16 --batch-size 32 --train-steps 60
    run train-b256 - "${SPEED[@]}" --workloads train --runtimes eager,compile \
        --precisions bf16 --batch-size 256 --train-steps 40
    run f1 - --model "$F1_MODEL" --devices cuda --workloads train,infer --runtimes eager,ort \
        --precisions fp32,tf32,bf16,fp16,bf16-weights,fp16-weights --batch-size 32 --train-steps 250
    if [[ -f "$OUT/f1/checkpoint/config.json" ]]; then
        run f1-compile - --checkpoint "$OUT/f1/checkpoint" --devices cuda --workloads infer \
            --runtimes compile --precisions fp32,bf16 --batch-size 32
    fi
    if [[ "${FULL:-0}" == 1 ]]; then
        run infer-autotune - "${SPEED[@]}" --workloads infer --runtimes compile \
            --compile-mode max-autotune --precisions bf16-weights --batch-size 512
        run train-compile-b128 - "${SPEED[@]}" --workloads train --runtimes compile \
            --precisions bf16 --batch-size 128 --train-steps 40
    fi
fi

if [[ "$DRY_RUN" == 1 ]]; then
    echo "dry run: fixed limits add up to $((SECONDS - START))s; runs marked '-' share BUDGET_S=$BUDGET_S"
    exit 0
fi
echo
"$PY" bench/gpu_table.py --targets "${DIRS[@]}"
echo "total $((SECONDS - START))s; records and logs under $OUT"
