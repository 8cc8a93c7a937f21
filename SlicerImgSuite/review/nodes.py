"""Contour review on MRML nodes: what the ContourReview module (and the browser review) call.

Statuses live on the segments as tags (:mod:`.state`), so they travel with the segmentation node through
``.seg.nrrd`` and ``.mrb``. An edit of an approved segment's content (the Segment Editor changes its source
representation) sets it back to ``needs-edit``: :class:`EditWatcher` observes the segmentation's
SourceRepresentationModified event, which carries the segment ID and fires for content only (tags and names
fire SegmentModified instead).
"""

from __future__ import annotations

import numpy as np

from ..progress import ProgressCallback
from .state import ReviewState, from_segment_tags, to_segment_tags

EDIT_REVIEWER = "Segment Editor"
EDIT_COMMENT = "edited after approval"


def segment_names(segmentation_node) -> list[str]:
    seg = segmentation_node.GetSegmentation()
    return [seg.GetNthSegment(n).GetName() for n in range(seg.GetNumberOfSegments())]


def review_state_of(segmentation_node) -> ReviewState:
    """The review state held in a segmentation node's tags (untagged segments are unreviewed)."""
    return from_segment_tags(segmentation_node)


def set_segment_status(segmentation_node, name: str, status: str, *, reviewer: str, comment: str = "") -> ReviewState:
    """Set one segment's status (with its history) in the node's tags; returns the node's whole state."""
    state = review_state_of(segmentation_node)
    if name not in state:
        from ..errors import ImgSuiteError

        raise ImgSuiteError(f"the segmentation {segmentation_node.GetName()!r} has no segment {name!r}")
    state.set_status(name, status, reviewer=reviewer, comment=comment)
    to_segment_tags(state, segmentation_node)
    return state


class EditWatcher:
    """Sets an approved segment back to ``needs-edit`` when its content is edited.

    Examples
    --------
    ::

        watcher = EditWatcher(segmentation_node)   # keep a reference while reviewing
        ...                                        # the Segment Editor paints into an approved segment
        review_state_of(segmentation_node).status("GTV")   # 'needs-edit'
        watcher.remove()
    """

    def __init__(self, segmentation_node, reviewer: str = EDIT_REVIEWER):
        import slicer

        self.node = segmentation_node
        self.reviewer = reviewer
        self.reset: list[str] = []  # names set back to needs-edit, in order
        segmentation = segmentation_node.GetSegmentation()
        self._tag = segmentation.AddObserver(slicer.vtkSegmentation.SourceRepresentationModified, self._callback())
        self._segmentation = segmentation

    def _callback(self):
        import vtk

        @vtk.calldata_type(vtk.VTK_STRING)
        def modified(caller, event, segment_id):
            self.segment_edited(segment_id)

        return modified

    def segment_edited(self, segment_id: str) -> None:
        segment = self._segmentation.GetSegment(segment_id) if segment_id else None
        if segment is None:
            return
        name = segment.GetName()
        state = review_state_of(self.node)
        if name in state and state.status(name) == "approved":
            set_segment_status(self.node, name, "needs-edit", reviewer=self.reviewer, comment=EDIT_COMMENT)
            self.reset.append(name)

    def remove(self) -> None:
        if self._tag is not None:
            self._segmentation.RemoveObserver(self._tag)
            self._tag = None


def compare_segmentation_nodes(
    reference_node,
    test_node,
    reference_volume_node=None,
    *,
    tolerance_mm: float = 2.0,
    name_map=None,
    progress: ProgressCallback | None = None,
):
    """Compare two segmentation nodes on the reference volume's grid (or the reference segmentation's own)."""
    from ..mrml.segmentations import masks_from_segmentation_node, segment_colors
    from ..mrml.volumes import image_from_volume_node
    from .compare import compare_structure_sets

    grid = image_from_volume_node(reference_volume_node) if reference_volume_node is not None else None
    if grid is None:
        grid = _segmentation_grid(reference_node)
    sources = []
    for node in (reference_node, test_node):
        masks = masks_from_segmentation_node(node, grid)
        colors = segment_colors(node)
        sources.append({n: (m, colors.get(n, (255, 0, 0))) for n, m in masks.items()})
    return compare_structure_sets(
        sources[0], sources[1], referenced_ct=grid, tolerance_mm=tolerance_mm, name_map=name_map, progress=progress
    )


