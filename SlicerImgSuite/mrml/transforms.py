"""SimpleITK transforms <-> transform nodes (linear, B-spline, grid/displacement field, composite).

The conversion goes through the ITK transform file format that Slicer's own transform storage node
reads and writes, so Slicer does the LPS<->RAS and the direction bookkeeping exactly as it does for
files a user loads. An ITK/SimpleITK transform maps fixed-image points to moving-image points,
which is Slicer's "from parent" direction: a node made here resamples the moving volume onto the
fixed one when the moving volume is placed under it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ._nodes import mrml_scene, vtk_matrix
from .ras import matrix_lps_to_ras, matrix_ras_to_lps

_LINEAR = {
    "AffineTransform", "Euler3DTransform", "Euler2DTransform", "VersorRigid3DTransform", "VersorTransform",
    "Similarity3DTransform", "ScaleTransform", "ScaleVersor3DTransform", "ScaleSkewVersor3DTransform",
    "TranslationTransform", "Transform",
}


def node_class_for(transform: sitk.Transform) -> str:
    """The MRML transform node class that holds ``transform`` (linear, B-spline, grid, or general)."""
    name = transform.GetName()
    if name == "CompositeTransform":
        composite = sitk.CompositeTransform(transform)
        if composite.GetNumberOfTransforms() == 1:
            return node_class_for(composite.GetNthTransform(0))
        return "vtkMRMLTransformNode"
    if name in _LINEAR:
        return "vtkMRMLLinearTransformNode"
    if name == "BSplineTransform":
        return "vtkMRMLBSplineTransformNode"
    if name == "DisplacementFieldTransform":
        return "vtkMRMLGridTransformNode"
    return "vtkMRMLTransformNode"


def transform_node_from_sitk(scene, transform: sitk.Transform, name: str = "Transform"):
    """Add a transform node equal to ``transform`` (fixed -> moving, i.e. "from parent")."""
    s = mrml_scene(scene)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transform.h5"
        sitk.WriteTransform(transform, str(path))
        node = s.AddNewNodeByClass(node_class_for(transform), name)
        storage = s.AddNewNodeByClass("vtkMRMLTransformStorageNode")
        try:
            storage.SetFileName(str(path))
            if not storage.ReadData(node):
                s.RemoveNode(node)
                raise ImgSuiteError(f"Slicer cannot hold a {transform.GetName()} as a transform node")
        finally:
            s.RemoveNode(storage)
    return node


def bspline_node_from_sitk(
    scene, bspline: sitk.BSplineTransform, linear: sitk.Transform | None = None, name: str = "Transform"
):
    """Add a B-spline transform node mapping ``x -> linear(bspline(x))`` (fixed -> moving, "from parent").

    This is ``compose([linear, bspline])``, what linear stages followed by a B-spline stage produce. Slicer's
    B-spline node keeps the linear part as its bulk transform, which adds to the displacement
    (``x -> L x + u'(x)``, as ITK's ``BSplineDeformableTransform``); since ``L(x + u(x)) = L x + A u(x)``
    (``A``: the matrix of ``L``), the coefficients are multiplied by ``A``: exact, no refit.
    """
    bspline = sitk.BSplineTransform(bspline)
    if linear is None:
        return transform_node_from_sitk(scene, bspline, name)
    if not linear.IsLinear():
        raise ImgSuiteError(f"the bulk part of a B-spline node must be linear, not a {linear.GetName()}")
    bulk = _matrix_of(linear)
    coef = np.asarray(bspline.GetParameters(), float).reshape(3, -1)
    baked = sitk.BSplineTransform(3, bspline.GetOrder())
    baked.SetFixedParameters(bspline.GetFixedParameters())
    baked.SetParameters((bulk[:3, :3] @ coef).ravel().tolist())
    node = transform_node_from_sitk(scene, baked, name)
    from slicer import vtkOrientedBSplineTransform

    vtk_transform = vtkOrientedBSplineTransform()
    vtk_transform.DeepCopy(node.GetTransformFromParent())
    vtk_transform.SetBulkTransformMatrix(vtk_matrix(matrix_lps_to_ras(bulk)))
    node.SetAndObserveTransformFromParent(vtk_transform)
    return node


def sitk_transform_from_node(node) -> sitk.Transform:
    """The ``SimpleITK.Transform`` (fixed -> moving) a transform node holds.

    A B-spline node with a bulk (linear) part comes back as ``compose([linear, bspline])``, the form
    :func:`bspline_node_from_sitk` takes (SimpleITK cannot read ITK's older bulk B-spline class).
    """
    bulk = _bulk_of(node)
    if bulk is not None:
        return _bulk_bspline_from_node(node, bulk)
    scene = node.GetScene()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transform.h5"
        storage = scene.AddNewNodeByClass("vtkMRMLTransformStorageNode")
        try:
            storage.SetFileName(str(path))
            if not storage.WriteData(node):
                raise ImgSuiteError(f"cannot export transform node {node.GetName()!r}")
        finally:
            scene.RemoveNode(storage)
        transform = sitk.ReadTransform(str(path))
    return _simplify(transform)


def _simplify(transform: sitk.Transform) -> sitk.Transform:
    """Unwrap a composite of one transform and downcast, so callers see the concrete type."""
    if transform.GetName() == "CompositeTransform":
        composite = sitk.CompositeTransform(transform)
        if composite.GetNumberOfTransforms() == 1:
            transform = composite.GetNthTransform(0)
    try:
        return transform.Downcast()
    except (AttributeError, RuntimeError):
        return transform


def _matrix_of(linear: sitk.Transform) -> np.ndarray:
    """The 4x4 (LPS) matrix of a linear transform, read off the points it maps."""
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    mapped = np.array([linear.TransformPoint(p.tolist()) for p in pts])
    m = np.eye(4)
    m[:3, :3] = (mapped[1:] - mapped[0]).T
    m[:3, 3] = mapped[0]
    return m


def _bulk_of(node) -> np.ndarray | None:
    """The bulk matrix (RAS) of a B-spline node's "from parent" transform, or None."""
    if not node.IsA("vtkMRMLBSplineTransformNode"):
        return None
    t = node.GetTransformFromParent()
    if t is None or not t.IsA("vtkOrientedBSplineTransform") or t.GetBulkTransformMatrix() is None:
        return None
    m = t.GetBulkTransformMatrix()
    return np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])


def _bulk_bspline_from_node(node, bulk_ras: np.ndarray) -> sitk.Transform:
    from slicer import vtkOrientedBSplineTransform

    scene = node.GetScene()
    plain = vtkOrientedBSplineTransform()
    plain.DeepCopy(node.GetTransformFromParent())
    plain.SetBulkTransformMatrix(None)
    temp = scene.AddNewNodeByClass("vtkMRMLBSplineTransformNode", "bulk-free copy")
    try:
        temp.SetAndObserveTransformFromParent(plain)
        spline = sitk_transform_from_node(temp)
    finally:
        scene.RemoveNode(temp)
    bulk = matrix_ras_to_lps(bulk_ras)
    linear = sitk.AffineTransform(3)
    linear.SetMatrix(bulk[:3, :3].ravel().tolist())
    linear.SetTranslation(bulk[:3, 3].tolist())
    coef = np.asarray(spline.GetParameters(), float).reshape(3, -1)
    spline.SetParameters(np.linalg.solve(bulk[:3, :3], coef).ravel().tolist())
    return sitk.CompositeTransform([linear, spline])
