"""The viewer's web page (trame widgets): toolbar, structure panel, view labels, dose colour bar, probe.

Controls carry ``data-testid`` attributes so browser tests and users' own automation can drive them.
"""

from __future__ import annotations

from .display import WINDOW_PRESETS
from .page import (
    ALL_SEGMENTATIONS,
    apply_window_preset,
    dose_colorbar,
    orientation_letters,
    probe_text,
    set_structure_visible,
    show_segmentations,
    slice_position_text,
    structure_rows,
)

_ORIENTATION_NAMES = {"Red": "Axial", "Green": "Coronal", "Yellow": "Sagittal"}
_EDGE_STYLES = {
    "left": "left:6px;top:50%;",
    "right": "right:6px;top:50%;",
    "top": "top:22px;left:50%;",  # under the name bar
    "bottom": "bottom:30px;left:50%;",  # above trame-slicer's slice slider
}


def testid(name: str) -> str:
    """A ``data-testid`` attribute for ``raw_attrs``."""
    return f'data-testid="{name}"'


class PageContext:
    """What the page's callbacks need once the scene is loaded (views are created before it)."""

    def __init__(self):
        self.background = None
        self.dose = None


def slice_view_overlay(server, view_id, view, context: PageContext) -> None:
    """Slicer's slice-view annotations over a view: name bar, orientation letters, slice position; the
    cursor position and values go to the ``probe`` state."""
    from trame.widgets import html
    from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui
    from vtkmodules.vtkCommonCore import vtkCommand

    create_vertical_slice_view_gutter_ui(server, view_id, view)
    tag = view.get_singleton_tag()
    key = f"overlay_{''.join(c if c.isalnum() else '_' for c in tag)}"
    node = view.get_view_node()
    color = node.GetLayoutColor() if hasattr(node, "GetLayoutColor") else (0.5, 0.5, 0.5)
    css = "#{:02x}{:02x}{:02x}".format(*(int(255 * c) for c in color))
    name = _ORIENTATION_NAMES.get(tag, node.GetOrientation())

    def update(*_):
        value = {"position": slice_position_text(node), **orientation_letters(node)}
        if server.state[key] != value:
            server.state[key] = value

    update()
    node.AddObserver(vtkCommand.ModifiedEvent, update)

    def probe(interactor, _event):
        x, y = interactor.GetEventPosition()
        ras = node.GetXYToRAS().MultiplyPoint([float(x), float(y), 0.0, 1.0])
        server.state.probe = probe_text(ras, context.background, context.dose)

    # before Slicer's interactor style, which may consume the event
    view.interactor().AddObserver(vtkCommand.MouseMoveEvent, probe, 100.0)
    label_style = "position:absolute;color:#ffd;font:13px sans-serif;text-shadow:0 0 2px #000;pointer-events:none;"
    with html.Div(
        style="position:absolute;top:0;left:0;width:100%;height:100%;pointer-events:none;",
        raw_attrs=[testid(f"view-{tag}")],
    ):
        html.Div(
            f"{name} ({tag}) · {{{{ {key}.position }}}}",
            style=f"position:absolute;top:0;left:40px;padding:1px 6px;background:{css};color:#000;"
            "font:bold 12px sans-serif;border-radius:0 0 4px 4px;",
            raw_attrs=[testid(f"view-label-{tag}")],
        )
        for edge, where in _EDGE_STYLES.items():
            html.Div(f"{{{{ {key}.{edge} }}}}", style=label_style + where, raw_attrs=[testid(f"letter-{edge}-{tag}")])


