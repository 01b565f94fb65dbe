#!/usr/bin/env bash
# EvaluateCustomer with 1,000 writes/s mixed in, with and without a read replica, and
# writes alone with and without a training run reading the replica (issue 18's targets:
# p99 under 5 ms at 16 callers over 100,000 customers with the replica; training slows
# writes by no more than 10%).
#
# Builds a scratch primary and a streaming standby on free ports (initdb +
# pg_basebackup -R -X stream -C -S slot, as the tests do), generates 100,000 customers
# into the primary, trains, then runs the release binaries. Needs root or the postgres
# user, and:
#   cargo build --release --bins -p vitals-server -p vitals-trainer
#   cargo build --release -p vitals-server --example evaluate_load
#
#   bench/replica_load.sh [CUSTOMERS] [SECONDS] [WRITES_PER_SEC]
set -euo pipefail
cd "$(dirname "$0")/.."
CUSTOMERS=${1:-100000}
SECONDS_EACH=${2:-20}
WRITES=${3:-1000}
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
REL=target/release
LOAD=$REL/examples/evaluate_load
W=$(mktemp -d /tmp/vitals-replica-bench.XXXXXX)
chown postgres "$W"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PP=$(port); SP=$(port); API=$(port)
cleanup() {
  kill "${SERVER:-}" "${TRAIN:-}" 2>/dev/null || true
  as_pg "$BIN/pg_ctl" -D "$W/standby" -m immediate stop >/dev/null 2>&1 || true
  as_pg "$BIN/pg_ctl" -D "$W/primary" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

as_pg "$BIN/initdb" -D "$W/primary" -A trust -U postgres >/dev/null
# The primary as this machine's default cluster is configured, plus replication.
printf "port=%s\nlisten_addresses='127.0.0.1'\nunix_socket_directories='%s'\nwal_level=replica\nmax_wal_senders=5\nshared_buffers=128MB\nmax_connections=200\n" \
  "$PP" "$W" >> "$W/primary/postgresql.conf"
as_pg "$BIN/pg_ctl" -D "$W/primary" -l "$W/primary.log" -w start >/dev/null
PRIMARY="postgres://postgres@127.0.0.1:$PP/postgres"
date -u +%T
echo "generating $CUSTOMERS customers into the primary"
$REL/vitals-trainer generate --customers "$CUSTOMERS" --seed 1 --database-url "$PRIMARY" --data-dir "$W/data" >/dev/null
as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p "$PP" -U postgres -D "$W/standby" -R -X stream -C -S bench -c fast
printf "port=%s\n" "$SP" >> "$W/standby/postgresql.conf"
as_pg "$BIN/pg_ctl" -D "$W/standby" -l "$W/standby.log" -w start >/dev/null
STANDBY="postgres://postgres@127.0.0.1:$SP/postgres"
RUST_LOG=warn $REL/vitals-trainer train --database-url "$PRIMARY" --registry "$W/models" --activate --data-dir "$W/data" >/dev/null

serve() {
  RUST_LOG=warn VITALS_LISTEN="127.0.0.1:$API" $REL/vitals-server --database-url "$PRIMARY" \
    --registry "$W/models" --data-dir "$W/data" "$@" > "$W/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do
    (echo > "/dev/tcp/127.0.0.1/$API") 2>/dev/null && break; sleep 0.1
  done
  sleep 8 # the history cache warms
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }

for setup in "primary only" "with the read replica"; do
  if [ "$setup" = "primary only" ]; then serve; else serve --read-database-url "$STANDBY"; fi
  echo "== EvaluateCustomer, 16 callers, $WRITES writes/s, $setup"
  $LOAD --addr "http://127.0.0.1:$API" --concurrency 16 --duration-secs "$SECONDS_EACH" --writes-per-sec "$WRITES" \
    | grep -E "requests/s|latency|RecordEvents|errors by code"
  stop
done

serve --read-database-url "$STANDBY"
for training in "no training" "training on the replica"; do
  if [ "$training" != "no training" ]; then
    ( RUST_LOG=warn $REL/vitals-trainer train --database-url "$PRIMARY" --read-database-url "$STANDBY" \
        --registry "$W/models" --data-dir "$W/data" >/dev/null 2>&1 ) &
    TRAIN=$!
    sleep 1
  fi
  date -u +%T
  echo "== writes at $WRITES/s (one slow reader), $training"
  $LOAD --addr "http://127.0.0.1:$API" --concurrency 1 --rate 20 --duration-secs "$SECONDS_EACH" --writes-per-sec "$WRITES" \
    | grep -E "RecordEvents"
  if [ -n "${TRAIN:-}" ]; then wait "$TRAIN" || true; TRAIN=; fi
done
stop
echo "machine: $(nproc) cores, $(grep 'model name' /proc/cpuinfo | head -1 | cut -d: -f2 | xargs); $(date -u +%F)"
