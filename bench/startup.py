"""Start-up benchmark: whole ``imgsuite`` command lines against plastimatch's, for short single jobs (issue 19).

Three contenders per job: ``imgsuite`` started cold (``IMGSUITE_WARM=0``), ``imgsuite`` run through a warm
process (``imgsuite warm start`` before the first case; see :mod:`SlicerImgSuite.warm`), and plastimatch.

Each case is a process, start-up included; ours and plastimatch alternate, medians of ``--repeats`` runs after a
warm-up, peak RSS from ``wait4``. The summary table gives ours, plastimatch, the ratio (target <= 1.0; <= 0.15 s
for ``--help``/``--version``) and both peak RSS, with the load average of the run.

    .venv/bin/python bench/startup.py [--repeats 5] [--workdir /tmp/imgsuite-startup] [--only drr256 ...]

Inputs: generated CTs (bench/tomosynthesis.py's and bench/imagetools.py's), a generated 256x256x60 CT series
(``make_phantom``) and the Nelms phantom (``../shared/data``: the 512x512x60 1 mm CT and its 10 mm sphere).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner import SHARED_DATA, Case, compare, imgsuite, precompile, warm_imgsuite  # noqa: E402

NELMS = SHARED_DATA / "nelms-dvh-analytic-phantom"


def inputs(work: Path) -> dict[str, Path]:
    """Every input, made once into ``work``."""
    from imagetools import make_inputs
    from tomosynthesis import make_ct

    from SlicerImgSuite.demo.phantom import make_phantom

    paths = {"ct128": work / "ct128.mha", "ct512": work / "ct512.mha", "series256": work / "series256" / "ct"}
    if not paths["ct128"].exists():
        make_ct(paths["ct128"], shape=(64, 128, 128))
    if not paths["ct512"].exists():
        make_ct(paths["ct512"], shape=(100, 512, 512))
    if not paths["series256"].exists():
        paths["series256"] = make_phantom(work / "series256", shape=(256, 256, 60), spacing=(1.5, 1.5, 2.5)).ct_dir
    paths["stats_ct"], paths["stats_mask"] = make_inputs(work)
    return paths


def jobs(p: dict[str, Path], out: Path) -> dict[str, tuple[list, list]]:
    """title -> (our arguments, plastimatch's arguments); ``{who}`` in an output name becomes ours/plm."""
    drr = ["-a", "1", "-N", "90", "-z", "400 400", "-t", "pfm"]
    return {
        "--version": (["--version"], ["--version"]),
        "--help": (["--help"], []),  # plastimatch prints its command list when given none (and exits 0)
        "drr256 (DRR 256^2 from 128x128x64)": (
            ["drr", *drr, "-r", "256 256", "-O", out / "{who}_d256/image", p["ct128"]],
            ["drr", "-i", "exact", *drr, "-r", "256 256", "-O", out / "{who}_d256/image", p["ct128"]],
        ),
        "drr512 (DRR 512^2 from 512x512x100)": (
            ["drr", *drr, "-r", "512 512", "-O", out / "{who}_d512/image", p["ct512"]],
            ["drr", "-i", "exact", *drr, "-r", "512 512", "-O", out / "{who}_d512/image", p["ct512"]],
        ),
        "series256 (256x256x60 series -> NRRD)": (
            ["convert", "--input", p["series256"], "--output-img", out / "{who}_s256.nrrd"],
        ) * 2,
        "nelms (Nelms 512x512x60 series -> NRRD)": (
            ["convert", "--input", NELMS / "CT_1mm", "--output-img", out / "{who}_nelms.nrrd"],
        ) * 2,
        "stats (stats --mask, 512x512x100)": (["stats", p["stats_ct"], "--mask", p["stats_mask"]],) * 2,
        "rtstruct (one-ROI RTSTRUCT -> labelmap)": (
            ["convert", "--input", NELMS / "STRUCTURES_1mm" / "Sphere_10_0.dcm", "--referenced-ct", NELMS / "CT_1mm",
             "--output-labelmap", out / "{who}_lm.nrrd"],
        ) * 2,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", default="/tmp/imgsuite-startup")
    parser.add_argument("--only", nargs="+", metavar="JOB", help="first word of the job titles to run (version, drr256, ...)")
    args = parser.parse_args()
    precompile()
    work = Path(args.workdir)
    (work / "out").mkdir(parents=True, exist_ok=True)
    paths = inputs(work)
    rows = []
    with warm_imgsuite(work / "warm") as warm_env:
        for title, (ours, theirs) in jobs(paths, work / "out").items():
            if args.only and title.split()[0].lstrip("-") not in args.only:
                continue
            cases = compare(_cases(ours, theirs, warm_env), repeats=args.repeats, title=title)
            rows.append((title, *(statistics.median(c.times) for c in cases), *(max(c.rss_mb) for c in cases)))
    _summary(rows, args.repeats)


def _cases(ours: list, theirs: list, warm_env: dict[str, str]) -> list[Case]:
    """Ours cold (a new process that imports what it needs), ours through a warm process, plastimatch."""
    cold = [str(a).replace("{who}", "ours") for a in ours]
    hot = [str(a).replace("{who}", "warm") for a in ours]
    theirs = [str(a).replace("{who}", "plm") for a in theirs]
    quiet = ["-q"] if not cold[0].startswith("-") else []
    return [
        Case("imgsuite", [*imgsuite(), *cold, *quiet], env={"IMGSUITE_WARM": "0"}),
        Case("imgsuite (warm)", [*imgsuite(), *hot, *quiet], env=warm_env),
        Case("plastimatch", ["plastimatch", *theirs]),
    ]


def _summary(rows: list[tuple], repeats: int) -> None:
    print(f"\n## summary ({repeats} repeats, median; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())})")
    print("warm: through `imgsuite warm` (--help and --version always run in the calling process)")
    print(f"{'job':<42}{'cold s':>8}{'warm s':>8}{'plm s':>8}{'cold/plm':>9}{'warm/plm':>9}"
          f"{'cold MB':>8}{'warm MB':>8}{'plm MB':>8}")  # fmt: skip
    for title, t_cold, t_warm, t_plm, rss_cold, rss_warm, rss_plm in rows:
        print(f"{title:<42}{t_cold:>8.3f}{t_warm:>8.3f}{t_plm:>8.3f}{t_cold / t_plm:>9.2f}{t_warm / t_plm:>9.2f}"
              f"{rss_cold:>8.0f}{rss_warm:>8.0f}{rss_plm:>8.0f}")  # fmt: skip

if __name__ == "__main__":
    main()
