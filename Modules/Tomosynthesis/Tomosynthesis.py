"""Tomosynthesis: a thin Slicer front end to ``SlicerImgSuite.tomo`` (all work happens there)."""

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

from SlicerImgSuite.choices import RECON_FILTERS, SWEEP_KINDS, TOMO_ALGORITHMS
from SlicerImgSuite.slicer_gui import ParameterNodeGuiMixin, job_errors


class Tomosynthesis(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Tomosynthesis"
        self.parent.categories = ["ImgSuite"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerImgSuite developers"]
        self.parent.helpText = (
            "Simulate a tomosynthesis sweep (DRRs) from a CT volume, or load a projection set (plastimatch "
            "folder or DIR/prefix, or image stack with .json geometry), and reconstruct coronal slices with "
            "shift-and-add, filtered back-projection or SART. The result overlays the CT (LPS geometry). "
            "Command line: imgsuite drr / tomo / fdk."
        )
        self.parent.acknowledgementText = "Part of the SlicerImgSuite extension."


@parameterNodeWrapper
class TomosynthesisParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    loadProjections: bool = False
    projectionPath: Path
    sweep: Annotated[str, Choice(list(SWEEP_KINDS))] = "linear"
    views: Annotated[int, WithinRange(1, 720)] = 25
    sweepAngle: Annotated[float, WithinRange(0.0, 360.0)] = 40.0
    sid: Annotated[float, WithinRange(100.0, 5000.0)] = 1800.0
    pixelSize: Annotated[float, WithinRange(0.05, 99.99)] = 1.0
    algorithm: Annotated[str, Choice(list(TOMO_ALGORITHMS))] = "fbp"
    filterKind: Annotated[str, Choice(list(RECON_FILTERS))] = "slice-thickness"
    iterations: Annotated[int, WithinRange(1, 100)] = 4
    sliceSpacing: Annotated[float, WithinRange(0.1, 99.99)] = 5.0
    depthMin: Annotated[float, WithinRange(0.0, 2000.0)] = 0.0
    depthMax: Annotated[float, WithinRange(0.0, 2000.0)] = (
        0.0  # depthMax <= depthMin: what every view sees between source and panel
    )
    onCtGrid: bool = False
    showProjections: bool = True
    outputVolume: vtkMRMLScalarVolumeNode


class TomosynthesisWidget(ParameterNodeGuiMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/Tomosynthesis.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = TomosynthesisLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.initializeParameterNode()

    def initializeParameterNode(self):
        super().initializeParameterNode()
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def onApplyButton(self):
        from SlicerImgSuite.slicer_gui import ensure_packages, progress_dialog

        ensure_packages()
        ensure_packages({"numba": "numba"})  # the projectors are compiled with numba
        with job_errors("Tomosynthesis failed."):
            with progress_dialog("Tomosynthesis") as progress:
                node, summary = self.logic.process(self._parameterNode, progress)
            self._parameterNode.outputVolume = node
            slicer.util.setSliceViewerLayers(background=node, fit=True)
            self.ui.resultText.setPlainText(summary)


class TomosynthesisLogic(ScriptedLoadableModuleLogic):
    """Calls ``SlicerImgSuite.tomo``; holds no algorithm of its own."""

    def getParameterNode(self):
        return TomosynthesisParameterNode(super().getParameterNode())

    def process(self, p, progress=None):
        """Simulate or load projections, reconstruct; returns (volume node, summary text)."""
        from SlicerImgSuite.errors import ImgSuiteError
        from SlicerImgSuite.mrml.volumes import image_from_volume_node
        from SlicerImgSuite.progress import sub_progress
        from SlicerImgSuite.tomo import nodes as tomo_nodes
        from SlicerImgSuite.tomo.projset import read_projections
        from SlicerImgSuite.tomo.recon import algorithm_options

        ct = image_from_volume_node(p.inputVolume) if p.inputVolume else None
        if p.loadProjections:
            if not p.projectionPath or not str(p.projectionPath):
                raise ImgSuiteError("choose a projection folder or stack to load")
            projections = read_projections(p.projectionPath)
        else:
            if ct is None:
                raise ImgSuiteError("choose a CT volume to simulate the sweep from")
            geometry = tomo_nodes.sweep_geometry(ct, p.sweep, p.views, p.sweepAngle, p.sid, p.pixelSize)
            projections = tomo_nodes.simulate_sweep(ct, geometry, sub_progress(progress, 0.0, 0.3))
        if p.showProjections:
            tomo_nodes.projection_sequence_node(slicer.mrmlScene, projections, "Projections")
        options = algorithm_options(p.algorithm, iterations=p.iterations, filter=p.filterKind)
        node = tomo_nodes.reconstruct_node(
            slicer.mrmlScene,
            projections,
            p.algorithm,
            reference=ct if (p.onCtGrid and ct is not None) else None,
            depth_range=(p.depthMin, p.depthMax) if p.depthMax > p.depthMin else None,
            slice_spacing=p.sliceSpacing,
            progress=sub_progress(progress, 0.3, 1.0),
            **options,
        )
        size = node.GetImageData().GetDimensions()
        summary = f"{len(projections.geometry)} views of {projections.geometry.dims[0]}x{projections.geometry.dims[1]}"
        return node, f"{summary} -> {p.algorithm.upper()} volume {size[0]}x{size[1]}x{size[2]}"


class TomosynthesisTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_simulate_and_reconstruct()

    def test_simulate_and_reconstruct(self):
        import numpy as np

        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        array = np.full((20, 24, 28), -1000, dtype=np.int16)
        array[4:16, 6:18, 6:22] = 0
        slicer.util.updateVolumeFromArray(node, array)
        logic = TomosynthesisLogic()
        p = logic.getParameterNode()
        p.inputVolume = node
        p.views, p.pixelSize, p.depthMax, p.sliceSpacing = 7, 2.0, 60.0, 10.0
        out, summary = logic.process(p)
        self.assertIn("7 views", summary)
        self.assertEqual(out.GetImageData().GetDimensions()[1], 7)
