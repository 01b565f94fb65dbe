#!/usr/bin/env python3
"""Does comment sentiment add to the churn model? (issue 20: "the churn model may use
comment sentiment as a feature where it helps on validation, measured, not assumed")

Out of time: the demo's churn model (trained at its cutoff) scores the generated
retailer's customers at an earlier date with `vitals-trainer score --out`; the label is
churn in the 30 days after it (contractual: a churn time; shop customers: no purchase).
Five-fold cross-validated logistic regression on the model's logit alone, and with the
customer's comment sentiment of the 90 days before (mean, minimum, whether any).

    target/release/vitals-demo --data-dir D run --no-serve
    target/release/vitals-trainer --data-dir D score --as-of 2026-09-20 --out D/scores_t2.csv
    python3 bench/text/comment_churn_value.py D 2026-09-20
"""
import csv, sqlite3, math, datetime, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.metrics import roc_auc_score
DIR, DAY = sys.argv[1], sys.argv[2]
T = int(datetime.datetime.fromisoformat(DAY).replace(tzinfo=datetime.timezone.utc).timestamp() * 1e6)
D = 86400 * 10**6
H = T + 30 * D
db = sqlite3.connect(f"{DIR}/vitals.db")
cust = {r[0]: r[1:] for r in db.execute("select id, contractual, churn_time, external_id from customers")}
buy_after = {r[0] for r in db.execute("select distinct customer_id from transactions where time > ? and time <= ?", (T, H))}
comments = {}
for cid, s, t in db.execute("select customer_id, sentiment, time from comment_analyses where time < ? and time >= ?", (T, T - 90 * D)):
    comments.setdefault(cid, []).append(s)
rows = []
for r in csv.DictReader(open(f"{DIR}/scores_t2.csv")):
    cid = r["customer_id"]; contractual, churn_time, ext = cust[cid]
    if not ext.startswith("gen-"):
        continue
    p = min(max(float(r["churn_probability"]), 1e-6), 1 - 1e-6)
    y = (churn_time is not None and T < churn_time <= H) if contractual else (cid not in buy_after)
    s = comments.get(cid, [])
    rows.append((math.log(p / (1 - p)), np.mean(s) if s else 0.0, float(bool(s)), min(s) if s else 0.0, int(y), contractual))
X = np.array([r[:4] for r in rows]); y = np.array([r[4] for r in rows])
print(f"{len(rows)} generated customers scored out of time, {y.sum()} churned in 30 days, {int(X[:,2].sum())} with comments in the 90 days before")
cv = StratifiedKFold(5, shuffle=True, random_state=7)
for name, cols in [("model alone", [0]), ("model + comment sentiment (mean, min, any)", [0, 1, 2, 3])]:
    p = cross_val_predict(LogisticRegression(max_iter=1000), X[:, cols], y, cv=cv, method="predict_proba")[:, 1]
    print(f"  {name}: ROC-AUC {roc_auc_score(y, p):.4f}")
print(f"  raw model probability: ROC-AUC {roc_auc_score(y, X[:,0]):.4f}")
