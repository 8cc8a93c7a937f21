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
from pydicom.multival import MultiValue
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
        other = [
            r
            for r in self.rois
            if r.contours and r.frame_of_reference and frame_uid and r.frame_of_reference != frame_uid
        ]
        if other:  # ReferencedFrameOfReferenceUID (3006,0024) of an ROI: drawn on another image
            raise ImgSuiteError(
                f"Frame of Reference mismatch: ROI {other[0].name!r} (ReferencedFrameOfReferenceUID (3006,0024)) uses "
                f"{other[0].frame_of_reference}, {what} uses {frame_uid}; its contours do not belong to it",
                self.path,
            )


def _roi_name(value) -> str:
    """A backslash in a ROIName is DICOM's value separator: pydicom reads 'GTV\\boost' as two values, which str()
    spelled "['GTV', 'boost']"; they are joined back."""
    return "\\".join(str(v) for v in value) if isinstance(value, MultiValue) else str(value or "")


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
    >>> import tempfile
    >>> from SlicerImgSuite.demo.phantom import make_phantom
    >>> ss = read_rtstruct(make_phantom(tempfile.mkdtemp(), shape=(16, 16, 4)).rtstruct)
    >>> ss.names()[:3]
    ['BODY', 'LUNG_R', 'LUNG_L']
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
    if modality != "RTSTRUCT":
        raise ImgSuiteError(
            f"Modality (0008,0060) is {modality or 'missing'} but SOPClassUID is RT Structure Set Storage; "
            "a mislabelled or damaged file is not read as contours",
            path,
        )
    try:
        return _structure_set(ds, path)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # a malformed tag pydicom cannot convert
        raise ImgSuiteError(f"malformed RTSTRUCT ({type(exc).__name__}: {exc})", path) from None


def _structure_set(ds, path: Path) -> StructureSet:
    frames = [str(f.get("FrameOfReferenceUID", "")) for f in ds.get("ReferencedFrameOfReferenceSequence", [])]
    series_uid = ""
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                series_uid = series_uid or str(series.get("SeriesInstanceUID", ""))
    declared = _roi_numbers(ds, path)
    colors, contours = {}, {}
    for k, item in enumerate(ds.get("ROIContourSequence", [])):
        number = _integer(item, "ReferencedROINumber", path, f"ROIContourSequence item {k + 1}")
        if number not in declared:
            raise ImgSuiteError(
                f"ROIContourSequence item {k + 1} holds contours of ROI {number}, which StructureSetROISequence "
                f"(3006,0020) does not declare (declared: {sorted(declared)})",
                path,
            )
        if number in contours:
            raise ImgSuiteError(f"ROIContourSequence holds two items for ROI {number} (ReferencedROINumber)", path)
        colors[number] = _color(item, path, number)
        contours[number] = [_contour(c, path, number) for c in item.get("ContourSequence", [])]
    types = {}
    for o in ds.get("RTROIObservationsSequence", []):
        if o.get("ReferencedROINumber") is not None:
            types[_integer(o, "ReferencedROINumber", path, "RTROIObservationsSequence")] = str(
                o.get("RTROIInterpretedType", "") or ""
            )
    rois = []
    for n, item in enumerate(ds.get("StructureSetROISequence", [])):
        number = declared[n]
        rois.append(
            Roi(
                number=number,
                name=_roi_name(item.get("ROIName", "")) or f"ROI_{number}",
                color=colors.get(number) or DEFAULT_COLORS[n % len(DEFAULT_COLORS)],
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


def _roi_numbers(ds, path: Path) -> list[int]:
    """The ROINumber of each StructureSetROISequence item: present, integer and unique."""
    if "StructureSetROISequence" not in ds:
        if ds.get("ROIContourSequence"):
            raise ImgSuiteError("StructureSetROISequence (3006,0020) is missing: the contours have no ROI", path)
        raise ImgSuiteError("StructureSetROISequence (3006,0020) is missing: the structure set holds no ROI", path)
    numbers = []
    for n, item in enumerate(ds.StructureSetROISequence):
        number = _integer(item, "ROINumber", path, f"StructureSetROISequence item {n + 1}")
        if number in numbers:
            raise ImgSuiteError(f"ROINumber (3006,0022) {number} is used by two ROIs of StructureSetROISequence", path)
        numbers.append(number)
    return numbers


def _integer(item, keyword: str, path: Path, where: str) -> int:
    """A required integer tag of a sequence item; missing or text is an error naming the tag."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    name = f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"
    try:
        value = item.get(keyword)
    except (ValueError, TypeError):
        value = "?"
    if value is None or value == "":
        raise ImgSuiteError(f"{where} has no {name}", path)
    try:
        return int(str(value).strip())
    except ValueError:
        raise ImgSuiteError(f"{where}: {name} is not an integer ({str(value)[:40]!r})", path) from None


def _color(item, path: Path, number: int) -> tuple[int, int, int] | None:
    """ROIDisplayColor, or ``None`` (a default colour) with a warning when it is malformed."""
    try:
        value = item.get("ROIDisplayColor")
        if value is None:
            return None
        color = tuple(int(v) for v in value)
        if len(color) == 3 and all(0 <= c <= 255 for c in color):
            return color
    except (ValueError, TypeError):
        pass
    warnings.warn(
        f"{path}: ROI {number}: ROIDisplayColor (3006,002A) is malformed; a default colour is used", stacklevel=3
    )
    return None


# Farther than a kilometre from the origin a contour point is damage, not anatomy.
_MAX_COORDINATE_MM = 1e6


def _contour(item, path: Path, number: int) -> Contour | None:
    kind = str(item.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
    try:
        points = _decimal_strings(item, CONTOUR_DATA)
    except (ValueError, TypeError):
        raise ImgSuiteError(f"ROI {number}: ContourData (3006,0050) holds text, not numbers", path) from None
    if not np.all(np.isfinite(points)):
        raise ImgSuiteError(f"ROI {number}: ContourData (3006,0050) holds NaN or infinite coordinates", path)
    if points.size and np.abs(points).max() > _MAX_COORDINATE_MM:
        raise ImgSuiteError(
            f"ROI {number}: ContourData (3006,0050) holds a coordinate of {np.abs(points).max():.3g} mm "
            f"(beyond +-{_MAX_COORDINATE_MM:g} mm: damaged)",
            path,
        )
    if points.size == 0:
        warnings.warn(f"{path}: ROI {number} has a contour without points (skipped)", stacklevel=3)
        return None
    if points.size % 3:
        raise ImgSuiteError(f"ROI {number} has a contour with {points.size} coordinates, not a multiple of 3", path)
    return Contour(points.reshape(-1, 3), kind)
