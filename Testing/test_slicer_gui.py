"""Cancel in the Slicer modules is a cancel: slicer_gui.job_errors and progress_dialog, with stand-ins for the
few ``slicer``/``qt`` calls they make (the same helpers every module's Apply runs in)."""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import types
import unittest
from pathlib import Path

import pytest

from SlicerImgSuite import slicer_gui
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.progress import Cancelled

REPO = Path(__file__).resolve().parent.parent
MODULES = ["Hyperspectral", "ImageTools", "RTStructures", "Registration", "Segmentation", "Tomosynthesis"]


class FakeDialog:
    def __init__(self):
        self.wasCanceled = False
        self.closed = False
        self.values = []

    def setCancelButtonText(self, text):
        pass

    def setValue(self, value):
        self.values.append(value)

    def setLabelText(self, text):
        pass

    def close(self):
        self.closed = True


@pytest.fixture
def gui(monkeypatch):
    """A ``slicer`` that records error dialogs and status messages, and a ``qt`` with the one constant used."""
    shown = types.SimpleNamespace(errors=[], status=[], dialog=FakeDialog())

    @contextlib.contextmanager
    def try_with_error_display(message, waitCursor=False):  # Slicer's: any Exception -> an error dialog
        try:
            yield
        except Exception as exc:
            shown.errors.append((message, exc))

    util = types.SimpleNamespace(
        tryWithErrorDisplay=try_with_error_display,
        showStatusMessage=lambda text, ms=0: shown.status.append(text),
        createProgressDialog=lambda **kwargs: shown.dialog,
    )
    slicer = types.SimpleNamespace(util=util, app=types.SimpleNamespace(processEvents=lambda flags=None: None))
    qt = types.SimpleNamespace(QEventLoop=types.SimpleNamespace(ExcludeUserInputEvents=0))
    monkeypatch.setitem(sys.modules, "slicer", slicer)
    monkeypatch.setitem(sys.modules, "qt", qt)
    return shown


def test_cancel_is_logged_and_shows_no_error(gui, caplog):
    after = []
    with caplog.at_level(logging.INFO, logger="SlicerImgSuite"):
        with slicer_gui.job_errors("Registration failed."):
            with slicer_gui.progress_dialog("Registration") as progress:
                progress(0.2, "rigid")
                gui.dialog.wasCanceled = True  # the user presses Cancel
                progress(0.3, "rigid")
            after.append("shown a result")  # must be skipped
    assert gui.errors == [] and after == []
    assert gui.dialog.closed and gui.dialog.values == [200, 300]
    assert gui.status == ["Registration: cancelled"]
    assert "Registration: cancelled" in caplog.text


def test_errors_still_reach_the_error_dialog(gui):
    with slicer_gui.job_errors("Tomosynthesis failed."):
        with slicer_gui.progress_dialog("Tomosynthesis") as progress:
            progress(0.5)
            raise ImgSuiteError("no views", "/data/proj")
    assert [(m, str(e)) for m, e in gui.errors] == [("Tomosynthesis failed.", "/data/proj: no views")]
    assert gui.status == [] and gui.dialog.closed


def test_a_cancel_raised_by_the_job_itself_is_a_cancel_too(gui):
    with slicer_gui.job_errors("Nuclei analysis failed."):
        raise Cancelled()
    assert gui.errors == [] and gui.status == ["Nuclei analysis: cancelled"]


@pytest.mark.parametrize("module", MODULES)
def test_every_module_runs_its_jobs_in_job_errors(module):
    source = (REPO / "Modules" / module / f"{module}.py").read_text()
    assert re.search(r"from SlicerImgSuite\.slicer_gui import [\w, ]*\bjob_errors\b", source)
    assert "waitCursor=True" not in source  # every job: job_errors, not slicer.util.tryWithErrorDisplay
    assert source.count("job_errors(") >= 1


