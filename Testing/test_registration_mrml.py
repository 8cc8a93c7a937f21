"""Registration on real slicer-core MRML: transform nodes (linear, B-spline, grid) move points the way
SimpleITK does (fixed -> moving, Slicer's "from parent"), warped volumes and landmarks from markups."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.mrml import markups, volumes
from SlicerImgSuite.mrml.ras import points_lps_to_ras
from SlicerImgSuite.registration.nodes import PRESETS, register_nodes


@pytest.fixture(scope="module")
def blobs():
    f = sitk.GaussianSource(sitk.sitkFloat32, [40] * 3, [5] * 3, [20] * 3, 100)
    f = f + sitk.GaussianSource(sitk.sitkFloat32, [40] * 3, [3] * 3, [12, 25, 18], 60)
    m = sitk.GaussianSource(sitk.sitkFloat32, [40] * 3, [5] * 3, [23, 19, 20], 100)
    m = m + sitk.GaussianSource(sitk.sitkFloat32, [40] * 3, [3] * 3, [15, 24, 18], 60)
    return f, m


def _from_parent(node, point_lps):
    """Where the node's "from parent" transform sends an LPS point (through RAS, as Slicer does)."""
    t = node.GetTransformFromParent()
    ras = t.TransformPoint(*points_lps_to_ras([point_lps])[0])
    return points_lps_to_ras([ras])[0]


@pytest.mark.parametrize("kind, node_class", [("linear", "vtkMRMLLinearTransformNode"),
                                              ("grid", "vtkMRMLGridTransformNode")])  # fmt: skip
def test_transform_nodes_move_points_like_sitk(mrml, blobs, kind, node_class):
    f, m = blobs
    fixed = volumes.volume_node_from_image(mrml, f, "fixed")
    moving = volumes.volume_node_from_image(mrml, m, "moving")
    node, warped, result = register_nodes(mrml, fixed, moving, PRESETS["rigid"], transform_kind=kind,
                                          warped_name="warped")  # fmt: skip
    assert node.GetClassName() == node_class
    p = [20.0, 20.0, 20.0]
    expected = np.array(result.transform.TransformPoint(p))
    assert np.allclose(expected, [23, 19, 20], atol=0.5)
    assert np.allclose(_from_parent(node, p), expected, atol=0.1)
    w = volumes.image_from_volume_node(warped)
    assert np.corrcoef(sitk.GetArrayViewFromImage(w).ravel(), sitk.GetArrayViewFromImage(f).ravel())[0, 1] > 0.98


def test_bspline_result_and_landmarks_from_markups(mrml, blobs):
    f, m = blobs
    fixed = volumes.volume_node_from_image(mrml, f, "fixed")
    moving = volumes.volume_node_from_image(mrml, m, "moving")
    f_pts = np.array([[20, 20, 20], [12, 25, 18], [30, 10, 10], [5, 35, 30]], float)
    m_pts = f_pts + [3, -1, 0]
    fm = markups.fiducial_node_from_points(mrml, f_pts, name="F")
    mm = markups.fiducial_node_from_points(mrml, m_pts, name="M")
    stages = [{"xform": "bspline", "grid_spac": [15] * 3, "max_its": 20}]
    node, _, result = register_nodes(mrml, fixed, moving, stages, fixed_markups=fm, moving_markups=mm)
    # three or more pairs start from their rigid fit; the B-spline stage keeps them (landmark penalty)
    assert np.allclose(result.transform.TransformPoint(f_pts[1].tolist()), m_pts[1], atol=0.6)
    assert np.allclose(_from_parent(node, f_pts[1].tolist()), result.transform.TransformPoint(f_pts[1].tolist()),
                       atol=0.1)  # fmt: skip
    with pytest.raises(ImgSuiteError, match="landmark counts differ"):
        short = markups.fiducial_node_from_points(mrml, m_pts[:2], name="S")
        register_nodes(mrml, fixed, moving, stages, fixed_markups=fm, moving_markups=short)
