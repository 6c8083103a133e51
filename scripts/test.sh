#!/usr/bin/env bash
# Build Seismo and run every test with ctest.
#
#   scripts/test.sh              the full default suite (build dir: build-test)
#   scripts/test.sh --sanitize   the unit tests under ASan+UBSan (build-asan)
#
# Extra arguments after those go to ctest (e.g. -R chunk, -L tsdb).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

mode=default
if [ "${1:-}" = "--sanitize" ]; then mode=sanitize; shift; fi
jobs=$(nproc)

if [ "$mode" = sanitize ]; then
  dir=build-asan
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DSEISMO_SANITIZE=ON -DSEISMO_WERROR=ON \
        -DCMAKE_C_COMPILER="${CC:-gcc}" >/dev/null
  cmake --build "$dir" -j"$jobs"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # The slow label (crash loops, real-Prometheus runs) is left to the default build.
  exec ctest --test-dir "$dir" --output-on-failure -j"$jobs" -LE slow "$@"
fi

dir=build-test
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEISMO_WERROR=ON >/dev/null
cmake --build "$dir" -j"$jobs"
exec ctest --test-dir "$dir" --output-on-failure -j"$jobs" "$@"
