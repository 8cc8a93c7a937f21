"""xray predict with onnxruntime only: ONNX models built from numpy weights (no torch), checked against a numpy
reference; metadata round trip; CSV and heat maps on the NIH samples; CLI errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.xray.network import build_layers, forward_numpy, to_onnx
from SlicerImgSuite.xray.predict import load_model, occlusion_map, predict_images, prediction_input
from SlicerImgSuite.xray.preprocess import Preprocessing

NIH = "nih-chestxray14-samples"


def _with_biases(layers, seed=1):
    """Random biases and batch-norm statistics, so that every parameter of the ONNX graph matters."""
    rng = np.random.default_rng(seed)
    out = []
    for k in layers:
        if k[0] in ("conv", "dense"):
            k = (k[0], k[1], rng.normal(0, 0.1, k[2].shape).astype(np.float32)) + tuple(k[3:])
        elif k[0] == "norm":
            n = len(k[1])
            k = ("norm", *(v.astype(np.float32) for v in (rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                                                           rng.normal(0, 0.1, n), rng.uniform(0.5, 2.0, n))))
        out.append(k)
    return out


@pytest.mark.parametrize("architecture,size", [("small", 32), ("small-max", 32), ("seed", 30)])
def test_onnx_matches_numpy_reference(tmp_path, architecture, size):
    layers = _with_biases(build_layers(architecture, size, seed=3))
    params = Preprocessing(size, 0.4, 0.2, (0.3, 0.5))
    (tmp_path / "m.onnx").write_bytes(to_onnx(layers, params, ["normal", "opacity"], architecture))
    model = load_model(tmp_path / "m.onnx")
    assert model.params == params and model.classes == ["normal", "opacity"] and model.architecture == architecture
    x = np.random.default_rng(0).normal(0, 1, (5, 1, size, size)).astype(np.float32)
    got, expected = model.probabilities(x), forward_numpy(layers, x)
    assert got.shape == (5,) and np.abs(got - expected).max() < 1e-5
    assert len(np.unique(np.round(expected, 5))) == 5  # the reference is not a constant that anything would match


def _blob_detector(size):
    """Probability rises with the mean of bright pixels: conv picks the centre, relu, average, dense x20."""
    w = np.zeros((1, 1, 3, 3), np.float32)
    w[0, 0, 1, 1] = 1.0
    return [("conv", w, np.array([-1.0], np.float32), 1), ("relu",), ("gap",),
            ("dense", np.array([[200.0]], np.float32), np.array([-2.0], np.float32)), ("sigmoid",)]


def test_occlusion_heat_map_finds_the_opacity(tmp_path):
    size = 32
    params = Preprocessing(size, 0.0, 1.0)
    (tmp_path / "m.onnx").write_bytes(to_onnx(_blob_detector(size), params, ["clear", "blob"]))
    model = load_model(tmp_path / "m.onnx")
    image = np.zeros((size, size), np.float32)
    image[4:10, 20:28] = 3.0  # the 'opacity', upper right
    heat = occlusion_map(model, image.reshape(1, size, size), grid=8)
    r, c = np.unravel_index(np.argmax(heat), heat.shape)
    assert 0 <= r < 14 and 16 <= c < 32
    assert heat[20:, :12].max() == 0.0  # blanking empty lower-left regions changes nothing


def test_predict_nih_samples_csv_and_heat_maps(shared_data, tmp_path):
    size = 32
    params = Preprocessing(size, 0.45, 0.25, (0.3, 0.6))
    layers = _with_biases(build_layers("small", size, seed=5))
    (tmp_path / "m.onnx").write_bytes(to_onnx(layers, params, ["No Finding", "Finding"], "small"))
    folder = shared_data / NIH
    rows, warnings = predict_images([folder], tmp_path / "m.onnx", tmp_path / "out")
    assert [r["path"].split("/")[-1] for r in rows] == ["00000001_000.png", "00027426_000.png"]
    for row in rows:
        x, _ = prediction_input(row["path"], params)
        assert row["p_Finding"] == pytest.approx(forward_numpy(layers, x)[0], abs=2e-6)
        assert row["predicted"] == ("Finding" if row["p_Finding"] >= 0.5 else "No Finding")
    with open(tmp_path / "out" / "predictions.csv") as f:
        written = list(csv.DictReader(f))
    assert [float(r["p_Finding"]) for r in written] == [r["p_Finding"] for r in rows]
    maps = sorted((tmp_path / "out" / "heatmaps").iterdir())
    assert [m.name for m in maps] == ["0000_00000001_000.png", "0001_00027426_000.png"]
    with Image.open(maps[0]) as im:
        assert im.size == (512, 512) and im.mode == "RGB"


def test_predict_errors(shared_data, tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ImgSuiteError, match="bad.onnx: not a readable ONNX model"):
        load_model(tmp_path / "bad.onnx")
    image = shared_data / NIH / "00000001_000.png"
    assert main(["xray", "predict", str(image), "--model", str(tmp_path / "bad.onnx"), "--output",
                 str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
    import onnx
    from onnx import helper

    plain = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                                [helper.make_tensor_value_info("x", 1, [1])],
                                                [helper.make_tensor_value_info("y", 1, [1])]))
    plain.ir_version = 8
    plain.opset_import[0].version = 17
    onnx.save(plain, tmp_path / "plain.onnx")
    with pytest.raises(ImgSuiteError, match="not an imgsuite xray model"):
        load_model(tmp_path / "plain.onnx")


def test_predict_cli_imports_no_torch(shared_data, tmp_path):
    size = 32
    (tmp_path / "m.onnx").write_bytes(to_onnx(build_layers("small", size), Preprocessing(size), ["a", "b"]))
    code = ("import sys; from SlicerImgSuite.cli import main\n"
            f"rc = main(['xray', 'predict', {str(shared_data / NIH / '00000001_000.png')!r}, '--model', "
            f"{str(tmp_path / 'm.onnx')!r}, '--output', {str(tmp_path / 'out')!r}, '--quiet'])\n"
            "print(rc, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["0", "False"], result.stderr
    assert (tmp_path / "out" / "predictions.csv").is_file()


def test_summary_cli_on_nih_samples(shared_data, tmp_path, capsys):
    csv_path = shared_data / NIH / "labels_Data_Entry_2017_v2020_subset.csv"
    assert main(["xray", "summary", str(csv_path), "--output", str(tmp_path / "s"), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"No Finding": 1, "Finding": 1} and summary["sizes"] == {"512x512": 2}
    assert summary["intensity_max"] == [pytest.approx(241 / 255, abs=1e-6), 1.0]
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["classes.png", "examples.png", "histograms.png"]
