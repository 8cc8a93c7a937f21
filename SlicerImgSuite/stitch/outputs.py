"""Writing a stitched radiograph: an image Slicer loads with its spacing, a 16-bit PNG, or a DICOM DX."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError


def write_stitched(result, path: Path, name: str) -> None:
    """Write ``result`` to ``path``, in the format ``name``'s suffix names."""
    lower = name.lower()
    if lower.endswith(".png"):
        _write_png(result, path)
    elif lower.endswith(".dcm"):
        _write_dx(result, path)
    else:
        import SimpleITK as sitk

        sitk.WriteImage(as_image(result), str(path), True)


def as_image(result):
    """The stitched radiograph as a 2-D ``SimpleITK.Image`` whose spacing is the pixel size at the plane
    (what Slicer's ruler measures on)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(result.image.astype(np.float32))
    image.SetSpacing(result.plane.spacing)
    return image


def _as_uint16(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    lo, hi = float(image.min()), float(image.max())
    scale = (hi - lo) / 65535.0 if hi > lo else 1.0
    return np.round((image - lo) / scale).astype(np.uint16), scale, lo


def _write_png(result, path: Path) -> None:
    from PIL import Image

    values, _, _ = _as_uint16(result.image)
    dpi = tuple(25.4 / s for s in result.plane.spacing)  # the pixel pitch at the plane, as pHYs
    Image.fromarray(values).save(path, format="PNG", dpi=dpi)


def _write_dx(result, path: Path) -> None:
    """A DICOM Digital X-Ray image (for presentation) with PixelSpacing at the measurement plane."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    values, _, _ = _as_uint16(result.image)
    now = datetime.datetime.now()
    sop_class = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Stitched^Radiograph", "STITCH", "", ""
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = "", "", "1"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "DX", 1, 1
    ds.Manufacturer = "SlicerImgSuite"
    ds.PatientOrientation = ["L", "F"]  # columns towards patient left, rows towards the feet (stitch.shots)
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.DerivationDescription = _derivation(result)
    ds.BurnedInAnnotation, ds.LossyImageCompression = "NO", "00"
    ds.ImageLaterality = "U"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, result.photometric
    ds.Rows, ds.Columns = values.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelIntensityRelationship = "LIN"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"  # DX for presentation: fixed
    ds.AnatomicRegionSequence = pydicom.Sequence()
    ds.AcquisitionContextSequence = pydicom.Sequence()
    ds.WindowCenter, ds.WindowWidth = 32768, 65536
    ds.PresentationLUTShape = "IDENTITY"
    ds.DetectorType = "DIRECT"
    row_pitch, col_pitch = result.plane.spacing[1], result.plane.spacing[0]
    ds.PixelSpacing = [f"{row_pitch:.6g}", f"{col_pitch:.6g}"]
    ds.ImagerPixelSpacing = [f"{row_pitch * _mag(result):.6g}", f"{col_pitch * _mag(result):.6g}"]
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    ds.PixelSpacingCalibrationDescription = _derivation(result)[:64]
    ds.PixelData = values.tobytes()
    try:
        ds.save_as(path, enforce_file_format=True)
    except (TypeError, ValueError) as exc:
        raise ImgSuiteError(f"cannot write the DICOM radiograph ({exc})", path) from None


def _mag(result) -> float:
    return result.plane.magnification if result.geometry_known else 1.0


def _derivation(result) -> str:
    n = len(result.seams) + 1
    methods = sorted({s["method"] for s in result.seams}) or ["geometry"]
    if not result.geometry_known:
        return f"Stitched from {n} shots ({', '.join(methods)}); spacing at the detector, magnification not corrected"
    return (
        f"Stitched from {n} shots ({', '.join(methods)}); spacing at the plane {result.plane.distance:.1f} mm "
        f"from the source (magnification {result.plane.magnification:.4f})"
    )
