"""``imgsuite view`` (a scene or image in the browser), ``imgsuite screenshot`` (the same views as a PNG) and
``imgsuite review`` (contour review in the browser)."""

from __future__ import annotations

import argparse

from ..progress import progress_for
from .render import VIEW_NAMES
from .serve import DEFAULT_LAYOUT, LAYOUTS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "view",
        parents=[subparsers.common_parent],
        help="show a Slicer scene (.mrb) or an image in a web browser (slice and 3D views)",
    )
    p.add_argument("input", help="scene (.mrb, .mrml), image file, or DICOM series folder")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    p.add_argument("--layout", choices=LAYOUTS, default=DEFAULT_LAYOUT, help="initial view layout")
    p.add_argument("--volume", help="name of the volume behind the slices (default: the planning CT)")
    p.add_argument("--open-browser", action="store_true", help="open the system browser on the page")
    p.add_argument(
        "--shared",
        action="store_true",
        help="one viewer for every browser tab (one state); default: each tab gets a viewer process of its own",
    )
    p.add_argument("--idle-exit", type=float, default=0, help=argparse.SUPPRESS)  # a tab's viewer (web.tabs)
    p.set_defaults(func=run_view)

    p = subparsers.add_parser(
        "screenshot",
        parents=[subparsers.common_parent],
        help="render a scene's or image's slice and 3D views offscreen into a PNG",
    )
    p.add_argument("input", help="scene (.mrb, .mrml), image file, or DICOM series folder")
    p.add_argument("--output", required=True, help="PNG file (the views side by side)")
    p.add_argument(
        "--views", nargs="+", choices=VIEW_NAMES, default=["axial", "coronal", "3d"], help="views, left to right"
    )
    p.add_argument("--size", type=int, nargs=2, default=[400, 400], metavar=("W", "H"), help="pixels per view")
    p.add_argument("--volume", help="name of the volume behind the slices (default: the planning CT)")
    p.add_argument("--focus", type=float, nargs=3, metavar=("X", "Y", "Z"), help="LPS point (mm) the slices cross")
    p.set_defaults(func=run_screenshot)

    p = subparsers.add_parser(
        "review",
        parents=[subparsers.common_parent],
        help="review contours in a web browser: structure table worst first, decisions, DVH, export",
    )
    p.add_argument(
        "--reference",
        required=True,
        help="reference structure set: RTSTRUCT file/folder, .seg.nrrd, or a Slicer scene (.mrb: its first "
        "segmentation of the CT; its second is the test unless --test is given)",
    )
    p.add_argument("--test", help="test structure set to compare with (RTSTRUCT or .seg.nrrd)")
    p.add_argument("--map", nargs="+", default=[], metavar="REF=TEST",
                   help="pairs of differently named structures (the others pair by name, as compare-structures)")
    p.add_argument("--referenced-ct", required=True, help="the CT series (DICOM folder) the structures belong to")
    p.add_argument("--dose", help="RTDOSE (Gy) for the DVH of the selected structure")
    p.add_argument("--reviewer", default="reviewer", help="name recorded with each decision (default: reviewer)")
    p.add_argument("--output", required=True, help="folder: review state (saved after each decision) and exports")
    p.add_argument(
        "--host", default="127.0.0.1", help="interface (default 127.0.0.1; any other needs the printed token)"
    )
    p.add_argument("--port", type=int, default=8090, help="TCP port (default 8090; 0 picks a free one)")
    p.set_defaults(func=run_review)


def run_view(args) -> int:
    from .serve import serve

    serve(
        args.input,
        host=args.host,
        port=args.port,
        layout=args.layout,
        volume=args.volume,
        open_browser=args.open_browser,
        shared=args.shared,
        idle_s=args.idle_exit,
        progress=progress_for(args),
    )
    return 0


def run_screenshot(args) -> int:
    from .render import render_views

    result = render_views(
        args.input,
        args.output,
        layout=tuple(args.views),
        size=tuple(args.size),
        volume=args.volume,
        focus_lps=args.focus,
        progress=progress_for(args),
    )
    print(result.path)
    return 0


def run_review(args) -> int:
    from ..cli import progress_for
    from .review_server import serve_review
    from .review_session import open_review

    session = open_review(
        args.reference,
        args.referenced_ct,
        args.output,
        test=args.test,
        dose=args.dose,
        name_map=args.map,
        reviewer=args.reviewer,
        measure=False,  # the page first; the metrics follow while the reviewer looks at it
        progress=progress_for(args),
    )
    serve_review(session, host=args.host, port=args.port)
    return 0
