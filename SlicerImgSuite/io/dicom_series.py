"""Read DICOM image series from a folder: the one place that turns slices into a volume.

Slices are ordered by ImagePositionPatient projected on the slice normal (never by file name or
InstanceNumber); one orientation per series is required; uneven slice spacing is an error unless the
caller asks for resampling; RescaleSlope/Intercept are applied. A folder holding several series is
listed, and the caller picks one by SeriesInstanceUID or modality: series are never merged, and
folders the caller did not name are never read.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress
from .folders import files_below

# The tags the scan keeps, as GDCM names them ("group|element").
SERIES_UID, MODALITY, DESCRIPTION = "0020|000e", "0008|0060", "0008|103e"
FRAME_OF_REFERENCE, STUDY_UID = "0020|0052", "0020|000d"
POSITION, ORIENTATION, PIXEL_SPACING = "0020|0032", "0020|0037", "0028|0030"
SLOPE, INTERCEPT, THICKNESS = "0028|1053", "0028|1052", "0018|0050"
_KEYS = (
    SERIES_UID,
    MODALITY,
    DESCRIPTION,
    FRAME_OF_REFERENCE,
    STUDY_UID,
    POSITION,
    ORIENTATION,
    PIXEL_SPACING,
    SLOPE,
    INTERCEPT,
    THICKNESS,
)
_PYDICOM_NAMES = {
    SERIES_UID: "SeriesInstanceUID",
    MODALITY: "Modality",
    DESCRIPTION: "SeriesDescription",
    FRAME_OF_REFERENCE: "FrameOfReferenceUID",
    STUDY_UID: "StudyInstanceUID",
    POSITION: "ImagePositionPatient",
    ORIENTATION: "ImageOrientationPatient",
    PIXEL_SPACING: "PixelSpacing",
    SLOPE: "RescaleSlope",
    INTERCEPT: "RescaleIntercept",
    THICKNESS: "SliceThickness",
}
IMAGE_STORAGE_EXCLUDED = {"RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "SR", "PR", "REG", "SEG", "KO"}


@dataclass
class SeriesInfo:
    """One series found in a folder: its files and the header values the scan read."""

    uid: str
    modality: str
    description: str = ""
    frame_of_reference: str = ""
    study_uid: str = ""
    files: list[Path] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list, repr=False)
    _datasets: list | None = field(default=None, repr=False)

    @property
    def is_image(self) -> bool:
        """True for a series of image slices (CT, MR, PT, ...), False for RT objects."""
        return self.modality not in IMAGE_STORAGE_EXCLUDED and any(
            h.get(POSITION) or h.get(ORIENTATION) for h in self.headers
        )

    @property
    def datasets(self) -> list:
        """Full pydicom headers (no pixel data) of the files, read on first use."""
        if self._datasets is None:
            import pydicom

            self._datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in self.files]
        return self._datasets

    def summary(self) -> str:
        return f"{self.uid} ({self.modality}, {len(self.files)} files{', ' + self.description if self.description else ''})"


def is_dicom_file(path: Path) -> bool:
    """True when the file has the DICOM preamble magic ``DICM`` at byte 128."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def read_header(path: Path, reader: sitk.ImageFileReader | None = None) -> dict[str, str] | None:
    """The scan's tags of one file, or ``None`` when it is not DICOM at all.

    GDCM (through SimpleITK) reads image headers fast; objects without pixels (RTSTRUCT, RTPLAN)
    are read with pydicom. A file that claims to be DICOM but cannot be parsed is an error naming it.
    """
    if reader is None:
        reader = sitk.ImageFileReader()
        reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        return {k: reader.GetMetaData(k).strip() if reader.HasMetaDataKey(k) else "" for k in _KEYS}
    except RuntimeError:
        pass  # no pixel data GDCM can read (RTSTRUCT, RTPLAN, not DICOM): pydicom decides below
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[*_PYDICOM_NAMES.values(), "SOPClassUID"])
    except InvalidDicomError:
        if is_dicom_file(path):
            raise ImgSuiteError("corrupt DICOM file (header cannot be parsed)", path) from None
        return None
    except Exception as exc:  # pydicom raises many kinds on truncated files
        raise ImgSuiteError(f"corrupt DICOM file ({type(exc).__name__}: {exc})", path) from None
    try:  # pydicom parses an element when it is first read: a damaged one raises here
        _refuse_image_without_pixels(ds, path)
        values = {key: ds.get(name, "") for key, name in _PYDICOM_NAMES.items()}
    except ImgSuiteError:
        raise
    except Exception as exc:
        raise ImgSuiteError(f"corrupt DICOM header ({type(exc).__name__}: {exc})", path) from None
    multiple = (list, pydicom.multival.MultiValue)
    return {k: "\\".join(str(v) for v in value) if isinstance(value, multiple) else str(value) for k, value in values.items()}


