"""Registration benchmark: one command file through ``imgsuite register`` and ``plastimatch register``, plus
itk-elastix's default rigid + B-spline, in one run: wall time, peak RSS, and the residual error of the
recovered field against a known one.

The pair: a real CT (IBSI STS_004 from ../shared/data) resampled to 256x256x128; the fixed image is
that CT warped by a known smooth field (a 5 mm shift plus two Gaussian bumps, |u| <= 10 mm), so the
registration must recover the field; both are then cut to the same field of view (7/8 of the CT), so
near the faces fixed tissue maps outside the moving image, as between two real scans.
Error = |recovered - true| (mm) over the body (fixed > -500 HU), and over the body >= 15 mm from the
faces of the field of view, printed for imgsuite and plastimatch from the same run.

    .venv/bin/python bench/registration.py [--size 256 256 128] [--shift 5 -3 2] [--workdir DIR] [--no-elastix]

A workdir keeps its prepared pair: use a new one when changing --size or --shift.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner import SHARED_DATA, Case, compare, imgsuite  # noqa: E402

STAGES = """
[STAGE]
xform=rigid
optim=versor
impl=itk
metric=mse
res=4 4 2
max_its=60

[STAGE]
xform=bspline
impl=plastimatch
optim=lbfgsb
metric=mse
res=4 4 2
grid_spac=40 40 40
max_its=50

[STAGE]
res=2 2 1
grid_spac=20 20 20
max_its=50

[STAGE]
res=1 1 1
grid_spac=15 15 15
max_its=30
"""


def true_field(reference: sitk.Image, shift=(5.0, -3.0, 2.0)) -> sitk.Image:
    from SlicerImgSuite.registration import synth_vf

    c = np.array(reference.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in reference.GetSize()]))
    parts = [
        synth_vf(reference, "translation", translation=tuple(shift)),
        synth_vf(reference, "gaussian", center=c + [25, 15, 20], magnitude=(4, -3, 2), std=(35, 35, 60)),
        synth_vf(reference, "gaussian", center=c - [30, 20, 40], magnitude=(-2, 3, -3), std=(30, 30, 50)),
    ]
    arr = sum(sitk.GetArrayFromImage(p) for p in parts)
    out = sitk.GetImageFromArray(arr, isVector=True)
    out.CopyInformation(reference)
    return out


def prepare(work: Path, size, shift=(5.0, -3.0, 2.0)) -> None:
    from SlicerImgSuite.registration import field_transform, warp_image

    work.mkdir(parents=True, exist_ok=True)
    if (work / "fixed.mha").exists() and (work / "true_vf.mha").exists():
        return
    ct = sitk.ReadImage(str(SHARED_DATA / "ibsi-sts-ct-rtstruct" / "STS_004" / "nifti" / "CT_image.nii.gz"))
    ct = sitk.Cast(ct, sitk.sitkFloat32)
    extent = np.array(ct.GetSize()) * np.array(ct.GetSpacing())
    ref = sitk.Image([int(s) for s in size], sitk.sitkFloat32)
    ref.SetSpacing((extent / np.array(size)).tolist())
    ref.SetOrigin(ct.GetOrigin())
    moving = sitk.Resample(ct, ref, sitk.Transform(), sitk.sitkBSpline, -1000.0)
    # both images share one field of view cut from the CT, as two scans of a patient longer than the scan:
    # near the faces the true field maps fixed tissue outside the moving image (tissue leaves the image)
    inner = sitk.RegionOfInterest(ref, [n - 2 * (n // 16) for n in size], [n // 16 for n in size])
    vf = true_field(inner, shift)
    fixed = warp_image(moving, field_transform(vf), inner, "bspline", -1000.0)
    moving = sitk.RegionOfInterest(moving, [n - 2 * (n // 16) for n in size], [n // 16 for n in size])
    for name, image in (("moving", moving), ("fixed", fixed)):
        sitk.WriteImage(sitk.Cast(image, sitk.sitkInt16), str(work / f"{name}.mha"))
    sitk.WriteImage(sitk.Cast(vf, sitk.sitkVectorFloat32), str(work / "true_vf.mha"))


def command_file(work: Path, tag: str) -> Path:
    path = work / f"{tag}.txt"
    path.write_text(
        f"[GLOBAL]\nfixed={work / 'fixed.mha'}\nmoving={work / 'moving.mha'}\nvf_out={work / f'{tag}_vf.mha'}\n"
        + STAGES
    )
    return path


def run_elastix(work: Path) -> None:
    import itk

    fixed = itk.imread(str(work / "fixed.mha"), itk.F)
    moving = itk.imread(str(work / "moving.mha"), itk.F)
    params = itk.ParameterObject.New()
    params.AddParameterMap(params.GetDefaultParameterMap("rigid"))
    params.AddParameterMap(params.GetDefaultParameterMap("bspline"))
    _, result = itk.elastix_registration_method(fixed, moving, parameter_object=params, log_to_console=False)
    os.chdir(work)  # transformix writes deformationField.nii into the working folder
    field = itk.transformix_deformation_field(moving, result)
    itk.imwrite(field, str(work / "elastix_vf.mha"))


def face_distance(image: sitk.Image) -> np.ndarray:
    """Distance (mm) of each voxel centre to the nearest face of the image's field of view, (z, y, x)."""
    size, spacing = np.array(image.GetSize()), np.array(image.GetSpacing())
    d = [np.minimum(np.arange(n), n - 1 - np.arange(n)) * s + s / 2 for n, s in zip(size, spacing)]
    return np.minimum(np.minimum(d[2][:, None, None], d[1][None, :, None]), d[0][None, None, :])


