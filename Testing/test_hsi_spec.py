"""Hyperspectral spec points (issue 11 item 4): pixel size in metres, a cube with a ``class`` field, other
``Reference/`` files kept and visible to microservices, scale factor / offsets on request, encoded file types refused.

The cube under test is PlantCV's corn kernel (real ENVI data, 43 x 31 x 580, BIL uint16) where a real cube helps.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.hsi.container import open_hsi
from SlicerImgSuite.hsi.envi import read_envi, write_envi
from SlicerImgSuite.hsi.envi_header import read_header
from SlicerImgSuite.hsi.load import load_hyperspectral
from SlicerImgSuite.hsi.procedures import MICROSERVICES, register_microservice

WAVELENGTHS = [400, 500, 600]


def _corn(shared_data, folder, **fields):
    """The corn kernel cube copied to ``folder``, its header extended with ``fields``."""
    source = shared_data / "envi-hyperspectral-plantcv" / "corn-kernel-hyperspectral.hdr"
    cube, header = read_envi(source)
    header.update({k.replace("_", " "): v for k, v in fields.items()})
    write_envi(folder / "data.raw", np.asarray(cube), header, interleave="bil")
    return folder / "data.hdr", np.asarray(cube)


def test_pixel_size_is_in_metres_unless_units_say(shared_data, tmp_path):
    hdr, _ = _corn(shared_data, tmp_path / "m", pixel_size=["0.0001", "0.00025"])
    assert main(["hsi", "convert", str(hdr), "--output", str(tmp_path / "m.nrrd"), "-q"]) == 0
    assert sitk.ReadImage(str(tmp_path / "m.nrrd")).GetSpacing() == pytest.approx((0.1, 0.25))
    hdr, _ = _corn(shared_data, tmp_path / "mm", pixel_size=["0.1", "0.25", "units=mm"])
    assert main(["hsi", "convert", str(hdr), "--output", str(tmp_path / "mm.nrrd"), "-q"]) == 0
    assert sitk.ReadImage(str(tmp_path / "mm.nrrd")).GetSpacing() == pytest.approx((0.1, 0.25))


def test_pack_keeps_a_cube_with_a_class_field_and_every_reference_file(shared_data, tmp_path, capsys):
    folder = tmp_path / "scan"
    _, cube = _corn(shared_data, folder, **{"class": "maize kernel"})
    white = np.full((1, cube.shape[1], cube.shape[2]), 3000, np.uint16)
    flat = np.linspace(0.9, 1.1, cube.shape[1] * cube.shape[2], dtype=np.float32).reshape(1, cube.shape[1], -1)
    write_envi(folder / "Reference" / "white.raw", white, interleave="bil")
    write_envi(folder / "Reference" / "black.raw", np.zeros_like(white), interleave="bil")
    write_envi(folder / "Reference" / "flat_field.raw", flat, interleave="bip")
    (folder / "Reference" / "lamp_spectrum.csv").write_text("nm,counts\n400,10\n")
    hsi = tmp_path / "scan.hsi"
    capsys.readouterr()
    assert main(["hsi", "pack", str(folder), "--output", str(hsi), "-q"]) == 0
    assert "not packed" not in capsys.readouterr().err
    with open_hsi(hsi) as f:
        np.testing.assert_array_equal(f.cube, cube)  # the cube, not taken for a mask
        assert f.header["class"] == "maize kernel"
        assert {"Reference/flat_field.hdr", "Reference/flat_field.envi", "Reference/lamp_spectrum.csv"} <= set(f.names)
        np.testing.assert_array_equal(f.read_envi_member("Reference/flat_field", wavelengths=False)[0], flat)
        assert f.read_bytes("Reference/lamp_spectrum.csv") == b"nm,counts\n400,10\n"
        np.testing.assert_array_equal(f.white, white)

    # a microservice sees the container's members: here it divides by the flat field
    seen = {}

    def flatten(cube, header, members):
        seen["names"] = members.names()
        field = members("Reference/flat_field")[0]
        return np.asarray(cube, np.float32) / field, header

    register_microservice("flatten", flatten)
    try:
        with open_hsi(hsi) as f:  # rewrite with read procedures naming it
            header = f.header.copy()
        header.set("read procedures", ["microservice:flatten"])
        source = tmp_path / "with_procedure"
        shutil.copytree(folder, source)
        write_envi(source / "data.raw", cube, header, interleave="bil")
        assert main(["hsi", "pack", str(source), "--output", str(tmp_path / "p.hsi"), "-q"]) == 0
        loaded = load_hyperspectral(tmp_path / "p.hsi", apply_procedures=True)
        assert "Reference/lamp_spectrum.csv" in seen["names"]
        np.testing.assert_allclose(loaded.cube, cube.astype(np.float32) / flat, rtol=1e-6)
    finally:
        MICROSERVICES.pop("flatten", None)


def test_reflectance_scale_factor_and_offsets_on_request(shared_data, tmp_path, capsys):
    bands = 580
    offsets = [str(-(b % 7)) for b in range(bands)]
    hdr, cube = _corn(shared_data, tmp_path / "s", reflectance_scale_factor="10000", data_offset_values=offsets)
    expected = (cube.astype(np.float64) + np.array(offsets, float)) / 10000
    assert main(["hsi", "convert", str(hdr), "--output", str(tmp_path / "raw.envi"), "-q"]) == 0
    assert np.array_equal(read_envi(tmp_path / "raw.hdr")[0], cube)  # not applied unless asked
    assert main(["hsi", "convert", str(hdr), "--apply-scaling", "--output", str(tmp_path / "r.envi"), "-q"]) == 0
    scaled, header = read_envi(tmp_path / "r.hdr")
    np.testing.assert_allclose(scaled, expected, rtol=1e-6)
    assert "reflectance scale factor" not in header and "data offset values" not in header
    # with a band range the per-band offsets follow the bands kept
    part = load_hyperspectral(hdr, apply_scaling=True, bands="10:19")
    np.testing.assert_allclose(part.cube, expected[:, :, 10:20], rtol=1e-6)
    # scale factors and white/black calibration do not go together
    with pytest.raises(ImgSuiteError, match="not both"):
        load_hyperspectral(hdr, apply_scaling=True, calibrate=True)


def test_an_encoded_file_type_is_refused(shared_data, tmp_path, capsys):
    hdr, _ = _corn(shared_data, tmp_path / "j")
    text = hdr.read_text().replace("file type = ENVI Standard", "file type = JPEGXL")
    assert "JPEGXL" in text
    hdr.write_text(text)
    assert read_header(hdr)["file type"] == "JPEGXL"
    capsys.readouterr()
    assert main(["hsi", "convert", str(hdr), "--output", str(tmp_path / "x.nrrd")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(hdr) in err and "file type = JPEGXL" in err
    assert not (tmp_path / "x.nrrd").exists()
