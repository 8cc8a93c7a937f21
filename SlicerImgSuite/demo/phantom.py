"""A phantom patient generated on the fly: CT series, RTSTRUCT and RTDOSE as real DICOM files.

The anatomy is analytic (ellipsoids, cylinders, a spherical shell), so every structure's true mask
is known: ``masks`` holds "voxel centre inside the true shape" on the CT grid. Contours in the
RTSTRUCT are the exact cross-sections, sampled with 128 vertices.

Geometry (LPS, mm): the body is an elliptic cylinder centred on the z axis; the patient's right
(-x) lung holds the GTV; the couch lies posterior to the body (+y).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..io.dicom_write import new_study, write_ct_series, write_rtdose

GTV_CENTRE = np.array([-60.0, -10.0, 0.0])


@dataclass
class PhantomPatient:
    """Paths of the generated DICOM files and the in-memory truth."""

    folder: Path
    ct_dir: Path
    rtstruct: Path
    rtdose: Path
    ct: sitk.Image
    masks: dict[str, sitk.Image] = field(default_factory=dict)
    colors: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    dose: sitk.Image | None = None


# name: (kind, parameters, HU, colour); drawn in this order, later ones paint over earlier ones.
_ANATOMY = {
    "BODY": ("cylinder", dict(centre=(0, 0), axes=(140, 100)), 0, (177, 122, 101)),
    "LUNG_R": ("ellipsoid", dict(centre=(-65, -5, 0), axes=(45, 60, 80)), -800, (0, 151, 206)),
    "LUNG_L": ("ellipsoid", dict(centre=(65, -5, 0), axes=(45, 60, 80)), -800, (0, 151, 150)),
    "HEART": ("ellipsoid", dict(centre=(12, -35, 0), axes=(38, 32, 45)), 40, (206, 110, 84)),
    "SPINAL_CORD": ("cylinder", dict(centre=(0, 65), axes=(8, 8)), 30, (255, 255, 0)),
    "GTV": ("sphere", dict(centre=tuple(GTV_CENTRE), radius=18), 30, (255, 0, 0)),
    "PTV": ("sphere", dict(centre=tuple(GTV_CENTRE), radius=25), None, (255, 128, 0)),
    "RING": ("shell", dict(centre=tuple(GTV_CENTRE), radii=(32, 45)), None, (128, 0, 255)),
}


def make_phantom(
    folder: str | os.PathLike,
    *,
    shape: tuple[int, int, int] = (96, 96, 48),
    spacing: tuple[float, float, float] = (3.2, 3.2, 3.0),
    seed: int = 0,
) -> PhantomPatient:
    """Generate the phantom patient's DICOM files in ``folder``.

    Parameters
    ----------
    folder : path
        Receives ``CT/`` (one file per slice), ``RS.dcm`` and ``RD.dcm``.
    shape : (i, j, k)
        CT voxels; the field of view is ``shape * spacing`` centred on the origin.
    spacing : (x, y, z)
        Voxel size, mm.
    seed : int
        Seed of the CT noise (5 HU standard deviation).

    Returns
    -------
    PhantomPatient
        The paths of the CT series, RTSTRUCT and RTDOSE written, and the true CT, masks and dose.

    Examples
    --------
    >>> import tempfile
    >>> p = make_phantom(tempfile.mkdtemp(), shape=(32, 32, 8))
    >>> sorted(p.masks)[:3], p.ct.GetSize()
    (['BODY', 'GTV', 'HEART'], (32, 32, 8))
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    origin = [-(n - 1) * s / 2.0 for n, s in zip(shape, spacing)]
    grid = sitk.Image([int(n) for n in shape], sitk.sitkInt16)
    grid.SetOrigin(origin)
    grid.SetSpacing(spacing)
    x, y, z = _voxel_centres(grid)

    hu = np.full(x.shape, -1000.0)
    masks = {}
    for name, (kind, params, value, _) in _ANATOMY.items():
        inside = _inside(kind, params, x, y, z)
        masks[name] = inside
        if value is not None:
            hu[inside] = value
    # vertebral body: a bone ring around the cord (no structure, for the bone preset)
    r_cord = np.hypot(x - 0, y - 65)
    hu[(r_cord > 9) & (r_cord <= 20)] = 700
    # couch: a slab 12 mm below the body, full width
    couch = (y > 112) & (y < 122) & (np.abs(x) < 200)
    hu[couch] = -250
    hu += np.random.default_rng(seed).normal(0, 5, hu.shape)
    ct = sitk.GetImageFromArray(np.rint(hu).astype(np.int16))
    ct.CopyInformation(grid)

    study = new_study()
    headers = write_ct_series(ct, folder / "CT", study, series_description="Phantom CT")
    mask_images = {}
    for name, inside in masks.items():
        m = sitk.GetImageFromArray(inside.astype(np.uint8))
        m.CopyInformation(grid)
        mask_images[name] = m
    colors = {name: spec[3] for name, spec in _ANATOMY.items()}
    _write_rtstruct(folder / "RS.dcm", headers, colors)
    dose = _dose(ct)
    write_rtdose(dose, folder / "RD.dcm", study)
    ct.SetMetaData("0020|000e", headers[0].SeriesInstanceUID)
    ct.SetMetaData("0020|0052", study["FrameOfReferenceUID"])
    return PhantomPatient(
        folder=folder,
        ct_dir=folder / "CT",
        rtstruct=folder / "RS.dcm",
        rtdose=folder / "RD.dcm",
        ct=ct,
        masks=mask_images,
        colors=colors,
        dose=dose,
    )