def errors(work: Path, tag: str) -> dict:
    """Mean, p99 and max |recovered - true| (mm) in the body, and in the body >= 15 mm from the FOV faces."""
    true = sitk.GetArrayFromImage(sitk.ReadImage(str(work / "true_vf.mha")))
    got = sitk.GetArrayFromImage(sitk.ReadImage(str(work / f"{tag}_vf.mha")))
    fixed = sitk.ReadImage(str(work / "fixed.mha"))
    body = sitk.GetArrayFromImage(fixed) > -500
    e = np.linalg.norm(got.astype(float) - true, axis=-1)
    from SlicerImgSuite.registration import vf_stats

    out = {"folded": vf_stats(sitk.ReadImage(str(work / f"{tag}_vf.mha")))["folded_voxels"]}
    for name, where in (("body", body), ("inner", body & (face_distance(fixed) >= 15))):
        v = e[where]
        out[name] = (float(v.mean()), float(np.percentile(v, 99)), float(v.max()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", nargs=3, type=int, default=[256, 256, 128])
    parser.add_argument("--workdir", default="/tmp/imgsuite-bench-reg-fov")
    parser.add_argument("--elastix", action="store_true", help="(internal) run elastix once")
    parser.add_argument("--no-elastix", action="store_true", help="skip the elastix case")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--shift", nargs=3, type=float, default=[5.0, -3.0, 2.0],
                        help="the field's uniform part, mm (x y z); 2 -3 5 pushes more tissue across the z faces")  # fmt: skip
    args = parser.parse_args()
    work = Path(args.workdir)
    if args.elastix:
        run_elastix(work)
        return
    prepare(work, args.size, args.shift)
    cases = [
        Case("imgsuite register", imgsuite() + ["register", "-q", str(command_file(work, "imgsuite"))]),
        Case("plastimatch register", ["plastimatch", "register", str(command_file(work, "plastimatch"))]),
    ]
    if not args.no_elastix:
        cases.append(Case("elastix rigid+bspline", [sys.executable, __file__, "--elastix", "--workdir", str(work)]))
    env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for c in cases:
        c.env = env
    print(f"cpus {os.cpu_count()}, pair {args.size}, shift {args.shift} mm, work {work}")
    compare(cases, repeats=args.repeats, title=f"registration {'x'.join(map(str, args.size))}", warmup=False)
    print("\nrecovered field error |u - u_true| (mm), body = fixed > -500 HU; inner = body >= 15 mm from the FOV faces")
    print(f"{'case':<24}{'body mean':>10}{'p99':>8}{'max':>8}{'inner mean':>11}{'p99':>8}{'max':>8}{'folded':>8}")
    results = {}
    for c, tag in zip(cases, ["imgsuite", "plastimatch", "elastix"]):
        r = results[tag] = errors(work, tag)
        print(f"{c.name:<24}" + "".join(f"{v:>{w}.3f}" for v, w in zip(r["body"] + r["inner"], (10, 8, 8, 11, 8, 8)))
              + f"{r['folded']:>8d}")  # fmt: skip
    ours, anchor = results["imgsuite"], results["plastimatch"]
    print("ratio imgsuite / plastimatch: " + ", ".join(
        f"{part} {name} {o / a:.2f}" for part in ("body", "inner")
        for name, o, a in zip(("mean", "p99", "max"), ours[part], anchor[part])))  # fmt: skip

if __name__ == "__main__":
    main()
