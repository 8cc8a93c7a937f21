"""Write a ``SimpleITK.Image`` as a DICOM CT (or MR) image series with pydicom: one file per slice.

Used by the demo phantom, ``imgsuite synth --output-dicom`` and ``convert --output-dicom``.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ..errors import ImgSuiteError
from .atomic import atomic_dir

SOP_CLASS = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}
# what an object placed on an existing series' grid copies from it (same patient, study, Frame of Reference)
STUDY_KEYS = [
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID", "StudyDate",
    "StudyTime", "StudyDescription", "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID",
]  # fmt: skip


def new_study(patient_name: str = "Phantom^Patient", patient_id: str = "PHANTOM001") -> dict:
    """Patient/study attributes shared by every object of one generated study (CT, RTSTRUCT, RTDOSE)."""
    now = datetime.datetime.now()
    return {
        "PatientName": patient_name,
        "PatientID": patient_id,
        "PatientBirthDate": "",
        "PatientSex": "O",
        "StudyInstanceUID": generate_uid(),
        "StudyID": "1",
        "StudyDate": now.strftime("%Y%m%d"),
        "StudyTime": now.strftime("%H%M%S"),
        "AccessionNumber": "",
        "ReferringPhysicianName": "",
        "FrameOfReferenceUID": generate_uid(),
    }


def write_ct_series(
    image: sitk.Image,
    folder: str | os.PathLike,
    study: dict | None = None,
    modality: str = "CT",
    series_description: str = "SlicerImgSuite",
    series_number: int = 1,
    *,
    patient_position: str = "HFS",
    attributes: dict | None = None,
    uid_file_names: bool = False,
    series_uid: str | None = None,
    progress=None,
) -> Sequence[pydicom.Dataset]:
    """Write ``image`` (values in HU for CT) as one DICOM file per slice in ``folder``.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image, LPS, orthonormal direction cosines (oblique is fine; a left-handed image is
        written with its slice order reversed: the same voxels at the same places). Values are stored
        as int16 with the RescaleSlope/RescaleIntercept of :func:`int16_rescale`: exact for integers
        that span at most 65536 values, else within half a slope.
    folder : path
        Created when missing; the files move in only when all are written.
    study : dict, optional
        Patient/study/frame-of-reference attributes from :func:`new_study`; a new study by default.
    modality, series_description, series_number :
        Modality (CT, MR ...), SeriesDescription and SeriesNumber of the series.
    patient_position : str
        PatientPosition (HFS, HFP, FFS, FFP, ...).
    attributes : dict, optional
        More attributes by keyword (``InstitutionName``), set on every slice last.
    uid_file_names : bool
        Name the files ``CT0001_<SOPInstanceUID>.dcm`` instead of ``CT0001.dcm``.
    series_uid : str, optional
        SeriesInstanceUID (a new one by default).
    progress : callable, optional
        ``(fraction, message)`` per slice.

    Returns
    -------
    sequence of pydicom.Dataset
        The written slices (without pixel data), first slice first: what an RTSTRUCT references (each header is
        built when first used).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> image = sitk.Image(4, 3, 2, sitk.sitkFloat32) + 0.25
    >>> headers = write_ct_series(image, pathlib.Path(tempfile.mkdtemp()) / "ct")
    >>> len(headers), headers[0].RescaleIntercept
    (2, '0.25')
    """
    image = _right_handed(check_series_image(image, modality))
    array = sitk.GetArrayViewFromImage(image)
    slope, intercept = int16_rescale(array)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    normal = np.cross(direction[:, 0], direction[:, 1])
    series_uid = series_uid or generate_uid()
    ds = _slice_dataset(dict(study or new_study()), modality, series_uid, series_description, series_number)
    ds.ImageOrientationPatient = [_ds(v) for v in np.concatenate([direction[:, 0], direction[:, 1]])]
    ds.PixelSpacing = [_ds(image.GetSpacing()[1]), _ds(image.GetSpacing()[0])]
    ds.SliceThickness = _ds(image.GetSpacing()[2])
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PatientPosition = patient_position
    for key, value in (attributes or {}).items():
        setattr(ds, key, value)
    _declare_charset(ds)
    ds.Rows, ds.Columns = array.shape[1], array.shape[2]
    template = _SliceTemplate(ds, array.shape[1] * array.shape[2] * 2)
    places = []
    progress = progress or (lambda *a: None)
    with atomic_dir(folder) as tmp:
        for k in range(array.shape[0]):
            if k % 20 == 0:
                progress(k / array.shape[0], "writing DICOM slices")
            position = image.TransformIndexToPhysicalPoint((0, 0, k))
            places.append((position, float(np.dot(position, normal))))
            template.patch(k, *places[-1])
            name = f"{modality}{k + 1:04d}" + (f"_{template.uid(k)}" if uid_file_names else "")
            with open(Path(tmp) / f"{name}.dcm", "wb") as f:
                f.write(template.encoded)
                f.write(int16_stored(array[k], slope, intercept).tobytes())
    progress(1.0, "DICOM series written")
    return _Headers(template, places)


class _Headers(Sequence):
    """The written slices' headers, each built when first asked for (a series written for itself builds none)."""

    def __init__(self, template: _SliceTemplate, places: list):
        self._template, self._places, self._built = template, places, {}

    def __len__(self) -> int:
        return len(self._places)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        k = range(len(self))[i]  # negative indices; IndexError past the end
        if k not in self._built:
            self._built[k] = self._template.header(k, *self._places[k])
        return self._built[k]


