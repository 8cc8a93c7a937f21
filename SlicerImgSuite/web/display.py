"""Put data into a trame-slicer application and show it the way a physicist reads it in Slicer.

Shared by :mod:`.render` (offscreen pictures) and :mod:`.serve` (browser viewer): one place decides
what is shown (the planning CT behind the slices, a CT window for HU data, a dose as a colour wash,
the anatomy's structure outlines, closed surfaces in 3D with the body see-through).
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

# CT window presets (window, level in HU), as Slicer's Volumes module offers them (mediastinum added).
WINDOW_PRESETS = {
    "Lung": (1400.0, -500.0),
    "Mediastinum": (350.0, 50.0),
    "Bone": (1000.0, 400.0),
    "Brain": (100.0, 50.0),
    "Abdomen": (350.0, 40.0),
}

# Node attributes that mark a volume's modality: ours (DICOM's Modality tag) and SlicerRT's dose flag.
MODALITY_ATTRIBUTE = "DICOM.Modality"
_SLICERRT_DOSE_ATTRIBUTE = "DicomRtImport.DoseVolume"

# Below this fraction of the maximum dose the colour wash is transparent (the CT shows through).
DOSE_WASH_THRESHOLD = 0.1
DOSE_WASH_OPACITY = 0.45
# The dose wash's colours, low to high, as treatment-planning systems draw them (blue to red).
DOSE_COLORS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (0.0, 1.0, 0.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))
DOSE_COLOR_NODE_NAME = "Dose wash (imgsuite)"


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


def is_dose(volume) -> bool:
    """True for a dose volume: Modality RTDOSE, or SlicerRT's dose flag."""
    return volume.GetAttribute(MODALITY_ATTRIBUTE) == "RTDOSE" or volume.GetAttribute(_SLICERRT_DOSE_ATTRIBUTE) == "1"


def _looks_like_ct(volume) -> bool:
    low, high = volume.GetImageData().GetScalarRange()
    return low <= -500 and high > 0 and volume.GetImageData().GetDimensions()[2] > 1


def main_volume(scene, name: str | None = None):
    """The volume to show behind the slices: the one called ``name``, else the planning CT.

    The planning CT is, in this order: the first volume whose Modality is CT; the volume other nodes
    reference most (a segmentation's geometry, a dose's CT); the first volume in HU (minimum below
    -500, more than one slice); the largest one. Labelmaps and doses are never the background.
    """
    volumes = [v for v in nodes(scene, "vtkMRMLScalarVolumeNode") if not v.IsA("vtkMRMLLabelMapVolumeNode")]
    volumes = [v for v in volumes if v.GetImageData() is not None]
    if name is not None:
        named = [v for v in volumes if v.GetName() == name]
        if not named:
            raise ImgSuiteError(f"no volume named {name!r}; the scene has {[v.GetName() for v in volumes]}")
        return named[0]
    volumes = [v for v in volumes if not is_dose(v)]
    if not volumes:
        return None
    ct = [v for v in volumes if v.GetAttribute(MODALITY_ATTRIBUTE) == "CT"]
    if ct:
        return ct[0]
    counts = _reference_counts(scene)
    referenced = [v for v in volumes if counts.get(v.GetID(), 0) and v.GetImageData().GetDimensions()[2] > 1]
    if referenced:
        return max(referenced, key=lambda v: (counts[v.GetID()], -volumes.index(v)))
    hu = [v for v in volumes if _looks_like_ct(v)]
    if hu:
        return hu[0]
    return max(volumes, key=lambda v: (v.GetImageData().GetNumberOfPoints(), -volumes.index(v)))


def _reference_counts(scene) -> dict[str, int]:
    """How many references from segmentations and volumes (a segmentation's geometry, a dose's CT) point at
    each node ID; display, storage and transform references left out (a sequence browser's proxy is no CT)."""
    counts: dict[str, int] = {}
    for node in nodes(scene, "vtkMRMLSegmentationNode") + nodes(scene, "vtkMRMLVolumeNode"):
        roles = [node.GetNthNodeReferenceRole(i) for i in range(node.GetNumberOfNodeReferenceRoles())]
        for role in roles:
            if role.startswith(("display", "storage", "transform")):
                continue
            for i in range(node.GetNumberOfNodeReferences(role)):
                target = node.GetNthNodeReferenceID(role, i)
                if target:
                    counts[target] = counts.get(target, 0) + 1
    return counts


def dose_volume(scene):
    """The scene's first dose volume (see :func:`is_dose`), or None."""
    doses = [v for v in nodes(scene, "vtkMRMLScalarVolumeNode") if v.GetImageData() is not None and is_dose(v)]
    return doses[0] if doses else None


