#!/usr/bin/env bash
# The one-shot GPU check: on a CUDA machine with the repository's set-up (./run_all.sh --gpu --setup),
# run the demo model through the full profile's code path and measure it, within ten minutes,
# unattended (no prompt; every step has a time limit; a failed step is recorded and the next runs).
#
#   bench/gpu_check.sh [--dry-run] [--steps N] [--posts N] [--budget SECONDS]
#
#   1. notebooks 00-03 of the demo profile with full's settings: device cuda, bfloat16, NF4 (QLoRA)
#      when bitsandbytes is installed, LoRA r 64 / alpha 32 on q_proj and v_proj, lr 2e-4, batch 16,
#      --steps optimizer steps (default 40), one variant (en); llama.cpp with every layer on the GPU
#      (n_gpu_layers -1) when the llama-cpp-python wheel has a GPU backend, else on the CPU
#   2. bench/gpu_check.py: the same test posts scored on the GPU and on the CPU with the same files
#      (llama.cpp GPU vs CPU; transformers bf16 on CUDA vs fp32 on the CPU): agreement, KL, posts/s
#   3. bench/classify.py, the classification benchmark, on the files of step 1 (CPU configurations)
#
# Writes to $OUT/gpu-check/ when OUT is set, else bench/results/gpu-check-<date>-<host>/:
# gpu-check.json (tokens/s, peak GPU memory, posts/s, agreement), the classify benchmark's JSON,
# steps.json (each step's status and seconds), the log, and the run's small tables and executed
# notebooks. Model files stay in a scratch folder that is deleted at the end.
# --dry-run prints the checks and the commands it would run, and runs nothing else (works on a CPU).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${XLING_VENV:-$ROOT/.venv}"  # the set-up's virtual environment
PY="$VENV/bin/python"
DRY=0
STEPS=40
POSTS=100
BUDGET=570
while [ $# -gt 0 ]; do
    case "$1" in
    --dry-run) DRY=1 ;;
    --steps) STEPS="$2"; shift ;;
    --posts) POSTS="$2"; shift ;;
    --budget) BUDGET="$2"; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
STAMP="$(date -u +%Y-%m-%d)-$(hostname | tr -c 'A-Za-z0-9_\n-' '-')"
if [ -n "${OUT:-}" ]; then RESULTS="$OUT/gpu-check"; else RESULTS="$ROOT/bench/results/gpu-check-$STAMP"; fi
START=$(date +%s)

say() { printf '[gpu-check] %s\n' "$*"; }
fail() { say "error: $*" >&2; exit 2; }

if [ ! -x "$PY" ]; then
    if [ "$DRY" = 1 ]; then
        say "warning: no $PY (a real run stops here: set up first with ./run_all.sh --gpu --setup)"
        PY="$(command -v python3)"
    else
        fail "no $PY: set up first with ./run_all.sh --gpu --setup (the CUDA build of torch)"
    fi
fi
export PYTHONPATH="$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}"

# what this machine has: CUDA, bitsandbytes, a llama.cpp wheel with a GPU backend
PROBE="$("$PY" - <<'EOF' 2>&1
import importlib.util
try:
    import torch
    cuda = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if cuda else "none"
    build = torch.version.cuda or "cpu"
    ver = torch.__version__
except Exception as err:
    cuda, name, build, ver = False, f"none (torch: {err})", "-", "-"
try:
    import llama_cpp
    offload = bool(llama_cpp.llama_supports_gpu_offload())
except Exception:
    offload = False
bnb = importlib.util.find_spec("bitsandbytes") is not None
print(f"{int(cuda)} {int(bnb)} {int(offload)} torch={ver} cuda_build={build} gpu={name}")
EOF
)"
read -r HAS_CUDA HAS_BNB HAS_OFFLOAD DESCRIBE <<<"$PROBE"
case "$HAS_CUDA" in 0 | 1) ;; *) fail "could not probe the machine: $PROBE" ;; esac
say "machine: $DESCRIBE; bitsandbytes: $([ "$HAS_BNB" = 1 ] && echo yes || echo no); llama.cpp GPU backend: $([ "$HAS_OFFLOAD" = 1 ] && echo yes || echo no)"
if [ "$HAS_CUDA" != 1 ]; then
    if [ "$DRY" = 1 ]; then
        say "warning: no CUDA GPU here; a real run stops at this point (the commands it would run follow)"
    else
        fail "no CUDA GPU visible to torch ($DESCRIBE); set up with ./run_all.sh --gpu --setup on a GPU machine"
    fi
fi
QUANT=null
[ "$HAS_BNB" = 1 ] && QUANT=nf4
LAYERS=0
[ "$HAS_OFFLOAD" = 1 ] && LAYERS=-1
[ "$QUANT" = null ] && say "NF4 skipped: bitsandbytes is not installed (pip install -e '.[gpu]'); training on the bf16 base"
[ "$LAYERS" = 0 ] && say "llama.cpp on the CPU: this llama-cpp-python has no GPU backend (CMAKE_ARGS=-DGGML_CUDA=on)"