def structure_dvh_nodes(
    reference_node,
    test_node,
    reference_segment: str,
    test_segment: str,
    dose_node,
    *,
    grid=None,
    table_node=None,
    chart_node=None,
    bin_width: float = 0.1,
    dose_units: str | None = None,
):
    """Cumulative DVHs (% volume) of one structure in the reference and the test segmentation under a dose.

    Makes, or updates in place (``table_node``, ``chart_node``), a table node (``Dose (Gy)``, then one column per
    structure) and a plot chart with the two curves, the reference solid and the test dashed, in the reference
    segment's colour. The curves are :func:`~SlicerImgSuite.rtstruct.dvh.dvh_table`'s (the one DVH of the
    extension), on ``grid`` (a SimpleITK image, e.g. the comparison's CT grid; default the dose grid).
    ``reference_segment`` and ``test_segment`` are segment IDs or names. The dose node must be a dose (loaded by
    :func:`~SlicerImgSuite.rtstruct.nodes.dose_node_from_file` or marked by SlicerRT) unless ``dose_units``
    declares it. Returns (table node, chart node).

    Examples
    --------
    ::

        table, chart = structure_dvh_nodes(ref_node, test_node, "HEART", "Heart", dose_node, grid=ct)
        structure_dvh_nodes(ref_node, test_node, "GTV", "GTV", dose_node, table_node=table, chart_node=chart)
    """
    import SimpleITK as sitk

    from ..mrml.segmentations import segment_masks
    from ..mrml.tables import fill_table_node, set_plot_series
    from ..rtstruct.dvh import dvh_table
    from ..rtstruct.nodes import dose_from_node
    from ..rtstruct.rasterize import RoiMask
    from ..rtstruct.structure_set import Roi

    dose = dose_from_node(dose_node, dose_units)
    grid = dose if grid is None else grid
    masks, color = [], (255, 0, 0)
    for node, segment, role in ((reference_node, reference_segment, "reference"), (test_node, test_segment, "test")):
        segment_id = _segment_id(node, segment)
        name = node.GetSegmentation().GetSegment(segment_id).GetName()
        (mask,) = segment_masks(node, grid, [segment_id]).values()
        masks.append(RoiMask(Roi(0, f"{name} ({role})"), (0, 0, 0), sitk.GetArrayFromImage(mask) > 0))
        if role == "reference":
            color = tuple(int(round(255 * c)) for c in node.GetSegmentation().GetSegment(segment_id).GetColor())
    dvhs = dvh_table(masks, dose, grid, bin_width=bin_width, normalization="pct")
    header = ["Dose (Gy)"] + dvhs.names
    rows = [[float(e)] + [100.0 * float(c[i]) for c in dvhs.curves] for i, e in enumerate(dvhs.edges)]
    scene = reference_node.GetScene()
    table_node = table_node or scene.AddNewNodeByClass("vtkMRMLTableNode", "Review DVH")
    fill_table_node(table_node, header, rows)
    chart_node = chart_node or scene.AddNewNodeByClass("vtkMRMLPlotChartNode", "Review DVH")
    set_plot_series(chart_node, table_node, header[0], dvhs.names, [color, color], ["Solid", "Dash"])
    chart_node.SetYAxisTitle("Volume (%)")
    chart_node.SetTitle(f"DVH: {' vs '.join(dvhs.names)}")
    return table_node, chart_node


def _segment_id(segmentation_node, segment: str) -> str:
    """A segment's ID from its ID or its name."""
    seg = segmentation_node.GetSegmentation()
    if seg.GetSegment(segment) is not None:
        return segment
    found = seg.GetSegmentIdBySegmentName(segment)
    if not found:
        from ..errors import ImgSuiteError

        raise ImgSuiteError(f"the segmentation {segmentation_node.GetName()!r} has no segment {segment!r}")
    return found


def _segmentation_grid(segmentation_node):
    """An empty image on a segmentation's reference geometry (LPS)."""
    import SimpleITK as sitk
    import slicer
    import vtk

    from ..mrml.ras import grid_from_ijk_to_ras

    geometry = slicer.vtkOrientedImageData()
    seg = segmentation_node.GetSegmentation()
    text = seg.GetConversionParameter(slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    slicer.vtkSegmentationConverter.DeserializeImageGeometry(text, geometry)
    matrix = vtk.vtkMatrix4x4()
    geometry.GetImageToWorldMatrix(matrix)
    ijk_to_ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    origin, spacing, direction = grid_from_ijk_to_ras(ijk_to_ras)
    extent = geometry.GetExtent()
    image = sitk.Image(
        [extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1], sitk.sitkUInt8
    )
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    image.SetOrigin(origin)
    return image


def show_structure(reference_node, test_node, reference_name: str, test_name: str) -> None:
    """Show only one structure pair: the reference as a thick outline, the test as a thin one, no fill."""
    for node, name, thickness in ((reference_node, reference_name, 3), (test_node, test_name, 1)):
        if node is None:
            continue
        display = node.GetDisplayNode()
        if display is None:
            node.CreateDefaultDisplayNodes()
            display = node.GetDisplayNode()
        display.SetVisibility(True)
        display.SetVisibility2DFill(False)
        display.SetVisibility2DOutline(True)
        display.SetSliceIntersectionThickness(thickness)
        seg = node.GetSegmentation()
        for n in range(seg.GetNumberOfSegments()):
            display.SetSegmentVisibility(seg.GetNthSegmentID(n), seg.GetNthSegment(n).GetName() == name)


def centre_slice_views(slice_nodes, focus, margin: float = 1.5) -> None:
    """Centre each slice view on a structure (:class:`~.table.ViewFocus`) and zoom so that it fills the view."""
    ras = focus.centroid_ras
    fov = focus.field_of_view_mm(margin)
    for node in slice_nodes:
        node.JumpSliceByCentering(float(ras[0]), float(ras[1]), float(ras[2]))
        current = node.GetFieldOfView()
        aspect = current[1] / current[0] if current[0] else 1.0
        node.SetFieldOfView(fov, fov * aspect, current[2])
