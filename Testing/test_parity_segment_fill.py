"""``segment --fill-options r1 r2 r3 i1 i2 i3`` beside Debian plastimatch 1.9.4's ``segment --fill-holes``.

plastimatch's hole filling is three passes of ITK's iterative voting filter after its own body pipeline. Our body
pipeline differs (exact hole filling, couch removal that keeps the skin), so the fill step is compared on
plastimatch's own unfilled mask: ``voting_fill`` of plastimatch's mask without ``--fill-holes`` must equal
plastimatch's mask with it, voxel for voxel, on a phantom with concavities open to the outside and on a real CT
(IBSI STS_001, ``--fast``).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.segmentation.ct import voting_fill


def _plastimatch(ct, out, *fill):
    subprocess.run(
        ["plastimatch", "segment", "--input", str(ct), "--output-img", str(out), *fill],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return sitk.ReadImage(str(out))


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """An elliptic body with a 3-voxel slot from the front and a widening notch from the back (both open)."""
    d = tmp_path_factory.mktemp("fill")
    z, y, x = np.mgrid[0:16, 0:80, 0:80]
    body = (x - 40) ** 2 / 34**2 + (y - 38) ** 2 / 28**2 <= 1
    slot = (abs(x - 40) <= 1) & (y <= 30)
    notch = (abs(x - 62) <= (y - 40) / 3.0) & (y > 40)
    ct = sitk.GetImageFromArray(np.where(body & ~slot & ~notch, 20, -1000).astype(np.int16))
    ct.SetSpacing((2.0, 2.0, 3.0))
    sitk.WriteImage(ct, str(d / "ct.mha"))
    return d, body, slot


@pytest.mark.parametrize("options", [None, "3 2 1 1 4 8"])
def test_voting_fill_equals_plastimatch_on_its_mask(phantom, options):
    d, _, _ = phantom
    unfilled = _plastimatch(d / "ct.mha", d / "p0.mha")
    extra = ["--fill-options", options] if options else []
    filled = sitk.GetArrayFromImage(_plastimatch(d / "ct.mha", d / "p1.mha", "--fill-holes", *extra))
    ours = sitk.GetArrayFromImage(voting_fill(unfilled, *([[int(v) for v in options.split()]] if options else [])))
    assert (filled != sitk.GetArrayFromImage(unfilled)).sum() > 100  # the fill did something
    np.testing.assert_array_equal(ours, filled)


def test_voting_fill_equals_plastimatch_on_a_real_ct(shared_data, tmp_path):
    ct = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom" / "image"
    unfilled = _plastimatch(ct, tmp_path / "p0.nrrd", "--fast")
    filled = sitk.GetArrayFromImage(_plastimatch(ct, tmp_path / "p1.nrrd", "--fast", "--fill-holes"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(voting_fill(unfilled)), filled)


def test_segment_fill_options_closes_the_open_slot(phantom, capsys):
    d, body, slot = phantom
    assert main(["segment", "-q", "--input", str(d / "ct.mha"), "--output-img", str(d / "o0.mha")]) == 0
    assert main(["segment", "-q", "--input", str(d / "ct.mha"), "--output-img", str(d / "o1.mha"),
                 "--fill-options", "7 5 2 2 10 50"]) == 0  # fmt: skip
    plain, filled = (sitk.GetArrayFromImage(sitk.ReadImage(str(d / f))) > 0 for f in ("o0.mha", "o1.mha"))
    inside_slot = body & slot
    assert not plain[inside_slot].any()  # our exact filling leaves an open slot open
    assert filled[inside_slot].mean() > 0.9 and (filled >= plain).all()
    theirs = sitk.GetArrayFromImage(_plastimatch(d / "ct.mha", d / "p-default.mha", "--fill-holes")) > 0
    assert 2 * (filled & theirs).sum() / (filled.sum() + theirs.sum()) > 0.99  # the pipelines differ at corners
    out = d / "bad.mha"
    assert main(["segment", "-q", "--input", str(d / "ct.mha"), "--output-img", str(out), "--fill-options", "1 2"]) == 2
    assert "--fill-options" in capsys.readouterr().err and not out.exists()
