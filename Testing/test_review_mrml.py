"""Contour review on a real slicer-core MRML scene and the export round trips (RTSTRUCT approval, DICOM SEG)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom3tools import dciodvfy_errors

from SlicerImgSuite.review.export import (
    export_reviewed_rtstruct,
    export_seg,
    import_seg,
    review_state_from_rtstruct,
    seg_statuses,
)
from SlicerImgSuite.review.state import STATUSES, ReviewState, from_segment_tags


def _dice(a: sitk.Image, b: sitk.Image) -> float:
    x, y = sitk.GetArrayViewFromImage(a) > 0, sitk.GetArrayViewFromImage(b) > 0
    return 2.0 * np.count_nonzero(x & y) / max(np.count_nonzero(x) + np.count_nonzero(y), 1)


@pytest.fixture
def reviewed(phantom):
    state = ReviewState(["BODY", "LUNG_R", "LUNG_L", "HEART", "SPINAL_CORD", "GTV", "PTV", "RING"])
    for name in state.names():
        state.set_status(name, "approved", reviewer="Dr Ann Smith", comment=f"{name} fine")
    state.set_status("HEART", "needs-edit", reviewer="Dr Bo Lee", comment="apex too low")
    state.set_status("RING", "rejected", reviewer="Dr Bo Lee")
    return state


def test_segment_tags_survive_seg_nrrd_and_mrb(mrml, phantom, reviewed, tmp_path):
    from SlicerImgSuite.mrml.mrb import load_mrb, save_mrb
    from SlicerImgSuite.review.nodes import review_state_of
    from SlicerImgSuite.review.state import to_segment_tags
    from SlicerImgSuite.rtstruct.nodes import segmentation_from_rtstruct

    seg, _, _ = segmentation_from_rtstruct(mrml, phantom.rtstruct, ct_folder=phantom.ct_dir)
    reviewed.set_status("GTV", "needs-edit", reviewer="Dr O'Hara | QA", comment="margin: 2 mm\nsee note %20")
    to_segment_tags(reviewed, seg)
    # the segmentation file alone
    storage = seg.CreateDefaultStorageNode()
    storage.SetFileName(str(tmp_path / "s.seg.nrrd"))
    assert storage.WriteData(seg)
    assert "ImgSuiteReview.status" in (tmp_path / "s.seg.nrrd").read_bytes()[:20000].decode("latin-1")
    fresh = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "again")
    reader = fresh.CreateDefaultStorageNode()
    reader.SetFileName(str(tmp_path / "s.seg.nrrd"))
    assert reader.ReadData(fresh)
    # and the scene bundle
    loaded = load_mrb(save_mrb(mrml, tmp_path / "review.mrb"))
    nodes = [loaded.scene.GetNthNodeByClass(n, "vtkMRMLSegmentationNode") for n in range(2)]
    for node in [fresh, *nodes]:
        state = review_state_of(node)
        for name in reviewed.names():
            assert state[name].status == reviewed[name].status, name
            assert state[name].comment == reviewed[name].comment
            assert [(c.from_status, c.to_status, c.reviewer) for c in state[name].history] == [
                (c.from_status, c.to_status, c.reviewer) for c in reviewed[name].history
            ]


def test_edit_after_approval_resets_to_needs_edit(mrml, phantom):
    import slicer
    import vtk.util.numpy_support as ns

    from SlicerImgSuite.review.nodes import EditWatcher, review_state_of, set_segment_status
    from SlicerImgSuite.rtstruct.nodes import segmentation_from_rtstruct

    seg, _, _ = segmentation_from_rtstruct(mrml, phantom.rtstruct, ct_folder=phantom.ct_dir)
    watcher = EditWatcher(seg)
    set_segment_status(seg, "GTV", "approved", reviewer="Dr A")
    set_segment_status(seg, "HEART", "approved", reviewer="Dr A")
    set_segment_status(seg, "LUNG_L", "rejected", reviewer="Dr A")
    assert watcher.reset == []  # tags are no edit
    for name in ("GTV", "LUNG_L"):  # paint as the Segment Editor does: the segment's labelmap replaced
        sid = seg.GetSegmentation().GetSegmentIdBySegmentName(name)
        labelmap = slicer.vtkOrientedImageData()
        seg.GetBinaryLabelmapRepresentation(sid, labelmap)
        ns.vtk_to_numpy(labelmap.GetPointData().GetScalars())[:10] = 1
        labelmap.Modified()
        mode = slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE
        slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(labelmap, seg, sid, mode)
    state = review_state_of(seg)
    assert state.status("GTV") == "needs-edit" and state.status("HEART") == "approved"
    assert state.status("LUNG_L") == "rejected"  # only an approval is taken back
    assert [(c.from_status, c.to_status) for c in state["GTV"].history][-1] == ("approved", "needs-edit")
    assert state["GTV"].comment == "edited after approval" and watcher.reset == ["GTV"]
    watcher.remove()


def test_reviewed_rtstruct_export_reimport(mrml, phantom, reviewed, tmp_path):
    from SlicerImgSuite.mrml.segmentations import masks_from_segmentation_node
    from SlicerImgSuite.review.nodes import review_state_of
    from SlicerImgSuite.review.state import to_segment_tags
    from SlicerImgSuite.rtstruct.nodes import segmentation_from_rtstruct

    source = pydicom.dcmread(phantom.rtstruct)
    out = tmp_path / "RS_reviewed.dcm"
    ds = export_reviewed_rtstruct(out, phantom.ct_dir, phantom.rtstruct, reviewed)
    assert dciodvfy_errors(out) == []
    assert ds.ApprovalStatus == "UNAPPROVED" and "ReviewDate" not in ds  # HEART and RING are not approved
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID and ds.FrameOfReferenceUID == source.FrameOfReferenceUID
    ct_uid = pydicom.dcmread(next(phantom.ct_dir.iterdir()), stop_before_pixels=True).SeriesInstanceUID
    referenced = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == ct_uid
    labels = {o.ReferencedROINumber: o.ROIObservationLabel for o in ds.RTROIObservationsSequence}
    assert set(labels.values()) <= set(STATUSES) and "needs-edit" in labels.values()
    # approved only: every exported structure is approved, so the set is
    only = export_reviewed_rtstruct(
        tmp_path / "RS_ok.dcm", phantom.ct_dir, phantom.rtstruct, reviewed, approved_only=True
    )
    assert dciodvfy_errors(tmp_path / "RS_ok.dcm") == []
    assert only.ApprovalStatus == "APPROVED" and only.ReviewerName == "Dr Ann Smith" and len(only.ReviewDate) == 8
    assert [r.ROIName for r in only.StructureSetROISequence] == [
        n for n in reviewed.names() if reviewed.status(n) == "approved"
    ]
    # re-import into MRML: same voxels as the original structure set, statuses back on the segments
    original, _, _ = segmentation_from_rtstruct(mrml, phantom.rtstruct, ct_folder=phantom.ct_dir)
    again, _, _ = segmentation_from_rtstruct(mrml, out, ct_folder=phantom.ct_dir)
    to_segment_tags(review_state_from_rtstruct(out), again)
    state = review_state_of(again)
    a, b = masks_from_segmentation_node(original, phantom.ct), masks_from_segmentation_node(again, phantom.ct)
    for name in reviewed.names():
        assert state[name].status == reviewed[name].status and state[name].reviewer == reviewed[name].reviewer
        assert round(_dice(a[name], b[name]), 4) == 1.0


def test_dicom_seg_export_import(phantom, reviewed, tmp_path):
    out = tmp_path / "SEG.dcm"
    export_seg(out, phantom.ct_dir, phantom.rtstruct, state=reviewed)
    assert dciodvfy_errors(out) == []
    back = import_seg(out, phantom.ct_dir)
    from SlicerImgSuite.rtstruct import rasterize, read_rtstruct
    from SlicerImgSuite.rtstruct.rasterize import Grid

    grid = Grid.of(phantom.ct)
    for m in rasterize(read_rtstruct(phantom.rtstruct), phantom.ct):
        mask, color = back[m.roi.name]
        assert round(_dice(grid.image(m.full(grid)), mask), 4) == 1.0, m.roi.name
        assert np.abs(np.subtract(color, m.roi.color)).max() <= 2
    assert seg_statuses(out) == {n: reviewed.status(n) for n in reviewed.names()}


def test_review_state_json_round_trip(reviewed, tmp_path):
    path = reviewed.save(tmp_path / "review.json")
    again = ReviewState.load(path)
    assert again.to_dict() == reviewed.to_dict()
    assert again.counts() == {"unreviewed": 0, "approved": 6, "needs-edit": 1, "rejected": 1}
    with pytest.raises(Exception, match="unknown review status"):
        again.set_status("GTV", "fine", reviewer="x")
    assert from_segment_tags  # the tag functions are exercised on real MRML above


def test_dicom_plugin_examines_and_loads_the_demo_folder(mrml, phantom):
    """RTSTRUCT and RTDOSE of the phantom's DICOM folder as the browser would offer and load them."""
    from SlicerImgSuite.review.dicom_plugin import DOSE_COLOR_TABLE, SERIES_ATTRIBUTE, examine_folder, load_loadable
    from SlicerImgSuite.review.nodes import segment_names

    loadables = {item.kind: item for item in examine_folder(phantom.folder)}
    assert sorted(loadables) == ["RTDOSE", "RTSTRUCT"]
    rs = loadables["RTSTRUCT"]
    ct_uid = pydicom.dcmread(next(phantom.ct_dir.iterdir()), stop_before_pixels=True).SeriesInstanceUID
    assert rs.referenced_series_uid == ct_uid and len(rs.ct_files) == phantom.ct.GetSize()[2]
    assert "8 structures" in rs.tooltip
    seg = load_loadable(mrml, rs)
    assert segment_names(seg) == list(phantom.masks)
    again = load_loadable(mrml, rs)  # the CT is read once and reused
    volumes = [mrml.scene.GetNthNodeByClass(n, "vtkMRMLScalarVolumeNode") for n in range(3)]
    cts = [v for v in volumes if v is not None and v.GetAttribute(SERIES_ATTRIBUTE) == ct_uid]
    assert len(cts) == 1 and again is not seg
    dose_node = load_loadable(mrml, loadables["RTDOSE"])
    from SlicerImgSuite.mrml.volumes import image_from_volume_node

    dose = sitk.GetArrayFromImage(image_from_volume_node(dose_node))
    assert dose.max() == pytest.approx(float(sitk.GetArrayViewFromImage(phantom.dose).max()), rel=1e-3)
    assert dose_node.GetDisplayNode().GetColorNode().GetName() == DOSE_COLOR_TABLE
    assert dose_node.GetAttribute("DicomRtImport.DoseVolume") == "1"
    for n, item in enumerate(phantom.masks):  # segments hold the phantom's structures (voxel Dice with the truth)
        from SlicerImgSuite.mrml.segmentations import masks_from_segmentation_node

        if n == 0:
            masks = masks_from_segmentation_node(seg, phantom.ct)
        assert _dice(masks[item], phantom.masks[item]) > 0.9, item


