"""Structure sets as :class:`~.metrics.Shape` objects on one grid: from RTSTRUCT, ``.seg.nrrd`` or masks.

An RTSTRUCT keeps its own polygons (the surface follows them at sub-voxel precision); a mask (a segmentation
file or a SimpleITK image) is outlined by marching squares at level 0.5, half way between an inside and an
outside voxel centre, which is also what the RTSTRUCT writer writes for it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..rtstruct.rasterize import Grid, _assign, _planes, guess_grid, plane_spacing, rasterize_roi_planes, warn_losses
from ..rtstruct.structure_set import DEFAULT_COLORS, Roi, StructureSet
from .metrics import Shape

FRAME_TAG = "0020|0052"  # FrameOfReferenceUID, as SimpleITK's DICOM reader keeps it


def is_seg_nrrd(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and str(path).lower().endswith((".seg.nrrd", ".nrrd", ".nhdr"))


def load_structure_set(source) -> StructureSet | dict[str, tuple[sitk.Image, tuple[int, int, int]]]:
    """Read a source: an RTSTRUCT path (file or folder) -> StructureSet; a ``.seg.nrrd`` -> {name: (mask, colour)}.

    A StructureSet, or a mapping name -> mask image (or -> (mask, colour)), is returned as it is.
    """
    if isinstance(source, StructureSet):
        return _unique_names(source)
    if isinstance(source, Mapping):
        return {str(k): (v if isinstance(v, tuple) else (v, DEFAULT_COLORS[n % len(DEFAULT_COLORS)]))
                for n, (k, v) in enumerate(source.items())}  # fmt: skip
    if is_seg_nrrd(source):
        return read_seg_nrrd(source)
    from ..rtstruct.structure_set import read_rtstruct

    return _unique_names(read_rtstruct(source))


def _unique_names(ss: StructureSet) -> StructureSet:
    """Refuse a structure set with two ROIs of one name: a review pairs, decides and exports by name, so one of
    them would be measured, approved and exported in the other's place."""
    seen: dict[str, int] = {}
    for roi in ss.rois:
        if roi.name in seen:
            raise ImgSuiteError(
                f"two ROIs named {roi.name!r} (ROINumber {seen[roi.name]} and {roi.number}, StructureSetROISequence "
                "(3006,0020)); rename one (ROIName (3006,0026)) before comparing or reviewing",
                ss.path,
            )
        seen[roi.name] = roi.number
    return ss


