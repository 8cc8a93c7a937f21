"""``imgsuite xray evaluate``: honest figures for a model, or for training under patient-grouped k-fold.

Every method is scored on out-of-fold (or held-out) images: AUROC with 95 % CIs (DeLong; bootstrap over
patients), sensitivity/specificity at a threshold and at Youden's point, confusion matrix, calibration and
Brier score. A no-learning baseline (L2 logistic regression on 32-bin intensity histograms) runs under the
same folds; if it comes close to the CNN, the labels may leak through acquisition (exposure, device,
processing) rather than anatomy, and the report says so.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress, sub_progress
from . import metrics
from .data import Dataset, load_dataset, read_radiograph
from .preprocess import fit_preprocessing, preprocess_all

HISTOGRAM_BINS = 32


def histogram_features(radiographs) -> np.ndarray:
    """Per image: the fraction of pixels in each of 32 intensity bins of ``[0, 1]`` (no spatial information)."""
    return np.stack([np.histogram(r.pixels, HISTOGRAM_BINS, (0.0, 1.0))[0] / r.pixels.size for r in radiographs])


def logistic_baseline(features_train, y_train, features_test, l2: float = 1.0) -> np.ndarray:
    """Probabilities from an L2-regularised logistic regression (class-balanced), fitted with L-BFGS."""
    from scipy.optimize import minimize
    from scipy.special import expit

    mu, sd = features_train.mean(0), features_train.std(0) + 1e-6
    a, b = (features_train - mu) / sd, (features_test - mu) / sd
    y = np.asarray(y_train, float)
    w_class = np.where(y == 1, len(y) / (2 * max(y.sum(), 1)), len(y) / (2 * max((1 - y).sum(), 1)))

    def loss(theta):
        z = a @ theta[1:] + theta[0]
        p = expit(z)
        value = -np.sum(w_class * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))) + l2 * theta[1:] @ theta[1:]
        g = w_class * (p - y)
        return value, np.r_[g.sum(), a.T @ g + 2 * l2 * theta[1:]]

    theta = minimize(loss, np.zeros(a.shape[1] + 1), jac=True, method="L-BFGS-B").x
    return expit(b @ theta[1:] + theta[0])


def _cnn_out_of_fold(dataset, radiographs, folds, options, progress) -> tuple[np.ndarray, list[dict]]:
    import onnxruntime as ort

    from .network import to_onnx
    from .predict import XRayModel
    from .train import fit_network, validation_split

    scores, training = np.full(len(dataset), np.nan), []
    k = int(folds.max()) + 1
    for f in range(k):
        test, train = np.flatnonzero(folds == f), np.flatnonzero(folds != f)
        sub = Dataset([dataset.paths[i] for i in train], dataset.labels[train], [dataset.patients[i] for i in train],
                      dataset.classes, studies=[dataset.studies[i] for i in train] if dataset.studies else None)
        fit, val = validation_split(sub, options.validation_fraction, options.seed + 1 + f, options.stop)
        fit_idx, val_idx = train[fit], train[val]
        params = fit_preprocessing([radiographs[i] for i in fit_idx], options.image_size)
        x = preprocess_all(radiographs, params)
        layers, history = fit_network(x[fit_idx], dataset.labels[fit_idx], x[val_idx], dataset.labels[val_idx],
                                      params=params, options=options, progress=sub_progress(progress, f / k, (f + 1) / k))
        session = ort.InferenceSession(to_onnx(layers, params, dataset.classes, options.architecture),
                                       providers=["CPUExecutionProvider"])
        net = XRayModel(session, params, dataset.classes, options.architecture, "")
        scores[test] = np.concatenate([net.probabilities(x[test[s:s + 64]]) for s in range(0, len(test), 64)])
        training.append({"fold": f, "stop": options.stop, "fit_images": len(fit_idx), "validation_images": len(val_idx),
                         "epochs_run": len(history["loss"]), "kept_epoch": history.get("best_epoch", 0),
                         "validation_auroc": [round(float(v), 4) for v in history["val_auroc"]],
                         "loss": [round(float(v), 5) for v in history["loss"]]})
    return scores, training


def _baseline_out_of_fold(features, labels, folds) -> np.ndarray:
    scores = np.full(len(labels), np.nan)
    for f in range(int(folds.max()) + 1):
        test, train = folds == f, folds != f
        scores[test] = logistic_baseline(features[train], labels[train], features[test])
    return scores


def score_method(labels, scores, groups, folds, *, threshold: float, resamples: int, seed: int) -> dict:
    """All the figures of one method's out-of-fold probabilities."""
    area, d_lo, d_hi = metrics.delong_ci(labels, scores)
    b_lo, b_hi = metrics.bootstrap_ci(labels, scores, groups, resamples=resamples, seed=seed)
    cal = metrics.calibration(labels, scores)
    per_fold = [metrics.auroc(labels[folds == f], scores[folds == f]) for f in range(int(folds.max()) + 1)]
    return {"auroc": area, "auroc_ci_delong": [d_lo, d_hi], "auroc_ci_bootstrap": [b_lo, b_hi],
            "at_threshold": metrics.at_threshold(labels, scores, threshold), "youden": metrics.youden(labels, scores),
            "brier": cal["brier"], "calibration": cal["curve"], "auroc_per_fold": per_fold}


