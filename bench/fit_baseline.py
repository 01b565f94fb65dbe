#!/usr/bin/env python3
"""Times scikit-learn on the matrix `fit_bench` wrote: LogisticRegression(lbfgs) and
KMeans(k=8). Usage: fit_baseline.py DIR (see BENCHMARKS.md)."""
import json, sys, time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression

d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/vitals-fit-bench"
rows, cols = map(int, open(f"{d}/shape.txt").read().split())
X = np.fromfile(f"{d}/x.f32", dtype=np.float32).reshape(rows, cols)
y = np.fromfile(f"{d}/y.u8", dtype=np.uint8)
t = time.perf_counter()
lr = LogisticRegression(solver="lbfgs", max_iter=200).fit(X, y)
logistic = time.perf_counter() - t
t = time.perf_counter()
km = KMeans(n_clusters=8, n_init=1, random_state=1).fit(X)
kmeans = time.perf_counter() - t
print(json.dumps({"rows": rows, "cols": cols, "logistic_seconds": round(logistic, 3),
                  "logistic_iterations": int(lr.n_iter_[0]), "kmeans_seconds": round(kmeans, 3),
                  "kmeans_iterations": int(km.n_iter_), "kmeans_inertia": round(float(km.inertia_))}))
