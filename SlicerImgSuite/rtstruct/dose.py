"""Dose images: the one RTDOSE reader (Gy, float32), dose inputs checked, dose conversion.

Every path that takes a dose (``convert``, ``warp``, ``dvh``, ``gamma``, the Slicer DVH) reads it here:
an RTDOSE file is decoded with DoseGridScaling, DoseUnits (cGy becomes Gy) and GridFrameOffsetVector;
any other image is a dose only when it says so (``DoseUnits`` in its header, as our dose images write
it) or when the caller declares its units. A CT is never taken for a dose.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError

# pydicom is imported where it is used: the CLI's parser reads DOSE_UNITS from here at start-up

# Gy per unit of each dose unit a user may declare (plastimatch's --dose-units names)
DOSE_UNITS = {"gy": 1.0, "cgy": 0.01}
# metadata keys a dose image carries (NRRD and MHA keep them as KEY:=value)
DOSE_UNITS_KEY, UNITS_IN_FILE_KEY = "DoseUnits", "DoseUnitsInFile"
DOSE_TYPE_KEY, SUMMATION_KEY, MODALITY_KEY = "DoseType", "DoseSummationType", "Modality"
FRAME_KEY, PLAN_KEY, FRACTION_KEY = "FrameOfReferenceUID", "ReferencedRTPlanUID", "ReferencedFractionGroupNumber"


def read_rtdose(path: str | os.PathLike, units: str | None = None) -> sitk.Image:
    """Read an RTDOSE file into a float32 image in Gy on its own grid (LPS).

    Frames are placed by GridFrameOffsetVector, taken from its first value (the first frame, at
    ImagePositionPatient): relative offsets start at 0, absolute ones (as some systems write) at the
    first frame's position; the offsets must be evenly spaced. Values are pixel x DoseGridScaling, converted to Gy when DoseUnits is CGY.
    A RELATIVE dose has no Gy value and is refused; a file without DoseUnits is refused unless
    ``units`` ("gy" or "cgy") says what it holds. The image's metadata keep ``DoseUnits`` (GY, the
    values' units), ``DoseUnitsInFile``, ``DoseType``, ``DoseSummationType``, ``Modality`` (RTDOSE),
    ``FrameOfReferenceUID`` and the referenced plan's UID.

    Examples
    --------
    ::

        dose = read_rtdose("RD.dcm")
        dose.GetPixelIDTypeAsString(), dose.GetMetaData("DoseUnits")
        # -> ('32-bit float', 'GY')
    """
    import pydicom

    from ..io.dicom_series import validate_slice

    path = Path(path)
    if not path.is_file():
        raise ImgSuiteError("no such file", path)
    validate_slice(path, require_geometry=False)  # geometry tags, pixel data length: one check for every DICOM file
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise ImgSuiteError(f"cannot read DICOM file ({type(exc).__name__}: {exc})", path) from None
    if str(ds.get("Modality", "")) != "RTDOSE":
        raise ImgSuiteError(f"not an RTDOSE (Modality {ds.get('Modality', 'missing')})", path)
    for key in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "PixelData"):
        if key not in ds:
            raise ImgSuiteError(f"RTDOSE lacks {key}", path)
    gy_per_unit, units_in_file = _gy_per_unit(ds, path, units)
    scaling = _number(ds, "DoseGridScaling", path)
    if not np.isfinite(scaling) or scaling <= 0:
        raise ImgSuiteError(f"DoseGridScaling (3004,000E) is {scaling:g}; it must be a positive number", path)
    try:
        pixels = ds.pixel_array.astype(np.float64)
    except Exception as exc:
        raise ImgSuiteError(f"cannot decode the dose pixels ({exc})", path) from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if pixels.size != frames * int(ds.Rows) * int(ds.Columns):
        raise ImgSuiteError(
            f"PixelData (7FE0,0010) holds {pixels.size} values; NumberOfFrames (0028,0008) x Rows x Columns = "
            f"{frames} x {int(ds.Rows)} x {int(ds.Columns)} does not match it",
            path,
        )
    pixels = pixels.reshape(frames, int(ds.Rows), int(ds.Columns))
    pixels = _checked_dose(pixels * (scaling * gy_per_unit), ds, path)
    image = _placed(pixels, ds, frames, path)
    metadata = {
        MODALITY_KEY: "RTDOSE",
        DOSE_UNITS_KEY: "GY",
        UNITS_IN_FILE_KEY: units_in_file,
        DOSE_TYPE_KEY: str(ds.get("DoseType", "")),
        SUMMATION_KEY: str(ds.get("DoseSummationType", "")),
        FRAME_KEY: str(ds.get("FrameOfReferenceUID", "")),
        PLAN_KEY: _plan_uid(ds),
        FRACTION_KEY: _fraction_group(ds),
    }
    for key, value in metadata.items():
        image.SetMetaData(key, value)
    return image


def _checked_dose(gy: np.ndarray, ds, path) -> np.ndarray:
    """The scaled dose as float32 Gy; values no dose can take (infinite, negative outside an ERROR dose) refused."""
    with np.errstate(over="ignore"):
        values = gy.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise ImgSuiteError(
            f"DoseGridScaling (3004,000E) = {ds.get('DoseGridScaling')} times the stored values exceeds "
            "the float32 range: not a dose",
            path,
        )
    dose_type = str(ds.get("DoseType", "") or "").strip().upper()
    if values.size and values.min() < 0 and dose_type != "ERROR":
        raise ImgSuiteError(
            f"negative dose ({values.min():g} Gy) with DoseType (3004,0004) {dose_type or 'missing'}; "
            f"PixelRepresentation (0028,0103) is {ds.get('PixelRepresentation')} (signed values are allowed "
            "only for DoseType ERROR)",
            path,
        )
    return values


def _gy_per_unit(ds, path, units: str | None) -> tuple[float, str]:
    """Gy per unit of the file's DoseUnits (3004,0002), and the units as the file names them."""
    found = str(ds.get("DoseUnits", "") or "").strip().upper()
    if found == "RELATIVE":
        raise ImgSuiteError("DoseUnits (3004,0002) is RELATIVE: a relative dose has no value in Gy", path)
    if found.lower() in DOSE_UNITS:
        _agree(found, units, "DoseUnits (3004,0002)", path)
        return DOSE_UNITS[found.lower()], found
    if units is None:
        what = f"is {found!r}" if found else "is missing"
        raise ImgSuiteError(f"DoseUnits (3004,0002) {what}; declare the file's units with --dose-units gy|cgy", path)
    return dose_units_factor(units), units.upper()


