#!/usr/bin/env bash
# ScoreFeatures side by side with the Python reference scorer (issue 4), alternating runs with
# the same h2load parameters (/work/shared/bench/load.sh: N requests, -c C -m M, one thread).
#
#   bench/score_features_side_by_side.sh [RUNS] [N] [C] [M]
#
# Expects, already running and checked with a real client:
#   the Python server on 127.0.0.1:50061 with its body in $BENCH_DIR/body.bin (make_body.py);
#   vitals-server on 127.0.0.1:50051 with bodies $BENCH_DIR/sf_features.bin and
#   $BENCH_DIR/sf_input.bin (bench/score_features_body.py, which also checks them).
set -euo pipefail
B=${BENCH_DIR:-/tmp/vitals-bench}
LOAD=${LOAD:-/work/shared/bench/load.sh}
RUNS=${1:-3}; N=${2:-50000}; C=${3:-16}; M=${4:-16}
for r in $(seq 1 "$RUNS"); do
  for side in python vitals-features vitals-model_input; do
    case $side in
      python) url=http://127.0.0.1:50061/churn.v1.ChurnScorer/Score; body=$B/body.bin ;;
      vitals-features) url=http://127.0.0.1:50051/vitals.v1.EvaluationService/ScoreFeatures; body=$B/sf_features.bin ;;
      vitals-model_input) url=http://127.0.0.1:50051/vitals.v1.EvaluationService/ScoreFeatures; body=$B/sf_input.bin ;;
    esac
    echo "=== run $r $side"
    "$LOAD" "$url" "$body" "$N" "$C" "$M" 2>&1 | grep -E "^finished in|^requests:|^status codes:|per-request log|latency ms"
  done
done
