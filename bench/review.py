"""Benchmark: compare two 46-structure sets on a 512x512x100 CT, imgsuite compare-structures vs plastimatch dice.

The pair: ``bench/rtstruct.py``'s generated case (a BODY outline on every slice and 45 ellipsoids, 128-point
contours, 0.98 x 0.98 x 3 mm) against the same structures shifted by up to 3 mm and scaled by up to 6 %.
imgsuite runs once for the whole pair (all metrics, sub-voxel surfaces); plastimatch ``dice --all`` runs once per
structure pair on the voxel masks (written beforehand, not timed). Also prints Dice ours vs plastimatch.
Run: ``.venv/bin/python bench/review.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rtstruct import make_case  # noqa: E402
from runner import Case, compare, imgsuite  # noqa: E402

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


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-review-"))
    rs_a, ct = make_case(tmp / "gen")
    rs_b = perturbed(rs_a, ct, tmp / "gen" / "RS_test.dcm")
    a_masks, b_masks = mask_files(rs_a, ct, tmp / "a"), mask_files(rs_b, ct, tmp / "b")
    loop = " ; ".join(f"plastimatch dice --all {a} {b} > {tmp / (a.stem + '.txt')}" for a, b in zip(a_masks, b_masks))
    out_json = tmp / "ours.json"
    ours = imgsuite() + ["compare-structures", "--reference", str(rs_a), "--test", str(rs_b)]
    ours += ["--referenced-ct", str(ct), "--output-json", str(out_json), "-q"]
    compare(
        [Case("imgsuite compare-structures", ours), Case("plastimatch dice x46", ["bash", "-c", loop])],
        repeats=1,
        warmup=False,
        title="46 structure pairs on a 512x512x100 CT (all metrics vs plastimatch dice --all per pair)",
    )
    rows = {r["reference"]: r for r in json.loads(out_json.read_text())["structures"]}
    worst = 0.0
    for a in a_masks:
        text = (tmp / (a.stem + ".txt")).read_text()
        theirs = float(re.search(r"^DICE:\s*([\d.]+)", text, re.M).group(1))
        worst = max(worst, abs(theirs - rows[a.stem]["dice"]))
    print(f"largest |Dice ours - plastimatch| over {len(a_masks)} pairs: {worst:.2e}")
    subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    main()
