#!/usr/bin/env bash
# Issue 29's GPU half, one prepared command per device call, from the checkout's root (through gpu_session.sh):
#
#     MODE=frontier bash benchmarks/gpu_session.sh "$OUT"          # device tool: timeout_s 500, carry [".wheels"]
#     MODE=frontier-ablate bash benchmarks/gpu_session.sh "$OUT"   # the ladder and liger-kernel, when a call fits
#     DRY_RUN=1 MODE=frontier bash benchmarks/gpu_session.sh OUT   # the plan only: runs nothing, needs no GPU
#
# frontier: micro-batch 64 (the H200's fastest measured) with the standard loss, then the chunked loss, + FP8,
# + CUDA graphs (reduce-overhead), gptbench's default run against the nanoGPT-style loop at GPT-2's shape
# (benchmarks/harness_overhead.py --shape gpt2), and + max-autotune-no-cudagraphs, whose compile time is the unknown.
# frontier-ablate: `--loss liger` at micro-batch 64, then `gptbench ablate` on the GPU (every rung, the frontier's
# included; its report is rewritten after each rung, so a timeout keeps the finished ones).
#
# Wheels travel in .wheels/ (git-ignored; carry it): torchao 0.17.0 (built for torch 2.11, the GPU image's),
# liger-kernel, cut-cross-entropy; they are installed offline, without dependencies, before the first step.
# Each step's plan stands next to what it took in OUT/frontier.tsv, written after every step; each gptbench command
# writes its report into OUT; all output goes to OUT/session.log. The plan's seconds come from the H200 run of
# 2026-12-04 (benchmarks/results/h200-2026-12-04/): the default run's compile warm-up took 24.7 s and a whole compiled
# run about 45 s (the acceptance check's graph step: 44.9 s); FP8 and CUDA graphs add compilation (+15 s planned, a
# guess); max-autotune's compile time is not known (150 s, bounded). A step gets its plan + 30 s, or what is left of
# the 450 s budget; with under 30 s left it is skipped and says so.
set -u
OUT=${1:?usage: MODE=frontier bash benchmarks/frontier_session.sh OUT_DIR}
MODE=${MODE:-frontier}
BUDGET_S=${SESSION_BUDGET_S:-450}
PY=${PYTHON:-python3}
DRY=${DRY_RUN:-0}
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
RUN=("$PY" -m gptbench run --device cuda --out "$OUT")
B64=(--batch 64 --loss chunked)

left() { echo $((BUDGET_S - SECONDS)); }

step() { # step NAME PLANNED_S CMD...: run CMD under the smaller of PLANNED_S + 30 and the time left; log the row
    local name=$1 planned=$2
    shift 2
    if [ "$DRY" = 1 ]; then
        printf '%s\t%s\t%s\n' "$name" "$planned" "$*"
        return 0
    fi
    local limit=$((planned + 30)) start=$SECONDS rc
    [ "$(left)" -lt "$limit" ] && limit=$(left)
    if [ "$limit" -lt 30 ]; then
        printf '%s\t%s\t\tskipped: %s s left\n' "$name" "$planned" "$(left)" >>"$OUT/frontier.tsv"
        return 0
    fi
    echo "== $name: $* (plan ${planned} s, timeout ${limit} s)" >>"$OUT/session.log"
    timeout -k 10 "$limit" "$@" >>"$OUT/session.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\texit %s\n' "$name" "$planned" "$((SECONDS - start))" "$rc" >>"$OUT/frontier.tsv"
}

wheels() { # offline, no dependencies (torch and triton are the image's own); without pip, unpacked onto PYTHONPATH
    local wheels=(.wheels/*.whl) start=$SECONDS how
    if [ "$DRY" = 1 ]; then
        printf 'wheels\t15\tpip install --no-index --no-deps .wheels/*.whl (without pip: unpacked onto PYTHONPATH)\n'
        return 0
    fi
    if [ ! -e "${wheels[0]}" ]; then
        how="none carried in .wheels/: --fp8 and --loss liger will refuse"
    elif "$PY" -m pip install --no-index --no-deps --quiet "${wheels[@]}" >>"$OUT/session.log" 2>&1; then
        how="installed ${#wheels[@]} with pip"
    else
        "$PY" -c "import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]" \
            "${TMPDIR:-/tmp}/gptbench-wheels" "${wheels[@]}" >>"$OUT/session.log" 2>&1
        export PYTHONPATH="${TMPDIR:-/tmp}/gptbench-wheels:$PYTHONPATH"
        how="no pip: ${#wheels[@]} unpacked into ${TMPDIR:-/tmp}/gptbench-wheels"
    fi
    printf 'wheels\t15\t%s\t%s\n' "$((SECONDS - start))" "$how" >>"$OUT/frontier.tsv"
}

frontier() {
    wheels
    step b64-standard 45 "${RUN[@]}" --batch 64 --label frontier-b64
    step b64-chunked 45 "${RUN[@]}" "${B64[@]}" --label frontier-b64-chunked
    step b64-chunked-fp8 60 "${RUN[@]}" "${B64[@]}" --fp8 --label frontier-b64-chunked-fp8
    step b64-chunked-cudagraphs 60 "${RUN[@]}" "${B64[@]}" --compile-mode reduce-overhead --label frontier-b64-cudagraphs
    step side-by-side 75 "$PY" benchmarks/harness_overhead.py --device cuda --shape gpt2 --part b --rounds 4 --steps 3
    step b64-chunked-autotune 150 "${RUN[@]}" "${B64[@]}" --compile-mode max-autotune-no-cudagraphs --label frontier-b64-autotune
}

frontier_ablate() {
    wheels
    step b64-liger 50 "${RUN[@]}" --batch 64 --loss liger --label frontier-b64-liger
    step ablate 385 "$PY" -m gptbench ablate --device cuda --no-batch-search --steps 10 --warmup 2 --out "$OUT"
}

case "$MODE" in
frontier | frontier-ablate) ;;
*)
    echo "MODE=$MODE: choose frontier or frontier-ablate"
    exit 2
    ;;
esac
if [ "$DRY" != 1 ]; then
    if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
        echo "no CUDA GPU here: MODE=$MODE measures on one (DRY_RUN=1 prints its plan)"
        exit 2
    fi
    mkdir -p "$OUT" && printf 'step\tplanned_s\tmeasured_s\tresult\n' >"$OUT/frontier.tsv"
else
    printf 'step\tplanned_s\tcommand\n'
fi
if [ "$MODE" = frontier ]; then frontier; else frontier_ablate; fi
[ "$DRY" = 1 ] || echo "session ($MODE): $SECONDS s in all; files: $(ls "$OUT" | tr '\n' ' ')"