def _segmentation_module(monkeypatch, scene):
    """Modules/Segmentation/Segmentation.py on real slicer-core MRML (``slicer.mrmlScene`` = ``scene``), with
    stand-ins for the few desktop-only names it uses (the parameter-node wrapper, the scripted-module bases,
    the progress dialog and the error display). Returns the module and the errors the user would see."""
    import importlib.util

    import slicer

    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = lambda cls: cls
    wrapper.Choice = wrapper.Default = wrapper.WithinRange = lambda *args: None
    bases = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("", "Logic", "Widget"):
        setattr(bases, f"ScriptedLoadableModule{name}", type(f"ScriptedLoadableModule{name}", (), {}))
    bases.ScriptedLoadableModuleTest = unittest.TestCase  # as in Slicer
    monkeypatch.setitem(sys.modules, "slicer.parameterNodeWrapper", wrapper)
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", bases)
    monkeypatch.setitem(sys.modules, "qt", types.SimpleNamespace(QEventLoop=types.SimpleNamespace(ExcludeUserInputEvents=0)))  # fmt: skip
    errors = []

    @contextlib.contextmanager
    def try_with_error_display(message, waitCursor=False):
        try:
            yield
        except Exception as exc:
            errors.append(exc)

    monkeypatch.setattr(slicer.util, "tryWithErrorDisplay", try_with_error_display)
    monkeypatch.setattr(slicer.util, "createProgressDialog", lambda **kwargs: FakeDialog())
    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(processEvents=lambda flags=None: None), raising=False)
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)
    spec = importlib.util.spec_from_file_location("Segmentation", REPO / "Modules" / "Segmentation" / "Segmentation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, errors


def test_segmentation_module_passes_the_nuclei_fields_to_the_cli_job(monkeypatch, mrml, shared_data, tmp_path):
    import csv

    from SlicerImgSuite.segmentation import nuclei_job

    module, errors = _segmentation_module(monkeypatch, mrml.scene)
    jobs = []
    job = nuclei_job.analyze_nuclei
    monkeypatch.setattr(nuclei_job, "analyze_nuclei", lambda *args: jobs.append(args) or job(*args))
    fields = module.SegmentationParameterNode.__annotations__
    p = types.SimpleNamespace(**{k: getattr(module.SegmentationParameterNode, k, None) for k in fields})
    p.microscopyFile = shared_data / "dsb2018-nuclei-stardist-sample" / "img2d.tif"  # uint16 pixels
    p.nucleiOutput = tmp_path / "out"
    p.nucleiMethod, p.nucleiThreshold8bit, p.minArea = "threshold", 0.1, 40.0
    p.perinuclearMode, p.perinuclearWidth = "grown", 2
    texts = []
    widget = module.SegmentationWidget.__new__(module.SegmentationWidget)
    widget._parameterNode, widget.logic = p, module.SegmentationLogic()
    widget.ui = types.SimpleNamespace(resultText=types.SimpleNamespace(setPlainText=texts.append))
    widget.onNucleiButton()
    assert errors == [] and len(jobs) == 1
    options = jobs[0][2]
    assert (options.threshold_8bit, options.threshold, options.min_area) == (0.1, None, 40.0)
    assert (options.perinuclear_mode, options.perinuclear_width, options.method) == ("grown", 2, "threshold")
    with open(tmp_path / "out" / "cells.csv", newline="") as f:
        cells = list(csv.DictReader(f))
    assert cells and "C0_grown_sum" in cells[0] and min(int(c["area_px"]) for c in cells) >= 40
    assert "--threshold-8bit 0.1 = 25.7 in image units" in texts[0] and f"img2d: {len(cells)} nuclei" in texts[0]
    segmentation = mrml.scene.GetFirstNodeByName("img2d cells").GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(cells)

    p.nucleiOutput = Path("")  # the path field left empty
    widget.onNucleiButton()
    assert [str(e) for e in errors] == ["choose an output folder"] and len(jobs) == 1


def test_segmentation_module_self_test_runs_on_real_mrml(monkeypatch, mrml):
    """The module's own self-test (what Slicer's module test runs), here on slicer-core MRML."""
    module, errors = _segmentation_module(monkeypatch, mrml.scene)
    module.SegmentationTest("runTest").runTest()
    assert errors == []
