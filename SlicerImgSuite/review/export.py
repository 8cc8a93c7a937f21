"""Export a reviewed structure set: an RTSTRUCT with the DICOM Approval Module, and DICOM SEG (highdicom).

The RTSTRUCT is written by the one RTSTRUCT writer (:func:`SlicerImgSuite.rtstruct.write.write_rtstruct`):
a new SeriesInstanceUID, the CT's Frame of Reference, study and series references. ``ApprovalStatus`` is
APPROVED only when every exported structure is approved (then ``ReviewDate``, ``ReviewTime`` and
``ReviewerName`` say who approved last and when), else UNAPPROVED. Each ROI's status is its
``ROIObservationLabel`` in RTROIObservationsSequence; ``ROIObservationDescription`` holds reviewer, time and
comment. Structures read from an RTSTRUCT keep their own polygons; masks are traced (marching squares).

DICOM SEG (what OHIF, TotalSegmentator and PACS read) is written with highdicom: one BINARY segment per
structure on the CT's slices, its status in ``SegmentDescription``.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..io.atomic import atomic_path
from .state import ReviewState

STATUS_NAME_LIMIT = 64  # LO


def _structures(structures, ref):
    """(StructureSet or None, {name: (mask, colour)} or None) from what the caller gave, for the CT ``ref``
    (a ReferenceSeries).

    An RTSTRUCT of another Frame of Reference than the CT is refused: the export writes the CT's frame, so its
    contours would have been relabelled as drawn on a CT they do not belong to."""
    from ..rtstruct.structure_set import StructureSet
    from .sources import load_structure_set

    loaded = load_structure_set(structures)
    if not isinstance(loaded, StructureSet):
        return None, loaded
    loaded.check_frame_of_reference(ref.frame_of_reference, "the referenced CT")
    return loaded, None


def exported_names(names, state: ReviewState | None, approved_only: bool, path=None) -> list[str]:
    """The names to export to ``path``: all, or only the approved ones (refused, naming ``path``, when there is none)."""
    names = list(names)
    if not approved_only:
        return names
    kept = [n for n in names if state is not None and n in state and state[n].status == "approved"]
    if not kept:
        raise ImgSuiteError("no approved structure to export (approved-only was asked); nothing written", path)
    return kept


def approval_amendment(state: ReviewState | None, names, reviewer: str | None = None, reviewed=None):
    """A function that adds the Approval Module and per-ROI review observations to an RTSTRUCT dataset.

    ``names``: the ROIs written, in order; ``reviewed``: those the review judges (default all). The others
    (markers such as a plan's POIs: no contour to review) keep no status and do not hold the approval back.
    """
    reviewed = set(names if reviewed is None else reviewed)

    def amend(ds) -> None:
        reviews = [state[n] if state is not None and n in state and n in reviewed else None for n in names]
        judged = [r for n, r in zip(names, reviews) if n in reviewed]
        approved = bool(judged) and all(r is not None and r.status == "approved" for r in judged)
        ds.ApprovalStatus = "APPROVED" if approved else "UNAPPROVED"
        if approved:
            latest = max(judged, key=lambda r: r.time)
            when = _parse_time(latest.time)
            ds.ReviewDate = when.strftime("%Y%m%d")
            ds.ReviewTime = when.strftime("%H%M%S")
            ds.ReviewerName = _person_name(reviewer or latest.reviewer)
        for obs, name, review in zip(ds.RTROIObservationsSequence, names, reviews):
            if name not in reviewed:
                continue
            status = review.status if review is not None else "unreviewed"
            obs.ROIObservationLabel = status[:STATUS_NAME_LIMIT]
            if review is not None and review.reviewer:
                text = f"{status} by {review.reviewer} at {review.time}"
                obs.ROIObservationDescription = (text + (f": {review.comment}" if review.comment else ""))[:1024]

    return amend


def _parse_time(text: str) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return datetime.datetime.now()


def _person_name(name: str) -> str:
    """A PN value: "Dr Ann Smith" -> "Smith^Dr Ann"-like is not guessed; spaces kept, at most 64 characters."""
    return str(name).replace("\\", " ")[:64]


def export_reviewed_rtstruct(
    path: str | os.PathLike,
    referenced_ct,
    structures,
    state: ReviewState | None,
    *,
    approved_only: bool = False,
    reviewer: str | None = None,
    label: str = "REVIEWED",
):
    """Write the reviewed structure set as a new RTSTRUCT carrying the review.

    Parameters
    ----------
    path : path
        The RTSTRUCT file to write (atomically).
    referenced_ct : path or list of pydicom.Dataset
        The CT series the structures belong to (folder or slice headers).
    structures : path, StructureSet or mapping
        An RTSTRUCT (its polygons are kept), or name -> binary mask on the CT grid (or -> (mask, colour)).
    state : ReviewState or None
        Statuses; structures missing from it are unreviewed.
    approved_only : bool
        Export only the approved structures.
    reviewer : str, optional
        ReviewerName when approved (default: who approved last).

    Returns
    -------
    pydicom.Dataset

    Examples
    --------
    ::

        state = ReviewState(["GTV"]); state.set_status("GTV", "approved", reviewer="Dr A")
        ds = export_reviewed_rtstruct("RS_reviewed.dcm", "CT/", "RS.dcm", state)
        ds.ApprovalStatus  # 'APPROVED'
    """
    from ..rtstruct.write import reference_series, write_rtstruct, write_rtstruct_from_masks
    from .sources import structure_names

    if isinstance(structures, (str, os.PathLike)) and Path(structures).resolve() == Path(path).resolve():
        raise ImgSuiteError("the reviewed RTSTRUCT would overwrite its own input; write it to another file", path)
    referenced_ct = reference_series(referenced_ct)  # read once: the frame check and the writer
    ss, masks = _structures(structures, referenced_ct)
    names = exported_names(ss.names() if ss is not None else masks, state, approved_only, path)
    reviewed = structure_names(ss) if ss is not None else names  # an RTSTRUCT's markers are not reviewed
    amend = approval_amendment(state, names, reviewer, reviewed)
    description = "SlicerImgSuite reviewed structures"
    if ss is not None:
        rois = [ss.roi(n) for n in names]
        return write_rtstruct(path, referenced_ct, rois, label=label, series_description=description, amend=amend)
    return write_rtstruct_from_masks(
        path,
        referenced_ct,
        {n: masks[n][0] for n in names},
        colors={n: masks[n][1] for n in names},
        label=label,
        series_description=description,
        amend=amend,
    )


def review_state_from_rtstruct(path: str | os.PathLike) -> ReviewState:
    """The statuses an exported RTSTRUCT carries (ROIObservationLabel; reviewer, time and comment when written)."""
    import re

    import pydicom

    from .state import STATUSES, StructureReview

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.get("StructureSetROISequence", [])}
    structures = {}
    for obs in ds.get("RTROIObservationsSequence", []):
        name = names.get(int(obs.get("ReferencedROINumber", -1)))
        status = str(obs.get("ROIObservationLabel", ""))
        if name is None or status not in STATUSES:
            continue
        review = StructureReview(status)
        found = re.match(r"^\S+ by (.*) at (\S+?)(?:: (.*))?$", str(obs.get("ROIObservationDescription", "")), re.S)
        if found:
            review.reviewer, review.time, review.comment = found.group(1), found.group(2), found.group(3) or ""
        structures[name] = review
    return ReviewState(structures=structures)


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the review JSON of an exported file goes: ``RS.dcm`` -> ``RS.review.json``."""
    path = Path(path)
    return path.with_name(path.name.split(".")[0] + ".review.json")


def structure_masks(structures, referenced_ct) -> tuple[dict[str, np.ndarray], dict[str, tuple], object]:
    """Every structure as a full boolean array (z, y, x) on the CT grid, its colour, and the CT's ReferenceSeries."""
    from ..rtstruct.rasterize import rasterize
    from ..rtstruct.write import reference_series

    ref = reference_series(referenced_ct)
    image = ref.image()
    ss, masks = _structures(structures, ref)
    if ss is not None:
        out = {m.roi.name: m.full(ref.grid, bool) for m in rasterize(ss, image)}
        colors = {r.name: tuple(r.color) for r in ss.rois}
        return out, colors, ref
    out = {}
    for name, (mask, _) in masks.items():
        if mask.GetSize() != image.GetSize():
            raise ImgSuiteError(
                f"mask {name!r} is not on the referenced CT grid ({mask.GetSize()} vs {image.GetSize()})"
            )
        out[name] = sitk.GetArrayFromImage(mask) != 0
    return out, {n: tuple(c) for n, (_, c) in masks.items()}, ref


def export_seg(
    path: str | os.PathLike,
    referenced_ct,
    structures,
    *,
    state: ReviewState | None = None,
    approved_only: bool = False,
):
    """Write the structures as a DICOM SEG (BINARY, one segment each) referencing the CT; returns the dataset.

    Examples
    --------
    ::

        export_seg("SEG.dcm", "CT/", "RS.dcm")
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from .. import __version__
    from ..io.dicom_write import copied_study_value
    from ..rtstruct.write import lo_names

    masks, colors, ref = structure_masks(structures, referenced_ct)
    names = [n for n in exported_names(masks, state, approved_only, path) if masks[n].any()]
    if not names:
        raise ImgSuiteError("no structure with voxels to write as DICOM SEG", path)
    sources = [pydicom.dcmread(d.filename) if getattr(d, "filename", None) else d for d in ref.datasets]
    descriptions = []
    for n, (name, label) in enumerate(zip(names, lo_names(names, path), strict=True)):
        desc = hd.seg.SegmentDescription(
            segment_number=n + 1,
            segment_label=label,
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.Organ,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            display_color=hd.color.CIELabColor.from_rgb(*[int(v) for v in colors.get(name, (255, 0, 0))]),
        )
        if state is not None and name in state:
            desc.SegmentDescription = state[name].status
        descriptions.append(desc)
    pixels = np.stack([masks[n] for n in names], axis=-1).astype(np.uint8)  # (slices, rows, columns, segments)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=300,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="SlicerImgSuite",
        manufacturer_model_name="SlicerImgSuite",
        software_versions=__version__,
        device_serial_number="0",
        series_description="SlicerImgSuite reviewed segmentation",
    )
    seg.SpecificCharacterSet = "ISO_IR 192"  # highdicom keeps the CT's (Latin-1): a label '肿瘤' was written '??'
    for key in ("StudyID", "AccessionNumber"):  # highdicom copies the CT's, 17 characters and more included
        if key in seg:
            seg[key].value = copied_study_value(key, seg[key].value)
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return seg


def import_seg(path: str | os.PathLike, referenced_ct) -> dict[str, tuple[sitk.Image, tuple[int, int, int]]]:
    """Read a DICOM SEG onto the referenced CT's grid: name -> (binary mask image, colour).

    Examples
    --------
    ::

        masks = import_seg("SEG.dcm", "CT/")
    """
    import highdicom as hd

    from ..rtstruct.write import reference_series

    path = Path(path)
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # pydicom and highdicom raise many kinds
        raise ImgSuiteError(f"not a readable DICOM SEG ({type(exc).__name__}: {exc})", path) from None
    ref = reference_series(referenced_ct)
    uids = [str(d.SOPInstanceUID) for d in ref.datasets]
    numbers = list(seg.get_segment_numbers())
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, segment_numbers=numbers, ignore_spatial_locations=True,
        assert_missing_frames_are_empty=True,
    )  # fmt: skip
    out = {}
    for n, number in enumerate(numbers):
        desc = seg.get_segment_description(number)
        mask = ref.grid.image(np.ascontiguousarray(pixels[..., n] != 0, np.uint8))
        color = (255, 0, 0)
        if "RecommendedDisplayCIELabValue" in desc:
            color = tuple(int(v) for v in hd.color.CIELabColor(*_lab(desc.RecommendedDisplayCIELabValue)).to_rgb())
        out[str(desc.SegmentLabel)] = (mask, color)
    return out


def seg_statuses(path: str | os.PathLike) -> dict[str, str]:
    """The review status each segment of a DICOM SEG carries in SegmentDescription (when it does)."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return {str(s.SegmentLabel): str(s.SegmentDescription) for s in ds.SegmentSequence if "SegmentDescription" in s}


def _lab(dicom_lab) -> tuple[float, float, float]:
    """DICOM's scaled 16-bit CIELab to (L 0-100, a, b -128..127)."""
    L, a, b = (int(v) for v in dicom_lab)
    return L * 100.0 / 65535.0, a * 255.0 / 65535.0 - 128.0, b * 255.0 / 65535.0 - 128.0
