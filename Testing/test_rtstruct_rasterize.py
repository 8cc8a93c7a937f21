"""RTSTRUCT reading and rasterization against real references: IBSI masks, Nelms analytic volumes, plastimatch."""

from __future__ import annotations

import csv
import subprocess
import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.io import read_image
from SlicerImgSuite.rtstruct import Grid, guess_grid, rasterize, read_rtstruct, scan_convert

IBSI_CASES = ["STS_001", "STS_003", "STS_004"]


@pytest.fixture(scope="session")
def nelms(shared_data):
    return shared_data / "nelms-dvh-analytic-phantom"


@pytest.mark.parametrize("case", IBSI_CASES)
def test_ibsi_masks_match_reference_voxel_for_voxel(shared_data, case):
    base = shared_data / "ibsi-sts-ct-rtstruct" / case
    ct = read_image(base / "dicom" / "image")
    ss = read_rtstruct(base / "dicom" / "mask" / "RS.dcm")
    assert ss.frame_of_reference and ss.names() == ["GTV_Mass_CT"]
    (mask,) = rasterize(ss, ct)
    ours = mask.full(Grid.of(ct)).astype(bool)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(base / "nifti" / "CT_mask.nii.gz"))) > 0
    assert ours.sum() == truth.sum() > 0
    assert np.array_equal(ours, truth)  # Dice 1.0000


def test_nelms_1mm_accurate_volumes_within_one_percent(nelms):
    truth = {
        r["structure"]: float(r["analytic_total_volume_cc"])
        for r in csv.DictReader(open(nelms / "ANALYTICAL_RESULTS" / "analytic_values_1mm_3mm_subset.csv"))
    }
    ct = read_image(nelms / "CT_1mm")
    errors = {}
    for path in sorted((nelms / "STRUCTURES_1mm").glob("*.dcm")):
        ss = read_rtstruct(path)
        masks = [m for m in rasterize(ss, ct, oversample=8) if m.array.size]
        assert len(masks) == 1  # POI_1 has no contours
        volume = masks[0].voxels() * np.prod(ct.GetSpacing()) / 1000
        errors[path.stem] = 100 * (volume / truth[path.stem] - 1)
    worst = max(errors, key=lambda k: abs(errors[k]))
    assert len(errors) == 15
    assert abs(errors[worst]) < 1.0, f"worst {worst}: {errors[worst]:+.2f} %"


def test_accurate_mode_beats_centre_rule_on_nelms_cylinder(nelms):
    ct = read_image(nelms / "CT_1mm")
    ss = read_rtstruct(nelms / "STRUCTURES_1mm" / "Cylinder_10_0.dcm")
    cc = np.prod(ct.GetSpacing()) / 1000
    plain = [m for m in rasterize(ss, ct) if m.array.size][0].voxels() * cc
    accurate = [m for m in rasterize(ss, ct, oversample=8) if m.array.size][0].voxels() * cc
    truth = 11.3097335529233
    assert abs(accurate - truth) < abs(plain - truth)
    assert abs(accurate / truth - 1) < 0.002


def test_even_odd_ring_and_union_option(phantom):
    ss = read_rtstruct(phantom.rtstruct)
    grid = Grid.of(phantom.ct)
    ring_xor, ring_union = (
        rasterize(ss, phantom.ct, rule=rule, names=["RING"])[0].full(grid) for rule in ("xor", "union")
    )
    truth = sitk.GetArrayFromImage(phantom.masks["RING"]).astype(bool)
    xor = ring_xor.astype(bool)
    dice = 2 * (xor & truth).sum() / (xor.sum() + truth.sum())
    assert dice > 0.95
    # the hole is empty with even-odd and filled with union
    hole = ring_union.astype(bool) & ~xor
    assert hole.sum() > 0.2 * xor.sum()
    assert not (hole & truth).any()


def test_phantom_structures_match_analytic_masks(phantom):
    ss = read_rtstruct(phantom.rtstruct)
    grid = Grid.of(phantom.ct)
    for m in rasterize(ss, phantom.ct):
        if m.roi.name not in phantom.masks:
            continue
        ours = m.full(grid).astype(bool)
        truth = sitk.GetArrayFromImage(phantom.masks[m.roi.name]).astype(bool)
        dice = 2 * (ours & truth).sum() / (ours.sum() + truth.sum())
        assert dice > 0.9, (m.roi.name, dice)


