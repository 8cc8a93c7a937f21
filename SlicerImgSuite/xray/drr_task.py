"""A known-truth radiograph task rendered from CTs with the project's DRR (:func:`..tomo.drr.drr`).

For each CT (resampled to at most ``voxel_mm`` voxels, optionally as deformed copies, :func:`_vary_ct`),
``per_ct / 2`` views are rendered twice, without and with one round opacity inserted into the CT:

- opacity: a sphere (radius ``radius_mm``, default 10-25 mm) whose HU is raised by ``delta_hu`` (default
  400-1200 HU, clipped at 3000), centred on a random voxel above -900 HU in the central 70 % of the volume;
  redrawn while it changes no pixel by more than 3 noise SD;
- geometry: a frontal view (plastimatch angle 90 +- 8 deg), source-axis distance 900-1100 mm,
  source-image distance SAD + 300-600 mm, isocentre shifted up to 15 mm left-right and head-feet,
  a detector covering the body's projected width plus a random 10-60 % margin and 60-85 % of its length
  (the field cuts through the body head-feet, as a radiograph's does; the CT's first and last slices stay
  out of view), with ``longest`` pixels on its longer side;
- rendering: ``v = 1 - exp(-k p)`` of the line integral ``p`` (bright = attenuating), ``k`` setting the
  clear view's 95th percentile of ``p`` to ``v = 0.75`` x gain (0.85-1.0), plus Gaussian noise of SD
  0.002-0.008 (the same level, independent draws, for both images of a pair), written as 16-bit PNG.

Patients: the physical subject of each CT (the two phases of a 4D CT are one patient, deformed copies stay
with their CT), so that folds keep subjects apart. The truth (centre, radius, HU increase, geometry, the
noise-free peak change of the image and where it lies) goes to ``truth.csv``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress

# (patient, folder under the shared data): the CTs of ../shared/data used for the measurement
SHARED_CTS = (
    ("ibsi-sts-001", "ibsi-sts-ct-rtstruct/STS_001/dicom/image"),
    ("ibsi-sts-003", "ibsi-sts-ct-rtstruct/STS_003/dicom/image"),
    ("ibsi-sts-004", "ibsi-sts-ct-rtstruct/STS_004/dicom/image"),
    ("opentps-lung", "opentps-4dct-light-lung/00"),
    ("opentps-lung", "opentps-4dct-light-lung/50"),
    ("nelms-phantom", "nelms-dvh-analytic-phantom/CT_3mm"),
    ("nelms-phantom", "nelms-dvh-analytic-phantom/CT_1mm"),
)


def _load_ct(path, voxel_mm: float):
    import SimpleITK as sitk

    from ..io import read_image

    ct = path if isinstance(path, sitk.Image) else read_image(path)
    spacing = [max(s, voxel_mm) for s in ct.GetSpacing()]
    size = [max(1, int(round(n * s / t))) for n, s, t in zip(ct.GetSize(), ct.GetSpacing(), spacing)]
    ct = sitk.Resample(ct, size, transform=sitk.Transform(), interpolator=sitk.sitkLinear, outputOrigin=ct.GetOrigin(),
                       outputSpacing=spacing, outputDirection=ct.GetDirection(), defaultPixelValue=-1000.0,
                       outputPixelType=sitk.sitkFloat32)
    return ct


def _source(path) -> str:
    """What ``truth.csv`` names as a radiograph's CT: its path, or a phantom's kind and seed."""
    return str(path) if isinstance(path, (str, os.PathLike)) else path.GetMetaData("imgsuite.phantom") \
        if path.HasMetaDataKey("imgsuite.phantom") else "image in memory"


def _insert_sphere(hu: np.ndarray, ct, rng, radius_mm=(10.0, 25.0), delta_hu=(400.0, 1200.0)) -> dict:
    """Raise HU inside a random sphere, in place; returns the truth."""
    k, j, i = hu.shape
    lo = (np.array([k, j, i]) * 0.15).astype(int)
    hi = np.maximum(lo + 1, (np.array([k, j, i]) * 0.85).astype(int))
    inner = hu[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    candidates = np.argwhere(inner > -900)
    if len(candidates) == 0:
        raise ImgSuiteError("CT has no voxel above -900 HU in its central part")
    centre_idx = candidates[rng.integers(len(candidates))] + lo
    radius, delta = float(rng.uniform(*radius_mm)), float(rng.uniform(*delta_hu))
    sp = np.array(ct.GetSpacing())[::-1]  # k, j, i spacing
    half = np.ceil(radius / sp).astype(int)
    sl = tuple(slice(max(c - h, 0), min(c + h + 1, n)) for c, h, n in zip(centre_idx, half, hu.shape))
    grids = np.meshgrid(*[(np.arange(s.start, s.stop) - c) * d for s, c, d in zip(sl, centre_idx, sp)],
                        indexing="ij")
    inside = sum(g**2 for g in grids) <= radius**2
    hu[sl][inside] = np.minimum(hu[sl][inside] + delta, 3000.0)
    centre = ct.TransformIndexToPhysicalPoint([int(v) for v in centre_idx[::-1]])
    return {"centre_lps": [round(float(c), 1) for c in centre], "radius_mm": round(radius, 2),
            "delta_hu": round(delta, 1), "voxels": int(inside.sum())}


def _body_box(ct, hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre (LPS mm) and size of the body: the L-R and S-I range of columns holding >= 50 mm of voxels
    above -500 HU along A-P (so air around the patient and a thin couch do not widen the detector)."""
    spacing = np.array(ct.GetSpacing())
    k, i = np.nonzero((hu > -500).sum(axis=1) * spacing[1] >= 50.0)
    lo, hi = (np.array([i.min(), 0, k.min()]), np.array([i.max(), hu.shape[1] - 1, k.max()])) if len(k) else \
        (np.zeros(3, int), np.array(ct.GetSize()) - 1)
    centre = np.array(ct.TransformContinuousIndexToPhysicalPoint([float(v) for v in (lo + hi) / 2]))
    return centre, (hi - lo + 1) * spacing


