"""``imgsuite``: the command line of SlicerImgSuite.

Subcommands come from the job subpackages: each ``SlicerImgSuite/<job>/commands.py`` defines
``register(subparsers)``. :data:`COMMANDS` names, for every command, the module that registers it and a
one-line help, so that ``imgsuite --help`` and ``--version`` import no job package and ``imgsuite CMD``
imports and builds the parser of CMD alone (``Testing/test_cli_table.py`` checks the table against what
the ``commands`` modules register). Option names follow plastimatch, so existing scripts port by
changing the program name. Errors (bad input, and files that cannot be written) print one line naming
the file and the problem and exit with status 2 (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from . import __version__
from .errors import ImgSuiteError
from .progress import Cancelled, progress_for  # noqa: F401 (progress_for: its old home, kept for callers)

# command -> (module under SlicerImgSuite whose register() adds it, one-line help for `imgsuite --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "header": ("io.commands", "print an image's geometry (plastimatch header)"),
    "convert": ("io.commands", "convert images, DICOM series, structure sets and transforms (plastimatch convert)"),
    "demo": ("demo.commands", "generate a phantom patient and run every job on it"),
    "hsi": ("hsi.commands", "hyperspectral .hsi containers and ENVI cubes"),
    "crop": ("imageops.commands", "crop an image to a voxel box, a mm box or a structure's bounding box"),
    "resample": ("imageops.commands", "resample an image onto a new grid"),
    "mask": ("imageops.commands", "set voxels OUTSIDE a mask to --mask-value"),
    "fill": ("imageops.commands", "set voxels INSIDE a mask to --mask-value"),
    "threshold": ("imageops.commands", "make a 0/1 mask from intensity thresholds"),
    "add": ("imageops.commands", "add images (optionally weighted or averaged)"),
    "average": ("imageops.commands", "average images"),
    "adjust": ("imageops.commands", "adjust intensities: piecewise linear map, truncation, scaling"),
    "scale": ("imageops.commands", "multiply an image by a weight (float output)"),
    "diff": ("imageops.commands", "subtract two images: image_out = image_in_1 - image_in_2 (float)"),
    "compare": ("imageops.commands", "print statistics of the difference of two images"),
    "dice": ("imageops.commands", "Dice, Hausdorff and surface distances of two structures"),
    "boundary": ("imageops.commands", "mark a structure's boundary voxels"),
    "dmap": ("imageops.commands", "signed distance map (mm) of a structure, negative inside by default"),
    "union": ("imageops.commands", "union of masks (uchar)"),
    "stats": ("imageops.commands", "print image statistics, optionally inside a mask"),
    "probe": ("imageops.commands", "print values at voxel indices or mm positions (interpolated)"),
    "synth": ("imageops.commands", "make a synthetic image (and a CT series, structures)"),
    "thumbnail": ("imageops.commands", "one slice as a picture (PNG with window/level) or a 2D image"),
    "filter": ("imageops.commands", "Gaussian, Gabor, gradient-magnitude or kernel-image filtering (float output)"),
    "bbox": ("imageops.commands", "print the mm bounding box of a structure's non-zero voxels; optionally a box mask"),
    "maximum": ("imageops.commands", "voxel-wise maximum of images (plastimatch maximum)"),
    "multiply": ("imageops.commands", "voxel-wise product of images (plastimatch multiply)"),
    "intersect": ("imageops.commands", "intersection of masks: non-zero in every input (plastimatch intersect)"),
    "jacobian": ("imageops.commands", "Jacobian determinant of a vector field (as vf-stats --output-jacobian)"),
    "xf-invert": ("imageops.commands", "invert a transform: linear exactly, a vector field iteratively"),
    "wed": ("imageops.commands", "water-equivalent depth of every CT voxel for a beam from a point (plastimatch wed)"),
    "register": ("registration.commands", "multi-stage registration from a plastimatch command file"),
    "landmark-warp": ("registration.commands", "warp an image with landmark pairs (plastimatch lm-warp)"),
    "lm-warp": ("registration.commands", "warp an image with landmark pairs (plastimatch lm-warp)"),
    "warp": ("registration.commands", "apply a transform to an image, labelmap, dose or points"),
    "xf-convert": ("registration.commands", "convert transforms (B-spline <-> vector field ...)"),
    "compose": ("registration.commands", "compose two transforms (plastimatch compose)"),
    "vf-stats": ("registration.commands", "vector field statistics, Jacobian and folding"),
    "synth-vf": ("registration.commands", "synthetic vector field (plastimatch synth-vf)"),
    "dvh": ("rtstruct.commands", "dose-volume histograms per structure (plastimatch dvh)"),
    "gamma": ("rtstruct.commands", "gamma index between two dose images (plastimatch gamma)"),
    "segment": ("segmentation.commands", "threshold segmentation of a CT: patient body (couch removed), lungs or bone"),
    "nuclei": ("segmentation.commands", "fluorescence nuclei: labels, measurements, perinuclear rings, tracking"),
    "mabs": ("segmentation.commands", "multi-atlas segmentation: register atlases, warp their structures, fuse"),
    "nuclei-train": ("segmentation.commands", "train the optional nuclei U-Net on image/instance-mask pairs"),
    "drr": ("tomo.commands", "DRRs from a CT, or a tomosynthesis sweep (plastimatch drr options)"),
    "tomo": ("tomo.commands", "tomosynthesis reconstruction (shift-and-add, FBP, SART) from a projection set"),
    "fdk": ("tomo.commands", "cone-beam CT reconstruction (plastimatch fdk options)"),
    "stitch": ("stitch.commands", "stitch overlapping radiographs (long-leg, full-spine) onto a measurement plane"),
    "index": ("cohort.commands", "index a DICOM tree: one row per series (Parquet/CSV), re-reading only changed files"),
    "cohort": ("cohort.commands", "run a job (dvh, convert, register, nuclei) over every case of a cohort on Dask"),
    "compare-structures": ("review.commands", "compare two structure sets: Dice, HD95, surface Dice, APL per structure"),
    "review": ("web.commands", "review two structure sets in the browser: approve, send back, export (loopback)"),
    "xray": ("xray.commands", "chest radiograph classifier: summary, train, evaluate, predict (ONNX)"),
    "warm": ("warm.commands", "keep a warm process so that short jobs start in milliseconds (start, stop, status)"),
    "view": ("web.commands", "show a Slicer scene (.mrb) or an image in a web browser (slice and 3D views)"),
    "screenshot": ("web.commands", "render a scene's or image's slice and 3D views offscreen into a PNG"),
}


class _OnlyCommand:
    """The ``subparsers`` a ``commands`` module sees when one command runs: only that command's parser is
    attached; the module's other parsers are built on detached parsers and dropped."""

    def __init__(self, subparsers, command: str):
        self._subparsers = subparsers
        self._command = command
        self.common_parent = subparsers.common_parent

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        if name == self._command or self._command in kwargs.get("aliases", ()):
            return self._subparsers.add_parser(name, **kwargs)
        kwargs.pop("aliases", None)
        kwargs.pop("help", None)
        return argparse.ArgumentParser(prog=f"imgsuite {name}", **kwargs)


