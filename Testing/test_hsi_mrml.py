"""Hyperspectral cubes in a real slicer-core MRML scene: vector volume, segmentation, ROIs, spectra."""

from __future__ import annotations

import numpy as np

from SlicerImgSuite.hsi.container import write_hsi
from SlicerImgSuite.hsi.labels import Box, Labels
from SlicerImgSuite.mrml.ras import points_lps_to_ras
from SlicerImgSuite.mrml.segmentations import masks_from_segmentation_node
from SlicerImgSuite.mrml.volumes import image_from_volume_node

WAVELENGTHS = [450.0, 550.0, 650.0, 750.0, 850.0]


def make_container(path):
    rng = np.random.default_rng(3)
    cube = rng.integers(0, 4000, size=(7, 9, 5), dtype=np.uint16)
    classes = np.zeros((7, 9), np.uint8)
    classes[1:3, 2:5] = 1
    classes[4:6, 6:8] = 2
    labels = Labels(
        classes,
        ["none", "leaf", "soil"],
        [(0, 0, 0), (0, 200, 0), (120, 80, 40)],
        {"spot": classes == 2},
        [Box("leaf", 2, 1, 3, 2)],
    )
    write_hsi(path, cube, labels=labels, wavelength=WAVELENGTHS, pixel_size=["0.5", "0.25", "units=mm"], previews=())
    return cube, classes


def test_hsi_loads_as_vector_volume_segmentation_and_rois(tmp_path, mrml):
    from SlicerImgSuite.hsi.nodes import (
        box_from_roi_node,
        load_into_scene,
        spectrum_at,
        spectrum_plot,
        wavelengths_of,
    )

    cube, classes = make_container(tmp_path / "leaf.hsi")
    nodes = load_into_scene(mrml, tmp_path / "leaf.hsi")
    volume = nodes["volume"]
    assert volume.GetClassName() == "vtkMRMLVectorVolumeNode" and volume.GetName() == "leaf"
    assert volume.GetImageData().GetNumberOfScalarComponents() == 5
    np.testing.assert_array_equal(wavelengths_of(volume), WAVELENGTHS)
    assert volume.GetAttribute("hsi.wavelength_units") == "nm"
    image = image_from_volume_node(volume)
    assert image.GetSpacing()[:2] == (0.5, 0.25)
    import SimpleITK as sitk

    np.testing.assert_array_equal(sitk.GetArrayFromImage(image)[0], cube)

    reference = sitk.JoinSeries(sitk.Image(9, 7, sitk.sitkUInt8))
    reference.SetSpacing((0.5, 0.25, 1.0))
    masks = masks_from_segmentation_node(nodes["segmentation"], reference)
    assert set(masks) == {"leaf", "soil", "spot"}
    np.testing.assert_array_equal(sitk.GetArrayFromImage(masks["leaf"])[0], classes == 1)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(masks["spot"])[0], classes == 2)
    segment = (
        nodes["segmentation"]
        .GetSegmentation()
        .GetSegment(nodes["segmentation"].GetSegmentation().GetSegmentIdBySegmentName("soil"))
    )
    np.testing.assert_allclose(segment.GetColor(), (120 / 255, 80 / 255, 40 / 255))

    (roi,) = nodes["rois"]
    assert roi.GetClassName() == "vtkMRMLMarkupsROINode"
    np.testing.assert_allclose(box_from_roi_node(roi, _header(tmp_path / "leaf.hsi")), (2, 1, 3, 2))
    # the ROI's RAS centre is the LPS centre of pixels columns 2..4, rows 1..2, flipped
    np.testing.assert_allclose(roi.GetCenter(), points_lps_to_ras([[3 * 0.5, 1.5 * 0.25, 0]])[0])

    point_ras = points_lps_to_ras([[6 * 0.5, 4 * 0.25, 0]])[0]  # column 6, row 4
    wavelengths, values = spectrum_at(volume, point_ras)
    np.testing.assert_array_equal(values, cube[4, 6])
    table, chart = spectrum_plot(mrml, volume, point_ras)
    assert table.GetNumberOfRows() == 5 and chart.GetClassName() == "vtkMRMLPlotChartNode"


def test_band_and_rgb_views(tmp_path, mrml):
    from SlicerImgSuite.hsi.nodes import band_volume, load_into_scene, rgb_volume

    cube, _ = make_container(tmp_path / "leaf.hsi")
    volume = load_into_scene(mrml, tmp_path / "leaf.hsi")["volume"]
    band = band_volume(mrml, volume, 3)
    import SimpleITK as sitk

    np.testing.assert_array_equal(sitk.GetArrayFromImage(image_from_volume_node(band))[0], cube[:, :, 3])
    assert "750.0 nm" in band.GetName()
    rgb = rgb_volume(mrml, volume, [2, 1, 0])
    array = sitk.GetArrayFromImage(image_from_volume_node(rgb))[0]
    assert array.shape == (7, 9, 3) and array.dtype == np.uint8
    brightest = np.unravel_index(np.argmax(cube[:, :, 2]), cube.shape[:2])
    assert array[brightest][0] == 255  # red channel = band 2, stretched


def test_cube_survives_a_scene_bundle(tmp_path, mrml):
    from SlicerImgSuite.hsi.nodes import load_into_scene, wavelengths_of
    from SlicerImgSuite.mrml.mrb import load_mrb, save_mrb

    cube, _ = make_container(tmp_path / "leaf.hsi")
    load_into_scene(mrml, tmp_path / "leaf.hsi")
    save_mrb(mrml, tmp_path / "scene.mrb")
    loaded = load_mrb(tmp_path / "scene.mrb")
    (volume,) = [n for n in _nodes(loaded.scene, "vtkMRMLVectorVolumeNode")]
    import SimpleITK as sitk

    np.testing.assert_array_equal(sitk.GetArrayFromImage(image_from_volume_node(volume))[0], cube)
    np.testing.assert_array_equal(wavelengths_of(volume), WAVELENGTHS)
    assert len(_nodes(loaded.scene, "vtkMRMLMarkupsROINode")) == 1


def _nodes(scene, class_name):
    return [scene.GetNthNodeByClass(i, class_name) for i in range(scene.GetNumberOfNodesByClass(class_name))]


def _header(path):
    from SlicerImgSuite.hsi.container import open_hsi

    return open_hsi(path).header


def test_demo_step(tmp_path, mrml):
    from SlicerImgSuite.demo import DemoContext
    from SlicerImgSuite.demo.report import Report
    from SlicerImgSuite.hsi import demo

    report = Report(tmp_path, "demo")
    demo.run(DemoContext(tmp_path, None, mrml, report, None))
    (section,) = report.sections
    values = dict(section.table[1])
    # the scan's lamp dims by 10 %: the white interpolated line by line removes that error
    assert values["mean |reflectance error|, white interpolated line by line"] < 0.005
    assert values["mean |reflectance error|, white before only"] > 0.02
    assert values["segments in Slicer scene"] == 5 and values["ROIs in Slicer scene"] == 1
    assert all(path.stat().st_size > 10_000 for path, _ in section.images)
    assert "Byte-exact read back: True" in section.text
