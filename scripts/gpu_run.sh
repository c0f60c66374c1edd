#!/usr/bin/env bash
# The one prepared run on a lent GPU machine (issue 19), finished within
# $GPU_RUN_SECONDS (default 450 s, under the 8 minutes one device call may take):
#
#  1. stops at once, with one clear line and exit status 3, where nvidia-smi sees no GPU;
#  2. installs the wheels carried in .whl/ (made by scripts/gpu_wheels.sh: xdsl, lark
#     and their needs) into a temporary folder on PYTHONPATH; Halide does not travel,
#     and annc runs without it;
#  3. scripts/gpu_preflight.py: versions, what JAX and CuPy see, annc's devices and
#     fingerprint; stops the run (exit 3) where annc has no gpu device;
#  4. annc variants --check on every gpu variant, then the gpu-marked tests (pytest -m gpu;
#     where no GPU is seen, as in a rehearsal, they are all skipped);
#  5. annc calibrate into a fresh $ANNC_HOME: host<->gpu copies and every gpu combination
#     first, then the cpu's, each within its share of the time left;
#  6. annc train, then annc evaluate --report json (and --plot);
#  7. benchmarks/placement.py --target cpu,gpu on three examples;
#  8. leaves in $OUT, flat, 8 files: summary.txt, environment.json, check.json,
#     evaluate.json, placement.md, placement.json, models.json and run.tar.gz (the
#     measurement database, the evaluate plot and every step's log).
#
# Every step has a time limit; one that fails is reported (with the end of its log) and
# the run goes on with what does not need it. Exit status 0 only if every step passed.
#
# On the lent machine, through the device tool (carry [".whl"], timeout_s 540):
#     bash scripts/gpu_run.sh
# Rehearsal on a machine without a GPU: GPU_RUN_REHEARSAL names the device that stands
# in for gpu (cpu or opencl), GPU_RUN_KERNELS narrows the check and the calibration, and
# the placement benchmark runs with --quick:
#     GPU_RUN_REHEARSAL=opencl GPU_RUN_KERNELS=neg GPU_RUN_SECONDS=180 GPU_RUN_RESERVE=60 \
#         PYTHON=.venv/bin/python OUT=/tmp/gpu_out bash scripts/gpu_run.sh
# (GPU_RUN_RESERVE: seconds kept back from calibration for the steps after it.)
#
# A later call can continue the first one's work (the machine starts bare every time):
#   GPU_RUN_DB       a measurement database carried with the working tree (say in an
#                    ignored folder named in carry): calibration continues it;
#   GPU_RUN_SKIP     steps not to run again, e.g. "check pytest_gpu";
#   GPU_RUN_NOISE=1  the device's calibration measures its noise sample (first, since
#                    it runs within a budget), so that evaluate gives model/noise ratios;
#   GPU_RUN_DEVICE_PERCENT  the device's share of the calibration time (default 60).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
: "${OUT:?set OUT to the folder whose files come back}"
PYTHON=${PYTHON:-python3}
DEADLINE=${GPU_RUN_SECONDS:-450}
REHEARSAL=${GPU_RUN_REHEARSAL:-}
KERNELS=${GPU_RUN_KERNELS:-}
DEVICE=${REHEARSAL:-gpu}
SKIP=" ${GPU_RUN_SKIP:-} "

mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gpu_run.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
LOGS=$WORK/logs
mkdir -p "$LOGS"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
export ANNC_HOME=$WORK/home PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
DB=$ANNC_HOME/measurements.sqlite
mkdir -p "$ANNC_HOME"
if [ -n "${GPU_RUN_DB:-}" ]; then
    cp "$GPU_RUN_DB" "$DB" || { echo "gpu_run: cannot copy GPU_RUN_DB=$GPU_RUN_DB" >&2; exit 2; }
fi
FAILED=0

say() { echo "gpu_run [$(printf '%3d' "$SECONDS") s]: $*" | tee -a "$SUMMARY" >&2; }
left() { echo $((DEADLINE - SECONDS)); }

# step NAME LIMIT_S COMMAND...: runs COMMAND with its output in $LOGS/NAME.log, stopped
# after LIMIT_S seconds or at the deadline, whichever comes first.
step() {
    local name=$1 limit=$2 began=$SECONDS rc what
    shift 2
    if [[ $SKIP == *" $name "* ]]; then
        say "step $name: not run (GPU_RUN_SKIP)"
        return 0
    fi
    if ((limit > $(left) - 5)); then limit=$(($(left) - 5)); fi
    if ((limit < 5)); then
        say "step $name: SKIPPED, the run's $DEADLINE s are spent"
        FAILED=1
        return 1
    fi
    say "step $name (at most $limit s): $*"
    timeout --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    if ((rc == 0)); then
        say "step $name: ok in $((SECONDS - began)) s"
        return 0
    fi
    what="exit status $rc"
    ((rc == 124)) && what="stopped at its limit"
    say "step $name: FAILED ($what) after $((SECONDS - began)) s; the end of its log:"
    tail -n 20 "$LOGS/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY" >&2
    FAILED=1
    return "$rc"
}

