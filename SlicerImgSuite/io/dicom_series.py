"""Read DICOM image series from a folder: the one place that turns slices into a volume.

Slices are ordered by ImagePositionPatient projected on the slice normal (never by file name or
InstanceNumber); one orientation per series is required; uneven slice spacing is an error unless the
caller asks for resampling; RescaleSlope/Intercept are applied. A folder holding several series is
listed, and the caller picks one by SeriesInstanceUID or modality: series are never merged, and
folders the caller did not name are never read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress

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
        return self.modality not in IMAGE_STORAGE_EXCLUDED and all(
            h.get(POSITION) and h.get(ORIENTATION) for h in self.headers
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
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_PYDICOM_NAMES.values()))
    except InvalidDicomError:
        if is_dicom_file(path):
            raise ImgSuiteError("corrupt DICOM file (header cannot be parsed)", path) from None
        return None
    except Exception as exc:  # pydicom raises many kinds on truncated files
        raise ImgSuiteError(f"corrupt DICOM file ({type(exc).__name__}: {exc})", path) from None
    out = {}
    for key, name in _PYDICOM_NAMES.items():
        value = ds.get(name, "")
        out[key] = (
            "\\".join(str(v) for v in value) if isinstance(value, (list, pydicom.multival.MultiValue)) else str(value)
        )
    return out


def scan_folder(folder: str | os.PathLike, progress: ProgressCallback | None = None) -> list[SeriesInfo]:
    """List the series in a folder (not its subfolders), in file-name order of first appearance.

    Files that are not DICOM (a README beside the slices) are ignored; a file that claims to be
    DICOM but cannot be parsed is an error naming it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImgSuiteError("no such folder", folder)
    progress = progress or no_progress
    series: dict[str, SeriesInfo] = {}
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
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


def _listing(series: list[SeriesInfo]) -> str:
    return "; ".join(s.summary() for s in series) or "nothing"


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
        dz = (_floats(info.headers[0][THICKNESS]) or [1.0])[0] or 1.0
        uneven = False
    ps = _floats(info.headers[0][PIXEL_SPACING])
    # PixelSpacing is (row spacing, column spacing) = (spacing along j, spacing along i).
    spacing = np.array([ps[1], ps[0], dz])
    direction = np.column_stack([row, col, normal])
    return SliceGeometry(order, ipp[order[0]], direction, spacing, positions, uneven)


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
        A folder of slice files (its subfolders are not read).
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
    info = select_series(folder, scan_folder(folder, _part(progress, 0.0, 0.3)), series_uid, modality)
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
        image.SetMetaData(key, value)
    progress(1.0, "series read")
    return image


def series_files(folder: str | os.PathLike, series_uid: str | None = None, modality: str | None = None) -> list[Path]:
    """The files of one image series, sorted along the slice normal (first slice first)."""
    folder = Path(folder)
    info = select_series(folder, scan_folder(folder), series_uid, modality)
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
