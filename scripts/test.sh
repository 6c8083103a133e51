#!/usr/bin/env bash
# Build Seismo and run every test with ctest.
#
#   scripts/test.sh              the full default suite (build dir: build-test)
#   scripts/test.sh --sanitize   the unit tests under ASan+UBSan (build-asan)
#   scripts/test.sh --seeds N    the default suite N more times, under
#                                SEISMO_TEST_SEED=1..N (the seeded tests'
#                                random data; the default run uses a fixed seed)
#
# Extra arguments after those go to ctest (e.g. -R chunk, -L tsdb).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

mode=default
if [ "${1:-}" = "--sanitize" ]; then mode=sanitize; shift; fi
if [ "${1:-}" = "--seeds" ]; then
  mode=seeds seeds=${2:-}
  case "$seeds" in '' | *[!0-9]* | 0) echo "test.sh: --seeds needs a count of 1 or more" >&2; exit 2 ;; esac
  shift 2
fi
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
if [ "$mode" = seeds ]; then
  failed=""
  for s in $(seq 1 "$seeds"); do
    echo "== SEISMO_TEST_SEED=$s"
    SEISMO_TEST_SEED=$s ctest --test-dir "$dir" --output-on-failure -j"$jobs" "$@" || failed="$failed $s"
  done
  if [ -n "$failed" ]; then echo "test.sh: failures under seeds:$failed" >&2; exit 1; fi
  echo "test.sh: seeds 1..$seeds all passed"
  exit 0
fi
exec ctest --test-dir "$dir" --output-on-failure -j"$jobs" "$@"
