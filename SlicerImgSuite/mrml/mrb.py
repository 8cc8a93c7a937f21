"""Save a scene as a Slicer ``.mrb`` bundle, and read one back."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import ImgSuiteError
from ._nodes import mrml_scene


def save_mrb(scene, path) -> Path:
    """Write every storable node and the scene XML into a ``.mrb`` file (opens in Slicer)."""
    s = mrml_scene(scene)
    path = Path(path).absolute()  # Slicer's bundle writer refuses relative folders
    if path.suffix.lower() != ".mrb":
        raise ImgSuiteError("a scene bundle must end in .mrb", path)
    from vtkmodules.vtkCommonCore import vtkOutputWindow

    _ensure_storage_nodes(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The bundle's inner folder is named after the file, so write under the final name in a
    # private folder, then move it into place (nothing half-written at ``path``).
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".mrb-") as tmp:
        staged = Path(tmp) / path.name
        window = vtkOutputWindow.GetInstance()
        mode = window.GetDisplayMode()
        window.SetDisplayModeToNever()  # the zip writer logs every file it adds
        try:
            ok = s.WriteToMRB(str(staged))
        finally:
            window.SetDisplayMode(mode)
        if not ok or not staged.is_file():
            raise ImgSuiteError("cannot write the scene bundle", path)
        os.replace(staged, path)
    return path


def load_mrb(path):
    """Read a ``.mrb`` into a new :class:`~SlicerImgSuite.mrml.scene.SlicerScene`."""
    import slicer

    from .scene import new_scene

    path = Path(path).absolute()
    if not path.is_file():
        raise ImgSuiteError("no such scene bundle", path)
    loaded = new_scene(set_global=False)
    cache = slicer.vtkCacheManager()
    cache.SetRemoteCacheDirectory(tempfile.mkdtemp(prefix="imgsuite-mrb-cache-"))
    io_manager = slicer.vtkDataIOManager()
    io_manager.SetCacheManager(cache)
    loaded.scene.SetDataIOManager(io_manager)
    loaded.scene.SetCacheManager(cache)
    if not loaded.scene.ReadFromMRB(os.fspath(path)):
        raise ImgSuiteError("cannot read the scene bundle", path)
    return loaded


def _ensure_storage_nodes(scene) -> None:
    """Give every storable node a storage node with a file name, as Slicer's Save dialog does."""
    for n in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(n)
        if not node.IsA("vtkMRMLStorableNode") or node.GetHideFromEditors() and not node.IsA("vtkMRMLTableNode"):
            continue
        if node.GetStorageNode() is None:
            if not node.AddDefaultStorageNode():
                continue
        storage = node.GetStorageNode()
        if storage is not None and not storage.GetFileName():
            extension = storage.GetDefaultWriteFileExtension() or "nrrd"
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in node.GetName()) or node.GetID()
            storage.SetFileName(f"{safe}.{extension}")
