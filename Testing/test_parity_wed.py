"""``imgsuite wed`` beside Debian plastimatch 1.9.4's ``wed``.

plastimatch writes the water-equivalent depth in a beam's-eye volume (aperture pixels x 1 mm steps from the
clipping plane at the CT's entrance); ours writes it on the CT grid. Along the central ray both must equal the
analytic depth of a water box with a bone insert (plastimatch's Schneider stopping powers): ours to 2e-3 mm,
plastimatch's half-step-shifted samples to 0.05 mm (it interpolates HU across the water/bone faces, which adds
0.03 mm per insert).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.imageops.wed import stopping_power_ratio

AIR = float(stopping_power_ratio(np.array(-1000.0)))
BONE = float(stopping_power_ratio(np.array(1000.0)))


def _exact(x):
    """Analytic WED at x on the axis y = z = 0: air from the CT face at -41, water -25..-17, bone -17..-5,
    water -5..25, air after (source at x = -1000)."""
    edges = [(-41, -25, AIR), (-25, -17, 1.0), (-17, -5, BONE), (-5, 25, 1.0), (25, 41, AIR)]
    return sum(max(0.0, min(x, b) - a) * rsp for a, b, rsp in edges)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    d = tmp_path_factory.mktemp("wed")
    a = np.full((21, 41, 41), -1000, np.int16)
    a[:, 8:33, 8:33] = 0
    a[:, 15:26, 12:18] = 1000
    ct = sitk.GetImageFromArray(a)
    ct.SetSpacing((2, 2, 2))
    ct.SetOrigin((-40, -40, -20))
    sitk.WriteImage(ct, str(d / "ct.mha"))
    (d / "wed.cfg").write_text(
        "[INPUT SETTINGS]\nct=ct.mha\n[OUTPUT SETTINGS]\nproj_wed=proj_wed.mha\n[BEAM]\npos=-1000 0 0\n"
        "isocenter=0 0 0\nres=1\n[APERTURE]\noffset=900\ncenter=40 40\nresolution=81 81\nspacing=1 1\n"
    )
    return d


def test_wed_central_axis_equals_analytic_and_plastimatch(phantom, capsys):
    subprocess.run(["plastimatch", "wed", "--command-file", "wed.cfg"], cwd=phantom, check=True, capture_output=True)
    projv = (phantom / "proj_wed.mha.projv").read_text()
    front = float(
        next(line for line in projv.splitlines() if line.startswith("clipping_dist")).split("=")[1].split()[0]
    )
    theirs = sitk.GetArrayFromImage(sitk.ReadImage(str(phantom / "proj_wed.mha.nrrd")))[:, 40, 40]
    assert main(["wed", "--command-file", str(phantom / "wed.cfg"), "--output", str(phantom / "ours.mha")]) == 0
    assert "proj_wed" in capsys.readouterr().err  # plastimatch's beam's-eye output is named as not written
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(phantom / "ours.mha")))[10, 20, :]
    xs = -40.0 + 2 * np.arange(41)
    np.testing.assert_allclose(ours, [_exact(x) for x in xs], atol=2e-3)
    # plastimatch's step k holds the depth at x = aperture (-100) + front + k + 1/2
    steps = xs - (-100.0 + front) - 0.5
    inside = (steps >= 0) & (steps <= len(theirs) - 1)
    np.testing.assert_allclose(np.interp(steps[inside], np.arange(len(theirs)), theirs), ours[inside], atol=0.05)


def test_wed_off_axis_and_options(phantom, tmp_path, capsys):
    # an oblique beam: every voxel's depth is the integral along its own ray, checked at one voxel by sampling
    out = tmp_path / "oblique.mha"
    args = ["wed", "--input-ct", str(phantom / "ct.mha"), "--pos", "-600 -500 80", "--output", str(out)]
    assert main([*args, "--ray-step", "0.5"]) == 0
    depth = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    ct = sitk.ReadImage(str(phantom / "ct.mha"))
    hu = sitk.GetArrayFromImage(ct).astype(float)
    target = np.array(ct.TransformIndexToPhysicalPoint((30, 25, 12)))
    source = np.array([-600.0, -500.0, 80.0])
    t = np.linspace(0, 1, 200001)[1:] - 0.5 / 200000
    points = source + t[:, None] * (target - source)
    index = np.rint((points - np.array(ct.GetOrigin())) / 2.0).astype(int)
    inside = np.all((index >= 0) & (index < [41, 41, 21]), axis=1)
    step = np.linalg.norm(target - source) / 200000
    expected = step * stopping_power_ratio(hu[index[inside, 2], index[inside, 1], index[inside, 0]]).sum()
    assert depth[12, 25, 30] == pytest.approx(expected, abs=0.05)
    assert main(["wed", "--output", str(tmp_path / "x.mha")]) == 2
    assert "--input-ct" in capsys.readouterr().err
    assert main([*args, "--ray-step", "0"]) == 2
    assert "--ray-step" in capsys.readouterr().err


def test_wed_of_values_with_no_air_in_hu_warns():
    # an MR-like volume or a CT stored without its rescale (air 0): its air counted as water, silently;
    # a CT in HU and a flat water phantom say nothing
    import warnings

    from SlicerImgSuite.imageops.wed import water_equivalent_depth

    block = np.zeros((6, 8, 8), np.int16)
    block[:, 2:6, 2:6] = 1000  # 0 around a block: air if shifted by 1000, water as it is
    with pytest.warns(UserWarning, match="wed takes the values as HU, but none is below 0"):
        water_equivalent_depth(sitk.GetImageFromArray(block), (-100.0, 3.5, 2.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        water_equivalent_depth(sitk.GetImageFromArray(block - 1000), (-100.0, 3.5, 2.5))
        water_equivalent_depth(sitk.GetImageFromArray(np.zeros((6, 8, 8), np.int16)), (-100.0, 3.5, 2.5))