def build_page(viewer, title: str, layout: str, layout_ids: list[str], anatomy: list, context: PageContext) -> None:
    """The page around the views: title, layout and window selectors, the structure panel (☰), the dose bar."""
    from trame.ui.vuetify3 import VAppLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    server, app, layout_manager = viewer.server, viewer.app, viewer.layout_manager
    state, scene = server.state, app.scene
    context.background, context.dose = viewer.volume, viewer.dose

    def render_all():
        for view in app.view_manager.get_views():
            view.schedule_render()

    state.trame__title = title
    state.layout_id = layout
    state.layout_ids = layout_ids
    state.window_preset = None
    state.window_presets = list(WINDOW_PRESETS)
    state.segmentation_ids = [ALL_SEGMENTATIONS] + [n.GetName() for n in anatomy]
    state.segmentation_id = anatomy[0].GetName() if anatomy else ALL_SEGMENTATIONS
    state.structures = structure_rows(anatomy[:1])
    state.probe = ""
    state.background_name = viewer.volume.GetName() if viewer.volume is not None else "none"
    state.dose_bar = dose_colorbar(viewer.dose)
    state.dose_name = viewer.dose.GetName() if viewer.dose is not None else ""

    @state.change("layout_id")
    def _on_layout(layout_id, **_):
        if layout_id in layout_ids:
            layout_manager.set_layout(layout_id)

    @state.change("window_preset")
    def _on_preset(window_preset, **_):
        if apply_window_preset(viewer.volume, window_preset):
            render_all()

    @state.change("segmentation_id")
    def _on_segmentation(segmentation_id, **_):
        shown = show_segmentations(scene, anatomy, segmentation_id)
        state.structures = structure_rows(shown)
        render_all()

    def toggle(key, visible):
        set_structure_visible(scene, key, visible)
        shown = show_segmentations(scene, anatomy, state.segmentation_id)
        state.structures = structure_rows(shown)
        render_all()

    select = dict(density="compact", hide_details=True, variant="outlined")
    state.show_panel = True
    with VAppLayout(server, full_height=True) as page, v3.VLayout():
        with v3.VAppBar(density="compact"):
            v3.VAppBarNavIcon(click="show_panel = !show_panel", raw_attrs=[testid("menu-button")])
            v3.VAppBarTitle(title)
            v3.VSpacer()
            html.Div("{{ probe }}", classes="text-caption mx-2", raw_attrs=[testid("probe")])
            v3.VSelect(
                label="Window",
                v_model=("window_preset",),
                items=("window_presets",),
                style="max-width: 170px;",
                raw_attrs=[testid("window-preset")],
                **select,
            )
            v3.VSelect(
                v_model=("layout_id",),
                items=("layout_ids",),
                style="max-width: 220px;",
                classes="mx-2",
                raw_attrs=[testid("layout-select")],
                **select,
            )
        with (
            v3.VNavigationDrawer(v_model=("show_panel",), width=260, mobile_breakpoint=0, disable_resize_watcher=True),
            html.Div(classes="pa-2", raw_attrs=[testid("structure-panel")]),
        ):
            html.Div("Background: {{ background_name }}", classes="text-caption mb-2")
            v3.VSelect(
                label="Structures",
                v_model=("segmentation_id",),
                items=("segmentation_ids",),
                raw_attrs=[testid("segmentation-select")],
                **select,
            )
            with html.Div(v_for="s in structures", classes="d-flex align-center my-1", raw_attrs=[':key="s.key"']):
                html.Input(
                    type="checkbox",
                    change=(toggle, "[s.key, $event.target.checked]"),
                    raw_attrs=[':checked="s.visible"', ":data-testid=\"'structure-toggle-' + s.name\""],
                )
                html.Span(
                    style="display:inline-block;width:14px;height:14px;margin:0 6px;border:1px solid #888;",
                    raw_attrs=[':style="{background: s.color}"'],
                )
                html.Span("{{ s.name }}", classes="text-body-2")
            _dose_colorbar()
        with v3.VMain(), v3.VContainer(fluid=True, classes="fill-height pa-0"):
            layout_manager.initialize_layout_grid(page)


def _dose_colorbar() -> None:
    """The dose's colour bar (Gy), drawn by the page: shown when the scene holds a dose."""
    from trame.widgets import html

    with html.Div(v_if="dose_bar", classes="mt-4", raw_attrs=[testid("dose-colorbar")]):
        html.Div("Dose (Gy): {{ dose_name }}", classes="text-caption")
        with html.Div(classes="d-flex"):
            html.Div(
                style="width:18px;height:160px;border:1px solid #888;",
                raw_attrs=[':style="{background: dose_bar.gradient}"'],
            )
            with html.Div(classes="d-flex flex-column justify-space-between ml-2 text-caption"):
                html.Div("{{ dose_bar.high }}")
                html.Div("{{ dose_bar.low }}")
