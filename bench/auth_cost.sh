#!/usr/bin/env bash
# Authentication cost on EvaluateCustomer, measured on the shipped binary with keys really
# in force: the same server alternately without keys (`open`) and with `--api-keys` holding
# one reader key that every call sends (`auth`). Before each `auth` run, a call without the
# key must be refused (UNAUTHENTICATED), or the run is void.
#
#   bench/auth_cost.sh [SERVER_BIN] [LOAD_BIN]
#   env: U (database URL), REG (registry), RUNS (3), REQUESTS (150000), PORT (50053),
#        MODES ("open auth"; "open" alone measures a build without keys)
set -euo pipefail
BIN=${1:-target/release/vitals-server}
LOAD=${2:-target/release/examples/evaluate_load}
U=${U:-postgres://postgres@127.0.0.1:5432/vitals_eval_bench}
REG=${REG:-/tmp/vitals-eval-reg}
RUNS=${RUNS:-3}
REQUESTS=${REQUESTS:-150000}
PORT=${PORT:-50053}
D=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$D"' EXIT

made=$("$BIN" new-key --name bench --roles reader)
KEY=$(printf '%s\n' "$made" | sed -n 's/.*: \(vk_[0-9a-f]*\)$/\1/p')
printf '%s\n' "$made" | tail -1 > "$D/keys.txt"

serve() {
  RUST_LOG=warn "$BIN" --database-url "$U" --registry "$REG" --listen "127.0.0.1:$PORT" \
    --no-migrate "$@" 2>>"$D/server.log" &
  SERVER=$!
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not come up: $(cat "$D/server.log")" >&2
  exit 1
}

stop() { kill "$SERVER"; wait "$SERVER" || true; }

# The server's CPU time so far (user + system), in clock ticks: less sensitive than
# requests/s to what else runs on a shared machine.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }

for run in $(seq 1 "$RUNS"); do
  for mode in ${MODES:-open auth}; do
    if [ "$mode" = auth ]; then
      serve --api-keys "$D/keys.txt"
      if "$LOAD" --addr "http://127.0.0.1:$PORT" --requests 1 --warmup-secs 0 >"$D/refused.txt" 2>&1; then
        echo "VOID: a call without the key was served:" >&2; cat "$D/refused.txt" >&2; exit 1
      fi
      grep -q "missing .authorization" "$D/refused.txt" || { cat "$D/refused.txt" >&2; exit 1; }
      set -- --api-key "$KEY"
    else
      serve
      set --
    fi
    sleep 3 # the history cache warms at start
    before=$(cpu_ticks)
    out=$("$LOAD" --addr "http://127.0.0.1:$PORT" --concurrency 16 --requests "$REQUESTS" "$@" 2>&1) || { echo "$out" | head -20 >&2; exit 1; }
    after=$(cpu_ticks)
    calls=$(printf '%s\n' "$out" | sed -n 's/^EvaluateCustomer: \([0-9]*\) ok, \([0-9]*\) errors.*/\1 \2/p' | awk '{print $1 + $2}')
    # Listing every customer first and the warm-up are in the CPU time too: the same in
    # both modes, so the difference is the authentication's.
    us=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$calls" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
    echo "run $run $mode: server CPU ${us} us/call; $(printf '%s\n' "$out" | grep -E '^EvaluateCustomer|^latency|^errors by code' | tr '\n' ' ')"
    stop
  done
done
