#!/usr/bin/env python3
"""Times lifetimes' BetaGeoFitter on the summaries `clv_bench` wrote (columns frequency,
recency, T in weeks). Usage: clv_lifetimes.py FILE.csv (see BENCHMARKS.md).

The time includes what `fit` does beyond the estimate (lifetimes also computes the Hessian
with autograd); its log-likelihood attribute is on internally rescaled times, so it is not
printed."""
import json, sys, time

import pandas as pd
from lifetimes import BetaGeoFitter

path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/clv-bench.csv"
s = pd.read_csv(path)
t = time.perf_counter()
bgf = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
seconds = time.perf_counter() - t
p = bgf.params_
print(json.dumps({"customers": len(s), "seconds": round(seconds, 3),
                  **{k: round(float(p[k]), 4) for k in ["r", "alpha", "a", "b"]}}))
