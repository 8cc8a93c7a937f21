"""Put data into a trame-slicer application and show it the way a physicist reads it in Slicer.

Shared by :mod:`.render` (offscreen pictures) and :mod:`.serve` (browser viewer): one place decides
what is shown (the largest scalar volume behind the slices, a CT window for HU data, structure
outlines, closed surfaces in 3D with the body see-through).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from ..errors import ImgSuiteError

# RT names of the outer contour: drawn see-through in 3D so the organs inside stay visible.
EXTERNAL_NAMES = {"BODY", "EXTERNAL", "SKIN", "OUTLINE", "PATIENT", "EXT"}

# A thorax window (HU) that shows air, lung and soft tissue at once.
CT_WINDOW_LEVEL = (1500.0, -300.0)


def use_headless_opengl() -> None:
    """Choose Mesa's EGL render window when there is no display (VTK reads this once per window)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def new_app():
    """A trame-slicer ``SlicerApp`` (its own scene, logics and view manager), set up for headless rendering."""
    use_headless_opengl()
    from trame_slicer.core import SlicerApp
    from vtkmodules.vtkCommonCore import vtkOutputWindow

    # SlicerApp installs its own process-wide VTK output window; keep the caller's.
    previous = vtkOutputWindow.GetInstance()
    try:
        app = SlicerApp()
    finally:
        vtkOutputWindow.SetInstance(previous)
    _register_more_logics(app)
    return app


# Module logics a SlicerImgSuite scene needs that SlicerApp does not attach: each registers its node
# classes with the scene, and a scene bundle holding a node of an unknown class does not load.
_MORE_LOGICS = {
    "Transforms": "vtkSlicerTransformLogic",
    "Models": "vtkSlicerModelsLogic",
    "Tables": "vtkSlicerTablesLogic",
    "Plots": "vtkSlicerPlotsLogic",
    "Sequences": "vtkSlicerSequencesLogic",
}


def _register_more_logics(app) -> None:
    import slicer

    for name, class_name in _MORE_LOGICS.items():
        if app.app_logic.GetModuleLogic(name) is None:
            app.register_module_logic(getattr(slicer, class_name)(), logic_name=name)


@contextlib.contextmanager
def quiet_vtk_warnings():
    """Silence VTK warnings (not errors) inside the block.

    trame-slicer's views observe an interactor event that VTK 9.6 deprecates, and VTK warns for
    every view created: noise that says nothing to a user.
    """
    from vtkmodules.vtkCommonCore import vtkObject

    was_on = vtkObject.GetGlobalWarningDisplay()
    vtkObject.GlobalWarningDisplayOff()
    try:
        yield
    finally:
        vtkObject.SetGlobalWarningDisplay(was_on)


def check_source(source) -> None:
    """Fail early, before any rendering is set up, on a missing path or a ``.mrb`` that is no zip file."""
    if not isinstance(source, str | os.PathLike):
        return
    path = Path(source)
    if not path.exists():
        raise ImgSuiteError("no such file or folder", path)
    if path.is_file() and path.suffix.lower() == ".mrb" and not zipfile.is_zipfile(path):
        raise ImgSuiteError("not a Slicer scene bundle (an .mrb is a zip file)", path)


def load_source(app, source) -> None:
    """Load ``source`` into ``app.scene``.

    Parameters
    ----------
    app : trame_slicer.core.SlicerApp
    source : SlicerScene, vtkMRMLScene, or path
        A scene (copied through a temporary ``.mrb``, so its display settings are left alone), a
        ``.mrb`` / ``.mrml`` file, or an image: any file ``read_image`` reads, or a DICOM series folder.
    """
    if not isinstance(source, str | os.PathLike):
        from ..mrml.mrb import save_mrb

        with tempfile.TemporaryDirectory(prefix="imgsuite-view-") as tmp:
            path = save_mrb(source, Path(tmp) / "scene.mrb")
            _load_scene_file(app, path)
        return
    check_source(source)
    path = Path(source)
    if path.is_file() and path.suffix.lower() in (".mrb", ".mrml"):
        _load_scene_file(app, path)
        return
    from ..io.images import read_image
    from ..mrml.volumes import volume_node_from_image

    image = read_image(path)
    if image.GetDimension() not in (2, 3):
        raise ImgSuiteError(f"cannot show a {image.GetDimension()}D image", path)
    name = path.name.split(".")[0] or "Volume"
    volume_node_from_image(app.scene, image, name)


