"""``synth`` patterns cylinder, donut, dose and noise, and ``--output-dose-img/--output-ss-img/--output-ss-list``,
against Debian plastimatch 1.9.4 on the same grid (5 mm voxels, centres never on a pattern's edge)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from Testing.test_imageops_plastimatch import imgsuite, plastimatch, voxels

GRID = ["--dim", "20 22 18", "--spacing", "5 4.5 5.5", "--origin", "-47.5 -49 -46"]
CASES = [
    ["--pattern", "cylinder", "--center", "3 -4 2", "--radius", "20 30 25"],
    ["--pattern", "donut"],
    ["--pattern", "donut", "--donut-center", "3 -4 2", "--donut-radius", "40 30 20", "--donut-rings", "3"],
    ["--pattern", "dose"],
    ["--pattern", "dose", "--dose-center", "3 -4 2", "--dose-size", "60 40 50", "--penumbra", "8",
     "--foreground", "2", "--background", "0.1"],
    ["--pattern", "dose", "--dose-size", "-30 40 -20 35 -10 30", "--penumbra", "6", "--foreground", "70",
     "--background", "0"],
    ["--pattern", "sphere", "--foreground", "100", "--background", "0"],
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(c[1:4]))
def test_synth_matches_plastimatch(tmp_path, case):
    plastimatch("synth", *GRID, *case, "--output", tmp_path / "p.nrrd", "--output-dose-img", tmp_path / "pd.nrrd")
    imgsuite("synth", *GRID, *case, "--output", tmp_path / "o.nrrd", "--output-dose-img", tmp_path / "od.nrrd",
             "--output-ss-img", tmp_path / "ss.nrrd", "--output-ss-list", tmp_path / "ss.txt")  # fmt: skip
    ours, theirs = voxels(tmp_path / "o.nrrd"), voxels(tmp_path / "p.nrrd")
    assert ours.dtype == theirs.dtype == np.float32 and len(np.unique(theirs)) > 1
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-4)  # plastimatch works in float32
    np.testing.assert_array_equal(voxels(tmp_path / "od.nrrd"), voxels(tmp_path / "pd.nrrd"))
    ss = voxels(tmp_path / "ss.nrrd")
    assert ss.any() and set(np.unique(ss)) <= {0, 1}
    assert (tmp_path / "ss.txt").read_text() == "0|255 0 0|Foreground\n"


def test_dose_pattern_analytic(tmp_path):
    """Flat 70 inside, 0 outside, linear over the 6 mm penumbra: mid-penumbra is 35, a corner's middle 17.5."""
    grid = ["--dim", "1 1 1", "--spacing", "1 1 1"]
    for origin, expected in (("0 0 0", 70.0), ("-47 0 0", 35.0), ("-47 -47 0", 17.5), ("0 0 60", 0.0)):
        imgsuite("synth", "--pattern", "dose", *grid, "--origin", origin, "--penumbra", "6", "--foreground", "70",
                 "--background", "0", "--output", tmp_path / "o.nrrd")  # fmt: skip
        assert voxels(tmp_path / "o.nrrd").item() == pytest.approx(expected, abs=1e-4), origin


def test_noise_pattern_statistics(tmp_path):
    """Random, so compared by its statistics: mean 5, std 2 (16000 voxels: within 0.05 and 0.05)."""
    imgsuite("synth", "--pattern", "noise", "--dim", "40 40 10", "--noise-mean", "5", "--noise-std", "2",
             "--output", tmp_path / "o.nrrd")  # fmt: skip
    v = voxels(tmp_path / "o.nrrd")
    assert v.mean() == pytest.approx(5, abs=0.05) and v.std() == pytest.approx(2, abs=0.05)


