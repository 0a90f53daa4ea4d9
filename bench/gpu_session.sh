#!/usr/bin/env bash
# One GPU session in one command: environment report, kit weights, the gpu-marked tests,
# then bench/gpu.py. Meant for a lent GPU machine whose command runs at most 10 minutes
# and returns at most 8 files from $OUT; it installs nothing.
#
#   DARKNETPY_KIT=$PWD/.kit bash bench/gpu_session.sh
#
# DARKNETPY_KIT: the reference kit (manifest.json, make_weights.py, cfgs, images); default
#   .kit in the repository if it has a manifest.json, else tests/kit.py's ../shared/reference.
# DARKNETPY_KIT_CACHE: where the regenerated weights go (default .cache/kit-weights).
# OUT: the folder for the logs (default .cache/gpu-session).
# TEST_SECONDS, BENCH_SECONDS: time limits of the two steps (default 320 and 180; SIGINT,
#   so pytest and bench/gpu.py still print what they have). BENCH_ARGS: bench/gpu.py's.
#
# Files in $OUT (7): env.txt, weights.log, pytest.log, pytest.xml, bench.md, bench.log, bench.json.
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/.cache/gpu-session}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if [ -z "${DARKNETPY_KIT:-}" ] && [ -f "$REPO/.kit/manifest.json" ]; then
    export DARKNETPY_KIT=$REPO/.kit
fi
export PYTHONUNBUFFERED=1 PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
unset DARKNETPY_GPU_EMULATE DARKNETPY_NO_CUPY CUPY_TF32

{
    date -u
    nvidia-smi || echo "nvidia-smi failed"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv
    PYTHONPATH=$REPO/tests:$PYTHONPATH "$PY" - <<'EOF'
import importlib, platform, sys
print("python", platform.python_version(), sys.executable)
for name in ("numpy", "numba", "cupy", "torch"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as e:
        print(name, "NOT IMPORTABLE:", type(e).__name__, e)
try:
    import cupy
    print("cupy devices:", cupy.cuda.runtime.getDeviceCount(), "runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "driver", cupy.cuda.runtime.driverGetVersion())
except Exception as e:
    print("cupy cannot reach a device:", type(e).__name__, e)
try:
    import torch
    print("torch cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
          "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
except Exception as e:
    print("torch:", type(e).__name__, e)
import kit
print("kit:", kit.KIT, "available" if kit.available() else "MISSING")
EOF
    (git log -1 --oneline 2>/dev/null || echo "no git history here")
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== kit weights"
PYTHONPATH=$REPO/tests:$PYTHONPATH "$PY" - >"$OUT/weights.log" 2>&1 <<'EOF'
import sys, time
import kit
if not kit.available():
    sys.exit(f"{kit.MISSING}: the kit tests and the benchmark need it")
for name in kit.manifest()["make_weights"]["files"]:
    t = time.time()
    path = kit.weights(name)
    print(f"{path} ({time.time() - t:.1f} s)")
EOF
weights_rc=$?
cat "$OUT/weights.log"

echo "== pytest -m gpu"
timeout_opt=()
"$PY" -c "import pytest_timeout" 2>/dev/null && timeout_opt=(--timeout 240)
timeout -s INT -k 30 "${TEST_SECONDS:-320}" "$PY" -m pytest -q -m gpu -rfEs --durations=10 -p no:cacheprovider \
    "${timeout_opt[@]}" --junitxml="$OUT/pytest.xml" tests >"$OUT/pytest.log" 2>&1
test_rc=$?
if [ "$test_rc" = 0 ] && ! tail -n 1 "$OUT/pytest.log" | grep -q passed; then
    echo "no gpu-marked test ran (all skipped: see the reasons below)" | tee -a "$OUT/pytest.log"
    test_rc=5
fi
# the one test of test_gpu.py that needs no GPU but means most where CuPy is installed
"$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py -k without_cupy >>"$OUT/pytest.log" 2>&1
nocupy_rc=$?
tail -n 40 "$OUT/pytest.log"

echo "== bench/gpu.py"
# shellcheck disable=SC2086
timeout -s INT -k 30 "${BENCH_SECONDS:-180}" "$PY" bench/gpu.py ${BENCH_ARGS:-} --json "$OUT/bench.json" \
    >"$OUT/bench.md" 2>"$OUT/bench.log"
bench_rc=$?
tail -5 "$OUT/bench.log"
cat "$OUT/bench.md"
echo
echo "gpu_session: weights rc=$weights_rc, pytest -m gpu rc=$test_rc, no-CuPy test rc=$nocupy_rc, bench rc=$bench_rc"
[ "$weights_rc$test_rc$nocupy_rc$bench_rc" = "0000" ]
