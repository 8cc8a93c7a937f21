"""Benchmark: DICOM CT series -> NRRD. imgsuite convert vs plastimatch convert vs SimpleITK's series reader.

Inputs: the Nelms phantom's 1 mm CT (512x512x60, ../shared/data) and a generated 512x512x120 phantom CT.
Run: .venv/bin/python bench/dicom_series.py [--repeats N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from runner import SHARED_DATA, Case, compare, imgsuite

SITK_READER = (
    "import sys, SimpleITK as sitk\n"
    "r = sitk.ImageSeriesReader(); r.SetFileNames(r.GetGDCMSeriesFileNames(sys.argv[1]))\n"
    "sitk.WriteImage(r.Execute(), sys.argv[2])\n"
)


def cases(folder: Path, out: Path) -> list[Case]:
    return [
        Case("imgsuite convert", imgsuite() + ["convert", "--input", str(folder), "--output-img", str(out / "a.nrrd")]),
        Case("plastimatch convert", ["plastimatch", "convert", "--input", str(folder), "--output-img", str(out / "b.nrrd")]),
        Case("SimpleITK series reader", [sys.executable, "-c", SITK_READER, str(folder), str(out / "c.nrrd")]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from SlicerImgSuite.demo.phantom import make_phantom

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nelms = SHARED_DATA / "nelms-dvh-analytic-phantom" / "CT_1mm"
        compare(cases(nelms, tmp), args.repeats, "Nelms CT_1mm 512x512x60 -> NRRD")
        phantom = make_phantom(tmp / "phantom", shape=(512, 512, 120), spacing=(0.6, 0.6, 1.5))
        compare(cases(phantom.ct_dir, tmp), args.repeats, "generated phantom 512x512x120 -> NRRD")


if __name__ == "__main__":
    main()
