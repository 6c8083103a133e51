#!/usr/bin/env bash
# A guided look at Seismo's anomaly detection: build, generate a week of a
# daily-seasonal metric with a spike two hours ago and a level shift
# forty minutes ago, import it into ./demo-data, and serve it with the
# example anomaly rules (examples/rules.yml).  Then open the printed URL.
#
#   scripts/demo.sh                 (Ctrl-C stops the server)
#   SEISMO_DEMO_PORT=9300 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target seismo
port=${SEISMO_DEMO_PORT:-9201}
dir=./demo-data
rm -rf "$dir"
csv=$(mktemp --suffix=.csv)
trap 'rm -f "$csv"' EXIT
now=$(date +%s)
awk -v now="$now" 'BEGIN {
  srand(7); print "timestamp,value";
  start = now - 7 * 86400; start -= start % 60;
  for (t = start; t <= now; t += 60) {
    v = 100 + 20 * sin(2 * 3.14159265 * (t % 86400) / 86400) + (rand() - 0.5) * 4;
    if (t > now - 7200 && t <= now - 7200 + 300) v += 45;   # a spike two hours ago
    if (t > now - 2400) v += 30;                           # a level shift 40 minutes ago
    printf "%d,%.3f\n", t, v;
  }
}' > "$csv"
build/seismo import --data-dir "$dir" --metric demo_load --label instance=demo-1 --label job=demo "$csv"
url="http://127.0.0.1:$port"
cat <<MSG

Seismo demo: a week of demo_load is stored. Open
  $url/graph?expr=demo_load&range=6h&band=1                 the series in its baseline band
  $url/graph?expr=anomaly_score(demo_load)&range=6h         its anomaly score (0.5 = the band's edge)
  $url/anomalies                                           the rule, its top series, reports
or on a shell:
  build/seismo query 'anomaly_score(demo_load)' --server $url
  build/seismo report --from -6h --score demo_load --format md --server $url

MSG
exec build/seismo serve --listen "127.0.0.1:$port" --data-dir "$dir" --rules.file examples/rules.yml
