"""What the DICOM browser plugin does, without Slicer's DICOM module: examine series, load RTSTRUCT and RTDOSE.

Slicer's DICOM browser hands a plugin lists of files, one list per series. :func:`examine_files` turns the
RTSTRUCT and RTDOSE ones into :class:`RTLoadable` objects (with the referenced CT's files, found by the
RTSTRUCT's referenced series, else by Frame of Reference); :func:`load_loadable` puts them into a scene through
the logic layer: the CT as a volume node (reused when already loaded), the RTSTRUCT as a segmentation node
(our rasterizer), the RTDOSE as a scalar volume in Gy with a dose colour table. The plugin class in
``Modules/ContourReview/DICOMImgSuiteRTPlugin.py`` only wraps these two functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress, sub_progress

RT_KINDS = ("RTSTRUCT", "RTDOSE")
SERIES_ATTRIBUTE = "ImgSuite.SeriesInstanceUID"  # node attribute: the DICOM series a volume node came from
DOSE_COLOR_TABLE = "ImgSuite dose"


@dataclass
class RTLoadable:
    """One RT object the browser can load: its file, the referenced CT's files and what to show the user."""

    kind: str
    name: str
    files: list[str]
    series_uid: str
    frame_of_reference: str
    referenced_series_uid: str = ""
    ct_files: list[str] = field(default_factory=list)
    tooltip: str = ""
    confidence: float = 0.9
    warning: str = ""


def _header(path):
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=None)
    except Exception:  # not DICOM, or broken: the browser's other plugins may still take it
        return None


def examine_files(
    file_lists: Sequence[Sequence[str]], find_series: Callable[[str], list[str]] | None = None
) -> list[RTLoadable]:
    """RT loadables of the given series (one file list per series).

    ``find_series(series_uid) -> files`` finds a referenced CT outside the lists (Slicer's DICOM database);
    otherwise a CT series among the lists with the same Frame of Reference is taken.
    """
    headers = []
    for files in file_lists:
        files = [str(f) for f in files]
        ds = _header(files[0]) if files else None
        if ds is not None:
            headers.append((files, ds))
    by_series = {str(ds.get("SeriesInstanceUID", "")): files for files, ds in headers}
    cts = [(files, ds) for files, ds in headers if str(ds.get("Modality", "")) in ("CT", "MR", "PT")]
    out = []
    for files, ds in headers:
        kind = str(ds.get("Modality", ""))
        if kind not in RT_KINDS:
            continue
        for path in files:  # an RT series may hold several objects: one loadable each
            one = ds if path == files[0] else _header(path)
            if one is not None:
                out.append(_loadable(kind, path, one, by_series, cts, find_series))
    return out


