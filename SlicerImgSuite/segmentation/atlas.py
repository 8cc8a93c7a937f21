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
    [PREALIGNMENT]                 # pre-alignment, atlas selection and training: see .mabs
    [ATLAS-SELECTION]
"""

from __future__ import annotations

import configparser
import os
import warnings
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


# The config keys read here, per section. plastimatch mabs's other keys are accepted with a warning (their
# settings are not available here); anything else is refused: a typo (gausian_sigma, a [fusion] section) fell
# back to the default, unsaid, where plastimatch stops at an unknown key.
MABS_KEYS = {
    "TRAINING": {"atlas_dir", "training_dir", "fusion_criteria"},
    "REGISTRATION": {"registration_config"},
    "LABELING": {"input", "output", "output_dicom"},
    "FUSION": {"method", "gaussian_sigma", "local_radius"},
    "PREALIGNMENT": {"mode", "roi_structure"},
    "ATLAS-SELECTION": {"enable_atlas_selection", "atlas_selection_criteria", "atlases_from_ranking"},
}
PLASTIMATCH_ONLY_KEYS = {
    "PREALIGNMENT": {"reference", "spacing", "registration_config"},
    "ATLAS-SELECTION": {
        "similarity_percent_threshold", "mi_histogram_bins", "percentage_nmi_random_sample", "roi_mask_fn",
        "roi_mask", "selection_reg_parms", "lower_mi_value_subject", "upper_mi_value_subject",
        "lower_mi_value_atlas", "upper_mi_value_atlas", "min_random_atlases", "max_random_atlases",
        "precomputed_ranking",
    },
    "TRAINING": {
        "distance_map_algorithm", "minimum_similarity", "rho_values", "sigma_values", "threshold_values",
        "confidence_weight", "write_distance_map_files", "write_thresholded_files", "write_weight_files",
        "write_warped_images", "write_warped_structures",
    },
    "OPTIMIZATION_RESULT": {
        "registration", "gaussian_weighting_voting_rho", "gaussian_weighting_voting_sigma",
        "gaussian_weighting_voting_minsim", "optimization_result_confidence_weight",
        "gaussian_weighting_voting_thresh",
    },
    "STRUCTURES": None,  # any key: the structures to keep (every atlas structure is segmented here)
    "PREALIGN": None,  # plastimatch's other name of [PREALIGNMENT]
}  # fmt: skip


def _check_mabs_keys(parser: configparser.ConfigParser, config: Path) -> None:
    """Refuse unknown sections and keys; warn about plastimatch's keys that nothing here reads."""
    for section in parser.sections():
        ours, theirs = MABS_KEYS.get(section, set()), PLASTIMATCH_ONLY_KEYS.get(section, set())
        if section not in MABS_KEYS and section not in PLASTIMATCH_ONLY_KEYS:
            known = ", ".join(f"[{s}]" for s in [*MABS_KEYS, *PLASTIMATCH_ONLY_KEYS])
            raise ImgSuiteError(f"unknown section [{section}] (known: {known})", config)
        for key in parser[section]:
            if key in ours:
                if parser[section][key] is None:
                    raise ImgSuiteError(f"[{section}] {key} has no value (write {key} = ...)", config)
                continue
            if theirs is None or key in theirs:
                warnings.warn(f"{config}: [{section}] {key} is a plastimatch mabs setting not available here; "
                              "ignored", stacklevel=4)  # fmt: skip
                continue
            raise ImgSuiteError(f"[{section}] unknown key {key!r} (known: {', '.join(sorted(ours))})", config)


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


MAX_LOCAL_RADIUS_MM = 500.0  # wider than any body; a radius of 1e9 mm once took the memory of the machine


