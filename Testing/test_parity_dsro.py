"""``xf-convert --output-dicom`` of a deformation: a DICOM Deformable Spatial Registration object, against Debian
plastimatch 1.9.4 on the same field and the same two real DICOM series (OpenTPS 4D CT phases 00 and 50).

DICOM's deformation runs from the Registered RCS (the fixed frame, where the grid lies) to the Source RCS (the
moving frame), ITK's sense, so both tools write the field's vectors as they are. plastimatch's object is not
dciodvfy clean and references one image per series; ours must be clean, read back to the same field (float32, the
precision of Vector Grid Data) and have the layout SlicerRT's DICOM SRO reader uses: one grid item with Image
Position/Orientation (Patient), Grid Dimensions, Grid Resolution and x-fastest Vector Grid Data, and the moving series
in the top-level Referenced Series Sequence (which SlicerRT uses to find the image to put under the transform).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom3tools import dciodvfy_errors

from SlicerImgSuite.registration.dicom_sro import DEFORMABLE_SPATIAL_REGISTRATION
from Testing.test_imageops_plastimatch import imgsuite, plastimatch


def _field(direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)) -> sitk.Image:
    """A smooth, non-symmetric field (mm) on a coarse grid over the 4D CT (x, y, z sizes differ)."""
    z, y, x = np.mgrid[0:9, 0:11, 0:13].astype(float)
    u = np.stack(
        [3 * np.sin(x / 3) * np.cos(y / 4), 2 * np.cos(z / 2) + 0.1 * x, 1.5 * np.sin((x + y) / 5) - 0.2 * z], -1
    )
    f = sitk.GetImageFromArray(u, isVector=True)
    f.SetSpacing((40.0, 30.0, 35.0))
    f.SetOrigin((-247.5, -161.25, -158.0))
    f.SetDirection(direction)
    return f


@pytest.fixture(scope="module")
def d(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("dsro")
    sitk.WriteImage(_field(), str(d / "vf.mha"))
    root = shared_data / "opentps-4dct-light-lung"
    return d, root / "00", root / "50"


def _one(folder):
    (path,) = list(folder.glob("*.dcm"))
    return pydicom.dcmread(path), path


def _both_tools(transform, folder, fixed, moving) -> None:
    """``xf-convert --output-dicom`` of ``transform`` by imgsuite into ``folder/o`` and plastimatch into ``folder/p``."""
    for tool, out in ((imgsuite, "o"), (plastimatch, "p")):
        tool("xf-convert", "--input", transform, "--output-dicom", folder / out, "--fixed-rcs", fixed,
             "--moving-rcs", moving)  # fmt: skip


def _grid(ds):
    """The grid item read the way SlicerRT's reader walks it: the last item of the sequence that has a grid."""
    (item,) = [i for i in ds.DeformableRegistrationSequence if "DeformableRegistrationGridSequence" in i]
    (grid,) = item.DeformableRegistrationGridSequence
    return item, grid


def test_dsro_matches_plastimatch_is_clean_and_reads_back(d):
    d, fixed, moving = d
    _both_tools(d / "vf.mha", d, fixed, moving)
    (ours, path), (theirs, their_path) = _one(d / "o"), _one(d / "p")
    assert ours.SOPClassUID == theirs.SOPClassUID == DEFORMABLE_SPATIAL_REGISTRATION
    (_, g), (_, their_g) = _grid(ours), _grid(theirs)
    vectors = np.frombuffer(g.VectorGridData, "<f4")
    assert vectors.tobytes() == their_g.VectorGridData  # the same float32 vectors in the same order
    field = _field()
    np.testing.assert_array_equal(vectors, sitk.GetArrayFromImage(field).astype(np.float32).ravel())
    assert [int(v) for v in g.GridDimensions] == [int(v) for v in their_g.GridDimensions] == [13, 11, 9]
    np.testing.assert_allclose(g.GridResolution, their_g.GridResolution)
    np.testing.assert_allclose([float(v) for v in g.ImagePositionPatient], field.GetOrigin())
    np.testing.assert_allclose([float(v) for v in their_g.ImagePositionPatient], field.GetOrigin())
    assert dciodvfy_errors(path) == []
    assert dciodvfy_errors(their_path)  # plastimatch's object is not clean
    # read back through our reader: the same field, to float32
    imgsuite("xf-convert", "--input", path, "--output", d / "back.mha")
    back = sitk.ReadImage(str(d / "back.mha"))
    assert back.GetSize() == field.GetSize() and back.GetDirection() == field.GetDirection()
    np.testing.assert_allclose(back.GetOrigin(), field.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(field), rtol=1e-6, atol=1e-6)


