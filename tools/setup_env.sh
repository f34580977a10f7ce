#!/usr/bin/env bash
# Sets up everything `make run` and `make test` need, then runs the given command inside it.
#   tools/setup_env.sh [COMMAND [ARGS...]]
# Steps, each skipped when a stamp says its inputs did not change:
#   1. .venv with requirements.txt (+ requirements-nodeps.txt with --no-deps), and the fix for the
#      /opt/python include paths baked into the ROS wheels' CMake files;
#   2. `colcon build` of this package (interfaces, launchers, launch/ and config/) into install/.
# The command then runs with the venv active, install/ sourced, and the source tree first on
# PYTHONPATH, so Python edits need no rebuild.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=$ROOT/.venv
STAMPS=$ROOT/.stamps
PY_WANT=3.11

die() { echo "setup_env: $*" >&2; exit 1; }
say() { echo "setup_env: $*" >&2; }

# Hash of file contents plus names, so renames and new files count as changes.
inputs_hash() {
  find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

check_python() {
  local py=${PYTHON:-python$PY_WANT}
  command -v "$py" >/dev/null ||
    die "Python $PY_WANT not found ('$py' is not on PATH): install it (Debian: apt install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"
  local ver
  ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$ver" = "$PY_WANT" ] ||
    die "'$py' is Python $ver but the ROS 2 Jazzy wheels pinned here need Python $PY_WANT: set PYTHON=/path/to/python$PY_WANT"
  "$py" -c 'import venv, ensurepip' 2>/dev/null ||
    die "'$py' cannot create virtual environments: install the venv module (Debian: apt install python3.11-venv)"
  PYTHON_BIN=$py
}

check_build_tools() {
  command -v cmake >/dev/null || die "cmake not found: install CMake 3.16 or newer (Debian: apt install cmake)"
  local ver
  ver=$(cmake --version | sed -n 's/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')
  [ "$(printf '%s\n' 3.16 "$ver" | sort -V | head -n1)" = 3.16 ] ||
    die "cmake $ver is too old: need CMake 3.16 or newer"
  command -v "${CC:-cc}" >/dev/null || die "no C compiler ('${CC:-cc}' not found): install one (Debian: apt install build-essential)"
  command -v "${CXX:-c++}" >/dev/null || die "no C++ compiler ('${CXX:-c++}' not found): install one (Debian: apt install build-essential)"
  command -v make >/dev/null || die "make not found: install it (Debian: apt install build-essential)"
}

check_index_reachable() {
  local url=${PIP_INDEX_URL:-$("$PYTHON_BIN" -m pip config get global.index-url 2>/dev/null || echo https://pypi.org/simple)}
  "$PYTHON_BIN" - "$url" 2>/dev/null <<'EOF' || die "cannot reach the package index $url: check the network or proxy (or set PIP_INDEX_URL to a reachable mirror)"
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/pip/", timeout=20).read(1)
EOF
}

# The wheels were built under manylinux's /opt/python/cp3XX; their exported CMake targets name
# include dirs there that do not exist here, which fails `colcon build` of any msg package.
fix_wheel_cmake_paths() {
  local pyinc npinc
  pyinc=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  npinc=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
  # grep finds nothing once every file is fixed (exit 1): that is success, not a failed set-up.
  { grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+' "$VENV/share" --include='*.cmake' || true; } | xargs -r sed -i -E \
    "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${pyinc}#g; s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#${npinc}#g"
}

# Quiet pip, minus one warning per package that a pip config listing local file:// indexes
# without that package produces (as on the machines this project is developed on).
pip_install() {
  "$VENV/bin/python" -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

setup_venv() {
  local want have=""
  want=$(inputs_hash requirements.txt requirements-nodeps.txt)
  [ -f "$STAMPS/venv" ] && have=$(cat "$STAMPS/venv")
  if [ "$want" = "$have" ] && [ -x "$VENV/bin/python" ]; then
    return
  fi
  check_python
  check_index_reachable
  if ! "$VENV/bin/python" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$PY_WANT')" 2>/dev/null; then
    say "creating $VENV"
    rm -rf "$VENV"
    "$PYTHON_BIN" -m venv "$VENV"
  fi
  # colcon must not crawl into the venv: its share/ holds a package.xml of every ROS package.
  touch "$VENV/COLCON_IGNORE"
  say "installing requirements.txt into .venv (first time: a few minutes)"
  pip_install -r requirements.txt || die "pip install -r requirements.txt failed (see above)"
  pip_install --no-deps -r requirements-nodeps.txt ||
    die "pip install --no-deps -r requirements-nodeps.txt failed (see above)"
  fix_wheel_cmake_paths
  echo "$want" > "$STAMPS/venv"
}

activate() {
  export VIRTUAL_ENV=$VENV
  export PATH=$VENV/bin:$PATH
  # CMake finds ROS packages, and rosidl its typesupports, through these; the wheels do not set them.
  export AMENT_PREFIX_PATH=$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
  export CMAKE_PREFIX_PATH=$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
}

build_package() {
  local want have=""
  want=$(echo "$(cat "$STAMPS/venv")" "$(inputs_hash msg CMakeLists.txt package.xml setup.cfg launch config)" | sha256sum | cut -d' ' -f1)
  [ -f "$STAMPS/build" ] && have=$(cat "$STAMPS/build")
  if [ "$want" = "$have" ] && [ -f install/setup.bash ]; then
    return
  fi
  check_build_tools
  say "colcon build (interfaces, node launchers, launch/, config/)"
  colcon build --paths . --event-handlers console_cohesion+ >"$STAMPS/colcon_build.log" 2>&1 || {
    tail -n 60 "$STAMPS/colcon_build.log" >&2
    die "colcon build failed; the last lines are above, the full log is .stamps/colcon_build.log"
  }
  echo "$want" > "$STAMPS/build"
}

mkdir -p "$STAMPS"
# One set-up at a time per checkout (make run and make test may start together).
exec 9>"$STAMPS/setup.lock"
flock 9
setup_venv
activate
build_package
exec 9>&-

set +u
# shellcheck disable=SC1091
. install/setup.bash
set -u
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
[ $# -eq 0 ] || exec "$@"
