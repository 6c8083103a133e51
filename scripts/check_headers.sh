#!/usr/bin/env bash
# Every header compiles alone (STYLE.md rule 14) and has a path-named guard
# SEISMO_<DIR>_<FILE>_H.  Run by ctest as test_headers_standalone.
#   scripts/check_headers.sh [CC]
set -uo pipefail
cd "$(dirname "$0")/.."
cc=${1:-${CC:-cc}}
extra=$(pkg-config --cflags liburing libpcre2-8 libprotobuf-c openblas lapacke libmicrohttpd yaml-0.1 2>/dev/null)
fail=0
count=0
while IFS= read -r h; do
  count=$((count + 1))
  guard="SEISMO_$(echo "${h%.h}" | tr '[:lower:]/.-' '[:upper:]___')_H"
  if ! grep -q "#ifndef $guard" "$h"; then
    echo "FAIL $h: guard should be $guard"
    fail=$((fail + 1))
    continue
  fi
  # shellcheck disable=SC2086
  if ! out=$(printf '#include "%s"\n' "$h" | $cc -std=gnu17 -Wall -Wextra -Werror -fsyntax-only \
             -I. $extra -x c - 2>&1); then
    echo "FAIL $h does not compile alone:"
    echo "$out" | head -5
    fail=$((fail + 1))
  fi
done < <(git ls-files 'tsdb/*.h' 'query/*.h' 'ml/*.h' 'ingest/*.h' 2>/dev/null || find tsdb query ml ingest -name '*.h')
echo "$((count - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
