#!/usr/bin/env bash
# Issue 20's held-back sentiment protocol, on every real corpus in fixtures/comments/:
# the scored comments of 70% of the customers are imported (label 1 -> a 5-star review,
# 0 -> a 1-star review), `vitals-trainer train --text-only --activate` learns from them,
# then the other 30% of the customers' comments arrive through the API as reviews without
# a score, and their sentiment is read back with ListComments and scored (ROC-AUC).
# The split is bench/text/split.py's (seed 7), the same as bench/text/baseline.py's.
#
#   bench/text/heldback.sh            # every corpus; one JSON line each, also appended to
#                                     # bench/results/text_heldback.jsonl
#   bench/text/heldback.sh en_amazon_snippets zh_product_reviews
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q --bin vitals-trainer --bin vitals-server --example comment_heldback
T=target/release/vitals-trainer
S=target/release/vitals-server
C=target/release/examples/comment_heldback
mkdir -p bench/results
corpora=("$@")
if [ ${#corpora[@]} -eq 0 ]; then
  for f in fixtures/comments/*_*.tsv; do
    case "$(basename "$f")" in lexicon_*) ;; *) corpora+=("$(basename "$f" .tsv)") ;; esac
  done
fi
for corpus in "${corpora[@]}"; do
  split="target/text-split/$corpus"
  python3 bench/text/split.py "fixtures/comments/$corpus.tsv" --out "$split" --ids >/dev/null
  work=$(mktemp -d)
  # Every customer of both parts; the train part's comments as scored reviews.
  python3 - "$split" "$work" <<'PY'
import csv, sys
split, work = sys.argv[1], sys.argv[2]
def rows(name):
    with open(f"{split}/{name}.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            c, label, text = line.rstrip("\n").split("\t", 2)
            yield c, label, text
with open(f"{work}/customers.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["external_id", "signup_time"])
    for part in ("train", "test"):
        for c, _, _ in rows(part):
            w.writerow([c, "2025-01-01T00:00:00Z"])
with open(f"{work}/events.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["event_key", "customer_external_id", "time", "kind", "feedback_kind", "score", "comment", "channel"])
    for c, label, text in rows("train"):
        w.writerow(["scored-review", c, "2026-01-01T00:00:00Z", "feedback", "review", "5" if label == "1" else "1", text, "corpus"])
PY
  $T --data-dir "$work" import customers "$work/customers.csv" >/dev/null 2>&1
  $T --data-dir "$work" import events "$work/events.csv" >/dev/null 2>&1
  start=$(date +%s.%N)
  train=$($T --data-dir "$work" train --text-only --activate 2>/dev/null)
  train_s=$(echo "$(date +%s.%N) - $start" | bc)
  port=$((20000 + RANDOM % 20000))
  RUST_LOG=warn $S --data-dir "$work" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    grep -q "listening\|serving" "$work/server.log" 2>/dev/null && break
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  result=$($C --addr "http://127.0.0.1:$port" --test "$split/test.tsv")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  line=$(python3 -c "import json,sys; r=json.loads(sys.argv[1]); r.update(corpus=sys.argv[2], train=sys.argv[3], train_seconds=round(float(sys.argv[4]),2), date=sys.argv[5]); print(json.dumps(r, ensure_ascii=False))" \
    "$result" "$corpus" "$train" "$train_s" "$(date -u +%F)")
  echo "$line"
  echo "$line" >>bench/results/text_heldback.jsonl
  rm -rf "$work"
done