def anatomy_segmentations(scene, background=None) -> list:
    """Segmentations that outline anatomy of ``background``: 3D ones that overlap it.

    3D: at least two of the background's voxels (its largest spacing) thick along every axis. This
    leaves out the 2D label images that share a scene (hyperspectral labels, nuclei of a micrograph).
    """
    import numpy as np

    box, thinnest = None, 0.0
    if background is not None:
        box = np.zeros(6)
        background.GetRASBounds(box)
        thinnest = 2 * max(background.GetSpacing())
    chosen = []
    for node in nodes(scene, "vtkMRMLSegmentationNode"):
        bounds = np.zeros(6)
        node.GetRASBounds(bounds)
        extent = bounds[1::2] - bounds[0::2]
        if not np.all(extent > thinnest):
            continue
        if box is not None and not np.all((bounds[1::2] > box[0::2]) & (bounds[0::2] < box[1::2])):
            continue
        chosen.append(node)
    return chosen


def style_scene(scene, volume=None, surfaces: bool = True, shown=None) -> None:
    """Display settings of a planning review: CT window, structure outlines, 3D surfaces, dose wash.

    Parameters
    ----------
    scene : vtkMRMLScene
    volume : vtkMRMLScalarVolumeNode, optional
        The background volume; HU data (minimum below -500) gets :data:`CT_WINDOW_LEVEL`.
    surfaces : bool
        Build each shown segmentation's closed surface so the 3D view shows the structures.
    shown : list of vtkMRMLSegmentationNode, optional
        Segmentations to show (default: the first of :func:`anatomy_segmentations`); the others are hidden.
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
    if shown is None:
        shown = anatomy_segmentations(scene, volume)[:1]
    for node in nodes(scene, "vtkMRMLSegmentationNode"):
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        display.SetVisibility(node in shown)
        # Outlines only: offscreen (EGL/llvmpipe) the 2D fill layer darkens the whole slice view,
        # structures or not, and outlines are what a planning review reads anyway.
        display.SetVisibility2DFill(False)
        display.SetVisibility2DOutline(True)
        display.SetOpacity2DOutline(1.0)
        segmentation = node.GetSegmentation()
        for segment_id in segmentation.GetSegmentIDs():
            name = segmentation.GetSegment(segment_id).GetName()
            display.SetSegmentOpacity3D(segment_id, 0.15 if name.upper() in EXTERNAL_NAMES else 1.0)
        if surfaces and node in shown:
            node.CreateClosedSurfaceRepresentation()
    style_dose(dose_volume(scene))


def style_dose(dose) -> None:
    """A dose as Slicer users read it over a CT: a colour wash (:data:`DOSE_COLORS`, blue to red) from
    :data:`DOSE_WASH_THRESHOLD` of the maximum, lower doses transparent.

    No colour legend node: Slicer's legend displayable manager corrupts the offscreen slice picture
    (EGL); the page and the report draw the colour bar themselves (:func:`dose_range`).
    """
    if dose is None:
        return
    dose.CreateDefaultDisplayNodes()
    display = dose.GetDisplayNode()
    display.SetAndObserveColorNodeID(dose_color_node(dose.GetScene()).GetID())
    low, high = dose_range(dose)
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(low, high)
    display.ApplyThresholdOn()
    display.SetLowerThreshold(low)
    display.SetUpperThreshold(high * 1.01)


def dose_color_node(scene):
    """The scene's dose colour table (:data:`DOSE_COLORS` over 256 entries), added once."""
    import numpy as np
    import slicer

    existing = [n for n in nodes(scene, "vtkMRMLColorTableNode") if n.GetName() == DOSE_COLOR_NODE_NAME]
    if existing:
        return existing[0]
    table = slicer.vtkMRMLColorTableNode()
    table.SetName(DOSE_COLOR_NODE_NAME)
    table.SetTypeToUser()
    table.SetNumberOfColors(256)
    stops = np.linspace(0.0, 1.0, len(DOSE_COLORS))
    for i, t in enumerate(np.linspace(0.0, 1.0, 256)):
        rgb = [float(np.interp(t, stops, [c[k] for c in DOSE_COLORS])) for k in range(3)]
        table.SetColor(i, f"{i}", *rgb, 1.0)
    scene.AddNode(table)
    return table


def dose_range(dose) -> tuple[float, float]:
    """The dose values the colour wash spans (Gy): :data:`DOSE_WASH_THRESHOLD` of the maximum to the maximum."""
    high = float(dose.GetImageData().GetScalarRange()[1])
    return DOSE_WASH_THRESHOLD * high, high


def show_in_views(view_manager, volume, focus_ras=None, dose=None) -> None:
    """Put ``volume`` behind every slice view and ``dose`` over it (a colour wash), fit the views, and centre
    them on ``focus_ras`` if given."""
    for view in view_manager.get_slice_views():
        view.set_background_volume_id(volume.GetID() if volume is not None else None)
        view.set_foreground_volume_id(dose.GetID() if dose is not None else None)
        if dose is not None:
            view.set_foreground_opacity(DOSE_WASH_OPACITY)
    for view in view_manager.get_views():
        view.reset_view()
    if focus_ras is not None:
        for view in view_manager.get_slice_views():
            view.get_view_node().JumpSliceByOffsetting(*map(float, focus_ras))
