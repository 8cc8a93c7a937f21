"""The image tools on MRML volume nodes: what the Slicer "Image tools" module runs.

Each operation is the ``imgsuite`` subcommand itself, so the module, the CLI and the plastimatch-parity tests
share one code path: the input nodes go to temporary NRRD files, the command runs with the user's options in
plastimatch syntax (``--spacing "1 1 1" --interpolation nn``), and its output image comes back as a new node
(its printed report as text).
"""

from __future__ import annotations

import contextlib
import io
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress


@dataclass(frozen=True)
class Operation:
    """How one command lays out its files: ``{in}``, ``{second}``, ``{out}`` are filled in."""

    label: str
    argv: tuple[str, ...]
    second: str = ""  # what the second volume is ("" = not used; "mask", "image", "reference", "fixed")
    second_required: bool = False
    output: str = "volume"  # "volume", "labelmap" or "" (text only)
    example: str = ""


OPERATIONS: dict[str, Operation] = {
    "crop": Operation(
        "Crop to voxel box", ("--input", "{in}", "--output", "{out}"), example='--voxels "10 50 10 50 0 20"'
    ),
    "resample": Operation(
        "Resample",
        ("--input", "{in}", "--output", "{out}"),
        "fixed",
        example='--spacing "2 2 2" --interpolation linear',
    ),
    "mask": Operation(
        "Mask (outside := value)",
        ("--input", "{in}", "--mask", "{second}", "--output", "{out}"),
        "mask",
        True,
        example="--mask-value -1000",
    ),
    "fill": Operation(
        "Fill (inside := value)",
        ("--input", "{in}", "--mask", "{second}", "--output", "{out}"),
        "mask",
        True,
        example="--mask-value 0",
    ),
    "threshold": Operation(
        "Threshold", ("--input", "{in}", "--output", "{out}"), output="labelmap", example="--above -500"
    ),
    "add": Operation("Add", ("{in}", "{second}", "--output", "{out}"), "image", True, example='--weight "1 -1"'),
    "average": Operation("Average", ("{in}", "{second}", "--output", "{out}"), "image", True),
    "adjust": Operation(
        "Adjust intensities",
        ("--input", "{in}", "--output", "{out}"),
        example="--pw-linear=-inf,0,-1000,0,1000,1000,inf,0",
    ),
    "scale": Operation("Scale", ("{in}", "--output", "{out}"), example="--weight 0.01"),
    "diff": Operation("Difference (A - B)", ("{in}", "{second}", "{out}"), "image", True),
    "compare": Operation("Compare (difference statistics)", ("{in}", "{second}"), "image", True, output=""),
    "dice": Operation("Dice and Hausdorff", ("--all", "{in}", "{second}"), "reference", True, output=""),
    "boundary": Operation("Boundary voxels", ("{in}", "--output", "{out}"), output="labelmap"),
    "dmap": Operation("Distance map", ("--input", "{in}", "--output", "{out}"), example="--inside-positive"),
    "union": Operation("Union of masks", ("{in}", "{second}", "--output", "{out}"), "mask", True, output="labelmap"),
    "stats": Operation("Statistics", ("{in}",), "mask", output="", example="--sigma"),
    "probe": Operation("Probe values", ("{in}",), output="", example='--location "0 0 0;10 0 0"'),
    "filter": Operation("Filter", ("{in}", "--output", "{out}"), example="--gauss-width 2"),
    "synth": Operation(
        "Synthetic image", ("--output", "{out}"), example='--pattern sphere --dim "64 64 64" --spacing 4'
    ),
}


def run_command(name: str, images: dict, options: str = "", names: dict | None = None) -> tuple[object, str]:
    """Run operation ``name`` on SimpleITK images ``{"in": img, "second": img}``; return (output image or None, text).

    ``names`` (same keys) are how error messages call the inputs (node names) instead of temporary files.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> img = sitk.Image(4, 4, 2, sitk.sitkInt16) + 3
    >>> out, text = run_command("stats", {"in": img})
    >>> text.split()[:2]
    ['MIN', '3.000000']
    """
    from ..cli import main
    from ..io import read_image, write_image

    try:
        op = OPERATIONS[name]
    except KeyError:
        raise ImgSuiteError(f"unknown operation {name!r}; use one of {', '.join(OPERATIONS)}") from None
    try:
        extra = shlex.split(options or "")
    except ValueError as exc:
        raise ImgSuiteError(f"cannot read the options {options!r}: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="imgsuite-") as tmp:
        files = {"out": str(Path(tmp) / "out.nrrd")}
        for key, image in images.items():
            if image is not None:
                files[key] = str(Path(tmp) / f"{key}.nrrd")
                write_image(image, files[key], compress=False)
        argv = [name]
        for word in op.argv:
            if word == "{second}" and "second" not in files:
                if op.second_required:
                    raise ImgSuiteError(f"{op.label} needs a second volume ({op.second})")
                continue
            argv.append(word.format(**{k: v for k, v in files.items()}) if "{" in word else word)
        if name == "stats" and "second" in files:
            argv += ["--mask", files["second"]]
        if name == "resample" and "second" in files:
            argv += ["--fixed", files["second"]]
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                rc = main([*argv, *extra, "--quiet"])
            except SystemExit as exc:  # argparse: a bad option
                rc = exc.code if isinstance(exc.code, int) else 2
        if rc != 0:
            message = stderr.getvalue().strip().splitlines()
            text = message[-1] if message else f"{name} failed"
            for key, label in (names or {}).items():
                if key in files:
                    text = text.replace(files[key], label)
            text = text.replace(tmp + "/", "").split(": error: ", 1)[-1]
            raise ImgSuiteError(f"{op.label}: {text}")
        output = read_image(files["out"]) if op.output and Path(files["out"]).exists() else None
    return output, stdout.getvalue()


def run_on_nodes(
    scene,
    name: str,
    input_node=None,
    second_node=None,
    options: str = "",
    output_name: str | None = None,
    progress: ProgressCallback | None = None,
):
    """Run operation ``name`` on volume nodes; add the output volume (or labelmap) node to ``scene``.

    Returns
    -------
    (node or None, str)
        The new node and the command's printed report.
    """
    from ..mrml.volumes import image_from_volume_node, volume_node_from_image

    progress = progress or no_progress
    op = OPERATIONS.get(name)
    if op is None:
        raise ImgSuiteError(f"unknown operation {name!r}")
    if input_node is None and name != "synth":
        raise ImgSuiteError(f"{op.label} needs an input volume")
    progress(0.0, f"{op.label}: reading volumes")
    images = {}
    if input_node is not None and name != "synth":
        images["in"] = image_from_volume_node(input_node)
    if second_node is not None and op.second:
        images["second"] = image_from_volume_node(second_node)
    progress(0.2, op.label)
    labels = {"in": input_node.GetName() if input_node is not None else "input"}
    if second_node is not None:
        labels["second"] = second_node.GetName()
    image, text = run_command(name, images, options, labels)
    node = None
    if image is not None:
        base = input_node.GetName() if input_node is not None else "synth"
        node = volume_node_from_image(scene, image, output_name or f"{base}_{name}", labelmap=op.output == "labelmap")
    progress(1.0, "done")
    return node, text
