"""Random anatomical phantoms (HU volumes) for training beside few real CTs: each draw is a new subject.

With five CT subjects, two of them one of a kind (a chest, a flat phantom), a network trained on the other four
never saw that kind of background. A phantom here is drawn from a family of shapes and densities (domain
randomisation): an elliptic body with a fat layer and soft-tissue texture, then one of

- ``chest``: two lungs (-850 to -650 HU) with vessels (thin tubes), ribs (thin rings, tilted), a spine and a heart;
- ``limbs``: one or two limbs, each with a bone (cortex and marrow), as the thigh CTs;
- ``slab``: a box of uniform water-like plastic, as a QA phantom, sometimes with cylinders of other densities;
- ``abdomen``: a spine, organs of slightly different density, some bowel gas.

None has a round opacity of its own beyond what anatomy gives (vessel ends, bone cross-sections): the clear
images must stay clear. The volumes are LPS with identity direction, in HU, air -1000.
"""

from __future__ import annotations

import numpy as np

KINDS = ("chest", "limbs", "slab", "abdomen")


def _grid(rng, voxel_mm: float):
    size_mm = np.array([rng.uniform(380, 520), rng.uniform(260, 360), rng.uniform(220, 380)])  # L-R, A-P, S-I
    dims = np.maximum(8, np.round(size_mm / voxel_mm).astype(int))
    axes = [(np.arange(n) - (n - 1) / 2) * voxel_mm for n in dims]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return x, y, z, dims