def read_seg_nrrd(path: str | os.PathLike) -> dict[str, tuple[sitk.Image, tuple[int, int, int]]]:
    """Segments of a Slicer ``.seg.nrrd`` (layers and label values as Slicer writes them): name -> (mask, colour).

    Examples
    --------
    ::

        read_seg_nrrd("Segmentation.seg.nrrd")["GTV"][0].GetSize()
    """
    path = Path(path)
    if not path.exists():
        raise ImgSuiteError("no such file", path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ImgSuiteError(f"cannot read the segmentation file ({str(exc).strip().splitlines()[-1]})", path) from None
    keys = set(image.GetMetaDataKeys())
    if "Segment0_Name" not in keys:
        raise ImgSuiteError("not a Slicer segmentation file (no Segment0_Name field)", path)
    array = sitk.GetArrayViewFromImage(image)
    if image.GetNumberOfComponentsPerPixel() == 1:
        array = array[..., None]
    out = {}
    n = 0
    while f"Segment{n}_Name" in keys:
        name = image.GetMetaData(f"Segment{n}_Name")
        if name in out:
            raise ImgSuiteError(f"two segments named {name!r} (Segment{n}_Name); rename one", path)
        layer = int(image.GetMetaData(f"Segment{n}_Layer")) if f"Segment{n}_Layer" in keys else 0
        label = int(image.GetMetaData(f"Segment{n}_LabelValue")) if f"Segment{n}_LabelValue" in keys else 1
        color = DEFAULT_COLORS[n % len(DEFAULT_COLORS)]
        if f"Segment{n}_Color" in keys:
            color = tuple(int(round(float(v) * 255)) for v in image.GetMetaData(f"Segment{n}_Color").split()[:3])
        if layer >= array.shape[-1]:
            raise ImgSuiteError(f"Segment{n}_Layer {layer} but the file has {array.shape[-1]} layer(s)", path)
        mask = sitk.GetImageFromArray((array[..., layer] == label).astype(np.uint8))
        mask.SetOrigin(image.GetOrigin())
        mask.SetSpacing(image.GetSpacing())
        mask.SetDirection(image.GetDirection())
        out[name] = (mask, color)
        n += 1
    return SegmentMasks(out, path=path)


class SegmentMasks(dict):
    """name -> (mask, colour) of a segmentation file, which it remembers (``path``) for the warnings."""

    def __init__(self, masks, path=None):
        super().__init__(masks)
        self.path = path


def reference_grid(sources, referenced_ct=None) -> sitk.Image:
    """The comparison grid: the referenced CT, else the first mask source's grid, else one holding every contour."""
    if referenced_ct is not None:
        if isinstance(referenced_ct, sitk.Image):
            return referenced_ct
        from ..io.images import read_image

        return read_image(referenced_ct)
    for s in sources:
        if isinstance(s, dict) and s:
            return next(iter(s.values()))[0]
    rois = [r for s in sources for r in s.rois]
    first = next(s for s in sources if isinstance(s, StructureSet))
    return guess_grid(StructureSet(rois, first.frame_of_reference, path=first.path))


def shapes_of(source, reference: sitk.Image, progress=None) -> dict[str, Shape]:
    """Every structure of a loaded source as a Shape on ``reference``'s grid (name -> Shape, in file order)."""
    specs = shape_specs(source, reference)
    out = {}
    for n, (name, spec) in enumerate(specs.items()):
        if progress is not None:
            progress(n / max(len(specs), 1), f"rasterizing {name}")
        out[name] = make_shape(spec)
    warn_shape_losses(out, source, reference)
    return out


def warn_shape_losses(shapes: Mapping[str, Shape], source, reference: sitk.Image) -> None:
    """Warn, naming the file and the ROIs, what a structure set's contours lost to ``reference``'s grid (beyond
    the CT along the slices, clipped in-plane, ...): a structure the CT holds only part of must not look whole."""
    if isinstance(source, StructureSet):
        warn_losses([shape.lost for shape in shapes.values()], Grid.of(reference), source.path)
        return
    cut = [f"{name!r} {shape.lost:.3g} %" for name, shape in shapes.items() if shape.lost]
    if cut:  # segments (a .seg.nrrd) lose what lies beyond the grid when resampled onto it
        where = getattr(source, "path", None)
        warnings.warn(
            f"{where}: " * bool(where) + f"{len(cut)} segment(s) lie outside the reference grid, in part or whole; "
            f"only their part inside it is measured (share of the segment outside): {', '.join(cut[:8])}"
            + (f" and {len(cut) - 8} more" if len(cut) > 8 else ""),
            stacklevel=3,
        )


@dataclass
class RoiSpec:
    """An RTSTRUCT ROI still to rasterize on ``grid`` (small and picklable: a worker process makes the Shape)."""

    roi: Roi
    grid: Grid
    thickness_mm: float
    path: object = None

    def shape(self) -> Shape:
        """The ROI's mask (the rasterizer's, as :func:`~SlicerImgSuite.rtstruct.rasterize`) and its contours per slice."""
        planes, bad = _planes(self.roi, self.grid, self.path)
        m, lost = rasterize_roi_planes(self.roi, planes, bad, self.grid, self.thickness_mm)
        slices: dict[int, list[np.ndarray]] = {}
        if planes and m.array.size:
            ks = np.array(sorted(planes))
            t = float(np.median(np.diff(ks))) if len(ks) > 1 else self.thickness_mm / self.grid.spacing[2]
            k_all = m.offset[2] + np.arange(m.array.shape[0])
            take = _assign(ks, max(t, 1.0) / 2, k_all.astype(float))
            slices = {int(k): planes[ks[p]] for k, p in zip(k_all, take) if p >= 0}
        mask = m.array if m.array.size else np.zeros((0, 0, 0), bool)
        return Shape(self.roi.name, tuple(int(v) for v in m.offset), mask, slices, tuple(self.roi.color), lost)

    def size(self) -> float:
        """The extent of the ROI's contour points (mm³): which structures take longest."""
        pts = [p for p in self.roi.closed if len(p)]
        return float(np.prod(np.ptp(np.concatenate(pts), axis=0) + 1.0)) if pts else 0.0


def structure_names(source) -> list[str]:
    """The structures of a loaded source: an RTSTRUCT's ROIs with closed contours (markers such as a plan's POIs
    are no structures: nothing to compare or review); every mask of a segmentation."""
    if isinstance(source, StructureSet):
        return [r.name for r in source.rois if r.closed]
    return list(source)


def shape_specs(source, reference: sitk.Image) -> dict[str, Shape | RoiSpec]:
    """Every structure (:func:`structure_names`) of a loaded source: an RTSTRUCT ROI still to rasterize (RoiSpec),
    a mask as its Shape."""
    if not isinstance(source, StructureSet):
        return {name: mask_shape(name, mask, reference, color) for name, (mask, color) in source.items()}
    # A CT read from DICOM keeps its Frame of Reference: the review (which passes the CT read once, not its
    # folder) showed, approved and exported another frame's contours on it, relabelled with the CT's frame.
    if reference.HasMetaDataKey(FRAME_TAG):
        source.check_frame_of_reference(reference.GetMetaData(FRAME_TAG).strip("\x00 "), "the referenced CT")
    grid = Grid.of(reference)
    thickness = plane_spacing(source, grid)
    return {roi.name: RoiSpec(roi, grid, thickness, source.path) for roi in source.rois if roi.closed}


def make_shape(spec: Shape | RoiSpec) -> Shape:
    return spec if isinstance(spec, Shape) else spec.shape()


def mask_shape(name: str, mask: sitk.Image, reference: sitk.Image, color=(255, 0, 0)) -> Shape:
    """A mask (any grid; resampled nearest-neighbour onto ``reference`` when it differs) as a Shape."""
    from skimage.measure import find_contours

    from ..geometry import covered_by, same_grid

    lost = None  # the percentage of the segment's voxels beyond the grid (resampling drops them without a word)
    if not same_grid(mask, reference, tolerance=1e-3):
        drawn = sitk.GetArrayViewFromImage(mask) != 0
        outside = int(np.count_nonzero(drawn & ~covered_by(reference, mask)))
        lost = 100.0 * outside / int(np.count_nonzero(drawn)) if outside else None
        mask = sitk.Resample(mask, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, mask.GetPixelID())
    array = sitk.GetArrayViewFromImage(mask) != 0
    if not array.any():
        return Shape(name, (0, 0, 0), np.zeros((0, 0, 0), bool), {}, tuple(color), lost)
    spans = [np.nonzero(array.any(axis=other))[0] for other in ((1, 2), (0, 2), (0, 1))]
    (z0, z1), (y0, y1), (x0, x1) = [(int(s[0]), int(s[-1]) + 1) for s in spans]
    box = array[z0:z1, y0:y1, x0:x1]
    slices = {}
    for z in range(box.shape[0]):
        if box[z].any():
            rings = find_contours(np.pad(box[z], 1).astype(np.uint8), 0.5)
            slices[z0 + z] = [r[:-1, ::-1] - 1.0 + (x0, y0) for r in rings if len(r) > 3]
    return Shape(name, (x0, y0, z0), np.ascontiguousarray(box), slices, tuple(color), lost)