def _top_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(
        prog="imgsuite",
        description="RT structures, registration, tomosynthesis, segmentation and image tools for medical physics.",
    )
    parser.add_argument("--version", action="version", version=f"imgsuite {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show a traceback on errors")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    subparsers.common_parent = common  # job modules pass parents=[subparsers.common_parent]
    parser.subcommand_parsers = subparsers.choices  # for the usage of a subcommand given unknown options
    return parser, subparsers


def command_module(command: str):
    """The ``commands`` module that registers ``command`` (imported now)."""
    return importlib.import_module(f"{__package__}.{COMMANDS[command][0]}")


def command_modules() -> list:
    """Every module named in :data:`COMMANDS`, once each, in table order (imports them all)."""
    names = dict.fromkeys(module for module, _ in COMMANDS.values())
    return [importlib.import_module(f"{__package__}.{name}") for name in names]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``imgsuite`` parser: with ``command``, that command's parser only (its module alone is imported);
    without, every command's (every module imported)."""
    parser, subparsers = _top_parser()
    if command is None:
        for module in command_modules():
            module.register(subparsers)
    else:
        command_module(command).register(_OnlyCommand(subparsers, command))
    return parser


def listing_parser() -> argparse.ArgumentParser:
    """The parser for ``imgsuite --help`` and ``--version``: every command listed from :data:`COMMANDS`, no
    module imported."""
    parser, subparsers = _top_parser()
    for name, (_, text) in COMMANDS.items():
        subparsers.add_parser(name, help=text, add_help=False)
    return parser


