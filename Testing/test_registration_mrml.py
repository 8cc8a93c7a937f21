"""Registration on real slicer-core MRML: transform nodes (linear, B-spline, grid) move points the way
SimpleITK does (fixed -> moving, Slicer's "from parent"), warped volumes and landmarks from markups."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.mrml import markups, transforms, volumes
from SlicerImgSuite.mrml.ras import points_lps_to_ras
from SlicerImgSuite.registration.nodes import PRESETS, register_nodes
from SlicerImgSuite.registration.vf import synth_vf
from SlicerImgSuite.registration.xforms import field_to_bspline

RIGID_THEN_BSPLINE = [{"xform": "align_center"}, {"xform": "rigid", "res": [2, 2, 2], "max_its": 50},
                      {"xform": "bspline", "grid_spac": [15] * 3, "max_its": 20}]  # fmt: skip
RIGID_THEN_DEMONS = [{"xform": "rigid", "res": [2, 2, 2], "max_its": 50}, {"xform": "vf", "max_its": 20}]
POINTS = [[20.0, 20.0, 20.0], [12.0, 25.0, 18.0], [27.0, 14.0, 23.0]]  # LPS mm, inside the fixed grid


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


def _volumes(mrml, blobs):
    f, m = blobs
    return volumes.volume_node_from_image(mrml, f, "fixed"), volumes.volume_node_from_image(mrml, m, "moving")


def _assert_maps_like(node, transform, tol=0.5):
    """``node`` (RAS, "from parent") sends every test point where the SimpleITK ``transform`` (LPS) does."""
    for p in POINTS:
        expected = np.array(transform.TransformPoint(p))
        assert np.linalg.norm(_from_parent(node, p) - expected) < tol, (p, _from_parent(node, p), expected)


@pytest.mark.parametrize("kind, node_class", [("linear", "vtkMRMLLinearTransformNode"),
                                              ("bspline", "vtkMRMLBSplineTransformNode"),
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


@pytest.mark.parametrize("kind, node_class", [("bspline", "vtkMRMLBSplineTransformNode"),
                                              ("grid", "vtkMRMLGridTransformNode"),
                                              ("auto", "vtkMRMLTransformNode")])  # fmt: skip
def test_rigid_then_bspline_gives_the_asked_node(mrml, blobs, kind, node_class):
    fixed, moving = _volumes(mrml, blobs)
    node, _, result = register_nodes(mrml, fixed, moving, RIGID_THEN_BSPLINE, transform_kind=kind)
    assert not result.transform.IsLinear()  # a linear and a deformable part: a composite in SimpleITK
    assert node.GetClassName() == node_class
    moved = np.array(result.transform.TransformPoint(POINTS[0]))
    assert np.linalg.norm(moved - POINTS[0]) > 2.0  # the test point really moves (direction is tested)
    _assert_maps_like(node, result.transform)
    if kind == "bspline":
        # linear stages + one B-spline are stored exactly (bulk transform), not refitted
        _assert_maps_like(node, result.transform, tol=1e-3)
        assert node.GetTransformFromParent().GetBulkTransformMatrix() is not None
        _assert_maps_like_sitk(transforms.sitk_transform_from_node(node), result.transform, tol=1e-3)


def _assert_maps_like_sitk(a, b, tol):
    for p in POINTS:
        assert np.allclose(a.TransformPoint(p), b.TransformPoint(p), atol=tol)


def test_linear_output_refuses_a_deformable_result(mrml, blobs):
    fixed, moving = _volumes(mrml, blobs)
    before = mrml.scene.GetNumberOfNodesByClass("vtkMRMLTransformNode")
    with pytest.raises(ImgSuiteError, match="deformable part"):
        register_nodes(mrml, fixed, moving, RIGID_THEN_BSPLINE, transform_kind="linear")
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLTransformNode") == before  # no half-made node


@pytest.mark.parametrize("kind, node_class", [("bspline", "vtkMRMLBSplineTransformNode"),
                                              ("grid", "vtkMRMLGridTransformNode")])  # fmt: skip
def test_a_demons_field_becomes_the_asked_node(mrml, blobs, kind, node_class):
    fixed, moving = _volumes(mrml, blobs)
    node, _, result = register_nodes(mrml, fixed, moving, RIGID_THEN_DEMONS, transform_kind=kind)
    assert node.GetClassName() == node_class
    assert np.linalg.norm(np.array(result.transform.TransformPoint(POINTS[0])) - POINTS[0]) > 2.0
    _assert_maps_like(node, result.transform)  # B-spline: fitted to the field (10 mm default spacing)
    if kind == "bspline":
        assert not result.warnings  # the fit is within 0.5 mm everywhere on the fixed grid
        _assert_maps_like_sitk(transforms.sitk_transform_from_node(node), result.transform, tol=0.5)


def test_a_coarse_bspline_fit_is_reported(mrml, blobs):
    fixed, moving = _volumes(mrml, blobs)
    node, _, result = register_nodes(mrml, fixed, moving, [{"xform": "vf", "max_its": 30}],
                                     transform_kind="bspline", bspline_spacing=40)  # fmt: skip
    assert node.GetClassName() == "vtkMRMLBSplineTransformNode"
    assert any("fitted spline" in w and "grid output" in w for w in result.warnings)


def test_bspline_node_with_a_rotated_bulk_and_oblique_grid(mrml):
    """The bulk part is a real rotation and the spline grid is oblique: coefficients, bulk and LPS<->RAS."""
    ref = sitk.Image([30, 30, 30], sitk.sitkUInt8)
    ref.SetOrigin([5.0, -12.0, 30.0])
    ref.SetDirection(sitk.VersorTransform([0.1, 0.2, 0.95], 0.4).GetMatrix())
    center = ref.TransformContinuousIndexToPhysicalPoint([14.5] * 3)
    spline = field_to_bspline(synth_vf(ref, "gaussian", center=center, magnitude=(3, -2, 1.5), std=(8,) * 3), 6)
    linear = sitk.Euler3DTransform(center, 0.3, -0.2, 0.25, (4.0, -6.0, 2.0))
    node = transforms.bspline_node_from_sitk(mrml, spline, linear, "B")
    assert node.GetClassName() == "vtkMRMLBSplineTransformNode"
    expected = sitk.CompositeTransform([linear, spline])
    for p in [center, ref.TransformContinuousIndexToPhysicalPoint([10, 18, 12])]:
        assert np.linalg.norm(np.array(expected.TransformPoint(p)) - linear.TransformPoint(p)) > 0.5
        assert np.allclose(_from_parent(node, list(p)), expected.TransformPoint(p), atol=1e-6)
        assert np.allclose(transforms.sitk_transform_from_node(node).TransformPoint(p), expected.TransformPoint(p),
                           atol=1e-6)  # fmt: skip


def test_unknown_kind_is_refused_before_registering(mrml, blobs):
    fixed, moving = _volumes(mrml, blobs)
    with pytest.raises(ImgSuiteError, match="unknown output transform kind"):
        register_nodes(mrml, fixed, moving, [{"xform": "rigid", "max_its": 5000}], transform_kind="displacement")
