#!/usr/bin/env bash
# The first GPU run, as ONE command on the GPU machine (docs/PERFORMANCE.md, section "GPU"):
#
#   bash bench/gpu_check.sh          (from the repository root; carry .whl and .model)
#
# Before the call, here: the wheels the machine lacks in .whl/ and the fp16 MiniLM copy in
# .model/minilm-fp16 (bench/rehearse_device_run.sh prepares both exactly so, and rehearses this
# script on the CPU). In order, each step under its own time limit, a failed step reported and
# the rest still run, the whole inside BUDGET_S (480 s, first-time Inductor/Triton compiles of a
# cold machine included; a step's limit is cut to what is left of it; the limits are estimates
# until a GPU run has timed them):
#   install the carried wheels (--target), print versions, ORT providers and the compiler;
#   the GPU tests (pytest -m gpu); the matmul/copy ceilings, measured once and reused by every
#   run (--ceilings FILE); the F1 cells on the carried model (fp8/int8 through the carried
#   torchao included); the speed cells of bench/h200_reference.json (bert-base synthetic, seq
#   128) and torchao's fp8/int8 inference beside them; one serve single-stream cell;
#   then one table and one tarball.
# Everything is written under WORK (/tmp); OUT receives four files: console.log, steps.tsv (one
# line per step: name, status, exit code, seconds, limit), summary.txt (bench/gpu_table.py) and
# results.tar.gz (every run directory without checkpoints, the logs, env.json).
# MODE=autotune (max-autotune cells, compiled fp8 training) and MODE=gpu-full (`--preset gpu-full`, timed) are later,
# separate calls (BUDGET_S 570 s each, timeout_s 600). Knobs for the rehearsal on the CPU: DEVICE, BUDGET_S, LIMIT_PCT (each limit
# scaled by this percentage), SHRINK (flags appended to every `accelbench run`), SPEED_MODEL
# (the speed cells' model flags, default `--model bert-base`), PYTHON, WHEELS, SITE.
set -u
cd "$(dirname "$0")/.."

OUT=${OUT:-/tmp/gpu_check_out}
WORK=${WORK:-/tmp/gpu_check}
PY=${PYTHON:-python3}
DEV=${DEVICE:-cuda}
MODE=${MODE:-default}
BUDGET_S=${BUDGET_S:-$([[ $MODE == default ]] && echo 480 || echo 570)} # of a 600 s call
LIMIT_PCT=${LIMIT_PCT:-100}
F1_MODEL=${F1_MODEL:-.model/minilm-fp16}
WHEELS=${WHEELS:-.whl}
SITE=${SITE:-/tmp/accelbench-site}
read -r -a SHRINK <<<"${SHRINK:-}"
read -r -a SPEED_MODEL <<<"${SPEED_MODEL:---model bert-base}"

export PYTHONPATH="$PWD/src:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$WORK/inductor}
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-$TORCHINDUCTOR_CACHE_DIR/triton}
TIMING=(--min-iters 10 --min-time 1 --warmup-iters 3)
SPEED=("${SPEED_MODEL[@]}" --synthetic --seq-len 128 --devices "$DEV")
F1=(--model "$F1_MODEL" --devices "$DEV")
CEIL=(--no-ceilings)
START=$SECONDS

step() { # step NAME LIMIT_S COMMAND...: COMMAND under its own limit, output in WORK/logs/NAME.log
    local name=$1 limit=$(($2 * LIMIT_PCT / 100)) left=$((BUDGET_S - (SECONDS - START)))
    shift 2
    ((limit > left)) && limit=$left
    if ((limit < 5)); then
        echo "== $name: skipped, the ${BUDGET_S}s budget is spent"
        printf '%s\tskipped\t-\t0\t0\n' "$name" >>"$WORK/steps.tsv"
        return 0
    fi
    echo "== $name (t=$((SECONDS - START))s, limit ${limit}s)"
    local t0=$SECONDS rc status
    timeout -k 10 "$limit" "$@" >"$WORK/logs/$name.log" 2>&1
    rc=$?
    case $rc in 0) status=ok ;; 124 | 137) status=timeout ;; *) status=failed ;; esac
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" $((SECONDS - t0)) "$limit" >>"$WORK/steps.tsv"
    if [[ $status != ok ]]; then
        echo "   $status (exit $rc) after $((SECONDS - t0))s; last lines of logs/$name.log:"
        tail -n 4 "$WORK/logs/$name.log" | sed 's/^/   | /'
    fi
    return 0
}

cell() { # cell NAME LIMIT_S ARGS...: one `accelbench run` into WORK/runs/NAME (one line a cell)
    local name=$1 limit=$2
    shift 2
    local cell_timeout=$((limit * LIMIT_PCT / 100 * 2 / 3))
    step "$name" "$limit" "$PY" -m accelbench run --out "$WORK/runs/$name" "${CEIL[@]}" \
        --cell-timeout $((cell_timeout > 20 ? cell_timeout : 20)) "${TIMING[@]}" "$@" "${SHRINK[@]}"
}

