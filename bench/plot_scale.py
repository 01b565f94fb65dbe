#!/usr/bin/env python3
"""Draws bench/results/scale.csv (written by bench/scale.sh) as two log-log charts, time and
peak memory against customers, one line per measure, with a dotted line of linear growth
from the smallest size for comparison: `python3 bench/plot_scale.py [CSV] [PNG]`.

For each (customers, measure) the last line of the CSV counts: re-running a size replaces
its points. Needs matplotlib (`pip install matplotlib`)."""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

source = sys.argv[1] if len(sys.argv) > 1 else "bench/results/scale.csv"
target = sys.argv[2] if len(sys.argv) > 2 else "docs/scale.png"

LABELS = {
    "train": "train (trainer; above 300k customers fitted on a ~300k sample)",
    "score": "score to CSV (trainer)",
    "score_store": "score --store = refresh (trainer)",
    "refresh_server": "RefreshEvaluations (server)",
    "portfolio_year": "portfolio metrics, a year (server)",
    "server_warm": "history cache warm-up (server)",
}

latest = {}
with open(source, newline="") as f:
    for row in csv.DictReader(f):
        if row["measure"] in LABELS and row["seconds"]:
            latest[(int(row["customers"]), row["measure"])] = (
                float(row["seconds"]),
                float(row["peak_rss_kib"]) / 1024 / 1024,
            )

fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
for measure, label in LABELS.items():
    points = sorted((n, v) for (n, m), v in latest.items() if m == measure)
    if not points:
        continue
    sizes = [n for n, _ in points]
    seconds = [v[0] for _, v in points]
    gib = [v[1] for _, v in points]
    (line,) = left.plot(sizes, seconds, marker="o", label=label)
    left.plot(sizes, [seconds[0] * n / sizes[0] for n in sizes], ":", color=line.get_color(), alpha=0.5)
    if measure not in ("refresh_server", "portfolio_year"):
        # The server's peak is the process's, cache included: drawn once, as the warm-up's.
        right.plot(sizes, gib, marker="o", label=label, color=line.get_color())
for ax, title, unit in (
    (left, "Time against customers (dotted: linear from the smallest)", "seconds"),
    (right, "Peak resident memory against customers", "GiB"),
):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("customers (about 28 events each)")
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
left.axhline(30, color="grey", linewidth=0.8)
left.annotate("30 s: the refresh and train target at 1 M", (10_000, 30), fontsize=8, va="bottom")
fig.tight_layout()
fig.savefig(target, dpi=110)
print(f"wrote {target}")