def _view(ct, hu: np.ndarray, rng, longest: int):
    """A frontal view: L-R, the body's width plus a random 10-60 % margin of air; S-I, 60-85 % of the body's
    length, so that the detector never shows where the CT ends (a radiograph's field cuts through the body,
    it never shows the body end in a straight edge: a network that learnt those edges learnt the CT, not the
    finding)."""
    from ..tomo.geometry import circular

    centre, size = _body_box(ct, hu)
    sad = rng.uniform(900, 1100)
    sid = sad + rng.uniform(300, 600)
    margin, fraction = rng.uniform(1.1, 1.6), rng.uniform(0.6, 0.85)
    room = min(15.0, 0.25 * (1 - fraction) * size[2])  # the S-I shift keeps the field inside the body
    iso = centre + np.array([rng.uniform(-15, 15), 0.0, rng.uniform(-room, room)])
    width, height = size[0] * sid / sad * margin, size[2] * sid / sad * fraction  # L-R and S-I on the panel
    pixel = max(width, height) / longest
    dims = (max(8, int(round(width / pixel))), max(8, int(round(height / pixel))))
    angle = 90.0 + rng.uniform(-8, 8)
    return circular(1, sad=sad, sid=sid, dims=dims, pixel_size=(pixel, pixel), start_angle=angle, isocenter=iso), {
        "sad": round(sad, 1), "sid": round(sid, 1), "angle_deg": round(angle, 2), "pixel_mm": round(pixel, 3),
        "lr_margin": round(float(margin), 3), "si_fraction": round(float(fraction), 3)}


