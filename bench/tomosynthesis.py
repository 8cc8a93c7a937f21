"""Tomosynthesis, DRR and FDK benchmark: ours against RTK (itk-rtk) and plastimatch, in one run.

    python bench/tomosynthesis.py            # quality + throughput + DRR + FDK + interop
    python bench/tomosynthesis.py --memory   # also the 2000x2000 x 60-view memory run (minutes)
    python bench/tomosynthesis.py --only foreign  # bead depth error on plastimatch-made arc and linear sweeps

Quality: an analytic phantom (water slab, 1.5 mm beads and 3 % spheres at several depths), 256x256x64
voxels (1 x 2.5 x 1 mm), 25 views of 400x288 (1 mm pixels), +-20 degree linear sweep, SID 1800 mm.
Projections are exact chord integrals. PSNR/SSIM compare each in-focus plane with the phantom after a
least-squares linear intensity fit (SAA and FBP are not in attenuation units); bead ASF FWHM is the
width of the bead's normalised contrast across depth; CNR is sphere vs surrounding background.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import Case, compare, imgsuite  # noqa: E402

from SlicerImgSuite.geometry import grid_image  # noqa: E402
from SlicerImgSuite.tomo import recon  # noqa: E402
from SlicerImgSuite.tomo.geometry import linear_sweep  # noqa: E402
from SlicerImgSuite.tomo.phantom import add_poisson_noise, bead_phantom  # noqa: E402
from SlicerImgSuite.tomo.project import back_project  # noqa: E402
from SlicerImgSuite.tomo.projset import ProjectionSet, read_projections  # noqa: E402

DETECTOR_Y = 200.0  # coronal panel at y = 200 mm (posterior), source anterior


def sweep_setup():
    geometry = linear_sweep(
        25,
        40.0,
        sid=1800.0,
        dims=(400, 288),
        pixel_size=(1.0, 1.0),
        detector_center=(0.0, DETECTOR_Y, 0.0),
        sweep_axis=(1.0, 0.0, 0.0),
    )
    grid = grid_image(
        (-127.5, DETECTOR_Y - 157.5, -127.5), (256, 64, 256), (1.0, 2.5, 1.0), pixel_type=sitk.sitkFloat32
    )
    phantom = bead_phantom(center=(0.0, DETECTOR_Y - 80.0, 0.0))
    return geometry, grid, phantom


def plane_index(grid, y):
    return int(round((y - grid.GetOrigin()[1]) / grid.GetSpacing()[1]))


def quality(volume: np.ndarray, truth: np.ndarray, grid, phantom) -> dict:
    from skimage.metrics import structural_similarity

    ys = sorted({e.center[1] for e in phantom.ellipsoids if e.kind != "background"})
    psnr, ssim = [], []
    for y in ys:
        k = plane_index(grid, y)
        r, t = volume[:, k, :].astype(np.float64), truth[:, k, :].astype(np.float64)
        a, b = np.polyfit(r.ravel(), t.ravel(), 1)
        fit = a * r + b
        rng = t.max() - t.min()
        psnr.append(10 * np.log10(rng**2 / np.mean((fit - t) ** 2)))
        ssim.append(structural_similarity(fit, t, data_range=rng))
    roi_ssim = []
    for e in phantom.ellipsoids:
        if e.kind == "background":
            continue
        k = plane_index(grid, e.center[1])
        i, kz = int(round(e.center[0] + 127.5)), int(round(e.center[2] + 127.5))
        box = (slice(max(kz - 20, 0), kz + 21), slice(max(i - 20, 0), i + 21))
        r, t = volume[:, k, :][box].astype(np.float64), truth[:, k, :][box].astype(np.float64)
        a, b = np.polyfit(r.ravel(), t.ravel(), 1)
        roi_ssim.append(structural_similarity(a * r + b, t, data_range=t.max() - t.min()))
    fwhm = []
    for e in phantom.ellipsoids:
        if e.kind != "bead":
            continue
        i, k = int(round(e.center[0] + 127.5)), int(round(e.center[2] + 127.5))
        ring = np.zeros(volume.shape[::2], bool)
        zz, xx = np.ogrid[: volume.shape[0], : volume.shape[2]]
        dist = np.hypot(zz - k, xx - i)
        ring = (dist >= 5) & (dist <= 9)
        prof = np.array([volume[k, j, i] - volume[:, j, :][ring].mean() for j in range(volume.shape[1])])
        j0 = plane_index(grid, e.center[1])
        prof = prof / prof[j0]
        fwhm.append(_width(prof, j0) * grid.GetSpacing()[1])
    cnr = []
    for e in phantom.ellipsoids:
        if e.kind != "sphere":
            continue
        j0 = plane_index(grid, e.center[1])
        i, k = int(round(e.center[0] + 127.5)), int(round(e.center[2] + 127.5))
        zz, xx = np.ogrid[: volume.shape[0], : volume.shape[2]]
        dist = np.hypot(zz - k, xx - i)
        sl = volume[:, j0, :]
        inside, bg = sl[dist <= 3.0], sl[(dist >= 9) & (dist <= 14)]
        cnr.append((inside.mean() - bg.mean()) / bg.std())
    return {
        "psnr": np.mean(psnr),
        "ssim": np.mean(ssim),
        "roi_ssim": np.mean(roi_ssim),
        "fwhm": np.mean(fwhm),
        "cnr": np.mean(cnr),
    }


def _width(prof, j0):
    left = j0
    while left > 0 and prof[left] > 0.5:
        left -= 1
    right = j0
    while right < len(prof) - 1 and prof[right] > 0.5:
        right += 1
    lx = left + (0.5 - prof[left]) / (prof[left + 1] - prof[left]) if prof[left] <= 0.5 else left
    rx = right - (0.5 - prof[right]) / (prof[right - 1] - prof[right]) if prof[right] <= 0.5 else right
    return rx - lx


def rtk_geometry(geometry):
    import itk
    from itk import RTK as rtk

    g = rtk.ThreeDCircularProjectionGeometry.New()
    for v in range(len(geometry)):
        g.AddProjection(
            itk.Point[itk.D, 3](geometry.sources[v].tolist()),
            itk.Point[itk.D, 3](geometry.centers[v].tolist()),
            itk.Vector[itk.D, 3](geometry.u_axes[v].tolist()),
            itk.Vector[itk.D, 3](geometry.v_axes[v].tolist()),
        )
    return g


def rtk_stack(projections: ProjectionSet):
    import itk

    g = projections.geometry
    image = itk.image_from_array(np.ascontiguousarray(projections.images, np.float32))
    image.SetSpacing([g.pixel_size[0], g.pixel_size[1], 1.0])
    image.SetOrigin([-g.image_center[0][0] * g.pixel_size[0], -g.image_center[0][1] * g.pixel_size[1], 0.0])
    return image


def rtk_volume(grid):
    import itk

    vol = itk.image_from_array(np.zeros(grid.GetSize()[::-1], np.float32))
    vol.SetSpacing(grid.GetSpacing())
    vol.SetOrigin(grid.GetOrigin())
    return vol


def run_rtk(kind, projections, grid, **kw):
    import itk
    from itk import RTK as rtk

    geometry = rtk_geometry(projections.geometry)
    stack = rtk_stack(projections)
    if kind == "fdk":
        f = rtk.FDKConeBeamReconstructionFilter[itk.Image[itk.F, 3]].New()
        f.SetGeometry(geometry)
    elif kind == "osem":
        f = rtk.OSEMConeBeamReconstructionFilter[itk.Image[itk.F, 3], itk.Image[itk.F, 3]].New()
        f.SetGeometry(geometry)
        f.SetNumberOfIterations(kw.get("iterations", 4))
        f.SetNumberOfProjectionsPerSubset(5)
    elif kind == "sart":
        f = rtk.SARTConeBeamReconstructionFilter[itk.Image[itk.F, 3], itk.Image[itk.F, 3]].New()
        f.SetGeometry(geometry)
        f.SetNumberOfIterations(kw.get("iterations", 4))
        f.SetNumberOfProjectionsPerSubset(5)
        f.SetLambda(0.7)
        f.SetEnforcePositivity(True)
    init = rtk_volume(grid)
    if kind == "osem":
        init = itk.image_from_array(np.full(grid.GetSize()[::-1], 0.01, np.float32))
        init.SetSpacing(grid.GetSpacing())
        init.SetOrigin(grid.GetOrigin())
    f.SetInput(0, init)
    f.SetInput(1, stack)
    f.Update()
    return itk.array_from_image(f.GetOutput())


def bench_quality(noise_photons=None):
    geometry, grid, phantom = sweep_setup()
    truth = sitk.GetArrayFromImage(phantom.voxelize(grid))
    projections = phantom.project(geometry)
    if noise_photons:
        projections = add_poisson_noise(projections, noise_photons)
    rows = []
    for name, func in [
        ("ours SAA", lambda: sitk.GetArrayFromImage(recon.shift_and_add(projections, grid))),
        ("ours FBP ramp", lambda: sitk.GetArrayFromImage(recon.fbp(projections, grid, filter="ramp"))),
        ("ours FBP hann", lambda: sitk.GetArrayFromImage(recon.fbp(projections, grid, filter="hann"))),
        ("ours FBP slice-th.", lambda: sitk.GetArrayFromImage(recon.fbp(projections, grid))),
        ("ours SART 4 it", lambda: sitk.GetArrayFromImage(recon.sart(projections, grid, iterations=4))),
        ("RTK FDK", lambda: run_rtk("fdk", projections, grid)),
        ("RTK SART 4 it", lambda: run_rtk("sart", projections, grid)),
        ("RTK OSEM 4 it", lambda: run_rtk("osem", projections, grid)),
    ]:
        t0 = time.perf_counter()
        try:
            vol = func()
        except Exception as exc:  # keep the table going when an anchor fails
            print(f"{name}: failed: {exc}")
            continue
        t = time.perf_counter() - t0
        q = quality(vol, truth, grid, phantom)
        rows.append((name, t, q))
    label = f"Poisson noise, {noise_photons:g} photons/pixel/view" if noise_photons else "noise-free"
    print(f"\n## quality, {label} (load average {os.getloadavg()[0]:.1f})")
    print(f"{'method':<18}{'wall s':>8}{'PSNR dB':>9}{'SSIM plane':>11}{'SSIM ROI':>10}{'ASF FWHM mm':>13}{'CNR':>7}")
    for name, t, q in rows:
        print(
            f"{name:<18}{t:>8.2f}{q['psnr']:>9.2f}{q['ssim']:>11.3f}{q['roi_ssim']:>10.3f}{q['fwhm']:>13.1f}{q['cnr']:>7.2f}"
        )
    sys.stdout.flush()


def bench_backprojection():
    import itk
    from itk import RTK as rtk

    geometry, grid, phantom = sweep_setup()
    projections = phantom.project(geometry)
    updates = np.prod(grid.GetSize()) * len(geometry)
    import numba

    back_project(projections.images[:1], geometry.subset([0]), grid)  # load the compiled kernel first
    numba.set_num_threads(1)
    t0 = time.perf_counter()
    back_project(projections.images, geometry, grid)
    ours = time.perf_counter() - t0
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(1)
    bp = rtk.BackProjectionImageFilter[itk.Image[itk.F, 3], itk.Image[itk.F, 3]].New()
    bp.SetGeometry(rtk_geometry(geometry))
    bp.SetInput(0, rtk_volume(grid))
    bp.SetInput(1, rtk_stack(projections))
    t0 = time.perf_counter()
    bp.Update()
    theirs = time.perf_counter() - t0
    itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(os.cpu_count())
    print(f"\n## back-projection throughput, one core (load average {os.getloadavg()[0]:.1f})")
    print(f"ours (numba, 1 thread)     {updates / ours / 1e6:8.1f} M voxel-view updates/s  ({ours:.2f} s)")
    print(f"RTK BackProjectionImageFilter {updates / theirs / 1e6:5.1f} M voxel-view updates/s  ({theirs:.2f} s)")
    print(f"ratio ours/RTK: {theirs / ours:.2f}")


def make_ct(path: Path, shape=(100, 512, 512)):
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    a = np.full(shape, -1000, np.int16)
    body = ((x - shape[2] / 2) / (shape[2] * 0.39)) ** 2 + ((y - shape[1] / 2) / (shape[1] * 0.27)) ** 2 < 1
    a[np.broadcast_to(body, shape)] = 20
    lung = ((x - shape[2] * 0.35) / (shape[2] * 0.1)) ** 2 + ((y - shape[1] * 0.49) / (shape[1] * 0.12)) ** 2 < 1
    a[np.broadcast_to(lung, shape)] = -750
    bone = ((x - shape[2] / 2) / (shape[2] * 0.03)) ** 2 + ((y - shape[1] * 0.64) / (shape[1] * 0.03)) ** 2 < 1
    a[np.broadcast_to(bone, shape) & (z % 20 < 16)] = 700
    rng = np.random.default_rng(0)
    a = (a + rng.normal(0, 20, a.shape) * np.broadcast_to(body, shape)).astype(np.int16)
    image = sitk.GetImageFromArray(a)
    image.SetSpacing((0.9, 0.9, 2.5))
    image.SetOrigin((-(shape[2] - 1) * 0.45, -(shape[1] - 1) * 0.45, -(shape[0] - 1) * 1.25))
    sitk.WriteImage(image, str(path))


def bench_drr(work: Path):
    ct = work / "ct512.mha"
    make_ct(ct)
    common = ["-a", "1", "-N", "90", "-r", "512 512", "-z", "400 400", "-t", "pfm"]
    cases = [
        Case("imgsuite drr", imgsuite() + ["drr", *common, "-O", str(work / "drr_ours/image"), str(ct)]),
        Case(
            "plastimatch drr -i exact",
            ["plastimatch", "drr", "-i", "exact", *common, "-O", str(work / "drr_pl/image"), str(ct)],
        ),
    ]
    compare(cases, title="DRR 512x512 from a 512x512x100 CT (gantry angle 0: lateral)")
    a, b = read_projections(work / "drr_ours").images, read_projections(work / "drr_pl").images
    rms = np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b**2))
    print(f"RMS difference ours vs plastimatch: {100 * rms:.3f} % of the RMS value (max {b.max():.3f})")
    # an oblique view exercises the general (non-separable) path
    t0 = time.perf_counter()
    from SlicerImgSuite.tomo.drr import drr
    from SlicerImgSuite.tomo.geometry import circular

    image = sitk.ReadImage(str(ct))
    t_read = time.perf_counter() - t0
    for angle in (0.0, 30.0):
        g = circular(1, 1000, 1500, (512, 512), (400 / 512, 400 / 512), start_angle=angle)
        t0 = time.perf_counter()
        drr(image, g)
        print(f"in-process DRR at {angle:.0f} deg: {time.perf_counter() - t0:.2f} s (CT read {t_read:.2f} s)")


def bench_fdk(work: Path):
    ct = work / "ct_fdk.mha"
    make_ct(ct, (128, 256, 256))
    proj = work / "fdk_proj"
    subprocess.run(
        [
            "plastimatch",
            "drr",
            "-a",
            "180",
            "-N",
            "2",
            "-r",
            "384 288",
            "-z",
            "480 360",
            "-t",
            "pfm",
            "-O",
            str(proj / "image"),
            str(ct),
        ],
        check=True,
        capture_output=True,
    )
    opts = ["-r", "256 256 128", "-z", "230 230 320"]
    cases = [
        Case("imgsuite fdk", imgsuite() + ["fdk", "-I", str(proj), "-O", str(work / "fdk_ours.mha"), *opts]),
        Case("plastimatch fdk", ["plastimatch", "fdk", "-I", str(proj), "-O", str(work / "fdk_pl.mha"), *opts]),
    ]
    compare(cases, title="FDK 256x256x128 from 180 views of 384x288 (plastimatch drr projections)")
    source = sitk.GetArrayFromImage(
        sitk.Resample(sitk.ReadImage(str(ct)), sitk.ReadImage(str(work / "fdk_ours.mha")))
    ).astype(float)
    for name in ("fdk_ours.mha", "fdk_pl.mha"):
        v = sitk.GetArrayFromImage(sitk.ReadImage(str(work / name))).astype(float)
        inner = slice(8, -8)
        r = np.corrcoef(v[inner].ravel(), source[inner].ravel())[0, 1]
        print(f"interop: {name} from plastimatch DRRs, correlation with the source CT: {r:.4f}")
    # our DRRs reconstructed by plastimatch fdk
    ours = work / "our_proj"
    subprocess.run(
        imgsuite()
        + ["drr", "-a", "180", "-N", "2", "-r", "384 288", "-z", "480 360", "-O", str(ours / "image"), str(ct)],
        check=True,
    )
    subprocess.run(
        ["plastimatch", "fdk", "-I", str(ours), "-O", str(work / "pl_from_ours.mha"), *opts],
        check=True,
        capture_output=True,
    )
    v = sitk.GetArrayFromImage(sitk.ReadImage(str(work / "pl_from_ours.mha"))).astype(float)
    r = np.corrcoef(v[8:-8].ravel(), source[8:-8].ravel())[0, 1]
    print(f"interop: plastimatch fdk from our DRRs, correlation with the source CT: {r:.4f}")


def bench_memory(work: Path):
    script = (
        "import numpy as np, time\n"
        "from SlicerImgSuite.tomo.geometry import linear_sweep\n"
        "from SlicerImgSuite.tomo.projset import ProjectionSet, write_projections\n"
        "g = linear_sweep(60, 40, sid=1800, dims=(2000, 2000), pixel_size=(0.2, 0.2), sweep_axis=(1, 0, 0))\n"
        "rng = np.random.default_rng(0)\n"
        "write_projections(ProjectionSet(rng.random((60, 2000, 2000), np.float32), g), "
        f"'{work / 'big'}')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    runs = {"saa": [], "fbp": [], "sart": ["--iterations", "1"]}  # SART: one pass over the subsets
    cases = [
        Case(
            f"imgsuite tomo {algorithm} 2000^2x60 -> 100 slices",
            imgsuite()
            + ["tomo", "--input", str(work / "big"), "--output", str(work / f"big_{algorithm}.mha")]
            + ["--algorithm", algorithm, *extra, "--depth-range", "0", "198", "--slice-spacing", "2"],
        )
        for algorithm, extra in runs.items()
    ]
    compare(cases, repeats=1, warmup=False, title="memory: 2000x2000 x 60 views, 100 slices")


def bench_foreign(work: Path):
    """Bead depth error per algorithm on plastimatch-made sweeps (25 views, the issue's SAD/SID), each
    reconstructed by ``imgsuite tomo`` on its default grid (1 mm voxels) and on the old 0-300 mm one."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "Testing"))
    from test_tomo_foreign_sweeps import BEADS, PANEL, PLASTIMATCH, bead_ct, plastimatch_linear

    from SlicerImgSuite.tomo.phantom import focus_depths

    ct = work / "beads.mha"
    bead_ct(ct)
    arc = ["-t", "pfm", "-a", "25", "-N", "1.6667", "-y", "-20", *PANEL, "-O", str(work / "pl_arc/image")]
    subprocess.run([PLASTIMATCH, "drr", *arc, str(ct)], check=True, capture_output=True)
    plastimatch_linear(ct, work / "pl_linear" / "image", views=25)
    print(f"\n## bead depth error, mm (|max| and mean |error| of {len(BEADS)} beads), load {os.getloadavg()[0]:.1f}")
    print(f"{'sweep':<20}{'algorithm':<10}{'default grid':>16}{'--depth-range 0 300':>22}{'wall s':>8}")
    for sweep in ("pl_arc", "pl_linear"):
        geometry = read_projections(work / sweep).geometry
        normal = geometry.normals[len(geometry) // 2]
        for algorithm in ("saa", "fbp", "sart"):
            cells = []
            for extra in ([], ["--depth-range", "0", "300"]):
                out = work / f"{sweep}_{algorithm}.mha"
                cmd = imgsuite() + ["tomo", "-q", "--input", str(work / sweep), "--output", str(out)]
                t0 = time.perf_counter()
                subprocess.run(
                    cmd + ["--algorithm", algorithm, "--slice-spacing", "1", "--pixel-size", "1", *extra], check=True
                )
                wall = time.perf_counter() - t0
                e = np.abs(focus_depths(sitk.ReadImage(str(out)), BEADS, normal))
                cells.append(
                    f"{np.max(e):7.2f} /{np.mean(e):6.2f}"
                    if np.isfinite(e).all()
                    else f"{np.isnan(e).sum()} beads off grid"
                )
            print(f"{sweep:<20}{algorithm:<10}{cells[0]:>16}{cells[1]:>22}{wall:>8.1f}")
        sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--only", choices=["quality", "noise", "bp", "drr", "fdk", "foreign"], nargs="*")
    args = parser.parse_args()
    only = set(args.only or ["quality", "noise", "bp", "drr", "fdk", "foreign"])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "quality" in only:
            bench_quality()
        if "noise" in only:
            bench_quality(noise_photons=1e4)
        if "bp" in only:
            bench_backprojection()
        if "drr" in only:
            bench_drr(work)
        if "fdk" in only:
            bench_fdk(work)
        if "foreign" in only:
            bench_foreign(work)
        if args.memory:
            bench_memory(work)


if __name__ == "__main__":
    main()