def _texture(rng, shape, sd: float, sigma_vox: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(rng.normal(0.0, 1.0, shape).astype(np.float32), sigma_vox)
    return noise * (sd / max(float(noise.std()), 1e-6))


def _tube(x, y, z, start, direction, radius):
    """Points within ``radius`` of the segment ``start + t * direction``, ``t`` in [0, 1]."""
    d = np.asarray(direction, float)
    rel = np.stack([x - start[0], y - start[1], z - start[2]])
    t = np.clip(np.tensordot(d, rel, 1) / float(d @ d), 0.0, 1.0)
    return ((rel - t[None] * d[:, None, None, None]) ** 2).sum(0) <= radius ** 2


def _body(rng, x, y, z, hu, a, b):
    """Elliptic body of semi-axes ``a`` (L-R) and ``b`` (A-P) mm: fat layer, textured soft tissue."""
    r = (x / a) ** 2 + (y / b) ** 2
    fat = rng.uniform(5, 25)
    inner = (x / max(a - fat, 10)) ** 2 + (y / max(b - fat, 10)) ** 2
    hu[r <= 1] = rng.uniform(-120, -80)
    tissue = inner <= 1
    hu[tissue] = rng.uniform(20, 60) + _texture(rng, hu.shape, rng.uniform(5, 25), rng.uniform(1, 4))[tissue]
    return tissue


def _chest(rng, x, y, z, hu, a, b):
    _body(rng, x, y, z, hu, a, b)
    for side in (-1, 1):
        c = np.array([side * a * rng.uniform(0.4, 0.55), rng.uniform(-0.1, 0.1) * b, rng.uniform(-20, 20)])
        r = np.array([a * rng.uniform(0.3, 0.42), b * rng.uniform(0.55, 0.75), rng.uniform(90, 160)])
        lung = (((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2) <= 1
        hu[lung] = rng.uniform(-870, -650) + _texture(rng, hu.shape, rng.uniform(10, 40), 1.5)[lung]
        for _ in range(rng.integers(10, 30)):  # vessels: tubes from the hilum outwards
            start = c + rng.normal(0, 10, 3) - np.array([side * r[0] * 0.5, 0, 0])
            vessel = _tube(x, y, z, start, rng.normal(0, 1, 3) * r * rng.uniform(0.3, 0.9), rng.uniform(1.5, 4.0))
            hu[vessel & lung] = rng.uniform(-50, 60)
    heart = (((x + a * 0.1) / (a * 0.3)) ** 2 + ((y + b * 0.2) / (b * 0.45)) ** 2 + ((z + 40) / 70) ** 2) <= 1
    hu[heart] = rng.uniform(30, 50)
    _spine(rng, x, y, z, hu, b)
    spacing, tilt, width = rng.uniform(18, 30), rng.uniform(0.15, 0.45), rng.uniform(4, 8)
    angle = np.arctan2(y / b, x / a)
    for level in np.arange(z.min(), z.max(), spacing):  # ribs: rings just inside the fat layer, tilted head-feet
        shell = np.abs(np.sqrt((x / (a * 0.9)) ** 2 + (y / (b * 0.88)) ** 2) - 1) * min(a, b) <= width / 2
        height = np.abs(z - level - tilt * b * np.sin(angle)) <= width / 2
        hu[shell & height & (y > -b * 0.7)] = rng.uniform(300, 900)


def _spine(rng, x, y, z, hu, b):
    cy, radius = b * rng.uniform(0.55, 0.7), rng.uniform(12, 22)
    hu[(x ** 2 + (y - cy) ** 2) <= radius ** 2] = rng.uniform(250, 600)


def _limbs(rng, x, y, z, hu, a, b):
    count = int(rng.integers(1, 3))
    for k in range(count):
        cx = 0.0 if count == 1 else (-1) ** k * a * rng.uniform(0.45, 0.6)
        la, lb = a * rng.uniform(0.35, 0.5) * (2 if count == 1 else 1), b * rng.uniform(0.6, 0.95)
        _body(rng, x - cx, y, z, hu, la, lb)
        bx, by, radius = cx + rng.uniform(-0.2, 0.2) * la, rng.uniform(-0.2, 0.3) * lb, rng.uniform(10, 18)
        r = np.sqrt((x - bx - 0.02 * z) ** 2 + (y - by) ** 2)
        hu[r <= radius] = rng.uniform(900, 1600)
        hu[r <= radius * rng.uniform(0.4, 0.7)] = rng.uniform(0, 250)


def _slab(rng, x, y, z, hu, a, b):
    half = np.array([a, b * 0.8, rng.uniform(25, 150)])
    box = (np.abs(x) <= half[0]) & (np.abs(y) <= half[1]) & (np.abs(z) <= half[2])
    hu[box] = rng.uniform(-20, 80) + rng.normal(0, rng.uniform(2, 15), hu.shape)[box]
    for _ in range(rng.integers(0, 4)):  # inserts: cylinders along the head-feet axis (a QA phantom's rods)
        cx, cy, radius = rng.uniform(-0.7, 0.7) * a, rng.uniform(-0.6, 0.6) * b, rng.uniform(5, 20)
        hu[box & (((x - cx) ** 2 + (y - cy) ** 2) <= radius ** 2)] = rng.uniform(-800, 1000)


def _abdomen(rng, x, y, z, hu, a, b):
    tissue = _body(rng, x, y, z, hu, a, b)
    _spine(rng, x, y, z, hu, b)
    for _ in range(rng.integers(2, 5)):  # organs
        c, r = rng.uniform(-0.5, 0.5, 3) * np.array([a, b, 100]), rng.uniform(30, 80, 3)
        organ = tissue & ((((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2) <= 1)
        hu[organ] = rng.uniform(20, 70)
    for _ in range(rng.integers(0, 8)):  # bowel gas
        start = rng.uniform(-0.5, 0.5, 3) * np.array([a, b, 120])
        hu[tissue & _tube(x, y, z, start, rng.normal(0, 40, 3), rng.uniform(4, 12))] = rng.uniform(-950, -600)


def random_phantom(seed: int, voxel_mm: float = 2.5, kind: str | None = None):
    """One random phantom as a ``SimpleITK.Image`` in HU (LPS, identity direction, ``voxel_mm`` voxels).

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> image = random_phantom(3, voxel_mm=8.0, kind="slab")
    >>> a = sitk.GetArrayFromImage(image)
    >>> float(a.min()), bool(a.max() > -100), image.GetSpacing()
    (-1000.0, True, (8.0, 8.0, 8.0))
    """
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    x, y, z, dims = _grid(rng, voxel_mm)
    hu = np.full(x.shape, -1000.0, np.float32)
    a, b = rng.uniform(0.3, 0.42) * x.max() * 2, rng.uniform(0.28, 0.4) * y.max() * 2
    {"chest": _chest, "limbs": _limbs, "slab": _slab, "abdomen": _abdomen}[kind](rng, x, y, z, hu, a, b)
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing([voxel_mm] * 3)
    image.SetOrigin([float(v[0]) for v in (x[0, 0, :1], y[0, :1, 0], z[:1, 0, 0])])
    image.SetMetaData("imgsuite.phantom", f"random phantom {kind}, seed {seed}")
    return image