def test_compare_nodes_table_and_view_centring(mrml, phantom):
    """Two segmentation nodes compared on the CT; the worst row first; slice views centred on its centroid."""
    from SlicerImgSuite.mrml.segmentations import segmentation_node_from_masks
    from SlicerImgSuite.review.nodes import centre_slice_views, compare_segmentation_nodes, show_structure
    from SlicerImgSuite.review.table import table_rows, view_focus

    ref = segmentation_node_from_masks(mrml, phantom.masks, phantom.colors, name="reference")
    shifted = {n: m for n, m in phantom.masks.items() if n != "RING"}
    heart = sitk.GetArrayFromImage(phantom.masks["HEART"])
    shifted["HEART"] = sitk.GetImageFromArray(np.roll(heart, 3, axis=2))  # 3 voxels = 9.6 mm to the left
    shifted["HEART"].CopyInformation(phantom.ct)
    test = segmentation_node_from_masks(mrml, shifted, phantom.colors, name="test")
    c = compare_segmentation_nodes(ref, test)
    rows = table_rows(c)
    assert rows[0]["reference"] == "HEART" and c.unmatched_reference == ["RING"]
    assert rows[0]["centroid_shift_mm"] == pytest.approx(9.6, abs=0.1)
    assert all(r["dice"] == 1.0 for r in rows[1:])
    focus = view_focus(c.reference_shapes["HEART"], c.grid)
    truth = np.argwhere(heart > 0).mean(axis=0)[::-1]  # (i, j, k)
    lps = np.array(phantom.ct.TransformContinuousIndexToPhysicalPoint(truth.tolist()))
    assert np.allclose(focus.centroid_lps, lps, atol=1e-6)
    views = []
    for name, orientation in (("Red", "Axial"), ("Yellow", "Sagittal"), ("Green", "Coronal")):
        node = mrml.scene.AddNewNodeByClass("vtkMRMLSliceNode", name)
        node.SetLayoutName(name)
        node.SetOrientation(orientation)
        node.SetDimensions(400, 300, 1)
        node.SetFieldOfView(250, 187.5, 1)
        views.append(node)
    centre_slice_views(views, focus)
    for node in views:  # each view's centre (slice origin) is the centroid, in RAS
        centre = [node.GetSliceToRAS().GetElement(r, 3) for r in range(3)]
        assert np.allclose(centre, focus.centroid_ras, atol=1e-6)
        assert node.GetFieldOfView()[0] == pytest.approx(focus.field_of_view_mm(), rel=1e-6)
    show_structure(ref, test, "HEART", "HEART")
    display = ref.GetDisplayNode()
    visible = [ref.GetSegmentation().GetNthSegment(n).GetName() for n in range(8)
               if display.GetSegmentVisibility(ref.GetSegmentation().GetNthSegmentID(n))]  # fmt: skip
    assert visible == ["HEART"] and not display.GetVisibility2DFill()


