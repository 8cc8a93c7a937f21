"""``imgsuite``: the command line of SlicerImgSuite.

Subcommands come from the job subpackages: each ``SlicerImgSuite/<job>/commands.py`` defines
``register(subparsers)``. Option names follow plastimatch, so existing scripts port by changing the
program name. Errors (bad input, and files that cannot be written) print one line naming the file and
the problem and exit with status 2 (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from . import __version__
from .errors import ImgSuiteError
from .io.atomic import check_outputs_against_inputs, input_options, protected_inputs
from .progress import Cancelled, ProgressCallback, TextProgressBar, no_progress


def command_modules() -> list:
    """The ``commands`` module of every job subpackage, in name order (``io`` first)."""
    package = importlib.import_module(__package__)
    names = sorted(
        (m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg),
        key=lambda n: (n != "io", n),
    )
    modules = []
    for name in names:
        if importlib.util.find_spec(f"{__package__}.{name}.commands") is not None:
            modules.append(importlib.import_module(f"{__package__}.{name}.commands"))
    return modules


def build_parser() -> argparse.ArgumentParser:
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
    for module in command_modules():
        module.register(subparsers)
    return parser


def progress_for(args: argparse.Namespace) -> ProgressCallback:
    """The progress callback for a command: a bar on stderr, or nothing with ``--quiet``."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return no_progress
    return TextProgressBar()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_outputs_against_inputs(vars(args))
        with protected_inputs(input_options(vars(args))):
            result = args.func(args)
    except ImgSuiteError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"imgsuite {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
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


def _os_error_text(exc: OSError) -> str:
    """``path: reason`` from an OSError (``reason`` alone when it names no file)."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


if __name__ == "__main__":
    sys.exit(main())
