"""Damaged projection sets and impossible reconstruction options: errors naming the view file or the option."""

from __future__ import annotations

import numpy as np
import pytest

from SlicerImgSuite.cli import main
from SlicerImgSuite.tomo.geometry import circular, linear_sweep
from SlicerImgSuite.tomo.projset import write_projection_files


@pytest.fixture
def sweep(tmp_path):
    g = linear_sweep(5, 30, sid=1000.0, dims=(16, 12), pixel_size=(2.0, 2.0))
    images = np.random.default_rng(0).random((5, 12, 16)).astype(np.float32)
    write_projection_files(tmp_path / "proj" / "image", g, images)
    return tmp_path / "proj"


def _pfm(path, image):
    rows, cols = image.shape
    path.write_bytes(f"Pf\n{cols} {rows}\n-1\n".encode() + np.ascontiguousarray(image, "<f4").tobytes())


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_pixels_name_the_view(sweep, tmp_path, capsys, value):
    image = np.ones((12, 16), np.float32)
    image[3, 4] = value
    _pfm(sweep / "image0002.pfm", image)
    out = tmp_path / "vol.nrrd"
    assert main(["tomo", "--input", str(sweep), "--output", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "image0002.pfm: 1 of 192 pixels are NaN or infinite" in err, err
    assert not out.exists()


@pytest.mark.parametrize("algorithm", ["saa", "fbp", "sart"])
def test_absurd_finite_pixels_never_give_a_nan_volume(sweep, tmp_path, capsys, algorithm):
    """A damaged file's 3e38 is finite but overflows float32 in the reconstruction: an error, not a NaN volume."""
    image = np.ones((12, 16), np.float32)
    image[:, 6:9] = 3.0e38
    _pfm(sweep / "image0002.pfm", image)
    out = tmp_path / "vol.nrrd"
    code = main(["tomo", "--input", str(sweep), "--output", str(out), "--algorithm", algorithm, "--quiet"])
    if code == 0:  # where the algorithm's arithmetic stays finite, the volume written must be finite
        import SimpleITK as sitk

        assert np.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(out)))).all()
    else:
        assert code == 2 and "NaN or infinite voxels" in capsys.readouterr().err
        assert not out.exists()


def test_matrix_without_its_image_is_an_error(sweep, tmp_path, capsys):
    (sweep / "image0003.pfm").unlink()
    assert main(["tomo", "--input", str(sweep), "--output", str(tmp_path / "v.nrrd"), "--quiet"]) == 2
    assert "image0003.txt: matrix file without its projection image" in capsys.readouterr().err


@pytest.mark.parametrize("sad, sid", [(0.0, 1500.0), (-5.0, 1500.0), (1600.0, 1500.0)])
def test_sad_zero_or_beyond_sid_in_the_matrix_file_is_refused(tmp_path, capsys, sad, sid):
    g = circular(2, 1000.0, 1500.0, (8, 8), (1.0, 1.0))
    write_projection_files(tmp_path / "p" / "image", g, np.ones((2, 8, 8), np.float32))
    txt = tmp_path / "p" / "image0001.txt"
    lines = txt.read_text().splitlines()
    lines[4], lines[5] = f"{sad:18.8e}", f"{sid:18.8e}"
    txt.write_text("\n".join(lines) + "\n")
    assert main(["fdk", "-I", str(tmp_path / "p"), "-O", str(tmp_path / "v.nrrd"), "-r", "4", "--quiet"]) == 2
    assert "image0001.txt: lines 5-6: need 0 < SAD <= SID" in capsys.readouterr().err


def test_fdk_refuses_a_source_at_the_detector_plane(tmp_path, capsys):
    g = circular(2, 1500.0, 1500.0, (8, 8), (1.0, 1.0))  # SID = SAD: the isocentre on the panel
    write_projection_files(tmp_path / "p" / "image", g, np.ones((2, 8, 8), np.float32))
    assert main(["fdk", "-I", str(tmp_path / "p"), "-O", str(tmp_path / "v.nrrd"), "-r", "4", "--quiet"]) == 2
    assert "view 0: the volume centre is not between source and detector" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, words",
    [
        (["--iterations", "0", "--algorithm", "sart"], "--iterations must be at least 1"),
        (["--subsets", "0", "--algorithm", "sart"], "--subsets must be at least 1"),
        (["--slice-thickness", "-1"], "--slice-thickness must be a positive"),
        (["--pixel-size", "0"], "--pixel-size must be a positive"),
        (["--slice-spacing", "nan"], "--slice-spacing must be a positive"),
        (["--depth-range", "300", "0"], "--depth-range needs MIN < MAX"),
    ],
)
def test_tomo_options_are_checked(sweep, tmp_path, capsys, options, words):
    assert main(["tomo", "--input", str(sweep), "--output", str(tmp_path / "v.nrrd"), "--quiet", *options]) == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, words",
    [(["-r", "0", "0", "0"], "-r/--dim needs at least 1 voxel"), (["-z", "0"], "-z/--volume-size needs positive")],
)
def test_fdk_options_are_checked(tmp_path, capsys, options, words):
    g = circular(2, 1000.0, 1500.0, (8, 8), (1.0, 1.0))
    write_projection_files(tmp_path / "p" / "image", g, np.ones((2, 8, 8), np.float32))
    assert main(["fdk", "-I", str(tmp_path / "p"), "-O", str(tmp_path / "v.nrrd"), "--quiet", *options]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_a_singular_matrix_names_its_file(sweep, tmp_path, capsys):
    txt = sweep / "image0002.txt"
    lines = txt.read_text().splitlines()
    lines[3] = lines[2]  # two equal rows: no source position can be solved for (the error named no file)
    txt.write_text("\n".join(lines) + "\n")
    assert main(["tomo", "--input", str(sweep), "--output", str(tmp_path / "v.nrrd"), "--quiet"]) == 2
    assert "image0002.txt: lines 2-4: projection matrix is singular" in capsys.readouterr().err
