"""Image tools: plastimatch's image utilities on volume nodes, one operation chooser.

A thin front end: the work is ``SlicerImgSuite.imageops`` (the same code as the ``imgsuite`` commands).
"""

import slicer
from slicer import vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from SlicerImgSuite.slicer_gui import job_errors


class ImageTools(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Image tools"
        self.parent.categories = ["ImgSuite"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerImgSuite developers"]
        self.parent.helpText = (
            "plastimatch's image utilities on volumes: crop, resample, mask, fill, threshold, add, average, adjust, "
            "scale, diff, compare, dice, boundary, dmap, union, stats, probe, filter, synth. Options use plastimatch's "
            'syntax, for example <code>--spacing "2 2 2" --interpolation nn</code>; the same commands run as '
            "<code>imgsuite &lt;operation&gt;</code> on files."
        )
        self.parent.acknowledgementText = "Part of the SlicerImgSuite extension; option names follow plastimatch."


@parameterNodeWrapper
class ImageToolsParameterNode:
    operation: str = "resample"
    inputVolume: vtkMRMLScalarVolumeNode
    secondVolume: vtkMRMLScalarVolumeNode
    options: str = ""


class ImageToolsWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        from SlicerImgSuite.imageops.operations import OPERATIONS

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ImageTools.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        for name, op in OPERATIONS.items():
            self.ui.operationSelector.addItem(name)
            self.ui.operationSelector.setItemData(self.ui.operationSelector.count - 1, op.label, 3)  # tooltip
        self.logic = ImageToolsLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.operationSelector.connect("currentTextChanged(QString)", self.onOperationChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.initializeParameterNode()
        self.onOperationChanged(self.ui.operationSelector.currentText)

    def cleanup(self):
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, parameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def onOperationChanged(self, name):
        from SlicerImgSuite.imageops.operations import OPERATIONS

        op = OPERATIONS.get(name)
        if op is None:
            return
        self.ui.descriptionLabel.text = op.label
        self.ui.secondLabel.text = f"{op.second.capitalize()}:" if op.second else "(not used):"
        self.ui.secondSelector.enabled = bool(op.second)
        self.ui.inputSelector.enabled = name != "synth"
        self.ui.exampleLabel.text = f"e.g. {op.example}" if op.example else ""

    def onApplyButton(self):
        from SlicerImgSuite.slicer_gui import progress_dialog

        p = self._parameterNode
        with job_errors("Image tools failed."):
            with progress_dialog(f"imgsuite {p.operation}") as progress:
                node, text = self.logic.process(p.operation, p.inputVolume, p.secondVolume, p.options, progress)
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

    def process(self, operation, inputVolume, secondVolume=None, options="", progress=None):
        """Run one operation; return (new volume node or None, printed report)."""
        from SlicerImgSuite.imageops.operations import run_on_nodes

        return run_on_nodes(slicer.mrmlScene, operation, inputVolume, secondVolume, options, progress=progress)


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
        mask, _ = logic.process("threshold", node, options="--above 50")
        self.assertTrue(mask.IsA("vtkMRMLLabelMapVolumeNode"))
        self.assertEqual(int(slicer.util.arrayFromVolume(mask).sum()), 6)
        _, text = logic.process("stats", node, mask, "--sigma")
        self.assertIn("NUMVOX 6", text)
