#!/usr/bin/env bash
# Build Seismo (Release) and run `seismo serve` on ./data (or $SEISMO_DATA).
# Extra arguments go to `seismo serve`, e.g. scripts/serve.sh --listen 127.0.0.1:9300
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target seismo
exec build/seismo serve --data-dir "${SEISMO_DATA:-./data}" "$@"