def test_synth_refuses_bad_dose(tmp_path, capsys):
    argv = ["synth", "--pattern", "dose", "--dim", "4", "--dose-size", "10", "--penumbra", "6"]
    assert main([*argv, "--output", str(tmp_path / "o.nrrd"), "--quiet"]) == 2
    assert "--penumbra" in capsys.readouterr().err and not (tmp_path / "o.nrrd").exists()
    # the thorax pattern keeps its own four structures in the ss-img
    imgsuite("synth", "--pattern", "thorax", "--dim", "30 30 20", "--output-ss-img", tmp_path / "ss.nrrd",
             "--output-ss-list", tmp_path / "ss.txt")  # fmt: skip
    assert sitk.ReadImage(str(tmp_path / "ss.nrrd")).GetPixelID() == sitk.sitkUInt32
    assert [line.split("|")[2] for line in (tmp_path / "ss.txt").read_text().splitlines()] == [
        "Body", "Lung_L", "Lung_R", "Tumor"]  # fmt: skip
    assert voxels(tmp_path / "ss.nrrd").max() >= 3  # bits of overlapping body and lung


@pytest.mark.parametrize(
    "options",
    [["--dim", "64 64 48", "--spacing", "5 5 5"], ["--dim", "50 40 30", "--spacing", "7 6.5 9", "--lung-tumor-pos",
     "30 -20 15"], ["--dim", "60 60 40", "--lung-tumor-pos", "-10", "--foreground", "40"]],
    ids=["default", "tumour x y z", "tumour z"],
)  # fmt: skip
def test_lung_pattern_is_plastimatchs(tmp_path, options):
    """plastimatch's lung (a cylindrical chest wall, lung -700 HU, a 20 mm tumour) voxel for voxel, and its
    structure bits (Body 1, Tumor 2, Lung 4: chest wall 1, tumour 3, lung 5)."""
    plastimatch("synth", "--pattern", "lung", *options, "--output", tmp_path / "p.mha",
                "--output-ss-img", tmp_path / "pss.mha")  # fmt: skip
    imgsuite("synth", "--pattern", "lung", *options, "--output", tmp_path / "o.mha",
             "--output-ss-img", tmp_path / "oss.nrrd", "--output-ss-list", tmp_path / "ss.txt")  # fmt: skip
    theirs = voxels(tmp_path / "p.mha")
    assert set(np.unique(theirs)) >= {-1000.0, -700.0} and np.array_equal(voxels(tmp_path / "o.mha"), theirs)
    bytes_ = voxels(tmp_path / "pss.mha").reshape(*theirs.shape, -1).astype(np.uint32)  # plastimatch: uchar vectors
    bits = sum(bytes_[..., i] << (8 * i) for i in range(bytes_.shape[-1]))
    np.testing.assert_array_equal(voxels(tmp_path / "oss.nrrd"), bits)
    assert [line.split("|")[2] for line in (tmp_path / "ss.txt").read_text().splitlines()] == ["Body", "Tumor", "Lung"]


@pytest.mark.parametrize(
    "options",
    [[], ["--gabor-k-fib", "3 10", "--gauss-std", "40 30 50", "--gauss-center", "5 -3 2"],
     ["--gabor-k-fib", "7 8", "--foreground", "100", "--background", "0"]],
    ids=["x", "fibonacci 3 of 10", "fibonacci 7 of 8"],
)  # fmt: skip
def test_gabor_pattern_is_plastimatchs(tmp_path, options):
    """plastimatch's gabor (a gauss times a cosine along x or a Fibonacci-spiral direction, each lobe normalised):
    equal to float32 rounding, and the foreground (gauss > 0.2) as its label."""
    grid = ["--dim", "30 28 26", "--spacing", "5 5 5"]
    plastimatch("synth", "--pattern", "gabor", *grid, *options, "--output", tmp_path / "p.mha",
                "--output-ss-img", tmp_path / "pss.mha")  # fmt: skip
    imgsuite("synth", "--pattern", "gabor", *grid, *options, "--output", tmp_path / "o.mha",
             "--output-ss-img", tmp_path / "oss.nrrd")  # fmt: skip
    theirs = voxels(tmp_path / "p.mha")
    assert theirs.min() < 0 < theirs.max()
    np.testing.assert_allclose(voxels(tmp_path / "o.mha"), theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
    label = voxels(tmp_path / "pss.mha").reshape(*theirs.shape, -1)[..., 0]
    np.testing.assert_array_equal(voxels(tmp_path / "oss.nrrd"), label)
