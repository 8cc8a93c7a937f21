"""Write DICOM RTSTRUCT files: the one RTSTRUCT writer of SlicerImgSuite.

Contours from masks are traced by marching squares at level 0.5 on each slice (scikit-image):
the polygon crosses every edge between an inside and an outside voxel centre half-way, so the
"voxel centre inside, even-odd" rule of :mod:`.rasterize` gives back exactly the same mask
(holes are separate contours). Every contour references its CT slice (ContourImageSequence),
the structure set references the CT's Frame of Reference, study and series, and patient/study
attributes are copied from the CT.
"""

from __future__ import annotations

import datetime
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .. import __version__
from ..errors import ImgSuiteError
from ..geometry import same_grid
from ..io import atomic_path
from ..io.dicom_series import (
    ORIENTATION,
    PIXEL_SPACING,
    POSITION,
    THICKNESS,
    SeriesInfo,
    scan_folder,
    select_series,
    slice_geometry,
    validate_series,
)
from ..io.dicom_write import copied_study_value
from ..progress import ProgressCallback, no_progress
from .rasterize import Grid
from .structure_set import DEFAULT_COLORS, RTSTRUCT_SOP_CLASS, Contour, Roi

_COPIED = [
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
    "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
]  # fmt: skip


@dataclass
class ReferenceSeries:
    """The image series an RTSTRUCT points at: its slices (sorted along the normal) and grid."""

    datasets: list[Dataset]
    grid: Grid

    @property
    def frame_of_reference(self) -> str:
        return str(self.datasets[0].get("FrameOfReferenceUID", ""))

    def image(self) -> sitk.Image:
        """An empty image on the series grid."""
        return self.grid.image(np.zeros(self.grid.size[::-1], np.uint8))


def reference_series(reference) -> ReferenceSeries:
    """Load the headers of a CT series: a folder, a list of paths, or a list of pydicom datasets.

    The slices are checked and sorted by the series reader's own rules (:mod:`SlicerImgSuite.io.dicom_series`):
    a folder's slices are validated as :func:`~SlicerImgSuite.io.dicom_series.read_dicom_series` validates
    them, and every series must have one orientation, no two slices at one position and, for a single slice,
    a positive SliceThickness. Unevenly spaced slices are a warning (the grid takes the median spacing).

    Parameters
    ----------
    reference : path, list of path or pydicom.Dataset, or ReferenceSeries
        The CT folder (its one image series, or an error naming the choices) or its slices.

    Returns
    -------
    ReferenceSeries
        The slice headers sorted along the normal, and their grid.

    Examples
    --------
    >>> import tempfile
    >>> from SlicerImgSuite.io.dicom_write import write_ct_series
    >>> ct = sitk.Image(4, 3, 5, sitk.sitkInt16)
    >>> ct.SetSpacing((1.0, 1.0, 2.5))
    >>> reference = reference_series(write_ct_series(ct, Path(tempfile.mkdtemp())))  # the headers just written
    >>> reference.grid.size, reference.grid.spacing.tolist()
    ((4, 3, 5), [1.0, 1.0, 2.5])
    """
    if isinstance(reference, ReferenceSeries):
        return reference
    where = None
    if isinstance(reference, (str, os.PathLike)):
        where = Path(reference)
        info = select_series(where, scan_folder(where))
        validate_series(info)
        datasets = info.datasets
    else:
        datasets = [d if isinstance(d, Dataset) else pydicom.dcmread(d, stop_before_pixels=True) for d in reference]
    if not datasets:
        raise ImgSuiteError("the reference series has no slices", where)
    for d in datasets:
        if "ImagePositionPatient" not in d or "ImageOrientationPatient" not in d or "PixelSpacing" not in d:
            raise ImgSuiteError(
                "reference slices need ImagePositionPatient, ImageOrientationPatient and PixelSpacing", where
            )
    geometry = slice_geometry(_series_of(datasets), where)
    if geometry.uneven:
        gaps = np.diff(geometry.positions)
        warnings.warn(
            f"{where or 'the reference series'}: slices are unevenly spaced (gaps from {gaps.min():.3g} to "
            f"{gaps.max():.3g} mm); contours use the median spacing {geometry.spacing[2]:.3g} mm",
            stacklevel=2,
        )
    datasets = [datasets[i] for i in geometry.order]
    size = (int(datasets[0].Columns), int(datasets[0].Rows), len(datasets))
    return ReferenceSeries(datasets, Grid(geometry.origin, geometry.spacing, geometry.direction, size))


