"""Cancel in the Slicer modules is a cancel: slicer_gui.job_errors and progress_dialog, with stand-ins for the
few ``slicer``/``qt`` calls they make (the same helpers every module's Apply runs in)."""

from __future__ import annotations

import contextlib
import logging
import sys
import types
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
    assert "from SlicerImgSuite.slicer_gui import job_errors" in source
    assert "waitCursor=True" not in source  # every job: job_errors, not slicer.util.tryWithErrorDisplay
    assert source.count("job_errors(") >= 1
