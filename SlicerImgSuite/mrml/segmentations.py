"""Binary masks / label images <-> segmentation nodes (one segment per structure, with name and colour)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ._nodes import mrml_scene, vtk_matrix
from .ras import ijk_to_ras
from .volumes import image_from_volume_node, volume_node_from_image


def segmentation_node_from_masks(
    scene,
    masks: dict[str, sitk.Image],
    colors: dict[str, tuple[int, int, int]] | None = None,
    name: str = "Segmentation",
    node=None,
    reference: sitk.Image | None = None,
):
    """Add a segmentation node with one segment per mask (non-zero voxels are inside).

    Parameters
    ----------
    scene : SlicerScene or vtkMRMLScene
    masks : dict
        Structure name -> mask image. Overlaps are kept (each segment is its own layer when needed).
        A mask may cover only its structure's box of the ``reference`` grid (same spacing and
        axes, whole-voxel offset), so many structures on a large CT do not each hold a full grid.
    colors : dict, optional
        Structure name -> (r, g, b), 0-255.
    name : str
        Node name.
    reference : SimpleITK.Image, optional
        The grid that becomes the segmentation's reference geometry (only its geometry is read);
        default: the first mask's.
    """
    import slicer

    if node is None:
        node = mrml_scene(scene).AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        node.CreateDefaultDisplayNodes()
    first = reference if reference is not None else next(iter(masks.values()), None)
    if first is not None:
        geometry = slicer.vtkSegmentationConverter.SerializeImageGeometry(_oriented(first, np.uint8, voxels=False))
        node.GetSegmentation().SetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), geometry
        )
    for label, mask in masks.items():
        rgb = np.array((colors or {}).get(label, _default_color(len(node.GetSegmentation().GetSegmentIDs()))))
        oriented = _oriented(mask, np.uint8, binary=True)
        node.AddSegmentFromBinaryLabelmapRepresentation(oriented, label, [float(c) / 255.0 for c in rgb[:3]])
    return node


def segmentation_node_from_labels(scene, labels: sitk.Image, names: dict[int, str], colors=None, name="Segmentation"):
    """Add a segmentation node from a label image: ``names`` maps label value -> structure name."""
    array = sitk.GetArrayViewFromImage(labels)
    masks = {}
    for value, label in names.items():
        mask = sitk.GetImageFromArray((array == value).astype(np.uint8))
        mask.CopyInformation(labels)
        masks[label] = mask
    return segmentation_node_from_masks(scene, masks, colors, name)


def segmentation_node_from_label_layer(
    scene,
    labels: sitk.Image,
    segments: dict[int, str],
    colors: dict[int, tuple[int, int, int]] | None = None,
    name: str = "Segmentation",
    add: bool = True,
):
    """A segmentation node whose segments share one labelmap layer: segment ``segments[v]`` is ``labels == v``.

    Unlike :func:`segmentation_node_from_labels` no mask is made per segment, so hundreds of nuclei cost one
    label image. ``segments`` maps label value -> segment ID (also its name); ``colors`` label value -> (r, g, b),
    0-255 (default: a palette by label value). With ``add=False`` the node is not put into ``scene`` (for a
    sequence item, which the sequence copies).
    """
    import slicer

    node = slicer.vtkMRMLSegmentationNode()
    node.SetName(name)
    if add:
        mrml_scene(scene).AddNode(node)
        node.CreateDefaultDisplayNodes()
    segmentation = node.GetSegmentation()
    # from the image's values, not only the listed ones: a label left out of ``segments`` (65537) must not
    # wrap onto a listed one (1) in a uint16 layer
    values = sitk.GetArrayViewFromImage(labels)
    fits = values.size == 0 or (values.min() >= 0 and values.max() < 65536)
    dtype = np.uint16 if fits and max(segments, default=0) < 65536 else np.int32
    layer = _oriented(labels, dtype)
    geometry = slicer.vtkSegmentationConverter.SerializeImageGeometry(layer)
    segmentation.SetConversionParameter(slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), geometry)
    representation = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    for value, segment_id in segments.items():
        segment = slicer.vtkSegment()
        segment.SetName(segment_id)
        segment.SetLabelValue(int(value))
        segment.SetColor(*[c / 255.0 for c in (colors or {}).get(value, _default_color(int(value) - 1))])
        segment.AddRepresentation(representation, layer)
        segmentation.AddSegment(segment, segment_id)
    return node


def masks_from_segmentation_node(node, reference: sitk.Image) -> dict[str, sitk.Image]:
    """Each segment as a uint8 0/1 mask on the grid of ``reference`` (keyed by segment name)."""
    return segment_masks(node, reference, list(node.GetSegmentation().GetSegmentIDs()))


def segment_masks(node, reference: sitk.Image, segment_ids: list[str]) -> dict[str, sitk.Image]:
    """The segments ``segment_ids`` as uint8 0/1 masks on the grid of ``reference`` (keyed by segment name)."""
    import slicer

    scene = node.GetScene()
    reference_node = volume_node_from_image(scene, sitk.Image(reference.GetSize(), sitk.sitkUInt8), "_reference")
    reference_node.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras(reference)))
    label_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "_export")
    masks = {}
    try:
        segmentation = node.GetSegmentation()
        for segment_id in segment_ids:
            ids = _string_array([segment_id])
            ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
                node, ids, label_node, reference_node
            )
            if not ok:
                raise RuntimeError(f"cannot export segment {segment_id!r} of {node.GetName()!r}")
            data = label_node.GetImageData()
            if data is None or data.GetPointData().GetScalars() is None:
                # Slicer exports no voxels for an empty segment of a transformed segmentation
                if not _segment_is_empty(segmentation.GetSegment(segment_id)):
                    raise RuntimeError(f"cannot export segment {segment_id!r} of {node.GetName()!r}")
                array = np.zeros(sitk.GetArrayViewFromImage(reference).shape, np.uint8)
            else:
                array = (sitk.GetArrayFromImage(image_from_volume_node(label_node)) > 0).astype(np.uint8)
            out = sitk.GetImageFromArray(array)
            out.CopyInformation(reference)
            masks[segmentation.GetSegment(segment_id).GetName()] = out
    finally:
        scene.RemoveNode(label_node)
        scene.RemoveNode(reference_node)
    return masks


def _segment_is_empty(segment) -> bool:
    """Whether a segment's binary labelmap holds no voxel of its label (False if it has no labelmap)."""
    import slicer
    from vtkmodules.util import numpy_support

    labelmap = segment.GetRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
    if labelmap is None:
        return False
    scalars = labelmap.GetPointData().GetScalars()
    return scalars is None or not np.any(numpy_support.vtk_to_numpy(scalars) == segment.GetLabelValue())