def _series_of(datasets: list[Dataset]) -> SeriesInfo:
    """The headers :func:`~SlicerImgSuite.io.dicom_series.slice_geometry` reads, from pydicom datasets."""

    def text(d: Dataset, keyword: str) -> str:
        value = d.get(keyword)
        if value is None:
            return ""
        return "\\".join(
            str(v) for v in (value if isinstance(value, Sequence) and not isinstance(value, str) else [value])
        )

    headers = [
        {
            POSITION: text(d, "ImagePositionPatient"),
            ORIENTATION: text(d, "ImageOrientationPatient"),
            PIXEL_SPACING: text(d, "PixelSpacing"),
            THICKNESS: text(d, "SliceThickness"),
        }
        for d in datasets
    ]
    files = [Path(getattr(d, "filename", None) or f"slice {i + 1}") for i, d in enumerate(datasets)]
    return SeriesInfo(str(datasets[0].get("SeriesInstanceUID", "")), "", files=files, headers=headers)


def contours_from_mask(mask: sitk.Image) -> list[tuple[int, np.ndarray]]:
    """Trace the boundary of a binary mask, slice by slice.

    Returns
    -------
    list of (k, polygon)
        ``k`` is the slice index; ``polygon`` an (N, 3) LPS array (not repeated at the end).
        Outer boundaries and holes are separate polygons (even-odd).

    Examples
    --------
    >>> m = sitk.Image(5, 5, 1, sitk.sitkUInt8); m[2, 2, 0] = 1
    >>> [(k, len(p)) for k, p in contours_from_mask(m)]
    [(0, 4)]
    """
    from skimage.measure import approximate_polygon, find_contours

    grid = Grid.of(mask)
    array = sitk.GetArrayViewFromImage(mask) != 0
    out = []
    for k in np.nonzero(array.reshape(array.shape[0], -1).any(axis=1))[0]:
        padded = np.pad(array[k], 1).astype(np.uint8)
        for rc in find_contours(padded, 0.5):
            rc = approximate_polygon(rc[:-1] - 1.0, tolerance=0)  # drop exactly collinear points
            if len(rc) >= 3:
                index = np.column_stack([rc[:, 1], rc[:, 0], np.full(len(rc), float(k))])
                out.append((int(k), grid.to_physical(index)))
    return out


def write_rtstruct(
    path: str | os.PathLike,
    reference,
    rois: Sequence[Roi] | Sequence[Mapping],
    label: str = "ImgSuite",
    series_description: str = "SlicerImgSuite structures",
    amend=None,
) -> Dataset:
    """Write an RTSTRUCT that references the CT series ``reference``.

    Parameters
    ----------
    path : path
        Output file (written atomically).
    reference : path or list of pydicom.Dataset
        The CT folder, or its slice headers (as :func:`~SlicerImgSuite.io.dicom_write.write_ct_series` returns).
    rois : list of Roi or dict
        Each has ``name``, ``color`` (r, g, b 0-255, optional) and ``contours``: (N, 3) LPS polygons
        (or :class:`Contour`), each lying in one slice plane of the CT. Optional ``interpreted_type``
        (ORGAN, PTV, EXTERNAL...).
    amend : callable, optional
        Called with the dataset just before it is written (approval, observations: see
        :func:`SlicerImgSuite.review.export.export_reviewed_rtstruct`).

    Returns
    -------
    pydicom.Dataset
        The written dataset.

    Examples
    --------
    ::

        square = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 10, 0]], float)
        write_rtstruct("RS.dcm", "CT/", [{"name": "GTV", "color": (255, 0, 0), "contours": [square]}])
    """
    ref = reference_series(reference)
    rois = [_as_roi(r, n) for n, r in enumerate(rois)]
    ds = _structure_set_header(ref, path, label, series_description)
    _add_rois(ds, ref, rois, path)
    ds.ApprovalStatus = "UNAPPROVED"
    if amend is not None:
        amend(ds)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return ds


