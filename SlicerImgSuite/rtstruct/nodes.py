"""RT structure-set jobs on MRML nodes (what the RTStructures module calls); all conversions go through ``mrml/``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress, sub_progress


def segmentation_from_rtstruct(
    scene,
    rtstruct_path: str | os.PathLike,
    reference_node=None,
    ct_folder: str | os.PathLike | None = None,
    rule: str = "xor",
    accurate: bool = False,
    make_labelmap: bool = False,
    progress: ProgressCallback | None = None,
):
    """Rasterize an RTSTRUCT onto a reference volume node (or a CT folder) into a segmentation node.

    ``rtstruct_path`` may be a DICOM folder holding the CT and its RTSTRUCT (as plastimatch takes
    it): without a reference node that CT is the reference. A CT read from a folder is added to the
    scene as a volume node, after its Frame of Reference was checked against the structure set's.

    Returns ``(segmentation_node, labelmap_node or None, warnings as text)``. One segment per ROI,
    with the ROI's name and colour; POINT contours become a markups fiducial node and each
    OPEN_PLANAR contour a markups curve (a polyline).
    """
    from ..mrml.markups import curve_node_from_points, fiducial_node_from_points
    from ..mrml.segmentations import segmentation_node_from_masks
    from ..mrml.volumes import image_from_volume_node, volume_node_from_image
    from .outputs import labelmap
    from .rasterize import Grid, RoiMask, rasterize
    from .structure_set import find_rtstruct, read_rtstruct

    progress = progress or no_progress
    rtstruct_file = find_rtstruct(rtstruct_path)
    ss = read_rtstruct(rtstruct_file)
    if reference_node is None and not ct_folder and Path(rtstruct_path).is_dir():
        ct_folder = rtstruct_path
    if reference_node is not None:
        reference = image_from_volume_node(reference_node)
    elif ct_folder:
        reference = _ct_of(scene, ss, ct_folder, sub_progress(progress, 0, 0.2))
    else:
        raise ImgSuiteError("choose a reference volume (or a CT folder) to rasterize onto", rtstruct_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        masks = rasterize(
            ss, reference, rule=rule, oversample=8 if accurate else 1, progress=sub_progress(progress, 0.2, 0.8)
        )
    grid = Grid.of(reference)
    images = {}  # each structure on its own box: 100 ROIs on a large CT do not hold 100 full grids
    for m in masks:
        if m.roi.closed:
            images[m.roi.name] = RoiMask(m.roi, m.offset, m.array >= 0.5 if accurate else m.array).image(grid)
    name = os.path.splitext(rtstruct_file.name)[0]
    colors = {m.roi.name: m.roi.color for m in masks}
    seg = segmentation_node_from_masks(scene, images, colors, name=name, reference=reference)
    for roi in ss.rois:
        if len(roi.points):
            fiducial_node_from_points(scene, roi.points, [roi.name] * len(roi.points), roi.name)
        for n, line in enumerate(roi.lines, start=1):
            curve_node_from_points(scene, line, f"{roi.name} {n}" if len(roi.lines) > 1 else roi.name, roi.color)
    lm = (
        volume_node_from_image(scene, labelmap(masks, reference), f"{name}_labelmap", labelmap=True)
        if make_labelmap
        else None
    )
    progress(1.0, "done")
    return seg, lm, "\n".join(str(w.message) for w in caught)


def _ct_of(scene, ss, ct_folder, progress):
    """The CT series of ``ct_folder`` (checked against the structure set's Frame of Reference), also as a volume node."""
    from ..io.dicom_series import read_dicom_series, scan_folder, select_series
    from ..mrml.volumes import volume_node_from_image

    info = select_series(ct_folder, scan_folder(ct_folder))
    ss.check_frame_of_reference(info.frame_of_reference, f"the CT in {ct_folder}")
    image = read_dicom_series(ct_folder, series_uid=info.uid, progress=progress)
    volume_node_from_image(scene, image, info.description or "CT")
    return image


def rtstruct_from_segmentation(
    segmentation_node, ct_folder: str | os.PathLike, path: str | os.PathLike, progress: ProgressCallback | None = None
):
    """Write a (possibly edited) segmentation node back to an RTSTRUCT that references the CT series in ``ct_folder``."""
    from ..mrml.segmentations import masks_from_segmentation_node, segment_colors
    from .write import reference_series, write_rtstruct_from_masks

    ref = reference_series(ct_folder)
    masks = masks_from_segmentation_node(segmentation_node, ref.image())
    return write_rtstruct_from_masks(path, ref, masks, colors=segment_colors(segmentation_node), progress=progress)


def dose_node_from_file(scene, path: str | os.PathLike, units: str | None = None, name: str | None = None):
    """Load a dose (an RTDOSE, or an image declared with ``units``) as a scalar volume node in Gy, marked as a dose.

    The one RTDOSE reader does the work (DoseGridScaling, cGy -> Gy); the node gets SlicerRT's
    ``DicomRtImport.DoseVolume`` attribute and ``DicomRtImport.DoseUnitName`` = ``GY``.
    """
    from ..mrml.volumes import volume_node_from_image
    from .dose import read_dose

    return volume_node_from_image(scene, read_dose(path, units), name or Path(path).stem)


def dose_from_node(dose_node, units: str | None = None):
    """The dose of a volume node in Gy: a node marked as a dose, or any volume whose ``units`` are given."""
    from ..mrml.volumes import DOSE_UNITS_ATTRIBUTE, DOSE_VOLUME_ATTRIBUTE, image_from_volume_node
    from .dose import DOSE_UNITS_KEY, as_dose

    image = image_from_volume_node(dose_node)
    if dose_node.GetAttribute(DOSE_VOLUME_ATTRIBUTE) in ("1", "true", "True"):
        image.SetMetaData(DOSE_UNITS_KEY, dose_node.GetAttribute(DOSE_UNITS_ATTRIBUTE) or "GY")
        units = None  # the module's "Units of a plain volume": a dose keeps its own (cGy here made it 100x low)
    modality = dose_node.GetAttribute("DICOM.Modality") or None
    return as_dose(image, units, f"volume {dose_node.GetName()!r}", modality)


def dvh_nodes(scene, segmentation_node, dose_node, reference_node, bin_width: float = 0.1, dose_units=None):
    """DVH (cumulative, cc) of every segment under a dose volume: a table node, a plot chart node, and statistics rows.

    ``dose_node`` must be a dose (loaded by :func:`dose_node_from_file`, or marked by SlicerRT) unless
    ``dose_units`` ("gy" or "cgy") declares what a plain volume holds: a CT is refused. The numbers come from
    :func:`~SlicerImgSuite.rtstruct.dvh.dvh_table`, as ``imgsuite dvh --normalization cc``'s.
    """
    import SimpleITK as sitk

    from ..mrml.segmentations import masks_from_segmentation_node
    from ..mrml.tables import plot_from_table, table_node_from_rows
    from ..mrml.volumes import image_from_volume_node
    from .dvh import dvh_table
    from .rasterize import RoiMask
    from .structure_set import Roi

    dose = dose_from_node(dose_node, dose_units)
    reference = image_from_volume_node(reference_node)
    masks = [
        RoiMask(Roi(0, name), (0, 0, 0), sitk.GetArrayFromImage(mask) > 0)
        for name, mask in masks_from_segmentation_node(segmentation_node, reference).items()
    ]
    dvhs = dvh_table(masks, dose, reference, bin_width=bin_width, normalization="cc")
    rows = [[float(e)] + [float(c[i]) for c in dvhs.curves] for i, e in enumerate(dvhs.edges)]
    table = table_node_from_rows(scene, ["Dose (Gy)"] + dvhs.names, rows, "DVH")
    chart = plot_from_table(scene, table, "Dose (Gy)", dvhs.names, "DVH")
    return table, chart, dict(zip(dvhs.names, dvhs.stats))