_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UT"}


def _declare_charset(ds: pydicom.Dataset) -> None:
    """UTF-8 (ISO_IR 192) when any text is beyond ASCII (Müller, 山田). A name copied from a CT is a PersonName,
    not a str: without this, a Japanese name was written as '??^??' and a Latin-1 one in an undeclared charset."""
    if any(e.VR in _TEXT_VRS and not str(e.value).isascii() for e in ds):
        ds.SpecificCharacterSet = "ISO_IR 192"


class _SliceTemplate:
    """One slice header, serialised once by pydicom with fixed-width stand-ins for what changes from slice to slice.

    Each slice gets its SOPInstanceUID (the series' UID root + a 6-digit slice number), InstanceNumber,
    ImagePositionPatient and SliceLocation written over the stand-ins (same byte lengths, leading spaces
    as DICOM allows) by :meth:`patch`, then its pixels; :meth:`header` builds the slice's header as a Dataset.
    """

    _IPP = "\\".join(["-99999.999999999"] * 3)
    _LOCATION, _NUMBER = "-88888.888888888", "77777777"

    def __init__(self, ds: pydicom.Dataset, pixel_bytes: int):
        import io

        self.ds, self.root = ds, generate_uid()[:56].rstrip(".")
        stand_in = self.uid(899999)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = stand_in
        ds.InstanceNumber, ds.ImagePositionPatient, ds.SliceLocation = (
            self._NUMBER,
            self._IPP.split("\\"),
            self._LOCATION,
        )
        ds.PixelData = bytes(pixel_bytes)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        del ds.PixelData
        self.encoded = bytearray(buffer.getvalue()[:-pixel_bytes])
        self.where = {}
        for key, tags, text in (("uid", [(0x0002, 0x0003), (0x0008, 0x0018)], stand_in),
                                ("number", [(0x0020, 0x0013)], self._NUMBER), ("ipp", [(0x0020, 0x0032)], self._IPP),
                                ("location", [(0x0020, 0x1041)], self._LOCATION)):  # fmt: skip
            self.where[key] = [self._value_offset(tag, text) for tag in tags]

    def _value_offset(self, tag: tuple[int, int], text: str) -> int:
        """Where the value of element ``tag`` (explicit VR little endian, short form) starts in the encoding."""
        import struct

        value = text.encode() + b"\0" * (len(text) % 2)  # UI pads with NUL to even length
        vr = pydicom.datadict.dictionary_VR(tag[0] << 16 | tag[1]).encode()
        element = struct.pack("<HH2sH", tag[0], tag[1], vr, len(value)) + value
        found = self.encoded.find(element)
        if found < 0 or self.encoded.find(element, found + 1) >= 0:
            raise RuntimeError(f"slice template: element {tag} not found once")
        return found + 8

    def uid(self, k: int) -> str:
        """Slice ``k``'s SOPInstanceUID."""
        return f"{self.root}.{100000 + k}"

    def patch(self, k: int, position, location: float) -> None:
        """Write slice ``k``'s UID, number, position and location over the stand-ins of :attr:`encoded`."""
        values = {
            "uid": self.uid(k),
            "number": str(k + 1).rjust(len(self._NUMBER)),
            "ipp": "\\".join(_ds(v).rjust(16) for v in position),
            "location": _ds(location).rjust(16),
        }
        for key, text in values.items():
            for i in self.where[key]:
                self.encoded[i : i + len(text)] = text.encode()

    def header(self, k: int, position, location: float) -> pydicom.Dataset:
        """Slice ``k``'s header as a Dataset (without pixel data)."""
        header = pydicom.Dataset(dict(self.ds.items()))  # its own element table: the elements below are this slice's
        header.file_meta = self.ds.file_meta
        for keyword, value in (
            ("SOPInstanceUID", self.uid(k)),
            ("InstanceNumber", k + 1),
            ("ImagePositionPatient", [_ds(v) for v in position]),
            ("SliceLocation", _ds(location)),
        ):
            tag = pydicom.datadict.tag_for_keyword(keyword)
            header[tag] = pydicom.DataElement(tag, pydicom.datadict.dictionary_VR(tag), value)
        return header


