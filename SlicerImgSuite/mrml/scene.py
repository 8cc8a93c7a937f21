"""A scene built the way the Slicer application builds it, from ``slicer-core`` (real MRML, no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Order matters: Segmentations must be attached before any segmentation node exists (it registers
# the representation converters that a segmentation copies when it is created).
_LOGICS = {
    "Colors": "vtkSlicerColorLogic",
    "Volumes": "vtkSlicerVolumesLogic",
    "SubjectHierarchy": "vtkSlicerSubjectHierarchyModuleLogic",
    "Segmentations": "vtkSlicerSegmentationsModuleLogic",
    "Markups": "vtkSlicerMarkupsLogic",
    "Transforms": "vtkSlicerTransformLogic",
    "Data": "vtkSlicerDataModuleLogic",
    "Models": "vtkSlicerModelsLogic",
    "Tables": "vtkSlicerTablesLogic",
    "Plots": "vtkSlicerPlotsLogic",
    "Sequences": "vtkSlicerSequencesLogic",
}


@dataclass
class SlicerScene:
    """An MRML scene with the application logic and the module logics Slicer attaches to it."""

    scene: object
    app_logic: object
    logics: dict = field(default_factory=dict)

    def add_node(self, class_name: str, name: str | None = None):
        node = self.scene.AddNewNodeByClass(class_name, name) if name else self.scene.AddNewNodeByClass(class_name)
        return node


def new_scene(set_global: bool = True) -> SlicerScene:
    """Create a scene, its application logic and module logics, as the Slicer application does.

    Parameters
    ----------
    set_global : bool
        Also set ``slicer.mrmlScene`` (the ``slicer.util`` helpers use it).
    """
    import slicer
    from vtkmodules.vtkCommonCore import vtkObject

    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    logics = {}
    # The colour logic reports that it has no home folder of colour files (there is no application
    # install); the built-in colour tables are still added, so keep that message quiet.
    warnings_were_on = vtkObject.GetGlobalWarningDisplay()
    vtkObject.GlobalWarningDisplayOff()
    for name, class_name in _LOGICS.items():
        logic = getattr(slicer, class_name)()
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        logics[name] = logic
    app_logic.SetColorLogic(logics["Colors"])
    vtkObject.SetGlobalWarningDisplay(warnings_were_on)
    if set_global:
        slicer.mrmlScene = scene
        slicer.app_logic = app_logic
    return SlicerScene(scene, app_logic, logics)