if [ "$DRY" = 1 ]; then
    WORK="<scratch folder>"
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/xling-gpu-check.XXXXXX")" || fail "cannot make a scratch folder"
    trap 'rm -rf "$WORK"' EXIT
    mkdir -p "$RESULTS" || fail "cannot write $RESULTS"
fi
export XLING_RUNS="$WORK/runs" XLING_FIGURES="$WORK/figures"
LOG="$RESULTS/log.txt"

RUN_CMD=("$PY" -m xling.run.runner --profile demo --only 00 01 02 03 --force
    -p device cuda -p dtype bfloat16 -p base_quant "$QUANT" -p n_gpu_layers "$LAYERS"
    -p variants '{en: [en]}'
    -p 01_finetune.steps "$STEPS" -p lora_r 64 -p lora_alpha 32 -p lora_dropout 0.1
    -p target_modules '[q_proj, v_proj]' -p lr 0.0002 -p batch_size 16 -p max_length 1024
    -p 02_quantize.mixes '{}' -p 02_quantize.compare_posts 40 -p 02_quantize.check_posts 40
    -p 03_crosslingual_eval.methods '[score, generate]' -p 03_crosslingual_eval.eval_splits '[test]')
MEASURE_CMD=("$PY" "$ROOT/bench/gpu_check.py" --run demo --posts "$POSTS" --out "$RESULTS"
    --steps-seconds "$RESULTS/steps.json")
BENCH_CMD=("$PY" "$ROOT/bench/classify.py" --profile demo --variant en --posts 60 --sweep-posts 16
    --out "$RESULTS")

if [ "$DRY" = 1 ]; then
    say "dry run: would write to $RESULTS (models in $WORK, deleted at the end), within ${BUDGET} s"
    for name in RUN_CMD MEASURE_CMD BENCH_CMD; do
        declare -n cmd="$name"
        printf '[gpu-check] would run:'
        printf ' %q' "${cmd[@]}"
        printf '\n'
    done
    exit 0
fi

declare -A STATUS SECONDS_OF
ORDER=()
step() { # step NAME SHARE_OF_REMAINING COMMAND...: run with a time limit, record status and time
    local name="$1" share="$2"
    shift 2
    local left=$((BUDGET - ($(date +%s) - START)))
    local limit=$((left * share / 100))
    ORDER+=("$name")
    if [ "$limit" -lt 20 ]; then
        STATUS[$name]="skipped: out of time"
        SECONDS_OF[$name]=0
        say "$name: skipped, ${left} s left of the ${BUDGET} s budget"
        return 1
    fi
    say "$name (at most ${limit} s) ..."
    local t0=$(date +%s) rc
    timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
    rc=$?
    SECONDS_OF[$name]=$(($(date +%s) - t0))
    case "$rc" in
    0) STATUS[$name]=ok ;;
    124 | 137) STATUS[$name]="failed: over its ${limit} s limit" ;;
    *) STATUS[$name]="failed: exit code $rc (see $LOG)" ;;
    esac
    say "$name: ${STATUS[$name]} (${SECONDS_OF[$name]} s)"
    [ "$rc" = 0 ]
}
write_steps() { # steps.json: each step's status and seconds so far
    local args=() n
    for n in "${ORDER[@]}"; do args+=("$n" "${STATUS[$n]}" "${SECONDS_OF[$n]}"); done
    "$PY" -c 'import json, sys
a = sys.argv[2:]
steps = {a[i]: {"status": a[i + 1], "seconds": int(a[i + 2])} for i in range(0, len(a), 3)}
json.dump(steps, open(sys.argv[1], "w"), indent=1)' "$RESULTS/steps.json" "${args[@]}"
}

say "writing to $RESULTS; log $LOG"
: >"$LOG"
step "notebooks 00-03 on the GPU" 60 "${RUN_CMD[@]}"
RAN=$?
write_steps
if [ "$RAN" = 0 ]; then
    step "GPU against CPU" 50 "${MEASURE_CMD[@]}"
    write_steps
    step "classify benchmark" 100 "${BENCH_CMD[@]}"
else
    say "the GPU run failed; its last lines:"
    tail -n 25 "$LOG" | sed 's/^/    /'
fi
write_steps
# the run's small files: tables, executed notebooks, the report (no model files)
if [ -d "$XLING_RUNS/demo" ]; then
    (cd "$XLING_RUNS/demo" && find . -type f \( -name '*.csv' -o -name '*.ipynb' -o -name '*.html' \
        -o -name '*.json' -o -name '*.txt' \) -size -20M -not -path './cache/*' -not -path './merged/*' \
        -not -path '*/checkpoint*' -print0 | tar --null -cf - -T - | (mkdir -p "$RESULTS/run" && cd "$RESULTS/run" && tar -xf -))
fi
say "done in $(($(date +%s) - START)) s; results in $RESULTS"
for n in "${ORDER[@]}"; do
    say "  $n: ${STATUS[$n]} (${SECONDS_OF[$n]} s)"
    case "${STATUS[$n]}" in ok) ;; *) FAILED=1 ;; esac
done
exit "${FAILED:-0}"
