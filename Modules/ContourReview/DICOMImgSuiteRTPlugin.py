"""DICOM browser plugin: RTSTRUCT and RTDOSE series, loaded through ``SlicerImgSuite.review.dicom_plugin``."""

import slicer
from DICOMLib import DICOMLoadable, DICOMPlugin
from slicer.ScriptedLoadableModule import ScriptedLoadableModule


class DICOMImgSuiteRTPluginClass(DICOMPlugin):
    """Examine: one loadable per RTSTRUCT / RTDOSE object (with its referenced CT); load: logic layer."""

    def __init__(self):
        super().__init__()
        self.loadType = "ImgSuite RT"

    def examine(self, fileLists):
        from SlicerImgSuite.review.dicom_plugin import examine_files

        loadables = []
        for found in examine_files(fileLists, find_series=self._series_files):
            loadable = DICOMLoadable()
            loadable.files = found.files + found.ct_files
            loadable.name = found.name
            loadable.tooltip = found.tooltip
            loadable.warning = found.warning
            loadable.selected = True
            loadable.confidence = found.confidence
            loadable.imgsuite = found
            loadables.append(loadable)
        return loadables

    def _series_files(self, series_uid):
        return list(slicer.dicomDatabase.filesForSeries(series_uid))

    def load(self, loadable):
        from SlicerImgSuite.review.dicom_plugin import load_loadable

        with slicer.util.tryWithErrorDisplay(f"Loading {loadable.name} failed.", waitCursor=True):
            load_loadable(slicer.mrmlScene, loadable.imgsuite)
            return True
        return False


class DICOMImgSuiteRTPlugin(ScriptedLoadableModule):
    """Registers the plugin with Slicer's DICOM module (a hidden module, as Slicer's own DICOM plugins)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        parent.title = "DICOM ImgSuite RT plugin"
        parent.categories = ["Developer Tools.DICOM Plugins"]
        parent.contributors = ["SlicerImgSuite developers"]
        parent.helpText = "Loads RTSTRUCT (as segmentations, rasterized by SlicerImgSuite) and RTDOSE (Gy) series."
        parent.acknowledgementText = "Part of the SlicerImgSuite extension."
        parent.hidden = True
        if not hasattr(slicer.modules, "dicomPlugins"):
            slicer.modules.dicomPlugins = {}
        slicer.modules.dicomPlugins["DICOMImgSuiteRTPlugin"] = DICOMImgSuiteRTPluginClass