def _agree(found: str, units: str | None, where: str, source) -> None:
    """Refuse ``--dose-units`` that contradicts the units a dose states itself (the option is for doses that do not):
    taken as given, a Gy dose declared cGy came out 100 times too low."""
    if units is not None and units.lower() != found.strip().lower():
        raise ImgSuiteError(
            f"{where} is {found.strip().upper()}, but --dose-units says {units}: the dose states its own units "
            "(leave --dose-units out)",
            source,
        )


def dose_units_factor(units: str) -> float:
    """Gy per unit of a declared dose unit (``gy`` or ``cgy``, any case)."""
    try:
        return DOSE_UNITS[units.lower()]
    except KeyError:
        raise ImgSuiteError(f"unknown dose units {units!r}; use one of {', '.join(DOSE_UNITS)}") from None


def _number(ds, keyword: str, path) -> float:
    if keyword not in ds or ds.get(keyword) in (None, ""):
        raise ImgSuiteError(f"RTDOSE lacks {keyword}", path)
    try:
        return float(ds.get(keyword))
    except (TypeError, ValueError):
        raise ImgSuiteError(f"{keyword} is not a number ({ds.get(keyword)!r})", path) from None


def _plan_uid(ds) -> str:
    plans = ds.get("ReferencedRTPlanSequence") or []
    return str(plans[0].get("ReferencedSOPInstanceUID", "")) if len(plans) else ""


def _fraction_group(ds) -> str:
    plans = ds.get("ReferencedRTPlanSequence") or []
    groups = (plans[0].get("ReferencedFractionGroupSequence") or []) if len(plans) else []
    return str(groups[0].get("ReferencedFractionGroupNumber", "")) if len(groups) else ""


def _frame_offsets(ds, frames: int, path) -> np.ndarray:
    """GridFrameOffsetVector (3004,000C) as finite numbers, one per frame (0 for a single frame without it)."""
    from pydicom.multival import MultiValue

    raw = ds.get("GridFrameOffsetVector", [0.0])
    values = list(raw) if isinstance(raw, list | tuple | MultiValue) else [raw]
    try:
        offsets = np.array([float(v) for v in values][:frames], float)
    except (TypeError, ValueError):
        raise ImgSuiteError(f"GridFrameOffsetVector (3004,000C) is not a list of numbers: {raw!r}", path) from None
    if not np.all(np.isfinite(offsets)):
        raise ImgSuiteError("GridFrameOffsetVector (3004,000C) holds NaN or infinite values", path)
    if frames > 1 and len(offsets) == frames and np.any(np.diff(offsets) == 0):
        raise ImgSuiteError("GridFrameOffsetVector (3004,000C) puts two frames at the same position", path)
    return offsets


