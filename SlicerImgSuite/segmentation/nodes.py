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
    from ..mrml.tables import table_node_from_rows
    from ..mrml.volumes import volume_node_from_image

    volume = volume_node_from_image(scene, _image(image, pixel_size), f"{name} image")
    ids = [int(i) for i in np.unique(labels) if i > 0]
    lab = _image(labels.astype(np.uint16 if labels.max() < 65536 else np.uint32), pixel_size)
    segmentation = segmentation_node_from_labels(scene, lab, {i: f"nucleus {i}" for i in ids}, name=f"{name} nuclei")
    table = table_node_from_rows(scene, header, rows, f"{name} measurements")
    return NucleiNodes(volume, segmentation, table, _area_plot(scene, table, header, name, plot_column))


def _area_plot(scene, table, header: list[str], name: str, column: str | None = None):
    """One point per nucleus: ``column`` (default: the first ``*_mean``) against the nucleus area."""
    from ..mrml.tables import plot_from_table

    column = column or next((h for h in header if h.endswith("_mean")), header[-1])
    plot = plot_from_table(scene, table, "area_px", [column], f"{name}: {column} vs area")
    for k in range(plot.GetNumberOfPlotSeriesNodes()):  # markers, no lines
        series = plot.GetNthPlotSeriesNode(k)
        series.SetMarkerStyle(series.MarkerStyleCircle)
        series.SetLineStyle(series.LineStyleNone)
    return plot


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


@dataclass
class RunNodes:
    """What :func:`run_to_scene` adds for one image. A still image: a volume, a labelmap and a segmentation node;
    a time-lapse: a sequence of each (one item per frame) under one ``browser``."""

    volume: object
    labels: object
    segmentation: object  # segments named by the cells table's ``cell_id`` (= the label value)
    browser: object = None


def _sequence(mscene, name: str, nodes):
    """A sequence node holding ``nodes`` as items 0, 1, ... (each is copied; one in the scene is removed)."""
    sequence = mscene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    sequence.SetIndexName("frame")
    sequence.SetIndexUnit("")
    for t, node in enumerate(nodes):
        sequence.SetDataNodeAtValue(node, str(t))
        if node.GetScene() is not None:
            mscene.RemoveNode(node)
    return sequence


def _cells(result) -> list[dict[int, int | None]]:
    """Per frame: cell id -> track id (None without tracking), from the result's table rows."""
    label = result.header.index("label")
    track = result.header.index("track_id") if "track_id" in result.header else None
    frames: list[dict[int, int | None]] = [{} for _ in result.counts]
    for row in result.rows:
        frames[int(row[0])][int(row[label])] = None if track is None else int(row[track])
    return frames


def _cells_segmentation(scene, labels: sitk.Image, cells: dict[int, int | None], name: str, add: bool):
    """The verification overlay as a segmentation: one segment per table row, ID and name = ``cell_id``,
    coloured by track when tracked (a cell keeps its colour from frame to frame); tags ``cell_id``/``track_id``."""
    from ..mrml.segmentations import _default_color, segmentation_node_from_label_layer

    colors = {c: _default_color(t - 1) for c, t in cells.items() if t is not None}
    node = segmentation_node_from_label_layer(scene, labels, {c: str(c) for c in cells}, colors, name, add)
    segmentation = node.GetSegmentation()
    for cell, track in cells.items():
        segment = segmentation.GetSegment(str(cell))
        segment.SetTag("cell_id", str(cell))
        if track is not None:
            segment.SetTag("track_id", str(track))
    return node


def run_to_scene(scene, results, channel: str | int | None = None) -> dict[str, RunNodes]:
    """Every image and frame of a nuclei run, browsable in the scene.

    A still image becomes a volume (the nuclear channel), a labelmap (``<stem>_labels.tif``) and a segmentation
    whose segments are the nuclei, named by the ``cell_id`` of ``cells.csv`` (the verification overlay). A
    time-lapse becomes a sequence of each, one item per frame, synchronised under one sequence browser: real
    MRML keeps segmentation nodes as sequence items, so each frame keeps its own segments (their number changes
    from frame to frame), which one labelmap sequence converted on display could not name. Returns the nodes per
    image stem.
    """
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
        cells, stem, still = _cells(result), result.stem, len(frames) == 1
        segmentations = (
            _cells_segmentation(mscene, lab, cells[t], f"{stem} cells", add=still) for t, lab in enumerate(labels)
        )
        if still:
            added[stem] = RunNodes(
                volume_node_from_image(scene, frames[0], stem),
                volume_node_from_image(scene, labels[0], f"{stem} nuclei", labelmap=True),
                next(segmentations),
            )
            continue
        volumes = _sequence(
            mscene, stem, (volume_node_from_image(scene, f, f"{stem} {t}") for t, f in enumerate(frames))
        )
        labelmaps = _sequence(
            mscene,
            f"{stem} nuclei",
            (volume_node_from_image(scene, lab, f"{stem} nuclei {t}", labelmap=True) for t, lab in enumerate(labels)),
        )
        cells_sequence = _sequence(mscene, f"{stem} cells", segmentations)
        browser = mscene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", f"{stem} browser")
        browser.SetAndObserveMasterSequenceNodeID(volumes.GetID())
        browser.AddSynchronizedSequenceNode(labelmaps)
        browser.AddSynchronizedSequenceNode(cells_sequence)
        added[stem] = RunNodes(volumes, labelmaps, cells_sequence, browser)
    return added


def nuclei_run_to_scene(scene, results, warnings: list[str], output_folder, channel: str | int | None = None) -> str:
    """Show a finished nuclei run (:func:`~.nuclei_job.analyze_nuclei`) in Slicer: every image and frame
    (:func:`run_to_scene`), the combined per-cell table and its intensity-vs-area plot. Returns the text for
    the user: nuclei per frame, how ``--threshold-8bit`` became image units, the warnings, the output folder."""
    table = cells_table_to_scene(scene, results, "Nuclei cells (all images and frames)")
    header = [table.GetTable().GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    _area_plot(scene, table, header, "Nuclei cells")
    run_to_scene(scene, results, channel)
    from .nuclei_job import report_lines

    lines = [*report_lines(results), *(f"warning: {w}" for w in warnings)]
    return "\n".join([*lines, f"outputs in {output_folder}"])
