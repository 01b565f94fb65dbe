#!/usr/bin/env python3
"""Writes synthetic customers.csv and events.csv (transactions, payments, feedback,
interactions) for import benchmarks: `gen_history.py OUT_DIR CUSTOMERS EVENTS [SEED]`."""
import csv, os, random, sys

out, n_customers, n_events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 7)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "customers.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["external_id", "region", "acquisition_channel", "contractual", "signup_time", "plan", "monthly_charge"])
    for i in range(n_customers):
        w.writerow([f"b{i}", rng.choice(["EU", "US", "APAC"]), rng.choice(["web", "store", "partner"]),
                    rng.choice(["true", "false"]), f"2022-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    rng.choice(["basic", "plus", "pro"]), round(rng.uniform(5, 120), 2)])
cols = ["event_key", "customer_external_id", "time", "kind", "amount_minor", "currency", "quantity",
        "category", "channel", "invoice_id", "due_time", "paid_time", "feedback_kind", "score",
        "interaction_kind", "severity", "ticket_id"]
with open(os.path.join(out, "events.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(cols)
    for i in range(n_events):
        c = rng.randrange(n_customers)
        day = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        r = rng.random()
        row = dict.fromkeys(cols, "")
        row.update(event_key=f"e{i}", customer_external_id=f"b{c}", time=day)
        if r < 0.7:
            row.update(kind="transaction", amount_minor=int(rng.lognormvariate(8, 1)), currency="USD",
                       quantity=rng.randint(1, 5), category=rng.choice(["music", "books", "games"]),
                       channel=rng.choice(["web", "app", "store"]))
        elif r < 0.85:
            row.update(kind="payment", amount_minor=rng.randint(500, 20000), currency="USD",
                       invoice_id=f"inv{i}", due_time=day, paid_time=day if rng.random() < 0.8 else "")
        elif r < 0.95:
            row.update(kind="feedback", feedback_kind="nps", score=rng.randint(0, 10), channel="email")
        else:
            row.update(kind="interaction", interaction_kind=rng.choice(["inquiry", "complaint"]),
                       severity=rng.choice(["low", "high"]), ticket_id=f"t{i}", channel="phone")
        w.writerow([row[k] for k in cols])