def check_gaussian_fusion(gaussian_sigma: float, local_radius_mm: float, where=None) -> None:
    """Refuse settings of locally weighted voting that give no weights or no window."""
    if not np.isfinite(gaussian_sigma) or gaussian_sigma <= 0:
        raise ImgSuiteError(f"gaussian_sigma {gaussian_sigma} must be a positive number of HU", where)
    if not np.isfinite(local_radius_mm) or not 0 <= local_radius_mm <= MAX_LOCAL_RADIUS_MM:
        raise ImgSuiteError(f"local_radius {local_radius_mm} must be 0 to {MAX_LOCAL_RADIUS_MM:g} mm", where)


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
    check_gaussian_fusion(gaussian_sigma, local_radius_mm)
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
    *,
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
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    dict name -> SimpleITK.Image
        One fused 0/1 mask (uint8) per structure of any atlas, on the target's grid.

    Examples
    --------
    >>> def box(shift):  # air with a water box, moved ``shift`` voxels along y
    ...     a = np.full((8, 16, 16), -1000, np.int16); a[2:6, 4 + shift:10 + shift, 4:10] = 0
    ...     return sitk.GetImageFromArray(a)
    >>> atlases = [Atlas(f"a{s}", box(s), {"BOX": box(s) > -500}) for s in (1, 2)]
    >>> stages = [{"xform": "translation", "res": [1, 1, 1], "max_its": 30}]
    >>> fused = segment_with_atlases(box(0), atlases, stages=stages, fusion="vote")
    >>> bool(np.array_equal(sitk.GetArrayFromImage(fused["BOX"]), sitk.GetArrayFromImage(box(0)) > -500))
    True
    """
    progress = progress or no_progress
    warped_images, warped = register_atlases(target, atlases, stages, progress=sub_progress(progress, 0, 0.95))
    fused = {
        name: fuse_labels(votes, fusion, target, warped_images, gaussian_sigma, local_radius_mm)
        for name, votes in warped.items()
    }
    progress(1.0, "labels fused")
    return fused


def register_atlases(
    target: sitk.Image,
    atlases: list[Atlas],
    stages: list[dict] | None = None,
    initial_transforms: list[sitk.Transform | None] | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[list[sitk.Image], dict[str, list[sitk.Image]]]:
    """Register each atlas to ``target`` (starting from ``initial_transforms``, e.g. a pre-alignment) and
    warp it: the warped atlas images and, per structure, each atlas's warped mask (target grid)."""
    from ..registration import register_images, warp_image

    progress = progress or no_progress
    if not atlases:
        raise ImgSuiteError("multi-atlas segmentation needs at least one atlas")
    warped_images: list[sitk.Image] = []
    warped: dict[str, list[sitk.Image]] = {}
    names = sorted({n for a in atlases for n in a.structures})
    for i, atlas in enumerate(atlases):
        step = sub_progress(progress, i / len(atlases), (i + 0.9) / len(atlases))
        start = initial_transforms[i] if initial_transforms else None
        result = register_images(target, atlas.image, stages or DEFAULT_STAGES, progress=step, initial_transform=start)
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
    return warped_images, warped


def _registration_stages(cf) -> list[dict]:
    """A mabs registration file's stages; its [GLOBAL] keys (fixed_roi, default_value, outputs ...) are not
    used (each atlas and the target are the images), which was unsaid."""
    if cf.globals:
        warnings.warn(f"{cf.path}: [GLOBAL] {', '.join(sorted(cf.globals))} ignored: mabs registers each atlas "
                      "to the target and uses only the [STAGE] sections", stacklevel=4)  # fmt: skip
    return cf.stages


