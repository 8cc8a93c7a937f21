"""``imgsuite warm start|stop|status``: the warm process for short jobs (see :mod:`SlicerImgSuite.warm`)."""

from __future__ import annotations

import argparse
import time

from ..errors import ImgSuiteError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "warm",
        parents=[subparsers.common_parent],
        help="keep a warm process so that short jobs start in milliseconds (start, stop, status)",
        description="A process that has imported the job packages runs each later imgsuite call in a fork of "
        "itself: short jobs skip the 0.3-0.5 s of start-up. Set IMGSUITE_WARM=1 to start it on the first call, "
        "IMGSUITE_WARM=0 never to use it.",
    )
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--idle", type=float, default=15.0, metavar="MINUTES", help="stop after this long without a job")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from .client import SUPPORTED, control, start_server
    from .paths import UnsafeFolder, socket_path

    if not SUPPORTED:
        raise ImgSuiteError("the warm process needs Linux (Unix sockets with descriptor passing, a safe fork)")
    if not args.idle > 0:
        raise ImgSuiteError(f"--idle must be a positive number of minutes, got {args.idle:g}")
    try:
        path = socket_path(create=args.action == "start")
    except UnsafeFolder as exc:
        raise ImgSuiteError(str(exc)) from None
    info = control(path, "status")
    if args.action == "start":
        if info is None:
            if not start_server(path, idle_minutes=args.idle):
                raise ImgSuiteError(f"the warm process did not start; see {path.with_suffix('.log')}")
            info = control(path, "status")
        print(f"warm process {info['pid']} at {path}: {info['modules']} modules imported, "
              f"stops after {info['idle_s'] / 60:g} min without a job")  # fmt: skip
    elif info is None:
        print(f"no warm process for this environment ({path})")
    elif args.action == "stop":
        control(path, "stop")
        print(f"warm process {info['pid']} stopped after {info['jobs_served']} jobs")
    else:
        up = time.time() - info["started"]
        print(f"warm process {info['pid']} at {path}: up {up:.0f} s, {info['jobs_served']} jobs served, "
              f"{info['jobs_running']} running")  # fmt: skip
    return 0
