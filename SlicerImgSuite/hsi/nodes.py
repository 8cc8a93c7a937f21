"""Hyperspectral cubes in an MRML scene (through :mod:`SlicerImgSuite.mrml`; LPS<->RAS only via its helpers).

- the cube: a ``vtkMRMLVectorVolumeNode`` (one slice; bands as components; wavelengths as node
  attributes ``hsi.wavelengths``, ``hsi.wavelength_units``, ``hsi.band_names``, ``hsi.source``)
- labels: one ``vtkMRMLSegmentationNode`` (a segment per class of the classification, and per mask)
- bounding boxes: ``vtkMRMLMarkupsROINode`` each
- views: a band as a scalar volume, an RGB composite as a 3-component uint8 vector volume, and the
  spectrum under a point as a table plus a plot

Pixel (column i, row j) sits at LPS ``(i * sx, j * sy, 0)`` where ``pixel size`` gives ``sx, sy``
(1 mm when absent).
"""

from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..mrml import segmentations, tables, volumes
from ..mrml._nodes import mrml_scene
from ..mrml.ras import points_lps_to_ras, points_ras_to_lps
from ..progress import ProgressCallback
from .container import default_rgb_bands, rgb_composite
from .envi_header import EnviHeader
from .images import image_from_cube, pixel_spacing
from .labels import Labels
from .load import Hyperspectral, load_hyperspectral

WAVELENGTHS = "hsi.wavelengths"
UNITS = "hsi.wavelength_units"
BAND_NAMES = "hsi.band_names"


def load_into_scene(
    scene,
    path: str | os.PathLike,
    *,
    name: str | None = None,
    calibrate: bool = False,
    apply_procedures: bool = True,
    progress: ProgressCallback | None = None,
    **options,
) -> dict:
    """Read a ``.hsi`` or ENVI cube into ``scene``: what dropping the file into Slicer does.

    Returns
    -------
    dict
        ``volume`` (vector volume node), ``segmentation`` (or None), ``rois`` (list of ROI nodes).
    """
    loaded = load_hyperspectral(
        path, calibrate=calibrate, apply_procedures=apply_procedures, progress=progress, **options
    )
    name = name or os.path.basename(os.fspath(path)).split(".")[0]
    volume = vector_volume_from_cube(scene, loaded, name)
    segmentation = segmentation_from_labels(scene, loaded.labels, loaded, f"{name} labels")
    rois = roi_nodes_from_boxes(scene, loaded.labels, loaded.header, name)
    return {"volume": volume, "segmentation": segmentation, "rois": rois}


def vector_volume_from_cube(scene, loaded: Hyperspectral, name: str = "Hyperspectral"):
    """A vector volume node of the cube; wavelengths and band names as node attributes."""
    image = sitk.JoinSeries(image_from_cube(loaded.cube, loaded.header))
    node = volumes.volume_node_from_image(scene, image, name)
    header = loaded.header
    if loaded.wavelengths is not None:
        node.SetAttribute(WAVELENGTHS, " ".join(repr(float(w)) for w in loaded.wavelengths))
        node.SetAttribute(UNITS, str(header.get("wavelength units", "nm")))
    if header.get("band names"):
        node.SetAttribute(BAND_NAMES, "|".join(header["band names"]))
    if loaded.path is not None:
        node.SetAttribute("hsi.source", os.fspath(loaded.path))
    return node


def wavelengths_of(node) -> np.ndarray | None:
    """The ``hsi.wavelengths`` attribute as an array (None when absent)."""
    text = node.GetAttribute(WAVELENGTHS)
    return None if not text else np.array([float(v) for v in text.split()])


def segmentation_from_labels(scene, labels: Labels, loaded: Hyperspectral, name: str = "Labels"):
    """One segment per class present in the classification (value > 0) and one per binary mask."""
    reference = sitk.JoinSeries(sitk.Image(loaded.cube.shape[1], loaded.cube.shape[0], sitk.sitkUInt8))
    reference.SetSpacing(pixel_spacing(loaded.header) + (1.0,))
    masks, colors = {}, {}

    def add(label: str, plane: np.ndarray, color) -> None:
        mask = sitk.GetImageFromArray(np.asarray(plane, np.uint8)[None])
        mask.CopyInformation(reference)
        masks[label] = mask
        colors[label] = tuple(int(c) for c in color)

    if labels.classification is not None:
        for value in np.unique(labels.classification):
            if value == 0:
                continue
            index = int(value)
            label = labels.class_names[index] if index < len(labels.class_names) else f"class {index}"
            color = labels.class_colors[index] if index < len(labels.class_colors) else (255, 255, 0)
            add(label, labels.classification == value, color)
    palette = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48)]
    for i, (label, mask) in enumerate(labels.masks.items()):
        add(label if label not in masks else f"{label} (mask)", mask, colors.get(label, palette[i % len(palette)]))
    if not masks:
        return None
    return segmentations.segmentation_node_from_masks(scene, masks, colors, name)


