"""A known-truth radiograph task rendered from CTs with the project's DRR (:func:`..tomo.drr.drr`).

For each CT (resampled to at most ``voxel_mm`` voxels), ``per_ct`` radiographs are rendered, half of them
with one round opacity inserted into the CT before projection:

- opacity: a sphere of radius 10-25 mm whose HU is raised by 400-1200 HU (clipped at 3000), centred on
  a random voxel above -900 HU in the central 70 % of the volume (lung, soft tissue or bone);
- geometry: a frontal view (plastimatch angle 90 +- 8 deg), source-axis distance 900-1100 mm,
  source-image distance SAD + 300-600 mm, isocentre shifted up to 15 mm left-right and head-feet,
  a detector covering the CT's projected width and height with ``longest`` pixels on its longer side;
- rendering: ``v = 1 - exp(-k p)`` of the line integral ``p`` (bright = attenuating), ``k`` setting the
  image's 95th percentile of ``p`` to ``v = 0.75`` x gain (0.85-1.0), plus Gaussian noise of SD
  0.002-0.008, written as 16-bit PNG.

Patients: the physical subject of each CT (the two phases of a 4D CT are one patient), so that folds
keep subjects apart. The truth (centre, radius, HU increase, geometry) goes to ``truth.csv``.
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

    ct = read_image(path)
    spacing = [max(s, voxel_mm) for s in ct.GetSpacing()]
    size = [max(1, int(round(n * s / t))) for n, s, t in zip(ct.GetSize(), ct.GetSpacing(), spacing)]
    ct = sitk.Resample(ct, size, sitk.Transform(), sitk.sitkLinear, ct.GetOrigin(), spacing, ct.GetDirection(),
                       -1000.0, sitk.sitkFloat32)
    return ct


def _insert_sphere(hu: np.ndarray, ct, rng) -> dict:
    """Raise HU inside a random sphere, in place; returns the truth."""
    k, j, i = hu.shape
    lo = (np.array([k, j, i]) * 0.15).astype(int)
    hi = np.maximum(lo + 1, (np.array([k, j, i]) * 0.85).astype(int))
    inner = hu[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    candidates = np.argwhere(inner > -900)
    if len(candidates) == 0:
        raise ImgSuiteError("CT has no voxel above -900 HU in its central part")
    centre_idx = candidates[rng.integers(len(candidates))] + lo
    radius, delta = float(rng.uniform(10, 25)), float(rng.uniform(400, 1200))
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


def _view(ct, rng, longest: int):
    from ..tomo.geometry import circular

    size = np.array(ct.GetSize()) * np.array(ct.GetSpacing())
    centre = np.array(ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in ct.GetSize()]))
    sad = rng.uniform(900, 1100)
    sid = sad + rng.uniform(300, 600)
    iso = centre + np.array([rng.uniform(-15, 15), 0.0, rng.uniform(-15, 15)])
    width, height = size[0] * sid / sad * 1.1, size[2] * sid / sad * 1.1  # L-R and S-I extent on the panel
    pixel = max(width, height) / longest
    dims = (max(8, int(round(width / pixel))), max(8, int(round(height / pixel))))
    angle = 90.0 + rng.uniform(-8, 8)
    return circular(1, sad=sad, sid=sid, dims=dims, pixel_size=(pixel, pixel), start_angle=angle, isocenter=iso), {
        "sad": round(sad, 1), "sid": round(sid, 1), "angle_deg": round(angle, 2), "pixel_mm": round(pixel, 3)}


def _render(p: np.ndarray, rng) -> tuple[np.ndarray, dict]:
    p95 = float(np.percentile(p, 95)) or 1.0
    gain = rng.uniform(0.85, 1.0)
    k = -np.log(1 - 0.75 * gain) / p95
    noise = rng.uniform(0.002, 0.008)
    v = 1 - np.exp(-k * p) + rng.normal(0, noise, p.shape)
    return np.clip(v, 0, 1), {"gain": round(gain, 3), "noise_sd": round(noise, 4)}


def make_drr_task(
    cts,
    output: str | os.PathLike,
    *,
    per_ct: int = 48,
    longest: int = 160,
    voxel_mm: float = 2.5,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> Path:
    """Render the known-truth task; returns ``OUTPUT/labels.csv`` (``path,label,patient_id``).

    Parameters
    ----------
    cts : ``(patient_id, CT path)`` pairs (a DICOM series folder or an image file, in HU).
    output : folder for ``images/*.png``, ``labels.csv`` and ``truth.csv``.
    per_ct : radiographs per CT, half with an opacity (label ``opacity``), half without (``clear``).
    longest : detector pixels on the longer side; ``voxel_mm``: CTs are resampled to voxels at least this large.
    """
    import SimpleITK as sitk
    from PIL import Image

    from ..io.atomic import write_together
    from ..tomo.drr import drr

    progress = progress or no_progress
    rng = np.random.default_rng(seed)
    images, rows = [], []
    for n, (patient, path) in enumerate(cts):
        ct = _load_ct(path, voxel_mm)
        hu = sitk.GetArrayFromImage(ct)
        for m in range(per_ct):
            progress((n * per_ct + m) / (len(cts) * per_ct), f"{patient}: radiograph {m + 1}/{per_ct}")
            label = m % 2
            work = hu.copy()
            truth = _insert_sphere(work, ct, rng) if label else {}
            image = sitk.GetImageFromArray(work)
            image.CopyInformation(ct)
            geometry, view = _view(ct, rng, longest)
            pixels, look = _render(drr(image, geometry).images[0], rng)
            name = f"{patient}_{n:02d}_{m:03d}.png"
            images.append((name, (pixels * 65535 + 0.5).astype(np.uint16)))
            rows.append({"path": f"images/{name}", "label": ["clear", "opacity"][label], "patient_id": patient,
                         "ct": str(path), **view, **look, **truth})

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
                    "patient_id"]), False), (out / "truth.csv", write_csv(all_columns), False)])
    progress(1.0, "done")
    return out / "labels.csv"


if __name__ == "__main__":  # python -m SlicerImgSuite.xray.drr_task OUTPUT [PER_CT] [LONGEST]
    import sys

    shared = Path(os.environ.get("IMGSUITE_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared/data"))
    args = sys.argv[1:]
    make_drr_task([(p, shared / f) for p, f in SHARED_CTS], args[0], per_ct=int(args[1]) if len(args) > 1 else 48,
                  longest=int(args[2]) if len(args) > 2 else 160,
                  progress=lambda f, m: print(f"{f:.2f} {m}", flush=True) if m.endswith("1/48") or f == 1 else None)