def _vary_ct(ct, rng, shift_mm: float):
    """A deformed copy of ``ct`` (same grid): rotation, scaling and a smooth B-spline warp; the same patient.

    Rotation about the head-feet axis +-10 deg and about the other two +-4 deg, scaling 0.9-1.1 per axis
    about the CT's centre, and a 4x4x4-cell B-spline whose control points move by Gaussian ``shift_mm``.
    """
    import SimpleITK as sitk

    centre = ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in ct.GetSize()])
    rigid = sitk.Euler3DTransform(centre, *np.radians(rng.uniform([-4, -4, -10], [4, 4, 10])))
    affine = sitk.AffineTransform(3)
    affine.SetCenter(centre)
    affine.SetMatrix((np.reshape(rigid.GetMatrix(), (3, 3)) @ np.diag(rng.uniform(0.9, 1.1, 3))).ravel().tolist())
    warp = sitk.BSplineTransformInitializer(ct, [4, 4, 4])
    warp.SetParameters(rng.normal(0.0, shift_mm, len(warp.GetParameters())).tolist())
    return sitk.Resample(ct, ct, sitk.CompositeTransform([affine, warp]), sitk.sitkLinear, -1000.0, sitk.sitkFloat32)


def _render(p: np.ndarray, k: float, noise: float, rng) -> np.ndarray:
    """``v = 1 - exp(-k p)`` plus Gaussian noise of SD ``noise``, clipped to ``[0, 1]``."""
    return np.clip(1 - np.exp(-k * p) + rng.normal(0, noise, p.shape), 0, 1)


def _pair(ct, hu: np.ndarray, rng, longest: int, sphere: dict) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """One view rendered without and with a sphere (same geometry, gain and noise level, independent noise).

    Spheres that change no pixel by more than 3 noise SD (projected off the detector, or hidden) are redrawn.
    """
    import SimpleITK as sitk

    from ..tomo.drr import drr

    def project(values):
        image = sitk.GetImageFromArray(values)
        image.CopyInformation(ct)
        return drr(image, geometry).images[0]

    geometry, view = _view(ct, hu, rng, longest)
    clear = project(hu)
    gain, noise = rng.uniform(0.85, 1.0), rng.uniform(0.002, 0.008)
    k = -np.log(1 - 0.75 * gain) / (float(np.percentile(clear, 95)) or 1.0)
    for _ in range(20):
        work = hu.copy()
        truth = _insert_sphere(work, ct, rng, **sphere)
        opaque = project(work)
        difference = np.exp(-k * clear) - np.exp(-k * opaque)  # noise-free change of v
        if difference.max() > 3 * noise:
            break
    else:
        raise ImgSuiteError("no visible sphere in 20 draws", str(ct))
    row, col = np.unravel_index(int(np.argmax(difference)), difference.shape)
    truth.update(peak_contrast=round(float(difference.max()), 4), peak_row=int(row), peak_col=int(col),
                 contrast_to_noise=round(float(difference.max() / noise), 1))
    look = {**view, "gain": round(gain, 3), "noise_sd": round(noise, 4)}
    return _render(clear, k, noise, rng), _render(opaque, k, noise, rng), {**look, **truth}, look


