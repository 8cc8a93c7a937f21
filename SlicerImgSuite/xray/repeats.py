"""``imgsuite xray pool``: repeated cross-validation summed up in one figure per method.

Each ``xray evaluate --cross-validate K`` run is a *repeat* (another fold draw, or another rendering of a known-truth
task) and keeps its out-of-fold probabilities in ``predictions.csv``. Pooling the repeats scores every method on all
their images at once; the patient bootstrap then draws a patient's images from every repeat together, so the
patients stay the clusters and repeating adds images, never patients. One repeat's lucky or unlucky draw of views
weighs a third (with three repeats), not all, of the figure.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from . import metrics

BASELINE = "baseline (histogram logistic regression)"
_COLUMNS = ("path", "label", "patient_id", "fold", "p_cnn", "p_baseline")


def _read_repeat(folder: Path) -> tuple[dict, list[dict]]:
    """A report folder's ``report.json`` and ``predictions.csv`` rows, checked."""
    report_path, rows_path = folder / "report.json", folder / "predictions.csv"
    for path in (report_path, rows_path):
        if not path.is_file():
            raise ImgSuiteError("not an `xray evaluate` report folder (no such file)", path)
    try:
        report = json.loads(report_path.read_text())
        classes, methods = report["classes"], list(report["methods"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ImgSuiteError(f"not an `xray evaluate` report ({type(exc).__name__}: {exc})", report_path) from None
    if "folds" not in report or len(methods) != 2 or BASELINE not in methods or len(classes) != 2:
        raise ImgSuiteError("not a cross-validated `xray evaluate` report (a CNN and the baseline)", report_path)
    with open(rows_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or any(c not in rows[0] for c in _COLUMNS):
        raise ImgSuiteError(f"predictions.csv needs the columns {', '.join(_COLUMNS)}", rows_path)
    for n, row in enumerate(rows, start=2):
        if row["label"] not in classes:
            raise ImgSuiteError(f"line {n}: label {row['label']!r} is not one of {classes}", rows_path)
        try:
            p = float(row["p_cnn"]), float(row["p_baseline"])
        except ValueError:
            raise ImgSuiteError(f"line {n}: p_cnn/p_baseline are not numbers", rows_path) from None
        if not all(0.0 <= v <= 1.0 for v in p):  # NaN fails too
            raise ImgSuiteError(f"line {n}: probabilities {p} outside [0, 1]", rows_path)
    return report, rows


def _check_alike(folders, reports) -> None:
    """Repeats pool only when they ask the same question: same classes, same CNN, same patients."""
    first = reports[0]
    for folder, report in zip(folders[1:], reports[1:]):
        for key, what in (("classes", "classes"), ("patients", "number of patients")):
            if report[key] != first[key]:
                raise ImgSuiteError(f"its {what} ({report[key]}) differ from {folders[0]}'s ({first[key]})", folder)
        if list(report["methods"]) != list(first["methods"]):
            raise ImgSuiteError(f"its methods {list(report['methods'])} differ from {folders[0]}'s "
                                f"{list(first['methods'])}: pool repeats of one configuration", folder)


def pool_repeats(
    reports,
    output: str | os.PathLike | None = None,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> dict:
    """Pool the out-of-fold probabilities of repeated ``xray evaluate --cross-validate`` runs.

    Parameters
    ----------
    reports : list of paths
        Two or more report folders of ``xray evaluate --cross-validate`` (``report.json``, ``predictions.csv``)
        with the same classes, patients and CNN.
    output : path, optional
        Folder to write ``pooled.json`` into (nothing is written without it).
    resamples, seed : the patient bootstrap (as ``evaluate``'s).

    Returns
    -------
    dict
        ``repeats`` (each folder's own AUROCs and difference CI), ``images``, ``patients``, ``methods`` (pooled
        AUROC, patient-bootstrap and DeLong CIs), ``auroc_difference_ci`` (paired patient bootstrap: a patient's
        images of every repeat drawn together), ``auroc_difference_ci_delong`` (images independent) and
        ``per_patient`` (each method's AUROC on one patient's pooled images).

    Examples
    --------
    >>> pool_repeats(["/nonexistent", "/nonexistent2"])
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: /nonexistent/report.json: not an `xray evaluate` report folder (no such file)
    """
    folders = [Path(r) for r in reports]
    if len(folders) < 2:
        raise ImgSuiteError("pooling needs two or more report folders")
    if len(set(f.resolve() for f in folders)) != len(folders):
        raise ImgSuiteError("a report folder is given twice: its images would count twice")
    read = [_read_repeat(f) for f in folders]
    reports_json = [r for r, _ in read]
    _check_alike(folders, reports_json)
    classes = reports_json[0]["classes"]
    cnn_name = next(m for m in reports_json[0]["methods"] if m != BASELINE)
    rows = [row for _, repeat_rows in read for row in repeat_rows]
    labels = np.array([classes.index(r["label"]) for r in rows])
    groups = np.array([r["patient_id"] for r in rows])
    scores = {cnn_name: np.array([float(r["p_cnn"]) for r in rows]),
              BASELINE: np.array([float(r["p_baseline"]) for r in rows])}
    cnn, base = scores[cnn_name], scores[BASELINE]
    methods = {}
    for name, s in scores.items():
        area, lo, hi = metrics.delong_ci(labels, s)
        methods[name] = {"auroc": area, "auroc_ci_delong": [lo, hi],
                         "auroc_ci_bootstrap": list(metrics.bootstrap_ci(labels, s, groups, resamples=resamples,
                                                                         seed=seed))}
    per_patient = {g: {name: metrics.auroc(labels[groups == g], s[groups == g]) for name, s in scores.items()}
                   for g in sorted(set(groups))}
    pooled = {
        "repeats": [{"folder": str(f), "data": r["data"], "images": r["images"],
                     "auroc": {k: m["auroc"] for k, m in r["methods"].items()},
                     "auroc_difference_ci": r["auroc_difference_ci"]} for f, r in zip(folders, reports_json)],
        "classes": classes, "images": len(rows), "patients": len(per_patient), "methods": methods,
        "auroc_difference_ci": list(metrics.paired_bootstrap(labels, cnn, base, groups, resamples=resamples,
                                                             seed=seed)),
        "auroc_difference_ci_delong": list(metrics.delong_difference_ci(labels, cnn, base)[1:]),
        "per_patient": per_patient, "resamples": resamples, "seed": seed,
    }
    if output is not None:
        from ..io.atomic import write_together

        target = Path(output) / "pooled.json"
        write_together([(target, lambda tmp: Path(tmp).write_text(json.dumps(pooled, indent=1)), False)])
    return pooled
