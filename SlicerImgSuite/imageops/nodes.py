"""The image tools on MRML volume nodes: what the Slicer "Image tools" module runs.

Each operation calls the :mod:`SlicerImgSuite.imageops` function itself with typed parameters (the same
functions the ``imgsuite`` commands call); its output image comes back as a new node and a measuring tool's
report (``stats``, ``compare``, ``dice``, ``probe``) as the text ``imgsuite`` prints. :func:`parse_params`
turns the module's text fields into those typed values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import SimpleITK as sitk

from ..cli_options import parse_numbers
from ..errors import ImgSuiteError
from ..geometry import require_same_grid
from ..progress import ProgressCallback, no_progress
from . import arithmetic, distance, filters, grid, masks, measure, reports, synthetic


@dataclass(frozen=True)
class Param:
    """One typed parameter: ``kind`` is ``float``, ``int``, ``bool``, ``"floats"``/``"ints"`` (``count`` numbers,
    or one repeated), ``"points"`` (``"x y z; x y z"``) or a tuple of choices (the first is the default)."""

    name: str
    kind: object
    default: object = None
    count: int = 3


@dataclass(frozen=True)
class Operation:
    label: str
    run: Callable  # (first image, second image or None, **params) -> image, or report text
    params: tuple[Param, ...] = ()
    second: str = ""  # what the second volume is ("" = not used; "mask", "image", "reference", "fixed")
    second_required: bool = False
    output: str = "volume"  # "volume", "labelmap" or "" (a report)


def _grid(a, b, what):
    require_same_grid(a, b, "the input", f"the {what}")
    return b


def _resample(a, b, spacing=None, dim=None, interpolation="linear", default_value=0.0):
    return grid.resample(a, b, spacing=spacing, dim=dim, interpolation=interpolation, default_value=default_value)


def _synth(_, __, pattern="sphere", dim=None, spacing=None, foreground=1.0, background=0.0):
    reference = synthetic.synth_grid(dim=dim or [64, 64, 64], spacing=spacing or [1.0, 1.0, 1.0])
    return synthetic.synth(pattern, reference, foreground=foreground, background=background).image


OPERATIONS: dict[str, Operation] = {
    "crop": Operation("Crop to voxel box (first and last voxel per axis)", lambda a, b, voxels: grid.crop(a, voxels),
                      (Param("voxels", "ints", count=6),)),
    "resample": Operation("Resample (onto the fixed volume's grid, or a spacing / size)", _resample,
                          (Param("spacing", "floats"), Param("dim", "ints"), Param("interpolation", ("linear", "nn")),
                           Param("default_value", float, 0.0)), "fixed"),
    "mask": Operation("Mask (outside := value)", lambda a, b, mask_value: masks.mask_image(a, _grid(a, b, "mask"), mask_value),
                      (Param("mask_value", float, 0.0),), "mask", True),
    "fill": Operation("Fill (inside := value)", lambda a, b, mask_value: masks.fill_image(a, _grid(a, b, "mask"), mask_value),
                      (Param("mask_value", float, 0.0),), "mask", True),
    "threshold": Operation("Threshold (voxels >= above, or <= below)",
                           lambda a, b, above, below: masks.threshold(a, above, below),
                           (Param("above", float), Param("below", float)), output="labelmap"),
    "add": Operation("Add (weighted)", lambda a, b, weights: arithmetic.add([a, b], weights),
                     (Param("weights", "floats", count=2),), "image", True),
    "average": Operation("Average", lambda a, b: arithmetic.average([a, b]), (), "image", True),
    "adjust": Operation("Adjust intensities (piecewise linear x,y pairs; truncation)",
                        lambda a, b, pw_linear, truncate_above, truncate_below: arithmetic.adjust(
                            a, pw_linear, truncate_above, truncate_below),
                        (Param("pw_linear", "floats", count=None), Param("truncate_above", float),
                         Param("truncate_below", float))),
    "scale": Operation("Scale", lambda a, b, weight: arithmetic.scale(a, weight), (Param("weight", float, 1.0),)),
    "diff": Operation("Difference (A - B)", lambda a, b: measure.diff(a, b), (), "image", True),
    "compare": Operation("Compare (difference statistics)",
                         lambda a, b: reports.compare_text(measure.compare(a, b)), (), "image", True, ""),
    "dice": Operation("Dice and Hausdorff",
                      lambda a, b: reports.dice_text(distance.dice_stats(a, b), True, True), (), "reference", True, ""),
    "boundary": Operation("Boundary voxels", lambda a, b: distance.boundary(a), output="labelmap"),
    "dmap": Operation("Distance map (mm)",
                      lambda a, b, inside_positive, absolute: distance.distance_map(
                          a, inside_positive=inside_positive, absolute=absolute),
                      (Param("inside_positive", bool, False), Param("absolute", bool, False))),
    "union": Operation("Union of masks", lambda a, b: masks.union([a, b]), (), "mask", True, "labelmap"),
    "stats": Operation("Statistics (inside the mask when given)",
                       lambda a, b: reports.stats_text(measure.image_stats(a, b and _grid(a, b, "mask")), True),
                       (), "mask", output=""),
    "probe": Operation("Probe values at mm positions", lambda a, b, locations: reports.probe_text(
                           measure.probe(a, locations=locations)), (Param("locations", "points"),), output=""),
    "filter": Operation("Gaussian filter", lambda a, b, width: filters.gauss_filter(a, width),
                        (Param("width", float, 1.0),)),
    "synth": Operation("Synthetic image", _synth,
                       (Param("pattern", synthetic.PATTERNS, "sphere"), Param("dim", "ints"), Param("spacing", "floats"),
                        Param("foreground", float, 1.0), Param("background", float, 0.0))),
}  # fmt: skip


def parse_params(name: str, texts: dict[str, str]) -> dict:
    """The typed parameters of operation ``name`` from the module's text fields (empty: the default).

    Examples
    --------
    >>> parse_params("resample", {"spacing": "2", "interpolation": "nn"})
    {'spacing': [2.0, 2.0, 2.0], 'dim': None, 'interpolation': 'nn', 'default_value': 0.0}
    >>> parse_params("probe", {"locations": "0 0 0; 10 0 0"})
    {'locations': [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]]}
    """
    values = {}
    for p in _operation(name).params:
        text = str(texts.get(p.name, "")).strip()
        if p.kind is bool:
            values[p.name] = text.lower() in ("1", "true", "yes", "on") if text else bool(p.default)
        elif not text:
            values[p.name] = p.kind[0] if isinstance(p.kind, tuple) and p.default is None else p.default
        elif isinstance(p.kind, tuple):
            if text not in p.kind:
                raise ImgSuiteError(f"{p.name}: {text!r} is not one of {', '.join(p.kind)}")
            values[p.name] = text
        elif p.kind == "points":
            values[p.name] = [parse_numbers(part, 3, p.name) for part in text.split(";") if part.strip()]
        elif p.kind in ("floats", "ints"):
            kind = int if p.kind == "ints" else float
            values[p.name] = parse_numbers(text, p.count, p.name, kind, allow_inf=p.name in ("pw_linear", "range"))
        else:
            values[p.name] = parse_numbers(text, 1, p.name, p.kind)[0]
    return values


def _operation(name: str) -> Operation:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise ImgSuiteError(f"unknown operation {name!r}; use one of {', '.join(OPERATIONS)}") from None


def run_operation(name: str, image: sitk.Image | None, second: sitk.Image | None = None, **params):
    """Run operation ``name`` on images with typed ``params`` (defaults for those left out).

    Returns
    -------
    (SimpleITK.Image or None, str)
        The output image (None for a report) and the report text ("" for an image).

    Examples
    --------
    >>> img = sitk.Image(4, 4, 2, sitk.sitkInt16) + 3
    >>> out, text = run_operation("stats", img)
    >>> text.split()[:2]
    ['MIN', '3.000000']
    >>> out, _ = run_operation("threshold", img, above=2)
    >>> int(sitk.GetArrayViewFromImage(out).sum())
    32
    """
    op = _operation(name)
    unknown = set(params) - {p.name for p in op.params}
    if unknown:
        raise ImgSuiteError(f"{op.label}: no parameter {', '.join(sorted(unknown))}")
    if second is None and op.second_required:
        raise ImgSuiteError(f"{op.label} needs a second volume ({op.second})")
    values = parse_params(name, {}) | params
    result = op.run(image, second if op.second else None, **values)
    return (None, result) if isinstance(result, str) else (result, "")


def run_on_nodes(
    scene,
    name: str,
    input_node=None,
    second_node=None,
    *,
    output_name: str | None = None,
    progress: ProgressCallback | None = None,
    **params,
):
    """Run operation ``name`` on volume nodes with typed ``params``; add the output volume (or labelmap) node to
    ``scene``. Errors name the nodes.

    Returns
    -------
    (node or None, str)
        The new node and the operation's report.
    """
    from ..mrml.volumes import image_from_volume_node, volume_node_from_image

    progress = progress or no_progress
    op = _operation(name)
    if input_node is None and name != "synth":
        raise ImgSuiteError(f"{op.label} needs an input volume")
    progress(0.0, f"{op.label}: reading volumes")
    image = image_from_volume_node(input_node) if input_node is not None and name != "synth" else None
    second = image_from_volume_node(second_node) if second_node is not None and op.second else None
    progress(0.2, op.label)
    try:
        output, text = run_operation(name, image, second, **params)
    except ImgSuiteError as exc:
        problem = str(exc).replace("the input", _name(input_node)).replace(f"the {op.second}", _name(second_node))
        raise ImgSuiteError(f"{op.label}: {problem}") from None
    node = None
    if output is not None:
        base = input_node.GetName() if input_node is not None else "synth"
        node = volume_node_from_image(scene, output, output_name or f"{base}_{name}", labelmap=op.output == "labelmap")
    progress(1.0, "done")
    return node, text


def _name(node) -> str:
    return node.GetName() if node is not None else "(none)"
