"""A browser viewer of a scene or image (``imgsuite view``): Slicer's slice and 3D views over trame.

The server renders with Slicer's displayable managers (trame-slicer) and streams the pictures to
the page; mouse and keyboard events go back to Slicer's interactor styles on the server (the wheel
browses slices, a left drag sets window/level, a right drag zooms, a middle drag pans, as in Slicer).
It listens on the loopback interface unless told otherwise: the data never leaves the machine unless
the user asks for it.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress
from .display import (
    anatomy_segmentations,
    check_source,
    dose_volume,
    load_source,
    main_volume,
    new_app,
    quiet_vtk_warnings,
    show_in_views,
    style_scene,
)
from .page import SLICER_LAYOUTS

LAYOUTS = tuple(SLICER_LAYOUTS)  # Slicer's View > Layout names
DEFAULT_LAYOUT = "Four-Up"
TAB_IDLE_S = 300  # a tab's viewer exits after so long without its tab (trame's default time-out)
_SERVER_NUMBERS = itertools.count(1)
# Slicer's mouse mode in which a left drag sets window/level (right drag zooms, middle drag pans, wheel browses).
_ADJUST_WINDOW_LEVEL_MODE = 5  # vtkMRMLInteractionNode::AdjustWindowLevel


@dataclass
class Viewer:
    """A ready trame server showing a scene: ``viewer.server.start(...)`` or :func:`serve`."""

    server: object
    app: object
    layout_manager: object
    volume: object
    dose: object = None


def build_viewer(
    source,
    server=None,
    layout: str = DEFAULT_LAYOUT,
    volume: str | None = None,
    title: str | None = None,
    progress: ProgressCallback | None = None,
) -> Viewer:
    """Load ``source`` into a new trame-slicer application and lay out its web page.

    Parameters
    ----------
    source : SlicerScene, vtkMRMLScene, or path
        A scene, a ``.mrb``/``.mrml`` file, an image file or a DICOM series folder.
    server : trame_server.Server, optional
        Default: a new one (``trame.app.get_server``).
    layout : str
        One of Slicer's layouts (:data:`LAYOUTS`: ``"Four-Up"``, ``"Conventional"``, ...); the page has a
        selector to change it.
    volume : str, optional
        Name of the volume behind the slices (default: the planning CT, see ``display.main_volume``).
    title : str, optional
        Page title (default: the file name).
    """
    progress = progress or no_progress
    if layout not in LAYOUTS:
        raise ImgSuiteError(f"unknown layout {layout!r}; choose among {', '.join(LAYOUTS)}")
    from trame.app import get_server
    from trame_slicer import module as trame_slicer_module
    from trame_slicer.core import LayoutManager
    from trame_slicer.rca_view import register_rca_factories

    from .page import slicer_layouts
    from .page_ui import PageContext, build_page, slice_view_overlay

    check_source(source)
    progress(0.0, "starting")
    app = new_app()
    layouts = slicer_layouts()
    if server is None:
        # a server of its own: trame's default one is shared by everything in the process
        server = get_server(f"imgsuite-view-{next(_SERVER_NUMBERS)}", client_type="vue3")
    server.enable_module(trame_slicer_module)
    context = PageContext()
    register_rca_factories(
        app.view_manager, server, slice_view_ui_f=lambda *args: slice_view_overlay(*args, context=context)
    )
    layout_manager = LayoutManager(app.scene, app.view_manager, server)
    with quiet_vtk_warnings():
        # Create every layout's views now, so the volume and structures are set in all of them.
        layout_manager.register_layout_dict(layouts)
    layout_manager.set_layout(layout)
    # Load after the views exist: a view created over a full scene is several times slower to set up.
    progress(0.3, "loading")
    load_source(app, source)
    progress(0.7, "preparing the views")
    background = main_volume(app.scene, volume)
    anatomy = anatomy_segmentations(app.scene, background)
    style_scene(app.scene, background, shown=anatomy[:1])
    dose = dose_volume(app.scene)
    show_in_views(app.view_manager, background, dose=dose)
    app.app_logic.GetInteractionNode().SetCurrentInteractionMode(_ADJUST_WINDOW_LEVEL_MODE)
    with quiet_vtk_warnings():  # the same deprecated interactor event trame-slicer observes
        _fit_slices_on_resize(app.view_manager)

    viewer = Viewer(server, app, layout_manager, background, dose)
    build_page(viewer, title or _title(source), layout, list(layouts), anatomy, context)
    progress(1.0, "ready")
    return viewer


def serve(
    source,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    layout: str = DEFAULT_LAYOUT,
    volume: str | None = None,
    open_browser: bool = False,
    shared: bool = False,
    idle_s: float = 0,
    progress: ProgressCallback | None = None,
) -> None:
    """Serve ``source`` to browsers until interrupted (Ctrl-C); prints the address when ready.

    Each browser tab gets a viewer process of its own (:mod:`.tabs`): the layout, window, slices and
    structures chosen in one tab do not change another. ``shared``: one viewer for all tabs (this process).

    Parameters
    ----------
    source : path, SlicerScene or vtkMRMLScene
        A scene (``.mrb``/``.mrml``), an image file or a DICOM series folder.
    host : str
        Interface to listen on; the loopback interface by default. Any other address lets other
        machines see the data: a message says so.
    port : int
        TCP port; 0 picks a free one.
    layout : str
        The views, as ``imgsuite view --layout`` names them.
    volume : str, optional
        Name of the volume behind the slices (default: the planning CT).
    open_browser : bool
        Open the system browser on the page.
    shared : bool
        One viewer for all tabs (this process) instead of one process per tab.
    idle_s : float
        With ``shared``: exit after so many seconds without a browser tab (0: never).
    progress : callable, optional
        ``(fraction, message)`` while the scene loads.
    """
    _check_address(host, port)
    if not shared and isinstance(source, str | os.PathLike):  # a scene object: only this process has it
        from .tabs import serve_tabs

        check_source(source)
        arguments = [str(source), "--layout", layout, *(["--volume", volume] if volume else []),
                     "--idle-exit", str(TAB_IDLE_S)]  # fmt: skip
        return serve_tabs(arguments, _title(source), host, port, open_browser=open_browser)
    viewer = build_viewer(source, layout=layout, volume=volume, progress=progress)
    server = viewer.server

    def _ready(**_):
        _quiet_closed_connections()
        print(f"imgsuite view: serving {_title(source)} at http://{host}:{server.port}/ (Ctrl-C stops)", flush=True)

    server.controller.on_server_ready.add(_ready)
    if not _is_loopback(host):
        print(f"imgsuite view: listening on {host}: other machines can see this data", file=sys.stderr, flush=True)
    # trame reads its own options from sys.argv; ours are not for it.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        server.start(host=host, port=port, open_browser=open_browser, show_connection_info=False,
                     timeout=int(idle_s), disable_logging=True)  # fmt: skip
    finally:
        sys.argv = argv


def _fit_slices_on_resize(view_manager) -> None:
    """Refit each slice view to its volume when the page gives it a new size.

    The views are fitted at their default size before any browser connects; without this the
    first page shows the slices cropped to that size's aspect ratio.
    """
    from vtkmodules.vtkCommonCore import vtkCommand

    for view in view_manager.get_slice_views():

        def refit(*_, view=view):
            view.fit_view_to_content()
            view.schedule_render()

        view.interactor().AddObserver(vtkCommand.WindowResizeEvent, refit)


def _quiet_closed_connections() -> None:
    """Drop the tracebacks of pictures sent to a browser tab that just closed (a normal event here)."""
    import asyncio

    loop = asyncio.get_running_loop()

    def handler(loop, context):
        if not isinstance(context.get("exception"), ConnectionResetError):
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def _check_address(host: str, port: int) -> None:
    if not 0 <= int(port) <= 65535:
        raise ImgSuiteError(f"port {port} is not between 0 and 65535")
    if not host:
        raise ImgSuiteError("an empty host name")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _title(source) -> str:
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    return "scene"