default_cells() {
    cell f1 150 "${F1[@]}" --workloads train,infer --runtimes eager --batch-size 32 \
        --precisions fp32,tf32,bf16,fp16,bf16-weights,fp16-weights,fp8,int8 --train-steps 200
    cell infer-eager 40 "${SPEED[@]}" --workloads infer --runtimes eager --batch-size 128 \
        --precisions fp32,tf32,bf16,fp16
    cell infer-weights 70 "${SPEED[@]}" --workloads infer --runtimes eager,compile \
        --precisions bf16-weights --batch-size 512
    cell infer-quant 50 "${SPEED[@]}" --workloads infer --runtimes compile \
        --precisions fp8,int8 --batch-size 512
    cell latency-b1 45 "${SPEED[@]}" --workloads infer --runtimes eager,compile \
        --compile-mode reduce-overhead --precisions bf16 --batch-size 1 --min-iters 200
    cell train-bf16 80 "${SPEED[@]}" --workloads train --runtimes eager,compile \
        --precisions bf16 --batch-size 256 --train-steps 30
    cell serve 30 --checkpoint "$WORK/runs/f1/checkpoint" --devices "$DEV" --workloads serve \
        --scenarios single-stream --runtimes eager --precisions bf16 --batch-size 1 \
        --serve-min-time 2 --serve-min-queries 200
}

autotune_cells() {
    cell infer-autotune 240 "${SPEED[@]}" --workloads infer --runtimes compile \
        --compile-mode max-autotune-no-cudagraphs --precisions bf16-weights,fp16-weights \
        --batch-size 512
    cell train-compile-b128 150 "${SPEED[@]}" --workloads train --runtimes compile \
        --precisions bf16 --batch-size 128 --train-steps 30
    cell train-fp8 100 "${SPEED[@]}" --workloads train --runtimes compile \
        --precisions fp8 --batch-size 256 --train-steps 30
}

gpu_full_cells() {
    TIMING=()
    cell gpu-full 540 --preset gpu-full --model "$F1_MODEL" --devices "$DEV"
}

main() {
    echo "gpu_check: mode $MODE on $DEV, budget ${BUDGET_S}s, work in $WORK, results in $OUT"
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        step install 30 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target "$SITE" "$WHEELS"/*.whl
    fi
    step versions 30 "$PY" bench/device_versions.py "$DEV"
    cat "$WORK/logs/versions.log"
    if [[ $MODE == default ]]; then
        step gpu-tests 60 "$PY" -m pytest -q -p no:cacheprovider -n 2 -m gpu tests
        tail -n 1 "$WORK/logs/gpu-tests.log"
    fi
    step ceilings 25 sh -c '"$0" -m accelbench env --ceilings >"$1"' "$PY" "$WORK/env.json"
    if "$PY" -c 'import json, sys; json.load(open(sys.argv[1]))["ceilings"]' "$WORK/env.json" \
        2>/dev/null; then
        CEIL=(--ceilings "$WORK/env.json")
    fi
    case $MODE in
    default) default_cells ;;
    autotune) autotune_cells ;;
    gpu-full) gpu_full_cells ;;
    *) echo "unknown MODE=$MODE (default, autotune, gpu-full)" ;;
    esac

    echo
    "$PY" bench/gpu_table.py --targets "$WORK"/runs/* | tee "$OUT/summary.txt"
    {
        echo
        echo "steps (name, status, exit code, seconds, limit):"
        cat "$WORK/steps.tsv"
    } | tee -a "$OUT/summary.txt"
    cp "$WORK/steps.tsv" "$OUT/steps.tsv"
    tar -C "$WORK" --exclude=checkpoint --exclude=inductor --exclude='*.onnx' \
        --exclude='*.safetensors' --exclude='*.bin' -czf "$OUT/results.tar.gz" \
        runs logs steps.tsv $([[ -f $WORK/env.json ]] && echo env.json)
    local bad
    bad=$(awk -F'\t' '$2 != "ok"' "$WORK/steps.tsv" | wc -l)
    echo "gpu_check: $(wc -l <"$WORK/steps.tsv") steps, $bad not ok, $((SECONDS - START))s;" \
        "results.tar.gz $(du -k "$OUT/results.tar.gz" | cut -f1) KiB"
}

rm -rf "$WORK"
mkdir -p "$OUT" "$WORK/logs" "$WORK/runs" "$TORCHINDUCTOR_CACHE_DIR"
: >"$WORK/steps.tsv"
main 2>&1 | tee "$OUT/console.log"