def segment_colors(node) -> dict[str, tuple[int, int, int]]:
    """Segment name -> (r, g, b) 0-255."""
    segmentation = node.GetSegmentation()
    out = {}
    for segment_id in segmentation.GetSegmentIDs():
        segment = segmentation.GetSegment(segment_id)
        out[segment.GetName()] = tuple(int(round(255 * c)) for c in segment.GetColor())
    return out


def _oriented(image: sitk.Image, dtype, binary: bool = False, voxels: bool = True):
    """A ``vtkOrientedImageData`` with the voxels (unless ``voxels=False``: geometry only) and RAS geometry of ``image``."""
    import slicer
    from vtkmodules.util import numpy_support

    oriented = slicer.vtkOrientedImageData()
    oriented.SetDimensions(*image.GetSize())
    oriented.SetImageToWorldMatrix(vtk_matrix(ijk_to_ras(image)))
    if voxels:
        array = sitk.GetArrayViewFromImage(image)
        array = (array != 0).astype(dtype) if binary else array.astype(dtype)
        scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True)
        oriented.GetPointData().SetScalars(scalars)
    return oriented


def _string_array(values):
    from vtkmodules.vtkCommonCore import vtkStringArray

    array = vtkStringArray()
    for v in values:
        array.InsertNextValue(v)
    return array


_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]


def _default_color(index: int) -> tuple[int, int, int]:
    return _PALETTE[index % len(_PALETTE)]