def evaluate(
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    folds: int | None = None,
    train_options=None,
    threshold: float = 0.5,
    bootstrap: int = 2000,
    positive: str | None = None,
    finding: str | None = None,
    extra_training: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """Evaluate a model on labelled radiographs, or train and test under patient-grouped stratified k-fold.

    Parameters
    ----------
    data : class folders or CSV (see :func:`.data.load_dataset`).
    output : report folder: ``report.html``, ``report.json``, ``predictions.csv``.
    model : an ONNX model to score on ``data`` (the baseline then runs 5-fold on ``data``), or
    folds : ``K`` for K-fold cross-validation of training (needs torch) and baseline, same folds.
    train_options : :class:`.train.TrainOptions` for cross-validation.
    threshold : probability at or above which an image counts as positive (sensitivity, specificity, confusion).
    bootstrap : resamples of the patient bootstrap behind the AUROC intervals.
    positive, finding : as :func:`.data.load_dataset`.
    extra_training : with ``folds``: more labelled radiographs (other patients, e.g. phantoms or another site's
        images) added to the training side of every fold, for the CNN and the baseline alike, and never tested
        on: every figure is on ``data`` only.
    progress : callable ``(fraction, message)``, optional.

    Returns
    -------
    dict
        The report written to ``report.json``: classes, counts, folds, each method's AUROC with intervals,
        the difference's interval and notes.

    Examples
    --------
    >>> evaluate("/nonexistent", "out", folds=5)
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: /nonexistent: no such file or folder
    """
    from .train import TrainOptions

    progress = progress or no_progress
    options = train_options or TrainOptions()
    if (model is None) == (folds is None):
        raise ImgSuiteError("give either a model (--model) or a number of folds (--cross-validate K)")
    from .predict import check_threshold

    check_threshold(threshold)
    if int(bootstrap) != bootstrap or bootstrap < 100:
        raise ImgSuiteError(f"--bootstrap {bootstrap} must be a whole number >= 100 (resamples behind the CIs)")
    dataset = load_dataset(data, positive=positive, finding=finding)
    fold = metrics.grouped_folds(dataset.labels, np.asarray(dataset.patients),
                                 folds or min(5, len(set(dataset.patients))), options.seed)
    if extra_training is not None:
        if model is not None:
            raise ImgSuiteError("--extra-training adds training data to --cross-validate; a --model is already trained")
        dataset, fold = _with_extra_training(dataset, fold, extra_training, positive, finding)
    radiographs = []
    for i, p in enumerate(dataset.paths):
        progress(0.05 * i / len(dataset), f"reading {Path(p).name}")
        radiographs.append(read_radiograph(p))
    labels, groups = dataset.labels, np.asarray(dataset.patients)
    if model is not None:
        cnn, name, training = _model_scores(model, dataset, radiographs), f"model {Path(model).name}", []
    else:
        cnn, training = _cnn_out_of_fold(dataset, radiographs, fold, options, sub_progress(progress, 0.05, 0.95))
        name = f"CNN ({options.architecture}, {folds}-fold)"
    base = _baseline_out_of_fold(histogram_features(radiographs), labels, fold)
    tested = np.flatnonzero(fold >= 0)  # the extra training images (fold -1) are never scored
    extra = {"extra_training": {"data": str(extra_training), "images": int(len(fold) - len(tested)),
                                "patients": len(set(groups[fold < 0]))}} if extra_training is not None else {}
    dataset = Dataset([dataset.paths[i] for i in tested], labels[tested], [dataset.patients[i] for i in tested],
                      dataset.classes)
    labels, groups, fold, cnn, base = labels[tested], groups[tested], fold[tested], cnn[tested], base[tested]
    radiographs = [radiographs[i] for i in tested]
    scoring = {"threshold": threshold, "resamples": bootstrap, "seed": options.seed}
    methods = {name: score_method(labels, cnn, groups, fold, **scoring),
               "baseline (histogram logistic regression)": score_method(labels, base, groups, fold, **scoring)}
    diff = metrics.paired_bootstrap(labels, cnn, base, groups, resamples=bootstrap, seed=options.seed)
    diff_delong = metrics.delong_difference_ci(labels, cnn, base)[1:]
    report = {"data": str(data), "classes": dataset.classes, "images": len(dataset),
              "patients": len(set(dataset.patients)), "folds": int(fold.max()) + 1, "methods": methods,
              "auroc_difference_ci": list(diff), **extra,
              "auroc_difference_ci_delong": list(diff_delong), "cnn_training": training,
              "notes": _notes(methods, name, diff, model is not None, diff_delong) + _extra_note(extra)}
    # probabilities at full precision: rounding saturated outputs (0.9999997) would make ties and change AUROCs
    rows = [{"path": p, "label": dataset.classes[y], "patient_id": g, "fold": int(f), "p_cnn": float(c),
             "p_baseline": float(b)} for p, y, g, f, c, b in zip(dataset.paths, labels, groups, fold, cnn, base)]
    _write_report(Path(output), report, rows, radiographs, cnn, labels)
    progress(1.0, "report written")
    return report


def _model_scores(model, dataset: Dataset, radiographs) -> np.ndarray:
    """A trained model's probabilities for every radiograph (its classes must be the data's)."""
    from .predict import load_model

    net = load_model(model)
    if net.classes != dataset.classes:
        raise ImgSuiteError(f"model classes {net.classes} differ from the data's {dataset.classes}", model)
    x = preprocess_all(radiographs, net.params)
    return np.concatenate([net.probabilities(x[s:s + 64]) for s in range(0, len(x), 64)])


def _with_extra_training(dataset: Dataset, fold: np.ndarray, extra, positive, finding) -> tuple[Dataset, np.ndarray]:
    """``dataset`` followed by the images of ``extra`` in fold -1 (training side of every fold, never tested).

    Refused: other classes, and a patient in both (their images would be trained on in the fold that tests them).
    """
    more = load_dataset(extra, positive=positive, finding=finding)
    if more.classes != dataset.classes:
        raise ImgSuiteError(f"--extra-training classes {more.classes} differ from the data's {dataset.classes}", extra)
    shared = sorted(set(more.patients) & set(dataset.patients))
    if shared:
        raise ImgSuiteError(f"--extra-training shares patients with the evaluated data ({', '.join(shared[:3])}): "
                            "they would be trained on in the fold that tests them", extra)
    studies = (dataset.studies or dataset.paths) + (more.studies or more.paths) \
        if dataset.studies or more.studies else None
    joined = Dataset(dataset.paths + more.paths, np.concatenate([dataset.labels, more.labels]),
                     dataset.patients + more.patients, dataset.classes, studies=studies)
    return joined, np.concatenate([fold, np.full(len(more), -1)])


def _extra_note(extra: dict) -> list[str]:
    if not extra:
        return []
    e = extra["extra_training"]
    return [f"every fold also trained on {e['images']} images of {e['patients']} other patients ({e['data']}), "
            "never tested on; all figures are on the evaluated data only"]


def _notes(methods, name, diff, held_out_model, diff_delong) -> list[str]:
    cnn, base = methods[name], methods["baseline (histogram logistic regression)"]
    notes = []
    if diff[0] > 0:
        notes.append(f"the CNN beats the baseline: AUROC difference 95% CI {diff[0]:.3f} to {diff[1]:.3f} excludes 0")
    elif diff[1] < 0:
        notes.append(f"the CNN is WORSE than the baseline: AUROC difference 95% CI {diff[0]:.3f} to {diff[1]:.3f} "
                     "excludes 0")
    else:
        notes.append(f"the CNN does NOT beat the baseline beyond chance: AUROC difference 95% CI {diff[0]:.3f} to "
                     f"{diff[1]:.3f} includes 0")
    notes.append(f"paired DeLong 95% CI of the AUROC difference (images independent): {diff_delong[0]:.3f} to "
                 f"{diff_delong[1]:.3f}")
    if base["auroc"] >= 0.75 and base["auroc"] >= cnn["auroc_ci_bootstrap"][0]:
        notes.append(f"the no-learning baseline reaches AUROC {base['auroc']:.3f}, within the CNN's CI: the labels "
                     "may leak through acquisition (exposure, device, processing), not anatomy")
    if held_out_model:
        notes.append("the baseline was cross-validated on the evaluation data itself (patient-grouped folds)")
    return notes


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode()


def _figures(report, rows, radiographs, cnn, labels) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    fig, (roc, cal) = plt.subplots(1, 2, figsize=(9, 4))
    for key, col in zip(report["methods"], ("p_cnn", "p_baseline")):
        scores = np.array([r[col] for r in rows])
        fpr, tpr, _ = metrics.roc_curve(labels, scores)
        roc.plot(fpr, tpr, label=f"{key}: {report['methods'][key]['auroc']:.3f}")
        curve = np.array(report["methods"][key]["calibration"])
        cal.plot(curve[:, 0], curve[:, 1], "o-", label=key)
    roc.plot([0, 1], [0, 1], "k:")
    roc.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
    cal.plot([0, 1], [0, 1], "k:")
    cal.set(xlabel="mean predicted probability", ylabel="observed positive rate", title="calibration")
    roc.legend(fontsize=7)
    cal.legend(fontsize=7)
    fig.tight_layout()
    figs["curves"] = _png(fig)
    plt.close(fig)
    worst_fp = [i for i in np.argsort(-cnn) if labels[i] == 0][:4]
    worst_fn = [i for i in np.argsort(cnn) if labels[i] == 1][:4]
    fig, axes = plt.subplots(2, 4, figsize=(9, 5))
    for row, picks, title in ((axes[0], worst_fp, "false positive"), (axes[1], worst_fn, "false negative")):
        for ax, j in zip(row, range(4)):
            ax.axis("off")
            if j < len(picks):
                ax.imshow(radiographs[picks[j]].pixels, cmap="gray", vmin=0, vmax=1)
                ax.set_title(f"worst {title}\n{Path(rows[picks[j]]['path']).name[:24]} p={cnn[picks[j]]:.2f}", fontsize=7)
    fig.tight_layout()
    figs["worst"] = _png(fig)
    plt.close(fig)
    return figs


def _write_report(out: Path, report, rows, radiographs, cnn, labels) -> None:
    from ..io.atomic import write_together

    figs = _figures(report, rows, radiographs, cnn, labels)
    lines = [f"<tr><td>{html.escape(k)}</td><td>{m['auroc']:.3f}</td><td>{m['auroc_ci_bootstrap'][0]:.3f}&ndash;"
             f"{m['auroc_ci_bootstrap'][1]:.3f}</td><td>{m['auroc_ci_delong'][0]:.3f}&ndash;{m['auroc_ci_delong'][1]:.3f}"
             f"</td><td>{m['at_threshold']['sensitivity']:.3f} / {m['at_threshold']['specificity']:.3f}</td>"
             f"<td>{m['youden']['threshold']:.3f}: {m['youden']['sensitivity']:.3f} / {m['youden']['specificity']:.3f}"
             f"</td><td>{m['at_threshold']['confusion']}</td><td>{m['brier']:.3f}</td></tr>"
             for k, m in report["methods"].items()]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>imgsuite xray evaluation</title></head><body>"
            f"<h1>X-ray classifier evaluation</h1><p>{html.escape(report['data'])}: {report['images']} images, "
            f"{report['patients']} patients, {report['folds']} patient-grouped folds; classes "
            f"{html.escape(' / '.join(report['classes']))}</p><table border=1 cellpadding=4><tr><th>method</th>"
            "<th>AUROC</th><th>95% CI (bootstrap over patients)</th><th>95% CI (DeLong)</th>"
            "<th>sensitivity / specificity at threshold</th><th>Youden: threshold, sens / spec</th>"
            "<th>confusion [[TN, FP], [FN, TP]]</th><th>Brier</th></tr>" + "".join(lines) + "</table><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in report["notes"]) + "</ul>"
            f"<img src='data:image/png;base64,{figs['curves']}'><h2>Worst errors</h2>"
            f"<img src='data:image/png;base64,{figs['worst']}'></body></html>")

    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    write_together([(out / "report.html", lambda tmp: Path(tmp).write_text(page), False),
                    (out / "report.json", lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1)), False),
                    (out / "predictions.csv", write_csv, False)])