def _refuse_image_without_pixels(ds, path: Path) -> None:
    """An image object (its SOP class an image storage) whose pixels GDCM cannot read is damage: a slice cut
    short loses its PixelData and, cut inside its SeriesInstanceUID, would form a series of its own and leave the
    volume one slice short without a word."""
    import pydicom

    sop_class = str(ds.get("SOPClassUID", "") or "")
    name = pydicom.uid.UID(sop_class).name if sop_class else ""
    if "Image Storage" in name:
        validate_slice(path, require_geometry=False)  # names the tag where it can (BitsAllocated, PixelData ...)
        raise ImgSuiteError(
            f"a DICOM image ({name}) that cannot be read as one: PixelData (7FE0,0010) missing, the file cut short "
            "or its header damaged",
            path,
        )


def scan_folder(
    folder: str | os.PathLike, *, progress: ProgressCallback | None = None, recursive: bool = False
) -> list[SeriesInfo]:
    """List the series in a folder (its subfolders too with ``recursive``), in file-name order of first appearance.

    Files that are not DICOM (a README beside the slices) are ignored; a file that claims to be
    DICOM but cannot be parsed is an error naming it.

    Parameters
    ----------
    folder : path
        The folder to list.
    progress : callable, optional
        ``(fraction, message)`` while the headers are read.
    recursive : bool
        Also list the files of every subfolder.

    Returns
    -------
    list of SeriesInfo
        One per series UID, with its files and the header values read.

    Examples
    --------
    >>> import tempfile
    >>> from SlicerImgSuite.io.dicom_write import write_ct_series
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_ct_series(sitk.Image(4, 3, 2, sitk.sitkInt16), folder)
    >>> [(s.modality, len(s.files)) for s in scan_folder(folder)]
    [('CT', 2)]
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImgSuiteError("no such folder", folder)
    progress = progress or no_progress
    series: dict[str, SeriesInfo] = {}
    found = files_below(folder) if recursive else folder.iterdir()  # linked folders followed
    files = sorted(
        p for p in found if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    for n, path in enumerate(files):
        if n % 50 == 0:
            progress(n / max(len(files), 1), f"scanning {folder.name}")
        header = read_header(path, reader)
        if header is None:
            continue  # not DICOM
        uid = header[SERIES_UID]
        if not uid:
            raise ImgSuiteError("DICOM file has no SeriesInstanceUID", path)
        info = series.get(uid)
        if info is None:
            info = series[uid] = SeriesInfo(
                uid=uid,
                modality=header[MODALITY],
                description=header[DESCRIPTION],
                frame_of_reference=header[FRAME_OF_REFERENCE],
                study_uid=header[STUDY_UID],
            )
        info.files.append(path)
        info.headers.append(header)
    progress(1.0, f"scanned {folder.name}")
    return list(series.values())


def select_series(
    folder: str | os.PathLike,
    series: list[SeriesInfo],
    series_uid: str | None = None,
    modality: str | None = None,
) -> SeriesInfo:
    """Pick one image series: by UID, else by modality, else the only one there is."""
    images = [s for s in series if s.is_image]
    if series_uid:
        chosen = [s for s in series if s.uid == series_uid]
        if not chosen:
            raise ImgSuiteError(f"no series {series_uid}; the folder holds: {_listing(series)}", folder)
        if not chosen[0].is_image:
            raise ImgSuiteError(f"series {series_uid} is {chosen[0].modality}, not an image series", folder)
        return chosen[0]
    if modality:
        images = [s for s in images if s.modality.upper() == modality.upper()]
        if not images:
            raise ImgSuiteError(f"no {modality} image series; the folder holds: {_listing(series)}", folder)
    if not images:
        if series:
            raise ImgSuiteError(f"no image series (found only {_listing(series)})", folder)
        raise ImgSuiteError("no DICOM files", folder)
    if len(images) > 1:
        raise ImgSuiteError(
            f"folder holds {len(images)} image series; choose one by SeriesInstanceUID or modality "
            f"(--input-series-uid, --input-modality): {_listing(images)}",
            folder,
        )
    return images[0]


def find_series(
    folder: str | os.PathLike,
    series_uid: str | None = None,
    modality: str | None = None,
    progress: ProgressCallback | None = None,
) -> SeriesInfo:
    """Scan ``folder`` and pick one image series (:func:`select_series`).

    A folder whose top level holds no DICOM image (a patient folder of study/series subfolders, or
    an RTSTRUCT beside a ``CT/`` folder) is searched recursively; the series taken from a subfolder is
    named in a warning.
    """
    folder = Path(folder)
    series = scan_folder(folder, progress=progress)
    if any(s.is_image for s in series):
        return select_series(folder, series, series_uid, modality)
    series = scan_folder(folder, progress=progress, recursive=True)
    info = select_series(folder, series, series_uid, modality)
    where = sorted({str(f.parent.relative_to(folder)) for f in info.files})
    warnings.warn(
        f"{folder}: no DICOM image at the top level; using series {info.summary()} found in {', '.join(where)}",
        stacklevel=3,
    )
    return info


def _listing(series: list[SeriesInfo]) -> str:
    return "; ".join(s.summary() for s in series) or "nothing"


# Limits a slice's values must keep: beyond them a number is damage, not a measurement.
_MAX_COORDINATE_MM = 1e6  # a kilometre: no patient position or pixel size is larger
_MAX_RESCALE = 1e6
_BITS_ALLOCATED = (8, 16, 32)
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def validate_series(info: SeriesInfo) -> None:
    """Check every slice of ``info`` before its pixels are used; an error names the file and the tag.

    Checked: the PixelData holds Rows x Columns x SamplesPerPixel x BitsAllocated/8 bytes per frame
    (a truncated slice is never read as zeros); ImagePositionPatient (3), ImageOrientationPatient (6,
    two orthogonal unit vectors) and PixelSpacing (2, positive, the same on every slice) are finite
    numbers; RescaleSlope is finite and not zero, RescaleIntercept finite and within +-1e6, both present
    on a CT (type 1 there: without them the stored values are not HU); BitsAllocated is 8, 16 or 32;
    unsigned 16-bit values fit in BitsStored (decoders would cut higher bits off) unless an overlay is there.
    The validated values replace the scanned header text, so the geometry is built from them.
    """
    for path, header in zip(info.files, info.headers):
        header.update(validate_slice(path))
    _check_same_pixel_spacing(info)
    _check_one_study_and_frame(info)


def _check_same_pixel_spacing(info: SeriesInfo) -> None:
    """One PixelSpacing for the whole series: a volume has one in-plane grid (a differing slice is refused)."""
    spacings = [_floats(h.get(PIXEL_SPACING, "")) for h in info.headers]
    first = spacings[0] if spacings else []
    for path, spacing in zip(info.files, spacings):
        if first and spacing and not np.allclose(spacing, first, rtol=1e-4, atol=1e-6):
            raise ImgSuiteError(
                f"PixelSpacing (0028,0030) is {spacing}, the series' first slice ({info.files[0].name}) has {first}; "
                "a volume needs one pixel spacing",
                path,
            )


def _check_one_study_and_frame(info: SeriesInfo) -> None:
    """One Study and Frame of Reference for the whole series: an RTSTRUCT, RTDOSE or SEG written on it copies the first
    slice's and references every slice, so slices of another frame (a merge, a per-file anonymizer) were misplaced."""
    for tag, keyword in ((STUDY_UID, "StudyInstanceUID"), (FRAME_OF_REFERENCE, "FrameOfReferenceUID")):
        first = next((h.get(tag, "") for h in info.headers if h.get(tag, "")), "")
        for path, header in zip(info.files, info.headers):
            value = header.get(tag, "")
            if value and value != first:
                raise ImgSuiteError(
                    f"{keyword} ({tag.replace('|', ',').upper()}) is {value}, other slices of series {info.uid} have {first}; "
                    "one series must lie in one study and Frame of Reference",
                    path,
                )


