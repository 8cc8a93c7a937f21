"""Contour review: a thin Slicer front end to ``SlicerImgSuite.review`` (comparison, statuses, export)."""

from pathlib import Path
from typing import Annotated

import qt
import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from SlicerImgSuite.slicer_gui import ParameterNodeGuiMixin


class ContourReview(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Contour review"
        self.parent.categories = ["ImgSuite"]
        self.parent.contributors = ["SlicerImgSuite developers"]
        self.parent.helpText = (
            "Compare a test structure set with a reference (Dice, HD95, surface Dice, volume difference, APL), "
            "review each structure (approve, needs edit, reject, with a comment) and export the reviewed set as an "
            "RTSTRUCT with the DICOM Approval Module or as DICOM SEG. Statuses are stored on the test segments."
        )
        self.parent.acknowledgementText = "Part of the SlicerImgSuite extension."


@parameterNodeWrapper
class ContourReviewParameterNode:
    referenceSegmentation: vtkMRMLSegmentationNode
    testSegmentation: vtkMRMLSegmentationNode
    referenceVolume: vtkMRMLScalarVolumeNode
    doseVolume: vtkMRMLScalarVolumeNode
    reviewer: str = ""
    tolerance: Annotated[float, WithinRange(0.1, 20.0)] = 2.0
    namePairs: str = ""  # "GTV=GTV_resident, ...": differently named structures paired (compare-structures --map)
    ctFolder: Path
    exportFolder: Path
    approvedOnly: bool = False


class ContourReviewWidget(ParameterNodeGuiMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.rows = []

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ContourReview.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ContourReviewLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onCompare)
        self.ui.structureTable.connect("cellClicked(int,int)", lambda row, col: self.select(row))
        for button, status in ((self.ui.approveButton, "approved"), (self.ui.needsEditButton, "needs-edit"),
                               (self.ui.rejectButton, "rejected")):  # fmt: skip
            button.connect("clicked(bool)", lambda checked=False, s=status: self.setStatus(s))
        self.ui.nextButton.connect("clicked(bool)", lambda: self.step(1))
        self.ui.previousButton.connect("clicked(bool)", lambda: self.step(-1))
        self.ui.editButton.connect("clicked(bool)", self.onEdit)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.reportButton.connect("clicked(bool)", self.onReport)
        self.shortcuts = [qt.QShortcut(qt.QKeySequence(key), uiWidget) for key in ("N", "P")]
        self.shortcuts[0].connect("activated()", lambda: self.step(1))
        self.shortcuts[1].connect("activated()", lambda: self.step(-1))
        self.initializeParameterNode()

    def cleanup(self):
        super().cleanup()
        self.logic.stopWatching()

    def onCompare(self):
        from SlicerImgSuite.slicer_gui import job_errors, progress_dialog

        p = self._parameterNode
        with job_errors("Comparing the structure sets failed."):  # Cancel skips the rest, no error dialog
            with progress_dialog("Comparing structures") as progress:
                self.logic.compare(p.referenceSegmentation, p.testSegmentation, p.referenceVolume, p.tolerance,
                                   progress, p.namePairs)  # fmt: skip
            self.fillTable()

    def fillTable(self, keep=None):
        from SlicerImgSuite.review.table import COLUMN_TITLES, COLUMNS, format_value

        self.rows = self.logic.rows()  # worst first; the user may sort by any column
        table = self.ui.structureTable
        table.setSortingEnabled(False)
        table.setColumnCount(len(COLUMNS) + 1)
        table.setHorizontalHeaderLabels([""] + [COLUMN_TITLES[c] for c in COLUMNS])
        table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            swatch = qt.QTableWidgetItem()
            swatch.setBackground(qt.QColor(*row["color"]))
            swatch.setData(qt.Qt.UserRole, r)
            table.setItem(r, 0, swatch)
            for c, key in enumerate(COLUMNS):
                text = format_value(key, row.get(key))
                item = qt.QTableWidgetItem()
                item.setData(qt.Qt.EditRole, float(text) if isinstance(row.get(key), float) and text != "–" else text)
                table.setItem(r, c + 1, item)
        table.setSortingEnabled(True)
        if keep is not None:
            table.selectRow(keep)
        self.ui.statusLabel.setText(self.logic.summary())

    def rowData(self, visual):
        return self.rows[int(self.ui.structureTable.item(visual, 0).data(qt.Qt.UserRole))]

    def select(self, row):
        if 0 <= row < len(self.rows):
            self.ui.structureTable.selectRow(row)
            self.logic.focus(self.rowData(row), self._parameterNode.doseVolume)

    def current(self):
        row = self.ui.structureTable.currentRow()
        return row if 0 <= row < len(self.rows) else None

    def step(self, delta):
        row = self.current()
        self.select(0 if row is None else min(max(row + delta, 0), len(self.rows) - 1))

    def setStatus(self, status):
        row = self.current()
        if row is None:
            return
        with slicer.util.tryWithErrorDisplay("Setting the status failed."):
            self.logic.setStatus(self.rowData(row), status, self._parameterNode.reviewer, self.ui.commentEdit.text)
            self.ui.commentEdit.clear()
            self.fillTable(keep=row)

    def onEdit(self):
        if self.current() is not None:
            self.logic.edit(self.rowData(self.current()))

    def onExport(self):
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Export failed.", waitCursor=True):
            written = self.logic.export(p.ctFolder, p.exportFolder, p.approvedOnly)
            self.ui.statusLabel.setText("Wrote " + ", ".join(str(w) for w in written))

    def onReport(self):
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Saving the report failed.", waitCursor=True):
            path = self.logic.report(Path(p.exportFolder) / "contour_review.html", p.referenceVolume)
            self.ui.statusLabel.setText(f"Wrote {path}")


class ContourReviewLogic(ScriptedLoadableModuleLogic):
    """Calls ``SlicerImgSuite.review``; holds no algorithm of its own."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.comparison = self.reference = self.test = self.watcher = None
        self.dvh = (None, None)  # the selected structure's DVH table and chart, updated in place

    def getParameterNode(self):
        return ContourReviewParameterNode(super().getParameterNode())

    def compare(self, reference, test, volume=None, tolerance=2.0, progress=None, namePairs=""):
        from SlicerImgSuite.review.nodes import EditWatcher, compare_segmentation_nodes

        if reference is None or test is None:
            raise ValueError("choose a reference and a test segmentation")
        self.comparison = compare_segmentation_nodes(
            reference, test, volume, tolerance_mm=tolerance, name_map=namePairs, progress=progress
        )
        self.reference, self.test = reference, test
        self.stopWatching()
        self.watcher = EditWatcher(test)
        return self.comparison

    def stopWatching(self):
        if self.watcher is not None:
            self.watcher.remove()
            self.watcher = None

    def state(self):
        from SlicerImgSuite.review.nodes import review_state_of

        return review_state_of(self.test)

    def rows(self):
        from SlicerImgSuite.review.table import table_rows

        return table_rows(self.comparison, self.state()) if self.comparison else []

    def summary(self):
        c, counts = self.comparison, self.state().counts()
        unmatched = f"; unmatched reference {c.unmatched_reference}, test {c.unmatched_test}"
        return ", ".join(f"{v} {k}" for k, v in counts.items()) + unmatched

    def focus(self, row, dose=None):
        from SlicerImgSuite.review.nodes import centre_slice_views, show_structure, structure_dvh_nodes
        from SlicerImgSuite.review.table import view_focus

        show_structure(self.reference, self.test, row["reference"], row["test"])
        focus = view_focus(self.comparison.reference_shapes[row["reference"]], self.comparison.grid)
        if focus is not None:
            lm = slicer.app.layoutManager()
            centre_slice_views([lm.sliceWidget(n).mrmlSliceNode() for n in lm.sliceViewNames()], focus)
        if dose is not None:  # DVH of the structure, reference solid and test dashed, in the plot view
            self.dvh = structure_dvh_nodes(self.reference, self.test, row["reference"], row["test"], dose,
                                           grid=self.comparison.grid, table_node=self.dvh[0], chart_node=self.dvh[1])  # fmt: skip
            slicer.modules.plots.logic().ShowChartInLayout(self.dvh[1])

    def setStatus(self, row, status, reviewer, comment=""):
        from SlicerImgSuite.review.nodes import set_segment_status

        return set_segment_status(self.test, row["test"], status, reviewer=reviewer, comment=comment)

    def edit(self, row):
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(self.test)
        editor.setCurrentSegmentID(self.test.GetSegmentation().GetSegmentIdBySegmentName(row["test"]))

    def export(self, ctFolder, folder, approvedOnly=False):
        from SlicerImgSuite.mrml.segmentations import masks_from_segmentation_node, segment_colors
        from SlicerImgSuite.review.export import export_reviewed_rtstruct, export_seg, sidecar_path
        from SlicerImgSuite.rtstruct.write import reference_series

        ct = reference_series(ctFolder)
        colors = segment_colors(self.test)
        masks = {n: (m, colors[n]) for n, m in masks_from_segmentation_node(self.test, ct.image()).items()}
        state, folder = self.state(), Path(folder)
        rs, seg = folder / "RS_reviewed.dcm", folder / "SEG_reviewed.dcm"
        export_reviewed_rtstruct(rs, ct, masks, state, approved_only=approvedOnly)
        export_seg(seg, ct, masks, state=state, approved_only=approvedOnly)
        return [rs, seg, state.save(sidecar_path(rs))]

    def report(self, path, volume=None):
        from SlicerImgSuite.mrml.volumes import image_from_volume_node
        from SlicerImgSuite.review.report import write_review_report

        ct = image_from_volume_node(volume) if volume is not None else None
        return write_review_report(self.comparison, path, ct=ct, state=self.state())


class ContourReviewTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_review_round_trip()

    def test_review_round_trip(self):
        import tempfile

        from SlicerImgSuite.demo.phantom import make_phantom
        from SlicerImgSuite.mrml.segmentations import segmentation_node_from_masks
        from SlicerImgSuite.mrml.volumes import volume_node_from_image
        from SlicerImgSuite.review.export import review_state_from_rtstruct
        from SlicerImgSuite.rtstruct.nodes import dose_node_from_file

        folder = Path(tempfile.mkdtemp())
        patient = make_phantom(folder, shape=(48, 48, 16))
        ct = volume_node_from_image(slicer.mrmlScene, patient.ct, "CT")
        ref = segmentation_node_from_masks(slicer.mrmlScene, patient.masks, patient.colors, name="reference")
        test = segmentation_node_from_masks(slicer.mrmlScene, patient.masks, patient.colors, name="test")
        logic = ContourReviewLogic()
        logic.compare(ref, test, ct)
        rows = logic.rows()
        self.assertEqual(len(rows), len(patient.masks))
        for row in rows:
            logic.setStatus(row, "approved", "Tester")
        logic.focus(rows[0], dose_node_from_file(slicer.mrmlScene, patient.rtdose))
        self.assertEqual(logic.dvh[0].GetNumberOfColumns(), 3)
        written = logic.export(patient.ct_dir, folder / "out")
        self.assertEqual(review_state_from_rtstruct(written[0]).counts()["approved"], len(rows))