def _structure_set_header(ref: ReferenceSeries, path, label: str, series_description: str) -> Dataset:
    """A new RTSTRUCT dataset: patient and study copied from the CT, new series, the CT as referenced series."""
    first = ref.datasets[0]
    frame = ref.frame_of_reference
    if not frame:
        raise ImgSuiteError("the reference series has no FrameOfReferenceUID", path)
    now = datetime.datetime.now()

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = RTSTRUCT_SOP_CLASS
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    for key in _COPIED:
        with warnings.catch_warnings():  # the source's own VR overflows are fixed below, not reported
            warnings.simplefilter("ignore")
            value = first.get(key, "")
        setattr(ds, key, copied_study_value(key, value))
    if not ds.StudyInstanceUID:
        raise ImgSuiteError("the reference series has no StudyInstanceUID", path)
    ds.FrameOfReferenceUID = frame
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.SeriesDescription = series_description
    ds.OperatorsName = ""
    ds.Manufacturer = "SlicerImgSuite"
    ds.SoftwareVersions = __version__
    ds.StructureSetLabel = label[:16]
    ds.StructureSetDate = now.strftime("%Y%m%d")
    ds.StructureSetTime = now.strftime("%H%M%S")

    contour_images = DicomSequence([_image_ref(d) for d in ref.datasets])
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = contour_images
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired, as customary)
    study.ReferencedSOPInstanceUID = ds.StudyInstanceUID
    study.RTReferencedSeriesSequence = DicomSequence([series])
    frame_item = Dataset()
    frame_item.FrameOfReferenceUID = frame
    frame_item.RTReferencedStudySequence = DicomSequence([study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_item])
    return ds


def _add_rois(ds: Dataset, ref: ReferenceSeries, rois: list[Roi], path) -> None:
    """The ROI, contour and observation sequences, one item of each per ROI. ROIs read from an RTSTRUCT keep
    their ROI Numbers (an approved-only export of ROIs 5, 9 and 2 renumbered them 1, 2, 3); otherwise 1, 2, ..."""
    frame = ref.frame_of_reference
    ds.StructureSetROISequence = DicomSequence()
    ds.ROIContourSequence = DicomSequence()
    ds.RTROIObservationsSequence = DicomSequence()
    numbers = [int(r.number) for r in rois]
    if len(set(numbers)) != len(numbers) or min(numbers, default=1) < 1:
        numbers = list(range(1, len(rois) + 1))
    for number, roi, name in zip(numbers, rois, lo_names([r.name for r in rois], path), strict=True):
        item = Dataset()
        item.ROINumber = number
        item.ReferencedFrameOfReferenceUID = frame
        item.ROIName = name
        item.ROIGenerationAlgorithm = "SEMIAUTOMATIC"
        ds.StructureSetROISequence.append(item)
        rc = Dataset()
        rc.ROIDisplayColor = [int(v) for v in roi.color]
        rc.ReferencedROINumber = number
        contours = [_contour_item(c, ref, roi.name, path) for c in roi.contours if len(c.points) > 0]
        if contours:  # an empty ROI has no ContourSequence: present, it must hold 1-n items (dciodvfy error)
            rc.ContourSequence = DicomSequence(contours)
        ds.ROIContourSequence.append(rc)
        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = roi.interpreted_type or ""
        obs.ROIInterpreter = ""
        ds.RTROIObservationsSequence.append(obs)


def lo_names(names: list[str], path) -> list[str]:
    """Structure names as ROIName / SegmentLabel (LO) values: 64 characters, no backslash (the value separator:
    'GTV\\boost' was read back as two values, a dciodvfy error). A backslash becomes '/' and a longer name is cut,
    with a warning; cut names that fall together (two 70-character names differing at their end were silently
    written as one) are refused."""
    written, first = [], {}
    for full in names:
        name = full.replace("\\", "/")[:64]
        if name != full:
            warnings.warn(
                f"ROI '{full}' written as '{name}' (a DICOM name holds 64 characters, no backslash)", stacklevel=4
            )
        if first.setdefault(name, full) != full:
            raise ImgSuiteError(
                f"ROIs '{first[name]}' and '{full}' would both be written as '{name}' (a DICOM name holds 64 "
                "characters, no backslash); rename one",
                path,
            )
        written.append(name)
    return written