@dataclass
class MabsConfig:
    """A mabs config file read (see the module docstring; relative paths are from the file's folder)."""

    path: Path
    atlas_dir: Path
    target: Path | None
    output: Path | None
    output_dicom: Path | None
    registrations: dict  # command file name -> stages (None: the default stages)
    fusions: list
    gaussian_sigma: float
    local_radius: float
    pre_align: bool
    roi_structure: str | None
    selection: tuple | None  # (criteria, k) when atlas selection is enabled
    training_dir: Path | None

    def atlases(self) -> list[Atlas]:
        folders = sorted(p for p in self.atlas_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not folders:
            raise ImgSuiteError("no atlas sub-folder", self.atlas_dir)
        return [read_atlas(f) for f in folders]


def read_mabs_config(config: str | os.PathLike) -> MabsConfig:
    """Read and check a mabs config file; several ``registration_config`` files or fusion ``method`` values
    (comma separated) are the settings ``--train`` compares; a segmentation uses the first of each."""
    from ..choices import ATLAS_SELECTION_CRITERIA
    from ..registration import read_command_file

    config = Path(config)
    # plastimatch's [STRUCTURES] lists names without '= value'
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), allow_no_value=True)
    try:
        if not parser.read(config, encoding="utf-8-sig"):
            raise ImgSuiteError("cannot read the mabs config file", config)
    except configparser.Error as exc:
        raise ImgSuiteError(f"not a valid mabs config: {exc.message.splitlines()[0]}", config) from None
    except UnicodeDecodeError as exc:  # e.g. UTF-16 from PowerShell's '>': was a traceback
        raise ImgSuiteError(f"not a UTF-8 text file ({exc.reason} at byte {exc.start})", config) from None
    _check_mabs_keys(parser, config)

    def get(section, key, default=None):
        value = parser.get(section, key, fallback=default)
        return value.strip() if isinstance(value, str) else value

    def where(value):
        return None if value is None else (config.parent / value if not Path(value).is_absolute() else Path(value))

    def listed(section, key, default):
        return [w.strip() for w in (get(section, key) or default).split(",") if w.strip()]

    def number(section, key, default):
        try:
            return float(get(section, key) or default)
        except ValueError:
            raise ImgSuiteError(f"[{section}] {key} = {get(section, key)!r} is not a number", config) from None

    def switch(section, key):
        value = (get(section, key) or "false").lower()
        if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ImgSuiteError(f"[{section}] {key} = {value!r}: use true or false", config)
        return value in ("1", "true", "yes", "on")

    atlas_dir = where(get("TRAINING", "atlas_dir"))
    if atlas_dir is None or not atlas_dir.is_dir():
        raise ImgSuiteError("[TRAINING] atlas_dir must name a folder of atlases", atlas_dir or config)
    fusions = listed("FUSION", "method", get("TRAINING", "fusion_criteria") or "gaussian")  # plastimatch's key
    for method in fusions:
        if method not in FUSION_METHODS:
            raise ImgSuiteError(f"[FUSION] method {method!r}: use one of {', '.join(FUSION_METHODS)}", config)
    files = listed("REGISTRATION", "registration_config", "")
    registrations = {f: _registration_stages(read_command_file(where(f))) for f in files} or {"default": None}
    mode = (get("PREALIGNMENT", "mode") or "none").lower()
    if mode not in ("none", "disabled", "cog"):
        raise ImgSuiteError(f"[PREALIGNMENT] mode {mode!r}: use cog (centres of gravity) or none", config)
    sigma, radius = number("FUSION", "gaussian_sigma", 50.0), number("FUSION", "local_radius", 3.0)
    check_gaussian_fusion(sigma, radius, config)
    selection = None
    if switch("ATLAS-SELECTION", "enable_atlas_selection"):
        criteria = (get("ATLAS-SELECTION", "atlas_selection_criteria") or "nmi").lower()
        if criteria not in ATLAS_SELECTION_CRITERIA:
            raise ImgSuiteError(f"[ATLAS-SELECTION] atlas_selection_criteria {criteria!r}: use nmi or mse", config)
        try:
            k = int(get("ATLAS-SELECTION", "atlases_from_ranking") or 0) or None
        except ValueError:
            k = -1
        if k is not None and k < 1:
            raise ImgSuiteError("[ATLAS-SELECTION] atlases_from_ranking must be a whole number >= 1 (0 or none: "
                                "every atlas)", config)
        selection = (criteria, k)
    return MabsConfig(
        path=config, atlas_dir=atlas_dir, target=where(get("LABELING", "input")),
        output=where(get("LABELING", "output")), output_dicom=where(get("LABELING", "output_dicom")),
        registrations=registrations, fusions=fusions, gaussian_sigma=sigma,
        local_radius=radius, pre_align=mode == "cog",
        roi_structure=get("PREALIGNMENT", "roi_structure"), selection=selection,
        training_dir=where(get("TRAINING", "training_dir")),
    )  # fmt: skip