def make_drr_task(
    cts,
    output: str | os.PathLike,
    *,
    per_ct: int = 48,
    longest: int = 160,
    voxel_mm: float = 2.5,
    variants: int = 1,
    shift_mm: float = 6.0,
    radius_mm: tuple[float, float] = (10.0, 25.0),
    delta_hu: tuple[float, float] = (400.0, 1200.0),
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> Path:
    """Render the known-truth task; returns ``OUTPUT/labels.csv`` (``path,label,patient_id,study_id``; the
    study is the view, shared by its clear and opacity renderings).

    Parameters
    ----------
    cts : ``(patient_id, CT path)`` pairs (a DICOM series folder or an image file, in HU).
    output : folder for ``images/*.png``, ``labels.csv`` and ``truth.csv``.
    per_ct : radiographs per CT (even): ``per_ct / 2`` views, each rendered without (label ``clear``) and with
        one sphere (``opacity``), spread evenly over the CT's ``variants``.
    longest : detector pixels on the longer side; ``voxel_mm``: CTs are resampled to voxels at least this large.
    variants : copies of each CT (the first is the CT itself, the others deformed by :func:`_vary_ct` with
        B-spline control-point shifts of SD ``shift_mm``), all under the CT's patient.
    """
    import SimpleITK as sitk
    from PIL import Image

    from ..io.atomic import write_together

    progress = progress or no_progress
    rng = np.random.default_rng(seed)
    images, rows = [], []
    for n, (patient, path) in enumerate(cts):
        original = _load_ct(path, voxel_mm)
        for m in range(0, per_ct, 2):
            progress((n * per_ct + m) / (len(cts) * per_ct), f"{patient}: radiograph {m + 1}/{per_ct}")
            variant = m * variants // per_ct
            if m == 0 or variant != (m - 2) * variants // per_ct:
                ct = original if variant == 0 else _vary_ct(original, rng, shift_mm)
                hu = sitk.GetArrayFromImage(ct)
            clear, opaque, truth, look = _pair(ct, hu, rng, longest, {"radius_mm": radius_mm, "delta_hu": delta_hu})
            for label, pixels, extra in ((0, clear, look), (1, opaque, truth)):
                name = f"{patient}_{n:02d}_{m + label:03d}.png"
                images.append((name, (pixels * 65535 + 0.5).astype(np.uint16)))
                rows.append({"path": f"images/{name}", "label": ["clear", "opacity"][label], "patient_id": patient,
                             "study_id": f"{patient}_{n:02d}_{m:03d}", "ct": _source(path), "variant": variant,
                             **extra})

    def write_images(tmp):
        for name, pixels in images:
            Image.fromarray(pixels).save(tmp / name)

    def write_csv(columns):
        def write(tmp):
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        return write

    out = Path(output)
    all_columns = list(dict.fromkeys(k for r in rows for k in r))
    write_together([(out / "images", write_images, True), (out / "labels.csv", write_csv(["path", "label",
                    "patient_id", "study_id"]), False), (out / "truth.csv", write_csv(all_columns), False)])
    progress(1.0, "done")
    return out / "labels.csv"


def phantom_subjects(count: int, seed: int = 0, voxel_mm: float = 2.5) -> list:
    """``count`` random phantoms (:func:`.phantoms.random_phantom`, seeds ``seed``, ``seed + 1``, ...) as
    ``(patient_id, image)`` pairs for :func:`make_drr_task`: each phantom is its own patient."""
    from .phantoms import random_phantom

    return [(f"phantom-{seed + i:04d}", random_phantom(seed + i, voxel_mm)) for i in range(count)]


if __name__ == "__main__":  # python -m SlicerImgSuite.xray.drr_task OUTPUT [--per-ct N] [--longest PX] [--variants V]
    import argparse

    parser = argparse.ArgumentParser(description="render the DRR known-truth task from the CTs of ../shared/data")
    parser.add_argument("output")
    parser.add_argument("--per-ct", type=int, default=48)
    parser.add_argument("--longest", type=int, default=160)
    parser.add_argument("--variants", type=int, default=1)
    parser.add_argument("--shift-mm", type=float, default=6.0)
    parser.add_argument("--radius-mm", type=float, nargs=2, default=(10.0, 25.0))
    parser.add_argument("--delta-hu", type=float, nargs=2, default=(400.0, 1200.0))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phantoms", type=int, default=0, metavar="N",
                        help="render N random phantoms (training data beside the CTs) instead of the shared CTs")
    parser.add_argument("--phantom-seed", type=int, default=1000, help="the first phantom's seed")
    args = parser.parse_args()
    shared = Path(os.environ.get("IMGSUITE_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared/data"))
    subjects = phantom_subjects(args.phantoms, args.phantom_seed) if args.phantoms else \
        [(p, shared / f) for p, f in SHARED_CTS]
    make_drr_task(subjects, args.output, per_ct=args.per_ct, longest=args.longest,
                  variants=args.variants, shift_mm=args.shift_mm, radius_mm=tuple(args.radius_mm),
                  delta_hu=tuple(args.delta_hu), seed=args.seed,
                  progress=lambda f, m: print(f"{f:.2f} {m}", flush=True) if m.endswith(f" 1/{args.per_ct}") else None)