def test_same_masks_as_plastimatch_on_ibsi(shared_data, tmp_path):
    base = shared_data / "ibsi-sts-ct-rtstruct" / "STS_003" / "dicom"
    out = tmp_path / "plm.nrrd"
    subprocess.run(
        ["plastimatch", "convert", "--input", str(base / "mask" / "RS.dcm"), "--referenced-ct", str(base / "image"),
         "--output-labelmap", str(out)], check=True, capture_output=True,
    )  # fmt: skip
    ct = read_image(base / "image")
    ours = rasterize(read_rtstruct(base / "mask" / "RS.dcm"), ct)[0].full(Grid.of(ct)).astype(bool)
    theirs = sitk.GetArrayFromImage(sitk.ReadImage(str(out))) > 0
    assert np.array_equal(ours, theirs)


def test_guessed_grid_keeps_every_contour_plane():
    from pydicom.data import get_testdata_file

    ss = read_rtstruct(get_testdata_file("rtstruct.dcm"))
    grid_image = guess_grid(ss, spacing=(1, 1, 2))
    grid = Grid.of(grid_image)
    planes = {round(float(c.points[0, 2]), 2) for r in ss.rois for c in r.contours if c.kind == "CLOSED_PLANAR"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no contour may fall outside the guessed grid
        masks = rasterize(ss, grid_image)
    filled = set()
    for m in masks:
        full = m.full(grid)
        for k in np.nonzero(full.any(axis=(1, 2)))[0]:
            filled.add(round(float(grid.to_physical([[0, 0, k]])[0, 2]), 2))
    assert planes <= filled


def test_scan_convert_square_with_hole_is_even_odd():
    outer = np.array([[0.5, 0.5], [6.5, 0.5], [6.5, 6.5], [0.5, 6.5]])
    inner = np.array([[2.5, 2.5], [4.5, 2.5], [4.5, 4.5], [2.5, 4.5]])
    mask = scan_convert([outer, inner], 8, 8)
    assert mask.sum() == 36 - 4 and not mask[3, 3] and mask[1, 1]


def test_not_an_rtstruct_is_a_clear_error(shared_data):
    ct_file = sorted((shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom" / "image").glob("*.dcm"))[0]
    with pytest.raises(ImgSuiteError, match="not an RTSTRUCT") as err:
        read_rtstruct(ct_file)
    assert str(ct_file) in str(err.value)


def test_corrupt_file_is_a_clear_error(tmp_path, shared_data):
    src = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom" / "mask" / "RS.dcm"
    bad = tmp_path / "RS.dcm"
    bad.write_bytes(src.read_bytes()[:3000])
    with pytest.raises(ImgSuiteError) as err:
        read_rtstruct(bad)
    assert str(bad) in str(err.value)


def test_non_axial_contours_are_refused(tmp_path, shared_data):
    src = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom"
    ds = pydicom.dcmread(src / "mask" / "RS.dcm")
    points = np.array(ds.ROIContourSequence[0].ContourSequence[0].ContourData, float).reshape(-1, 3)
    points[:, 2] += np.linspace(0, 10, len(points))  # tilt the plane
    ds.ROIContourSequence[0].ContourSequence[0].ContourData = [f"{v:.4f}" for v in points.ravel()]
    ds.save_as(tmp_path / "RS.dcm")
    with pytest.raises(ImgSuiteError, match="not in a plane"):
        rasterize(read_rtstruct(tmp_path / "RS.dcm"), read_image(src / "image"))


def test_contours_outside_the_grid_warn_and_are_counted(shared_data):
    base = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom"
    ct = read_image(base / "image")
    small = sitk.RegionOfInterest(ct, ct.GetSize()[:2] + (10,), (0, 0, 0))  # first 10 slices only
    with pytest.warns(UserWarning, match=r"\d+ contour\(s\) lie outside .* along the slice axis.*: 'GTV_Mass_CT' \d+"):
        rasterize(read_rtstruct(base / "mask" / "RS.dcm"), small)


def _square_contour(lo, hi, z):
    from SlicerImgSuite.rtstruct import Contour

    square = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]], float)
    return Contour(np.column_stack([square, np.full(4, float(z))]))


def _structure_set(*rois):
    from SlicerImgSuite.rtstruct import Roi, StructureSet

    return StructureSet([Roi(n + 1, name, contours=contours) for n, (name, contours) in enumerate(rois)])


