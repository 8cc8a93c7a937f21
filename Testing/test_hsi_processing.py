"""Calibration, read procedures, loading and the ``imgsuite hsi`` commands."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.hsi.calibrate import calibrate, interpolate_white
from SlicerImgSuite.hsi.container import open_hsi, write_hsi
from SlicerImgSuite.hsi.envi import read_envi, write_envi
from SlicerImgSuite.hsi.envi_header import header_from_fields
from SlicerImgSuite.hsi.labels import Box, Labels
from SlicerImgSuite.hsi.load import load_hyperspectral
from SlicerImgSuite.hsi.procedures import apply_procedures, parse_procedures, register_microservice

WAVELENGTHS = [400.0, 500.0, 600.0, 700.0]


def known_scene():
    """A raw cube built from a known reflectance: raw = black + reflectance * (white - black)."""
    rng = np.random.default_rng(1)
    reflectance = rng.uniform(0.05, 0.95, size=(6, 5, 4)).astype(np.float32)
    black = rng.uniform(50, 60, size=(1, 5, 4)).astype(np.float32)
    white = black + rng.uniform(1000, 2000, size=(1, 5, 4)).astype(np.float32)
    raw = black + reflectance * (white - black)
    return reflectance, raw, white, black


def test_push_broom_and_snapshot_calibration():
    reflectance, raw, white, black = known_scene()
    np.testing.assert_allclose(calibrate(raw, white, black), reflectance, atol=1e-5)  # 1 line, broadcast
    full_white, full_black = np.repeat(white, 6, axis=0), np.repeat(black, 6, axis=0)
    full_white[3] *= 2  # a snapshot reference differs per line and is used as it is
    raw[3] = full_black[3] + reflectance[3] * (full_white[3] - full_black[3])
    np.testing.assert_allclose(calibrate(raw, full_white, full_black, chunk_lines=2), reflectance, atol=1e-5)
    with pytest.raises(ImgSuiteError, match="same samples and bands"):
        calibrate(raw, white[:, :3], black)


def test_push_broom_reference_scan_is_averaged_to_one_line():
    reflectance, raw, white, black = known_scene()
    noise = np.random.default_rng(2).normal(0, 20, size=(40, 5, 4)).astype(np.float32)
    scan = white + noise - noise.mean(axis=0)  # 40 lines of the white tile; the cube has 6
    with pytest.warns(UserWarning, match="white reference has 40 lines, the cube 6: using the mean"):
        out = calibrate(raw, scan, black)
    np.testing.assert_allclose(out, reflectance, atol=1e-4)


def test_calibration_guards_division_by_zero():
    reflectance, raw, white, black = known_scene()
    white[0, 2, 1] = black[0, 2, 1]  # a dead pixel-band
    with pytest.warns(UserWarning, match="6 pixel-bands"):
        out = calibrate(raw, white, black)
    assert np.all(out[:, 2, 1] == 0) and np.isfinite(out).all()


def test_white_interpolated_over_acquisition_time(tmp_path):
    reflectance, raw, white, black = known_scene()
    white_after = black + 0.5 * (white - black)  # the lamp lost half its output during the scan
    mid = black + 0.875 * (white - black)  # 1/4 of the way through: 1 - 0.25 * 0.5
    raw = black + reflectance * (mid - black)
    refs = {
        "white": {"acquisition time": "2024-01-01T10:00:00"},
        "white_after": {"acquisition time": "2024-01-01T10:08:00"},
    }
    write_hsi(
        tmp_path / "c.hsi",
        raw,
        wavelength=WAVELENGTHS,
        white=white,
        black=black,
        white_after=white_after,
        reference_headers=refs,
        acquisition_time="2024-01-01T10:02:00",
        previews=(),
    )
    loaded = load_hyperspectral(tmp_path / "c.hsi", calibrate=True)
    np.testing.assert_allclose(loaded.cube, reflectance, atol=1e-4)
    # a scan from 10:00 to 10:08 between the two whites: each line gets its own white
    lamp = np.linspace(1.0, 0.5, 6)[:, None, None]
    raw = black + reflectance * lamp * (white - black)
    write_hsi(
        tmp_path / "d.hsi",
        raw,
        wavelength=WAVELENGTHS,
        white=white,
        black=black,
        white_after=white_after,
        reference_headers=refs,
        acquisition_time=["2024-01-01T10:00:00", "2024-01-01T10:08:00"],
        previews=(),
    )
    np.testing.assert_allclose(load_hyperspectral(tmp_path / "d.hsi", calibrate=True).cube, reflectance, atol=1e-4)
    two = load_hyperspectral(tmp_path / "d.hsi", calibrate=True, bands="1:2")  # only those bands are calibrated
    np.testing.assert_allclose(two.cube, reflectance[:, :, 1:3], atol=1e-4)
    assert two.header["wavelength"] == ["500.0", "600.0"] and two.header["bands"] == "2"
    w = interpolate_white(white, white_after, "2024-01-01T10:00:00", "2024-01-01T10:08:00", "2024-01-01T11:00:00")
    np.testing.assert_allclose(w, white_after)  # clamped to the later reference


def test_crop_rotate_resample_keep_header_true():
    cube = np.arange(4 * 6 * 4, dtype=np.float32).reshape(4, 6, 4)  # lines, samples, bands
    header = header_from_fields(
        samples=6, lines=4, bands=4, wavelength=WAVELENGTHS, band_names=["a", "b", "c", "d"],
        pixel_size=[0.1, 0.3, "units=mm"],
    )  # fmt: skip
    out, h = apply_procedures(cube, header, ["crop:{1:4, 0:2, 1:2}"])
    np.testing.assert_array_equal(out, cube[0:3, 1:5, 1:3])  # inclusive ranges: samples, lines, bands
    assert h["wavelength"] == ["500.0", "600.0"] and h["band names"] == ["b", "c"] and h["samples"] == "4"
    out, h = apply_procedures(cube, header, ["rotate:clockwise"])
    assert out.shape == (6, 4, 4) and out[0, -1, 0] == cube[0, 0, 0]  # top-left goes to top-right
    assert h["pixel size"] == ["0.3", "0.1", "units=mm"]  # a quarter turn swaps the pixel's width and height
    out, _ = apply_procedures(cube, header, ["rotate:counterclockwise"])
    assert out[-1, 0, 0] == cube[0, 0, 0]
    out, _ = apply_procedures(cube, header, "{rotate:180, rotate:swap-left-right, rotate:swap-up-down}")
    np.testing.assert_array_equal(out, cube)
    out, h = apply_procedures(cube, header, ["resample:{3, 2, 2}"])
    assert out.shape == (2, 3, 2) and h["bands"] == "2" and "band names" not in h
    assert [float(v) for v in h["pixel size"][:2]] == [0.2, 0.6]  # half the samples and lines: twice the size
    np.testing.assert_allclose(out[0, 0], cube[0:2, 0:2].reshape(-1, 4).mean(axis=0).reshape(2, 2).mean(axis=1))
    np.testing.assert_allclose([float(v) for v in h["wavelength"]], [450.0, 650.0])


def test_merge_and_microservices(tmp_path):
    cube = np.ones((2, 3, 4), np.uint16)
    tile = 2 * np.ones((2, 2, 4), np.uint16)
    out, h = apply_procedures(
        cube, header_from_fields(bands=4), ["merge:{data:0:0, tile:3:1}"], resolver=lambda name: (tile, None)
    )
    assert out.shape == (3, 5, 4) and out[1, 3, 0] == 2 and out[0, 0, 0] == 1 and out[2, 0, 0] == 0

    @register_microservice("test-double")
    def double(c, header):
        return c * 2, header

    out, _ = apply_procedures(cube, header_from_fields(bands=4), ["microservice:test-double"])
    assert out.max() == 2
    with pytest.raises(ImgSuiteError, match="unknown microservice 'nope'"):
        apply_procedures(cube, header_from_fields(bands=4), ["microservice:nope"])
    with pytest.raises(ImgSuiteError, match="unknown read procedure 'sharpen'"):
        parse_procedures(["sharpen:{1}"])
    with pytest.raises(ImgSuiteError, match="outside"):
        apply_procedures(cube, header_from_fields(bands=4), ["crop:{0:9, 0:1, 0:3}"])


def test_labels_follow_spatial_procedures(tmp_path):
    cube = np.zeros((4, 6, 4), np.uint16)
    classes = np.zeros((4, 6), np.uint8)
    classes[0, 0] = 1
    write_hsi(
        tmp_path / "c.hsi",
        cube,
        wavelength=WAVELENGTHS,
        read_procedures=["rotate:clockwise"],
        labels=Labels(classes, ["none", "x"], masks={"x": classes == 1}, boxes=[Box("x", 0, 0, 1, 1)]),
        previews=(),
    )
    loaded = load_hyperspectral(tmp_path / "c.hsi", apply_procedures=True)
    assert loaded.cube.shape == (6, 4, 4) and loaded.labels.classification[0, -1] == 1
    labelmap = tmp_path / "classes.nrrd"
    argv = ["hsi", "convert", str(tmp_path / "c.hsi"), "--output", str(tmp_path / "c.nrrd"), "--apply-procedures"]
    assert main(argv + ["--output-labelmap", str(labelmap), "-q"]) == 0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(labelmap))), loaded.labels.classification)
    assert loaded.labels.masks["x"][0, -1] and "read procedures" not in loaded.header


def test_cli_info_convert_pack(tmp_path, capsys, shared_data):
    reflectance, raw, white, black = known_scene()
    folder = tmp_path / "scan"
    write_envi(
        folder / "capture" / "scan.raw",
        raw.astype(np.uint16),
        interleave="bil",
        wavelength=WAVELENGTHS,
        read_procedures=["crop:{0:3, 0:5, 0:3}"],
        sensor_type="Headwall",
    )
    write_envi(folder / "capture" / "WHITEREF_scan.raw", white.astype(np.uint16), interleave="bil")
    write_envi(folder / "capture" / "DARKREF_scan.raw", black.astype(np.uint16), interleave="bil")
    (folder / "boxes.csv").write_text("name,left,top,width,height\nleaf,1,1,2,2\n")
    (folder / "Metadata").mkdir()
    (folder / "Metadata" / "device.txt").write_text("G4-426")
    (folder / "capture" / "operator_notes.txt").write_text("lamp warmed up 10 min")
    hsi = tmp_path / "scan.hsi"
    assert main(["hsi", "pack", str(folder), "--output", str(hsi), "-q"]) == 0
    err = capsys.readouterr().err
    assert "not packed" in err and "operator_notes.txt" in err and "scan.raw" not in err  # named, never dropped silently
    with open_hsi(hsi) as f:
        assert f.read_bytes("Metadata/device.txt") == b"G4-426" and f.labels().boxes == [Box("leaf", 1, 1, 2, 2)]
        np.testing.assert_array_equal(f.cube, raw.astype(np.uint16))
        np.testing.assert_array_equal(f.black, black.astype(np.uint16))

    assert main(["hsi", "info", str(hsi), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["samples"] == 5 and data["wavelength"] == [400, 500, 600, 700] and data["sensor type"] == "Headwall"

    out = tmp_path / "r.nrrd"
    assert (
        main(
            [
                "hsi",
                "convert",
                str(hsi),
                "--output",
                str(out),
                "--calibrate",
                "--apply-procedures",
                "--bands",
                "1:2",
                "-q",
            ]
        )
        == 0
    )
    image = sitk.ReadImage(str(out))
    assert image.GetSize() == (4, 6) and image.GetNumberOfComponentsPerPixel() == 2
    expected = calibrate(raw.astype(np.uint16), white.astype(np.uint16), black.astype(np.uint16))[:, 0:4, 1:3]
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), expected, rtol=1e-6)
    assert [float(v) for v in image.GetMetaData("wavelength").split()] == [500, 600]

    nifti = tmp_path / "c.nii.gz"
    assert main(["convert", "--input", str(hsi), "--output-img", str(nifti), "-q"]) == 0
    assert sitk.ReadImage(str(nifti)).GetNumberOfComponentsPerPixel() == 4

    envi_out = tmp_path / "corn.envi"
    corn = shared_data / "envi-hyperspectral-plantcv" / "corn-kernel-hyperspectral.hdr"
    assert main(["hsi", "convert", str(corn), "--output", str(envi_out), "--bands", "0:9", "-q"]) == 0
    back, header = read_envi(envi_out.with_suffix(".hdr"), strict=True)
    original, _ = read_envi(corn)
    np.testing.assert_array_equal(back, original[:, :, :10])
    assert len(header["wavelength"]) == 10

    assert main(["hsi", "info", str(corn), "--strict"]) == 2
    assert "byte order" in capsys.readouterr().err
    assert main(["hsi", "convert", str(tmp_path / "nope.hsi"), "--output", str(out)]) == 2
    assert "nope.hsi: no such file" in capsys.readouterr().err


def test_cli_module_entry_point(tmp_path):
    write_hsi(tmp_path / "c.hsi", np.zeros((2, 2, 4), np.uint8), wavelength=WAVELENGTHS, previews=())
    result = subprocess.run(
        [sys.executable, "-m", "SlicerImgSuite.cli", "hsi", "info", str(tmp_path / "c.hsi")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("ENVI\n") and "; members: data.hdr, data.envi" in result.stdout


def test_microservice_from_an_installed_package(tmp_path, monkeypatch):
    # a package on sys.path that publishes a microservice the way a pip-installed plug-in does
    (tmp_path / "hsi_plugin.py").write_text("def halve(cube, header):\n    return cube / 2, header\n")
    info = tmp_path / "hsi_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hsi-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[slicerimgsuite.hsi_microservices]\nhalve = hsi_plugin:halve\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out, _ = apply_procedures(np.full((2, 2, 4), 8.0), header_from_fields(bands=4), ["microservice:halve"])
    assert out.max() == 4.0
    with pytest.raises(ImgSuiteError, match="unknown microservice 'nope'.*halve"):
        apply_procedures(np.ones((2, 2, 4)), header_from_fields(bands=4), ["microservice:nope"])
