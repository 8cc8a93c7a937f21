"""xray evaluate: metrics against hand-computed values, the histogram baseline, and reports (a model built from
numpy weights, no torch; cross-validated training only with the optional torch)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats
from test_xray_train import _blob_set

from SlicerImgSuite.xray import metrics
from SlicerImgSuite.xray.data import Radiograph
from SlicerImgSuite.xray.evaluate import evaluate, histogram_features, logistic_baseline
from SlicerImgSuite.xray.network import to_onnx
from SlicerImgSuite.xray.preprocess import Preprocessing


def test_auroc_is_mann_whitney_and_delong_matches_hanley_mcneil_order():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60), np.ones(40)].astype(int)
    s = np.r_[rng.normal(0, 1, 60), rng.normal(1, 1, 40)]
    u = stats.mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert metrics.auroc(y, s) == pytest.approx(u / (60 * 40))
    area, lo, hi = metrics.delong_ci(y, s)
    # Hanley & McNeil's approximation of the same standard error agrees within 20 %
    q1, q2 = area / (2 - area), 2 * area**2 / (1 + area)
    se_hm = np.sqrt((area * (1 - area) + 39 * (q1 - area**2) + 59 * (q2 - area**2)) / (40 * 60))
    assert (hi - lo) / (2 * 1.959964) == pytest.approx(se_hm, rel=0.2)
    b_lo, b_hi = metrics.bootstrap_ci(y, s, np.arange(100), resamples=500)
    assert b_lo < area < b_hi and (b_hi - b_lo) == pytest.approx(hi - lo, rel=0.35)


def test_paired_delong_difference_agrees_with_the_paired_bootstrap():
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(80), np.ones(80)].astype(int)
    shared = rng.normal(0, 1, 160) + 1.2 * y
    a, b = shared + rng.normal(0, 0.5, 160), shared + rng.normal(0, 0.5, 160) - 0.6 * y
    d, lo, hi = metrics.delong_difference_ci(y, a, b)
    assert d == pytest.approx(metrics.auroc(y, a) - metrics.auroc(y, b)) and lo < d < hi
    b_lo, b_hi = metrics.paired_bootstrap(y, a, b, np.arange(160), resamples=1000)
    assert (hi - lo) == pytest.approx(b_hi - b_lo, rel=0.35) and lo > 0  # a is the better score
    assert metrics.delong_difference_ci(y, a, a) == (0.0, 0.0, 0.0)


def test_threshold_youden_calibration():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.3, 0.6, 0.4, 0.8, 0.9])
    at = metrics.at_threshold(y, s, 0.5)
    assert at["sensitivity"] == pytest.approx(2 / 3) and at["specificity"] == pytest.approx(2 / 3)
    best = metrics.youden(y, s)
    assert best["sensitivity"] - (1 - best["specificity"]) == pytest.approx(2 / 3)
    assert metrics.calibration(y, s)["brier"] == pytest.approx(np.mean((s - y) ** 2))


def test_histogram_baseline_learns_intensity_and_nothing_else():
    rng = np.random.default_rng(1)
    bright = [Radiograph(np.clip(rng.normal(0.6, 0.1, (16, 16)), 0, 1).astype(np.float32)) for _ in range(20)]
    dark = [Radiograph(np.clip(rng.normal(0.4, 0.1, (16, 16)), 0, 1).astype(np.float32)) for _ in range(20)]
    f = histogram_features(bright + dark)
    y = np.r_[np.ones(20), np.zeros(20)]
    p = logistic_baseline(f[::2], y[::2], f[1::2])
    assert metrics.auroc(y[1::2], p) > 0.9


def test_evaluate_model_report(tmp_path):
    data = _blob_set(tmp_path / "d", patients=10)
    size = 24
    w = np.zeros((1, 1, 3, 3), np.float32)
    w[0, 0, 1, 1] = 1.0
    # bright-blob detector: relu(x - 2) averaged; images are standardised with mean 0.25, sd 0.1
    layers = [("conv", w, np.array([-2.0], np.float32), 1), ("relu",), ("gap",),
              ("dense", np.array([[50.0]], np.float32), np.array([-1.0], np.float32)), ("sigmoid",)]
    (tmp_path / "m.onnx").write_bytes(to_onnx(layers, Preprocessing(size, 0.25, 0.1), ["normal", "opacity"]))
    report = evaluate(data, tmp_path / "r", model=tmp_path / "m.onnx", bootstrap=200)
    model = report["methods"]["model m.onnx"]
    assert model["auroc"] > 0.9 and model["auroc_ci_bootstrap"][0] <= model["auroc"] <= model["auroc_ci_bootstrap"][1]
    assert sum(map(sum, model["at_threshold"]["confusion"])) == 30
    assert report["folds"] == 5 and report["patients"] == 10
    assert {p.name for p in (tmp_path / "r").iterdir()} == {"report.html", "report.json", "predictions.csv"}
    assert json.loads((tmp_path / "r" / "report.json").read_text())["images"] == 30
    assert "ROC" in (tmp_path / "r" / "report.html").read_text() or "roc" in (tmp_path / "r" / "report.html").read_text()


def test_cross_validate_tiny(tmp_path):
    import torch  # noqa: F401 (the `learn` extra, which `make test` installs)

    from SlicerImgSuite.xray.train import TrainOptions

    data = _blob_set(tmp_path / "d", patients=6, per_patient=4)
    options = TrainOptions(architecture="small", epochs=2, image_size=24, seed=0, batch_size=8, threads=1)
    report = evaluate(data, tmp_path / "r", folds=3, train_options=options, bootstrap=100)
    assert report["folds"] == 3 and len(report["methods"]) == 2
    for m in report["methods"].values():
        assert len(m["auroc_per_fold"]) == 3 and 0 <= m["auroc"] <= 1
    assert [t["fold"] for t in report["cnn_training"]] == [0, 1, 2]
    for t in report["cnn_training"]:  # --stop views (default): validation images taken from the training patients
        assert t["stop"] == "views" and t["epochs_run"] == len(t["loss"]) == 2 and 1 <= t["kept_epoch"] <= 2
        assert t["fit_images"] + t["validation_images"] == 16 and t["validation_images"] > 0
    with open(tmp_path / "r" / "predictions.csv") as f:  # the CSV reproduces the report's figures (no rounding)
        rows = list(csv.DictReader(f))
    for f, expected in enumerate(report["methods"][next(iter(report["methods"]))]["auroc_per_fold"]):
        mine = [r for r in rows if int(r["fold"]) == f]
        assert metrics.auroc([r["label"] == "opacity" for r in mine], [float(r["p_cnn"]) for r in mine]) == expected


def test_notes_say_whether_the_cnn_beats_ties_or_loses_to_the_baseline():
    from SlicerImgSuite.xray.evaluate import _notes

    m = {"auroc": 0.6, "auroc_ci_bootstrap": [0.5, 0.7]}
    methods = {"cnn": m, "baseline (histogram logistic regression)": {**m, "auroc": 0.5}}
    first = [_notes(methods, "cnn", d, False, (0.0, 0.1))[0].split(":")[0] for d in ((0.01, 0.1), (-0.1, 0.1), (-0.1, -0.01))]
    assert first == ["the CNN beats the baseline", "the CNN does NOT beat the baseline beyond chance",
                     "the CNN is WORSE than the baseline"]


def _as_csv(folder, prefix):
    """The class folders of ``folder`` as a CSV whose patients are ``prefix`` + the file's patient."""
    out = folder / f"{prefix or 'same'}.csv"
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "patient_id"])
        for image in sorted(folder.glob("*/*.png")):
            writer.writerow([str(image), image.parent.name, prefix + image.stem.split("_")[0]])
    return out


