"""Stitching benchmark: a 3-shot long-leg (3 x 2000² panels), ours vs scikit-image phase correlation + overlay.

The phantom (``SlicerImgSuite.stitch.phantom``) is rendered once with the project's DRR (cached under
the temp folder): steel beads and a ruler lie in the measurement plane, the positioner reports shots 2 and 3
off by +3.3 and -2.6 mm, exposures differ (x0.8, x1.2) and 1 % noise is added. Both sides run in this
process, alternating, 3 repeats, median:

- ours: ``stitch_radiographs(method=image|ruler)`` (measurement plane, exposure matching, feathered blend);
- baseline: ``skimage.registration.phase_cross_correlation`` (upsample 10) of the overlap strips the
  reported geometry predicts, shots pasted at the found offsets, pixel pitch divided by the nominal
  magnification (what a careful user of the library would do).

The machine may be shared: CPU seconds (this process) are printed beside wall seconds.
Accuracy: the largest error of bead-to-bead distances (mm) and of the seam positions (pixels).

    .venv/bin/python bench/stitch.py [--panel 2000]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from SlicerImgSuite.stitch.job import StitchResult, stitch_radiographs  # noqa: E402
from SlicerImgSuite.stitch.phantom import bead_distance_errors, render_shots  # noqa: E402
from SlicerImgSuite.stitch.plane import measurement_plane  # noqa: E402

ERRORS = [0.0, 3.3, -2.6]


def rendered(panel: int, mode: str):
    cache = Path(tempfile.gettempdir()) / f"imgsuite-stitch-bench-{mode}-{panel}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    pixel = 400.0 / panel  # a 400 mm panel
    t0 = time.perf_counter()
    data = render_shots(
        mode=mode,
        panel=(panel, panel),
        pixel=pixel,
        shots=3,
        overlap_mm=60.0,
        errors_mm=ERRORS,
        exposures=[1.0, 0.8, 1.2],
        noise=0.01,
        ruler=True,
        spacing=1.0,
    )
    print(f"rendered 3 x {panel}² {mode} shots in {time.perf_counter() - t0:.1f} s (cached in {cache})")
    cache.write_bytes(pickle.dumps(data))
    return data


def baseline(shots) -> StitchResult:
    """Phase correlation of the predicted overlap strips, shots pasted, spacing divided by the magnification."""
    from skimage.registration import phase_cross_correlation

    views = [s.view for s in shots]
    plane = measurement_plane(views, shots[0].sod)
    rows, cols = shots[0].image.shape
    dv = shots[0].pixel_size[1]

    # the nominal step between shots, in panel pixels of an object in the plane (M x its move in the plane)
    def seen_in_plane(v):
        s, c = v.sources[0], v.centers[0]
        return s + (c - s) * plane.distance / float(v.sid[0])

    down = [float(np.dot(seen_in_plane(v) - seen_in_plane(views[0]), plane.ev)) for v in views]
    step = [(down[i + 1] - down[i]) * plane.magnification / dv for i in range(len(shots) - 1)]
    offsets = [0.0]
    for i, s in enumerate(step):
        overlap = int(rows - round(s))
        a = shots[i].image[rows - overlap :]
        b = shots[i + 1].image[:overlap]
        shift, _, _ = phase_cross_correlation(a, b, upsample_factor=10)
        offsets.append(offsets[-1] + round(s) - shift[0])
    total = int(np.ceil(offsets[-1])) + rows
    canvas = np.zeros((total, cols), np.float32)
    for shot, off in zip(shots, offsets):
        r0 = int(round(off))
        canvas[r0 : r0 + rows] = shot.image
    plane.spacing = (dv / plane.magnification, dv / plane.magnification)
    corner, source = views[0].pixel_positions(0, 0.0, 0.0), views[0].sources[0]
    plane.origin = source + (corner - source) / plane.magnification  # the first pixel, seen in the plane
    seams = [
        {"shift_mm": [0.0, (o - s_nominal) * dv / plane.magnification]}
        for o, s_nominal in zip(offsets[1:], np.cumsum(step))
    ]
    return StitchResult(canvas, plane, seams, photometric="MONOCHROME1")


def accuracy(result: StitchResult, truth) -> tuple[float, float]:
    beads = float(np.abs(bead_distance_errors(result, truth)).max())
    found = np.array([s["shift_mm"][1] for s in result.seams])
    seams = float(np.abs(found - truth["errors_plane_mm"][1:]).max() / result.plane.spacing[1])
    return beads, seams


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--panel", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for mode in ("parallel", "angled"):
        shots, truth = rendered(args.panel, mode)
        cases = {
            "imgsuite stitch (image)": lambda shots=shots: stitch_radiographs(shots, method="image"),
            "imgsuite stitch (ruler)": lambda shots=shots: stitch_radiographs(shots, method="ruler"),
            "skimage PCC + overlay": lambda shots=shots: baseline(shots),
        }
        times = {name: [] for name in cases}
        cpu = {name: [] for name in cases}
        results = {}
        for r in range(args.repeats):
            for name in list(cases) if r % 2 == 0 else list(cases)[::-1]:
                t0, c0 = time.perf_counter(), time.process_time()
                results[name] = cases[name]()
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        print(
            f"\n## {mode} mode, 3 x {args.panel}² panels ({args.repeats} repeats, median; load {os.getloadavg()[0]:.1f})"
        )
        print(f"{'case':<28}{'wall s':>9}{'CPU s':>8}{'max bead-distance error mm':>30}{'max seam error px':>20}")
        for name in cases:
            try:
                beads, seams = accuracy(results[name], truth)
            except (ValueError, IndexError, ZeroDivisionError):
                beads, seams = float("nan"), float("nan")
            wall, used = statistics.median(times[name]), statistics.median(cpu[name])
            print(f"{name:<28}{wall:>9.2f}{used:>8.2f}{beads:>30.2f}{seams:>20.2f}")
        expected = [s.get("expected_error_px") for s in results["imgsuite stitch (image)"].seams]
        print(f"image method, expected error per seam (2 SD, px): {expected}")


if __name__ == "__main__":
    main()