def roi_nodes_from_boxes(scene, labels: Labels, header: EnviHeader, name: str = "box") -> list:
    """A markups ROI per bounding box, covering its pixels (edges on pixel borders)."""
    sx, sy = pixel_spacing(header)
    nodes = []
    for box in labels.boxes:
        center_lps = [(box.left - 0.5 + box.width / 2) * sx, (box.top - 0.5 + box.height / 2) * sy, 0.0]
        node = mrml_scene(scene).AddNewNodeByClass("vtkMRMLMarkupsROINode", f"{name} {box.name}")
        node.SetCenter(*points_lps_to_ras([center_lps])[0])
        node.SetSize(box.width * sx, box.height * sy, 1.0)
        node.SetAttribute("hsi.box", box.name)
        nodes.append(node)
    return nodes


def box_from_roi_node(node, header: EnviHeader) -> tuple[float, float, float, float]:
    """``(left, top, width, height)`` in pixels of a ROI made by :func:`roi_nodes_from_boxes`."""
    sx, sy = pixel_spacing(header)
    center = points_ras_to_lps([node.GetCenter()])[0]
    size = node.GetSize()
    width, height = size[0] / sx, size[1] / sy
    return center[0] / sx + 0.5 - width / 2, center[1] / sy + 0.5 - height / 2, width, height


def cube_of(node) -> np.ndarray:
    """The node's voxels as ``(lines, samples, bands)`` (a copy)."""
    image = volumes.image_from_volume_node(node)
    array = sitk.GetArrayFromImage(image)
    return array[0] if array.ndim == 4 else array[0][..., None]


def band_volume(scene, node, band: int, name: str | None = None, output=None):
    """A scalar volume of one band (0-based) of a hyperspectral vector volume."""
    image = volumes.image_from_volume_node(node)
    bands = image.GetNumberOfComponentsPerPixel()
    if not 0 <= band < bands:
        raise ImgSuiteError(f"band {band} outside 0..{bands - 1}", node.GetName())
    scalar = sitk.VectorIndexSelectionCast(image, band)
    wavelengths = wavelengths_of(node)
    label = (
        f"{wavelengths[band]:.1f} {node.GetAttribute(UNITS) or ''}".strip()
        if wavelengths is not None
        else f"band {band}"
    )
    return volumes.volume_node_from_image(scene, scalar, name or f"{node.GetName()} {label}", node=output)


def rgb_volume(scene, node, bands: list[int] | None = None, name: str | None = None, output=None):
    """An RGB composite (3-component uint8 vector volume, shown in colour) from three bands."""
    image = volumes.image_from_volume_node(node)
    cube = cube_of(node)
    header = EnviHeader()
    wavelengths = wavelengths_of(node)
    if wavelengths is not None:
        header.set("wavelength", wavelengths)
        header["wavelength units"] = node.GetAttribute(UNITS) or "nm"
    chosen = bands if bands is not None else default_rgb_bands(header, cube.shape[2])
    if len(chosen) != 3 or not all(0 <= b < cube.shape[2] for b in chosen):
        raise ImgSuiteError(f"RGB bands {chosen} must be three of 0..{cube.shape[2] - 1}", node.GetName())
    rgb = (rgb_composite(cube, header, list(chosen)) * 255).round().astype(np.uint8)
    out = sitk.GetImageFromArray(rgb[None], isVector=True)
    out.CopyInformation(image)
    return volumes.volume_node_from_image(scene, out, name or f"{node.GetName()} RGB", node=output)


def spectrum_at(node, point_ras) -> tuple[np.ndarray, np.ndarray]:
    """``(wavelengths or band numbers, values)`` of the pixel under a RAS point (nearest pixel)."""
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    node.GetRASToIJKMatrix(matrix)
    ijk = matrix.MultiplyPoint([*point_ras, 1.0])[:3]
    i, j, k = (int(round(v)) for v in ijk)
    data = node.GetImageData()
    dims = data.GetDimensions()
    if not (0 <= i < dims[0] and 0 <= j < dims[1] and 0 <= k < dims[2]):
        raise ImgSuiteError(f"point {tuple(round(v, 2) for v in point_ras)} is outside the cube", node.GetName())
    from vtkmodules.util import numpy_support

    scalars = numpy_support.vtk_to_numpy(data.GetPointData().GetScalars())
    components = data.GetNumberOfScalarComponents()
    values = scalars.reshape(dims[2], dims[1], dims[0], components)[k, j, i].astype(float)
    wavelengths = wavelengths_of(node)
    return (wavelengths if wavelengths is not None else np.arange(components, dtype=float)), values


def spectrum_plot(scene, node, point_ras, name: str = "Spectrum"):
    """A table (wavelength, value) and a plot chart of the spectrum under ``point_ras``; returns both."""
    x, y = spectrum_at(node, point_ras)
    units = node.GetAttribute(UNITS) or ("nm" if node.GetAttribute(WAVELENGTHS) else "")
    x_name = f"wavelength ({units})" if node.GetAttribute(WAVELENGTHS) else "band"
    table = tables.table_node_from_rows(scene, [x_name, "value"], [[float(a), float(b)] for a, b in zip(x, y)], name)
    chart = tables.plot_from_table(scene, table, x_name, ["value"], f"{name} plot")
    return table, chart
