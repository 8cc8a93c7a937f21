"""Issue 11 item 5: vector fields in probe/scale/stats (vs plastimatch), input messages, the CT beside an
RTSTRUCT file, and a mistyped option answered with the subcommand's usage and a suggestion."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A smooth non-uniform vector field (plastimatch synth-vf's gaussian) on a small oblique-free grid."""
    folder = tmp_path_factory.mktemp("vf")
    grid = sitk.Image(20, 18, 16, sitk.sitkFloat32)
    grid.SetSpacing((2.0, 2.5, 3.0))
    grid.SetOrigin((-20.0, -22.5, -24.0))
    sitk.WriteImage(grid, str(folder / "grid.mha"))
    args = ["--xf-gauss", "--gauss-center", "0 0 0", "--gauss-mag", "3 -2 4", "--gauss-std", "10 12 14"]
    assert main(["synth-vf", "--fixed", str(folder / "grid.mha"), "--output", str(folder / "vf.mha"), *args, "-q"]) == 0
    return folder / "vf.mha"


def _plastimatch(*args) -> str:
    return subprocess.run(["plastimatch", *map(str, args)], check=True, capture_output=True, text=True).stdout


def test_probe_on_a_vector_field_matches_plastimatch(field, capsys):
    locations, indices = "0 0 0;3.3 -4.1 5.2;500 0 0", "1 2 3;4.5 6.25 7.5"
    capsys.readouterr()
    assert main(["probe", str(field), "--location", locations, "--index", indices]) == 0
    ours = capsys.readouterr().out.splitlines()
    theirs = _plastimatch("probe", "-i", indices, str(field)).splitlines()
    theirs += _plastimatch("probe", "-l", locations, str(field)).splitlines()
    theirs = [ln for ln in theirs if ln.strip()[:1].isdigit()]
    assert len(ours) == len(theirs) == 5
    for a, b in zip(ours, theirs):
        va, vb = a.split(";")[2].split(), b.split(";")[2].split()
        if vb == ["N/A"]:
            assert va == ["N/A"]
        else:
            assert len(va) == 3 and np.allclose([float(v) for v in va], [float(v) for v in vb], atol=1e-4), (a, b)


def test_scale_and_stats_on_a_vector_field_match_plastimatch(field, tmp_path, capsys):
    assert main(["scale", str(field), "--weight", "-1.5", "--output", str(tmp_path / "ours.mha")]) == 0
    _plastimatch("scale", "--weight", "-1.5", "--output", tmp_path / "plm.mha", field)
    ours, plm = (sitk.ReadImage(str(tmp_path / f"{n}.mha")) for n in ("ours", "plm"))
    assert ours.GetNumberOfComponentsPerPixel() == plm.GetNumberOfComponentsPerPixel() == 3
    assert np.allclose(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(plm), atol=1e-6)
    capsys.readouterr()
    assert main(["stats", str(field)]) == 0
    mine = capsys.readouterr().out.splitlines()
    theirs = _plastimatch("stats", field).splitlines()
    for label in ("Min:", "Mean:", "Max:", "Mean abs:", "Ave len:"):
        a = [ln for ln in mine if ln.startswith(label)]
        b = [ln for ln in theirs if ln.startswith(label)]
        assert len(a) == len(b) == 1, label
        ours_numbers, their_numbers = ([float(v) for v in line[len(label) :].split()] for line in (a[0], b[0]))
        assert np.allclose(ours_numbers, their_numbers, atol=1.5e-3), (a, b)


