"""``imgsuite demo``: run the phantom-patient demo."""

from __future__ import annotations

from ..progress import progress_for


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", parents=[subparsers.common_parent], help="generate a phantom patient and run every job on it"
    )
    p.add_argument("--output", default="demo-output", help="output folder (default demo-output)")
    p.add_argument("--only", nargs="+", metavar="JOB", help="run only these jobs (package names)")
    p.set_defaults(func=run)


def run(args) -> int:
    from . import run_demo

    path = run_demo(args.output, progress=progress_for(args), only=args.only)
    print(f"report: {path}")
    return 0