def test_dsro_layout_for_slicer_rt(d):
    """What SlicerRT's reader takes from the file, decoded here independently: grid point (i, j, k) at
    IPP + i dx row + j dy column + k dz (row x column) carries the displacement ITK's field gives there."""
    d, fixed, moving = d
    imgsuite("xf-convert", "--input", d / "vf.mha", "--output-dicom", d / "s", "--fixed-rcs", fixed,
             "--moving-rcs", moving)  # fmt: skip
    ds, _ = _one(d / "s")
    item, g = _grid(ds)
    moving_header = pydicom.dcmread(next(moving.iterdir()), stop_before_pixels=True)
    fixed_header = pydicom.dcmread(next(fixed.iterdir()), stop_before_pixels=True)
    assert item.SourceFrameOfReferenceUID == moving_header.FrameOfReferenceUID
    assert ds.FrameOfReferenceUID == fixed_header.FrameOfReferenceUID
    assert len(item.ReferencedImageSequence) == len(list(moving.iterdir()))
    series = [s.SeriesInstanceUID for s in ds.ReferencedSeriesSequence]
    assert moving_header.SeriesInstanceUID in series and len(series) <= 2  # SlicerRT warns beyond two
    assert "PreDeformationMatrixRegistrationSequence" not in item  # identity: left out (type 1C)
    row, col = np.array(g.ImageOrientationPatient, float).reshape(2, 3)
    dims = [int(v) for v in g.GridDimensions]
    step = np.array(g.GridResolution, float)
    ipp = np.array(g.ImagePositionPatient, float)
    vectors = np.frombuffer(g.VectorGridData, "<f4").reshape(-1, 3)
    transform = sitk.DisplacementFieldTransform(sitk.Cast(_field(), sitk.sitkVectorFloat64))
    for i, j, k in [(0, 0, 0), (12, 0, 0), (3, 7, 2), (12, 10, 8), (5, 1, 6)]:
        p = ipp + i * step[0] * row + j * step[1] * col + k * step[2] * np.cross(row, col)
        n = i + j * dims[0] + k * dims[0] * dims[1]
        np.testing.assert_allclose(vectors[n], np.subtract(transform.TransformPoint(p.tolist()), p), atol=1e-5)


def test_dsro_left_handed_field_and_bspline(d, tmp_path):
    """A field whose third axis is not row x column is written with its planes reversed; a B-spline is sampled
    on the grid given. Both read back to the same mapping of points."""
    d, fixed, moving = d
    flipped = _field((1, 0, 0, 0, 1, 0, 0, 0, -1))
    sitk.WriteImage(flipped, str(tmp_path / "flip.mha"))
    imgsuite("xf-convert", "--input", tmp_path / "flip.mha", "--output-dicom", tmp_path / "f", "--fixed-rcs", fixed,
             "--moving-rcs", moving, "--output", tmp_path / "flip-copy.mha")  # fmt: skip
    _, path = _one(tmp_path / "f")
    assert dciodvfy_errors(path) == []
    from SlicerImgSuite.registration.xforms import read_transform

    back, original = read_transform(path), read_transform(tmp_path / "flip.mha")
    assert np.allclose(np.array(back.GetDisplacementField().GetDirection()).reshape(3, 3)[:, 2], [0, 0, 1])
    for p in [(-200.0, -100.0, -180.0), (0.0, 10.0, -300.0), (150.0, 100.0, -420.0)]:
        np.testing.assert_allclose(back.TransformPoint(p), original.TransformPoint(p), atol=1e-5)
    b = sitk.BSplineTransform(3, 3)
    b.SetTransformDomainOrigin((-250.0, -170.0, -170.0))
    b.SetTransformDomainPhysicalDimensions((500.0, 340.0, 300.0))
    b.SetTransformDomainMeshSize((3, 3, 3))
    b.SetParameters(np.random.default_rng(3).normal(0, 4, len(b.GetParameters())).tolist())
    sitk.WriteTransform(b, str(tmp_path / "bs.tfm"))
    imgsuite("xf-convert", "--input", tmp_path / "bs.tfm", "--output-dicom", tmp_path / "b", "--fixed-rcs", fixed,
             "--moving-rcs", moving, "--origin", "-240 -160 -160", "--spacing", "20 20 20", "--dim", "24 16 14")  # fmt: skip
    back = read_transform(_one(tmp_path / "b")[1])
    for p in [(-240.0, -160.0, -160.0), (-20.0, 40.0, -60.0), (220.0, 140.0, 100.0)]:  # grid points
        np.testing.assert_allclose(back.TransformPoint(p), b.TransformPoint(p), atol=1e-4)


def test_linear_sro_reads_back(d, tmp_path):
    """Our reader also takes a Spatial Registration object (ours and plastimatch's) back to the ITK transform."""
    from SlicerImgSuite.registration.xforms import read_transform
    from Testing.test_parity_xform import write_linear_transforms

    d, fixed, moving = d
    write_linear_transforms(tmp_path)
    forward = sitk.ReadTransform(str(tmp_path / "affine.tfm"))
    _both_tools(tmp_path / "affine.tfm", tmp_path, fixed, moving)
    for out in ("o", "p"):
        back = read_transform(_one(tmp_path / out)[1])
        for p in [(0.0, 0.0, 0.0), (30.0, -20.0, 15.0), (-100.0, 80.0, -40.0)]:
            # ours prints 10 significant digits, plastimatch 6 decimals
            np.testing.assert_allclose(
                back.TransformPoint(p), forward.TransformPoint(p), atol=1e-6 if out == "o" else 1e-3
            )
