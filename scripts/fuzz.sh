#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each one.
#
#   scripts/fuzz.sh --smoke        every target for 20 s (CI)
#   scripts/fuzz.sh [SECONDS]      every target for SECONDS (default 300)
#   scripts/fuzz.sh SECONDS NAME   one target
#
# New inputs that raise coverage are written to build-fuzz/corpus/<name>;
# copy interesting ones into tests/fuzz/corpus/<name>/ to keep them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
secs=300
if [ "${1:-}" = "--smoke" ]; then secs=20; shift; elif [ -n "${1:-}" ]; then secs=$1; shift; fi
only=${1:-}
dir=build-fuzz
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DSEISMO_SANITIZE=ON -DSEISMO_FUZZ=ON \
      -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build "$dir" -j"$(nproc)"
status=0
for bin in "$dir"/tests/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin"); name=${name#fuzz_}
  case "$name" in *_replay) continue ;; esac
  [ -z "$only" ] || [ "$only" = "$name" ] || continue
  mkdir -p "$dir/corpus/$name"
  echo "fuzz: $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       "$dir/corpus/$name" "tests/fuzz/corpus/$name" > "$dir/fuzz_$name.log" 2>&1; then
    echo "fuzz: $name FAILED; see $dir/fuzz_$name.log" >&2
    tail -40 "$dir/fuzz_$name.log" >&2
    status=1
  fi
done
exit $status
