"""Hyperspectral: a thin Slicer front end to ``SlicerImgSuite.hsi`` (all work happens there).

Also registers a file reader, so that dropping a ``.hsi`` container (or an ENVI ``.hdr``) into
Slicer loads the cube as a vector volume, its labels as a segmentation and its boxes as ROIs.
"""

import os
from pathlib import Path
from typing import Annotated

import slicer
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLVectorVolumeNode
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from SlicerImgSuite.slicer_gui import ParameterNodeGuiMixin, job_errors


class Hyperspectral(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Hyperspectral"
        self.parent.categories = ["ImgSuite"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerImgSuite developers"]
        self.parent.helpText = (
            "Read, calibrate and view hyperspectral .hsi containers and ENVI cubes: pick a band or an RGB "
            "composite, and plot the spectrum under a markups point. Drop a .hsi or .hdr file to load it."
        )
        self.parent.acknowledgementText = "Part of the SlicerImgSuite extension."


class HyperspectralFileReader:
    """Slicer's scripted IO plugin: ``.hsi`` containers and ENVI ``.hdr`` cubes."""

    def __init__(self, parent):
        self.parent = parent

    def description(self):
        return "Hyperspectral cube"

    def fileType(self):
        return "HyperspectralFile"

    def extensions(self):
        return ["Hyperspectral container (*.hsi)", "ENVI hyperspectral header (*.hdr)"]

    def canLoadFile(self, filePath):
        path = Path(filePath)
        if path.suffix.lower() == ".hsi":
            return True
        if path.suffix.lower() != ".hdr":
            return False
        try:  # Analyze .hdr files are binary; ENVI headers start with the word ENVI
            with open(path, "rb") as f:
                return f.read(4) == b"ENVI"
        except OSError:
            return False

    def canLoadFileConfidence(self, filePath):
        return 0.6 if self.canLoadFile(filePath) else 0.0

    def load(self, properties):
        try:
            nodes = HyperspectralLogic().loadFile(
                properties["fileName"], calibrate=bool(properties.get("calibrate", False))
            )
        except Exception as exc:  # Slicer shows the message in its error log and load dialog
            import logging

            logging.error(f"Failed to load {properties.get('fileName')}: {exc}")
            return False
        self.parent.loadedNodes = [n.GetID() for n in nodes]
        return True


@parameterNodeWrapper
class HyperspectralParameterNode:
    inputPath: Path
    calibrate: bool = False
    applyProcedures: bool = True
    inputVolume: vtkMRMLVectorVolumeNode
    band: Annotated[int, WithinRange(0, 100000)] = 0
    redBand: Annotated[int, WithinRange(0, 100000)] = 0
    greenBand: Annotated[int, WithinRange(0, 100000)] = 1
    blueBand: Annotated[int, WithinRange(0, 100000)] = 2
    pointNode: vtkMRMLMarkupsFiducialNode


class HyperspectralWidget(ParameterNodeGuiMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        from SlicerImgSuite.slicer_gui import ensure_packages

        ensure_packages()
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/Hyperspectral.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        import ctk

        self.ui.inputPathLineEdit.filters = ctk.ctkPathLineEdit.Files
        self.ui.inputPathLineEdit.nameFilters = ["Hyperspectral (*.hsi *.hdr)"]
        self.logic = HyperspectralLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.loadButton.connect("clicked(bool)", self.onLoad)
        self.ui.showBandButton.connect("clicked(bool)", self.onShowBand)
        self.ui.showRGBButton.connect("clicked(bool)", self.onShowRGB)
        self.ui.plotButton.connect("clicked(bool)", self.onPlot)
        self.ui.bandSpinBox.connect("valueChanged(int)", self.updateWavelengthLabel)
        self.ui.inputSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateWavelengthLabel)
        self.initializeParameterNode()

    def updateWavelengthLabel(self, *args):
        node = self._parameterNode.inputVolume if self._parameterNode else None
        self.ui.wavelengthLabel.text = self.logic.bandLabel(node, self.ui.bandSpinBox.value) if node else ""

    def onLoad(self):
        p = self._parameterNode
        with job_errors("Loading the hyperspectral file failed."):
            nodes = self.logic.loadFile(str(p.inputPath), p.calibrate, p.applyProcedures)
            p.inputVolume = nodes[0]
            self.ui.resultText.setPlainText(self.logic.describe(nodes[0]))

    def onShowBand(self):
        p = self._parameterNode
        with job_errors("Showing the band failed."):
            self.logic.showBand(p.inputVolume, p.band)

    def onShowRGB(self):
        p = self._parameterNode
        with job_errors("Showing the RGB composite failed."):
            self.logic.showRGB(p.inputVolume, [p.redBand, p.greenBand, p.blueBand])

    def onPlot(self):
        p = self._parameterNode
        with job_errors("Plotting the spectrum failed."):
            self.logic.plotSpectrum(p.inputVolume, p.pointNode)


class HyperspectralLogic(ScriptedLoadableModuleLogic):
    """Calls ``SlicerImgSuite.hsi``; holds no algorithm of its own."""

    BAND_ROLE, RGB_ROLE = "HyperspectralBand", "HyperspectralRGB"

    def getParameterNode(self):
        return HyperspectralParameterNode(super().getParameterNode())

    def loadFile(self, path, calibrate=False, applyProcedures=True):
        """Load a .hsi/.hdr; returns [vector volume, segmentation?, ROIs...] and shows an RGB composite."""
        from SlicerImgSuite.hsi.nodes import load_into_scene
        from SlicerImgSuite.slicer_gui import progress_dialog

        with progress_dialog(f"Loading {os.path.basename(path)}") as progress:
            loaded = load_into_scene(
                slicer.mrmlScene, path, calibrate=calibrate, apply_procedures=applyProcedures, progress=progress
            )
        nodes = [loaded["volume"]] + ([loaded["segmentation"]] if loaded["segmentation"] else []) + loaded["rois"]
        self.showRGB(loaded["volume"], None)
        return nodes

    def describe(self, volumeNode):
        from SlicerImgSuite.hsi.nodes import wavelengths_of

        data = volumeNode.GetImageData()
        wavelengths = wavelengths_of(volumeNode)
        span = (
            f"{wavelengths[0]:.1f}..{wavelengths[-1]:.1f} {volumeNode.GetAttribute('hsi.wavelength_units')}"
            if wavelengths is not None
            else "no wavelengths"
        )
        dims = data.GetDimensions()
        return f"{dims[1]} lines x {dims[0]} samples x {data.GetNumberOfScalarComponents()} bands, {span}"

    def bandLabel(self, volumeNode, band):
        from SlicerImgSuite.hsi.nodes import wavelengths_of

        wavelengths = wavelengths_of(volumeNode)
        if wavelengths is None or not 0 <= band < len(wavelengths):
            return f"band {band}"
        return f"{wavelengths[band]:.2f} {volumeNode.GetAttribute('hsi.wavelength_units') or ''}"

    def _output(self, volumeNode, role):
        node = volumeNode.GetNodeReference(role)
        return node if node is not None and node.GetScene() is not None else None

    def showBand(self, volumeNode, band):
        from SlicerImgSuite.hsi.nodes import band_volume

        node = band_volume(slicer.mrmlScene, volumeNode, band, output=self._output(volumeNode, self.BAND_ROLE))
        volumeNode.SetNodeReferenceID(self.BAND_ROLE, node.GetID())
        slicer.util.setSliceViewerLayers(background=node, fit=True)
        return node

    def showRGB(self, volumeNode, bands):
        from SlicerImgSuite.hsi.nodes import rgb_volume

        node = rgb_volume(slicer.mrmlScene, volumeNode, bands, output=self._output(volumeNode, self.RGB_ROLE))
        volumeNode.SetNodeReferenceID(self.RGB_ROLE, node.GetID())
        slicer.util.setSliceViewerLayers(background=node, fit=True)
        return node

    def plotSpectrum(self, volumeNode, pointNode):
        from SlicerImgSuite.hsi.nodes import spectrum_plot

        if pointNode is None or pointNode.GetNumberOfControlPoints() == 0:
            raise ValueError("Place a markups point on the cube first.")
        position = [0.0, 0.0, 0.0]
        pointNode.GetNthControlPointPositionWorld(0, position)
        table, chart = spectrum_plot(
            slicer.mrmlScene, volumeNode, position, f"Spectrum {pointNode.GetNthControlPointLabel(0)}"
        )
        slicer.modules.plots.logic().ShowChartInLayout(chart)
        return table, chart


class HyperspectralTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_load_view_and_plot()

    def test_load_view_and_plot(self):
        import tempfile

        import numpy as np

        from SlicerImgSuite.hsi.container import write_hsi

        path = Path(tempfile.mkdtemp()) / "test.hsi"
        cube = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)
        write_hsi(path, cube, wavelength=[450, 500, 550, 600, 650, 700])
        reader = HyperspectralFileReader(None)
        self.assertTrue(reader.canLoadFile(str(path)))
        logic = HyperspectralLogic()
        volume = logic.loadFile(str(path))[0]
        self.assertEqual(volume.GetImageData().GetNumberOfScalarComponents(), 6)
        band = logic.showBand(volume, 2)
        self.assertEqual(slicer.util.arrayFromVolume(band)[0, 1, 3], cube[1, 3, 2])
        point = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
        point.AddControlPoint(0.0, 0.0, 0.0)  # pixel (0, 0) sits at the origin
        table, _ = logic.plotSpectrum(volume, point)
        self.assertEqual(table.GetNumberOfRows(), 6)
        self.assertEqual(table.GetTable().GetValue(5, 1).ToDouble(), float(cube[0, 0, 5]))
