"""XRayClassifier: a thin Slicer front end to ``SlicerImgSuite.xray`` (all work happens there)."""

from pathlib import Path

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLTableNode
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin


class XRayClassifier(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "X-ray Classifier"
        self.parent.categories = ["ImgSuite"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerImgSuite developers"]
        self.parent.helpText = (
            "Classify a chest radiograph (a 2-D scalar volume, or a DICOM DX/CR loaded through the DICOM browser) "
            "with an ONNX model from 'imgsuite xray train': shows the probability and overlays an occlusion heat "
            "map as a colour layer. Batch mode classifies every image of a folder into a table. "
            "Command line: imgsuite xray summary / train / evaluate / predict."
        )
        self.parent.acknowledgementText = "Part of the SlicerImgSuite extension."


@parameterNodeWrapper
class XRayClassifierParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    modelPath: Path
    heatmap: bool = True
    useDisplayWindow: bool = True
    batchFolder: Path
    heatmapVolume: vtkMRMLScalarVolumeNode
    resultTable: vtkMRMLTableNode


class XRayClassifierWidget(ParameterNodeGuiMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/XRayClassifier.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = XRayClassifierLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.classifyButton.connect("clicked(bool)", self.onClassifyButton)
        self.ui.batchButton.connect("clicked(bool)", self.onBatchButton)
        self.initializeParameterNode()

    def initializeParameterNode(self):
        super().initializeParameterNode()
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def _ensure(self):
        from SlicerImgSuite.slicer_gui import ensure_packages

        ensure_packages()
        ensure_packages({"onnxruntime": "onnxruntime"})

    def onClassifyButton(self):
        self._ensure()
        from SlicerImgSuite.slicer_gui import job_errors

        with job_errors("Classification failed."):
            text, heat = self.logic.classify(self._parameterNode)
            if heat is not None:
                slicer.util.setSliceViewerLayers(
                    background=self._parameterNode.inputVolume, foreground=heat, foregroundOpacity=0.45, fit=True
                )
            self.ui.resultText.setPlainText(text)

    def onBatchButton(self):
        from SlicerImgSuite.slicer_gui import job_errors, progress_dialog

        self._ensure()
        with job_errors("Batch classification failed."):  # Cancel in the progress dialog is a cancel
            with progress_dialog("X-ray classifier") as progress:
                table, text = self.logic.classifyFolder(self._parameterNode, progress)
            slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
            slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(table.GetID())
            slicer.app.applicationLogic().PropagateTableSelection()
            self.ui.resultText.setPlainText(text)


class XRayClassifierLogic(ScriptedLoadableModuleLogic):
    """Calls ``SlicerImgSuite.xray``; holds no algorithm of its own."""

    def getParameterNode(self):
        return XRayClassifierParameterNode(super().getParameterNode())

    def _model(self, p):
        from SlicerImgSuite.errors import ImgSuiteError
        from SlicerImgSuite.xray.predict import load_model

        if not p.modelPath or not str(p.modelPath) or str(p.modelPath) == ".":
            raise ImgSuiteError("choose a model file (.onnx from imgsuite xray train)")
        return load_model(p.modelPath)

    def classify(self, p):
        """Classify the input volume; returns (summary text, heat-map volume node or None)."""
        from SlicerImgSuite.errors import ImgSuiteError
        from SlicerImgSuite.xray.predict import classify_radiograph, radiograph_from_array

        node = p.inputVolume
        if node is None:
            raise ImgSuiteError("choose a radiograph volume")
        model = self._model(p)
        window = None
        display = node.GetDisplayNode()
        if p.useDisplayWindow and display is not None and not display.GetAutoWindowLevel():
            window = (display.GetLevel(), display.GetWindow())
        radiograph = radiograph_from_array(slicer.util.arrayFromVolume(node), window, node.GetName())
        probability, heat, warning = classify_radiograph(radiograph, model, heatmap=p.heatmap)
        text = f"{node.GetName()}: P({model.classes[1]}) = {probability:.3f} (model {Path(model.path).name})"
        if warning:
            text += f"\nwarning: {warning}"
        heat_node = None
        if heat is not None:
            heat_node = p.heatmapVolume or slicer.mrmlScene.AddNewNodeByClass(
                "vtkMRMLScalarVolumeNode", f"{node.GetName()} heat map"
            )
            heat_node.CopyOrientation(node)
            slicer.util.updateVolumeFromArray(heat_node, heat.reshape((1,) + heat.shape))
            heat_node.CreateDefaultDisplayNodes()
            heat_node.GetDisplayNode().SetAndObserveColorNodeID("vtkMRMLColorTableNodeFileColdToHotRainbow.txt")
            p.heatmapVolume = heat_node
        return text, heat_node

    def classifyFolder(self, p, progress=None):
        """Classify every image of the batch folder into a table node; returns (table node, summary text)."""
        from SlicerImgSuite.errors import ImgSuiteError
        from SlicerImgSuite.mrml.tables import table_node_from_rows
        from SlicerImgSuite.xray.data import read_radiograph
        from SlicerImgSuite.xray.predict import classify_radiograph, expand_inputs

        if not p.batchFolder or not Path(p.batchFolder).is_dir():
            raise ImgSuiteError("choose a folder of radiographs", p.batchFolder)
        model = self._model(p)
        paths = expand_inputs([p.batchFolder])
        rows = []
        for i, path in enumerate(paths):
            if progress:
                progress(i / len(paths), Path(path).name)
            probability, _, warning = classify_radiograph(read_radiograph(path), model, heatmap=False)
            rows.append([Path(path).name, round(probability, 4), model.classes[int(probability >= 0.5)], warning or ""])
        header = ["image", f"P({model.classes[1]})", "predicted", "warning"]
        table = table_node_from_rows(slicer.mrmlScene, header, rows, "X-ray predictions")
        p.resultTable = table
        positives = sum(r[2] == model.classes[1] for r in rows)
        return table, f"{len(rows)} images: {positives} predicted {model.classes[1]}"


class XRayClassifierTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_classify_volume()

    def test_classify_volume(self):
        import tempfile

        import numpy as np

        from SlicerImgSuite.xray.network import build_layers, to_onnx
        from SlicerImgSuite.xray.preprocess import Preprocessing

        model = Path(tempfile.mkdtemp()) / "m.onnx"
        model.write_bytes(to_onnx(build_layers("small", 32), Preprocessing(32), ["normal", "opacity"]))
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        slicer.util.updateVolumeFromArray(
            node, np.random.default_rng(0).integers(0, 4000, (1, 60, 50)).astype(np.int16)
        )
        logic = XRayClassifierLogic()
        p = logic.getParameterNode()
        p.inputVolume, p.modelPath = node, model
        text, heat = logic.classify(p)
        self.assertIn("P(opacity)", text)
        self.assertEqual(slicer.util.arrayFromVolume(heat).shape, (1, 60, 50))