def validate_slice(path: str | os.PathLike, require_geometry: bool = True) -> dict[str, str]:
    """The checked geometry and rescale tags of one slice file (see :func:`validate_series`).

    With ``require_geometry=False`` (a single file read alone: a radiograph has no patient position)
    absent geometry tags are allowed; present ones are still checked.
    """
    import pydicom

    path = Path(path)
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            pixel_bytes = _pixel_data_length(fp, ds, path)
            data_start = fp.tell()
    except ImgSuiteError:
        raise
    except Exception as exc:  # pydicom raises many kinds on damaged files
        raise ImgSuiteError(f"corrupt DICOM file ({type(exc).__name__}: {exc})", path) from None
    try:
        values = _checked_values(ds, path, pixel_bytes, require_geometry)
        _check_stored_bits(ds, path, data_start, pixel_bytes)
        return values
    except ImgSuiteError:
        raise
    except Exception as exc:  # pydicom parses elements when first read: a damaged one raises then
        raise ImgSuiteError(f"corrupt DICOM header ({type(exc).__name__}: {exc})", path) from None


def _checked_values(ds, path: Path, pixel_bytes: int | None, require_geometry: bool) -> dict[str, str]:
    """:func:`validate_slice` on a read header."""
    # a lone file without any geometry (a radiograph) is read for its pixels; partial geometry is damage
    require_geometry = require_geometry or any(
        ds.get_item(k) is not None for k in ("ImagePositionPatient", "ImageOrientationPatient")
    )
    ipp = tag_numbers(ds, path, "ImagePositionPatient", 3, require_geometry)
    iop = tag_numbers(ds, path, "ImageOrientationPatient", 6, require_geometry)
    spacing = tag_numbers(ds, path, "PixelSpacing", 2, require_geometry)
    if ipp is None or iop is None or spacing is None:
        _check_pixel_format(ds, path, pixel_bytes)
        return {}
    if min(spacing) <= 0:
        raise ImgSuiteError(f"PixelSpacing (0028,0030) must be positive, not {spacing}", path)
    row, col = np.array(iop[:3]), np.array(iop[3:])
    if abs(np.linalg.norm(row) - 1) > 1e-2 or abs(np.linalg.norm(col) - 1) > 1e-2 or abs(row @ col) > 1e-2:
        raise ImgSuiteError(f"ImageOrientationPatient (0020,0037) is not two orthogonal unit vectors: {iop}", path)
    rescale = [tag_numbers(ds, path, k, 1, required=False) for k in ("RescaleSlope", "RescaleIntercept")]
    if str(ds.get("Modality", "")).strip() == "CT" and None in rescale:
        missing = "RescaleSlope (0028,1053)" if rescale[0] is None else "RescaleIntercept (0028,1052)"
        raise ImgSuiteError(f"{missing} is missing: a CT must carry it (type 1), its stored values are not HU", path)
    slope, intercept = (rescale[0] or [1.0])[0], (rescale[1] or [0.0])[0]
    if slope == 0 or abs(slope) > _MAX_RESCALE:
        raise ImgSuiteError(f"RescaleSlope (0028,1053) = {slope:g} is not a usable scale", path)
    if abs(intercept) > _MAX_RESCALE:
        raise ImgSuiteError(f"RescaleIntercept (0028,1052) = {intercept:g} is beyond +-{_MAX_RESCALE:g}", path)
    _check_pixel_format(ds, path, pixel_bytes)
    join = lambda values: "\\".join(repr(float(v)) for v in values)  # noqa: E731
    return {
        POSITION: join(ipp),
        ORIENTATION: join(iop),
        PIXEL_SPACING: join(spacing),
        SLOPE: repr(slope),
        INTERCEPT: repr(intercept),
    }


