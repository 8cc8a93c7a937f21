"""Benchmark: RTSTRUCT -> labelmap / one file per ROI, imgsuite vs plastimatch convert (Debian), same run.

Cases: the Nelms 1 mm phantom (one ROI) and a generated 512x512x100 CT with 46 ellipse ROIs.
Also checks that both tools give the same masks. Run: ``.venv/bin/python bench/rtstruct.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import SHARED_DATA, Case, compare, imgsuite  # noqa: E402

from SlicerImgSuite.io.dicom_write import new_study, write_ct_series  # noqa: E402
from SlicerImgSuite.rtstruct import write_rtstruct  # noqa: E402


def make_case(folder: Path, n_rois: int = 46, shape=(512, 512, 100)) -> tuple[Path, Path]:
    """A CT of air with ``n_rois`` ellipsoids contoured on every slice they cross (128-point polygons)."""
    spacing = (0.98, 0.98, 3.0)
    ct = sitk.Image(shape, sitk.sitkInt16) - 1000
    ct.SetSpacing(spacing)
    ct.SetOrigin([-(n - 1) * s / 2 for n, s in zip(shape, spacing)])
    headers = write_ct_series(ct, folder / "CT", new_study())
    rng = np.random.default_rng(1)
    zs = [ct.GetOrigin()[2] + k * spacing[2] for k in range(shape[2])]
    t = np.linspace(0, 2 * np.pi, 128, endpoint=False)
    rois = []
    for n in range(n_rois):
        big = n == 0  # a BODY-like outline on every slice
        cx, cy = (0.0, 0.0) if big else rng.uniform(-150, 150, 2)
        a, b = (230.0, 180.0) if big else rng.uniform(10, 60, 2)
        cz, c = (0.0, 160.0) if big else (rng.uniform(-100, 100), rng.uniform(15, 80))
        contours = []
        for z in zs:
            r = 1.0 if big else 1 - ((z - cz) / c) ** 2
            if r > 0.01:
                s = np.sqrt(r)
                contours.append(np.column_stack([cx + a * s * np.cos(t), cy + b * s * np.sin(t), np.full(t.size, z)]))
        rois.append({"name": f"ROI_{n:02d}", "contours": contours})
    write_rtstruct(folder / "RS.dcm", headers, rois)
    return folder / "RS.dcm", folder / "CT"


def same_masks(a: Path, b: Path) -> float:
    x = sitk.GetArrayFromImage(sitk.ReadImage(str(a))) > 0
    y = sitk.GetArrayFromImage(sitk.ReadImage(str(b))) > 0
    return 2 * (x & y).sum() / max(x.sum() + y.sum(), 1)


def in_process(rs: Path, ct: Path, repeats: int = 3) -> None:
    """The same job without process start-up (what the Slicer module pays): read, rasterize, labelmap."""
    import statistics
    import time

    from SlicerImgSuite.rtstruct import labelmap, rasterize, read_rtstruct
    from SlicerImgSuite.rtstruct.write import reference_series

    times = {"read RTSTRUCT": [], "CT headers": [], "rasterize": [], "labelmap": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        ss = read_rtstruct(rs)
        t1 = time.perf_counter()
        reference = reference_series(ct).image()
        t2 = time.perf_counter()
        masks = rasterize(ss, reference)
        t3 = time.perf_counter()
        labelmap(masks, reference)
        t4 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[key].append(dt)
    print("in-process (median s): " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in times.items()))


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-rtstruct-"))
    compare(
        [
            Case("imgsuite --version", imgsuite() + ["--version"]),
            Case("plastimatch --version", ["plastimatch", "--version"]),
        ],
        title="process start-up only",
    )
    nelms = SHARED_DATA / "nelms-dvh-analytic-phantom"
    rs, ct = nelms / "STRUCTURES_1mm" / "Sphere_10_0.dcm", nelms / "CT_1mm"
    ours, theirs = tmp / "n_ours.nrrd", tmp / "n_plm.nrrd"
    compare(
        [
            Case(
                "imgsuite",
                imgsuite()
                + ["convert", "--input", str(rs), "--referenced-ct", str(ct), "--output-labelmap", str(ours), "-q"],
            ),
            Case(
                "plastimatch",
                [
                    "plastimatch",
                    "convert",
                    "--input",
                    str(rs),
                    "--referenced-ct",
                    str(ct),
                    "--output-labelmap",
                    str(theirs),
                ],
            ),
        ],
        title="Nelms 1 mm sphere: RTSTRUCT -> labelmap (512x512x60)",
    )
    print(f"Dice ours vs plastimatch: {same_masks(ours, theirs):.4f}")
    in_process(rs, ct)

    rs, ct = make_case(tmp / "gen")
    ours, theirs = tmp / "g_ours.nrrd", tmp / "g_plm.nrrd"
    compare(
        [
            Case(
                "imgsuite",
                imgsuite()
                + ["convert", "--input", str(rs), "--referenced-ct", str(ct), "--output-labelmap", str(ours), "-q"],
            ),
            Case(
                "plastimatch",
                [
                    "plastimatch",
                    "convert",
                    "--input",
                    str(rs),
                    "--referenced-ct",
                    str(ct),
                    "--output-labelmap",
                    str(theirs),
                ],
            ),
        ],
        title="generated 512x512x100, 46 ROIs: RTSTRUCT -> one labelmap",
    )
    print(f"Dice ours vs plastimatch (labelmap foreground): {same_masks(ours, theirs):.4f}")
    in_process(rs, ct)
    compare(
        [
            Case(
                "imgsuite",
                imgsuite()
                + [
                    "convert",
                    "--input",
                    str(rs),
                    "--referenced-ct",
                    str(ct),
                    "--output-prefix",
                    str(tmp / "p_ours"),
                    "-q",
                ],
            ),
            Case(
                "plastimatch",
                [
                    "plastimatch",
                    "convert",
                    "--input",
                    str(rs),
                    "--referenced-ct",
                    str(ct),
                    "--output-prefix",
                    str(tmp / "p_plm"),
                    "--prefix-format",
                    "nrrd",
                ],
            ),
        ],
        title="generated 512x512x100, 46 ROIs: RTSTRUCT -> one file per ROI",
    )
    worst = min(
        same_masks(tmp / "p_ours" / f"ROI_{n:02d}.nrrd", tmp / "p_plm" / f"ROI_{n:02d}.nrrd") for n in range(46)
    )
    print(f"worst per-ROI Dice ours vs plastimatch: {worst:.4f}")


if __name__ == "__main__":
    main()