def write_rtstruct_from_masks(
    path: str | os.PathLike,
    reference,
    masks: Mapping[str, sitk.Image],
    *,
    colors: Mapping[str, tuple[int, int, int]] | None = None,
    progress: ProgressCallback | None = None,
    **kwargs,
) -> Dataset:
    """Trace each mask (on the CT grid) and write them as one RTSTRUCT.

    Parameters
    ----------
    path : path
        The RTSTRUCT file to write (atomically).
    reference : path, list or ReferenceSeries
        The CT series the masks lie on (see :func:`reference_series`).
    masks : dict name -> SimpleITK.Image
        Binary masks on the reference CT's grid (any non-zero voxel is inside).
    colors : dict name -> (r, g, b), optional
    progress : callable, optional
        ``(fraction, message)`` per mask.
    **kwargs :
        Passed to :func:`write_rtstruct` (``label``, ``series_description``, ``amend``).

    Returns
    -------
    pydicom.Dataset
        The RTSTRUCT as written.

    Examples
    --------
    >>> import tempfile
    >>> from SlicerImgSuite.io.dicom_write import write_ct_series
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_ct_series(sitk.Image(8, 8, 3, sitk.sitkInt16), folder / "CT")
    >>> gtv = sitk.Image(8, 8, 3, sitk.sitkUInt8)
    >>> gtv[2:6, 2:6, 1] = 1
    >>> ds = write_rtstruct_from_masks(folder / "RS.dcm", folder / "CT", {"GTV": gtv}, colors={"GTV": (255, 0, 0)})
    >>> [r.ROIName for r in ds.StructureSetROISequence], len(ds.ROIContourSequence[0].ContourSequence)
    (['GTV'], 1)
    """
    progress = progress or no_progress
    ref = reference_series(reference)
    grid_image = ref.image()
    rois = []
    for n, (name, mask) in enumerate(masks.items()):
        progress(n / max(len(masks), 1), f"tracing {name}")
        if not same_grid(mask, grid_image, tolerance=1e-3):
            raise ImgSuiteError(
                f"mask {name!r} is not on the reference CT grid (size {mask.GetSize()} vs {grid_image.GetSize()}, "
                f"origin {np.round(mask.GetOrigin(), 3).tolist()} vs {np.round(grid_image.GetOrigin(), 3).tolist()})",
                path,
            )
        contours = [Contour(p) for _, p in contours_from_mask(mask)]
        color = (colors or {}).get(name, DEFAULT_COLORS[n % len(DEFAULT_COLORS)])
        rois.append(Roi(n + 1, name, tuple(color), contours=contours))
    progress(0.95, "writing RTSTRUCT")
    ds = write_rtstruct(path, ref, rois, **kwargs)
    progress(1.0, "written")
    return ds


def masks_from_labelmap(labels: sitk.Image, names: Mapping[int, str]) -> dict[str, sitk.Image]:
    """Split a labelmap into named binary masks (``names`` maps label value -> structure name)."""
    array = sitk.GetArrayViewFromImage(labels)
    out = {}
    for value, name in names.items():
        mask = sitk.GetImageFromArray((array == value).astype(np.uint8))
        mask.CopyInformation(labels)
        out[name] = mask
    return out


def _as_roi(roi, n: int) -> Roi:
    if isinstance(roi, Roi):
        return roi
    contours = [c if isinstance(c, Contour) else Contour(np.asarray(c, float).reshape(-1, 3)) for c in roi["contours"]]
    color = roi.get("color") or DEFAULT_COLORS[n % len(DEFAULT_COLORS)]
    return Roi(
        n + 1, str(roi["name"]), tuple(int(v) for v in color), roi.get("interpreted_type", ""), contours=contours
    )


def _image_ref(header: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = header.SOPClassUID
    item.ReferencedSOPInstanceUID = header.SOPInstanceUID
    return item


def _contour_item(contour: Contour, ref: ReferenceSeries, roi_name: str, path) -> Dataset:
    points = np.asarray(contour.points, float).reshape(-1, 3)
    item = Dataset()
    if contour.kind != "POINT":
        k = ref.grid.to_index(points)[:, 2]
        nearest = int(np.clip(np.round(k.mean()), 0, len(ref.datasets) - 1))
        if abs(k.mean() - nearest) < 0.5 and np.ptp(k) < 1e-2:
            item.ContourImageSequence = DicomSequence([_image_ref(ref.datasets[nearest])])
        elif np.ptp(k) >= 1e-2:
            raise ImgSuiteError(f"ROI {roi_name!r} has a contour that does not lie in a CT slice plane", path)
    item.ContourGeometricType = contour.kind
    item.NumberOfContourPoints = len(points)
    item.ContourData = [_ds(v) for v in points.ravel()]
    return item


def _ds(value: float) -> str:
    """A decimal string of at most 16 characters."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if len(text) <= 16 else f"{value:.10g}"