def _placed(pixels: np.ndarray, ds, frames: int, path) -> sitk.Image:
    """The frames as a volume on the dose grid: GridFrameOffsetVector along the slice normal."""
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    offsets = _frame_offsets(ds, frames, path)
    if frames > 1:
        if len(offsets) != frames:
            raise ImgSuiteError(f"GridFrameOffsetVector has {len(offsets)} values for {frames} frames", path)
        # the first frame lies at ImagePositionPatient whatever the vector's type: relative offsets start at 0,
        # absolute ones (type 2) at the first frame's position; a first value that matches neither (a rounding
        # off the position) once shifted a descending grid by that value
        offsets = offsets - offsets[0]
        steps = np.diff(offsets)
        if np.any(np.abs(steps - steps[0]) > 1e-3 * max(abs(steps[0]), 1)):
            raise ImgSuiteError("RTDOSE frames are unevenly spaced (GridFrameOffsetVector)", path)
        dz = float(steps[0])
    else:
        dz = float(ds.get("SliceThickness", 1.0) or 1.0)
    if dz < 0:  # frames run against the normal: flip them so spacing is positive
        pixels, dz = pixels[::-1], -dz
        ipp = ipp + normal * offsets[-1]
    image = sitk.GetImageFromArray(np.ascontiguousarray(pixels))
    ps = [float(v) for v in ds.PixelSpacing]
    image.SetSpacing([ps[1], ps[0], dz])
    image.SetOrigin(ipp.tolist())
    image.SetDirection(np.column_stack([row, col, normal]).ravel().tolist())
    return image


def is_rtdose_file(path: str | os.PathLike) -> bool:
    """True for a DICOM file whose Modality is RTDOSE (a header read, no pixels)."""
    import pydicom

    path = Path(path)
    if not path.is_file():
        return False
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
    except Exception:
        return False
    return str(header.get("Modality", "")) == "RTDOSE"


def read_dose(path: str | os.PathLike, units: str | None = None, *, scale: float = 1.0, **read_options) -> sitk.Image:
    """Read a dose input: an RTDOSE file, or an image that is a dose, as float32 Gy.

    Parameters
    ----------
    path : path
        An RTDOSE file; or an image file / DICOM folder that carries ``DoseUnits`` in its header
        (what our dose outputs write) or whose units the caller declares.
    units : {"gy", "cgy"}, optional
        The units of an image that does not say (plastimatch's ``--dose-units``). Without it such an
        image is refused, with its modality named: a CT is not a dose.
    scale : float
        Multiply the dose by this (plastimatch's ``--dose-scale``).
    read_options :
        Passed to :func:`SlicerImgSuite.io.read_image` for folders (series_uid, modality ...).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "ct.nrrd"
    >>> sitk.WriteImage(sitk.Image(2, 2, 2, sitk.sitkInt16), str(f))
    >>> read_dose(f)
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: ...ct.nrrd: not a dose (no modality, no dose units); give an RTDOSE, or declare the image's units with --dose-units gy|cgy
    >>> read_dose(f, "cgy").GetMetaData("DoseUnits")
    'GY'
    """
    from ..io.images import read_image

    if is_rtdose_file(path):
        image = read_rtdose(path, units)
    else:
        image = read_image(path, **read_options)
        image = as_dose(image, units, path)
    if scale != 1.0:
        image = scaled_dose(image, scale)
    return image


def check_dose_values(image: sitk.Image, source=None) -> None:
    """Refuse a grid whose DoseType (3004,0004) is ERROR: it holds the dose's uncertainty, not a dose to analyse."""
    if image.HasMetaDataKey(DOSE_TYPE_KEY) and image.GetMetaData(DOSE_TYPE_KEY).strip().upper() == "ERROR":
        raise ImgSuiteError(
            "DoseType (3004,0004) is ERROR: the grid holds the dose's uncertainty, not a dose (no DVH or gamma of it)",
            source,
        )


