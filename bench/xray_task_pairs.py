"""Read an ``imgsuite xray evaluate --cross-validate`` report on the DRR known-truth task (``xray/drr_task.py``):
AUROC per patient and the twin two-alternative forced choice (how often the opacity image of a matched pair
scores above its clear twin: same CT, view, gain and noise level, so only the sphere differs) for the CNN and
the histogram baseline, beside the report's pooled AUROCs and CIs.

    .venv/bin/python bench/xray_task_pairs.py TASK/labels.csv REPORT_DIR [REPORT_DIR ...]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from SlicerImgSuite.xray import metrics  # noqa: E402


def twins(labels_csv: Path) -> list[tuple[str, str]]:
    """(clear, opacity) image paths of each view, from ``truth.csv`` (same geometry, consecutive rows)."""
    with open(labels_csv.parent / "truth.csv") as f:
        rows = list(csv.DictReader(f))
    pairs = [(a, b) for a, b in zip(rows[0::2], rows[1::2])]
    assert all(a["label"] == "clear" and b["label"] == "opacity" and a["sad"] == b["sad"] for a, b in pairs)
    return [(str(labels_csv.parent / a["path"]), str(labels_csv.parent / b["path"])) for a, b in pairs]


def main(labels_csv: str, *reports: str) -> None:
    pairs = twins(Path(labels_csv))
    for report in reports:
        with open(Path(report) / "predictions.csv") as f:
            rows = {r["path"]: r for r in csv.DictReader(f)}
        summary = json.loads((Path(report) / "report.json").read_text())
        y = np.array([r["label"] == "opacity" for r in rows.values()], int)
        groups = np.array([r["patient_id"] for r in rows.values()])
        print(report)
        for name, m in summary["methods"].items():
            print(f"  {name}: AUROC {m['auroc']:.3f}, bootstrap {m['auroc_ci_bootstrap'][0]:.3f}-"
                  f"{m['auroc_ci_bootstrap'][1]:.3f}, DeLong {m['auroc_ci_delong'][0]:.3f}-{m['auroc_ci_delong'][1]:.3f}")
        scores = {key: np.array([float(r[key]) for r in rows.values()]) for key in ("p_cnn", "p_baseline")}
        d, lo, hi = metrics.delong_difference_ci(y, scores["p_cnn"], scores["p_baseline"])
        boot = summary["auroc_difference_ci"]
        print(f"  CNN - baseline: {d:+.3f}, paired patient bootstrap {boot[0]:+.3f} to {boot[1]:+.3f}, "
              f"paired DeLong {lo:+.3f} to {hi:+.3f}")
        for key in scores:
            s = {p: float(r[key]) for p, r in rows.items()}
            afc = np.mean([s[b] > s[a] for a, b in pairs])
            per = {g: round(metrics.auroc(y[groups == g], scores[key][groups == g]), 3) for g in np.unique(groups)}
            print(f"  {key}: twin 2AFC {afc:.3f}; AUROC per patient {per}")


if __name__ == "__main__":
    main(*sys.argv[1:])
