"""``dice --zcrop`` and ``crop --zcrop`` beside Debian plastimatch 1.9.4.

plastimatch dice --zcrop crops both masks to the reference's bounding box less zsup mm at the top and zinf mm
at the bottom. The overlap counts and Dice must equal ours (which keeps every x and y and so the same voxels
when the test structure lies in the reference's x/y box). Its distances after that crop are wrong: a structure
cut by the crop touches the image edge, and its distance maps then understate the Hausdorff distance (checked
here against the brute-force voxel-set distance). plastimatch 1.9.4's crop accepts --zcrop and ignores it.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial import cKDTree

from SlicerImgSuite.cli import main

SPACING, ORIGIN = (1.5, 1.5, 2.5), (-19.0, -19.0, -30.0)


def _save(array, path):
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    sitk.WriteImage(image, str(path))


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    d = tmp_path_factory.mktemp("zcrop")
    ref = np.zeros((24, 20, 20), bool)
    ref[3:19, 4:14, 4:15] = True
    test = np.zeros_like(ref)
    test[2:17, 5:13, 5:15] = True
    test[10:12, 6:9, 7:9] = False
    _save(ref, d / "ref.mha")
    _save(test, d / "test.mha")
    return d, ref, test


def _numbers(text: str) -> dict:
    out = {k.lower(): int(v) for k, v in re.findall(r"^(TP|FN|FP):\s+(\d+)", text, re.M)}
    out["dice"] = float(re.search(r"^DICE:\s+([\d.]+)", text, re.M).group(1))
    out["hausdorff"] = float(re.search(r"^Hausdorff distance = ([\d.]+)", text, re.M).group(1))
    return out


def _voxel_hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.array(SPACING[::-1])
    pa, pb = np.argwhere(a) * scale, np.argwhere(b) * scale
    return float(max(cKDTree(pb).query(pa)[0].max(), cKDTree(pa).query(pb)[0].max()))


@pytest.mark.parametrize("zcrop", ["5 7.5", "2 1", "3.74 3.76", "0 0"])
def test_dice_zcrop_counts_equal_plastimatch_distances_are_exact(masks, zcrop, capsys):
    d, ref, test = masks
    pl = subprocess.run(
        ["plastimatch", "dice", "--all", "--zcrop", zcrop, str(d / "ref.mha"), str(d / "test.mha")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    theirs = _numbers(pl.stdout)
    assert main(["dice", "--all", "--zcrop", zcrop, str(d / "ref.mha"), str(d / "test.mha")]) == 0
    ours = _numbers(capsys.readouterr().out)
    assert {k: ours[k] for k in ("tp", "fn", "fp")} == {k: theirs[k] for k in ("tp", "fn", "fp")}
    assert ours["dice"] == pytest.approx(theirs["dice"], abs=2e-6)
    # the slices kept: centres within the reference's z extent (slices 3..18, corners) less zsup / zinf
    zsup, zinf = map(float, zcrop.split())
    centres = ORIGIN[2] + np.arange(24) * SPACING[2]
    low, high = centres[3] - 1.25 + zinf, centres[18] + 1.25 - zsup
    keep = (centres >= low - 1e-6) & (centres <= high + 1e-6)
    assert ours["tp"] == int((ref & test)[keep].sum())
    assert ours["hausdorff"] == pytest.approx(_voxel_hausdorff(ref[keep], test[keep]), abs=1e-5)
    if zcrop == "0 0":  # the test structure's slice 2 is cut: plastimatch's distance maps miss it
        assert theirs["hausdorff"] < ours["hausdorff"] - 1.0


def test_crop_zcrop_shrinks_the_box_where_plastimatch_ignores_it(masks, tmp_path):
    d, ref, _ = masks
    args = ["--input", str(d / "ref.mha"), "--structure", str(d / "ref.mha")]
    subprocess.run(
        ["plastimatch", "crop", *args, "--output", str(tmp_path / "p0.mha")], check=True, capture_output=True
    )
    subprocess.run(
        ["plastimatch", "crop", *args, "--zcrop", "5 7.5", "--output", str(tmp_path / "p1.mha")],
        check=True, capture_output=True,
    )  # fmt: skip
    p0, p1 = (sitk.ReadImage(str(tmp_path / f"p{i}.mha")) for i in (0, 1))
    assert p0.GetSize() == p1.GetSize() == (11, 10, 16)  # 1.9.4: --zcrop has no effect
    assert main(["crop", *args, "--output", str(tmp_path / "o0.mha")]) == 0
    ours0 = sitk.ReadImage(str(tmp_path / "o0.mha"))
    assert ours0.GetSize() == p0.GetSize() and ours0.GetOrigin() == pytest.approx(p0.GetOrigin())
    assert main(["crop", *args, "--zcrop", "5 7.5", "--output", str(tmp_path / "o1.mha")]) == 0
    ours = sitk.ReadImage(str(tmp_path / "o1.mha"))
    # slices 3..18 span 16 x 2.5 mm; 7.5 mm off the bottom and 5 mm off the top leave slices 6..16
    assert ours.GetSize() == (11, 10, 11)
    assert ours.GetOrigin()[2] == pytest.approx(ORIGIN[2] + 6 * SPACING[2])
    assert main(["crop", *args, "--zcrop", "30 20", "--output", str(tmp_path / "o2.mha")]) == 2
    assert not (tmp_path / "o2.mha").exists()