def _voxel_centres(image: sitk.Image):
    size = image.GetSize()
    k, j, i = np.meshgrid(*(np.arange(n) for n in size[::-1]), indexing="ij")
    o, s = np.array(image.GetOrigin()), np.array(image.GetSpacing())
    return o[0] + s[0] * i, o[1] + s[1] * j, o[2] + s[2] * k


def _inside(kind: str, p: dict, x, y, z) -> np.ndarray:
    if kind == "cylinder":
        (cx, cy), (a, b) = p["centre"], p["axes"]
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0
    if kind == "ellipsoid":
        (cx, cy, cz), (a, b, c) = p["centre"], p["axes"]
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0
    cx, cy, cz = p["centre"]
    r2 = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2
    if kind == "sphere":
        return r2 <= p["radius"] ** 2
    inner, outer = p["radii"]
    return (r2 > inner**2) & (r2 <= outer**2)


def _cross_sections(kind: str, p: dict, z: float) -> list[tuple[float, float, float, float]]:
    """Ellipses (cx, cy, a, b) cut by the plane at height ``z``; a shell gives outer and inner."""
    if kind == "cylinder":
        return [(*p["centre"], *p["axes"])]
    if kind == "ellipsoid":
        (cx, cy, cz), (a, b, c) = p["centre"], p["axes"]
        f = 1.0 - ((z - cz) / c) ** 2
        return [(cx, cy, a * np.sqrt(f), b * np.sqrt(f))] if f > 0 else []
    cx, cy, cz = p["centre"]
    radii = [p["radius"]] if kind == "sphere" else list(p["radii"])[::-1]
    out = []
    for r in radii:
        f = r**2 - (z - cz) ** 2
        if f > 0:
            out.append((cx, cy, np.sqrt(f), np.sqrt(f)))
    return out


def _polygon(cx, cy, a, b, z, n=128) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([cx + a * np.cos(t), cy + b * np.sin(t), np.full(n, z)])


def _dose(ct: sitk.Image) -> sitk.Image:
    """60 Gy plateau inside the PTV radius, Gaussian fall-off (sigma 15 mm), on a 4 mm grid."""
    spacing = 4.0
    lo = np.array(ct.GetOrigin())
    hi = np.array(ct.TransformIndexToPhysicalPoint([n - 1 for n in ct.GetSize()]))
    size = [int(np.floor((h - lo_) / spacing)) + 1 for lo_, h in zip(lo, hi)]
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetOrigin(lo.tolist())
    grid.SetSpacing([spacing] * 3)
    x, y, z = _voxel_centres(grid)
    r = np.sqrt((x - GTV_CENTRE[0]) ** 2 + (y - GTV_CENTRE[1]) ** 2 + (z - GTV_CENTRE[2]) ** 2)
    d = 60.0 * np.exp(-0.5 * (np.maximum(r - 25.0, 0) / 15.0) ** 2)
    dose = sitk.GetImageFromArray(d.astype(np.float32))
    dose.CopyInformation(grid)
    return dose


def _write_rtstruct(path: Path, ct_headers: list, colors) -> None:
    """The phantom's structure set: every structure's exact cross-section on every CT slice."""
    from ..rtstruct.write import write_rtstruct

    rois = []
    for name, (kind, params, _, _) in _ANATOMY.items():
        contours = []
        for h in ct_headers:
            z = float(h.ImagePositionPatient[2])
            contours += [_polygon(cx, cy, a, b, z) for cx, cy, a, b in _cross_sections(kind, params, z)]
        interpreted = {"BODY": "EXTERNAL", "GTV": "GTV", "PTV": "PTV"}.get(name, "ORGAN")
        rois.append({"name": name, "color": colors[name], "interpreted_type": interpreted, "contours": contours})
    write_rtstruct(path, ct_headers, rois, label="PHANTOM")
