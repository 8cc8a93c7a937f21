"""Results into a Slicer scene (through the mrml adapters): CT masks as segments, nuclei as segments + table + plot."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk


@dataclass
class NucleiNodes:
    """The nodes :func:`nuclei_to_scene` adds."""

    volume: object
    segmentation: object
    table: object
    plot: object


def _image(array: np.ndarray, pixel_size: tuple[float, ...] | None) -> sitk.Image:
    array = np.asarray(array)
    if pixel_size is not None and len(pixel_size) < 3:
        pixel_size = (1.0, *pixel_size)
    image = sitk.GetImageFromArray(array[None] if array.ndim == 2 else array)  # Slicer volumes are 3D
    if pixel_size is not None:
        image.SetSpacing([float(s) for s in reversed(pixel_size)])
    return image


def nuclei_to_scene(
    scene,
    image: np.ndarray,
    labels: np.ndarray,
    header: list[str],
    rows: list[list],
    name: str = "Nuclei",
    pixel_size: tuple[float, ...] | None = None,
    plot_column: str | None = None,
) -> NucleiNodes:
    """Add the nuclear channel as a volume, each nucleus as a segment, the measurements as a table and a plot.

    Parameters
    ----------
    image, labels : ndarray
        Nuclear channel and instance labels, 2D (Y, X) or 3D (Z, Y, X).
    header, rows :
        Measurements from :func:`SlicerImgSuite.segmentation.measure.measure_nuclei`.
    pixel_size : tuple of float, optional
        Pixel size per array axis (micrometres shown as mm in Slicer).
    plot_column : str, optional
        Column plotted against nucleus area (default: the first ``*_mean`` column).
    """
    from ..mrml.segmentations import segmentation_node_from_labels
    from ..mrml.tables import plot_from_table, table_node_from_rows
    from ..mrml.volumes import volume_node_from_image

    volume = volume_node_from_image(scene, _image(image, pixel_size), f"{name} image")
    ids = [int(i) for i in np.unique(labels) if i > 0]
    lab = _image(labels.astype(np.uint16 if labels.max() < 65536 else np.uint32), pixel_size)
    segmentation = segmentation_node_from_labels(scene, lab, {i: f"nucleus {i}" for i in ids}, name=f"{name} nuclei")
    table = table_node_from_rows(scene, header, rows, f"{name} measurements")
    column = plot_column or next((h for h in header if h.endswith("_mean")), header[-1])
    plot = plot_from_table(scene, table, "area_px", [column], f"{name}: {column} vs area")
    for k in range(plot.GetNumberOfPlotSeriesNodes()):  # one point per nucleus: markers, no lines
        series = plot.GetNthPlotSeriesNode(k)
        series.SetMarkerStyle(series.MarkerStyleCircle)
        series.SetLineStyle(series.LineStyleNone)
    return NucleiNodes(volume, segmentation, table, plot)


def ct_masks_to_scene(scene, ct: sitk.Image, masks: dict[str, sitk.Image], name: str = "CT threshold"):
    """Add CT masks as one segmentation node (one segment each) and return it."""
    from ..mrml.segmentations import segmentation_node_from_masks

    colors = {"body": (177, 122, 101), "lung": (0, 151, 206), "bone": (241, 214, 145)}
    return segmentation_node_from_masks(scene, masks, {k: v for k, v in colors.items() if k in masks}, name=name)


def cells_table_to_scene(scene, results, name: str = "Nuclei cells"):
    """The run's combined per-cell table (``cells.csv``: every nucleus of every frame of every image) as one table
    node; a value an image lacks is NaN, so the number columns stay numeric."""
    from ..mrml.tables import table_node_from_rows
    from .nuclei_outputs import combined_table

    header, rows = combined_table([(r.stem, r.header, r.rows) for r in results])
    return table_node_from_rows(scene, header, [[float("nan") if v == "" else v for v in row] for row in rows], name)


def _sequence(mscene, scene, images: list[sitk.Image], name: str, labelmap: bool):
    from ..mrml.volumes import volume_node_from_image

    sequence = mscene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    sequence.SetIndexName("frame")
    sequence.SetIndexUnit("")
    for t, image in enumerate(images):
        node = volume_node_from_image(scene, image, f"{name} {t}", labelmap=labelmap)
        sequence.SetDataNodeAtValue(node, str(t))
        mscene.RemoveNode(node)
    return sequence


def run_to_scene(scene, results, channel: str | int | None = None) -> dict[str, list]:
    """Every image of a nuclei run, browsable in the scene: a still image as a volume plus its nuclei as a
    labelmap (the overlay's outlines); a time-lapse as a sequence of volumes and a sequence of labelmaps under
    one sequence browser (one item per frame). Returns the added nodes per image stem."""
    from ..mrml.volumes import volume_node_from_image
    from .microscopy import read_microscopy

    mscene = scene.scene if hasattr(scene, "scene") else scene
    added = {}
    for result in results:
        image = read_microscopy(result.source)
        nuclear = image.data[:, image.channel_index(channel)]  # (T, Z, Y, X)
        stack = nuclear.shape[1] > 1
        size = image.pixel_size_um if stack else image.pixel_size_um[1:]
        frames = [_image(plane if stack else plane[0], size) for plane in nuclear]
        labels = [_image(lab.astype(np.uint16 if lab.max() < 65536 else np.uint32), size) for lab in result.labels]
        if len(frames) == 1:
            added[result.stem] = [
                volume_node_from_image(scene, frames[0], result.stem),
                volume_node_from_image(scene, labels[0], f"{result.stem} nuclei", labelmap=True),
            ]
            continue
        volumes = _sequence(mscene, scene, frames, result.stem, labelmap=False)
        labelmaps = _sequence(mscene, scene, labels, f"{result.stem} nuclei", labelmap=True)
        browser = mscene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", f"{result.stem} browser")
        browser.SetAndObserveMasterSequenceNodeID(volumes.GetID())
        browser.AddSynchronizedSequenceNode(labelmaps)
        added[result.stem] = [volumes, labelmaps, browser]
    return added
