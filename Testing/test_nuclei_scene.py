"""Issue 20 item 7: a nuclei run in the Slicer scene (real MRML): every image and frame, the combined table, and
the verification overlay as segmentations whose segments are the table's cells."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from SlicerImgSuite.segmentation.nuclei_job import NucleiOptions, analyze_nuclei

CZI = "CD_s_1_t_3_c_2_z_5"  # 3 frames, 2 channels, 5 planes


@pytest.fixture(scope="module")
def run(nuclei_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    results, warnings = analyze_nuclei(nuclei_inputs, out, NucleiOptions(track=True))
    with open(out / "cells.csv", newline="") as f:
        cells = list(csv.DictReader(f))
    return out, results, warnings, cells


def _ids(cells, image, frame):
    return sorted(int(c["cell_id"]) for c in cells if c["image"] == image and int(c["frame"]) == frame)


def _segments(node):
    segmentation = node.GetSegmentation()
    ids = [segmentation.GetNthSegmentID(k) for k in range(segmentation.GetNumberOfSegments())]
    return ids, [segmentation.GetSegment(i).GetName() for i in ids]


def _tag(segment, name: str) -> str:
    from vtkmodules.vtkCommonCore import reference

    value = reference("")
    assert segment.GetTag(name, value), name
    return str(value)


def _exported(node, volume):
    """The segments written into a labelmap on ``volume``'s grid by Slicer's own export (an independent path
    from our label image), mapped back to cell ids through the segment names."""
    import slicer
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonCore import vtkStringArray

    scene = volume.GetScene()
    label = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    ids = vtkStringArray()
    segment_ids, names = _segments(node)
    for i in segment_ids:
        ids.InsertNextValue(i)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(node, ids, label, volume)
    image = label.GetImageData()
    array = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(image.GetDimensions()[::-1])
    scene.RemoveNode(label)
    lookup = np.zeros(len(names) + 1, np.int64)
    lookup[1:] = [int(n) for n in names]  # export value k = the k-th segment
    return lookup[array]


def test_every_image_and_frame_has_a_segmentation_of_the_table_cells(mrml, run):
    from SlicerImgSuite.segmentation.nodes import run_to_scene

    out, results, _, cells = run
    added = run_to_scene(mrml, results)
    still = added["img2d"]
    assert still.segmentation.GetScene() is mrml.scene and still.browser is None
    ids, names = _segments(still.segmentation)
    want = _ids(cells, "img2d", 0)
    assert len(want) > 20 and ids == names == [str(i) for i in want]  # one segment per cells.csv row
    labels = tifffile.imread(out / "img2d_labels.tif")
    np.testing.assert_array_equal(_exported(still.segmentation, still.volume)[0], labels)

    movie = added[CZI]
    labels = tifffile.imread(out / f"{CZI}_labels.tif")  # (T, Z, Y, X)
    sequence = movie.segmentation
    assert sequence.IsA("vtkMRMLSequenceNode") and sequence.GetNumberOfDataNodes() == labels.shape[0] == 3
    assert movie.browser.IsSynchronizedSequenceNode(sequence)
    tracks = {(int(c["frame"]), int(c["cell_id"])): c["track_id"] for c in cells if c["image"] == CZI}
    for t in range(3):
        node = sequence.GetNthDataNode(t)
        ids, names = _segments(node)
        want = _ids(cells, CZI, t)
        assert len(want) > 5 and ids == names == [str(i) for i in want]
        segmentation = node.GetSegmentation()
        for i in ids:  # the track id travels with the segment; its colour follows the track
            segment = segmentation.GetSegment(i)
            assert _tag(segment, "track_id") == tracks[(t, int(i))] and _tag(segment, "cell_id") == i
        volume = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        volume.Copy(movie.volume.GetNthDataNode(t))  # the frame's geometry (z-stack, micrometre spacing)
        np.testing.assert_array_equal(_exported(node, volume), labels[t])
        mrml.scene.RemoveNode(volume)
    colors = {}
    for t in range(3):
        segmentation = sequence.GetNthDataNode(t).GetSegmentation()
        for i in _segments(sequence.GetNthDataNode(t))[0]:
            segment = segmentation.GetSegment(i)
            colors.setdefault(_tag(segment, "track_id"), set()).add(tuple(round(c, 3) for c in segment.GetColor()))
    assert all(len(c) == 1 for c in colors.values())


def test_the_browser_shows_each_frame_and_the_scene_file_keeps_every_frame(mrml, run, tmp_path):
    from SlicerImgSuite.mrml.mrb import load_mrb, save_mrb
    from SlicerImgSuite.segmentation.nodes import run_to_scene

    _, results, _, cells = run
    movie = run_to_scene(mrml, [r for r in results if r.stem == CZI])[CZI]
    for t in (2, 0):  # browsing: the proxy segmentation in the scene holds the selected frame's cells
        movie.browser.SetSelectedItemNumber(t)
        proxy = movie.browser.GetProxyNode(movie.segmentation)
        assert proxy.GetScene() is mrml.scene and proxy.GetDisplayNode() is not None
        assert _segments(proxy)[1] == [str(i) for i in _ids(cells, CZI, t)]
        assert movie.browser.GetProxyNode(movie.labels).IsA("vtkMRMLLabelMapVolumeNode")
    loaded = load_mrb(save_mrb(mrml, tmp_path / "run.mrb"))
    scene = getattr(loaded, "scene", loaded)
    sequence = scene.GetFirstNodeByName(f"{CZI} cells")
    assert sequence.IsA("vtkMRMLSequenceNode") and sequence.GetNumberOfDataNodes() == 3
    for t in range(3):
        assert _segments(sequence.GetNthDataNode(t))[1] == [str(i) for i in _ids(cells, CZI, t)]


def test_the_whole_run_in_the_scene_with_its_table_and_the_text_for_the_user(mrml, run):
    from SlicerImgSuite.segmentation.nodes import nuclei_run_to_scene

    out, results, _, cells = run
    text = nuclei_run_to_scene(mrml, results, ["x.txt: skipped"], out)
    scene = mrml.scene
    table = scene.GetFirstNodeByName("Nuclei cells (all images and frames)")
    assert table.GetTable().GetNumberOfRows() == len(cells)
    counts = {c: scene.GetNumberOfNodesByClass(c) for c in ("vtkMRMLSequenceNode", "vtkMRMLSequenceBrowserNode")}
    assert counts == {"vtkMRMLSequenceNode": 3, "vtkMRMLSequenceBrowserNode": 1}  # image, labels, cells of the movie
    for kind in ("vtkMRMLSegmentationNode", "vtkMRMLLabelMapVolumeNode"):  # the still's and the movie's proxy
        assert scene.GetNumberOfNodesByClass(kind) == 2, kind
    assert scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 4  # both images, both labelmaps (subclass)
    assert scene.GetNumberOfNodesByClass("vtkMRMLPlotChartNode") == 1
    by_stem = {r.stem: r.counts for r in results}
    assert f"img2d: {by_stem['img2d'][0]} nuclei" in text and f"{CZI}: {', '.join(map(str, by_stem[CZI]))}" in text
    assert "warning: x.txt: skipped" in text and str(out) in text


def test_the_8bit_threshold_conversion_is_shown(mrml, shared_data, tmp_path):
    from SlicerImgSuite.segmentation.nodes import nuclei_run_to_scene

    src = shared_data / "dsb2018-nuclei-stardist-sample" / "img2d.tif"  # uint16 pixels
    options = NucleiOptions(method="threshold", threshold_8bit=0.1)
    results, warnings = analyze_nuclei(src, tmp_path / "out", options)
    text = nuclei_run_to_scene(mrml, results, warnings, tmp_path / "out")
    assert "img2d: --threshold-8bit 0.1 = 25.7 in image units" in text
    assert results[0].counts[0] > 0
