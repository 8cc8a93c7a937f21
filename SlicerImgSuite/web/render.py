"""Offscreen pictures of an MRML scene, drawn by Slicer's own displayable managers (trame-slicer)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError, check_number
from ..progress import ProgressCallback, no_progress
from .display import (
    check_source,
    dose_volume,
    load_source,
    main_volume,
    new_app,
    quiet_vtk_warnings,
    show_in_views,
    style_scene,
)

# Slicer's view names and the colour of each view's bar in Slicer's layout.
VIEW_NAMES = ("axial", "coronal", "sagittal", "3d")
_BAR_COLORS = {"axial": (243, 74, 51), "coronal": (109, 173, 74), "sagittal": (239, 214, 77), "3d": (116, 131, 233)}


@dataclass
class RenderedViews:
    """The pictures of one :func:`render_views` call.

    Attributes
    ----------
    images : dict
        View name -> RGB ``uint8`` array ``(rows, columns, 3)``, row 0 at the top.
    xy_to_ras : dict
        Slice view name -> its 4x4 pixel (x right, y up, slice) -> RAS matrix.
    path : Path or None
        The PNG written (all views side by side), if one was asked for.
    """

    images: dict[str, np.ndarray]
    xy_to_ras: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None

    def pixel(self, view: str, point_lps) -> tuple[int, int]:
        """``(row, column)`` of an LPS point (mm) in a slice view's image.

        Examples
        --------
        >>> r = RenderedViews({"axial": np.zeros((4, 4, 3), np.uint8)}, {"axial": np.diag([-1.0, -1, 1, 1])})
        >>> r.pixel("axial", (1.0, 2.0, 0.0))  # LPS (1, 2) is RAS (-1, -2): x=1, y=2 from the bottom
        (1, 1)
        """
        from ..mrml.ras import points_lps_to_ras

        if view not in self.xy_to_ras:
            raise ImgSuiteError(f"{view!r} is not a slice view of this rendering ({sorted(self.xy_to_ras)})")
        ras = np.append(points_lps_to_ras(point_lps)[0], 1.0)
        x, y, _, _ = np.linalg.solve(self.xy_to_ras[view], ras)
        rows = self.images[view].shape[0]
        return int(round(rows - 1 - y)), int(round(x))


def render_views(
    source,
    out_png: str | os.PathLike | None = None,
    *,
    layout: tuple[str, ...] = ("axial", "coronal", "3d"),
    size: tuple[int, int] = (400, 400),
    volume: str | None = None,
    focus_lps=None,
    surfaces: bool = True,
    progress: ProgressCallback | None = None,
) -> RenderedViews:
    """Render slice and 3D views of a scene offscreen, as Slicer shows them.

    Parameters
    ----------
    source : SlicerScene, vtkMRMLScene, or path
        A scene (left unchanged: it is copied through a temporary ``.mrb``), a ``.mrb``/``.mrml``
        file, or an image file / DICOM series folder.
    out_png : path, optional
        Write the views side by side into this PNG (atomically).
    layout : tuple of str
        Views, left to right, among ``"axial"``, ``"coronal"``, ``"sagittal"``, ``"3d"``.
    size : (width, height)
        Pixels per view.
    volume : str, optional
        Name of the volume behind the slices (default: the planning CT, see ``main_volume``).
    focus_lps : (x, y, z), optional
        LPS point (mm) the slice views pass through (default: the volume's centre slices).
    surfaces : bool
        Show segmentations as closed surfaces in the 3D view.
    progress : callable, optional

        ``(fraction, message)``.

    Returns
    -------
    RenderedViews

    Examples
    --------
    >>> import tempfile
    >>> import SimpleITK as sitk
    >>> d = Path(tempfile.mkdtemp())
    >>> ct = sitk.Image(16, 16, 8, sitk.sitkInt16)
    >>> ct[4:12, 4:12, 2:6] = 500
    >>> sitk.WriteImage(ct, str(d / "ct.nrrd"))
    >>> views = render_views(d / "ct.nrrd", d / "views.png", layout=("axial",), size=(32, 32))
    >>> views.images["axial"].shape, (d / "views.png").is_file()
    ((32, 32, 3), True)
    """
    progress = progress or no_progress
    for value in focus_lps if focus_lps is not None else ():
        check_number(value, "--focus")
    layout = tuple(name.lower() for name in layout)
    unknown = [name for name in layout if name not in VIEW_NAMES]
    if unknown or not layout:
        raise ImgSuiteError(f"unknown views {unknown or layout}; choose among {', '.join(VIEW_NAMES)}")
    width, height = (int(s) for s in size)
    if width < 16 or height < 16:
        raise ImgSuiteError(f"views of {width}x{height} pixels are too small")
    if out_png is not None and Path(out_png).suffix.lower() != ".png":
        raise ImgSuiteError("the picture must be a .png file", out_png)
    check_source(source)
    from trame_slicer.views import DirectViewFactory

    progress(0.0, "loading the scene")
    app = new_app()
    app.view_manager.register_factory(DirectViewFactory(do_render_offscreen=True))
    views = {}
    try:
        images, xy_to_ras = _render(
            app,
            views,
            layout=layout,
            size=(width, height),
            source=source,
            volume=volume,
            focus_lps=focus_lps,
            surfaces=surfaces,
            progress=progress,
        )
    finally:
        for view in views.values():
            view.finalize()  # release the offscreen OpenGL contexts now, also on errors
    result = RenderedViews(images, xy_to_ras)
    if out_png is not None:
        result.path = _write_png(side_by_side(images), Path(out_png))
    progress(1.0, "views rendered")
    return result


def _render(app, views, layout, size, source, volume, focus_lps, surfaces, progress):
    """Create the views (into ``views``), load the scene, style it and render each view once."""
    from trame_slicer.views import NoScheduleRendering, ViewLayoutDefinition

    definitions = {
        "axial": ViewLayoutDefinition.axial_view,
        "coronal": ViewLayoutDefinition.coronal_view,
        "sagittal": ViewLayoutDefinition.sagittal_view,
        "3d": ViewLayoutDefinition.threed_view,
    }
    width, height = size
    with quiet_vtk_warnings():
        for name in layout:
            view = app.view_manager.create_view(definitions[name]())
            view.render_window().SetSize(width, height)
            # Render once at the end, not on every display change made while setting up.
            view.set_scheduled_render(NoScheduleRendering())
            views[name] = view
    # Load after the views exist: a view created over a full scene is several times slower to set up.
    load_source(app, source)
    progress(0.2, "preparing the display")
    background = main_volume(app.scene, volume)
    style_scene(app.scene, background, surfaces=surfaces and "3d" in layout)
    focus_ras = None
    if focus_lps is not None:
        from ..mrml.ras import points_lps_to_ras

        focus_ras = points_lps_to_ras(focus_lps)[0]
    show_in_views(app.view_manager, background, focus_ras, dose=dose_volume(app.scene))

    images, xy_to_ras = {}, {}
    for n, (name, view) in enumerate(views.items()):
        progress(0.3 + 0.65 * n / len(views), f"rendering the {name} view")
        view.render()
        images[name] = _window_pixels(view.render_window())
        if name != "3d":
            matrix = view.get_view_node().GetXYToRAS()
            xy_to_ras[name] = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    return images, xy_to_ras


def side_by_side(images: dict[str, np.ndarray], gap: int = 2, bar: int = 4) -> np.ndarray:
    """Views left to right on a dark background, each under a bar of its Slicer colour.

    Examples
    --------
    >>> side_by_side({"axial": np.zeros((8, 8, 3), np.uint8), "3d": np.zeros((8, 6, 3), np.uint8)}).shape
    (12, 16, 3)
    """
    rows = max(image.shape[0] for image in images.values()) + bar
    columns = sum(image.shape[1] for image in images.values()) + gap * (len(images) - 1)
    out = np.full((rows, columns, 3), 24, np.uint8)
    x = 0
    for name, image in images.items():
        h, w = image.shape[:2]
        out[:bar, x : x + w] = _BAR_COLORS.get(name, (128, 128, 128))
        out[bar : bar + h, x : x + w] = image[..., :3]
        x += w + gap
    return out


def _window_pixels(window) -> np.ndarray:
    """The RGB pixels of a render window, row 0 at the top."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    image = grab.GetOutput()
    columns, rows, _ = image.GetDimensions()
    pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(rows, columns, -1)
    return np.ascontiguousarray(pixels[::-1, :, :3])


def _write_png(pixels: np.ndarray, path: Path) -> Path:
    from PIL import Image

    from ..io.atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return path
