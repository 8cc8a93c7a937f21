"""Read a DICOM RTSTRUCT into plain Python objects (pydicom; LPS millimetres).

Contours are kept as they are in the file; matching them to image slices happens in
:mod:`.rasterize`, by position and Frame of Reference, never by referenced SOP UID.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag

from ..errors import ImgSuiteError

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
DEFAULT_COLORS = [
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (255, 128, 0),
    (128, 0, 255), (0, 128, 255), (128, 255, 0), (255, 0, 128), (0, 255, 128),
]  # fmt: skip


@dataclass
class Contour:
    """One contour: ``points`` is an (N, 3) LPS array; ``kind`` is CLOSED_PLANAR, OPEN_PLANAR or POINT."""

    points: np.ndarray
    kind: str = "CLOSED_PLANAR"


@dataclass
class Roi:
    """One structure of a structure set."""

    number: int
    name: str
    color: tuple[int, int, int] = (255, 0, 0)
    interpreted_type: str = ""
    frame_of_reference: str = ""
    contours: list[Contour] = field(default_factory=list)

    @property
    def closed(self) -> list[np.ndarray]:
        """The closed planar polygons (what rasterization uses)."""
        return [c.points for c in self.contours if c.kind == "CLOSED_PLANAR"]

    @property
    def lines(self) -> list[np.ndarray]:
        """The open planar polylines (markups curves in Slicer)."""
        return [c.points for c in self.contours if c.kind == "OPEN_PLANAR"]

    @property
    def points(self) -> np.ndarray:
        """POINT contours as an (N, 3) array (markups points in Slicer)."""
        pts = [c.points for c in self.contours if c.kind == "POINT"]
        return np.concatenate(pts) if pts else np.zeros((0, 3))


@dataclass
class StructureSet:
    """A structure set: ROIs plus the references needed to put them on an image grid."""

    rois: list[Roi]
    frame_of_reference: str = ""
    referenced_series_uid: str = ""
    label: str = ""
    path: Path | None = None

    def names(self) -> list[str]:
        return [r.name for r in self.rois]

    def roi(self, name: str) -> Roi:
        for r in self.rois:
            if r.name == name:
                return r
        raise ImgSuiteError(f"no ROI named {name!r}; the structure set holds {self.names()}", self.path)

    def check_frame_of_reference(self, frame_uid: str, what: str) -> None:
        """Refuse an image of another Frame of Reference (``what`` names it); either UID unknown is accepted."""
        if self.frame_of_reference and frame_uid and self.frame_of_reference != frame_uid:
            raise ImgSuiteError(
                f"Frame of Reference mismatch: the structure set uses {self.frame_of_reference}, {what} uses "
                f"{frame_uid}; these contours do not belong to it",
                self.path,
            )


def read_rtstruct(path: str | os.PathLike) -> StructureSet:
    """Read the ROIs, colours and contours of an RTSTRUCT file.

    Parameters
    ----------
    path : path
        An RTSTRUCT file, or a folder holding exactly one.

    Returns
    -------
    StructureSet
        ROIs in file order, with colour (ROIDisplayColor or a default), RTROIInterpretedType and
        contours (LPS mm). The Frame of Reference comes from the top-level tag or, when absent,
        from ReferencedFrameOfReferenceSequence / the ROIs.

    Examples
    --------
    ::

        ss = read_rtstruct("RS.dcm")
        ss.names()
        # -> ['GTV_Mass_CT']
    """
    path = find_rtstruct(path)
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        try:  # files without the 128-byte preamble (older writers) still parse with force
            ds = pydicom.dcmread(path, force=True)
            ds.Modality  # noqa: B018 - raises when this is not DICOM at all
        except Exception:
            raise ImgSuiteError("not a DICOM file", path) from None
    except Exception as exc:  # truncated files raise many kinds
        raise ImgSuiteError(f"corrupt DICOM file ({type(exc).__name__}: {exc})", path) from None
    modality = str(ds.get("Modality", ""))
    if modality != "RTSTRUCT" and str(ds.get("SOPClassUID", "")) != RTSTRUCT_SOP_CLASS:
        raise ImgSuiteError(f"not an RTSTRUCT (Modality {modality or 'missing'})", path)
    frames = [str(f.get("FrameOfReferenceUID", "")) for f in ds.get("ReferencedFrameOfReferenceSequence", [])]
    series_uid = ""
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                series_uid = series_uid or str(series.get("SeriesInstanceUID", ""))
    colors, contours = {}, {}
    for item in ds.get("ROIContourSequence", []):
        number = int(item.get("ReferencedROINumber", -1))
        if "ROIDisplayColor" in item and len(item.ROIDisplayColor) == 3:
            colors[number] = tuple(int(v) for v in item.ROIDisplayColor)
        contours[number] = [_contour(c, path, number) for c in item.get("ContourSequence", [])]
    types = {
        int(o.get("ReferencedROINumber", -1)): str(o.get("RTROIInterpretedType", "") or "")
        for o in ds.get("RTROIObservationsSequence", [])
    }
    rois = []
    for n, item in enumerate(ds.get("StructureSetROISequence", [])):
        number = int(item.get("ROINumber", n + 1))
        rois.append(
            Roi(
                number=number,
                name=str(item.get("ROIName", "") or f"ROI_{number}"),
                color=colors.get(number, DEFAULT_COLORS[n % len(DEFAULT_COLORS)]),
                interpreted_type=types.get(number, ""),
                frame_of_reference=str(item.get("ReferencedFrameOfReferenceUID", "") or ""),
                contours=[c for c in contours.get(number, []) if c is not None],
            )
        )
    frame = str(ds.get("FrameOfReferenceUID", "") or "") or next((f for f in frames if f), "")
    frame = frame or next((r.frame_of_reference for r in rois if r.frame_of_reference), "")
    return StructureSet(rois, frame, series_uid, str(ds.get("StructureSetLabel", "")), path)


def find_rtstruct(path: str | os.PathLike) -> Path:
    """``path`` itself, or the one RTSTRUCT file inside folder ``path``."""
    path = Path(path)
    if not path.exists():
        raise ImgSuiteError("no such file or folder", path)
    if path.is_file():
        return path
    found = [f for f in sorted(p for p in path.iterdir() if p.is_file()) if _is_rtstruct_file(f)]
    if not found:
        raise ImgSuiteError("folder holds no RTSTRUCT file", path)
    if len(found) > 1:
        raise ImgSuiteError(
            f"folder holds {len(found)} RTSTRUCT files ({', '.join(f.name for f in found)}); name one", path
        )
    return found[0]


def is_rtstruct(path: str | os.PathLike) -> bool:
    """True for an RTSTRUCT file, or a folder that holds exactly one (reads two header tags per file)."""
    path = Path(path)
    if path.is_file():
        return _is_rtstruct_file(path)
    try:
        find_rtstruct(path)
        return True
    except ImgSuiteError:
        return False


def _is_rtstruct_file(path: Path) -> bool:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"], force=True)
    except Exception:
        return False
    return ds.get("Modality") == "RTSTRUCT" or str(ds.get("SOPClassUID", "")) == RTSTRUCT_SOP_CLASS


CONTOUR_DATA = Tag(0x3006, 0x0050)


def _decimal_strings(item, tag) -> np.ndarray:
    """A DS element as a float array, parsed from the raw bytes when still raw (pydicom's per-value
    DS objects cost ~80 us each: 3 s for a 40 000-point structure set)."""
    element = item._dict.get(tag)  # noqa: SLF001 - raw access on purpose, see above
    if element is None:
        return np.zeros(0)
    if isinstance(element, RawDataElement):
        raw = element.value or b""
        text = raw.decode("ascii", "replace").replace("\\", " ")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a malformed value: parsed by pydicom below instead
            values = np.fromstring(text, dtype=float, sep=" ")
        if values.size == raw.count(b"\\") + 1:
            return values
    value = item[tag].value
    if value is None:
        return np.zeros(0)
    return np.atleast_1d(np.asarray(value, dtype=float)).ravel()


def _contour(item, path: Path, number: int) -> Contour | None:
    kind = str(item.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
    points = _decimal_strings(item, CONTOUR_DATA)
    if points.size == 0:
        warnings.warn(f"{path}: ROI {number} has a contour without points (skipped)", stacklevel=3)
        return None
    if points.size % 3:
        raise ImgSuiteError(f"ROI {number} has a contour with {points.size} coordinates, not a multiple of 3", path)
    return Contour(points.reshape(-1, 3), kind)