def as_dose(image: sitk.Image, units: str | None, source, modality: str | None = None) -> sitk.Image:
    """``image`` as a float32 dose in Gy, or an error naming ``source`` and its modality.

    A dose image (``DoseUnits`` in its metadata) is taken as it is; anything else needs ``units``.
    """
    declared = image.GetMetaData(DOSE_UNITS_KEY).strip().lower() if image.HasMetaDataKey(DOSE_UNITS_KEY) else ""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImgSuiteError(
            f"a dose has one value per voxel; this image has {image.GetNumberOfComponentsPerPixel()}", source
        )
    if image.GetDimension() != 3:  # a film or portal image: DVH, gamma and warping here work on dose grids
        raise ImgSuiteError(f"a dose is a 3D grid; this image is {image.GetDimension()}D (size {image.GetSize()})", source)
    if units is None and declared not in DOSE_UNITS:
        raise ImgSuiteError(
            f"not a dose ({_kind(image, source, modality)}); give an RTDOSE, or declare the image's units "
            "with --dose-units gy|cgy",
            source,
        )
    if declared in DOSE_UNITS:
        _agree(declared, units, "the image's DoseUnits", source)
    factor = dose_units_factor(units if units is not None else declared)
    out = with_metadata(sitk.Cast(sitk.Cast(image, sitk.sitkFloat32) * factor, sitk.sitkFloat32), image)
    out.SetMetaData(DOSE_UNITS_KEY, "GY")
    unknown = int(np.count_nonzero(~np.isfinite(sitk.GetArrayViewFromImage(out))))
    if unknown:  # as for an RTDOSE: NaN went into bin 0 of a DVH (stats NaN) and failed gamma without a word
        raise ImgSuiteError(
            f"{unknown} of {out.GetNumberOfPixels()} dose values are NaN or infinite: not a dose (set them to 0 "
            "where no dose was measured or computed)",
            source,
        )
    if units is not None:
        out.SetMetaData(UNITS_IN_FILE_KEY, units.upper())
        if declared not in DOSE_UNITS:  # units only the caller states: a factor of 100 is the likely slip
            _warn_if_unit_slip(float(np.max(sitk.GetArrayViewFromImage(out))), units.lower(), source)
    return out


def _warn_if_unit_slip(max_gy: float, units: str, source) -> None:
    """Warn when a dose whose units the caller declared peaks where the other unit fits far better: above 1000 Gy
    as Gy (beyond a plan outside a brachytherapy source), or below 1 Gy as cGy (a plan in Gy read 100 times low)."""
    if units == "gy" and max_gy > 1000:
        hint = "if the image holds cGy, declare --dose-units cgy"
    elif units == "cgy" and 0 < max_gy < 1:
        hint = "if the image holds Gy, declare --dose-units gy"
    else:
        return
    warnings.warn(f"{source}: the dose peaks at {max_gy:g} Gy with --dose-units {units}; {hint}", stacklevel=4)


def _kind(image: sitk.Image, source, modality: str | None) -> str:
    if modality is None and image.HasMetaDataKey("0008|0060"):
        modality = image.GetMetaData("0008|0060").strip()
    if modality is None and source is not None and Path(source).is_file():
        from ..io.dicom_series import is_dicom_file

        if is_dicom_file(Path(source)):
            import pydicom

            try:
                modality = str(pydicom.dcmread(source, stop_before_pixels=True, specific_tags=["Modality"]).Modality)
            except Exception:
                modality = "unknown"
    return f"modality {modality or 'unknown'}" if modality is not None else "no modality, no dose units"


def scaled_dose(image: sitk.Image, scale: float) -> sitk.Image:
    """The dose times ``scale`` (plastimatch's ``--dose-scale``), metadata kept."""
    if not np.isfinite(scale) or scale < 0:
        raise ImgSuiteError(f"--dose-scale must be a number >= 0, got {scale:g}")
    return with_metadata(sitk.Cast(image * float(scale), sitk.sitkFloat32), image)


def with_metadata(out: sitk.Image, source: sitk.Image) -> sitk.Image:
    """``out`` with ``source``'s metadata (dose units, RTDOSE attributes): SimpleITK filters drop them."""
    for key in source.GetMetaDataKeys():
        out.SetMetaData(key, source.GetMetaData(key))
    return out


