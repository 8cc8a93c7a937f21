"""CT threshold segmentation: body (couch removal), lungs, bone; CLI; plastimatch side by side; MRML segments."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.segmentation.ct import segment_body, segment_bone, segment_lungs, segment_preset

IBSI = ["STS_001", "STS_003", "STS_004"]


def _array(image):
    return sitk.GetArrayFromImage(image) > 0


def _dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def _imgsuite(*args):
    return subprocess.run([sys.executable, "-m", "SlicerImgSuite.cli", *args], capture_output=True, text=True)


def test_phantom_body_matches_truth_and_drops_couch(phantom):
    body = _array(segment_body(phantom.ct))
    truth = _array(phantom.masks["BODY"])
    assert _dice(body, truth) > 0.99
    # the couch slab lies posterior to the body: no body voxel there
    y = np.array([phantom.ct.TransformIndexToPhysicalPoint((0, j, 0))[1] for j in range(phantom.ct.GetSize()[1])])
    assert not body[:, y > 112, :].any()
    # while the threshold alone would have kept it
    assert (sitk.GetArrayFromImage(phantom.ct)[:, y > 112, :] > -300).any()


def test_phantom_lungs_and_bone(phantom):
    body = segment_body(phantom.ct)
    lungs = _array(segment_lungs(phantom.ct, body))
    truth = _array(phantom.masks["LUNG_L"]) | _array(phantom.masks["LUNG_R"])
    assert _dice(lungs, truth) > 0.95
    bone = _array(segment_bone(phantom.ct, body))
    hu = sitk.GetArrayFromImage(phantom.ct)
    assert bone.sum() > 0 and (hu[bone] > 200).all()
    assert not (bone & _array(phantom.masks["SPINAL_CORD"])).any()  # the cord sits inside the vertebra ring


def test_body_keeps_internal_air_only_when_asked(phantom):
    filled = _array(segment_body(phantom.ct))
    unfilled = _array(segment_body(phantom.ct, fill_holes=False))
    lungs = _array(phantom.masks["LUNG_L"])
    assert filled[lungs].all()
    assert unfilled[lungs].mean() < 0.1


def test_bottom_option_cuts_behind_the_couch_top(phantom):
    body = _array(segment_body(phantom.ct, bottom=50.0, remove_couch=False))
    y = np.array([phantom.ct.TransformIndexToPhysicalPoint((0, j, 0))[1] for j in range(phantom.ct.GetSize()[1])])
    assert body[:, y <= 50, :].any() and not body[:, y > 50, :].any()


@pytest.mark.parametrize("patient", IBSI)
def test_ibsi_body_contains_gtv_and_no_outside_air(shared_data, patient):
    from SlicerImgSuite.io import read_image

    folder = shared_data / "ibsi-sts-ct-rtstruct" / patient
    ct = read_image(folder / "dicom" / "image")
    body = _array(segment_body(ct))
    gtv = _array(sitk.ReadImage(str(folder / "nifti" / "CT_mask.nii.gz")))
    assert gtv.sum() > 0 and not (gtv & ~body).any(), "every GTV voxel is inside the body"
    air = sitk.GetArrayFromImage(ct) < -300
    for k in range(air.shape[0]):  # air connected to the slice border is outside the patient
        labels, _ = ndi.label(air[k])
        border = np.unique(np.r_[labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        outside = np.isin(labels, border[border > 0])
        assert not (outside & body[k]).any(), f"slice {k}: outside air inside the body"


def test_cli_segment_side_by_side_with_plastimatch(shared_data, tmp_path):
    ct_dir = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom" / "image"
    ours, theirs = tmp_path / "ours.nrrd", tmp_path / "plm.nrrd"
    run = _imgsuite("segment", "--input", str(ct_dir), "--output-img", str(ours))
    assert run.returncode == 0, run.stderr
    subprocess.run(
        ["plastimatch", "segment", "--input", str(ct_dir), "--output-img", str(theirs)], check=True, capture_output=True
    )
    a, b = sitk.ReadImage(str(ours)), sitk.ReadImage(str(theirs))
    assert a.GetSize() == b.GetSize() and a.GetPixelID() == sitk.sitkUInt8
    assert np.allclose(a.GetOrigin(), b.GetOrigin())
    # plastimatch leaves holes unfilled by default; ours fills them: the masks still agree closely
    assert _dice(_array(a), _array(b)) > 0.95
    assert (_array(a) | ~_array(b)).all() or (_array(b) & ~_array(a)).sum() < 0.01 * _array(b).sum()


def test_cli_presets_and_bad_input(phantom, tmp_path):
    out = tmp_path / "lung.nrrd"
    run = _imgsuite("segment", "--input", str(phantom.ct_dir), "--output-img", str(out), "--preset", "lung")
    assert run.returncode == 0, run.stderr
    assert (
        _dice(_array(sitk.ReadImage(str(out))), _array(phantom.masks["LUNG_L"]) | _array(phantom.masks["LUNG_R"]))
        > 0.95
    )
    bad = tmp_path / "broken.nrrd"
    bad.write_bytes(b"NRRD0004\nnot really\n")
    out2 = tmp_path / "never.nrrd"
    run = _imgsuite("segment", "--input", str(bad), "--output-img", str(out2))
    assert run.returncode == 2 and str(bad) in run.stderr
    assert not out2.exists() and not list(tmp_path.glob(".never*"))


def test_errors_name_the_problem(tmp_path):
    flat = sitk.Image([8, 8], sitk.sitkInt16)
    with pytest.raises(ImgSuiteError, match="3D"):
        segment_body(flat)
    air = sitk.Image([8, 8, 4], sitk.sitkInt16) - 1000
    with pytest.raises(ImgSuiteError, match="lower threshold"):
        segment_body(air)
    with pytest.raises(ImgSuiteError, match="preset"):
        segment_preset(air, "liver")


def test_an_image_without_air_or_fat_is_not_taken_for_a_ct(phantom):
    # an MR-like volume or a CT stored without its rescale (air 0): every voxel is above -300, so the "body"
    # filled the grid with exit 0 (only a truncated-field-of-view note). Refused, unless a threshold on its
    # own scale is given; the same CT shifted to unsigned values, with --lower-threshold shifted too, is segmented
    ct = phantom.ct
    unsigned = sitk.Cast(sitk.Cast(ct, sitk.sitkInt32) + 1024, sitk.sitkUInt16)
    with pytest.raises(ImgSuiteError, match="not a CT in HU"):
        segment_body(unsigned)
    shifted = sitk.GetArrayFromImage(segment_body(unsigned, lower_threshold=1024 - 300))
    assert np.array_equal(shifted, sitk.GetArrayFromImage(segment_body(ct)))


def test_masks_become_segments(phantom, mrml):
    from SlicerImgSuite.mrml.segmentations import masks_from_segmentation_node, segmentation_node_from_masks

    masks = {p: segment_preset(phantom.ct, p) for p in ("body", "lung", "bone")}
    node = segmentation_node_from_masks(mrml, masks, name="CT threshold")
    assert node.GetSegmentation().GetNumberOfSegments() == 3
    back = masks_from_segmentation_node(node, phantom.ct)
    for name, mask in masks.items():
        assert (_array(back[name]) == _array(mask)).all()


def test_inverted_ct_warns_that_air_is_not_dark(shared_data):
    # values negated (air +1000, bone below -1000, as a MONOCHROME1 image read without its inversion): the air
    # around the patient passed -300 HU and the "body" filled 99.7 % of the grid, said only as a truncated field
    # of view
    import warnings

    ct = sitk.ReadImage(str(shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "nifti" / "CT_image.nii.gz"))
    inverted = sitk.Cast(ct, sitk.sitkInt16) * -1
    said = {}
    for name, image in (("inverted", inverted), ("ct", ct)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            segment_body(image)
        said[name] = [str(w.message) for w in caught if "inverted values" in str(w.message)]
    assert said["ct"] == []
    assert len(said["inverted"]) == 1 and said["inverted"][0].startswith("22 % of the voxels are above +900 HU")