_COMMON_FLAGS = ("--debug", "--quiet", "-q")


def _command_word(argv: Sequence[str]) -> str | None:
    """The subcommand: the first word that is not an option (the top level has only option flags)."""
    return next((word for word in argv if not word.startswith("-")), None)


def entry() -> int:
    """The ``imgsuite`` program: a running warm process does the job when there is one
    (:mod:`SlicerImgSuite.warm`, imported only then), else this process does."""
    argv = sys.argv[1:]
    if os.environ.get("IMGSUITE_WARM") != "0" and _warm_command(argv):
        from .warm.client import run_warm

        status = run_warm(argv)
        if status is not None:
            return status
    return main(argv)


def _warm_command(argv: Sequence[str]) -> bool:
    from .warm import COLD_COMMANDS

    command = _command_word(argv)
    return command in COMMANDS and command not in COLD_COMMANDS and "--help" not in argv and "-h" not in argv


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``imgsuite argv`` in this process; the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_word(argv)
    if command is not None:  # `imgsuite --debug CMD ...`: the common options belong to the command
        before = argv[: argv.index(command)]
        common = [a for a in before if a in _COMMON_FLAGS]
        argv = [a for a in before if a not in _COMMON_FLAGS] + [command, *common] + argv[len(before) + 1 :]
    if command in COMMANDS:
        parser = build_parser(command)
    else:
        parser = listing_parser()
        if command is not None:
            import difflib

            close = difflib.get_close_matches(command, COMMANDS, n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; see imgsuite --help"
            parser.error(f"unknown command {command!r}{hint}")
    args, extras = parser.parse_known_args(argv)
    if extras:
        _unknown_options(parser, args, extras)
    from .io.atomic import check_outputs_against_inputs, input_options, protected_inputs  # imports SimpleITK

    try:
        check_outputs_against_inputs(vars(args))
        with protected_inputs(input_options(vars(args))), one_line_warnings(args.command):
            result = args.func(args)
    except ImgSuiteError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"imgsuite {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):  # Ctrl-C is the command line's Cancel: nothing was written
        print(f"imgsuite {args.command}: cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like (an OSError: caught first)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (silence the flush at exit)
        return 0
    except OSError as exc:  # a folder that cannot be written, a full disk: one line, as for bad input
        if getattr(args, "debug", False):
            raise
        print(f"imgsuite {args.command}: error: {_os_error_text(exc)}", file=sys.stderr)
        return 2
    return int(result or 0)


@contextlib.contextmanager
def one_line_warnings(command: str):
    """A job's warnings (a contour lost, a structure beyond the dose grid) as one line each on stderr,
    ``imgsuite COMMAND: warning: ...``, every time: a warm process runs many jobs, and Python's default shows a
    warning once per place."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"imgsuite {command}: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = show
        yield


def _unknown_options(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]) -> None:
    """Unrecognized arguments: the subcommand's usage and a suggestion (difflib), exit 2."""
    import difflib

    sub = getattr(parser, "subcommand_parsers", {}).get(getattr(args, "command", None), parser)
    nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
    while nested and getattr(args, nested[0].dest, None) in nested[0].choices:  # ``imgsuite hsi convert ...``
        sub = nested[0].choices[getattr(args, nested[0].dest)]
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
    known = [s for action in sub._actions for s in action.option_strings if s.startswith("--")]
    hints = []
    for extra in extras:
        if extra.startswith("-"):
            close = difflib.get_close_matches(extra.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                hints.append(f"{extra.split('=', 1)[0]}: did you mean {close[0]}?")
    sub.error(f"unrecognized arguments: {' '.join(extras)}" + (f" ({'; '.join(hints)})" if hints else ""))


def _os_error_text(exc: OSError) -> str:
    """``path: reason`` from an OSError (``reason`` alone when it names no file)."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


if __name__ == "__main__":
    sys.exit(entry())
