"""Helpers for the scripted modules inside the desktop Slicer application.

Imported only by ``Modules/*/*.py``; Slicer and Qt are imported inside the functions, so the
logic package still imports without them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging

from .progress import Cancelled

log = logging.getLogger("SlicerImgSuite")

# Python packages the logic needs that desktop Slicer does not bundle (import name -> pip name).
EXTRA_PACKAGES = {"skimage": "scikit-image", "tifffile": "tifffile", "matplotlib": "matplotlib", "numba": "numba"}


def ensure_packages(packages: dict[str, str] | None = None) -> None:
    """Offer to pip-install what is missing, once, with Slicer's own pip."""
    import slicer

    missing = [pip for mod, pip in (packages or EXTRA_PACKAGES).items() if importlib.util.find_spec(mod) is None]
    if not missing:
        return
    if not slicer.util.confirmOkCancelDisplay(
        f"SlicerImgSuite needs these Python packages: {', '.join(missing)}. Install them now?"
    ):
        raise RuntimeError(f"missing Python packages: {', '.join(missing)}")
    slicer.util.pip_install(" ".join(missing))


@contextlib.contextmanager
def progress_dialog(title: str):
    """A modal progress dialog; yields a ``(fraction, message)`` callback that raises
    :class:`~SlicerImgSuite.progress.Cancelled` when the user presses Cancel."""
    import qt
    import slicer

    dialog = slicer.util.createProgressDialog(windowTitle=title, labelText=title, maximum=1000)
    dialog.setCancelButtonText("Cancel")

    def callback(fraction: float, message: str = "") -> None:
        dialog.setValue(int(1000 * min(max(fraction, 0.0), 1.0)))
        if message:
            dialog.setLabelText(message)
        slicer.app.processEvents(qt.QEventLoop.ExcludeUserInputEvents)
        if dialog.wasCanceled:
            raise Cancelled()

    try:
        yield callback
    finally:
        dialog.close()


@contextlib.contextmanager
def job_errors(failure: str, wait_cursor: bool = True):
    """What a module's Apply runs its job in: errors shown as ``slicer.util.tryWithErrorDisplay`` shows them,
    but Cancel (:class:`~SlicerImgSuite.progress.Cancelled`, from :func:`progress_dialog`) is a cancel: the rest
    of the block is skipped, the log and the status bar say so, and no error dialog opens.

    Use it in place of ``slicer.util.tryWithErrorDisplay(failure, waitCursor=True)``::

        with job_errors("Registration failed."):
            with progress_dialog("Registration") as progress:
                result = logic.process(..., progress=progress)
            show(result)  # skipped on Cancel
    """
    import slicer

    with slicer.util.tryWithErrorDisplay(failure, waitCursor=wait_cursor):
        try:
            yield
        except Cancelled:
            message = f"{failure.removesuffix(' failed.')}: cancelled" if failure.endswith(" failed.") else "Cancelled"
            log.info(message)
            slicer.util.showStatusMessage(message, 5000)


class ParameterNodeGuiMixin:
    """The parameter-node plumbing of Slicer's scripted-module template, written once for every module.

    Put it first among a widget's bases (``class XWidget(ParameterNodeGuiMixin, ScriptedLoadableModuleWidget,
    VTKObservationMixin)``) so that its ``cleanup``/``enter``/``exit`` are the ones Slicer calls. The widget sets
    ``self.logic`` (whose ``getParameterNode()`` wraps the module's parameter node) and ``self.ui`` in ``setup``
    and observes ``EndCloseEvent`` with :meth:`onSceneEndClose`; a module that picks a default input overrides
    :meth:`initializeParameterNode` and calls ``super()`` first.
    """

    _parameterNode = None
    _parameterNodeGuiTag = None

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