def _loadable(kind, path, ds, by_series, cts, find_series) -> RTLoadable:
    frame = str(ds.get("FrameOfReferenceUID", ""))
    referenced = ""
    for f in ds.get("ReferencedFrameOfReferenceSequence", []):
        frame = frame or str(f.get("FrameOfReferenceUID", ""))
        for study in f.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                referenced = referenced or str(series.get("SeriesInstanceUID", ""))
    ct_files = list(by_series.get(referenced, [])) if referenced else []
    if not ct_files and referenced and find_series is not None:
        ct_files = [str(f) for f in find_series(referenced) or []]
    if not ct_files and frame:
        same = [files for files, c in cts if str(c.get("FrameOfReferenceUID", "")) == frame]
        ct_files = list(same[0]) if same else []
    label = str(ds.get("StructureSetLabel", "") or ds.get("SeriesDescription", "") or kind)
    name = f"{kind}: {label}"
    loadable = RTLoadable(
        kind=kind,
        name=name,
        files=[path],
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        frame_of_reference=frame,
        referenced_series_uid=referenced,
        ct_files=ct_files,
    )
    if kind == "RTSTRUCT":
        rois = [str(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence", [])]
        loadable.tooltip = f"{len(rois)} structures: {', '.join(rois[:12])}" + (" ..." if len(rois) > 12 else "")
        if not ct_files:
            loadable.warning = "the referenced CT is not in the database: structures need a CT grid to rasterize on"
            loadable.confidence = 0.3
    else:
        loadable.tooltip = f"dose ({ds.get('DoseSummationType', '')}, {ds.get('DoseUnits', '')})"
    return loadable


def examine_folder(folder: str | os.PathLike) -> list[RTLoadable]:
    """Examine every series under a folder (recursively), as the browser would after an import."""
    import pydicom

    series: dict[str, list[str]] = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            ds = _header(path)
            if ds is not None and isinstance(ds, pydicom.Dataset) and "SeriesInstanceUID" in ds:
                series.setdefault(str(ds.SeriesInstanceUID), []).append(str(path))
    return examine_files(list(series.values()))


def load_loadable(scene, loadable: RTLoadable, progress: ProgressCallback | None = None):
    """Load one loadable into a scene: returns the new node (segmentation or dose volume)."""
    progress = progress or no_progress
    if loadable.kind == "RTDOSE":
        return load_dose(scene, loadable.files[0], loadable.name)
    if loadable.kind != "RTSTRUCT":
        raise ImgSuiteError(f"cannot load a {loadable.kind}", loadable.files[0])
    if not loadable.ct_files:
        raise ImgSuiteError("the referenced CT series is not available; load it first", loadable.files[0])
    from ..rtstruct.nodes import segmentation_from_rtstruct

    ct_node = ct_volume_node(scene, loadable.ct_files, loadable, sub_progress(progress, 0, 0.4))
    seg, _, _ = segmentation_from_rtstruct(
        scene, loadable.files[0], reference_node=ct_node, progress=sub_progress(progress, 0.4, 1.0)
    )
    seg.SetName(loadable.name)
    seg.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
    return seg


def ct_volume_node(scene, ct_files: Sequence[str], loadable: RTLoadable, progress=None):
    """The referenced CT as a volume node: the one already in the scene from that series, else read now."""
    from ..io.dicom_series import read_dicom_series, scan_folder
    from ..mrml._nodes import mrml_scene
    from ..mrml.volumes import volume_node_from_image

    s = mrml_scene(scene)
    uid = loadable.referenced_series_uid
    if uid:
        for n in range(s.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
            node = s.GetNthNodeByClass(n, "vtkMRMLScalarVolumeNode")
            if node.GetAttribute(SERIES_ATTRIBUTE) == uid:
                return node
    folder = Path(ct_files[0]).parent
    info = next((i for i in scan_folder(folder) if not uid or i.uid == uid), None)
    if info is None:
        raise ImgSuiteError(f"no series {uid} beside {ct_files[0]}", folder)
    if (
        loadable.frame_of_reference
        and info.frame_of_reference
        and loadable.frame_of_reference != info.frame_of_reference
    ):
        raise ImgSuiteError("the CT has another Frame of Reference than the structure set", folder)
    image = read_dicom_series(folder, series_uid=info.uid, progress=progress)
    node = volume_node_from_image(scene, image, info.description or "CT")
    node.SetAttribute(SERIES_ATTRIBUTE, info.uid)
    return node


def load_dose(scene, path: str | os.PathLike, name: str = "RTDOSE"):
    """An RTDOSE as a scalar volume node in Gy, shown with the dose colour table over [0, maximum]."""
    from ..rtstruct.nodes import dose_node_from_file

    node = dose_node_from_file(scene, path, name=name)  # the one RTDOSE reader; marked as a dose (SlicerRT's mark)
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(dose_color_table(scene).GetID())
    values = node.GetImageData().GetPointData().GetScalars()
    top = float(values.GetRange()[1]) if values is not None and values.GetNumberOfTuples() else 1.0
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, max(top, 1e-6))
    return node


def dose_color_table(scene):
    """The dose colour table (blue -> cyan -> green -> yellow -> red, 256 entries), created once per scene."""
    import slicer

    from ..mrml._nodes import mrml_scene

    s = mrml_scene(scene)
    found = s.GetFirstNodeByName(DOSE_COLOR_TABLE)
    if found is not None:
        return found
    table = slicer.vtkMRMLColorTableNode()
    table.SetName(DOSE_COLOR_TABLE)
    table.SetTypeToUser()
    table.SetNumberOfColors(256)
    stops = np.array([[0, 0, 0, 1.0], [0.25, 0, 1, 1], [0.5, 0, 1, 0], [0.75, 1, 1, 0], [1.0, 1, 0, 0]])
    for n in range(256):
        t = n / 255.0
        rgb = [np.interp(t, stops[:, 0], stops[:, c]) for c in (1, 2, 3)]
        table.SetColor(n, f"{n}", *rgb, 1.0)
    table.SetAttribute("Category", "Dose")
    s.AddNode(table)
    return table
