"""Round trips through slicer-core's real MRML: volumes, labelmaps, segmentations, markups, transforms, .mrb."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.mrml import markups, mrb, segmentations, tables, transforms, volumes
from SlicerImgSuite.mrml.ras import points_lps_to_ras


def _oblique_image(pixel=np.float32):
    array = np.random.default_rng(1).random((6, 7, 8)).astype(pixel)
    image = sitk.GetImageFromArray(array)
    image.SetOrigin((12.5, -30.0, 7.0))
    image.SetSpacing((0.7, 1.3, 2.5))
    image.SetDirection(sitk.VersorTransform((0.3, -0.5, 1.0), 0.6).GetMatrix())
    return image


def test_volume_round_trip_keeps_voxels_and_oblique_geometry(mrml):
    image = _oblique_image()
    node = volumes.volume_node_from_image(mrml, image, "CT")
    assert node.IsA("vtkMRMLScalarVolumeNode")
    back = volumes.image_from_volume_node(node)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image))
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), atol=1e-9)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-9)


def test_volume_node_holds_ras(mrml):
    image = _oblique_image()
    node = volumes.volume_node_from_image(mrml, image, "CT")
    # the RAS position of voxel (1, 2, 3) is the LPS position with x and y negated
    lps = np.array(image.TransformIndexToPhysicalPoint((1, 2, 3)))
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    m = vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    ras = m.MultiplyPoint((1, 2, 3, 1))[:3]
    np.testing.assert_allclose(ras, lps * [-1, -1, 1], atol=1e-9)


def test_volume_under_a_transform_comes_out_where_slicer_shows_it(mrml):
    """A volume placed under a transform (a registration result) was read at its untransformed place."""
    image = _oblique_image()
    node = volumes.volume_node_from_image(mrml, image, "moving")
    rigid = sitk.Euler3DTransform((5, 0, -2), 0.1, -0.2, 0.3, (4, 5, 6))
    node.SetAndObserveTransformNodeID(transforms.transform_node_from_sitk(mrml, rigid, "R").GetID())
    back = volumes.image_from_volume_node(node)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image))
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    for index in ((0, 0, 0), (7, 6, 5), (1, 2, 3)):  # the voxel's position in the views (world RAS), as LPS
        m = vtkMatrix4x4()
        node.GetIJKToRASMatrix(m)
        local = m.MultiplyPoint((*index, 1))[:3]
        world = node.GetParentTransformNode().GetTransformToParent().TransformPoint(local)
        np.testing.assert_allclose(back.TransformIndexToPhysicalPoint(index), np.multiply(world, [-1, -1, 1]),
                                   atol=1e-9)
    field = sitk.Image([4, 4, 4], sitk.sitkVectorFloat64, 3)
    grid = transforms.transform_node_from_sitk(mrml, sitk.DisplacementFieldTransform(field), "G")
    node.SetAndObserveTransformNodeID(grid.GetID())
    with pytest.raises(ImgSuiteError, match="non-linear transform 'G'"):
        volumes.image_from_volume_node(node)


def test_landmarks_under_a_transform_come_out_where_slicer_shows_them(mrml):
    node = markups.fiducial_node_from_points(mrml, [[1.0, 2.0, 3.0]])
    shift = transforms.transform_node_from_sitk(mrml, sitk.TranslationTransform(3, (10.0, 0.0, 0.0)), "T")
    node.SetAndObserveTransformNodeID(shift.GetID())  # "from parent" +10 mm x: shown 10 mm the other way
    np.testing.assert_allclose(markups.points_from_fiducial_node(node)[0], [[-9.0, 2.0, 3.0]], atol=1e-9)


def test_empty_segment_of_a_transformed_segmentation_exports_as_an_empty_mask(mrml):
    """Slicer exports no voxels at all for it: this was an AttributeError (a traceback in the modules)."""
    reference = sitk.Image([12, 10, 6], sitk.sitkUInt8)
    box = np.zeros((6, 10, 12), np.uint8)
    box[2:4, 3:6, 4:8] = 1
    masks = {"empty": sitk.Image(reference), "box": sitk.GetImageFromArray(box)}
    node = segmentations.segmentation_node_from_masks(mrml, masks, reference=reference)
    shift = transforms.transform_node_from_sitk(mrml, sitk.TranslationTransform(3, (-2.0, 0.0, 0.0)), "T")
    node.SetAndObserveTransformNodeID(shift.GetID())  # shown 2 mm (2 voxels) further along x
    back = segmentations.masks_from_segmentation_node(node, reference)
    assert sitk.GetArrayViewFromImage(back["empty"]).sum() == 0
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back["box"]), np.roll(box, 2, axis=2))


def test_volume_node_refuses_4d_and_complex_images(mrml):
    """A 4D image raised a bare ValueError; a complex one lost its imaginary part without a word."""
    cube = sitk.JoinSeries([_oblique_image(), _oblique_image()])
    with pytest.raises(ImgSuiteError, match="not 4D"):
        volumes.volume_node_from_image(mrml, cube, "4D")
    complex_image = sitk.RealAndImaginaryToComplex(_oblique_image(), _oblique_image())
    with pytest.raises(ImgSuiteError, match="complex"):
        volumes.volume_node_from_image(mrml, complex_image, "FFT")


def test_labelmap_and_vector_volumes(mrml):
    labels = sitk.Cast(_oblique_image() * 4, sitk.sitkUInt8)
    node = volumes.volume_node_from_image(mrml, labels, "labels", labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(volumes.image_from_volume_node(node)), sitk.GetArrayViewFromImage(labels)
    )
    vector = sitk.Compose([_oblique_image(), _oblique_image() * 2, _oblique_image() * 3])
    vnode = volumes.volume_node_from_image(mrml, vector, "rgb")
    assert vnode.IsA("vtkMRMLVectorVolumeNode")
    back = volumes.image_from_volume_node(vnode)
    assert back.GetNumberOfComponentsPerPixel() == 3
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(vector))


def test_segmentation_round_trip_names_colours_overlaps(mrml, phantom):
    masks = {k: phantom.masks[k] for k in ("GTV", "PTV", "RING", "SPINAL_CORD")}  # GTV inside PTV: overlap
    node = segmentations.segmentation_node_from_masks(mrml, masks, phantom.colors, "Phantom")
    assert node.GetSegmentation().GetNumberOfSegments() == 4
    back = segmentations.masks_from_segmentation_node(node, phantom.ct)
    assert list(back) == list(masks)
    for name, mask in masks.items():
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back[name]), sitk.GetArrayViewFromImage(mask))
    assert segmentations.segment_colors(node)["GTV"] == phantom.colors["GTV"]
    assert node.GetSegmentation().CreateRepresentation("Closed surface")


def test_segmentation_from_label_image(mrml):
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1:3, 1:3, 1:4] = 1
    labels[0, 4, 5] = 2
    image = sitk.GetImageFromArray(labels)
    node = segmentations.segmentation_node_from_labels(mrml, image, {1: "A", 2: "B"})
    back = segmentations.masks_from_segmentation_node(node, image)
    assert int(sitk.GetArrayViewFromImage(back["A"]).sum()) == 12
    assert int(sitk.GetArrayViewFromImage(back["B"]).sum()) == 1


def test_label_layer_keeps_labels_over_65535_apart(mrml):
    """A cell left out of the table (65537) wrapped onto cell 1 in a uint16 layer: cell 1 showed both."""
    labels = np.zeros((1, 20, 20), np.int32)
    labels[0, 2:5, 2:5] = 1
    labels[0, 10:15, 10:15] = 65537
    image = sitk.GetImageFromArray(labels)
    node = segmentations.segmentation_node_from_label_layer(mrml, image, {1: "1"})
    back = segmentations.masks_from_segmentation_node(node, image)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back["1"]), labels == 1)


@pytest.mark.parametrize("suffix", [".mrk.json", ".fcsv"])
def test_markups_files_round_trip_in_lps(mrml, tmp_path, suffix):
    points = np.array([[10.0, -20.5, 33.25], [-1.0, 2.0, -3.0]])
    node = markups.fiducial_node_from_points(mrml, points, ["tip", "base"], "Landmarks")
    # the node holds RAS
    np.testing.assert_allclose(node.GetNthControlPointPosition(0), points_lps_to_ras(points)[0])
    path = tmp_path / f"landmarks{suffix}"
    markups.write_markups(node, path)
    assert "LPS" in path.read_text()
    again = markups.read_markups(mrml, path)
    back, labels = markups.points_from_fiducial_node(again)
    np.testing.assert_allclose(back, points, atol=1e-6)
    assert labels == ["tip", "base"]


def test_markups_in_a_micrometre_scene_come_into_mrml_in_mm(mrml, tmp_path):
    """Slicer's reader keeps a coordinateUnits "um" file's numbers: read_markups gives mm (as MRML holds them)."""
    import json

    point = {"id": "1", "label": "F-1", "position": [-10000.0, -20000.0, 30000.0]}
    item = {"type": "Fiducial", "coordinateSystem": "LPS", "coordinateUnits": "um", "controlPoints": [point]}
    path = tmp_path / "um.mrk.json"
    path.write_text(json.dumps({"markups": [item]}))
    back, _ = markups.points_from_fiducial_node(markups.read_markups(mrml, path))
    np.testing.assert_allclose(back, [[-10.0, -20.0, 30.0]], atol=1e-9)


def test_markups_bad_files(mrml, tmp_path):
    with pytest.raises(ImgSuiteError, match="no such markups file"):
        markups.read_markups(mrml, tmp_path / "none.fcsv")
    with pytest.raises(ImgSuiteError, match=r"\.mrk\.json or \.fcsv"):
        markups.read_markups(mrml, tmp_path / "x.txt")


def test_linear_transform_direction_with_a_point_that_moves(mrml):
    # ITK: fixed point p maps to moving point p + (10, 0, 0) LPS. Slicer: that is "from parent".
    transform = sitk.TranslationTransform(3, (10.0, 0.0, 0.0))
    node = transforms.transform_node_from_sitk(mrml, transform, "T")
    assert node.IsA("vtkMRMLLinearTransformNode")
    p_lps = np.array([1.0, 2.0, 3.0])
    moved_ras = node.GetTransformFromParent().TransformPoint(points_lps_to_ras(p_lps)[0])
    np.testing.assert_allclose(moved_ras, points_lps_to_ras(p_lps + [10, 0, 0])[0], atol=1e-9)
    back = transforms.sitk_transform_from_node(node)
    np.testing.assert_allclose(back.TransformPoint(p_lps.tolist()), p_lps + [10, 0, 0], atol=1e-9)


def test_rigid_transform_round_trip(mrml):
    rigid = sitk.Euler3DTransform((5, 0, -2), 0.1, -0.2, 0.3, (4, 5, 6))
    back = transforms.sitk_transform_from_node(transforms.transform_node_from_sitk(mrml, rigid, "R"))
    for p in ([0, 0, 0], [30, -40, 50]):
        np.testing.assert_allclose(back.TransformPoint(p), rigid.TransformPoint(p), atol=1e-9)


def test_bspline_transform_round_trip(mrml):
    reference = _oblique_image()
    bspline = sitk.BSplineTransformInitializer(reference, [3, 3, 3])
    params = np.random.default_rng(0).normal(0, 2.0, len(bspline.GetParameters()))
    bspline.SetParameters(params.tolist())
    node = transforms.transform_node_from_sitk(mrml, bspline, "B")
    assert node.IsA("vtkMRMLBSplineTransformNode")
    back = transforms.sitk_transform_from_node(node)
    p = list(reference.TransformContinuousIndexToPhysicalPoint((3.2, 2.5, 4.1)))
    np.testing.assert_allclose(back.TransformPoint(p), bspline.TransformPoint(p), atol=1e-6)
    moved = np.array(bspline.TransformPoint(p))
    slicer_moved = node.GetTransformFromParent().TransformPoint(points_lps_to_ras(p)[0])
    np.testing.assert_allclose(slicer_moved, points_lps_to_ras(moved)[0], atol=1e-4)


def test_displacement_field_becomes_a_grid_transform(mrml):
    field = np.zeros((8, 9, 10, 3))
    field[..., 0] = 2.0
    field[..., 2] = -1.5
    image = sitk.GetImageFromArray(field, isVector=True)
    image.SetSpacing((4.0, 4.0, 4.0))
    image.SetOrigin((-10.0, -10.0, -10.0))
    transform = sitk.DisplacementFieldTransform(sitk.Image(image))
    node = transforms.transform_node_from_sitk(mrml, transform, "G")
    assert node.IsA("vtkMRMLGridTransformNode")
    p = [2.0, 3.0, 4.0]
    slicer_moved = node.GetTransformFromParent().TransformPoint(points_lps_to_ras(p)[0])
    np.testing.assert_allclose(slicer_moved, points_lps_to_ras(np.add(p, [2.0, 0.0, -1.5]))[0], atol=1e-6)
    back = transforms.sitk_transform_from_node(node)
    np.testing.assert_allclose(back.TransformPoint(p), np.add(p, [2.0, 0.0, -1.5]), atol=1e-6)


def test_tables_and_plots(mrml):
    table = tables.table_node_from_rows(mrml, ["dose", "GTV", "note"], [[0, 100.0, "a"], [10, 50.0, "b"]], "DVH")
    header, rows = tables.rows_from_table_node(table)
    assert header == ["dose", "GTV", "note"] and rows[1] == [10.0, 50.0, "b"]
    chart = tables.plot_from_table(mrml, table, "dose", ["GTV"], "DVH plot")
    assert chart.GetNumberOfPlotSeriesNodes() == 1


def test_mrb_round_trip(mrml, tmp_path, phantom):
    volumes.volume_node_from_image(mrml, phantom.ct, "CT")
    segmentations.segmentation_node_from_masks(mrml, {"GTV": phantom.masks["GTV"]}, phantom.colors, "Seg")
    markups.fiducial_node_from_points(mrml, [[1, 2, 3]], ["p"], "P")
    transforms.transform_node_from_sitk(mrml, sitk.TranslationTransform(3, (1, 2, 3)), "T")
    path = mrb.save_mrb(mrml, tmp_path / "scene.mrb")
    loaded = mrb.load_mrb(path)
    ct = loaded.scene.GetFirstNodeByName("CT")
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(volumes.image_from_volume_node(ct)), sitk.GetArrayViewFromImage(phantom.ct)
    )
    seg = loaded.scene.GetFirstNodeByName("Seg")
    back = segmentations.masks_from_segmentation_node(seg, phantom.ct)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back["GTV"]), sitk.GetArrayViewFromImage(phantom.masks["GTV"]))
    assert loaded.scene.GetFirstNodeByName("P").GetNumberOfControlPoints() == 1
    t = transforms.sitk_transform_from_node(loaded.scene.GetFirstNodeByName("T"))
    np.testing.assert_allclose(t.TransformPoint([0, 0, 0]), [1, 2, 3], atol=1e-9)


def test_mrb_with_a_relative_path(mrml, tmp_path, monkeypatch):
    volumes.volume_node_from_image(mrml, _oblique_image(), "CT")
    monkeypatch.chdir(tmp_path)
    path = mrb.save_mrb(mrml, "out/scene.mrb")
    assert path == tmp_path / "out" / "scene.mrb" and path.is_file()
    assert mrb.load_mrb("out/scene.mrb").scene.GetFirstNodeByName("CT") is not None


def test_vector_volume_with_many_components_survives_mrb(mrml, tmp_path):
    bands = sitk.Compose([_oblique_image() * (b + 1) for b in range(5)])
    volumes.volume_node_from_image(mrml, bands, "cube")
    loaded = mrb.load_mrb(mrb.save_mrb(mrml, tmp_path / "cube.mrb"))
    back = volumes.image_from_volume_node(loaded.scene.GetFirstNodeByName("cube"))
    assert back.GetNumberOfComponentsPerPixel() == 5
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(bands), rtol=1e-6)
