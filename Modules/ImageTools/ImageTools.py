"""Image tools: plastimatch's image utilities on volume nodes, one operation chooser.

A thin front end: the work is ``SlicerImgSuite.imageops`` (the same code as the ``imgsuite`` commands).
"""

from typing import Annotated

import slicer
from slicer import vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from SlicerImgSuite.choices import IMAGE_TOOL_OPERATIONS
from SlicerImgSuite.slicer_gui import ParameterNodeGuiMixin, job_errors


class ImageTools(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Image tools"
        self.parent.categories = ["ImgSuite"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerImgSuite developers"]
        self.parent.helpText = (
            "plastimatch's image utilities on volumes: crop, resample, mask, fill, threshold, add, average, adjust, "
            "scale, diff, compare, dice, boundary, dmap, union, stats, probe, filter, synth. Each operation shows its "
            "own parameters (numbers as <code>x y z</code> where several are asked, empty for the default); the same "
            "functions run as <code>imgsuite &lt;operation&gt;</code> on files."
        )
        self.parent.acknowledgementText = "Part of the SlicerImgSuite extension; option names follow plastimatch."


@parameterNodeWrapper
class ImageToolsParameterNode:
    operation: Annotated[str, Choice(list(IMAGE_TOOL_OPERATIONS))] = "resample"
    inputVolume: vtkMRMLScalarVolumeNode
    secondVolume: vtkMRMLScalarVolumeNode


class ImageToolsWidget(ParameterNodeGuiMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._fields = {}

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        from SlicerImgSuite.imageops.nodes import OPERATIONS

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ImageTools.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ImageToolsLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.operationSelector.connect("currentTextChanged(QString)", self.onOperationChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.initializeParameterNode()  # Slicer fills the chooser from the parameter's Choice
        for index, name in enumerate(IMAGE_TOOL_OPERATIONS):
            self.ui.operationSelector.setItemData(index, OPERATIONS[name].label, 3)  # tooltip
        self.onOperationChanged(self.ui.operationSelector.currentText)

    def onOperationChanged(self, name):
        from SlicerImgSuite.imageops.nodes import OPERATIONS

        op = OPERATIONS.get(name)
        if op is None:
            return
        self.ui.descriptionLabel.text = op.label
        self.ui.secondLabel.text = f"{op.second.capitalize()}:" if op.second else "(not used):"
        self.ui.secondSelector.enabled = bool(op.second)
        self.ui.inputSelector.enabled = name != "synth"
        self._showParameters(op)

    def _showParameters(self, op):
        """One field per typed parameter of the operation: a check box, a choice, or a text field."""
        import qt

        layout = self.ui.parametersWidget.layout()
        while layout.count():
            layout.takeAt(0).widget().deleteLater()
        self._fields = {}
        for param in op.params:
            if param.kind is bool:
                field = qt.QCheckBox()
                field.checked = bool(param.default)
            elif isinstance(param.kind, tuple):
                field = qt.QComboBox()
                field.addItems(list(param.kind))
                field.currentText = param.default or param.kind[0]
            else:
                field = qt.QLineEdit("" if param.default is None else str(param.default))
            layout.addRow(param.name.replace("_", " ") + ":", field)
            self._fields[param.name] = field

    def _parameterTexts(self):
        import qt

        texts = {}
        for name, field in self._fields.items():
            if isinstance(field, qt.QCheckBox):
                texts[name] = "true" if field.checked else "false"
            else:
                texts[name] = field.currentText if isinstance(field, qt.QComboBox) else field.text
        return texts

    def onApplyButton(self):
        from SlicerImgSuite.slicer_gui import progress_dialog

        p = self._parameterNode
        with job_errors("Image tools failed."):
            with progress_dialog(f"imgsuite {p.operation}") as progress:
                node, text = self.logic.process(
                    p.operation, p.inputVolume, p.secondVolume, self._parameterTexts(), progress
                )
            self.ui.resultText.setPlainText(text or (f"Created {node.GetName()}" if node else "Done."))
            if node is not None:
                if node.IsA("vtkMRMLLabelMapVolumeNode"):
                    slicer.util.setSliceViewerLayers(label=node)
                else:
                    slicer.util.setSliceViewerLayers(background=node, fit=True)


class ImageToolsLogic(ScriptedLoadableModuleLogic):
    """Calls ``SlicerImgSuite.imageops``; holds no algorithm of its own."""

    def getParameterNode(self):
        return ImageToolsParameterNode(super().getParameterNode())

    def process(self, operation, inputVolume, secondVolume=None, parameters=None, progress=None):
        """Run one operation with its parameters (typed values, or the text of the fields); return (new volume node
        or None, report)."""
        from SlicerImgSuite.imageops.nodes import parse_params, run_on_nodes

        texts = {k: v for k, v in (parameters or {}).items() if isinstance(v, str)}
        values = parse_params(operation, texts) | {k: v for k, v in (parameters or {}).items() if k not in texts}
        return run_on_nodes(slicer.mrmlScene, operation, inputVolume, secondVolume, progress=progress, **values)


class ImageToolsTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_threshold_and_stats()

    def test_threshold_and_stats(self):
        import numpy as np

        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        values = np.zeros((3, 4, 5), dtype=np.int16)
        values[1, 1:3, 1:4] = 100
        slicer.util.updateVolumeFromArray(node, values)
        logic = ImageToolsLogic()
        mask, _ = logic.process("threshold", node, parameters={"above": 50.0})
        self.assertTrue(mask.IsA("vtkMRMLLabelMapVolumeNode"))
        self.assertEqual(int(slicer.util.arrayFromVolume(mask).sum()), 6)
        _, text = logic.process("stats", node, mask, {})
        self.assertIn("NUMVOX 6", text)
