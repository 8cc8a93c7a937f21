"""Benchmark: imgsuite vs plastimatch 1.9.4 on a 512 x 512 x 100 CT: resample, dmap, stats, adjust, convert ...

Goal (issue #4): wall-time ratio ours / plastimatch <= 1.0 for each. All run as command lines (start-up
included), alternating, medians of ``--repeats`` runs: ours cold (``IMGSUITE_WARM=0``), ours through a warm
process (``imgsuite warm``, started before the first case) and plastimatch. The CT is a synthetic thorax made by ``imgsuite synth``
(int16 HU, 0.98 x 0.98 x 3 mm) and the structure a 6 cm sphere, written once into ``--workdir``.

    .venv/bin/python bench/imagetools.py [--repeats 3] [--workdir /tmp/imgsuite-bench] [--only match dose]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner import Case, compare, imgsuite, precompile, warm_imgsuite  # noqa: E402


def make_inputs(folder: Path) -> tuple[Path, Path]:
    import SimpleITK as sitk

    from SlicerImgSuite.imageops import synth, synth_grid
    from SlicerImgSuite.io import write_image

    ct, mask = folder / "ct512.nrrd", folder / "sphere512.nrrd"
    if ct.exists() and mask.exists():
        return ct, mask
    grid = synth_grid(dim=(512, 512, 100), spacing=(0.977, 0.977, 3.0), origin=(-249.5, -249.5, -148.5))
    image = synth("thorax", grid, output_type="short").image
    noise = sitk.AdditiveGaussianNoise(sitk.Cast(image, sitk.sitkFloat32), standardDeviation=20, seed=1)
    write_image(sitk.Cast(noise, sitk.sitkInt16), ct, compress=False)
    write_image(
        synth("sphere", grid, center=(65, 0, 0), radius=(30,), foreground=1, background=0, output_type="uchar").image,
        mask,
        compress=False,
    )
    return ct, mask


def make_reference(ct: Path) -> Path:
    """A second CT for the intensity-matching cases: the first one's numbers scaled by 0.9 and shifted by 40."""
    import SimpleITK as sitk

    from SlicerImgSuite.io import read_image, write_image

    ref = ct.with_name("ref512.nrrd")
    if not ref.exists():
        write_image(sitk.Cast(read_image(ct), sitk.sitkFloat32) * 0.9 + 40, ref, compress=False)
    return ref


def make_long(ct: Path) -> Path:
    """The CT three times over along z (512 x 512 x 300): where the per-slice cost of a DICOM writer shows."""
    import SimpleITK as sitk

    from SlicerImgSuite.io import read_image, write_image

    long = ct.with_name("ct512x300.nrrd")
    if not long.exists():
        image = read_image(ct)
        joined = sitk.JoinSeries([image[:, :, k % image.GetSize()[2]] for k in range(3 * image.GetSize()[2])])
        joined.SetOrigin(image.GetOrigin())
        joined.SetSpacing(image.GetSpacing())
        write_image(joined, long, compress=False)
    return long


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/imgsuite-bench")
    parser.add_argument("--only", nargs="+", help="run only the cases whose title contains one of these words")
    args = parser.parse_args()
    precompile()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ct, mask = make_inputs(work)
    out = work / "out"
    out.mkdir(exist_ok=True)
    jobs = {
        "resample (linear, 1.5x1.5x2 mm)": (
            ["resample", "--input", ct, "--output", out / "{who}_rs.nrrd", "--spacing", "1.5 1.5 2"],
            [],
        ),
        "dmap (signed, mm)": (["dmap", "--input", mask, "--output", out / "{who}_dm.nrrd"], []),
        "stats (--mask)": (["stats", ct, "--mask", mask], []),
    }
    ref = make_reference(ct)
    jobs.update(
        {
            "adjust --hist-match": (
                ["adjust", "--input", ct, "--hist-match", ref, *"--hist-levels 1024 --hist-points 10".split()]
                + ["--output", out / "{who}_hm.nrrd"],
                [],
            ),
            "adjust --linear-match": (
                ["adjust", "--input", ct, "--linear-match", ref, "--output", out / "{who}_lm.nrrd"],
                [],
            ),
            "bbox --output": (["bbox", mask, "--margin", "5", "--output", out / "{who}_bb.nrrd"], []),
            "maximum (2 images)": (["maximum", ct, ct, "--output", out / "{who}_max.nrrd"], []),
            "multiply (CT x mask)": (["multiply", ct, mask, "--output", out / "{who}_mul.nrrd"], []),
            "intersect (2 masks)": (["intersect", mask, mask, "--output", out / "{who}_int.nrrd"], []),
            "adjust --local-match (patch 32 32 10)": (
                ["adjust", "--input", ct, "--local-match", ref, "--patch-size", "32 32 10"]
                + ["--output", out / "{who}_loc.nrrd"],
                [],
            ),
            "synth --pattern dose --output-dose-img": (
                ["synth", "--pattern", "dose", "--fixed", ct, "--dose-size", "200 150 120", "--penumbra", "8"]
                + ["--output", out / "{who}_sd.nrrd", "--output-dose-img", out / "{who}_sdd.nrrd"],
                [],
            ),
            "convert --output-dicom (100 CT slices)": (
                ["convert", "--input", ct, "--output-dicom", out / "{who}_dcm", "--filenames-without-uids"],
                [],
            ),
            "convert --output-dicom (300 CT slices, 512 x 512 x 300)": (
                ["convert", "--input", make_long(ct), "--output-dicom", out / "{who}_dcml", "--filenames-without-uids"],
                [],
            ),
            "convert --output-dicom (float32 input: fractional rescale)": (
                ["convert", "--input", ref, "--output-dicom", out / "{who}_dcmf", "--filenames-without-uids"],
                [],
            ),
        }
    )
    if args.only:
        jobs = {title: job for title, job in jobs.items() if any(word in title for word in args.only)}
    with warm_imgsuite(work / "warm") as warm_env:
        for title, (argv, _) in jobs.items():
            ours, hot, theirs = ([str(a).replace("{who}", who) for a in argv] for who in ("ours", "warm", "plm"))
            cases = [
                Case("imgsuite", [*imgsuite(), *ours, "--quiet"], env={"IMGSUITE_WARM": "0"}),
                Case("imgsuite (warm)", [*imgsuite(), *hot, "--quiet"], env=warm_env),
                Case("plastimatch", ["plastimatch", *theirs]),
            ]
            compare(cases, repeats=args.repeats, title=f"{title}: 512 x 512 x 100 int16 CT")


if __name__ == "__main__":
    main()
