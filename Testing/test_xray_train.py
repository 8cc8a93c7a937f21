"""xray train: patient-grouped validation split (no torch), and with the optional torch: a tiny model trained in
the test, ONNX equal to torch within 1e-5, the same seed giving the same model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.xray.data import load_dataset
from SlicerImgSuite.xray.metrics import grouped_folds
from SlicerImgSuite.xray.train import TrainOptions, validation_split


def _blob_set(root, patients=8, per_patient=3, size=24):
    """Dark noisy squares, half with a bright round 'opacity'; several images per patient."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for p in range(patients):
        for k in range(per_patient):
            label = (p + k) % 2
            image = rng.normal(60, 12, (size, size))
            if label:
                r, c = rng.integers(6, size - 6, 2)
                image[(yy - r) ** 2 + (xx - c) ** 2 <= 9] += 120
            cls = "opacity" if label else "normal"
            (root / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / cls / f"P{p}_{k}.png")
    return root


def test_validation_split_keeps_patients_apart(tmp_path):
    ds = load_dataset(_blob_set(tmp_path / "d"))
    train, val = validation_split(ds, 0.25, seed=1)
    assert set(train) | set(val) == set(range(len(ds))) and not set(train) & set(val)
    assert not {ds.patients[i] for i in train} & {ds.patients[i] for i in val}
    assert set(ds.labels[val]) == {0, 1}
    folds = grouped_folds(ds.labels, ds.patients, 4, seed=2)
    for f in range(4):
        inside = {ds.patients[i] for i in np.flatnonzero(folds == f)}
        outside = {ds.patients[i] for i in np.flatnonzero(folds != f)}
        assert not inside & outside and 0 < ds.labels[folds == f].sum() < (folds == f).sum()


def test_validation_split_views_holds_out_studies_of_the_training_patients(tmp_path):
    """--stop views: the validation images come from the training patients, each study (a CSV's study_id) whole on
    one side; --stop fixed validates nothing; an unknown mode is refused."""
    root = _blob_set(tmp_path / "d", patients=4, per_patient=10)
    rows = ["path,label,patient_id,study_id"]
    for p in range(4):
        for k in range(10):
            cls = "opacity" if (p + k) % 2 else "normal"
            rows.append(f"{cls}/P{p}_{k}.png,{cls},P{p},P{p}-view{k // 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(root / "labels.csv")
    assert ds.studies[:3] == ["P0-view0", "P0-view0", "P0-view1"]
    train, val = validation_split(ds, 0.2, seed=3, stop="views")
    assert set(train) | set(val) == set(range(len(ds))) and not set(train) & set(val)
    assert 4 <= len(val) <= 12 and set(ds.labels[val]) == {0, 1}
    assert {ds.patients[i] for i in val} <= {ds.patients[i] for i in train}  # no patient only in validation
    held = {ds.studies[i] for i in val}
    assert not held & {ds.studies[i] for i in train}  # both images of a view on one side
    train, val = validation_split(ds, 0.2, seed=3, stop="fixed")
    assert len(train) == len(ds) and len(val) == 0
    with pytest.raises(ImgSuiteError, match="--stop"):
        validation_split(ds, 0.2, seed=3, stop="never")


def test_train_tiny_model_onnx_equals_torch_and_is_deterministic(tmp_path):
    import torch  # noqa: F401 (the `learn` extra, which `make test` installs)

    from SlicerImgSuite.xray.predict import load_model, prediction_input
    from SlicerImgSuite.xray.train import train_model

    data = _blob_set(tmp_path / "d")
    options = TrainOptions(architecture="small", epochs=3, image_size=24, seed=7, batch_size=8, threads=1)
    first = train_model(data, tmp_path / "a.onnx", options)
    second = train_model(data, tmp_path / "b.onnx", options)
    assert second["history"] == first["history"]
    assert first["onnx_torch_max_diff"] <= 1e-5
    assert len(first["history"]["loss"]) >= 1 and np.isfinite(first["history"]["loss"]).all()
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()  # same seed, same model
    model = load_model(tmp_path / "a.onnx")
    assert model.classes == ["normal", "opacity"] and model.params.image_size == 24
    x, _ = prediction_input(next((data / "opacity").iterdir()), model.params)
    assert 0.0 <= model.probabilities(x)[0] <= 1.0
    fixed = train_model(data, tmp_path / "f.onnx", TrainOptions(**{**options.__dict__, "stop": "fixed"}))
    assert fixed["best_epoch"] == 3 and len(fixed["history"]["loss"]) == 3 and fixed["onnx_torch_max_diff"] <= 1e-5
    other = train_model(data, tmp_path / "c.onnx", TrainOptions(**{**options.__dict__, "seed": 8}))
    assert (tmp_path / "c.onnx").read_bytes() != (tmp_path / "a.onnx").read_bytes()
    assert other["onnx_torch_max_diff"] <= 1e-5
    pooled_by_max = train_model(data, tmp_path / "m.onnx", TrainOptions(**{**options.__dict__, "architecture": "small-max"}))
    assert pooled_by_max["onnx_torch_max_diff"] <= 1e-5 and load_model(tmp_path / "m.onnx").architecture == "small-max"


@pytest.mark.parametrize("args,named", [
    (["train", "--epochs", "0"], "--epochs 0"),
    (["train", "--learning-rate", "-1"], "--learning-rate -1"),
    (["train", "--patience", "0"], "--patience 0"),
    (["train", "--image-size", "4"], "--image-size 4"),
    (["evaluate", "--cross-validate", "2", "--batch-size", "0"], "--batch-size 0"),
    (["evaluate", "--cross-validate", "2", "--threshold", "1.5"], "--threshold 1.5"),
    (["evaluate", "--cross-validate", "2", "--bootstrap", "0"], "--bootstrap 0"),
    (["evaluate", "--model", "m.onnx", "--extra-training", "more.csv"], "--extra-training"),
])
def test_settings_that_train_nothing_are_refused(tmp_path, args, named):
    """Before this check `--epochs 0` ended in a TypeError traceback and `--threshold 1.5` called everything negative."""
    data = _blob_set(tmp_path / "d")
    command, options = args[0], args[1:]
    result = subprocess.run([sys.executable, "-m", "SlicerImgSuite.cli", "xray", command, str(data), "--output",
                             str(tmp_path / "out"), *options], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert named in result.stderr and not (tmp_path / "out").exists()