def _load_scene_file(app, path: Path) -> None:
    check_source(path)
    try:
        ok = app.io_manager.load_scene(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImgSuiteError(f"cannot read the scene: {exc}", path) from exc
    if not ok:
        raise ImgSuiteError("cannot read the scene", path)


def nodes(scene, class_name: str) -> list:
    """Nodes of ``class_name`` (subclasses too) in scene order."""
    collection = scene.GetNodesByClass(class_name)
    return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]


def main_volume(scene, name: str | None = None):
    """The volume to show behind the slices: the one called ``name``, else the largest scalar volume.

    Labelmaps are skipped (labels make a poor background); ties go to the first one added, which
    in a scene built by SlicerImgSuite is the planning CT.
    """
    volumes = [v for v in nodes(scene, "vtkMRMLScalarVolumeNode") if not v.IsA("vtkMRMLLabelMapVolumeNode")]
    volumes = [v for v in volumes if v.GetImageData() is not None]
    if name is not None:
        named = [v for v in volumes if v.GetName() == name]
        if not named:
            raise ImgSuiteError(f"no volume named {name!r}; the scene has {[v.GetName() for v in volumes]}")
        return named[0]
    if not volumes:
        return None
    return max(volumes, key=lambda v: (v.GetImageData().GetNumberOfPoints(), -volumes.index(v)))


def style_scene(scene, volume=None, surfaces: bool = True) -> None:
    """Display settings of a planning review: CT window, structure outlines, 3D surfaces.

    Parameters
    ----------
    scene : vtkMRMLScene
    volume : vtkMRMLScalarVolumeNode, optional
        The background volume; HU data (minimum below -500) gets :data:`CT_WINDOW_LEVEL`.
    surfaces : bool
        Build each segmentation's closed surface so the 3D view shows the structures.
    """
    if volume is not None:
        volume.CreateDefaultDisplayNodes()
        display = volume.GetDisplayNode()
        low, high = volume.GetImageData().GetScalarRange()
        if low <= -500 and high > 0:
            display.AutoWindowLevelOff()
            display.SetWindowLevel(*CT_WINDOW_LEVEL)
        elif display.GetWindow() <= 0:
            display.AutoWindowLevelOn()
    for node in nodes(scene, "vtkMRMLSegmentationNode"):
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        display.SetVisibility(True)
        # Outlines only: offscreen (EGL/llvmpipe) the 2D fill layer darkens the whole slice view,
        # structures or not, and outlines are what a planning review reads anyway.
        display.SetVisibility2DFill(False)
        display.SetVisibility2DOutline(True)
        display.SetOpacity2DOutline(1.0)
        segmentation = node.GetSegmentation()
        for segment_id in segmentation.GetSegmentIDs():
            name = segmentation.GetSegment(segment_id).GetName()
            display.SetSegmentOpacity3D(segment_id, 0.15 if name.upper() in EXTERNAL_NAMES else 1.0)
        if surfaces:
            node.CreateClosedSurfaceRepresentation()


def show_in_views(view_manager, volume, focus_ras=None) -> None:
    """Put ``volume`` behind every slice view, fit the views, and centre them on ``focus_ras`` if given."""
    for view in view_manager.get_slice_views():
        view.set_background_volume_id(volume.GetID() if volume is not None else None)
        view.set_foreground_volume_id(None)
    for view in view_manager.get_views():
        view.reset_view()
    if focus_ras is not None:
        for view in view_manager.get_slice_views():
            view.get_view_node().JumpSliceByOffsetting(*map(float, focus_ras))