def tag_numbers(
    ds, path: Path, keyword: str, count: int | None, required: bool = True, empty_is_absent: bool = False
) -> list[float] | None:
    """The values of a decimal-string tag read from its raw bytes: exactly ``count`` finite numbers (``None``: one
    or more); ``None`` when absent and not ``required`` (or empty, with ``empty_is_absent``)."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    name = f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"
    element = ds.get_item(tag)
    raw = getattr(element, "value", None) if element is not None else None
    if isinstance(raw, (bytes, bytearray)):
        text = raw.decode("latin-1").strip(" \0")
        parts = [t.strip(" \0") for t in text.split("\\")] if text else []
    elif raw is None or raw == "":
        parts = []
    elif isinstance(raw, str):
        parts = raw.split("\\")
    else:  # already converted by pydicom: a number or a list of them
        parts = [str(v) for v in raw] if hasattr(raw, "__iter__") else [str(raw)]
    if not parts:
        if required:
            raise ImgSuiteError(f"{name} is missing", path)
        if element is not None and not empty_is_absent:
            raise ImgSuiteError(f"{name} is present but empty", path)
        return None
    if count is not None and len(parts) != count:
        raise ImgSuiteError(f"{name} holds {len(parts)} values; {count} are needed", path)
    try:
        values = [float(t) for t in parts]
    except ValueError:
        raise ImgSuiteError(f"{name} holds text, not numbers: {parts}", path) from None
    if not all(math.isfinite(v) and abs(v) <= _MAX_COORDINATE_MM for v in values):
        raise ImgSuiteError(f"{name} holds a value that is not a finite number of sane size: {parts}", path)
    return values


def _pixel_data_length(fp, ds, path: Path) -> int | None:
    """Bytes of PixelData present in the file (``None`` for compressed, encapsulated pixels)."""
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8 or head[:4] != b"\xe0\x7f\x10\x00":
        raise ImgSuiteError("PixelData (7FE0,0010) is missing", path)
    syntax = str(getattr(getattr(ds, "file_meta", None), "get", lambda *_: None)("TransferSyntaxUID") or "")
    if syntax and syntax not in _UNCOMPRESSED:
        return None  # encapsulated: the decoder checks the fragments
    if head[4:6].isalpha() and head[4:6].isupper():  # explicit VR: OB/OW, 2 reserved bytes, 4-byte length
        declared, offset = int.from_bytes(head[8:12], "little"), 12
    else:
        declared, offset = int.from_bytes(head[4:8], "little"), 8
    if declared == 0xFFFFFFFF:
        return None
    fp.seek(start + offset)  # the first pixel byte
    present = os.path.getsize(path) - start - offset
    return min(declared, max(present, 0))


def _check_stored_bits(ds, path: Path, data_start: int, pixel_bytes: int | None) -> None:
    """Refuse unsigned 16-bit pixels that use bits above BitsStored (0028,0101) when no overlay lives there.

    Decoders (GDCM, pydicom) mask those bits off: a value of 2801 with 11 bits stored is read as 753, so
    bone becomes soft tissue. Bits above BitsStored may only hold an overlay (OverlayBitPosition).
    """
    try:
        bits, stored = int(ds.get("BitsAllocated") or 0), int(ds.get("BitsStored") or 0)
        signed = int(ds.get("PixelRepresentation") or 0)
    except (TypeError, ValueError):
        return  # the format check names these tags
    if pixel_bytes is None or bits != 16 or not 0 < stored < 16 or signed:
        return
    if any((tag >> 16) & 0xFF01 == 0x6000 and tag & 0xFFFF == 0x0102 for tag in ds.keys()):
        return  # an overlay in the high bits: masking them is right
    syntax = str(getattr(getattr(ds, "file_meta", None), "get", lambda *_: None)("TransferSyntaxUID") or "")
    dtype = ">u2" if syntax == "1.2.840.10008.1.2.2" else "<u2"
    values = np.memmap(path, dtype=dtype, mode="r", offset=data_start, shape=(pixel_bytes // 2,))
    top = int(values.max(initial=0))
    if top >> stored:
        raise ImgSuiteError(
            f"stored values reach {top}, beyond BitsStored (0028,0101) = {stored} (at most {(1 << stored) - 1}); "
            "they would be read with their high bits cut off",
            path,
        )


def _check_pixel_format(ds, path: Path, pixel_bytes: int | None) -> None:
    try:
        rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        bits = int(ds.get("BitsAllocated") or 0)
        samples = int(ds.get("SamplesPerPixel") or 1)
        frames = int(str(ds.get("NumberOfFrames") or 1).strip() or 1)
    except (TypeError, ValueError) as exc:
        raise ImgSuiteError(
            f"unreadable image size tags (Rows, Columns, BitsAllocated, NumberOfFrames): {exc}", path
        ) from None
    if rows <= 0 or cols <= 0:
        raise ImgSuiteError(f"Rows (0028,0010) x Columns (0028,0011) = {rows} x {cols}: no pixels", path)
    if bits not in _BITS_ALLOCATED:
        raise ImgSuiteError(f"BitsAllocated (0028,0100) = {bits}; only 8, 16 or 32 are read", path)
    if samples not in (1, 3) or frames < 1:
        raise ImgSuiteError(f"SamplesPerPixel = {samples}, NumberOfFrames = {frames}: not an image slice", path)
    expected = rows * cols * samples * bits // 8 * frames
    if pixel_bytes is not None and pixel_bytes < expected:
        raise ImgSuiteError(
            f"truncated slice: PixelData (7FE0,0010) holds {pixel_bytes} bytes, "
            f"Rows x Columns x SamplesPerPixel x BitsAllocated/8 needs {expected}",
            path,
        )


@dataclass
class SliceGeometry:
    """Geometry of a sorted series: the order of its files and the grid they make."""

    order: np.ndarray  # indices into SeriesInfo.files, sorted along the normal
    origin: np.ndarray
    direction: np.ndarray  # 3x3, columns = i, j, k axes
    spacing: np.ndarray
    positions: np.ndarray  # slice positions along the normal, sorted
    uneven: bool


def slice_geometry(info: SeriesInfo, folder: Path, tolerance: float = 0.01) -> SliceGeometry:
    """Sort the slices of ``info`` along their normal and derive the volume grid."""
    orientations = np.array([_floats(h[ORIENTATION]) for h in info.headers])
    ref = orientations[0]
    bad = np.where(np.abs(orientations - ref).max(axis=1) > 1e-4)[0]
    if len(bad):
        raise ImgSuiteError(
            f"series {info.uid} mixes slice orientations ({info.files[bad[0]].name} differs from "
            f"{info.files[0].name}); a volume needs one orientation",
            folder,
        )
    row, col = ref[:3], ref[3:]
    normal = np.cross(row, col)
    ipp = np.array([_floats(h[POSITION]) for h in info.headers])
    along = ipp @ normal
    order = np.argsort(along, kind="stable")
    positions = along[order]
    if len(positions) > 1:
        gaps = np.diff(positions)
        if np.any(gaps < 1e-3):
            k = int(np.argmin(gaps))
            raise ImgSuiteError(
                f"two slices at the same position ({info.files[order[k]].name}, {info.files[order[k + 1]].name}); "
                "the folder may hold duplicates or several acquisitions",
                folder,
            )
        dz = float(np.median(gaps))
        uneven = bool(np.max(np.abs(gaps - dz)) > max(tolerance * dz, 1e-3))
    else:
        try:
            dz = (_floats(info.headers[0][THICKNESS]) or [1.0])[0] or 1.0
        except ValueError:
            raise ImgSuiteError("SliceThickness (0018,0050) of a single slice is not a number", info.files[0]) from None
        if not (math.isfinite(dz) and dz > 0):
            raise ImgSuiteError(
                f"SliceThickness (0018,0050) = {dz} of a single slice is not a positive size", info.files[0]
            )
        uneven = False
    ps = _floats(info.headers[0][PIXEL_SPACING])
    _check_stacked_along_normal(info, ipp[order], np.array([row, col]), min(ps), folder)
    # PixelSpacing is (row spacing, column spacing) = (spacing along j, spacing along i).
    spacing = np.array([ps[1], ps[0], dz])
    direction = np.column_stack([row, col, normal])
    return SliceGeometry(order, ipp[order[0]], direction, spacing, positions, uneven)


def _check_stacked_along_normal(info: SeriesInfo, ipp: np.ndarray, axes: np.ndarray, pixel: float, folder) -> None:
    """Refuse slices whose positions move within the slice plane (gantry tilt, a moved slice).

    A volume's grid stacks every slice along the normal; a slice offset along its rows or columns by more
    than 5 % of a pixel would be placed where it was not acquired.
    """
    offsets = (ipp - ipp[0]) @ axes.T  # in-plane offset of each sorted slice from the first, mm
    off = np.linalg.norm(offsets, axis=1)
    k = int(np.argmax(off))
    if off[k] <= max(0.05 * pixel, 1e-3):
        return
    along = max(float(np.linalg.norm(ipp[-1] - ipp[0]) ** 2 - off[-1] ** 2), 0.0) ** 0.5
    why = "a moved slice"
    if off[-1] > max(0.05 * pixel, 1e-3) and along > 0:
        why = f"a gantry tilt of {np.degrees(np.arctan2(off[-1], along)):.3g} degrees"
    name = next(f.name for f, h in zip(info.files, info.headers) if np.allclose(_floats(h[POSITION]), ipp[k]))
    raise ImgSuiteError(
        f"ImagePositionPatient (0020,0032) of {name} lies {off[k]:.3g} mm off the first slice's normal: the "
        f"slices are not stacked along their normal ({why}); one volume grid cannot hold them",
        folder,
    )


def read_dicom_series(
    folder: str | os.PathLike,
    series_uid: str | None = None,
    modality: str | None = None,
    resample_uneven: bool = False,
    progress: ProgressCallback | None = None,
) -> sitk.Image:
    """Read one DICOM image series from ``folder`` into a ``SimpleITK.Image`` (LPS).

    Parameters
    ----------
    folder : path
        A folder of slice files (its subfolders are searched only when it holds no DICOM file itself).
    series_uid, modality : str, optional
        Which series to take when the folder holds several.
    resample_uneven : bool
        When slices are unevenly spaced, resample linearly onto the median spacing instead of
        raising an error.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    SimpleITK.Image
        Rescaled values (HU for CT): int16 when slope and intercept keep integers in range,
        float32 otherwise. Metadata keys ``0020|000e`` (series UID), ``0008|0060`` (modality),
        ``0020|0052`` (frame of reference) and ``0020|000d`` (study UID) are set.
    """
    folder = Path(folder)
    progress = progress or no_progress
    info = find_series(folder, series_uid, modality, _part(progress, 0.0, 0.3))
    validate_series(info)
    geom = slice_geometry(info, folder)
    if geom.uneven and not resample_uneven:
        gaps = np.diff(geom.positions)
        raise ImgSuiteError(
            f"slices are unevenly spaced (gaps from {gaps.min():.3g} to {gaps.max():.3g} mm); "
            "pass resample_uneven=True (CLI: --resample-uneven) to resample onto even spacing",
            folder,
        )
    files = [str(info.files[i]) for i in geom.order]
    progress(0.3, f"reading {len(files)} slices")
    volume = _read_pixels(files, [info.headers[i] for i in geom.order], folder)
    progress(0.9, "assembling volume")
    if geom.uneven:
        volume = _resample_along_normal(volume, geom.positions, geom.spacing[2])
    image = sitk.GetImageFromArray(volume)
    image.SetOrigin([float(v) for v in geom.origin])
    image.SetSpacing([float(v) for v in geom.spacing])
    image.SetDirection([float(v) for v in geom.direction.ravel()])
    for key, value in (
        ("0020|000e", info.uid),
        ("0008|0060", info.modality),
        ("0020|0052", info.frame_of_reference),
        ("0020|000d", info.study_uid),
    ):
        image.SetMetaData(key, str(value).encode("utf-8", "replace").decode("utf-8"))  # damaged text stays text
    progress(1.0, "series read")
    return image


def series_files(folder: str | os.PathLike, series_uid: str | None = None, modality: str | None = None) -> list[Path]:
    """The files of one image series, sorted along the slice normal (first slice first)."""
    folder = Path(folder)
    info = find_series(folder, series_uid, modality)
    validate_series(info)
    geom = slice_geometry(info, folder)
    return [info.files[i] for i in geom.order]


def _part(progress: ProgressCallback, a: float, b: float) -> ProgressCallback:
    return lambda f, m="": progress(a + (b - a) * f, m)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split("\\") if v.strip()]


def _read_pixels(files: list[str], headers: list[dict[str, str]], folder: Path) -> np.ndarray:
    """Stored values through GDCM (fast, C++), then the rescale of each slice."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    slopes = np.array([float(h[SLOPE] or 1) for h in headers])
    intercepts = np.array([float(h[INTERCEPT] or 0) for h in headers])
    try:
        if np.all(slopes == slopes[0]) and np.all(intercepts == intercepts[0]):
            image = reader.Execute()  # GDCM applies a rescale common to all slices
            volume = sitk.GetArrayFromImage(image)
            return _narrow(volume, slopes[0], intercepts[0])
        # Rescale differs between slices (PET, some CTs): read stored values and rescale each slice.
        import pydicom

        stored = np.stack([pydicom.dcmread(f).pixel_array for f in files]).astype(np.float32)
        volume = stored * slopes[:, None, None].astype(np.float32) + intercepts[:, None, None].astype(np.float32)
        return volume
    except RuntimeError as exc:
        bad = _first_unreadable(files)
        raise ImgSuiteError(
            f"cannot read pixel data ({str(exc).strip().splitlines()[-1][:200]})", bad or folder
        ) from None


