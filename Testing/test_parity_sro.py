"""``xf-convert --output-dicom``: a DICOM Spatial Registration object for a linear transform, against Debian
plastimatch 1.9.4 on the same transform and the same two real DICOM series (OpenTPS 4D CT phases 00 and 50).

plastimatch writes the same matrix (moving -> fixed, 6 decimals) but labels an affine matrix RIGID and leaves out
type 1 and 2 attributes that dciodvfy reports as errors; ours must be dciodvfy clean.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom3tools import dciodvfy_errors

from SlicerImgSuite.cli import main
from Testing.test_imageops_plastimatch import imgsuite, plastimatch
from Testing.test_parity_xform import write_linear_transforms


@pytest.fixture(scope="module")
def d(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("sro")
    write_linear_transforms(d)
    root = shared_data / "opentps-4dct-light-lung"
    return d, root / "00", root / "50"


def _moving_matrix(folder):
    (path,) = list(folder.glob("*.dcm"))
    ds = pydicom.dcmread(path)
    items = ds.RegistrationSequence
    m = items[-1].MatrixRegistrationSequence[0].MatrixSequence[0]
    return ds, np.array(m.FrameOfReferenceTransformationMatrix, float).reshape(4, 4), m, path


def test_affine_sro_matches_plastimatch_and_is_clean(d):
    d, fixed, moving = d
    plastimatch("xf-convert", "--input", d / "affine.tfm", "--output-dicom", d / "p", "--fixed-rcs", fixed,
                "--moving-rcs", moving)  # fmt: skip
    imgsuite("xf-convert", "--input", d / "affine.tfm", "--output-dicom", d / "o", "--fixed-rcs", fixed,
             "--moving-rcs", moving)  # fmt: skip
    ours, m_ours, item, path = _moving_matrix(d / "o")
    theirs, m_theirs, their_item, their_path = _moving_matrix(d / "p")
    np.testing.assert_allclose(m_ours, m_theirs, atol=1e-6)  # plastimatch prints 6 decimals
    assert item.FrameOfReferenceTransformationMatrixType == "AFFINE"
    assert their_item.FrameOfReferenceTransformationMatrixType == "RIGID"  # plastimatch's label is wrong
    # the matrix takes the moving image's points back to the fixed image's
    forward = sitk.ReadTransform(str(d / "affine.tfm"))
    for p in [(0.0, 0.0, 0.0), (30.0, -20.0, 15.0)]:
        q = m_ours @ np.array([*forward.TransformPoint(p), 1.0])
        np.testing.assert_allclose(q[:3], p, atol=1e-8)
    fixed_header = pydicom.dcmread(next(fixed.iterdir()), stop_before_pixels=True)
    assert ours.StudyInstanceUID == fixed_header.StudyInstanceUID and ours.Modality == "REG"
    assert ours.RegistrationSequence[0].FrameOfReferenceUID == fixed_header.FrameOfReferenceUID
    assert len(ours.RegistrationSequence[1].ReferencedImageSequence) == len(list(moving.iterdir()))
    assert dciodvfy_errors(path) == []
    assert dciodvfy_errors(their_path)  # plastimatch's object is not clean


def test_rigid_sro(d, tmp_path):
    d, fixed, moving = d
    imgsuite("xf-convert", "--input", d / "rigid.tfm", "--output-dicom", tmp_path / "o", "--fixed-rcs", fixed,
             "--moving-rcs", moving, "--output", tmp_path / "r.h5")  # fmt: skip
    _, m, item, path = _moving_matrix(tmp_path / "o")
    assert item.FrameOfReferenceTransformationMatrixType == "RIGID"
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-9)
    assert (tmp_path / "r.h5").exists() and dciodvfy_errors(path) == []


def test_sro_refuses(d, tmp_path, capsys):
    d, fixed, moving = d
    # a field is now written as a Deformable Spatial Registration object (test_parity_dsro.py); a B-spline needs
    # the grid to sample it on
    sitk.WriteTransform(sitk.BSplineTransform(3, 3), str(tmp_path / "bs.tfm"))
    base = ["xf-convert", "--output-dicom", str(tmp_path / "o"), "--quiet"]
    assert (
        main([*base, "--input", str(tmp_path / "bs.tfm"), "--fixed-rcs", str(fixed), "--moving-rcs", str(moving)]) == 2
    )
    assert "grid" in capsys.readouterr().err
    assert main([*base, "--input", str(d / "affine.tfm"), "--fixed-rcs", str(fixed)]) == 2
    assert "--moving-rcs" in capsys.readouterr().err
    assert main(["xf-convert", "--input", str(d / "affine.tfm"), "--quiet"]) == 2
    assert not (tmp_path / "o").exists()
