"""Multi-atlas segmentation: register each atlas to the target, warp its structures, fuse the votes.

Registration is the registration package's engine (plastimatch command-file stages); this module
only adds the label side: warping, fusion (majority vote, STAPLE, locally weighted voting) and the
outputs (one mask per structure, optionally an RTSTRUCT).

Atlas folders use plastimatch mabs's converted layout: ``<atlas>/img.nrrd`` (or any image file named
``img.*``/``image.*``, or a ``ct/`` DICOM folder) and ``<atlas>/structures/<NAME>.nrrd``.

Config file (INI, plastimatch mabs section names)::

    [TRAINING]
    atlas_dir = atlases            # one sub-folder per atlas
    [REGISTRATION]
    registration_config = reg.txt  # plastimatch command file; default: affine then B-spline
    [LABELING]
    input = target.nrrd            # image file or DICOM folder
    output = out                   # per-structure masks <output>/<NAME>.nrrd
    output_dicom = out/RS.dcm      # optional RTSTRUCT (needs a DICOM target)
    [FUSION]
    method = gaussian              # vote | staple | gaussian (locally weighted voting)
    gaussian_sigma = 50            # HU: how fast an atlas loses weight where it looks different
    local_radius = 3               # mm: window over which that similarity is averaged
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..choices import FUSION_METHODS
from ..errors import ImgSuiteError
from ..geometry import require_same_grid
from ..progress import ProgressCallback, no_progress, sub_progress

# affine first (most of the anatomy's variation), then a coarse, regularised B-spline: a fine
# unregularised grid folds on CT with large uniform regions and makes the fused labels worse
DEFAULT_STAGES = [
    {"xform": "align_center"},
    {"xform": "affine", "res": [2, 2, 1], "max_its": 100},
    {"xform": "bspline", "res": [1, 1, 1], "grid_spac": [50, 50, 50], "max_its": 30, "regularization_lambda": 0.05},
]


@dataclass
class Atlas:
    """One atlas: an image and its structures (binary masks on the image grid)."""

    name: str
    image: sitk.Image
    structures: dict[str, sitk.Image]


def read_atlas(folder: str | os.PathLike) -> Atlas:
    """Read an atlas folder (``img.nrrd`` + ``structures/*.nrrd``)."""
    from ..io import read_image

    folder = Path(folder)
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.name.split(".")[0] in ("img", "image"))
    if not candidates and (folder / "ct").is_dir():
        candidates = [folder / "ct"]
    if not candidates:
        raise ImgSuiteError("atlas has no img.* image file (or ct/ DICOM folder)", folder)
    image = read_image(candidates[0])
    struct_dir = folder / "structures"
    if not struct_dir.is_dir():
        raise ImgSuiteError("atlas has no structures/ folder", folder)
    structures = {}
    for f in sorted(struct_dir.iterdir()):
        if f.name.startswith(".") or not f.is_file():
            continue
        mask = read_image(f)
        require_same_grid(mask, image, str(f), str(candidates[0]))
        structures[f.name.split(".")[0]] = sitk.Cast(mask > 0, sitk.sitkUInt8)
    if not structures:
        raise ImgSuiteError("atlas structures/ folder is empty", struct_dir)
    return Atlas(folder.name, image, structures)


def fuse_labels(
    votes: list[sitk.Image],
    method: str = "vote",
    target: sitk.Image | None = None,
    warped_images: list[sitk.Image] | None = None,
    gaussian_sigma: float = 50.0,
    local_radius_mm: float = 3.0,
) -> sitk.Image:
    """Fuse warped binary masks of one structure into one mask.

    Parameters
    ----------
    votes : list of SimpleITK.Image
        The structure's mask from each atlas, warped onto the target grid.
    method : {'vote', 'staple', 'gaussian'}
        ``vote``: more than half of the atlases agree. ``staple``: SimpleITK's STAPLE estimate of the
        truth (each atlas weighted by its estimated sensitivity and specificity), > 0.5.
        ``gaussian``: locally weighted voting; each atlas's vote at a voxel is weighted by
        ``exp(-d^2 / 2 sigma^2)`` where ``d`` is the target/warped-atlas intensity difference averaged
        over ``local_radius_mm`` (needs ``target`` and ``warped_images``).

    Examples
    --------
    >>> a = sitk.Image([4, 4, 1], sitk.sitkUInt8); b = sitk.Image(a); c = sitk.Image(a)
    >>> a[1, 1, 0] = 1; b[1, 1, 0] = 1; c[2, 2, 0] = 1
    >>> int(sitk.GetArrayFromImage(fuse_labels([a, b, c])).sum())
    1
    """
    if method not in FUSION_METHODS:
        raise ImgSuiteError(f"unknown label fusion {method!r}; use one of {', '.join(FUSION_METHODS)}")
    arrays = np.stack([sitk.GetArrayViewFromImage(v) > 0 for v in votes]).astype(np.float32)
    if method == "vote":
        fused = arrays.mean(axis=0) > 0.5
    elif method == "staple":
        if len(votes) == 1 or not arrays.any():
            fused = arrays[0] > 0
        else:
            probability = sitk.STAPLE([sitk.Cast(v > 0, sitk.sitkUInt8) for v in votes], 1.0)
            fused = sitk.GetArrayViewFromImage(probability) > 0.5
    else:
        if target is None or warped_images is None:
            raise ImgSuiteError("gaussian (locally weighted) fusion needs the target and the warped atlas images")
        from scipy import ndimage as ndi

        tgt = sitk.GetArrayViewFromImage(target).astype(np.float32)
        size = [max(1, 2 * round(local_radius_mm / s) + 1) for s in reversed(target.GetSpacing())]
        weights = []
        for w in warped_images:
            diff2 = (sitk.GetArrayViewFromImage(w).astype(np.float32) - tgt) ** 2
            weights.append(np.exp(-ndi.uniform_filter(diff2, size) / (2 * gaussian_sigma**2)))
        weights = np.stack(weights) + 1e-12
        fused = (weights * arrays).sum(axis=0) / weights.sum(axis=0) > 0.5
    out = sitk.GetImageFromArray(fused.astype(np.uint8))
    out.CopyInformation(votes[0])
    return out


def segment_with_atlases(
    target: sitk.Image,
    atlases: list[Atlas],
    stages: list[dict] | None = None,
    fusion: str = "gaussian",
    gaussian_sigma: float = 50.0,
    local_radius_mm: float = 3.0,
    progress: ProgressCallback | None = None,
) -> dict[str, sitk.Image]:
    """Segment ``target`` with several atlases; returns one fused mask per structure (target grid).

    Parameters
    ----------
    target : SimpleITK.Image
        The image to segment (3D).
    atlases : list of Atlas
        Images with their structures (see :func:`read_atlas`).
    stages : list of dict, optional
        Registration stages (plastimatch command-file keys); default: centre, affine, B-spline.
    fusion, gaussian_sigma, local_radius_mm :
        See :func:`fuse_labels`.
    """
    from ..registration import register_images, warp_image

    progress = progress or no_progress
    if not atlases:
        raise ImgSuiteError("multi-atlas segmentation needs at least one atlas")
    warped_images: list[sitk.Image] = []
    warped: dict[str, list[sitk.Image]] = {}
    names = sorted({n for a in atlases for n in a.structures})
    for i, atlas in enumerate(atlases):
        step = sub_progress(progress, i / len(atlases), (i + 0.9) / len(atlases))
        result = register_images(target, atlas.image, stages or DEFAULT_STAGES, progress=step)
        warped_images.append(warp_image(atlas.image, result.transform, target, "linear", -1000))
        for name in names:
            mask = atlas.structures.get(name)
            if mask is None:  # an atlas without this structure votes "outside"
                mask = sitk.Image(atlas.image.GetSize(), sitk.sitkUInt8)
                mask.CopyInformation(atlas.image)
            # linear interpolation of the 0/1 mask then > 0.5: smoother edges than nearest neighbour
            soft = warp_image(sitk.Cast(mask, sitk.sitkFloat32), result.transform, target, "linear", 0)
            warped.setdefault(name, []).append(sitk.Cast(soft > 0.5, sitk.sitkUInt8))
        progress((i + 1) / len(atlases), f"atlas {atlas.name} registered")
    fused = {
        name: fuse_labels(votes, fusion, target, warped_images, gaussian_sigma, local_radius_mm)
        for name, votes in warped.items()
    }
    progress(1.0, "labels fused")
    return fused


def run_mabs_config(
    config: str | os.PathLike,
    target: str | None = None,
    output: str | None = None,
    output_dicom: str | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, sitk.Image]:
    """Run ``imgsuite mabs`` from a config file; writes per-structure masks (and an RTSTRUCT)."""
    from ..io import atomic_dir, read_image, write_image
    from ..registration import read_command_file

    config = Path(config)
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    try:
        if not parser.read(config):
            raise ImgSuiteError("cannot read the mabs config file", config)
    except configparser.Error as exc:
        raise ImgSuiteError(f"not a valid mabs config: {exc.message.splitlines()[0]}", config) from None
    base = config.parent

    def get(section, key, default=None):
        value = parser.get(section, key, fallback=default)
        return value.strip() if isinstance(value, str) else value

    def where(value):
        return None if value is None else (base / value if not Path(value).is_absolute() else Path(value))

    atlas_dir = where(get("TRAINING", "atlas_dir"))
    if atlas_dir is None or not atlas_dir.is_dir():
        raise ImgSuiteError("[TRAINING] atlas_dir must name a folder of atlases", atlas_dir or config)
    target_path = Path(target) if target else where(get("LABELING", "input"))
    out_dir = Path(output) if output else where(get("LABELING", "output"))
    rs_path = Path(output_dicom) if output_dicom else where(get("LABELING", "output_dicom"))
    if target_path is None or out_dir is None:
        raise ImgSuiteError("[LABELING] needs input and output (or --segment and --output)", config)
    if rs_path is not None and not target_path.is_dir():  # checked before the (long) registrations
        raise ImgSuiteError("an RTSTRUCT needs a DICOM CT folder as the target", target_path)
    method = get("FUSION", "method", "gaussian")
    if method not in FUSION_METHODS:
        raise ImgSuiteError(f"[FUSION] method {method!r}: use one of {', '.join(FUSION_METHODS)}", config)
    reg = where(get("REGISTRATION", "registration_config"))
    stages = read_command_file(reg).stages if reg else None
    folders = sorted(p for p in atlas_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ImgSuiteError("no atlas sub-folder", atlas_dir)
    atlases = [read_atlas(f) for f in folders]
    target_image = read_image(target_path)
    fused = segment_with_atlases(
        target_image,
        atlases,
        stages,
        method,
        float(get("FUSION", "gaussian_sigma", 50.0)),
        float(get("FUSION", "local_radius", 3.0)),
        sub_progress(progress, 0, 0.9),
    )
    with atomic_dir(out_dir) as tmp:
        for name, mask in fused.items():
            write_image(mask, Path(tmp) / f"{name}.nrrd")
    if rs_path is not None:
        from ..rtstruct.write import write_rtstruct_from_masks

        write_rtstruct_from_masks(rs_path, target_path, fused, series_description="SlicerImgSuite mabs")
    return fused