def _narrow(volume: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """int16 when the rescaled values are integers that fit, else float32."""
    if slope == int(slope) and intercept == int(intercept) and np.issubdtype(volume.dtype, np.integer):
        lo, hi = volume.min(initial=0), volume.max(initial=0)
        if lo >= -32768 and hi <= 32767:
            return volume.astype(np.int16, copy=False)
        return volume.astype(np.int32, copy=False)
    if np.issubdtype(volume.dtype, np.floating) and np.all(volume == np.round(volume)):
        lo, hi = volume.min(initial=0), volume.max(initial=0)
        if lo >= -32768 and hi <= 32767:
            return volume.astype(np.int16)
    return volume.astype(np.float32, copy=False)


def _first_unreadable(files: list[str]) -> str | None:
    import pydicom

    for f in files:
        try:
            pydicom.dcmread(f).pixel_array  # noqa: B018 (decode to find the culprit)
        except Exception:
            return f
    return None


def _resample_along_normal(volume: np.ndarray, positions: np.ndarray, dz: float) -> np.ndarray:
    """Linear interpolation between neighbouring slices onto an even grid starting at the first slice."""
    n = int(round((positions[-1] - positions[0]) / dz)) + 1
    targets = positions[0] + dz * np.arange(n)
    upper = np.clip(np.searchsorted(positions, targets, side="right"), 1, len(positions) - 1)
    lower = upper - 1
    w = ((targets - positions[lower]) / (positions[upper] - positions[lower])).astype(np.float32)
    w = np.clip(w, 0, 1)[:, None, None]
    return (volume[lower] * (1 - w) + volume[upper] * w).astype(np.float32)
