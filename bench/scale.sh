#!/usr/bin/env bash
# How time and peak memory grow with the number of customers (issue 19): for each size,
# a generated database (made once, kept as vitals_scale_<N>), then train, score (CSV),
# score --store (the refresh, in the trainer), and a server: its warm-up, RefreshEvaluations,
# portfolio metrics for a year, and EvaluateCustomer at 16 callers. One line per measure
# goes to bench/results/scale.csv (size, measure, seconds, peak RSS in KiB, detail);
# bench/plot_scale.py draws them.
#
#   cargo build --release --bins --examples
#   bench/scale.sh 10000 100000 1000000
#
# Release builds, PostgreSQL on 127.0.0.1:5432 as installed (default settings). Every step
# runs alone on the machine; the load generator shares it with the server in the last step.
# The server holds every history (--history-cache-mib, 3 GiB unless CACHE_MIB says).
set -euo pipefail
cd "$(dirname "$0")/.."
REL=target/release
T=$REL/vitals-trainer
OUT=bench/results/scale.csv
mkdir -p bench/results
[ -f "$OUT" ] || echo "customers,measure,seconds,peak_rss_kib,detail" > "$OUT"
API=127.0.0.1:50071
# A year of portfolio metrics, ending at the start of this month.
END=$(date -u +%Y-%m-01)
START=$(date -u -d "$END -1 year" +%Y-%m-%d)

timed() { # timed N MEASURE DETAIL CMD...: wall seconds and peak RSS of CMD
  local n=$1 measure=$2 detail=$3; shift 3
  /usr/bin/time -f "%e %M" -o /tmp/scale.time "$@" > /tmp/scale.out 2> /tmp/scale.err || {
    cat /tmp/scale.err >&2; return 1; }
  read -r secs rss < /tmp/scale.time
  echo "$n,$measure,$secs,$rss,$detail" | tee -a "$OUT"
}

for N in "$@"; do
  DB=vitals_scale_$N
  U=postgres://postgres@127.0.0.1:5432/$DB
  W=/tmp/vitals-scale-$N
  mkdir -p "$W"
  if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" postgres | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB" postgres
    timed "$N" generate "" $T --database-url "$U" --data-dir "$W" generate --customers "$N" --seed 1
    timed "$N" cluster "" $T --database-url "$U" --data-dir "$W" cluster
    psql -h 127.0.0.1 -U postgres -qc "VACUUM ANALYZE" "$DB"
  fi
  EVENTS=$(psql -h 127.0.0.1 -U postgres -tAc "SELECT count(*) FROM events" "$DB")
  rm -rf "$W/models"
  RUST_LOG=warn timed "$N" train "events=$EVENTS" $T --database-url "$U" --data-dir "$W" --registry "$W/models" train --activate
  RUST_LOG=warn timed "$N" score "" $T --database-url "$U" --data-dir "$W" --registry "$W/models" score --out "$W/scores.csv"
  RUST_LOG=warn timed "$N" score_store "" $T --database-url "$U" --data-dir "$W" --registry "$W/models" score --store

  RUST_LOG=warn,vitals_app::histories=info VITALS_LISTEN=$API $REL/vitals-server --database-url "$U" \
    --registry "$W/models" --data-dir "$W" --history-cache-mib "${CACHE_MIB:-3072}" > "$W/server.log" 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 1 600); do
    grep -q "history cache warmed" "$W/server.log" && break; sleep 0.5
  done
  WARM=$(sed 's/\x1b\[[0-9;]*m//g' "$W/server.log" | grep -o 'customers=[0-9]* events=[0-9]* seconds=[0-9.]* mib=[0-9]*' | tail -1)
  RSS=$(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)
  echo "$N,server_warm,$(echo "$WARM" | sed 's/.*seconds=\([0-9.]*\).*/\1/'),$RSS,$WARM" | tee -a "$OUT"

  $REL/examples/evaluate_load --addr "http://$API" --refresh > "$W/refresh.txt"
  SECS=$(grep -o 'server [0-9.]* s' "$W/refresh.txt" | tail -1 | grep -o '[0-9.]*')
  echo "$N,refresh_server,$SECS,$(awk '/VmHWM/ {print $2}' /proc/$SERVER/status),server peak so far" | tee -a "$OUT"

  $REL/examples/portfolio_load --addr "http://$API" --start "$START" --end "$END" --repeat "$([ "$N" -ge 1000000 ] && echo 1 || echo 3)" > "$W/portfolio.txt"
  MED=$(awk '$1=="all" && $2=="period" {print $5}' "$W/portfolio.txt")
  WORST=$(awk 'NR>1 {if ($6>m) m=$6} END {print m}' "$W/portfolio.txt")
  echo "$N,portfolio_year,$(echo "$MED/1000" | bc -l | cut -c1-6),$(awk '/VmHWM/ {print $2}' /proc/$SERVER/status),worst grouping max ${WORST} ms" | tee -a "$OUT"

  $REL/examples/evaluate_load --addr "http://$API" --concurrency 16 --duration-secs 20 > "$W/evaluate.txt"
  P99=$(grep -o 'p99=[0-9.]*' "$W/evaluate.txt" | head -1 | cut -d= -f2)
  RATE=$(grep -o '[0-9]* requests/s' "$W/evaluate.txt" | head -1 | cut -d' ' -f1)
  SOURCES=$(grep 'by history source' "$W/evaluate.txt" | sed 's/^answers by history source: //; s/,/;/g')
  echo "$N,evaluate_p99_ms,$P99,$(awk '/VmRSS/ {print $2}' /proc/$SERVER/status),$RATE requests/s $SOURCES" | tee -a "$OUT"
  kill $SERVER; wait $SERVER 2>/dev/null || true
  trap - EXIT
done
