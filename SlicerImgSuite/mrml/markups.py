"""Points <-> markups fiducial nodes, and ``.mrk.json`` / ``.fcsv`` files through Slicer's own storage nodes.

Points in and out of these functions are LPS (as in DICOM and on disk); nodes hold RAS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from ._nodes import mrml_scene
from .markups_text import check_markups_text
from .ras import points_lps_to_ras, points_ras_to_lps

_STORAGE = {".json": "vtkMRMLMarkupsJsonStorageNode", ".fcsv": "vtkMRMLMarkupsFiducialStorageNode"}


def fiducial_node_from_points(scene, points_lps, labels=None, name: str = "F"):
    """Add a markups fiducial node with one control point per LPS point."""
    points_ras = points_lps_to_ras(points_lps)
    node = mrml_scene(scene).AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    node.CreateDefaultDisplayNodes()
    for n, p in enumerate(points_ras):
        label = labels[n] if labels is not None else f"{name}-{n + 1}"
        node.AddControlPoint(float(p[0]), float(p[1]), float(p[2]), str(label))
    return node


def curve_node_from_points(scene, points_lps, name: str = "C", color=None):
    """Add an open markups curve through the LPS points, drawn as straight segments (a polyline)."""
    node = mrml_scene(scene).AddNewNodeByClass("vtkMRMLMarkupsCurveNode", name)
    node.CreateDefaultDisplayNodes()
    node.SetCurveTypeToLinear()
    for p in points_lps_to_ras(points_lps):
        node.AddControlPoint(float(p[0]), float(p[1]), float(p[2]))
    if color is not None and node.GetDisplayNode() is not None:
        node.GetDisplayNode().SetSelectedColor(*[c / 255.0 for c in color[:3]])
    return node


def points_from_fiducial_node(node) -> tuple[np.ndarray, list[str]]:
    """(N, 3) LPS points and their labels (of any markups node: fiducials, curves), where Slicer shows them.

    Under a parent transform these are the transformed (world) positions, as for volumes.
    """
    n = node.GetNumberOfControlPoints()
    ras = np.array([node.GetNthControlPointPositionWorld(i) for i in range(n)], dtype=float).reshape(-1, 3)
    return points_ras_to_lps(ras), [node.GetNthControlPointLabel(i) for i in range(n)]


def read_markups(scene, path) -> object:
    """Read a ``.mrk.json`` or ``.fcsv`` file into a new fiducial node (coordinates in mm, as MRML holds them)."""
    path = Path(path)
    storage_class = _storage_class(path)
    if not path.is_file():
        raise ImgSuiteError("no such markups file", path)
    mm_per_unit = check_markups_text(path)  # what Slicer's reader would take as 0, NaN or RAS, or as mm
    s = mrml_scene(scene)
    node = s.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", path.name.split(".")[0])
    storage = s.AddNewNodeByClass(storage_class)
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node) or (node.GetNumberOfControlPoints() == 0 and path.stat().st_size > 0 and
                                      not _empty_markups_file(path)):
        s.RemoveNode(node)
        s.RemoveNode(storage)
        raise ImgSuiteError("cannot read markups (not a valid markups file)", path)
    if mm_per_unit != 1.0:  # Slicer's reader keeps a micrometre scene's numbers as they are
        for i in range(node.GetNumberOfControlPoints()):
            node.SetNthControlPointPosition(i, *(mm_per_unit * np.array(node.GetNthControlPointPosition(i))))
    return node


def write_markups(node, path) -> None:
    """Write a markups node as ``.mrk.json`` or ``.fcsv`` (LPS coordinates, as Slicer writes them)."""
    from ..io.atomic import atomic_path

    path = Path(path)
    storage_class = _storage_class(path)
    scene = node.GetScene()
    storage = scene.AddNewNodeByClass(storage_class)
    try:
        with atomic_path(path) as tmp:
            storage.SetFileName(str(tmp))
            if hasattr(storage, "SetCoordinateSystem"):
                storage.SetCoordinateSystem(1)  # LPS on disk
            if not storage.WriteData(node):
                raise ImgSuiteError("cannot write markups", path)
    finally:
        scene.RemoveNode(storage)


def _storage_class(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".mrk.json") or name.endswith(".json"):
        return _STORAGE[".json"]
    if name.endswith(".fcsv"):
        return _STORAGE[".fcsv"]
    raise ImgSuiteError("markups files must end in .mrk.json or .fcsv", path)


def _empty_markups_file(path: Path) -> bool:
    text = path.read_text(errors="replace")
    if path.name.lower().endswith(".fcsv"):
        return all(line.startswith("#") or not line.strip() for line in text.splitlines())
    return '"controlPoints": []' in text.replace("\n", "") or '"controlPoints":[]' in text