def dose_dicom_study(dose: sitk.Image, source, referenced_ct=None) -> tuple[dict, str | None]:
    """The study an RTDOSE written from ``dose`` belongs to, and the plan it references.

    The CT in ``referenced_ct`` when given (its Frame of Reference must be the dose's, when the dose
    came from an RTDOSE); otherwise the source RTDOSE's own patient, study and Frame of Reference. A
    dose image with neither is refused: an RTDOSE outside its CT's Frame of Reference cannot be used.
    """
    from ..io.dicom_write import study_from_file, study_from_series

    frame = dose.GetMetaData(FRAME_KEY) if dose.HasMetaDataKey(FRAME_KEY) else ""
    plan = (dose.GetMetaData(PLAN_KEY) if dose.HasMetaDataKey(PLAN_KEY) else "") or None
    if referenced_ct:
        if not Path(referenced_ct).is_dir():
            raise ImgSuiteError("--referenced-ct must be the CT's DICOM folder", referenced_ct)
        study = study_from_series(referenced_ct, modality=None)
        if frame and study.get("FrameOfReferenceUID") and str(study["FrameOfReferenceUID"]) != frame:
            raise ImgSuiteError(
                f"Frame of Reference mismatch: the dose is in {frame}, the CT in {referenced_ct} in "
                f"{study['FrameOfReferenceUID']}",
                source,
            )
        return study, plan
    if source is not None and is_rtdose_file(source):
        return study_from_file(source), plan
    raise ImgSuiteError(
        "an RTDOSE needs the CT it belongs to: give --referenced-ct CT_FOLDER (its patient, study and "
        "Frame of Reference)",
        source,
    )


def rtdose_path(path: str | os.PathLike) -> tuple[Path, bool]:
    """Where a DICOM dose output goes: a ``.dcm`` file name, or a folder that gets ``RD.dcm``."""
    path = Path(path)
    if path.suffix.lower() == ".dcm" and not path.is_dir():
        return path, False
    return path, True


def dose_dicom_output(dose: sitk.Image, path, study: dict, plan_uid: str | None = None, description: str = ""):
    """A ``write_together`` entry writing ``dose`` (Gy) as an RTDOSE at ``path`` (a ``.dcm`` file, or a folder
    that gets ``RD.dcm``), keeping the dose's DoseSummationType."""
    from ..io.dicom_write import write_rtdose

    target, folder = rtdose_path(path)
    meta = {k: dose.GetMetaData(k) for k in (SUMMATION_KEY, FRACTION_KEY) if dose.HasMetaDataKey(k)}
    options = dict(
        summation_type=meta.get(SUMMATION_KEY) or "PLAN", plan_uid=plan_uid, description=description or "imgsuite dose",
        fraction_group=meta.get(FRACTION_KEY) or None,
    )  # fmt: skip

    def write(tmp):
        write_rtdose(dose, Path(tmp) / "RD.dcm" if folder else tmp, study, **options)

    return target, write, folder


def convert_dose(
    source: str | os.PathLike,
    *,
    output_img: str | os.PathLike | None = None,
    output_dicom: str | os.PathLike | None = None,
    referenced_ct: str | os.PathLike | None = None,
    units: str | None = None,
    scale: float = 1.0,
    grid=None,
    output_type: str | None = None,
) -> sitk.Image:
    """plastimatch's ``convert --input-dose-img``: a dose read in Gy, written as an image and/or an RTDOSE.

    Parameters
    ----------
    source : path
        RTDOSE file, or a dose image (declare its ``units`` when it does not carry them).
    output_img : path, optional
        float32 image in Gy (NRRD/MHA keep ``DoseUnits`` and the RTDOSE's attributes in the header).
    output_dicom : path, optional
        RTDOSE file (``.dcm``) or folder (gets ``RD.dcm``), in the study of ``referenced_ct`` or of the
        source RTDOSE.
    units, scale :
        See :func:`read_dose`.
    grid : SimpleITK.Image or callable, optional
        Resample the dose (linear, 0 outside) onto this grid first; a callable gets the dose and returns
        the grid (or None).

    Examples
    --------
    ::

        convert_dose("RD.dcm", output_img="dose.nrrd", output_dicom="out/", referenced_ct="CT/")
    """
    from ..geometry import resample_like
    from ..io.atomic import write_together
    from ..io.images import write_image

    if not output_img and not output_dicom:
        raise ImgSuiteError("nothing to write: give --output-dose-img or --output-dose-dicom", source)
    dose = read_dose(source, units, scale=scale)
    if callable(grid):
        grid = grid(dose)
    if grid is not None:
        dose = with_metadata(resample_like(dose, grid, "linear", 0.0), dose)
    outputs = [(output_img, lambda tmp: write_image(dose, tmp, output_type), False)]
    if output_dicom:
        study, plan = dose_dicom_study(dose, source, referenced_ct)
        outputs.append(dose_dicom_output(dose, output_dicom, study, plan))
    write_together(outputs)
    return dose