# finish [STATUS]: packs what there is into $OUT and exits (1 if a step failed).
finish() {
    [ -f "$DB" ] && "$PYTHON" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute(
        "VACUUM INTO ?", (sys.argv[2],))' "$DB" "$WORK/measurements.sqlite" 2>>"$SUMMARY"
    cp "$SUMMARY" "$LOGS/summary.txt"
    tar -C "$WORK" -czf "$OUT/run.tar.gz" logs $( [ -f "$WORK/measurements.sqlite" ] &&
        echo measurements.sqlite) $( [ -f "$WORK/evaluate.png" ] && echo evaluate.png)
    say "done in $SECONDS s; files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
    say "$( ((FAILED)) && echo 'some steps FAILED: see above' || echo 'every step passed')"
    exit "${1:-$((FAILED ? 1 : 0))}"
}

# to_file FILE COMMAND...: COMMAND's standard output into FILE (for `timeout`).
TO_FILE=(bash -c '"${@:2}" >"$1"' to_file)

# 1. A GPU, or stop now.
if [ -z "$REHEARSAL" ]; then
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        say "no GPU seen: nvidia-smi is not installed here. This script is for a lent GPU" \
            "machine; rehearse without one with GPU_RUN_REHEARSAL=opencl or cpu (see its header)."
        exit 3
    fi
    if ! timeout 30 nvidia-smi -L >"$LOGS/nvidia-smi.txt" 2>&1 ||
        ! grep -q '^GPU ' "$LOGS/nvidia-smi.txt"; then
        say "no GPU seen: nvidia-smi -L lists none ($(head -c 300 "$LOGS/nvidia-smi.txt"))."
        exit 3
    fi
    say "$(grep '^GPU ' "$LOGS/nvidia-smi.txt" | head -n 4)"
    nvidia-smi >>"$LOGS/nvidia-smi.txt" 2>&1
else
    say "REHEARSAL without a GPU: $DEVICE stands in for gpu${KERNELS:+; kernels $KERNELS}"
fi

# 2. The carried wheels.
SITE=$WORK/site
if compgen -G ".whl/*.whl" >/dev/null; then
    step wheels 120 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || finish
    export PYTHONPATH=$REPO:$SITE
else
    say "no .whl/ here: using the xdsl and lark installed for $PYTHON"
    export PYTHONPATH=$REPO
fi
ANNC=("$PYTHON" -m annc)
KERNEL_ARGS=()
[ -n "$KERNELS" ] && KERNEL_ARGS=(--kernels "$KERNELS")

# 3. What annc sees.
step preflight 120 "$PYTHON" scripts/gpu_preflight.py --require "$DEVICE" \
    --json "$OUT/environment.json" || { say "annc cannot use $DEVICE here: stopping"; finish 3; }

# 4. Correctness on the device.
step check 150 "${TO_FILE[@]}" "$OUT/check.json" "${ANNC[@]}" variants --check \
    --devices "$DEVICE" --report json "${KERNEL_ARGS[@]}"
step pytest_gpu 150 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests

# 5. Calibration: the device (and its copies) first, then the host, in the time left
#    after keeping RESERVE seconds for training, evaluation, placement and packing.
RESERVE=${GPU_RUN_RESERVE:-170}
CALIBRATION=$(($(left) - RESERVE))
if ((CALIBRATION < 40)); then CALIBRATION=40; fi
DEVICE_SHARE=$((CALIBRATION * ${GPU_RUN_DEVICE_PERCENT:-60} / 100))
NOISE=()
[ "${GPU_RUN_NOISE:-0}" = 1 ] && NOISE=(--noise)
step calibrate_$DEVICE $((DEVICE_SHARE + 30)) "${ANNC[@]}" calibrate --devices "$DEVICE" \
    --budget "$DEVICE_SHARE" --timeout 30 --db "$DB" "${NOISE[@]}" "${KERNEL_ARGS[@]}"
if [ "$DEVICE" != cpu ]; then
    HOST_SHARE=$(($(left) - RESERVE))
    if ((HOST_SHARE < 20)); then HOST_SHARE=20; fi
    step calibrate_cpu $((HOST_SHARE + 30)) "${ANNC[@]}" calibrate --devices cpu \
        --budget "$HOST_SHARE" --timeout 30 --db "$DB" "${KERNEL_ARGS[@]}"
fi

# 6. Models and their accuracy.
if step train 60 "${ANNC[@]}" train --db "$DB"; then
    cp "$ANNC_HOME"/models/*.json "$OUT/models.json" 2>>"$SUMMARY"
fi
step evaluate 60 "${TO_FILE[@]}" "$OUT/evaluate.json" "${ANNC[@]}" evaluate \
    --report json --db "$DB" --plot "$WORK/evaluate.png"

# 7. Placement over cpu and the device, with the models just trained.
QUICK=()
[ -n "$REHEARSAL" ] && QUICK=(--quick)
if [ "$DEVICE" != cpu ]; then
    step placement 240 env ANNC_NO_RECORD=1 "$PYTHON" benchmarks/placement.py \
        --target "cpu,$DEVICE" --out "$OUT/placement.md" --json "$OUT/placement.json" \
        "${QUICK[@]}"
fi

finish