def test_input_messages_name_the_real_problem(phantom, tmp_path, capsys):
    missing = tmp_path / "missing.nrrd"
    rc = main(["convert", "--input", str(missing), "--output-labelmap", str(tmp_path / "x.nrrd")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{missing}: no such file or folder" in err and "do not apply" not in err
    rc = main(["convert", "--input", str(phantom.rtstruct), "--referenced-ct", str(phantom.rtstruct),
               "--output-labelmap", str(tmp_path / "x.nrrd")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "no such folder" not in err and "names a file (a DICOM RTSTRUCT file)" in err
    assert list(tmp_path.iterdir()) == []


def test_an_rtstruct_file_finds_the_ct_beside_it_and_says_which(phantom, tmp_path, capsys):
    study = tmp_path / "study"
    shutil.copytree(phantom.ct_dir, study)
    shutil.copy(phantom.rtstruct, study / "RS.dcm")
    capsys.readouterr()
    assert main(["convert", "--input", str(study / "RS.dcm"), "--output-labelmap", str(tmp_path / "found.nrrd")]) == 0
    note = capsys.readouterr().err
    uid = phantom.ct.GetMetaData("0020|000e")
    assert f"using the CT series {uid}" in note and str(study) in note and "referenced by the RTSTRUCT" in note
    assert main(["convert", "--input", str(study / "RS.dcm"), "--referenced-ct", str(phantom.ct_dir), "-q",
                 "--output-labelmap", str(tmp_path / "named.nrrd")]) == 0  # fmt: skip
    found, named = (sitk.ReadImage(str(tmp_path / f"{n}.nrrd")) for n in ("found", "named"))
    assert found.GetSize() == phantom.ct.GetSize() and found.GetOrigin() == pytest.approx(phantom.ct.GetOrigin())
    assert np.array_equal(sitk.GetArrayFromImage(found), sitk.GetArrayFromImage(named))
    # for the record: Debian plastimatch 1.9.4 does not find it and guesses a 512 x 512 grid
    _plastimatch("convert", "--input", study / "RS.dcm", "--output-labelmap", tmp_path / "plm.nrrd")
    assert sitk.ReadImage(str(tmp_path / "plm.nrrd")).GetSize() != phantom.ct.GetSize()


def test_a_mistyped_option_shows_the_subcommands_usage_and_a_suggestion(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["dvh", "--input-dsoe", "RD.dcm"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith("usage: imgsuite dvh") and "did you mean --input-dose?" in err
    with pytest.raises(SystemExit):
        main(["convert", "--inptu", "x", "--output-img", "y.nrrd"])
    err = capsys.readouterr().err
    assert "usage: imgsuite convert" in err and "did you mean --input?" in err
    with pytest.raises(SystemExit):  # a nested subcommand: its own usage
        main(["hsi", "convert", "x.hsi", "--output", "y.nrrd", "--calbrate"])
    err = capsys.readouterr().err
    assert "usage: imgsuite hsi convert" in err and "did you mean --calibrate?" in err


def test_common_options_before_the_command_are_the_commands(tmp_path, capsys):
    """`imgsuite --debug CMD` shows the traceback (raises here) instead of refusing its own option."""
    from SlicerImgSuite import cli
    from SlicerImgSuite.errors import ImgSuiteError

    missing = str(tmp_path / "none.nrrd")
    with pytest.raises(ImgSuiteError, match="none.nrrd"):
        cli.main(["--debug", "stats", missing])
    assert cli.main(["-q", "stats", missing]) == 2
    assert "none.nrrd" in capsys.readouterr().err


def test_empty_selections_say_why_their_figures_are_nan(tmp_path, capsys):
    # stats over an empty mask and Dice of two empty structures print nan as plastimatch does; now they also
    # say why on stderr, and a non-empty selection says nothing
    image = sitk.Image(10, 10, 10, sitk.sitkUInt8)
    sitk.WriteImage(image, str(tmp_path / "empty.mha"))
    image[2:6, 2:6, 2:6] = 1
    sitk.WriteImage(image, str(tmp_path / "box.mha"))
    for command, why in (("stats", "no voxel inside the mask"), ("dice", "both structures are empty")):
        for mask, expect in (("empty.mha", True), ("box.mha", False)):
            args = [command, str(tmp_path / "box.mha"), "--mask", str(tmp_path / mask)] if command == "stats" else [
                command, str(tmp_path / mask), str(tmp_path / mask)]  # fmt: skip
            assert main(args) == 0
            out = capsys.readouterr()
            assert ("nan" in out.out.lower()) == expect
            assert (f"imgsuite {command}: warning:" in out.err and why in out.err) == expect, out.err


def test_threshold_refuses_a_swapped_range_and_says_when_nothing_is_selected(tmp_path, capsys):
    # --range 50,10 (lo > hi) and --above beyond the maximum both wrote an all-0 mask with exit 0, silently
    image = sitk.GetImageFromArray(np.arange(60, dtype=np.float32).reshape(3, 4, 5))
    sitk.WriteImage(image, str(tmp_path / "ramp.mha"))
    args = ["threshold", "--input", str(tmp_path / "ramp.mha"), "--output"]
    assert main([*args, str(tmp_path / "swapped.mha"), "--range", "50,10"]) == 2
    assert "ramp.mha: --range 50,10 is empty" in capsys.readouterr().err
    assert not (tmp_path / "swapped.mha").exists()
    assert main([*args, str(tmp_path / "none.mha"), "--above", "500"]) == 0
    assert "imgsuite threshold: warning: no voxel selected: the image's values lie from 0 to 59" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "some.mha"), "--range", "10,50"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "some.mha"))).sum() == 41


def test_resample_onto_a_grid_the_image_does_not_reach_warns(tmp_path, capsys):
    # --origin 900 900 900 put the output grid beside the image: all fill value, exit 0, silently
    image = sitk.GetImageFromArray(np.full((4, 6, 6), 7, np.float32))
    sitk.WriteImage(image, str(tmp_path / "in.mha"))
    args = ["resample", "--input", str(tmp_path / "in.mha"), "--output"]
    assert main([*args, str(tmp_path / "far.mha"), "--origin", "900 900 900"]) == 0
    assert "imgsuite resample: warning: the input image: no output voxel maps inside it" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "near.mha"), "--spacing", "0.5 0.5 0.5"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_mask_with_an_empty_mask_warns(tmp_path, capsys):
    # an empty mask turned every voxel into --mask-value, exit 0, silently
    image = sitk.GetImageFromArray(np.full((3, 4, 4), 40, np.int16))
    sitk.WriteImage(image, str(tmp_path / "in.mha"))
    mask = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    sitk.WriteImage(mask, str(tmp_path / "empty.mha"))
    mask[1, 1, 1] = 1
    sitk.WriteImage(mask, str(tmp_path / "one.mha"))
    for name, warned in (("empty.mha", True), ("one.mha", False)):
        args = ["mask", "--input", str(tmp_path / "in.mha"), "--mask", str(tmp_path / name), "--mask-value", "-1000"]
        assert main([*args, "--output", str(tmp_path / f"out_{name}")]) == 0
        err = capsys.readouterr().err
        assert ("imgsuite mask: warning: the mask is empty: every voxel becomes -1000" in err) == warned, err
