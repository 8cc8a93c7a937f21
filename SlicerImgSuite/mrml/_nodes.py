"""Small shared helpers for the adapters: accept a SlicerScene or a bare vtkMRMLScene; numpy<->VTK matrices."""

from __future__ import annotations

import numpy as np


def mrml_scene(scene):
    """The ``vtkMRMLScene`` of a :class:`~SlicerImgSuite.mrml.scene.SlicerScene` (or the scene itself)."""
    return getattr(scene, "scene", scene)


def vtk_matrix(array: np.ndarray):
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    m = vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(array[r, c]))
    return m


def numpy_matrix(matrix) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
