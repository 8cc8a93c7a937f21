"""RT structure sets: a thin Slicer front end to ``SlicerImgSuite.rtstruct`` (all work happens there)."""

from pathlib import Path
from typing import Annotated

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from SlicerImgSuite.choices import PLAIN_VOLUME_DOSE_UNITS
from SlicerImgSuite.slicer_gui import ParameterNodeGuiMixin, job_errors


class RTStructures(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "RT structure sets"
        self.parent.categories = ["ImgSuite"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerImgSuite developers"]
        self.parent.helpText = (
            "Rasterize a DICOM RTSTRUCT onto a reference volume (voxel centre inside, even-odd for holes; "
            "accurate sub-voxel mode), export an edited segmentation back to RTSTRUCT, and compute DVHs."
        )
        self.parent.acknowledgementText = "Part of the SlicerImgSuite extension."


@parameterNodeWrapper
class RTStructuresParameterNode:
    rtstructPath: Path
    referenceVolume: vtkMRMLScalarVolumeNode
    unionContours: bool = False
    accurate: bool = False
    makeLabelmap: bool = False
    exportSegmentation: vtkMRMLSegmentationNode
    ctFolder: Path
    exportPath: Path
    doseVolume: vtkMRMLScalarVolumeNode
    dosePath: Path
    doseUnits: Annotated[str, Choice(list(PLAIN_VOLUME_DOSE_UNITS))] = PLAIN_VOLUME_DOSE_UNITS[0]


class RTStructuresWidget(ParameterNodeGuiMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/RTStructures.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = RTStructuresLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        self.ui.dvhButton.connect("clicked(bool)", self.onDvhButton)
        self.ui.loadDoseButton.connect("clicked(bool)", self.onLoadDoseButton)
        self.initializeParameterNode()

    def onApplyButton(self):
        from SlicerImgSuite.slicer_gui import progress_dialog

        p = self._parameterNode
        with job_errors("Importing the RTSTRUCT failed."):
            with progress_dialog("Rasterizing structures") as progress:
                seg, _, notes = self.logic.importRTStruct(
                    p.rtstructPath, p.referenceVolume, p.unionContours, p.accurate, p.makeLabelmap, progress
                )
            p.exportSegmentation = seg
            count = seg.GetSegmentation().GetNumberOfSegments()
            self.ui.resultText.setPlainText(f"{count} structures imported into {seg.GetName()}.\n{notes}")

    def onExportButton(self):
        from SlicerImgSuite.slicer_gui import progress_dialog

        p = self._parameterNode
        with job_errors("Exporting to RTSTRUCT failed."):
            with progress_dialog("Writing RTSTRUCT") as progress:
                self.logic.exportRTStruct(p.exportSegmentation, p.ctFolder, p.exportPath, progress)
            self.ui.resultText.setPlainText(f"Wrote {p.exportPath}")

    def onLoadDoseButton(self):
        p = self._parameterNode
        with job_errors("Loading the dose failed."):
            p.doseVolume = self.logic.loadDose(p.dosePath)
            self.ui.resultText.setPlainText(f"Loaded {p.dosePath} as {p.doseVolume.GetName()} (Gy).")

    def onDvhButton(self):
        p = self._parameterNode
        units = {"Gy": "gy", "cGy": "cgy"}.get(p.doseUnits)
        with job_errors("DVH failed."):
            table, chart, stats = self.logic.dvh(p.exportSegmentation, p.doseVolume, p.referenceVolume, units)
            slicer.modules.plots.logic().ShowChartInLayout(chart)
            lines = [
                f"{n}: {s['volume_cc']:.2f} cc, mean {s['mean']:.2f} Gy, D95 {s['D95']:.2f} Gy"
                for n, s in stats.items()
            ]
            self.ui.resultText.setPlainText("\n".join(lines))


class RTStructuresLogic(ScriptedLoadableModuleLogic):
    """Calls ``SlicerImgSuite.rtstruct.nodes``; holds no algorithm of its own."""

    def getParameterNode(self):
        return RTStructuresParameterNode(super().getParameterNode())

    def importRTStruct(self, path, referenceVolume, union=False, accurate=False, labelmap=False, progress=None):
        from SlicerImgSuite.rtstruct.nodes import segmentation_from_rtstruct

        rule = "union" if union else "xor"
        return segmentation_from_rtstruct(
            slicer.mrmlScene,
            path,
            reference_node=referenceVolume,
            ct_folder=None,
            rule=rule,
            accurate=accurate,
            make_labelmap=labelmap,
            progress=progress,
        )

    def exportRTStruct(self, segmentationNode, ctFolder, path, progress=None):
        from SlicerImgSuite.rtstruct.nodes import rtstruct_from_segmentation

        return rtstruct_from_segmentation(segmentationNode, ctFolder, path, progress)

    def loadDose(self, path, doseUnits=None):
        """An RTDOSE (or an image with doseUnits) as a volume in Gy, marked as a dose."""
        from SlicerImgSuite.rtstruct.nodes import dose_node_from_file

        return dose_node_from_file(slicer.mrmlScene, path, doseUnits)

    def dvh(self, segmentationNode, doseVolume, referenceVolume, doseUnits=None):
        """A volume not marked as a dose (a CT) is refused unless doseUnits ("gy"/"cgy") declares it."""
        from SlicerImgSuite.rtstruct.nodes import dvh_nodes

        return dvh_nodes(slicer.mrmlScene, segmentationNode, doseVolume, referenceVolume, dose_units=doseUnits)


class RTStructuresTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_phantom_round_trip()

    def test_phantom_round_trip(self):
        import tempfile

        from SlicerImgSuite.demo.phantom import make_phantom
        from SlicerImgSuite.mrml.volumes import volume_node_from_image

        folder = Path(tempfile.mkdtemp())
        patient = make_phantom(folder, shape=(48, 48, 16))
        ct = volume_node_from_image(slicer.mrmlScene, patient.ct, "CT")
        logic = RTStructuresLogic()
        seg, _, _ = logic.importRTStruct(patient.rtstruct, ct)
        self.assertGreater(seg.GetSegmentation().GetNumberOfSegments(), 5)
        logic.exportRTStruct(seg, patient.ct_dir, folder / "RS_out.dcm")
        back, _, _ = logic.importRTStruct(folder / "RS_out.dcm", ct)
        names = [
            seg.GetSegmentation().GetNthSegment(i).GetName() for i in range(seg.GetSegmentation().GetNumberOfSegments())
        ]
        for name in names:  # every structure comes back with the same voxels
            self.assertEqual(
                slicer.util.arrayFromSegmentBinaryLabelmap(
                    seg, seg.GetSegmentation().GetSegmentIdBySegmentName(name), ct
                ).sum(),
                slicer.util.arrayFromSegmentBinaryLabelmap(
                    back, back.GetSegmentation().GetSegmentIdBySegmentName(name), ct
                ).sum(),
            )