def run_mabs_config(
    config: str | os.PathLike,
    *,
    target: str | None = None,
    output: str | None = None,
    output_dicom: str | None = None,
    progress: ProgressCallback | None = None,
    pre_align: bool = False,
    input_roi: str | None = None,
) -> dict[str, sitk.Image]:
    """Run ``imgsuite mabs`` from a config file; writes per-structure masks (and an RTSTRUCT).

    ``pre_align`` (or ``[PREALIGNMENT] mode = cog``) starts each registration from the centres of gravity put
    together (of ``input_roi`` and the atlases' ``roi_structure`` when given); with ``[ATLAS-SELECTION]``
    enabled only the most similar atlases are used (see :mod:`.mabs`).

    Parameters
    ----------
    config : path
        The plastimatch mabs config (``[TRAINING] atlas_dir``, ``[REGISTRATION] registration_config``,
        ``[LABELING]``, ``[FUSION]`` ...).
    target, output, output_dicom : path, optional
        The image to segment, the folder of masks and the RTSTRUCT file; the config's ``[LABELING]`` values
        otherwise.
    progress : callable, optional
        ``(fraction, message)``.
    pre_align : bool
        Start each registration from the centres of gravity put together.
    input_roi : path, optional
        A mask on the target's grid whose centre of gravity the pre-alignment uses.

    Returns
    -------
    dict name -> SimpleITK.Image
        The fused masks, also written as ``output/<name>.nrrd``.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> def box(shift):  # air with a water box, moved ``shift`` voxels along y
    ...     a = np.full((8, 16, 16), -1000, np.int16); a[2:6, 4 + shift:10 + shift, 4:10] = 0
    ...     return sitk.GetImageFromArray(a)
    >>> for s in (1, 2):
    ...     (d / "atlases" / f"a{s}" / "structures").mkdir(parents=True)
    ...     sitk.WriteImage(box(s), str(d / "atlases" / f"a{s}" / "img.nrrd"))
    ...     sitk.WriteImage(box(s) > -500, str(d / "atlases" / f"a{s}" / "structures" / "BOX.nrrd"))
    >>> sitk.WriteImage(box(0), str(d / "target.nrrd"))
    >>> _ = (d / "reg.txt").write_text("[GLOBAL]\\n[STAGE]\\nxform=translation\\nres=1 1 1\\nmax_its=30\\n")
    >>> _ = (d / "mabs.cfg").write_text("[TRAINING]\\natlas_dir = atlases\\n[REGISTRATION]\\nregistration_config = "
    ...                                 "reg.txt\\n[LABELING]\\ninput = target.nrrd\\noutput = out\\n[FUSION]\\nmethod = vote\\n")
    >>> fused = run_mabs_config(d / "mabs.cfg")
    >>> sorted(p.name for p in (d / "out").iterdir()), int(sitk.GetArrayFromImage(fused["BOX"]).sum())
    (['BOX.nrrd'], 144)
    """
    from ..io import atomic_dir, read_image, write_image
    from .mabs import PreAlign, prealign, rank_atlases

    cfg = read_mabs_config(config)
    target_path = Path(target) if target else cfg.target
    out_dir = Path(output) if output else cfg.output
    rs_path = Path(output_dicom) if output_dicom else cfg.output_dicom
    if target_path is None or out_dir is None:
        raise ImgSuiteError("[LABELING] needs input and output (or --segment and --output)", cfg.path)
    if rs_path is not None and not target_path.is_dir():  # checked before the (long) registrations
        raise ImgSuiteError("an RTSTRUCT needs a DICOM CT folder as the target", target_path)
    atlases = cfg.atlases()
    target_image = read_image(target_path)
    how = PreAlign(_read_roi(input_roi, target_image), cfg.roi_structure)
    pre_align = pre_align or cfg.pre_align or input_roi is not None
    shifts = [prealign(target_image, a, how) for a in atlases] if pre_align else None
    if cfg.selection:
        ranked = rank_atlases(target_image, atlases, criteria=cfg.selection[0], prealignment=how if pre_align else None)
        ranked = ranked[: cfg.selection[1]]
        atlases, shifts = [a for a, _, _ in ranked], ([t for _, _, t in ranked] if pre_align else None)
    images, warped = register_atlases(
        target_image, atlases, next(iter(cfg.registrations.values())), shifts, sub_progress(progress, 0, 0.9)
    )
    fused = {
        name: fuse_labels(votes, cfg.fusions[0], target_image, images, cfg.gaussian_sigma, cfg.local_radius)
        for name, votes in warped.items()
    }
    with atomic_dir(out_dir) as tmp:
        for name, mask in fused.items():
            write_image(mask, Path(tmp) / f"{name}.nrrd")
    if rs_path is not None:
        from ..rtstruct.write import write_rtstruct_from_masks

        write_rtstruct_from_masks(rs_path, target_path, fused, series_description="SlicerImgSuite mabs")
    return fused


def _read_roi(path: str | None, target: sitk.Image) -> sitk.Image | None:
    """``--input-roi``: a mask on the target's grid."""
    if path is None:
        return None
    from ..io import read_image

    roi = read_image(path)
    require_same_grid(roi, target, str(path), "the target")
    return roi
