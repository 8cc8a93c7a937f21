"""Segmentation (ImgSuite): a thin Slicer front end to ``SlicerImgSuite.segmentation`` (all work happens there)."""

import pathlib
from typing import Annotated

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, Default, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from SlicerImgSuite.choices import CT_PRESETS, FUSION_METHODS, NUCLEI_METHODS, PERINUCLEAR_MODES
from SlicerImgSuite.slicer_gui import ParameterNodeGuiMixin, job_errors


class Segmentation(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Segmentation (ImgSuite)"
        self.parent.categories = ["ImgSuite"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerImgSuite developers"]
        self.parent.helpText = (
            "CT threshold segmentation (body with couch removal, lungs, bone), multi-atlas segmentation "
            "(register, warp, fuse by vote / STAPLE / locally weighted voting) and fluorescence-nuclei analysis "
            "(labels, per-nucleus measurements, perinuclear rings). Same engine as the imgsuite command line: "
            "imgsuite segment, imgsuite mabs, imgsuite nuclei."
        )
        self.parent.acknowledgementText = "Part of the SlicerImgSuite extension."


@parameterNodeWrapper
class SegmentationParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    preset: Annotated[str, Choice(list(CT_PRESETS))] = "body"
    lowerThreshold: Annotated[float, WithinRange(-1024, 3000)] = -300.0
    removeCouch: Annotated[bool, Default(True)]
    fillHoles: Annotated[bool, Default(True)]
    outputSegmentation: vtkMRMLSegmentationNode | None
    atlasFolder: pathlib.Path
    fusion: Annotated[str, Choice(list(FUSION_METHODS))] = "gaussian"
    microscopyFile: pathlib.Path
    nuclearChannel: str = ""
    nucleiMethod: Annotated[str, Choice(list(NUCLEI_METHODS))] = "auto"
    nucleiModel: pathlib.Path
    excludeBorder: Annotated[bool, Default(False)]
    trackNuclei: Annotated[bool, Default(False)]
    nucleiThreshold: Annotated[float, WithinRange(0, 1e9)] = 0.0
    nucleiThreshold8bit: Annotated[float, WithinRange(0, 255)] = 0.0  # imgsuite nuclei --threshold-8bit
    diameter: Annotated[float, WithinRange(0, 1000)] = 0.0
    minArea: Annotated[float, WithinRange(0, 1000000)] = 0.0
    perinuclearWidth: Annotated[int, WithinRange(0, 100)] = 3
    perinuclearMode: Annotated[str, Choice(list(PERINUCLEAR_MODES))] = "ring"
    splitTouching: Annotated[bool, Default(True)]
    nucleiOutput: pathlib.Path


class SegmentationWidget(ParameterNodeGuiMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/Segmentation.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SegmentationLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.atlasButton.connect("clicked(bool)", self.onAtlasButton)
        self.ui.nucleiButton.connect("clicked(bool)", self.onNucleiButton)
        self.initializeParameterNode()

    def initializeParameterNode(self):
        super().initializeParameterNode()
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def onApplyButton(self):
        from SlicerImgSuite.slicer_gui import progress_dialog

        p = self._parameterNode
        with job_errors("CT segmentation failed."):
            with progress_dialog("CT threshold segmentation") as progress:
                node, voxels = self.logic.segmentCT(
                    p.inputVolume,
                    preset=p.preset,
                    lowerThreshold=p.lowerThreshold,
                    removeCouch=p.removeCouch,
                    fillHoles=p.fillHoles,
                    segmentationNode=p.outputSegmentation,
                    progress=progress,
                )
            p.outputSegmentation = node
            self.ui.resultText.setPlainText(f"{p.preset}: {voxels} voxels -> segment in {node.GetName()}")

    def onAtlasButton(self):
        from SlicerImgSuite.slicer_gui import progress_dialog

        p = self._parameterNode
        with job_errors("Atlas-based segmentation failed."):
            with progress_dialog("Multi-atlas segmentation") as progress:
                node = self.logic.segmentWithAtlases(p.inputVolume, p.atlasFolder, p.fusion, progress)
            self.ui.resultText.setPlainText(
                f"{node.GetSegmentation().GetNumberOfSegments()} structures fused ({p.fusion}) -> {node.GetName()}"
            )

    def onNucleiButton(self):
        from SlicerImgSuite.slicer_gui import ensure_packages, progress_dialog

        p = self._parameterNode
        with job_errors("Nuclei analysis failed."):
            ensure_packages()
            from SlicerImgSuite.segmentation.nuclei_job import NucleiOptions

            options = NucleiOptions(  # the imgsuite nuclei options; 0 = not given
                nuclear_channel=p.nuclearChannel or None,
                method=p.nucleiMethod,
                threshold=p.nucleiThreshold or None,
                threshold_8bit=p.nucleiThreshold8bit or None,
                diameter=p.diameter or None,
                min_area=p.minArea or None,
                perinuclear_width=p.perinuclearWidth,
                perinuclear_mode=p.perinuclearMode,
                split_touching=p.splitTouching,
                exclude_border=p.excludeBorder,
                track=p.trackNuclei,
                model=str(p.nucleiModel) if p.nucleiMethod == "model" else None,
            )
            with progress_dialog("Nuclei analysis") as progress:
                text = self.logic.analyzeNuclei(p.microscopyFile, p.nucleiOutput, options, progress)
            self.ui.resultText.setPlainText(text)


class SegmentationLogic(ScriptedLoadableModuleLogic):
    """Calls ``SlicerImgSuite.segmentation`` through the mrml adapters; holds no algorithm of its own."""

    def getParameterNode(self):
        return SegmentationParameterNode(super().getParameterNode())

    def segmentCT(
        self,
        volumeNode,
        preset="body",
        lowerThreshold=-300.0,
        removeCouch=True,
        fillHoles=True,
        segmentationNode=None,
        progress=None,
    ):
        """Run a threshold preset; adds (or replaces) the segment named after the preset. Returns (node, voxels)."""
        import SimpleITK as sitk

        from SlicerImgSuite.errors import ImgSuiteError
        from SlicerImgSuite.mrml.segmentations import segmentation_node_from_masks
        from SlicerImgSuite.mrml.volumes import image_from_volume_node
        from SlicerImgSuite.segmentation.ct import segment_preset

        if volumeNode is None:
            raise ImgSuiteError("select a CT volume first")
        ct = image_from_volume_node(volumeNode)
        mask = segment_preset(
            ct,
            preset,
            progress=progress,
            lower_threshold=lowerThreshold,
            remove_couch=removeCouch,
            fill_holes=fillHoles,
        )
        if segmentationNode is not None:
            old = segmentationNode.GetSegmentation().GetSegmentIdBySegmentName(preset)
            if old:
                segmentationNode.GetSegmentation().RemoveSegment(old)
        node = segmentation_node_from_masks(
            slicer.mrmlScene, {preset: mask}, name=f"{volumeNode.GetName()} threshold", node=segmentationNode
        )
        node.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
        return node, int(sitk.GetArrayViewFromImage(mask).sum())

    def segmentWithAtlases(self, volumeNode, atlasFolder, fusion="gaussian", progress=None):
        """Register every atlas in ``atlasFolder`` to the volume, fuse the structures into a new segmentation."""
        from SlicerImgSuite.errors import ImgSuiteError
        from SlicerImgSuite.mrml.segmentations import segmentation_node_from_masks
        from SlicerImgSuite.mrml.volumes import image_from_volume_node
        from SlicerImgSuite.segmentation.atlas import read_atlas, segment_with_atlases

        if volumeNode is None:
            raise ImgSuiteError("select the target volume first")
        folder = pathlib.Path(atlasFolder)
        if not folder.is_dir():
            raise ImgSuiteError("atlas folder not found", folder)
        atlases = [read_atlas(f) for f in sorted(folder.iterdir()) if f.is_dir() and not f.name.startswith(".")]
        fused = segment_with_atlases(image_from_volume_node(volumeNode), atlases, fusion=fusion, progress=progress)
        return segmentation_node_from_masks(slicer.mrmlScene, fused, name=f"{volumeNode.GetName()} atlas ({fusion})")

    def analyzeNuclei(self, path, outputFolder, options=None, progress=None):
        """Run ``imgsuite nuclei``'s job with ``options`` (a ``NucleiOptions``) and show every image and frame,
        the nuclei as segments named by cell id and the all-cells table in the scene; returns the text shown."""
        from SlicerImgSuite.errors import ImgSuiteError
        from SlicerImgSuite.segmentation.nodes import nuclei_run_to_scene
        from SlicerImgSuite.segmentation.nuclei_job import analyze_nuclei

        for value, what in ((path, "a microscopy image or folder"), (outputFolder, "an output folder")):
            if not str(value) or str(value) == ".":
                raise ImgSuiteError(f"choose {what}")
        results, warnings = analyze_nuclei(path, outputFolder, options, progress)
        channel = options.nuclear_channel if options else None
        return nuclei_run_to_scene(slicer.mrmlScene, results, warnings, outputFolder, channel)


class SegmentationTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_body_threshold()
        self.test_nuclei_discs()

    def test_body_threshold(self):
        import numpy as np

        array = np.full((6, 40, 40), -1000, dtype=np.int16)
        array[:, 10:30, 10:30] = 20
        array[:, 34:36, :] = -200  # a couch below the body
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        slicer.util.updateVolumeFromArray(node, array)
        segmentation, voxels = SegmentationLogic().segmentCT(node, "body")
        self.assertEqual(voxels, 6 * 20 * 20)
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 1)

    def test_nuclei_discs(self):
        import tempfile

        import numpy as np
        import tifffile

        from SlicerImgSuite.segmentation.nuclei_job import NucleiOptions

        yy, xx = np.mgrid[:80, :80]
        image = np.zeros((80, 80), np.uint16)
        for y, x in ((20, 20), (20, 60), (60, 40)):
            image[(yy - y) ** 2 + (xx - x) ** 2 <= 36] = 1000  # three nuclei of radius 6
        options = NucleiOptions(method="threshold", threshold_8bit=1, perinuclear_width=2, perinuclear_mode="grown")
        with tempfile.TemporaryDirectory() as folder:
            tifffile.imwrite(f"{folder}/discs.tif", image)
            text = SegmentationLogic().analyzeNuclei(f"{folder}/discs.tif", f"{folder}/out", options)
        self.assertIn("--threshold-8bit 1 = 257 in image units", text)
        segmentation = slicer.mrmlScene.GetFirstNodeByName("discs cells").GetSegmentation()
        self.assertEqual(sorted(segmentation.GetSegmentIDs()), ["1", "2", "3"])
        table = slicer.mrmlScene.GetFirstNodeByName("Nuclei cells (all images and frames)").GetTable()
        self.assertEqual(table.GetNumberOfRows(), 3)
        self.assertEqual(table.GetColumnByName("C0_grown_sum").GetValue(0), 1000 * 113)  # the disc (r 6): 113 px
