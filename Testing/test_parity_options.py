"""One option spelling (issue 16 item 9): ``--direction-cosines`` everywhere a grid is given, as plastimatch spells
it, with ``--direction`` kept as an alias."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from Testing.test_imageops_plastimatch import imgsuite, plastimatch

ROT = "0.955336 -0.295520 0 0.295520 0.955336 0 0 0 1"
GRID = ["--dim", "6 5 4", "--spacing", "2 3 4", "--origin", "-5 2 7"]


def test_synth_vf_direction_cosines_matches_plastimatch(tmp_path):
    plastimatch("synth-vf", "--xf-trans", "1 2 3", *GRID, "--direction-cosines", ROT, "--output", tmp_path / "p.mha")
    imgsuite("synth-vf", "--xf-trans", "1 2 3", *GRID, "--direction-cosines", ROT, "--output", tmp_path / "o.mha")
    imgsuite("synth-vf", "--xf-trans", "1 2 3", *GRID, "--direction", ROT, "--output", tmp_path / "o2.mha")
    p, o, o2 = (sitk.ReadImage(str(tmp_path / n)) for n in ("p.mha", "o.mha", "o2.mha"))
    np.testing.assert_allclose(o.GetDirection(), p.GetDirection(), atol=1e-6)
    assert o.GetDirection() == o2.GetDirection() and o.GetDirection()[1] < -0.29  # really rotated
    np.testing.assert_array_equal(sitk.GetArrayFromImage(o), sitk.GetArrayFromImage(p))


def test_identity_and_alias_on_image_tools(tmp_path):
    imgsuite("synth", "--pattern", "xramp", *GRID, "--direction", ROT, "--output", tmp_path / "a.nrrd")
    imgsuite("synth", "--pattern", "xramp", *GRID, "--direction-cosines", ROT, "--output", tmp_path / "b.nrrd")
    a, b = sitk.ReadImage(str(tmp_path / "a.nrrd")), sitk.ReadImage(str(tmp_path / "b.nrrd"))
    assert a.GetDirection() == b.GetDirection() and a.GetDirection()[1] < -0.29
    imgsuite("resample", "--input", tmp_path / "a.nrrd", "--output", tmp_path / "c.nrrd", "--direction", "identity")
    np.testing.assert_allclose(sitk.ReadImage(str(tmp_path / "c.nrrd")).GetDirection(), np.eye(3).ravel(), atol=1e-12)
    imgsuite("xf-convert", "--input", _translation(tmp_path), "--output",
             tmp_path / "vf.mha", *GRID, "--direction-cosines", "identity")  # fmt: skip
    np.testing.assert_allclose(sitk.ReadImage(str(tmp_path / "vf.mha")).GetDirection(), np.eye(3).ravel(), atol=1e-12)


def _translation(folder):
    sitk.WriteTransform(sitk.TranslationTransform(3, (1.0, 2.0, 3.0)), str(folder / "t.tfm"))
    return folder / "t.tfm"
