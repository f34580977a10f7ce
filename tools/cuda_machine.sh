#!/usr/bin/env bash
# The project's GPU checks on a bare CUDA machine without network, in one command.
#
#   tools/cuda_machine.sh wheels DIR                        # 1. where the package index is reachable
#   tools/cuda_machine.sh run [--dry-run] WHEELS [RESULTS]  # 2. on the CUDA machine, from the checkout
#
# 1 (x86-64, any Python, after `make test` made .venv): downloads into DIR the cp312 wheels of the
#   ROS 2 Jazzy closure this project's .venv holds (every ros-*, colcon-*, catkin-pkg, empy,
#   lark-parser, distlib, docutils, argcomplete, notify2 at the same versions; empy has no wheel, so
#   one is built) and setuptools 79.0.1 for colcon: about 140 wheels, 45 MB. Copy DIR and the
#   checkout to the CUDA machine. Its own torch and transformers are used (5.17 and 5.24 both run).
# 2 uses the machine's Python 3.12 with CUDA torch (PY, default python3): installs the wheels into
#   PREFIX (default /tmp/auras_ros2) without network, points the ROS CMake files at this Python's
#   headers, builds the interfaces with colcon into WORK (default /tmp/auras_cuda; the checkout is not
#   touched), checks that rclpy and auras_ros.msg import, then runs, each under a time limit and
#   writing its raw output to RESULTS (default docs/results/cuda_<date>; eight files):
#     setup.log         the set-up steps and every step's start, end and exit status
#     pytest_cuda.log   the CUDA tests (`pytest -m cuda`: they skip on machines without a GPU)
#     gpu_models.*      python -m auras_ros.bench.gpu_models --nodes $BENCH_ARGS (every default executor,
#                       both families, core and through the composed ROS graph)
#     gpu_profile.*     python -m auras_ros.bench.gpu_profile (where an AR frame goes; FP8's cost)
#     gpu_models_compiled.* the same for the AR agent with its merged forward compiled, SEQ and Auras
#   STEPS (default "tests models profile compiled") picks which of the four run; BENCH_ARGS and
#   PROFILE_ARGS add arguments to gpu_models and gpu_profile.
#   If the ROS set-up fails, the benchmarks still run on the core (without --nodes) and setup.log says why.
#   --dry-run checks the inputs and prints every step without running it (tested on the CPU).
set -uo pipefail

