"""``imgsuite index DIR`` (a DICOM index on Dask) and ``imgsuite cohort JOB`` (one job over many cases)."""

from __future__ import annotations

import argparse
import sys

from ..errors import ImgSuiteError

# dask, pyarrow and the jobs are imported inside the functions: building the parser stays cheap.

JOB_NAMES = ("dvh", "convert", "register", "nuclei", "compare-structures")


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster (a local Dask cluster by default)")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDR", help="a running Dask scheduler, tcp://HOST:8786")
    where.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: CPU count)")
    g.add_argument(
        "--memory-limit",
        default="auto",
        help="memory per local worker, e.g. 4GiB (default: the machine's memory shared); a case over it is an error row",
    )


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "index", parents=[subparsers.common_parent], help="index a DICOM tree: one row per series (Parquet)"
    )
    p.add_argument("folder", help="folder searched recursively")
    p.add_argument("--output", required=True, help="series table (.parquet); .files/.errors tables go beside it")
    p.add_argument("--csv", action="store_true", help="also write every table as CSV")
    p.add_argument("--batch-size", type=int, help="files per task (default: about 4 tasks per worker, at most 500)")
    _add_cluster_options(p)
    p.set_defaults(func=run_index)

    p = subparsers.add_parser(
        "cohort", parents=[subparsers.common_parent], help="run a job over many cases on Dask (one results table)"
    )
    p.add_argument("job", choices=JOB_NAMES, help="the job each case runs")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--index", help="an `imgsuite index` table: one case per RTSTRUCT (dvh, convert)")
    src.add_argument("--manifest", help="CSV: a 'case' column and one column per input (rtstruct, ct, dose, ...)")
    src.add_argument("--plate", help="nuclei: a plate folder, one case per image")
    p.add_argument("--output", required=True, help="folder: results/errors tables and cases/<case>/")
    p.add_argument("--resume", action="store_true", help="skip cases whose outputs exist and inputs are unchanged")
    p.add_argument("--v-doses", default="5:70:5", help="dvh: Vx doses, Gy: START:STOP:STEP or a list (default 5:70:5)")
    p.add_argument("--d-percents", default="98,95,50,2", help="dvh: Dx volumes, %% (default 98,95,50,2)")
    p.add_argument("--command-file", help="register: command-file template with {fixed}, {moving}, {output} ...")
    p.add_argument("--tolerance", type=float, default=2.0, help="compare-structures: surface tolerance, mm (2)")
    p.add_argument("--map", nargs="+", metavar="REF=TEST", help="compare-structures: explicit name pairs")
    _add_cluster_options(p)
    p.set_defaults(func=run_cohort_command)


def run_index(args: argparse.Namespace) -> int:
    from ..progress import progress_for
    from .cluster import cohort_client, dashboard_text
    from .index import build_index

    with cohort_client(args.scheduler, workers=args.workers, memory_limit=args.memory_limit) as client:
        _say(args, dashboard_text(client))
        counts = build_index(
            args.folder,
            args.output,
            client=client,
            csv=args.csv,
            batch_size=args.batch_size,
            progress=progress_for(args),
        )
    print(
        f"{counts['series']} series from {counts['files']} files ({counts['read']} read, {counts['reused']} unchanged), "
        f"{counts['errors']} unreadable -> {args.output}"
    )
    if not counts["series"]:  # an empty index is no error, but rarely what was meant (a wrong folder, a link)
        import warnings

        warnings.warn(f"{args.folder}: no DICOM series found (files looked at: {counts['files']})", stacklevel=2)
    return 0


def run_cohort_command(args: argparse.Namespace) -> int:
    from ..progress import progress_for
    from .cluster import cohort_client, dashboard_text
    from .runner import run_cohort

    cases = _cases(args)
    options = _options(args)
    with cohort_client(args.scheduler, workers=args.workers, memory_limit=args.memory_limit, job=args.job) as client:
        _say(args, dashboard_text(client))
        counts = run_cohort(
            args.job,
            cases,
            args.output,
            client=client,
            options=options,
            resume=args.resume,
            progress=progress_for(args),
        )
    print(
        f"{counts['cases']} cases: {counts['done']} done, {counts['skipped']} unchanged (skipped), "
        f"{counts['failed']} failed; {counts['rows']} rows -> {args.output}"
    )
    if counts["warned"]:  # the numbers of these cases are in the results table: say where their caveats are
        import warnings
        from pathlib import Path

        warnings.warn(f"{counts['warned']} case(s) warned (a structure beyond the dose grid, contours dropped ...); "
                      f"see {Path(args.output) / 'warnings.csv'}", stacklevel=2)  # fmt: skip
    return 0


def _say(args, line: str) -> None:
    if not args.quiet:
        print(line, file=sys.stderr)


def _cases(args) -> list[dict]:
    from .cases import cases_from_index, cases_from_plate, read_manifest

    if args.plate and args.job != "nuclei":
        raise ImgSuiteError("--plate goes with `cohort nuclei`", args.plate)
    if args.index and args.job not in ("dvh", "convert"):
        raise ImgSuiteError(f"`cohort {args.job}` takes --manifest (an index gives RTSTRUCT cases)", args.index)
    cases = cases_from_plate(args.plate) if args.plate else None
    if cases is None:
        cases = cases_from_index(args.index) if args.index else read_manifest(args.manifest)
    if not cases:
        raise ImgSuiteError("no cases found", args.index or args.manifest or args.plate)
    return cases


def _options(args) -> dict:
    if args.job == "dvh":
        return {
            "v_doses": parse_steps(args.v_doses, "--v-doses"),
            "d_percents": parse_steps(args.d_percents, "--d-percents"),
        }
    if args.job == "register":
        if not args.command_file:
            raise ImgSuiteError("cohort register needs --command-file TEMPLATE")
        from pathlib import Path

        return {"template": str(Path(args.command_file).resolve())}
    if args.job == "compare-structures":
        if not (args.tolerance > 0):
            raise ImgSuiteError(f"--tolerance must be a positive number of mm, got {args.tolerance}")
        return {"tolerance": args.tolerance, "name_map": args.map or []}
    return {}


def parse_steps(text: str, name: str) -> list[float]:
    """``"5:70:5"`` -> 5, 10, ... 70 (both ends included); ``"5,10,20"`` -> those.

    Examples
    --------
    >>> parse_steps("10:30:10", "--v-doses"), parse_steps("98, 2", "--d-percents")
    ([10.0, 20.0, 30.0], [98.0, 2.0])
    """
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            n = int((stop - start) / step + 1e-9) + 1
            return [round(start + i * step, 9) for i in range(n)]
        values = [float(x) for x in text.replace(",", " ").split()]
        if not values:
            raise ValueError
        return values
    except ValueError:
        raise ImgSuiteError(f"{name} expects START:STOP:STEP or numbers, got {text!r}") from None
