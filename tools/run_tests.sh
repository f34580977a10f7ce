#!/usr/bin/env bash
# `make test` inside the environment tools/setup_env.sh prepared: pytest over test/, with Fast DDS
# shared-memory segments of dead processes (e.g. a killed earlier run) cleaned before and after.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fastdds shm clean >/dev/null
python -m pytest test "$@"
rc=$?
fastdds shm clean >/dev/null
exit $rc
