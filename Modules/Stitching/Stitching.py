"""Panoramic stitching: a thin Slicer front end to ``SlicerImgSuite.stitch`` (all work happens there)."""

from pathlib import Path
from typing import Annotated

import slicer
from slicer import vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from SlicerImgSuite.choices import STITCH_BLENDS, STITCH_METHODS, STITCH_MODES
from SlicerImgSuite.slicer_gui import ParameterNodeGuiMixin


class Stitching(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Panoramic stitching"
        self.parent.categories = ["ImgSuite"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerImgSuite developers"]
        self.parent.helpText = (
            "Stitch overlapping radiographs (long-leg, full-spine) into one image on a measurement plane: "
            "shots in name order from a folder (DICOM DX/CR, or PNG/TIFF with JSON geometry sidecars), or a "
            "projection set of imgsuite drr. Seams come from the geometry, the anatomy or a ruler's marks. The "
            "result's spacing is the pixel size in the plane, so the Markups line tool measures lengths there. "
            "Command line: imgsuite stitch."
        )
        self.parent.acknowledgementText = "Part of the SlicerImgSuite extension."


@parameterNodeWrapper
class StitchingParameterNode:
    shotFolder: Path
    mode: Annotated[str, Choice(list(STITCH_MODES))] = "parallel"
    method: Annotated[str, Choice(list(STITCH_METHODS))] = "image"
    blend: Annotated[str, Choice(list(STITCH_BLENDS))] = "linear"
    planeDistance: Annotated[float, WithinRange(0.0, 5000.0)] = 0.0  # 0: DistanceSourceToPatient, else 90 % of the SID
    rulerSpacing: Annotated[float, WithinRange(1.0, 100.0)] = 10.0
    pixelSize: Annotated[float, WithinRange(0.0, 10.0)] = 0.0  # 0: from the files
    outputVolume: vtkMRMLScalarVolumeNode


class StitchingWidget(ParameterNodeGuiMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/Stitching.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = StitchingLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.initializeParameterNode()

    def onApplyButton(self):
        from SlicerImgSuite.slicer_gui import ensure_packages, job_errors, progress_dialog

        ensure_packages()
        with job_errors("Stitching failed."):
            with progress_dialog("Panoramic stitching") as progress:
                node, summary = self.logic.process(self._parameterNode, progress)
            self._parameterNode.outputVolume = node
            slicer.util.setSliceViewerLayers(background=node, fit=True)
            self.ui.resultText.setPlainText(summary)


class StitchingLogic(ScriptedLoadableModuleLogic):
    """Calls ``SlicerImgSuite.stitch``; holds no algorithm of its own."""

    def getParameterNode(self):
        return StitchingParameterNode(super().getParameterNode())

    def process(self, p, progress=None):
        """Stitch the folder's shots; returns (volume node, summary text)."""
        from SlicerImgSuite.stitch.job import stitch_radiographs
        from SlicerImgSuite.stitch.nodes import shot_paths, stitched_volume_node, summary_text

        result = stitch_radiographs(
            shot_paths(p.shotFolder),
            mode=p.mode,
            method=p.method,
            blend=p.blend,
            plane_distance=p.planeDistance or None,
            ruler_spacing=p.rulerSpacing,
            pixel_size=[p.pixelSize, p.pixelSize] if p.pixelSize > 0 else None,
            progress=progress,
        )
        node = stitched_volume_node(slicer.mrmlScene, result, "Stitched")
        return node, summary_text(result)


class StitchingTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_stitch_rendered_phantom()

    def test_stitch_rendered_phantom(self):
        import tempfile

        import numpy as np
        from PIL import Image

        from SlicerImgSuite.stitch.phantom import render_shots

        shots, _ = render_shots(mode="parallel", panel=(96, 160), pixel=2.0, shots=2, overlap_mm=40.0)
        folder = Path(tempfile.mkdtemp())
        for i, shot in enumerate(shots):
            Image.fromarray((shot.image / shot.image.max() * 60000).astype(np.uint16)).save(folder / f"shot{i}.png")
        logic = StitchingLogic()
        p = logic.getParameterNode()
        p.shotFolder, p.pixelSize = folder, 2.0
        node, summary = logic.process(p)
        self.assertIn("magnification not corrected", summary)
        self.assertGreater(node.GetImageData().GetDimensions()[1], 160)