die() { echo "cuda_machine: $*" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

wheels() {
  local dir=${1:?usage: tools/cuda_machine.sh wheels DIR}
  [ -x "$ROOT/.venv/bin/python" ] || die "no $ROOT/.venv: run 'make test' first (its versions are the ones downloaded)"
  mkdir -p "$dir"
  "$ROOT/.venv/bin/python" -m pip freeze |
    grep -iE '^(ros-|colcon-|catkin-pkg|empy|lark-parser|distlib|docutils|argcomplete|notify2)' >"$dir/want.txt"
  echo setuptools==79.0.1 >>"$dir/want.txt"
  local req
  while read -r req; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$dir" "$req" 2>/dev/null || python3 -m pip wheel -q --no-deps -w "$dir" "$req" ||
      die "no cp312 wheel for $req"
  done <"$dir/want.txt"
  echo "cuda_machine: $(ls "$dir"/*.whl | wc -l) wheels, $(du -sh "$dir" | cut -f1) in $dir"
}

run() {
  local dry=0
  if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
  local whl=${1:?usage: tools/cuda_machine.sh run [--dry-run] WHEELS [RESULTS]}
  local results=${2:-$ROOT/docs/results/cuda_$(date +%Y-%m-%d)}
  local py=${PY:-python3} prefix=${PREFIX:-/tmp/auras_ros2} work=${WORK:-/tmp/auras_cuda}
  [ -d "$whl" ] || die "wheel folder '$whl' does not exist: make it with 'tools/cuda_machine.sh wheels DIR' where the package index is reachable"
  compgen -G "$whl/ros_rclpy-*-cp312-*.whl" >/dev/null ||
    die "wheel folder '$whl' has no cp312 ros_rclpy wheel: expected the folder 'tools/cuda_machine.sh wheels' makes"
  command -v "$py" >/dev/null || die "no Python '$py': set PY to the Python that holds CUDA torch"
  local facts
  facts=$("$py" -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, "cuda" if torch.cuda.is_available() else "no-cuda")' 2>&1) ||
    die "'$py' cannot import torch: $facts"
  local log=/dev/null t0=$SECONDS
  if [ $dry = 0 ]; then mkdir -p "$results" && log=$results/setup.log; fi
  say() { echo "[$((SECONDS - t0))s] $*" | tee -a "$log"; }
  want() { [[ " ${STEPS:-tests models profile compiled} " == *" $1 "* ]]; }
  step() {  # step NAME LIMIT_S OUTPUT COMMAND...: run (or print) one step, its output to OUTPUT
    local name=$1 limit=$2 out=$3; shift 3
    if [ $dry = 1 ]; then echo "[dry-run] $name (limit ${limit}s, output $out): $*"; return 0; fi
    say "$name: start"
    PYTHONUNBUFFERED=1 timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$out"
    local rc=${PIPESTATUS[0]}
    say "$name: rc=$rc"
    return "$rc"
  }
  say "python $facts; wheels $(ls "$whl"/*.whl | wc -l) in $whl; results $results"
  local pyver pyinc npinc site
  pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  npinc=$("$py" -c 'import numpy; print(numpy.get_include())')
  site=$prefix/lib/python$pyver/site-packages
  [ "$pyver" = 3.12 ] || say "warning: the wheels are cp312, this Python is $pyver"
  step "install ROS 2 wheels" 300 "$log" \
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --prefix "$prefix" "$whl"/*.whl
  local ros_ok=$?
  if [ $dry = 0 ] && [ $ros_ok = 0 ]; then
    # The wheels' CMake files name the include folders of the Python they were built with.
    { grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+' "$prefix/share" --include='*.cmake' || true; } | xargs -r sed -i -E \
      "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$pyinc#g; s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$npinc#g"
    # From PYTHONPATH the wheels' .pth bootstrapper does not run: their libraries go on LD_LIBRARY_PATH.
    export PATH=$prefix/bin:$PATH AMENT_PREFIX_PATH=$prefix CMAKE_PREFIX_PATH=$prefix
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
    export LD_LIBRARY_PATH=$prefix/lib:$(ls -d "$site"/ros_*.libs 2>/dev/null | tr '\n' ':')${LD_LIBRARY_PATH:-}
  fi
  if [ $ros_ok = 0 ]; then
    step "colcon build" 300 "$log" colcon --log-base "$work/log" build --paths "$ROOT" \
      --build-base "$work/build" --install-base "$work/install" --cmake-args -DPython3_EXECUTABLE="$("$py" -c 'import sys; print(sys.executable)')" -DBUILD_TESTING=OFF
    ros_ok=$?
  fi
  if [ $dry = 0 ] && [ $ros_ok = 0 ]; then
    set +u; . "$work/install/setup.bash"; set -u
    "$py" -c 'import rclpy, auras_ros.msg; rclpy.init(); rclpy.create_node("probe"); rclpy.shutdown()' >>"$log" 2>&1 || ros_ok=1
  fi
  export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
  local nodes=--nodes
  if [ $ros_ok != 0 ]; then nodes=""; say "ROS 2 set-up failed (see above in setup.log): benchmarks on the core only"; fi
  local cuda_tests
  cuda_tests=$(cd "$ROOT" && grep -rlE 'cuda_test|requires_cuda' test --include='test_*.py' | sort | tr '\n' ' ')
  want tests && (cd "$ROOT" && step "CUDA tests" 420 "$results/pytest_cuda.log" "$py" -m pytest -p no:cacheprovider -m cuda -rs -q $cuda_tests)
  # shellcheck disable=SC2086 # BENCH_ARGS is a list of arguments
  want models && (cd "$ROOT" && step "gpu_models" 480 "$results/gpu_models.txt" "$py" -m auras_ros.bench.gpu_models $nodes \
    --json "$results/gpu_models.json" ${BENCH_ARGS:-})
  want profile && (cd "$ROOT" && step "gpu_profile" 420 "$results/gpu_profile.txt" "$py" -m auras_ros.bench.gpu_profile \
    --json "$results/gpu_profile.json" ${PROFILE_ARGS:-})
  # shellcheck disable=SC2086
  want compiled && (cd "$ROOT" && step "gpu_models compiled" 300 "$results/gpu_models_compiled.txt" "$py" -m auras_ros.bench.gpu_models $nodes \
    --compile --families ar --executors seq auras:1+3:f-1:a0 --json "$results/gpu_models_compiled.json" ${BENCH_ARGS:-})
  [ $dry = 1 ] || say "done: raw output in $results"
}

case "${1:-}" in
  wheels) shift; wheels "$@" ;;
  run) shift; run "$@" ;;
  *) die "usage: tools/cuda_machine.sh wheels DIR | run [--dry-run] WHEELS [RESULTS]" ;;
esac