def test_extra_training_is_trained_on_in_every_fold_and_never_scored(tmp_path):
    import torch  # noqa: F401 (the `learn` extra, which `make test` installs)

    from SlicerImgSuite.xray.train import TrainOptions

    data = _blob_set(tmp_path / "d", patients=6, per_patient=4)
    more = _blob_set(tmp_path / "e", patients=3, per_patient=4)
    options = TrainOptions(architecture="small", epochs=2, image_size=24, seed=0, batch_size=8, threads=1)
    alone = evaluate(data, tmp_path / "a", folds=3, train_options=options, bootstrap=100)
    with pytest.raises(Exception, match="shares patients"):  # the same patient names: leakage, refused
        evaluate(data, tmp_path / "x", folds=3, train_options=options, bootstrap=100,
                 extra_training=_as_csv(more, ""))
    assert not (tmp_path / "x").exists()
    extra = _as_csv(more, "other-")
    report = evaluate(data, tmp_path / "r", folds=3, train_options=options, bootstrap=100, extra_training=extra)
    assert report["images"] == alone["images"] == 24 and report["extra_training"]["images"] == 12
    assert report["extra_training"]["patients"] == 3 and any("never tested on" in n for n in report["notes"])
    for t, t0 in zip(report["cnn_training"], alone["cnn_training"]):  # 12 more images on the training side
        assert t["fit_images"] + t["validation_images"] == t0["fit_images"] + t0["validation_images"] + 12
    with open(tmp_path / "r" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 and not any(r["patient_id"].startswith("other-") for r in rows)
    with open(tmp_path / "a" / "predictions.csv") as f:  # the baseline trains on the extra images too
        before = [float(r["p_baseline"]) for r in csv.DictReader(f)]
    assert not np.allclose([float(r["p_baseline"]) for r in rows], before)
    with pytest.raises(Exception, match="a --model is already trained"):
        evaluate(data, tmp_path / "m", model=tmp_path / "none.onnx", extra_training=extra)


def _repeat(folder, labels, cnn, base, patients, cnn_name="CNN (small-max, 5-fold)"):
    """A report folder as `xray evaluate --cross-validate` writes it (only what pooling reads)."""
    folder.mkdir()
    classes = ["clear", "opacity"]
    report = {"data": str(folder), "classes": classes, "images": len(labels), "patients": len(set(patients)),
              "folds": 5, "methods": {cnn_name: {"auroc": metrics.auroc(labels, cnn)},
                                      "baseline (histogram logistic regression)": {"auroc": metrics.auroc(labels, base)}},
              "auroc_difference_ci": [0.0, 0.1]}
    (folder / "report.json").write_text(json.dumps(report))
    with open(folder / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "patient_id", "fold", "p_cnn", "p_baseline"])
        for n, (y, c, b, g) in enumerate(zip(labels, cnn, base, patients)):
            writer.writerow([f"{folder.name}/{n}.png", classes[y], g, 0, c, b])
    return folder


