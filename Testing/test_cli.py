"""The imgsuite command line: header, convert, error reporting, and parity with plastimatch."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main


def imgsuite(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "SlicerImgSuite.cli", *map(str, args)], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_header_matches_plastimatch(phantom):
    ours = imgsuite("header", phantom.ct_dir).stdout
    theirs = subprocess.run(["plastimatch", "header", str(phantom.ct_dir)], capture_output=True, text=True).stdout
    for key in ("Origin", "Size", "Spacing", "Direction"):
        a = re.search(rf"^{key} = (.*)$", ours, re.M).group(1).split()
        b = re.search(rf"^{key} = (.*)$", theirs, re.M).group(1).split()
        np.testing.assert_allclose(np.array(a, float), np.array(b, float), atol=1e-3, err_msg=key)


@pytest.mark.parametrize("pixel", [sitk.sitkUInt8, sitk.sitkInt16, sitk.sitkUInt16, sitk.sitkFloat32, sitk.sitkFloat64])
def test_header_type_names_match_plastimatch(tmp_path, pixel):
    # (plastimatch loads DICOM series as float whatever their storage, so types are compared on files)
    path = tmp_path / "x.nrrd"
    sitk.WriteImage(sitk.Image(3, 4, 5, pixel), str(path))
    ours = imgsuite("header", path).stdout
    theirs = subprocess.run(["plastimatch", "header", str(path)], capture_output=True, text=True).stdout
    assert re.search(r"^Type = (.*)$", ours, re.M).group(1) == re.search(r"^Type = (.*)$", theirs, re.M).group(1)


def test_convert_dicom_to_nrrd_matches_plastimatch(phantom, tmp_path):
    imgsuite("convert", "--input", phantom.ct_dir, "--output-img", tmp_path / "ours.nrrd")
    subprocess.run(
        ["plastimatch", "convert", "--input", str(phantom.ct_dir), "--output-img", str(tmp_path / "pl.nrrd")],
        check=True, capture_output=True,
    )
    ours, theirs = sitk.ReadImage(str(tmp_path / "ours.nrrd")), sitk.ReadImage(str(tmp_path / "pl.nrrd"))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(theirs))
    np.testing.assert_allclose(ours.GetOrigin(), theirs.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(ours.GetSpacing(), theirs.GetSpacing(), atol=1e-4)


def test_convert_resample_and_type(phantom, tmp_path):
    out = tmp_path / "small.mha"
    assert main(["convert", "--input", str(phantom.ct_dir), "--output-img", str(out), "--spacing", "6.4 6.4 6",
                 "--output-type", "float", "--interpolation", "nn"]) == 0
    image = sitk.ReadImage(str(out))
    assert image.GetSize() == (48, 48, 24)
    assert image.GetPixelID() == sitk.sitkFloat32
    ct = sitk.GetArrayViewFromImage(phantom.ct)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image)[3, 5, 7], ct[6, 10, 14])


def test_errors_are_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "nope"
    result = imgsuite("header", missing, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "Traceback" not in result.stderr
    bad = tmp_path / "bad.mha"
    bad.write_text("junk")
    result = imgsuite("convert", "--input", bad, "--output-img", tmp_path / "o.nrrd", check=False)
    assert result.returncode == 2 and "bad.mha" in result.stderr
    assert not (tmp_path / "o.nrrd").exists()
    result = imgsuite("convert", "--input", bad, "--output-img", tmp_path / "o.nrrd", "--debug", check=False)
    assert "Traceback" in result.stderr


def test_bad_grid_options(phantom, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["convert"])  # --input is required
    out = tmp_path / "y.nrrd"
    assert main(["convert", "--input", str(phantom.ct_dir), "--dim", "1 2", "--output-img", str(out)]) == 2
    assert "--dim expects 3 numbers" in capsys.readouterr().err
    assert not out.exists()


def test_unwritable_output_is_one_line_naming_it(tmp_path):
    sitk.WriteImage(sitk.Image(4, 4, 4, sitk.sitkInt16), str(tmp_path / "x.nrrd"))
    result = imgsuite("resample", "--input", tmp_path / "x.nrrd", "--output", "/proc/x.nrrd", "--spacing", "2 2 2",
                      check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imgsuite resample: error: /proc/x.nrrd: cannot write: ")


def test_os_errors_exit_2_with_path_and_reason(tmp_path, monkeypatch, capsys):
    import errno

    from SlicerImgSuite.imageops import commands

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/data/ct.nrrd")

    monkeypatch.setattr(commands, "read_image", denied)
    assert main(["stats", "/data/ct.nrrd", "--quiet"]) == 2
    assert capsys.readouterr().err == "imgsuite stats: error: /data/ct.nrrd: Permission denied\n"
    with pytest.raises(PermissionError):
        main(["stats", "/data/ct.nrrd", "--quiet", "--debug"])
