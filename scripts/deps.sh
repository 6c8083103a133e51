#!/usr/bin/env bash
# Install the Debian 12 packages Seismo needs, only those missing.
#
#   scripts/deps.sh build   compiler, CMake and the libraries (serve needs these)
#   scripts/deps.sh test    build + what the tests drive: clang/libFuzzer,
#                           Prometheus 2.42 (a real remote_write client and the
#                           PromQL reference), chromium for the UI test
#   scripts/deps.sh bench   test + scikit-learn for the ML comparison
#
# Runs apt-get as root (or through sudo).  Safe to run again: it does
# nothing when everything is installed.
set -euo pipefail

profile=${1:-build}
build_pkgs=(gcc make cmake pkg-config libjemalloc-dev libopenblas-dev liblapacke-dev
            liburing-dev libprotobuf-c-dev protobuf-c-compiler libsnappy-dev libpcre2-dev
            libmicrohttpd-dev libyaml-dev libcurl4-openssl-dev zlib1g-dev tzdata libjs-dygraphs)
test_pkgs=(clang libclang-rt-14-dev prometheus curl python3 python3-jsonschema chromium)
bench_pkgs=(python3-sklearn python3-numpy hyperfine)

case "$profile" in
  build) pkgs=("${build_pkgs[@]}") ;;
  test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# prometheus's package starts a service; we only need its binaries.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
if [ -x /usr/bin/prometheus ] && command -v systemctl >/dev/null 2>&1; then
  $sudo systemctl stop prometheus prometheus-node-exporter >/dev/null 2>&1 || true
fi