def _ds(value: float) -> str:
    """A decimal string (DS, at most 16 characters) as close to ``value`` as DS allows."""
    from pydicom.valuerep import format_number_as_ds

    value = float(value)
    return format_number_as_ds(0.0 if abs(value) < 1e-12 else value)


def check_series_image(image: sitk.Image, modality: str = "CT") -> sitk.Image:
    """Refuse what a DICOM image series cannot hold: not 3D scalar, sheared axes, NaN or infinite values."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ImgSuiteError(f"a DICOM series needs a 3D scalar image, got {image.GetDimension()}D")
    if modality not in SOP_CLASS:
        raise ImgSuiteError(f"cannot write modality {modality!r}; use one of {', '.join(SOP_CLASS)}")
    direction = np.array(image.GetDirection()).reshape(3, 3)
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-5):
        raise ImgSuiteError("the direction cosines are not orthonormal (sheared); a DICOM series cannot hold them")
    array = sitk.GetArrayViewFromImage(image)
    if not np.issubdtype(array.dtype, np.integer) and not np.all(np.isfinite(array)):
        raise ImgSuiteError("the image holds NaN or infinite values; a DICOM series cannot store them")
    return image


def _right_handed(image: sitk.Image) -> sitk.Image:
    """DICOM slices stack along row x column: a left-handed image is flipped along k (same voxels in space)."""
    if np.linalg.det(np.array(image.GetDirection()).reshape(3, 3)) > 0:
        return image
    return sitk.Flip(image, [False, False, True])


def int16_rescale(array: np.ndarray) -> tuple[str, str]:
    """The RescaleSlope and RescaleIntercept (DS text) that store ``array`` as int16 (:func:`int16_stored`).

    Integer values spanning at most 65536 values are exact (slope 1; intercept 0 when they fit int16,
    else the shift that makes them fit). Anything else (fractions, wider ranges) takes slope = range /
    65534 and the mid-range as intercept, rounded to the nearest step: error at most slope / 2.

    Examples
    --------
    >>> values = np.array([0.0, 0.5, 1.0])
    >>> slope, intercept = int16_rescale(values)
    >>> np.abs(float(slope) * int16_stored(values, slope, intercept) + float(intercept) - values).max() <= 1e-4
    np.True_
    >>> int16_rescale(np.array([0, 60000]))
    ('1', '32768')
    """
    array = np.asarray(array)
    integer = np.issubdtype(array.dtype, np.integer)
    if not integer and not np.all(np.isfinite(array)):
        raise ImgSuiteError("the image holds NaN or infinite values; a DICOM series cannot store them")
    lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if integer or np.array_equal(array, np.rint(array)):
        if lo >= -32768 and hi <= 32767:
            return "1", "0"
        if hi - lo <= 65535:
            return "1", str(int(lo) + 32768)
    if hi == lo:
        return "1", _ds(lo)
    return _ds((hi - lo) / 65534), _ds((hi + lo) / 2)


def int16_stored(values: np.ndarray, slope: str, intercept: str) -> np.ndarray:
    """``values`` as the int16 a slice stores: round((value - intercept) / slope)."""
    if slope == "1" and intercept == "0" and np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int16, copy=False)
    stored = np.rint((np.asarray(values, np.float64) - float(intercept)) / float(slope))
    return np.clip(stored, -32768, 32767).astype(np.int16)


def _slice_dataset(study: dict, modality: str, series_uid: str, description: str, number: int) -> pydicom.Dataset:
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASS[modality]
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SOP_CLASS[modality]
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    for key, value in study.items():
        setattr(ds, key, value)
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.SeriesDate, ds.SeriesTime = study.get("StudyDate", ""), study.get("StudyTime", "")
    ds.Manufacturer = "SlicerImgSuite"
    ds.PositionReferenceIndicator = ""
    ds.Laterality = ""  # General Series, type 2C: empty (no paired organ is named)
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleType = "HU" if modality == "CT" else "US"
    if modality == "CT":
        ds.KVP = ""
    else:
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions, ds.MRAcquisitionType = "SE", "NONE", "", "3D"
        ds.EchoTime, ds.RepetitionTime, ds.EchoTrainLength = "", "", ""
    ds.AcquisitionNumber = 1
    return ds


def copied_study_value(key: str, value):
    """A patient/study value as an object written on a source's grid copies it: StudyID and AccessionNumber (SH) cut
    to 16 characters, as some sources overflow them (17 is a dciodvfy error in the RTSTRUCT, RTDOSE, CT or REG)."""
    return str(value)[:16] if key in ("StudyID", "AccessionNumber") else value


def study_from_file(path: str | os.PathLike) -> dict:
    """Patient, study and Frame of Reference attributes of one DICOM file (a CT slice, an RTDOSE ...)."""
    import warnings

    try:
        first = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:
        raise ImgSuiteError(f"cannot read DICOM header ({type(exc).__name__}: {exc})", path) from None
    study = {}
    with warnings.catch_warnings():  # a source's own VR overflows are its business
        warnings.simplefilter("ignore")
        for key in STUDY_KEYS:
            value = first.get(key)
            if value is not None:
                value = copied_study_value(key, value)
            if value is not None and (value != "" or not key.endswith("UID")):
                study[key] = value
    return study


def study_from_series(folder: str | os.PathLike, series_uid: str | None = None, modality: str | None = None) -> dict:
    """The study of the image series in ``folder`` (what an object placed on its grid belongs to)."""
    import warnings

    from .dicom_series import find_series

    with warnings.catch_warnings():  # a series found in a subfolder: the reader of its pixels names it
        warnings.simplefilter("ignore")
        info = find_series(folder, series_uid, modality)
    # what the CT lacks stays empty (type 2): today's StudyDate, StudyID 1 and PatientSex O were written for its study
    invented = {key: value for key, value in new_study().items() if key.endswith("UID")}
    return {key: "" for key in STUDY_KEYS} | invented | study_from_file(info.files[0])


# RT Dose Storage
RTDOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"


def write_rtdose(
    dose: sitk.Image,
    path: str | os.PathLike,
    study: dict,
    description: str = "SlicerImgSuite dose",
    *,
    summation_type: str = "PLAN",
    plan_uid: str | None = None,
    fraction_group: str | int | None = None,
    bits: int = 16,
    series_number: int = 3,
) -> pydicom.Dataset:
    """Write a dose image (Gy) as a DICOM RTDOSE: multi-frame unsigned integers with DoseGridScaling.

    DoseGridScaling is chosen so that the maximum dose uses the whole integer range (16 bits by
    default: 1/65535 of the maximum per step; ``bits=32`` for finer steps). The frames are the image's
    slices; GridFrameOffsetVector holds their offsets from the first frame along the slice normal (the
    usual "relative" convention). ``study`` (:func:`new_study`, :func:`study_from_series`) gives the
    patient, study and Frame of Reference: give the CT's. The dose references the plan ``plan_uid``
    (a new UID when none: the standard needs a plan reference for a PLAN dose) and, for a FRACTION
    dose, the plan's fraction group ``fraction_group`` (1 by default).

    Examples
    --------
    ::

        write_rtdose(dose, "RD.dcm", study_from_series("CT/"))
    """
    from .atomic import atomic_path

    if bits not in (16, 32):
        raise ImgSuiteError(f"an RTDOSE holds 16 or 32 bits per value, not {bits}", path)
    if dose.GetDimension() != 3 or dose.GetNumberOfComponentsPerPixel() != 1:
        raise ImgSuiteError("an RTDOSE needs a 3D scalar dose", path)
    array = sitk.GetArrayViewFromImage(dose).astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ImgSuiteError("the dose holds NaN or infinite values", path)
    if array.min(initial=0) < 0:
        raise ImgSuiteError(f"dose must not be negative (minimum {array.min():g} Gy)", path)
    top = float(2**bits - 1)
    scaling = max(float(array.max(initial=0)), 1e-9) / top
    stored = np.clip(np.rint(array / scaling), 0, top).astype(np.uint16 if bits == 16 else np.uint32)
    ds = _rtdose_dataset(study, description, series_number)
    _rtdose_geometry(ds, dose, stored, bits)
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation_type or "PLAN"
    ds.DoseGridScaling = f"{scaling:.10g}"
    plan = pydicom.Dataset()
    plan.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"  # RT Plan Storage
    plan.ReferencedSOPInstanceUID = plan_uid or generate_uid()
    if ds.DoseSummationType == "FRACTION":
        group = pydicom.Dataset()
        group.ReferencedFractionGroupNumber = str(fraction_group or 1)
        plan.ReferencedFractionGroupSequence = [group]
    ds.ReferencedRTPlanSequence = [plan]
    ds.PixelData = stored.tobytes()
    _declare_charset(ds)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return ds


def _rtdose_dataset(study: dict, description: str, series_number: int) -> pydicom.Dataset:
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTDOSE_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = RTDOSE_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "RTDOSE"
    for key, value in study.items():
        setattr(ds, key, value)
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.Manufacturer = "SlicerImgSuite"
    ds.OperatorsName = ""
    ds.InstanceNumber = 1
    ds.PositionReferenceIndicator = ""
    return ds


def _rtdose_geometry(ds: pydicom.Dataset, dose: sitk.Image, stored: np.ndarray, bits: int) -> None:
    direction = np.array(dose.GetDirection()).reshape(3, 3)
    ds.ImagePositionPatient = [f"{v:.6f}" for v in dose.GetOrigin()]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in np.concatenate([direction[:, 0], direction[:, 1]])]
    ds.PixelSpacing = [f"{dose.GetSpacing()[1]:.6f}", f"{dose.GetSpacing()[0]:.6f}"]
    ds.SliceThickness = ""
    ds.NumberOfFrames = stored.shape[0]
    ds.FrameIncrementPointer = pydicom.tag.Tag(0x3004, 0x000C)
    ds.GridFrameOffsetVector = [f"{k * dose.GetSpacing()[2]:.6f}" for k in range(stored.shape[0])]
    ds.Rows, ds.Columns = stored.shape[1], stored.shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0


# What --metadata may not set: the writer derives these from the image (geometry, pixels) or gives them their own
# option (--modality, --patient-pos, --series-number ...); a value there would make the series disagree with itself.
_WRITER_KEYWORDS = {
    "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "Modality", "ImagePositionPatient",
    "ImageOrientationPatient", "SliceLocation", "SliceThickness", "InstanceNumber", "PatientPosition",
    "SeriesNumber", "SpecificCharacterSet",
}  # fmt: skip
_WRITER_GROUPS = (0x0002, 0x0028, 0x7FE0)


def metadata_attributes(items, option: str = "--metadata", writer: bool = False) -> dict:
    """``KEY=VALUE`` texts as {keyword: value}: KEY is plastimatch's ``XXXX,YYYY`` tag or a DICOM keyword.

    The value is checked against the attribute's VR (a date must be YYYYMMDD, a LO at most 64
    characters ...). Pixel, geometry and identity attributes the writer sets are refused (unless ``writer``:
    the check of an option of the writer's own, such as ``--series-uid``).

    Examples
    --------
    >>> metadata_attributes(["0008,0080=General Hospital", "PatientBirthDate=19700101"])
    {'InstitutionName': 'General Hospital', 'PatientBirthDate': '19700101'}
    """
    from pydicom import config
    from pydicom.datadict import dictionary_VM, dictionary_VR, keyword_for_tag, tag_for_keyword
    from pydicom.valuerep import validate_value

    attributes = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        key = key.strip().strip("()").replace(" ", "")
        if not sep or not key:
            raise ImgSuiteError(f"{option} expects KEY=VALUE (KEY as XXXX,YYYY or a DICOM keyword), got {item!r}")
        try:
            tag = int(key.replace(",", ""), 16) if "," in key else tag_for_keyword(key)
            keyword = keyword_for_tag(tag) if tag is not None else ""
            vr = dictionary_VR(tag) if keyword else ""
        except (ValueError, KeyError):
            keyword = vr = ""
        if not keyword:
            raise ImgSuiteError(f"{option}: {key!r} is not a public DICOM tag or keyword")
        name = keyword if key == keyword else f"{keyword} ({key})"
        if vr == "SQ" or not writer and (keyword in _WRITER_KEYWORDS or tag >> 16 in _WRITER_GROUPS):
            raise ImgSuiteError(f"{option}: {name} is set by the series writer, not by {option}")
        if "\\" in value and dictionary_VM(tag) == "1":
            raise ImgSuiteError(f"{option}: {name} holds one value; a backslash separates values")
        if any(ord(ch) < 32 and not (vr in ("LT", "ST", "UT") and ch in "\n\r\t\f") for ch in value):
            raise ImgSuiteError(f"{option}: {name} holds a control character")
        try:
            validate_value(vr, value, config.RAISE)
        except ValueError as exc:
            raise ImgSuiteError(f"{option}: {name}: {str(exc).split('. Please see')[0]}") from None
        if keyword in attributes:
            raise ImgSuiteError(f"{option}: {keyword} given twice")
        attributes[keyword] = value
    return attributes


def series_study(
    source=None,
    *,
    series_uid: str | None = None,
    regenerate_uids: bool = False,
    attributes: dict | None = None,
) -> tuple[dict, dict]:
    """The study attributes and the per-slice attributes of an image written by ``convert --output-dicom``.

    ``source`` (a DICOM series folder: ``--referenced-ct``, or the input series) gives the patient,
    the study and the Frame of Reference (plastimatch's --referenced-ct; ``series_uid`` picks one of
    several series there); ``regenerate_uids`` gives
    the series a new StudyInstanceUID and FrameOfReferenceUID instead. Without a source: a new study
    of patient ANONYMOUS. ``attributes`` ({keyword: value}) are set last: study-level ones on the
    study, the others on each slice.

    Examples
    --------
    >>> study, slices = series_study(attributes={"PatientName": "Doe^Jane", "InstitutionName": "GH"})
    >>> study["PatientName"], slices
    ('Doe^Jane', {'InstitutionName': 'GH'})
    """
    if source is not None:
        study = study_from_series(source, series_uid)
    else:
        study = new_study("ANONYMOUS", "PL" + generate_uid(prefix=None)[-15:].replace(".", "0"))
    if regenerate_uids:
        study["StudyInstanceUID"], study["FrameOfReferenceUID"] = generate_uid(), generate_uid()
    study_level = {*STUDY_KEYS, "PatientSex", "PatientBirthDate"}
    slices = {}
    for keyword, value in (attributes or {}).items():
        (study if keyword in study_level else slices)[keyword] = value
    return study, slices
