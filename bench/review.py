"""Benchmark: compare two 46-structure sets on a 512x512x100 CT, imgsuite compare-structures vs plastimatch dice.

The pair: ``bench/rtstruct.py``'s generated case (a BODY outline on every slice and 45 ellipsoids, 128-point
contours, 0.98 x 0.98 x 3 mm) against the same structures shifted by up to 3 mm and scaled by up to 6 %.
imgsuite runs once for the whole pair (all metrics, sub-voxel surfaces); plastimatch ``dice --all`` runs once per
structure pair on the voxel masks (written beforehand, not timed). Also prints Dice ours vs plastimatch, and
each side's CPU seconds (user + sys of all its processes): on a loaded machine the wall times swing with the
load, the CPU seconds much less (ours runs ``--workers`` processes, default two; plastimatch one). Ours runs
once untimed first: in a fresh checkout that run compiles the metrics' kernels into numba's cache.
Run: ``.venv/bin/python bench/review.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rtstruct import make_case  # noqa: E402
from runner import Case, imgsuite, run_once  # noqa: E402

from SlicerImgSuite.rtstruct import rasterize, read_rtstruct, write_rtstruct  # noqa: E402
from SlicerImgSuite.rtstruct.rasterize import Grid  # noqa: E402
from SlicerImgSuite.rtstruct.write import reference_series  # noqa: E402


def perturbed(rs: Path, ct: Path, out: Path, seed: int = 2) -> Path:
    """The structure set with each ROI shifted (up to 3 mm in-plane) and scaled (0.94-1.06) about its centre."""
    rng = np.random.default_rng(seed)
    ss = read_rtstruct(rs)
    rois = []
    for roi in ss.rois:
        pts = np.concatenate(roi.closed)
        centre = pts.mean(axis=0)
        shift = np.append(rng.uniform(-3, 3, 2), 0.0)
        scale = rng.uniform(0.94, 1.06)
        contours = [
            np.column_stack([(c[:, :2] - centre[:2]) * scale + centre[:2] + shift[:2], c[:, 2]]) for c in roi.closed
        ]
        rois.append({"name": roi.name, "color": roi.color, "contours": contours})
    write_rtstruct(out, reference_series(ct), rois)
    return out


def mask_files(rs: Path, ct: Path, folder: Path) -> list[Path]:
    """One full-grid uint8 NRRD per ROI (plastimatch's input)."""
    ref = reference_series(ct)
    image = ref.image()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for m in rasterize(read_rtstruct(rs), image):
        path = folder / f"{m.roi.name}.nrrd"
        full = ref.grid.image(m.full(Grid.of(image)))
        sitk.WriteImage(full, str(path), True)
        paths.append(path)
    return paths


def timed(case: Case) -> float:
    """Run a case once (:func:`runner.run_once`: its wall time goes to ``case.times``); returns its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run_once(case)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side, alternating (median reported)")
    repeats = parser.parse_args().repeats
    tmp = Path(tempfile.mkdtemp(prefix="bench-review-"))
    rs_a, ct = make_case(tmp / "gen")
    rs_b = perturbed(rs_a, ct, tmp / "gen" / "RS_test.dcm")
    a_masks, b_masks = mask_files(rs_a, ct, tmp / "a"), mask_files(rs_b, ct, tmp / "b")
    loop = " ; ".join(f"plastimatch dice --all {a} {b} > {tmp / (a.stem + '.txt')}" for a, b in zip(a_masks, b_masks))
    out_json = tmp / "ours.json"
    argv = imgsuite() + ["compare-structures", "--reference", str(rs_a), "--test", str(rs_b)]
    argv += ["--referenced-ct", str(ct), "--output-json", str(out_json), "-q"]
    ours, theirs = Case("imgsuite compare-structures", argv), Case("plastimatch dice x46", ["bash", "-c", loop])
    run_once(ours)  # untimed: a first run in a fresh tree compiles the kernels into numba's cache (once)
    ours.times.clear()
    ours.rss_mb.clear()
    cpu: dict[str, list[float]] = {ours.name: [], theirs.name: []}
    loads = []
    for r in range(repeats):
        for case in (ours, theirs) if r % 2 == 0 else (theirs, ours):
            cpu[case.name].append(timed(case))
            loads.append(os.getloadavg()[0])
    wall = {c.name: statistics.median(c.times) for c in (ours, theirs)}
    cpus = {name: statistics.median(v) for name, v in cpu.items()}
    print("\n## 46 structure pairs on a 512x512x100 CT, all metrics vs plastimatch dice --all per pair")
    print(f"({repeats} run(s) each, median; load average {min(loads):.1f}-{max(loads):.1f}, {os.cpu_count()} cores)")
    print(f"{'case':<30}{'wall s':>9}{'CPU s':>9}{'peak RSS MB':>13}")
    for c in (ours, theirs):
        print(f"{c.name:<30}{wall[c.name]:>9.2f}{cpus[c.name]:>9.2f}{max(c.rss_mb):>13.0f}")
    print(f"ours wall: {wall[ours.name]:.2f} s (goal <= 10 s)")
    print(f"ratio ours/plastimatch, wall: {wall[ours.name] / wall[theirs.name]:.3f} (goal <= 0.2); "
          f"CPU: {cpus[ours.name] / cpus[theirs.name]:.3f}")  # fmt: skip
    rows = {r["reference"]: r for r in json.loads(out_json.read_text())["structures"]}
    worst = 0.0
    for a in a_masks:
        text = (tmp / (a.stem + ".txt")).read_text()
        value = float(re.search(r"^DICE:\s*([\d.]+)", text, re.M).group(1))
        worst = max(worst, abs(value - rows[a.stem]["dice"]))
    print(f"largest |Dice ours - plastimatch| over {len(a_masks)} pairs: {worst:.2e}")
    subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    main()
