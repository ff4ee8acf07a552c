#!/usr/bin/env bash
# A GPU session's ONE prepared command (issue 18, part 2), from the checkout's root:
#
#     bash benchmarks/gpu_session.sh "$OUT"          # device tool: timeout_s 480 (SESSION_BUDGET_S 450 + slack)
#
# 1. the acceptance check (benchmarks/gpu_acceptance.py, its own 300 s deadline) into OUT;
# 2. if the session's time allows, `gptbench chapter5 --device cuda` (its report into OUT, its output into session.log);
# 3. if it still allows, benchmarks/harness_overhead.py on the GPU (into session.log).
# 450 s leaves a 15-minute device budget room for the machine's start (1-2 min) and a second call.
# Each step runs under `timeout`, which signals its whole process group; gpu_acceptance.py stops its current step's
# own group on that SIGTERM. Files in OUT stay at most 8: acceptance.json, acceptance.log, 3 reports (4 with 2+ GPUs:
# ddp), the chapter-5 report, session.log.
#
# MODE=frontier and MODE=frontier-ablate (issue 29): the trainer's new switches on the GPU, each mode within 450 s
# (benchmarks/frontier_session.sh says what each runs, with its plan; DRY_RUN=1 prints the plan and runs nothing).
set -u
OUT=${1:?usage: bash benchmarks/gpu_session.sh OUT_DIR}
BUDGET_S=${SESSION_BUDGET_S:-450}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
case "${MODE:-acceptance}" in
acceptance) ;;
frontier | frontier-ablate) exec bash benchmarks/frontier_session.sh "$OUT" ;;
*)
    echo "MODE=${MODE}: choose acceptance (the default), frontier or frontier-ablate"
    exit 2
    ;;
esac

left() { echo $((BUDGET_S - SECONDS)); } # SECONDS: bash's count since this script began
bounded() { # bounded MAX_S CMD...: CMD under the smaller of MAX_S and the time left, its output into session.log
    local limit=$1
    shift
    [ "$(left)" -lt "$limit" ] && limit=$(left)
    if [ "$limit" -lt 30 ]; then
        echo "== skipped, $(left) s left: $*" >>"$OUT/session.log"
        return 0
    fi
    echo "== $* (timeout ${limit} s)" >>"$OUT/session.log"
    timeout -k 10 "$limit" "$@" >>"$OUT/session.log" 2>&1
    echo "== exit $? after $SECONDS s of the session" >>"$OUT/session.log"
}

timeout -k 15 345 "$PY" benchmarks/gpu_acceptance.py --out "$OUT" --budget-s 300  # + a torchrun step's 35 s kill grace
status=$?
[ "$status" -eq 2 ] && exit 2 # no CUDA GPU: the script said so in one line, and nothing else can run

bounded 120 "$PY" -m gptbench chapter5 --device cuda --json --out "$OUT"
if "$PY" benchmarks/harness_overhead.py --help 2>/dev/null | grep -q -- "--device"; then
    bounded 150 "$PY" benchmarks/harness_overhead.py --device cuda
else # measuring the CPU on a GPU machine would answer another question
    echo "== skipped: benchmarks/harness_overhead.py has no --device option yet (it measures on the CPU only)" >>"$OUT/session.log"
fi
echo "session: acceptance exit $status; $SECONDS s in all; files: $(ls "$OUT" | tr '\n' ' ')"
exit "$status"
