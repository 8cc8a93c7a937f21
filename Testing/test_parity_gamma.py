"""gamma's plastimatch options (--mask --output-failmap --ref-only-threshold --compute-full-region --resample-nn),
side by side with Debian plastimatch 1.9.4 on the same doses.

plastimatch searches the evaluated dose at voxel positions only; ``--search-step`` equal to the voxel size makes
our lattice search the same, so the counts, the gamma values and the fail maps must agree (float32 rounding).
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main

COMMON = ["--dose-tolerance", "0.02", "--dta-tolerance", "3"]


def _save(array, path, spacing, origin):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))


def _blob(shape, spacing, centre, peak):
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]] * spacing
    r2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2
    return (peak * np.exp(-r2 / (2 * 12.0**2))).astype(np.float32)


@pytest.fixture(scope="module")
def doses(tmp_path_factory):
    d = tmp_path_factory.mktemp("gamma")
    _save(_blob((20, 22, 24), 3.0, (36, 33, 30), 60.0), d / "ref.mha", (3, 3, 3), (-5, -7, -9))
    _save(_blob((20, 22, 24), 3.0, (38.5, 33, 30), 62.4), d / "ev.mha", (3, 3, 3), (-5, -7, -9))
    _save(_blob((26, 28, 30), 2.5, (41, 40, 39), 62.0), d / "ev2.mha", (2.5, 2.5, 2.5), (-9, -11, -13))
    mask = np.zeros((20, 22, 24), np.uint8)
    mask[:, :11] = 1
    _save(mask, d / "mask.mha", (3, 3, 3), (-5, -7, -9))
    return d


CASES = {
    "default": ("ev.mha", []),
    "ref-only-threshold": ("ev.mha", ["--ref-only-threshold"]),
    "mask": ("ev.mha", ["--mask", "mask.mha"]),
    "compute-full-region": ("ev.mha", ["--compute-full-region"]),
    "other-grid": ("ev2.mha", []),
    "resample-nn": ("ev2.mha", ["--resample-nn"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gamma_options_equal_plastimatch(doses, case, capsys):
    evaluated, options = CASES[case]
    options = [str(doses / o) if o.endswith(".mha") else o for o in options]
    pl = subprocess.run(
        ["plastimatch", "gamma", *COMMON, *options, "--output", str(doses / f"pg_{case}.mha"),
         "--output-failmap", str(doses / f"pf_{case}.mha"), "--output-text", str(doses / f"pt_{case}.txt"),
         str(doses / "ref.mha"), str(doses / evaluated)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert pl.returncode == 0, pl.stderr
    report = (doses / f"pt_{case}.txt").read_text()
    analysed = int(re.search(r"number_of_analysis_voxels\t(\d+)", report).group(1))
    passed = int(re.search(r"number_of_pass_voxels\t(\d+)", report).group(1))
    rc = main(
        ["gamma", "--dose-units", "gy", "--search-step", "3", *COMMON, *options,
         "--output", str(doses / f"og_{case}.mha"), "--output-failmap", str(doses / f"of_{case}.mha"),
         str(doses / "ref.mha"), str(doses / evaluated)]
    )  # fmt: skip
    assert rc == 0
    rate = float(re.search(r"pass rate: ([\d.]+) %", capsys.readouterr().out).group(1))
    assert rate == pytest.approx(100.0 * passed / analysed, abs=0.006)
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(doses / f"og_{case}.mha")))
    theirs = sitk.GetArrayFromImage(sitk.ReadImage(str(doses / f"pg_{case}.mha")))
    # plastimatch writes 0 where it computes nothing, we write -1; a computed gamma of exactly 0 does not occur here
    np.testing.assert_array_equal(ours >= 0, theirs > 0)
    np.testing.assert_allclose(ours[ours >= 0], theirs[ours >= 0], atol=1e-5)
    failmap = sitk.ReadImage(str(doses / f"of_{case}.mha"))
    assert failmap.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(failmap), sitk.GetArrayFromImage(sitk.ReadImage(str(doses / f"pf_{case}.mha")))
    )
    if case == "compute-full-region":  # gamma everywhere, the pass rate of the thresholded points
        assert (ours >= 0).all() and analysed < ours.size
