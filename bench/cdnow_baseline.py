#!/usr/bin/env python3
"""scikit-learn baselines for CDNOW churn (as-of 1997-10-01, 26-week horizon) on RFM
features, for comparison with `vitals-trainer train` (see BENCHMARKS.md).

Churned = no purchase in (T, T+182 days]; eligible = first purchase before T.
Features: recency (days), frequency (purchases), monetary (total $), tenure (days),
frequency and spend in the last 90 days. Prints ROC-AUC over 5 stratified folds."""
import sys
from collections import defaultdict
from datetime import date

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

path = sys.argv[1] if len(sys.argv) > 1 else "fixtures/datasets/cdnow_sample.txt"
T = date(1997, 10, 1)
H = 182
rows = defaultdict(list)
for line in open(path):
    parts = line.split()
    if len(parts) < 5:
        continue
    d = date(int(parts[2][:4]), int(parts[2][4:6]), int(parts[2][6:]))
    rows[parts[1]].append(((d - T).days, float(parts[4])))
X, y = [], []
for purchases in rows.values():
    before = [(t, m) for t, m in purchases if t < 0]
    if not before:
        continue
    after = [t for t, _ in purchases if 0 < t <= H]
    recency = -max(t for t, _ in before)
    tenure = -min(t for t, _ in before)
    last90 = [(t, m) for t, m in before if t >= -90]
    X.append([recency, len(before), sum(m for _, m in before), tenure,
              len(last90), sum(m for _, m in last90)])
    y.append(0 if after else 1)
X, y = np.log1p(np.array(X)), np.array(y)
cv = StratifiedKFold(5, shuffle=True, random_state=42)
print(f"customers {len(y)}, churn rate {y.mean():.3f}")
for name, model in [
    ("LogisticRegression", make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))),
    ("HistGradientBoosting", HistGradientBoostingClassifier(random_state=42)),
]:
    s = cross_val_score(model, X, y, cv=cv, scoring="roc_auc")
    print(f"{name}: ROC-AUC {s.mean():.4f} ± {s.std():.4f}")
