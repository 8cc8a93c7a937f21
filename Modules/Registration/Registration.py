"""Registration: a thin Slicer front end to ``SlicerImgSuite.registration`` (all work happens there)."""

from typing import Annotated

import slicer
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from SlicerImgSuite.choices import REGISTRATION_PRESETS, TRANSFORM_KINDS
from SlicerImgSuite.slicer_gui import ParameterNodeGuiMixin, job_errors

PRESETS = [*REGISTRATION_PRESETS, "command file"]
KINDS = list(TRANSFORM_KINDS)


class Registration(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Registration"
        self.parent.categories = ["ImgSuite"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerImgSuite developers"]
        self.parent.helpText = (
            "Rigid, affine, B-spline and demons registration from presets or a plastimatch command file "
            "(load, edit, save), optional landmark pairs from markups, output as a linear, B-spline or grid "
            "transform node and an optional warped volume. Stages that do not improve, stop at their "
            "iteration limit or fold are reported."
        )
        self.parent.acknowledgementText = (
            "Part of the SlicerImgSuite extension; the command-file format is plastimatch's."
        )


@parameterNodeWrapper
class RegistrationParameterNode:
    fixedVolume: vtkMRMLScalarVolumeNode
    movingVolume: vtkMRMLScalarVolumeNode
    fixedLandmarks: vtkMRMLMarkupsFiducialNode
    movingLandmarks: vtkMRMLMarkupsFiducialNode
    outputVolume: vtkMRMLScalarVolumeNode
    preset: Annotated[str, Choice(PRESETS)] = "deformable"
    transformKind: Annotated[str, Choice(KINDS)] = "auto"
    transformName: str = "Registration"


class RegistrationWidget(ParameterNodeGuiMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/Registration.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = RegistrationLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.loadCommandButton.connect("clicked(bool)", self.onLoadCommandFile)
        self.ui.saveCommandButton.connect("clicked(bool)", self.onSaveCommandFile)
        self.ui.presetComboBox.connect("currentTextChanged(QString)", self.onPresetChanged)
        self.initializeParameterNode()
        self.onPresetChanged(self.ui.presetComboBox.currentText)

    def onPresetChanged(self, preset):
        """Show the preset's stages as an editable command file (what 'command file' then runs)."""
        if preset != "command file":
            self.ui.commandTextEdit.setPlainText(self.logic.presetText(preset))

    def onLoadCommandFile(self):
        import qt

        path = qt.QFileDialog.getOpenFileName(None, "Load command file", "", "Command files (*.txt *.cmd);;All (*)")
        if path:
            with slicer.util.tryWithErrorDisplay("Cannot load the command file."):
                self.ui.commandTextEdit.setPlainText(self.logic.loadCommandText(path))
                self.ui.presetComboBox.currentText = "command file"

    def onSaveCommandFile(self):
        import qt

        path = qt.QFileDialog.getSaveFileName(None, "Save command file", "register.txt", "Command files (*.txt)")
        if path:
            with slicer.util.tryWithErrorDisplay("Cannot save the command file."):
                self.logic.saveCommandText(self.ui.commandTextEdit.toPlainText(), path)

    def onApplyButton(self):
        from SlicerImgSuite.slicer_gui import progress_dialog

        p = self._parameterNode
        with job_errors("Registration failed."):
            with progress_dialog("Registration") as progress:
                transform, warped, result = self.logic.process(
                    p.fixedVolume, p.movingVolume, self.ui.commandTextEdit.toPlainText(),
                    fixedLandmarks=p.fixedLandmarks, movingLandmarks=p.movingLandmarks,
                    transformKind=p.transformKind, transformName=p.transformName,
                    warpedVolume=p.outputVolume, progress=progress,
                )  # fmt: skip
            self.ui.resultText.setPlainText(result.log)
            if warped is not None:
                slicer.util.setSliceViewerLayers(background=p.fixedVolume, foreground=warped, foregroundOpacity=0.5)
            if result.warnings:
                slicer.util.warningDisplay("\n".join(result.warnings), windowTitle="Registration warnings")


class RegistrationLogic(ScriptedLoadableModuleLogic):
    """Calls ``SlicerImgSuite.registration``; holds no algorithm of its own."""

    def getParameterNode(self):
        return RegistrationParameterNode(super().getParameterNode())

    def presetText(self, preset):
        from SlicerImgSuite.registration.cmdfile import format_command_file
        from SlicerImgSuite.registration.nodes import PRESETS as STAGES

        return format_command_file({}, STAGES[preset])

    def loadCommandText(self, path):
        from SlicerImgSuite.registration import read_command_file

        return read_command_file(path).text()

    def saveCommandText(self, text, path):
        from SlicerImgSuite.io import atomic_path
        from SlicerImgSuite.registration import parse_command_file

        parse_command_file(text, path)  # refuse to save what would not run
        with atomic_path(path) as tmp:
            tmp.write_text(text)

    def process(self, fixedVolume, movingVolume, commandText, fixedLandmarks=None, movingLandmarks=None,
                transformKind="auto", transformName="Registration", warpedVolume=None, progress=None):  # fmt: skip
        """Register; returns (transform node, warped volume node or None, RegistrationResult)."""
        from SlicerImgSuite.errors import ImgSuiteError
        from SlicerImgSuite.registration.nodes import module_stages, register_nodes

        if fixedVolume is None or movingVolume is None:
            raise ImgSuiteError("choose a fixed and a moving volume")
        stages, said = module_stages(commandText)
        transform, warped, result = register_nodes(
            slicer.mrmlScene, fixedVolume, movingVolume, stages=stages, progress=progress,
            fixed_markups=fixedLandmarks, moving_markups=movingLandmarks, transform_kind=transformKind,
            transform_name=transformName, warped_name=warpedVolume.GetName() if warpedVolume else None,
        )  # fmt: skip
        result.warnings[:0] = said
        if warped is not None and warpedVolume is not None:
            warpedVolume.SetAndObserveImageData(warped.GetImageData())
            warpedVolume.CopyOrientation(warped)
            slicer.mrmlScene.RemoveNode(warped)
            warped = warpedVolume
        return transform, warped, result


class RegistrationTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_shift()
        self.setUp()
        self.test_output_kinds()

    def _shifted_pair(self):
        """Two Gaussian blobs 3 mm apart, as fixed and moving volume nodes."""
        import SimpleITK as sitk

        from SlicerImgSuite.mrml.volumes import volume_node_from_image

        f = sitk.GaussianSource(sitk.sitkFloat32, [40] * 3, [5] * 3, [20] * 3, 100)
        m = sitk.GaussianSource(sitk.sitkFloat32, [40] * 3, [5] * 3, [23, 20, 20], 100)
        return volume_node_from_image(slicer.mrmlScene, f, "fixed"), volume_node_from_image(
            slicer.mrmlScene, m, "moving"
        )

    def test_shift(self):
        fixed, moving = self._shifted_pair()
        logic = RegistrationLogic()
        transform, _, result = logic.process(fixed, moving, logic.presetText("rigid"), transformKind="linear")
        self.assertEqual(transform.GetClassName(), "vtkMRMLLinearTransformNode")
        self.assertFalse(result.warnings)

    def test_output_kinds(self):
        from SlicerImgSuite.errors import ImgSuiteError

        fixed, moving = self._shifted_pair()
        logic = RegistrationLogic()
        text = logic.presetText("deformable")
        for kind, node_class in (("bspline", "vtkMRMLBSplineTransformNode"), ("grid", "vtkMRMLGridTransformNode")):
            transform, _, _ = logic.process(fixed, moving, text, transformKind=kind)
            self.assertEqual(transform.GetClassName(), node_class)
        with self.assertRaises(ImgSuiteError):
            logic.process(fixed, moving, text, transformKind="linear")
