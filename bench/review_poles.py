"""Sweep: end caps of concentric and moved spheres over slice phases (3 mm slices), worst errors per pair.

Spheres are written as RTSTRUCT contours (256 points) on a CT written here, as in
``Testing/test_review_metrics.py``, with the slice grid moved 0-2.75 mm in steps of 0.25 mm. Prints, per pair,
the worst |HD - gap|, |msd - gap|, the range of surface Dice (2 mm) and the worst centroid error.
Run: ``.venv/bin/python bench/review_poles.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SlicerImgSuite.io.dicom_write import new_study, write_ct_series
from SlicerImgSuite.review.compare import compare_structure_sets
from SlicerImgSuite.rtstruct.write import write_rtstruct

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "Testing"))
from test_review_metrics import _sphere_contours as sphere  # noqa: E402  (the tests' spheres)

# name: (reference radius, test radius, test centre) in mm
CASES = {
    "r 20 vs 21.5": (20, 21.5, (0, 0, 0)),
    "r 20 vs 23": (20, 23, (0, 0, 0)),
    "r 12 vs 13.5": (12, 13.5, (0, 0, 0)),
    "r 10 vs 11.5": (10, 11.5, (0, 0, 0)),
    "r 15 moved (2, -1.5, 1.2)": (15, 15, (2.0, -1.5, 1.2)),
    "r 12 moved 1.5 in z": (12, 12, (0, 0, 1.5)),
}


def main(dz: float = 3.0) -> None:
    worst: dict[str, dict[str, float]] = {}
    for phase in np.arange(0, dz, 0.25):
        folder = Path(tempfile.mkdtemp(prefix="poles-"))
        nz = int(round(72 / dz))
        ct = sitk.Image(80, 80, nz, sitk.sitkInt16)
        ct.SetOrigin((-39.5, -39.5, -36.0 + phase))
        ct.SetSpacing((1.0, 1.0, dz))
        headers = write_ct_series(ct, folder / "CT", new_study())
        z = [ct.GetOrigin()[2] + k * dz for k in range(nz)]
        write_rtstruct(
            folder / "A.dcm",
            headers,
            [{"name": n, "contours": sphere(a, (0, 0, 0), z)} for n, (a, _, _) in CASES.items()],
        )
        write_rtstruct(
            folder / "B.dcm", headers, [{"name": n, "contours": sphere(b, c, z)} for n, (_, b, c) in CASES.items()]
        )
        rows = compare_structure_sets(folder / "A.dcm", folder / "B.dcm", referenced_ct=folder / "CT").structures
        for row in rows:
            a, b, centre = CASES[row["reference"]]
            shift = float(np.linalg.norm(centre))
            w = worst.setdefault(
                row["reference"], {"hd": 0.0, "msd": 0.0, "sdice_min": 1.0, "sdice_max": 0.0, "centroid": 0.0}
            )
            if not shift:
                w["hd"] = max(w["hd"], abs(row["hd"] - abs(a - b)))
                w["msd"] = max(w["msd"], abs(row["msd"] - abs(a - b)))
            w["sdice_min"] = min(w["sdice_min"], row["surface_dice"])
            w["sdice_max"] = max(w["sdice_max"], row["surface_dice"])
            w["centroid"] = max(w["centroid"], abs(row["centroid_shift_mm"] - shift))
    print(f"{'pair':<28}{'HD err':>8}{'msd err':>9}{'surface Dice':>16}{'centroid err':>14}")
    for name, w in worst.items():
        dice = f"{w['sdice_min']:.3f}-{w['sdice_max']:.3f}"
        print(f"{name:<28}{w['hd']:>8.2f}{w['msd']:>9.3f}{dice:>16}{w['centroid']:>14.2f}")


if __name__ == "__main__":
    main()
