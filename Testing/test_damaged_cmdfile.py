"""Damaged registration command files and inputs: errors with the file and the line, outputs all or nothing."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.registration.cmdfile import parse_command_file


@pytest.mark.parametrize(
    "stage, words",
    [
        ("xform=rigid\nmax_its=1e99", "line 5: bad value '1e99' for max_its"),
        ("xform=rigid\nmax_its=inf", "line 5: bad value 'inf' for max_its"),
        ("xform=bspline\ngrid_spac=nan", "line 5: bad value 'nan' for grid_spac: expected a finite number"),
        ("xform=bspline\nregularization_lambda=nan", "line 5: bad value 'nan' for regularization_lambda"),
        ("xform=rigid\nres=nan", "line 5: bad value 'nan' for res"),
    ],
)
def test_bad_stage_values_name_the_line(stage, words):
    text = f"[GLOBAL]\nfixed=f.mha\n[STAGE]\n{stage}\n"
    with pytest.raises(ImgSuiteError, match=words.replace("[", r"\[").replace("(", r"\(")):
        parse_command_file(text, "/x/reg.txt")


def test_unclosed_section_and_unknown_format_are_errors():
    with pytest.raises(ImgSuiteError, match=r"/x/reg.txt: line 3: a section header is \[GLOBAL\] or \[STAGE\]"):
        parse_command_file("[GLOBAL]\nfixed=f.mha\n[STAGE\nxform=rigid\n", "/x/reg.txt")
    with pytest.raises(ImgSuiteError, match="line 2: bad value 'jpeg2000' for img_out_fmt"):
        parse_command_file("[GLOBAL]\nimg_out_fmt=jpeg2000\n[STAGE]\nxform=rigid\n", "/x/reg.txt")


def _blob(path, shift=0.0, size=(20, 20, 10), value=None):
    z, y, x = np.mgrid[: size[2], : size[1], : size[0]].astype(np.float32)
    array = 100 * np.exp(-((x - 10 - shift) ** 2 + (y - 10) ** 2 + (z - 5) ** 2) / 20).astype(np.float32)
    if value is not None:
        array[:] = value
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 3.0))
    sitk.WriteImage(image, str(path))
    return path


def _run(tmp_path, capsys, globals_text, stage="xform=translation\nres=1 1 1\nmax_its=5"):
    cmd = tmp_path / "reg.txt"
    cmd.write_text(f"[GLOBAL]\n{globals_text}\n[STAGE]\n{stage}\n")
    code = main(["register", str(cmd), "--quiet"])
    return code, capsys.readouterr().err


def test_grid_finer_than_the_voxels_is_refused_before_allocating(tmp_path, capsys):
    f, m = _blob(tmp_path / "f.mha"), _blob(tmp_path / "m.mha", 1.0)
    out = tmp_path / "x.tfm"
    code, err = _run(tmp_path, capsys, f"fixed={f}\nmoving={m}\nxform_out={out}", "xform=bspline\ngrid_spac=0.01")
    assert code == 2 and "line 5: grid_spac = 0.01 0.01 0.01 mm gives" in err and "reg.txt" in err, err
    assert not out.exists()


def test_empty_stage_is_an_error(tmp_path, capsys):
    f, m = _blob(tmp_path / "f.mha"), _blob(tmp_path / "m.mha", 1.0)
    code, err = _run(tmp_path, capsys, f"fixed={f}\nmoving={m}", "")
    assert code == 2 and "reg.txt: line 4: empty [STAGE]" in err, err


@pytest.mark.parametrize("what", ["one voxel", "all NaN", "some inf"])
def test_unusable_images_are_refused(tmp_path, capsys, what):
    f = _blob(tmp_path / "f.mha")
    if what == "one voxel":
        m = _blob(tmp_path / "m.mha", size=(1, 1, 1))
        words = "too small to register"
    elif what == "all NaN":
        m, words = _blob(tmp_path / "m.mha", value=np.nan), "4000 of 4000 voxels are NaN or infinite"
    else:
        m = tmp_path / "m.mha"
        image = sitk.ReadImage(str(f))
        image[3, 3, 3] = float("inf")
        sitk.WriteImage(image, str(m))
        words = "1 of 4000 voxels are NaN or infinite"
    code, err = _run(tmp_path, capsys, f"fixed={f}\nmoving={m}")
    assert code == 2 and f"{m}: " in err and words in err, err
    assert "Traceback" not in err


def test_garbage_landmark_file_is_an_error_naming_it(tmp_path, capsys):
    f, m = _blob(tmp_path / "f.mha"), _blob(tmp_path / "m.mha", 1.0)
    good = tmp_path / "good.txt"
    good.write_text("1 2 3\n4 5 6\n7 8 9\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\nnan 5 6\n7 8 9\n")
    code, err = _run(tmp_path, capsys, f"fixed={f}\nmoving={m}\nfixed_landmarks={good}\nmoving_landmarks={bad}")
    assert code == 2 and f"{bad}: line 2" in err, err


def test_xform_out_is_not_left_when_img_out_fails(tmp_path, capsys):
    f, m = _blob(tmp_path / "f.mha"), _blob(tmp_path / "m.mha", 1.0)
    xf, img = tmp_path / "new" / "x.tfm", tmp_path / "warped.unknownsuffix"  # "new": made, then removed
    code, err = _run(tmp_path, capsys, f"fixed={f}\nmoving={m}\nxform_out={xf}\nimg_out={img}")
    assert code == 2 and str(img) in err, err
    assert not xf.exists() and not img.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.mha", "m.mha", "reg.txt"]
