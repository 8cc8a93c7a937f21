"""Labelled radiograph collections and reading one radiograph into ``[0, 1]`` intensities.

A collection is either a folder per class (``DATA/<class>/*.png|jpg|dcm``) or a CSV file: ``path,label``
with optional ``patient_id`` and ``study_id`` columns, or NIH ChestX-ray14's ``Data_Entry`` table (``Image Index``,
``Finding Labels``, ``Patient ID``). Reading maps every format onto ``[0, 1]`` exactly once: 8-bit and
16-bit PNG/JPEG by their bit depth, DICOM through its modality LUT and VOI LUT (or window), MONOCHROME1
inverted so that bone is bright, pixel spacing kept.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm")
NEGATIVE_NAMES = ("no finding", "normal", "negative", "healthy", "no", "0", "absent")
NIH_COLUMNS = ("Image Index", "Finding Labels", "Patient ID")
NIH_NEGATIVE = "No Finding"
# Modality (0008,0060) of projection radiographs: DX/CR/RG (and DR, written by some devices), fluoroscopy, angiography,
# mammography, dental, and OT (secondary captures of films). A CT or MR slice is no radiograph: refused, not classified.
RADIOGRAPH_MODALITIES = ("DX", "CR", "RG", "DR", "RF", "XA", "MG", "PX", "IO", "OT")
# ViewPosition of lateral and oblique projections: a classifier of frontal chest films has never seen one
SIDE_VIEWS = ("LL", "RL", "LLO", "RLO", "LATERAL")


@dataclass
class Radiograph:
    """One radiograph: ``pixels`` float32 (rows, cols) in ``[0, 1]`` (bright = attenuating), spacing in mm.

    ``bit_depth`` is the nominal depth of the source (8, 16, or DICOM's bits stored); ``spacing`` is
    (row, column) mm or ``None`` when the file has none.
    """

    pixels: np.ndarray
    spacing: tuple[float, float] | None = None
    bit_depth: int = 8
    source: str = ""
    view: str = ""  # DICOM ViewPosition (0018,5101), upper case; "" when the file has none


@dataclass
class Dataset:
    """Labelled images: ``paths``, ``labels`` (0 = ``classes[0]``, 1 = ``classes[1]``), ``patients``, and
    ``studies`` (a CSV's optional ``study_id``: images taken together, kept on one side of a validation split)."""

    paths: list[str]
    labels: np.ndarray
    patients: list[str]
    classes: list[str]
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    studies: list[str] | None = None

    def __len__(self) -> int:
        return len(self.paths)


def read_radiograph(path: str | os.PathLike) -> Radiograph:
    """Read a PNG/JPEG (8 or 16 bit) or DICOM radiograph into ``[0, 1]``.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"
    >>> Image.fromarray(np.array([[0, 65535]], np.uint16)).save(p)
    >>> r = read_radiograph(p)
    >>> r.pixels.tolist(), r.bit_depth
    ([[0.0, 1.0]], 16)
    """
    path = Path(path)
    if not path.is_file():
        raise ImgSuiteError("no such file", path)
    if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        return _read_bitmap(path)
    return _read_dicom(path)


def _read_bitmap(path: Path) -> Radiograph:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                pixels, depth = np.asarray(im, dtype=np.float64) / 65535.0, 16
            elif mode in ("L", "P", "RGB", "RGBA", "LA", "1"):
                pixels, depth = np.asarray(im.convert("L"), dtype=np.float64) / 255.0, 8
            else:
                raise ImgSuiteError(f"unsupported image mode {mode!r} (need 8/16-bit grey or RGB)", path)
    except (UnidentifiedImageError, OSError) as exc:
        raise ImgSuiteError(f"not a readable image ({exc.__class__.__name__})", path) from None
    if pixels.ndim != 2:
        raise ImgSuiteError(f"expected a 2-D radiograph, got shape {pixels.shape}", path)
    return Radiograph(np.clip(pixels, 0.0, 1.0).astype(np.float32), None, depth, str(path))


def _read_dicom(path: Path) -> Radiograph:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        raw = ds.pixel_array
    except Exception as exc:  # pydicom raises many kinds on damaged files (not DICOM, unknown VR, short pixels ...)
        raise ImgSuiteError(f"not a readable DICOM image ({exc.__class__.__name__}: {exc})", path) from None
    modality = str(getattr(ds, "Modality", "") or "").upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        raise ImgSuiteError(f"Modality (0008,0060) {modality} is not a projection radiograph (read: "
                            f"{', '.join(RADIOGRAPH_MODALITIES)})", path)
    if raw.ndim != 2:
        raise ImgSuiteError(f"expected a single-frame greyscale radiograph, got pixel data of shape {raw.shape}", path)
    pixels = _dicom_unit_range(ds, raw, path)
    # Presentation LUT Shape INVERSE asks the display to invert: on MONOCHROME2 it shows bone dark unless undone here.
    # DX pairs INVERSE with MONOCHROME1 (PS3.3 C.8.11.7): both name the same single inversion, never two.
    inverse = str(getattr(ds, "PresentationLUTShape", "") or "").strip().upper() == "INVERSE"
    if str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper() == "MONOCHROME1" or inverse:
        pixels = 1.0 - pixels
    padding = _dicom_padding(ds, raw, path)
    if padding is not None:
        pixels = np.where(padding, 0.0, pixels)  # black like fit_to_square's border, not a white frame of 'anatomy'
    spacing = None
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _dicom_numbers(ds, keyword, path, positive=True)
        if values is not None:
            if len(values) != 2:
                raise ImgSuiteError(f"{keyword} holds {len(values)} values; 2 are needed (row, column mm)", path)
            spacing = (values[0], values[1])
            break
    return Radiograph(pixels.astype(np.float32), spacing, int(getattr(ds, "BitsStored", 16)), str(path),
                      str(ds.get("ViewPosition", "") or "").strip().upper())


def _dicom_padding(ds, raw: np.ndarray, path: Path) -> np.ndarray | None:
    """Where the stored values are PixelPaddingValue (up to PixelPaddingRangeLimit): no anatomy, or ``None``."""
    value = ds.get("PixelPaddingValue")
    if value is None or isinstance(value, (list, tuple)) or str(value) == "":
        return None
    limit = ds.get("PixelPaddingRangeLimit")
    try:
        lo, hi = sorted((int(value), int(value if limit in (None, "") else limit)))
    except (TypeError, ValueError):
        raise ImgSuiteError(f"PixelPaddingValue {value!r} / PixelPaddingRangeLimit {limit!r}: not integers", path) from None
    return (raw >= lo) & (raw <= hi)


def _dicom_numbers(ds, keyword: str, path: Path, *, positive: bool = False, nonzero: bool = False) -> list | None:
    """A DS tag's numbers (:func:`..io.dicom_series.tag_numbers`: finite, any count; empty = absent), > 0 or != 0
    where asked."""
    from ..io.dicom_series import tag_numbers

    values = tag_numbers(ds, path, keyword, None, required=False, empty_is_absent=True)
    if values is not None and (positive and min(values) <= 0 or nonzero and 0 in values):
        raise ImgSuiteError(f"{keyword} is {values}: it must be {'positive' if positive else 'non-zero'}", path)
    return values


def _dicom_unit_range(ds, raw: np.ndarray, path: Path) -> np.ndarray:
    """Modality LUT, then VOI LUT or window, onto ``[0, 1]``; without either, the stored bit range."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    bits = int(getattr(ds, "BitsStored", 16))
    signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
    slope = (_dicom_numbers(ds, "RescaleSlope", path, nonzero=True) or [1.0])[0]
    intercept = (_dicom_numbers(ds, "RescaleIntercept", path) or [0.0])[0]
    center, width = _dicom_numbers(ds, "WindowCenter", path), _dicom_numbers(ds, "WindowWidth", path)
    modality = apply_modality_lut(raw, ds)
    values = modality.astype(np.float64)
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        out_bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        # a VOI LUT is indexed by integers: float input would be truncated differently
        ints = modality if np.issubdtype(modality.dtype, np.integer) else np.rint(modality).astype(np.int64)
        return np.clip(apply_voi_lut(ints, ds).astype(np.float64) / (2.0**out_bits - 1), 0, 1)
    if center and width:
        center, width = center[0], width[0]
        if width < 1:
            raise ImgSuiteError(f"WindowWidth {width} is below 1", path)
        # DICOM PS3.3 C.11.2.1.2.1 linear function, output range [0, 1]
        return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    lo, hi = (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1) if signed else (0.0, 2.0**bits - 1)
    lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def order_classes(names, positive: str | None = None) -> list[str]:
    """Two class names as ``[negative, positive]``: ``positive`` if given, else a 'normal'-like name is negative.

    Examples
    --------
    >>> order_classes(["normal", "covid"])
    ['normal', 'covid']
    >>> order_classes(["a", "b"], positive="a")
    ['b', 'a']
    """
    names = sorted(set(names))
    if len(names) != 2:
        raise ImgSuiteError(f"the classifier is binary: need exactly 2 classes, found {len(names)}: {names}")
    if names[0].casefold() == names[1].casefold():  # 'Effusion' and 'effusion' are one label typed twice, not 2 classes
        raise ImgSuiteError(f"the 2 classes {names} differ only in case: one label spelt two ways? Make the labels "
                            "agree")
    if positive is not None:
        if positive not in names:
            raise ImgSuiteError(f"--positive-class {positive!r} is not one of the classes {names}")
        return [n for n in names if n != positive] + [positive]
    negatives = [n for n in names if n.lower() in NEGATIVE_NAMES]
    if len(negatives) == 1:
        return negatives + [n for n in names if n != negatives[0]]
    return names


def load_dataset(source: str | os.PathLike, *, positive: str | None = None, finding: str | None = None) -> Dataset:
    """Find the labelled images of a class-folder tree or a CSV file.

    Parameters
    ----------
    source : a folder with one sub-folder per class, or a CSV (``path,label[,patient_id][,study_id]`` or NIH
        ``Data_Entry``).
    positive : the positive class name (default: the class that is not 'normal'/'No Finding'/...).
    finding : NIH tables only: positive = rows whose ``Finding Labels`` contain this finding, negative =
        ``No Finding``; other rows are skipped. Default: any finding is positive.

    Patients: the ``patient_id`` column (NIH: ``Patient ID``); otherwise DICOM's PatientID, else the
    file name up to the first ``_`` (NIH naming), else the file name. Studies: the ``study_id`` column
    (images that must stay together in a validation split, e.g. two renderings of one view); without it each
    image is its own study (``studies`` is None).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for c in ("normal", "opacity"):
    ...     (d / c).mkdir(); _ = (d / c / f"p1_{c}.png").write_bytes(b"")
    >>> ds = load_dataset(d)
    >>> ds.classes, ds.labels.tolist(), ds.patients
    (['normal', 'opacity'], [0, 1], ['p1', 'p1'])
    """
    source = Path(source)
    if source.is_dir():
        return _from_folders(source, positive)
    if not source.is_file():
        raise ImgSuiteError("no such file or folder", source)
    with open(source, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ImgSuiteError("the CSV has no rows (a header line and one row per image are needed)", source)
    if all(c in rows[0] for c in NIH_COLUMNS):
        return _from_nih(source, rows, finding)
    for column in ("path", "label"):
        if column not in rows[0]:
            raise ImgSuiteError(f"CSV header lacks column {column!r} (need path,label[,patient_id] or NIH Data_Entry)",
                                source)
    paths, labels, patients, studies, seen = [], [], [], [], {}
    for line, row in enumerate(rows, start=2):
        p = _csv_row_image(row, line, source, seen)
        paths.append(str(p))
        labels.append(row["label"].strip())
        patients.append((row.get("patient_id") or "").strip() or _patient_from_name(p))
        studies.append(row.get("study_id") or str(p))
    classes = _named(source, order_classes, labels, positive)
    return Dataset(paths, np.array([classes.index(v) for v in labels]), patients, classes,
                   studies=studies if "study_id" in rows[0] else None)


def _csv_row_image(row: dict, line: int, source: Path, seen: dict) -> Path:
    """The image of one CSV row, checked: it exists, is listed once, has a label and (if the column is there)
    a patient: a blank patient would make each image its own patient, and one patient could train and test."""
    p = Path(row["path"] or "")
    p = p if p.is_absolute() else source.parent / p
    if not row["path"] or not p.is_file():
        raise ImgSuiteError(f"line {line}: image {row['path']!r} not found", source)
    if not (row["label"] or "").strip():
        raise ImgSuiteError(f"line {line}: the label of {row['path']!r} is empty", source)
    if "patient_id" in row and not (row["patient_id"] or "").strip():
        raise ImgSuiteError(f"line {line}: the patient_id of {row['path']!r} is empty (every image needs its "
                            "patient: the folds keep a patient's images together)", source)
    key = p.resolve()
    if key in seen:
        raise ImgSuiteError(f"line {line}: image {row['path']!r} is listed again (line {seen[key]}): it could "
                            "train and test in the same fold", source)
    seen[key] = line
    return p


def _named(source: Path, check, *args):
    """``check(*args)``, its error naming ``source``."""
    try:
        return check(*args)
    except ImgSuiteError as exc:
        raise ImgSuiteError(exc.problem, source) from None


def _from_folders(root: Path, positive: str | None) -> Dataset:
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and _image_files(d))
    classes = _named(root, order_classes, [d.name for d in class_dirs], positive)
    paths, labels, patients = [], [], []
    for d in class_dirs:
        for p in _image_files(d):
            paths.append(str(p))
            labels.append(classes.index(d.name))
            patients.append(_patient_of(p))
    return Dataset(paths, np.array(labels), patients, classes)


def _from_nih(source: Path, rows: list[dict], finding: str | None) -> Dataset:
    classes = [NIH_NEGATIVE, finding or "Finding"]
    paths, labels, patients, skipped = [], [], [], 0
    wanted = None if finding is None else finding.strip().casefold()
    for row in rows:
        # compared stripped and case-folded: an exported 'No Finding ' or 'no finding' would otherwise count as a
        # finding (a normal image labelled positive), and --finding effusion would silently match no 'Effusion' row
        findings = [f.strip().casefold() for f in (row["Finding Labels"] or "").split("|")]
        label = 0 if findings == [NIH_NEGATIVE.casefold()] else 1
        if wanted is not None and label == 1 and wanted not in findings:
            skipped += 1
            continue
        name = row["Image Index"]
        found = next((p for p in (source.parent / name, source.parent / "images" / name) if p.is_file()), None)
        if found is None:  # the full table lists 112,120 images; a subset on disk is normal
            skipped += 1
            continue
        paths.append(str(found))
        labels.append(label)
        patients.append(row["Patient ID"].strip())
    if not paths:
        raise ImgSuiteError("none of the images listed in this NIH Data_Entry table were found beside it", source)
    notes = [f"{skipped} table rows skipped (image not found or other finding)"] if skipped else []
    return Dataset(paths, np.array(labels), patients, classes, skipped, notes)


def _patient_from_name(path: Path) -> str:
    stem = path.stem
    return stem.split("_")[0] if "_" in stem else stem


def _patient_of(path: Path) -> str:
    if path.suffix.lower() == ".dcm":
        import pydicom

        try:
            pid = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"]).get("PatientID")
        except Exception:  # unreadable files are reported when read for real
            pid = None
        if pid:
            return str(pid)
    return _patient_from_name(path)
