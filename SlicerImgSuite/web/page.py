"""The parts of the viewer page around Slicer's views: layouts, view labels, structure panel, window presets, probe.

Every piece reads or writes the MRML scene (display nodes, slice nodes); the page only mirrors it, so
what the browser shows is what Slicer would show for the same scene.
"""

from __future__ import annotations

import numpy as np

from .display import WINDOW_PRESETS, dose_range, nodes, quiet_vtk_warnings

# Slicer's own layouts (vtkMRMLLayoutNode's descriptions), by the names of Slicer's View > Layout menu.
SLICER_LAYOUTS = {
    "Four-Up": "SlicerLayoutFourUpView",
    "Conventional": "SlicerLayoutConventionalView",
    "Conventional Widescreen": "SlicerLayoutConventionalWidescreenView",
    "Red slice only": "SlicerLayoutOneUpRedSliceView",
    "3D only": "SlicerLayoutOneUp3DView",
}
ALL_SEGMENTATIONS = "All"
# RAS axis letters, (negative end, positive end): +x points to the patient's right, +y anterior, +z superior.
_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("I", "S"))


def slicer_layouts() -> dict:
    """``{menu name: trame-slicer Layout}`` read from Slicer's layout node, so the views sit where Slicer puts them."""
    import slicer
    from trame_slicer.views import slicer_layout_to_vue

    with quiet_vtk_warnings():
        scene = slicer.vtkMRMLScene()
        logic = slicer.vtkMRMLLayoutLogic()
        logic.SetMRMLScene(scene)
        node = logic.GetLayoutNode()
        layouts = {
            name: slicer_layout_to_vue(node.GetLayoutDescription(getattr(slicer.vtkMRMLLayoutNode, code)))
            for name, code in SLICER_LAYOUTS.items()
        }
        logic.SetMRMLScene(None)
    for layout in layouts.values():
        _rename_numeric_tags(layout)
    return layouts


def _rename_numeric_tags(layout) -> None:
    """Slicer tags its first 3D view "1"; trame-slicer builds JavaScript names from the tag, which must not
    start with a digit: "1" becomes "View1" (the view's label stays "1", as in Slicer)."""
    for item in layout.items:
        if hasattr(item, "items"):
            _rename_numeric_tags(item)
        elif item.singleton_tag[:1].isdigit():
            item.singleton_tag = f"View{item.singleton_tag}"


def axis_letter(direction) -> str:
    """The anatomical letter a RAS direction points to (its largest component).

    Examples
    --------
    >>> axis_letter([-1.0, 0.0, 0.0]), axis_letter([0.0, 0.2, 0.9])  # screen right of an axial view; up
    ('L', 'S')
    """
    direction = np.asarray(direction, float)[:3]
    axis = int(np.argmax(np.abs(direction)))
    letters = _AXIS_LETTERS[axis]
    return letters[1] if direction[axis] > 0 else letters[0]


def orientation_letters(slice_node) -> dict[str, str]:
    """Letters at the left, right, top and bottom edges of a slice view (``{"left": "R", ...}``)."""
    m = slice_node.GetXYToRAS()
    right = [m.GetElement(r, 0) for r in range(3)]
    up = [m.GetElement(r, 1) for r in range(3)]
    return {
        "left": axis_letter(-np.array(right)),
        "right": axis_letter(right),
        "top": axis_letter(up),
        "bottom": axis_letter(-np.array(up)),
    }


def slice_position_text(slice_node) -> str:
    """Slicer's slice annotation: the axis letter of the slice normal and the offset, e.g. ``"S: 12.0 mm"``."""
    m = slice_node.GetSliceToRAS()
    normal = np.array([m.GetElement(r, 2) for r in range(3)])
    origin = np.array([m.GetElement(r, 3) for r in range(3)])
    axis = int(np.argmax(np.abs(normal)))
    offset = float(origin @ normal)
    letter = _AXIS_LETTERS[axis][1] if normal[axis] > 0 else _AXIS_LETTERS[axis][0]
    return f"{letter}: {offset * np.sign(normal[axis]):.1f} mm"