def test_pooled_repeats_resample_a_patient_of_every_repeat_together(tmp_path):
    from SlicerImgSuite.xray.repeats import pool_repeats

    rng = np.random.default_rng(3)
    y = np.tile([0, 1], 50)
    patients = [f"p{k % 5}" for k in range(100)]
    cnn, base = 1 / (1 + np.exp(-(y + rng.normal(0, 1, 100)))), 1 / (1 + np.exp(-(0.4 * y + rng.normal(0, 1, 100))))
    a = _repeat(tmp_path / "a", y, cnn, base, patients)
    b = _repeat(tmp_path / "b", y, cnn, base, patients)  # the same predictions again
    pooled = pool_repeats([a, b], tmp_path / "out", resamples=400)
    single = metrics.paired_bootstrap(y, cnn, base, np.array(patients), resamples=400)
    # a patient's rows of both repeats are drawn together: a copy of a repeat adds images, not clusters
    assert pooled["auroc_difference_ci"] == pytest.approx(list(single))
    assert pooled["images"] == 200 and pooled["patients"] == 5
    assert pooled["methods"]["CNN (small-max, 5-fold)"]["auroc"] == pytest.approx(metrics.auroc(y, cnn))
    c = _repeat(tmp_path / "c", y, base, cnn, patients)  # a repeat that says the opposite pulls the pool to 0
    mixed = pool_repeats([a, c], resamples=400)
    assert abs(mixed["methods"]["CNN (small-max, 5-fold)"]["auroc"] - mixed["methods"][
        "baseline (histogram logistic regression)"]["auroc"]) < 0.02
    assert json.loads((tmp_path / "out" / "pooled.json").read_text())["per_patient"].keys() == {f"p{k}" for k in range(5)}


def test_pooling_refuses_repeats_that_do_not_match(tmp_path, capsys):
    from SlicerImgSuite.cli import main

    y = np.tile([0, 1], 10)
    patients = [f"p{k % 5}" for k in range(20)]
    a = _repeat(tmp_path / "a", y, np.full(20, 0.5), np.full(20, 0.5), patients)
    other = _repeat(tmp_path / "b", y, np.full(20, 0.5), np.full(20, 0.5), patients, cnn_name="CNN (seed, 5-fold)")
    nan = _repeat(tmp_path / "n", y, np.r_[np.nan, np.full(19, 0.5)], np.full(20, 0.5), patients)
    for argv, expect in (([a, other], "pool repeats of one configuration"), ([a, a], "given twice"),
                         ([a, nan], "line 2: probabilities"), ([a, tmp_path], "report.json")):
        assert main(["xray", "pool", *map(str, argv), "--output", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert expect in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
