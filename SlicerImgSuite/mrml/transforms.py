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

import SimpleITK as sitk

from ..errors import ImgSuiteError
from ._nodes import mrml_scene

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


def sitk_transform_from_node(node) -> sitk.Transform:
    """The ``SimpleITK.Transform`` (fixed -> moving) a transform node holds."""
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