def test_inner_contour_slightly_off_its_outer_plane_still_cuts_the_hole():
    # outer 8x8 voxels, inner 4x4, the inner written 0.002 mm off the outer's plane (a TPS rounding error)
    ring = [c for z in (3, 4, 5) for c in (_square_contour(1.5, 9.5, z), _square_contour(3.5, 7.5, z + 0.002))]
    reference = sitk.Image(12, 12, 10, sitk.sitkUInt8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is lost, so nothing is reported
        (mask,) = rasterize(_structure_set(("RING", ring)), reference)
    full = mask.full(Grid.of(reference))
    assert full.sum(axis=(1, 2)).tolist() == [0, 0, 0, 48, 48, 48, 0, 0, 0, 0]  # 64 - 16 per slice
    assert not full[3:6, 4:8, 4:8].any()  # the hole stays open


def test_contours_outside_the_grid_in_plane_are_reported_per_roi():
    reference = sitk.Image(12, 12, 10, sitk.sitkUInt8)
    ss = _structure_set(
        ("FAR", [_square_contour(50, 60, 5)]), ("EDGE", [_square_contour(-5, 5, 5)]), ("IN", [_square_contour(1, 6, 5)])
    )
    with pytest.warns(UserWarning) as caught:
        far, edge, inside = rasterize(ss, reference)
    (message,) = [str(w.message) for w in caught]
    assert message.startswith("2 contour(s) reach outside the reference grid in-plane")
    assert message.endswith("'FAR' 1 (4 points), 'EDGE' 1 (3 points)")  # IN is not named
    assert far.voxels() == 0 and edge.voxels() == 30 and inside.voxels() == 25  # EDGE keeps its 6x5 voxels in the grid


def test_contours_finer_than_the_slices_are_not_called_outside():
    reference = sitk.Image(12, 12, 4, sitk.sitkUInt8)
    reference.SetSpacing([1, 1, 3])
    ss = _structure_set(("FINE", [_square_contour(2, 8, z) for z in range(10)]))  # planes 1 mm apart on 3 mm slices
    with pytest.warns(UserWarning) as caught:
        (mask,) = rasterize(ss, reference)
    (message,) = [str(w.message) for w in caught]
    assert "outside" not in message
    assert message.startswith("6 contour(s) not used: their planes are closer together than the grid's 3 mm slices")
    assert message.endswith("'FINE' 6")
    assert mask.full(Grid.of(reference)).sum(axis=(1, 2)).tolist() == [36] * 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 3 sub-slices per slice take every plane
        rasterize(ss, reference, oversample=(1, 1, 3))


def test_contours_on_every_other_slice_fill_the_slices_between():
    from SlicerImgSuite.rtstruct import Contour, Roi, StructureSet

    square = np.array([[2.0, 2.0], [7.0, 2.0], [7.0, 7.0], [2.0, 7.0]])
    contours = [Contour(np.column_stack([square, np.full(4, float(z))])) for z in (2, 4, 6)]
    reference = sitk.Image(10, 10, 10, sitk.sitkUInt8)
    (mask,) = rasterize(StructureSet([Roi(1, "S", contours=contours)]), reference)
    per_slice = mask.full(Grid.of(reference)).sum(axis=(1, 2))
    # planes 2 mm apart: each slab is 2 slices thick, [z - 1, z + 1)
    assert per_slice.tolist() == [0, 25, 25, 25, 25, 25, 25, 0, 0, 0]


def test_cerr_style_file_without_contour_image_references(shared_data, tmp_path):
    """No ContourImageSequence, Frame of Reference only inside ReferencedFrameOfReferenceSequence: same mask."""
    base = shared_data / "ibsi-sts-ct-rtstruct" / "STS_003"
    ds = pydicom.dcmread(base / "dicom" / "mask" / "RS.dcm")
    frame = ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID
    if "FrameOfReferenceUID" in ds:
        del ds.FrameOfReferenceUID
    for roi in ds.StructureSetROISequence:
        del roi.ReferencedFrameOfReferenceUID
    for item in ds.ROIContourSequence:
        for contour in item.ContourSequence:
            if "ContourImageSequence" in contour:
                del contour.ContourImageSequence
    ds.save_as(tmp_path / "RS.dcm")
    ss = read_rtstruct(tmp_path / "RS.dcm")
    assert ss.frame_of_reference == frame
    ct = read_image(base / "dicom" / "image")
    ours = rasterize(ss, ct)[0].full(Grid.of(ct)).astype(bool)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(base / "nifti" / "CT_mask.nii.gz"))) > 0
    assert np.array_equal(ours, truth)
