"""Damaged microscopy inputs and impossible nuclei options: clear errors, no empty output folder."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tifffile

from SlicerImgSuite.cli import main


def _tiff(path, array):
    tifffile.imwrite(path, array)
    return path


def _nuclei(tmp_path, image, *options):
    out = tmp_path / "out"
    code = main(["nuclei", "--input", str(image), "--output", str(out), "--quiet", *options])
    return code, out


@pytest.mark.parametrize(
    "options, words",
    [
        (["--diameter", "0"], "--diameter must be a positive"),
        (["--diameter", "nan"], "--diameter must be a positive"),
        (["--diameter", "1e9"], "--diameter 1e+09 is larger than the image"),
        (["--min-area", "50", "--max-area", "10"], "--min-area 50 is larger than --max-area 10"),
        (["--perinuclear-width", "-2"], "--perinuclear-width must be >= 0"),
        (["--method", "model", "--model", "/nonexistent/model.pt"], "/nonexistent/model.pt: no such model file"),
    ],
)
def test_bad_options_are_refused_and_leave_no_folder(tmp_path, capsys, options, words):
    image = _tiff(tmp_path / "a.tif", np.zeros((32, 32), np.uint16))
    code, out = _nuclei(tmp_path, image, *options)
    err = capsys.readouterr().err
    assert code == 2 and words in err, err
    assert not out.exists()


@pytest.mark.parametrize("what", ["nan", "inf"])
def test_non_finite_images_are_an_error_naming_the_file(tmp_path, capsys, what):
    array = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    array[5, 5] = float(what)
    image = _tiff(tmp_path / "a.tif", array)
    code, out = _nuclei(tmp_path, image)
    err = capsys.readouterr().err
    assert code == 2 and f"{image}: 1 pixels of the nuclear channel are NaN or infinite" in err, err
    assert not out.exists()


def test_tiff_declaring_huge_size_is_refused_before_allocating(tmp_path, capsys):
    image = _tiff(tmp_path / "a.tif", np.zeros((16, 16), np.uint8))
    data = bytearray(image.read_bytes())
    # rewrite ImageWidth (256) and ImageLength (257) of the first IFD to 200 000
    offset = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, offset)[0]
    for k in range(count):
        entry = offset + 2 + 12 * k
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):
            if kind == 3:
                struct.pack_into("<HH", data, entry + 2, 4, 1)  # SHORT -> LONG
            struct.pack_into("<I", data, entry + 8, 200_000)
    image.write_bytes(bytes(data))
    code, out = _nuclei(tmp_path, image)
    err = capsys.readouterr().err
    assert code == 2 and "declares" in err and str(image) in err, err
    assert not out.exists()