def ras_text(ras) -> str:
    """A RAS point as Slicer's data probe writes it: ``"R 12.0  A -3.5  S 0.0"`` (sign gives the side)."""
    parts = []
    for value, (neg, pos) in zip(ras[:3], _AXIS_LETTERS):
        parts.append(f"{pos if value >= 0 else neg} {abs(value):.1f}")
    return "  ".join(parts)


def value_at(volume, ras) -> float | None:
    """The voxel value of ``volume`` at a RAS point (nearest voxel), or None outside it."""
    if volume is None or volume.GetImageData() is None:
        return None
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    ras_to_ijk = vtkMatrix4x4()
    volume.GetRASToIJKMatrix(ras_to_ijk)
    ijk = ras_to_ijk.MultiplyPoint([*map(float, ras[:3]), 1.0])[:3]
    index = [int(round(v)) for v in ijk]
    dims = volume.GetImageData().GetDimensions()
    if any(i < 0 or i >= n for i, n in zip(index, dims)):
        return None
    return float(volume.GetImageData().GetScalarComponentAsDouble(*index, 0))


def probe_text(ras, background, dose) -> str:
    """What the page shows under the cursor: position, the background value and the dose there."""
    text = ras_text(ras)
    value = value_at(background, ras)
    if value is not None:
        text += f"  |  {background.GetName()}: {value:.0f}"
    dose_value = value_at(dose, ras)
    if dose_value is not None:
        text += f"  |  dose {dose_value:.2f} Gy"
    return text


def structure_rows(shown) -> list[dict]:
    """One row per segment of each shown segmentation: key, name, colour (hex), visibility, segmentation name."""
    rows = []
    for node in shown:
        display = node.GetDisplayNode()
        segmentation = node.GetSegmentation()
        for segment_id in segmentation.GetSegmentIDs():
            segment = segmentation.GetSegment(segment_id)
            rgb = [int(round(255 * c)) for c in segment.GetColor()]
            rows.append(
                {
                    "key": f"{node.GetID()}|{segment_id}",
                    "name": segment.GetName(),
                    "color": "#{:02x}{:02x}{:02x}".format(*rgb),
                    "visible": bool(display.GetSegmentVisibility(segment_id)) if display else True,
                    "segmentation": node.GetName(),
                }
            )
    return rows


def set_structure_visible(scene, key: str, visible: bool) -> None:
    """Show or hide one segment (``key`` from :func:`structure_rows`)."""
    node_id, segment_id = key.split("|", 1)
    node = scene.GetNodeByID(node_id)
    if node is None or node.GetDisplayNode() is None:
        return
    node.GetDisplayNode().SetSegmentVisibility(segment_id, bool(visible))


def show_segmentations(scene, anatomy: list, choice: str) -> list:
    """Show the segmentation named ``choice`` (or all of ``anatomy`` for :data:`ALL_SEGMENTATIONS`); hide the rest."""
    shown = anatomy if choice == ALL_SEGMENTATIONS else [n for n in anatomy if n.GetName() == choice][:1]
    for node in nodes(scene, "vtkMRMLSegmentationNode"):
        if node.GetDisplayNode() is not None:
            node.GetDisplayNode().SetVisibility(node in shown)
    return shown


def apply_window_preset(volume, preset: str) -> bool:
    """Set ``volume``'s window/level to one of :data:`WINDOW_PRESETS`; False for an unknown name."""
    if volume is None or preset not in WINDOW_PRESETS:
        return False
    display = volume.GetDisplayNode()
    display.AutoWindowLevelOff()
    display.SetWindowLevel(*WINDOW_PRESETS[preset])
    return True


def dose_colorbar(dose) -> dict | None:
    """What the page's dose colour bar shows: the CSS gradient of the dose colour table and its range (Gy)."""
    if dose is None or dose.GetDisplayNode() is None:
        return None
    table = dose.GetDisplayNode().GetColorNode()
    low, high = dose_range(dose)
    stops = []
    count = table.GetNumberOfColors()
    for k in range(6):
        rgba = [0.0] * 4
        table.GetColor(int(round(k * (count - 1) / 5)), rgba)
        stops.append("rgb({},{},{})".format(*(int(255 * c) for c in rgba[:3])))
    return {"gradient": f"linear-gradient(to top, {', '.join(stops)})", "low": f"{low:.1f}", "high": f"{high:.1f}"}