def test_demo_step_reports_the_comparison_and_keeps_tags_in_the_mrb(tmp_path):
    from SlicerImgSuite.demo import run_demo
    from SlicerImgSuite.mrml.mrb import load_mrb
    from SlicerImgSuite.review.nodes import review_state_of, segment_names

    html = run_demo(tmp_path, only=["rtstruct", "review"]).read_text()
    assert "Contour comparison and review" in html and html.count("review/") >= 7  # a thumbnail per structure
    data = __import__("json").loads((tmp_path / "review" / "comparison.json").read_text())
    rows = {r["reference"]: r for r in data["structures"]}
    assert data["unmatched_reference"] == ["SPINAL_CORD"] and rows["BODY"]["test"] == "External"
    assert rows["HEART"]["centroid_shift_mm"] == pytest.approx(6.4, abs=0.1)  # moved one 6.4 mm step
    assert rows["GTV"]["msd"] == pytest.approx(3.0, abs=0.3) and rows["RING"]["hd"] == 0.0  # grown 3 mm; same
    scene = load_mrb(tmp_path / "SlicerImgSuite-demo.mrb")
    nodes = {
        scene.scene.GetNthNodeByClass(n, "vtkMRMLSegmentationNode").GetName(): scene.scene.GetNthNodeByClass(
            n, "vtkMRMLSegmentationNode"
        )
        for n in range(scene.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"))
    }
    assert "Phantom structures" in nodes and "Review: perturbed structures" in nodes
    state = review_state_of(nodes["Review: perturbed structures"])
    assert "SPINAL_CORD" not in segment_names(nodes["Review: perturbed structures"])
    assert state.status("Heart") == "needs-edit" and state.status("External") == "approved"
    assert "surface Dice" in state["Heart"].comment


def test_seg_nrrd_inputs_from_slicer_and_from_our_writer(mrml, phantom, tmp_path):
    """A .seg.nrrd written by Slicer's storage node (cropped layers) and one by our writer compare as the RTSTRUCT."""
    from SlicerImgSuite.review.compare import compare_structure_sets
    from SlicerImgSuite.rtstruct import rasterize, read_rtstruct
    from SlicerImgSuite.rtstruct.nodes import segmentation_from_rtstruct
    from SlicerImgSuite.rtstruct.outputs import write_seg_nrrd

    seg, _, _ = segmentation_from_rtstruct(mrml, phantom.rtstruct, ct_folder=phantom.ct_dir)
    storage = seg.CreateDefaultStorageNode()
    storage.SetFileName(str(tmp_path / "slicer.seg.nrrd"))
    assert storage.WriteData(seg)
    write_seg_nrrd(rasterize(read_rtstruct(phantom.rtstruct), phantom.ct), phantom.ct, tmp_path / "ours.seg.nrrd")
    for name in ("slicer.seg.nrrd", "ours.seg.nrrd"):
        c = compare_structure_sets(phantom.rtstruct, tmp_path / name, referenced_ct=phantom.ct_dir)
        assert [r["test"] for r in c.structures] == list(phantom.masks), name
        assert all(r["dice"] == 1.0 for r in c.structures), name


def test_structure_dvh_nodes_reference_vs_test(mrml, phantom):
    """The DVH pair of the selected structure: the one DVH function's curves, made then updated in place."""
    from SlicerImgSuite.mrml.segmentations import segmentation_node_from_masks
    from SlicerImgSuite.mrml.tables import rows_from_table_node
    from SlicerImgSuite.mrml.volumes import volume_node_from_image
    from SlicerImgSuite.review.nodes import structure_dvh_nodes
    from SlicerImgSuite.rtstruct.dose import read_rtdose
    from SlicerImgSuite.rtstruct.dvh import dvh_table
    from SlicerImgSuite.rtstruct.rasterize import RoiMask
    from SlicerImgSuite.rtstruct.structure_set import Roi

    ref = segmentation_node_from_masks(mrml, phantom.masks, phantom.colors, name="reference")
    moved = dict(phantom.masks)
    ptv = sitk.GetArrayFromImage(phantom.masks["PTV"])
    moved["PTV"] = sitk.GetImageFromArray(np.roll(ptv, 4, axis=2))  # 4 voxels off the high dose
    moved["PTV"].CopyInformation(phantom.ct)
    test = segmentation_node_from_masks(mrml, moved, phantom.colors, name="test")
    dose = read_rtdose(phantom.rtdose)
    dose_node = volume_node_from_image(mrml, dose, "Dose")
    table, chart = structure_dvh_nodes(ref, test, "PTV", "PTV", dose_node, grid=phantom.ct)
    header, rows = rows_from_table_node(table)
    assert header == ["Dose (Gy)", "PTV (reference)", "PTV (test)"]
    curves = np.array(rows)
    truth = dvh_table([RoiMask(Roi(0, "PTV"), (0, 0, 0), ptv > 0)], dose, phantom.ct, normalization="pct")
    assert np.allclose(curves[:, 0], truth.edges) and np.allclose(curves[:, 1], 100 * truth.curves[0], atol=1e-9)
    assert curves[0, 1] == pytest.approx(100.0) and np.all(np.diff(curves[:, 1:], axis=0) <= 1e-9)
    assert np.abs(curves[:, 1] - curves[:, 2]).max() > 5.0  # the moved PTV gets less dose
    series = [chart.GetNthPlotSeriesNode(n) for n in range(chart.GetNumberOfPlotSeriesNodes())]
    assert [s.GetYColumnName() for s in series] == header[1:]
    assert [s.GetLineStyle() for s in series] == [series[0].LineStyleSolid, series[0].LineStyleDash]
    assert all(s.GetTableNodeID() == table.GetID() for s in series)
    # another structure: the same two nodes, new curves, the old series gone from the scene
    again = structure_dvh_nodes(
        ref, test, "HEART", "HEART", dose_node, grid=phantom.ct, table_node=table, chart_node=chart
    )
    assert again == (table, chart)
    assert rows_from_table_node(table)[0] == ["Dose (Gy)", "HEART (reference)", "HEART (test)"]
    assert chart.GetNumberOfPlotSeriesNodes() == 2 and all(mrml.scene.GetNodeByID(s.GetID()) is None for s in series)
    with pytest.raises(Exception, match="no segment 'NOPE'"):
        structure_dvh_nodes(ref, test, "NOPE", "HEART", dose_node)


def test_compare_nodes_pairs_differently_named_segments_as_the_module_field_says(mrml, phantom):
    """The ContourReview module's "Name pairs" text (``REF=TEST, ...``) reaches the comparison: a resident's
    GTV_resident and Lt Lung are paired with GTV and LUNG_L (before, the module could only pair equal names)."""
    from SlicerImgSuite.mrml.segmentations import segmentation_node_from_masks
    from SlicerImgSuite.review.nodes import compare_segmentation_nodes

    ref = segmentation_node_from_masks(mrml, phantom.masks, phantom.colors, name="reference")
    renamed = {"GTV": "GTV_resident", "LUNG_L": "Lt Lung"}
    test = segmentation_node_from_masks(
        mrml, {renamed.get(n, n): m for n, m in phantom.masks.items()}, name="test"
    )
    unpaired = compare_segmentation_nodes(ref, test)
    assert "GTV" in unpaired.unmatched_reference
    c = compare_segmentation_nodes(ref, test, name_map="GTV=GTV_resident, LUNG_L = Lt Lung")
    pairs = {r["reference"]: (r["test"], r["dice"]) for r in c.structures}
    assert pairs["GTV"] == ("GTV_resident", 1.0) and pairs["LUNG_L"] == ("Lt Lung", 1.0)
    assert c.unmatched_reference == [] and c.unmatched_test == []
