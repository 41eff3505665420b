#!/usr/bin/env bash
# Builds cryo (scripts/setup.sh) and runs every test: unit (GoogleTest), e2e (dump/restore of
# victim and real programs, each in its own PID namespace), style (clang-format). Exits non-zero
# if anything fails. Bounded: ctest is stopped after 18 minutes whatever happens.
#   CRYO_BUILD_DIR=dir        build directory (default ./build)
#   extra arguments           passed to ctest, e.g. -L e2e, -R mem_anon, -E style
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CRYO_BUILD_DIR:-build}

bash scripts/setup.sh

echo "test: running ctest in $build"
status=0
timeout --kill-after=30 1080 \
  ctest --test-dir "$build" --output-on-failure -j2 "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "test: ctest did not finish within 18 minutes"
fi
if [ "$status" -ne 0 ]; then
  echo "test: FAILED (ctest status $status)"
  exit 1
fi
echo "test: all tests passed"
