"""plastimatch mabs's other steps: pre-alignment, atlas selection and leave-one-out training.

- **Pre-alignment** (``--pre-align``; ``--input-roi``): each atlas starts its registration translated so that
  centres of gravity coincide: of the target's ROI mask and the atlas's ``roi_structure`` when an ROI is given,
  else of the two bodies (voxels above -500 HU, or above the image mean when the image is not a CT).
- **Atlas selection** (``[ATLAS-SELECTION]``, ``--atlas-selection TARGET``): the atlases ranked by their
  similarity with the target after pre-alignment (normalised mutual information ``nmi``, or ``mse``; inside
  the target ROI when given), the best ``atlases_from_ranking`` kept.
- **Training** (``--train``): leave-one-out over the atlas set. Each atlas in turn is the target, the others
  the atlases; for every registration command file and every fusion method, the Dice of each structure, for
  each single registration and for the fused result. Written as a table.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..choices import ATLAS_SELECTION_CRITERIA
from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress, sub_progress
from .atlas import Atlas, fuse_labels, register_atlases

MI_BINS = 100  # plastimatch mabs's mi_histogram_bins default


@dataclass
class PreAlign:
    """How atlases are pre-aligned: ``target_roi`` (mask on the target grid) matched to each atlas's
    ``roi_structure``; neither: the bodies."""

    target_roi: sitk.Image | None = None
    roi_structure: str | None = None


def centre_of_gravity(image: sitk.Image, mask: sitk.Image | None = None, what: str = "image") -> np.ndarray:
    """The mm centre of the non-zero voxels of ``mask`` (or of the body of ``image``).

    Examples
    --------
    >>> m = sitk.Image([5, 5, 5], sitk.sitkUInt8); m[1, 2, 3] = 1; m[3, 2, 3] = 1
    >>> centre_of_gravity(m, m).tolist()
    [2.0, 2.0, 3.0]
    """
    if mask is not None:
        inside = sitk.GetArrayViewFromImage(mask) != 0
    else:
        values = sitk.GetArrayViewFromImage(image)
        inside = values > (-500.0 if values.min() < -500 else values.mean())
    index = np.argwhere(inside)
    if not len(index):
        raise ImgSuiteError(f"{what}: empty, no centre of gravity to pre-align")
    ref = mask if mask is not None else image
    return np.array(ref.TransformContinuousIndexToPhysicalPoint(index.mean(axis=0)[::-1].tolist()))


def prealign(target: sitk.Image, atlas: Atlas, how: PreAlign | None = None) -> sitk.TranslationTransform:
    """The translation (target point -> atlas point) that puts the centres of gravity together."""
    how = how or PreAlign()
    if how.target_roi is not None:
        if not how.roi_structure:
            raise ImgSuiteError("--input-roi needs [PREALIGNMENT] roi_structure: the atlas structure it matches")
        mask = atlas.structures.get(how.roi_structure)
        if mask is None:
            raise ImgSuiteError(
                f"atlas {atlas.name} has no structure {how.roi_structure} ([PREALIGNMENT] roi_structure)"
            )
        shift = centre_of_gravity(atlas.image, mask, f"atlas {atlas.name} {how.roi_structure}") - centre_of_gravity(
            target, how.target_roi, "--input-roi"
        )
    else:
        shift = centre_of_gravity(atlas.image, what=f"atlas {atlas.name}") - centre_of_gravity(target, what="target")
    return sitk.TranslationTransform(3, shift.tolist())


def similarity(target: sitk.Image, moved: sitk.Image, criteria: str = "nmi", roi: sitk.Image | None = None) -> float:
    """How alike two images on one grid are: normalised mutual information (higher is better; ``MI_BINS`` bins
    spanning each image's range) or
    minus the mean squared difference (``mse``), inside ``roi`` when given.

    Examples
    --------
    >>> a = sitk.GaussianSource(sitk.sitkFloat32, [16] * 3, [3] * 3, [8] * 3)
    >>> similarity(a, a, "mse"), round(similarity(a, a), 3) > round(similarity(a, a[::-1, :, :]), 3)
    (-0.0, True)
    """
    if criteria not in ATLAS_SELECTION_CRITERIA:
        raise ImgSuiteError(f"atlas_selection_criteria {criteria!r}: use one of {', '.join(ATLAS_SELECTION_CRITERIA)}")
    a = sitk.GetArrayViewFromImage(target).astype(np.float64)
    b = sitk.GetArrayViewFromImage(moved).astype(np.float64)
    if roi is not None:
        inside = sitk.GetArrayViewFromImage(roi) != 0
        a, b = a[inside], b[inside]
    a, b = a.ravel(), b.ravel()
    if criteria == "mse":
        return -float(np.mean((a - b) ** 2))
    joint, _, _ = np.histogram2d(a, b, bins=MI_BINS)
    p = joint / max(joint.sum(), 1)

    def entropy(q):
        q = q[q > 0]
        return -float((q * np.log(q)).sum())

    return (entropy(p.sum(axis=0)) + entropy(p.sum(axis=1))) / max(entropy(p), 1e-12)


def rank_atlases(
    target: sitk.Image,
    atlases: list[Atlas],
    *,
    criteria: str = "nmi",
    prealignment: PreAlign | None = None,
) -> list[tuple[Atlas, float, sitk.Transform]]:
    """Atlases with their similarity to ``target`` after pre-alignment, best first (ties: by name)."""
    from ..registration import warp_image

    ranked = []
    roi = prealignment.target_roi if prealignment else None
    for atlas in atlases:
        shift = prealign(target, atlas, prealignment) if prealignment else sitk.TranslationTransform(3)
        moved = warp_image(sitk.Cast(atlas.image, sitk.sitkFloat32), shift, target, "linear", -1000)
        ranked.append((atlas, similarity(sitk.Cast(target, sitk.sitkFloat32), moved, criteria, roi), shift))
    return sorted(ranked, key=lambda r: (-r[1], r[0].name))


def _dice(a: sitk.Image, b: sitk.Image) -> float:
    x, y = sitk.GetArrayViewFromImage(a) > 0, sitk.GetArrayViewFromImage(b) > 0
    total = int(x.sum() + y.sum())
    return 1.0 if total == 0 else 2.0 * int((x & y).sum()) / total


def train(
    atlases: list[Atlas],
    registrations: dict[str, list[dict] | None],
    fusions: list[str],
    *,
    pre_align: bool = False,
    selection: tuple[str, int] | None = None,
    gaussian_sigma: float = 50.0,
    local_radius_mm: float = 3.0,
    progress: ProgressCallback | None = None,
) -> list[dict]:
    """Leave-one-out training: one row per (target atlas, registration, fusion or single atlas, structure).

    ``registrations`` maps a name (the command file) to its stages; ``selection`` = ``(criteria, k)`` keeps the
    ``k`` most similar of the other atlases for each target. Rows: ``target``, ``registration``, ``fusion``
    (a method, or ``registration`` for one atlas alone), ``atlas`` (that atlas, or the atlases fused),
    ``structure``, ``dice``.
    """
    progress = progress or no_progress
    if len(atlases) < 2:
        raise ImgSuiteError("--train needs at least two atlases (each is left out in turn)")
    rows, steps = [], len(atlases) * len(registrations)
    for t, held_out in enumerate(atlases):
        others = [a for a in atlases if a is not held_out]
        shifts = [prealign(held_out.image, a) for a in others] if pre_align else None
        if selection:
            how = PreAlign() if pre_align else None
            ranked = rank_atlases(held_out.image, others, criteria=selection[0], prealignment=how)[: selection[1]]
            others = [a for a, _, _ in ranked]
            shifts = [s for _, _, s in ranked] if pre_align else None
        for r, (reg_name, stages) in enumerate(registrations.items()):
            n = t * len(registrations) + r
            images, warped = register_atlases(
                held_out.image, others, stages, shifts, sub_progress(progress, n / steps, (n + 1) / steps)
            )
            for name, votes in warped.items():
                truth = held_out.structures.get(name)
                if truth is None:
                    continue
                base = {"target": held_out.name, "registration": reg_name, "structure": name}
                for atlas, vote in zip(others, votes):
                    rows.append(base | {"fusion": "registration", "atlas": atlas.name, "dice": _dice(vote, truth)})
                for method in fusions:
                    fused = fuse_labels(votes, method, held_out.image, images, gaussian_sigma, local_radius_mm)
                    used = "+".join(a.name for a in others)
                    rows.append(base | {"fusion": method, "atlas": used, "dice": _dice(fused, truth)})
    progress(1.0, "training done")
    return rows


def train_summary(rows: list[dict]) -> list[dict]:
    """Mean and minimum Dice over the left-out targets, per registration, fusion and structure."""
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault((row["registration"], row["fusion"], row["structure"]), []).append(row["dice"])
    return [
        {"registration": r, "fusion": f, "structure": s, "mean_dice": float(np.mean(v)), "min_dice": float(min(v)),
         "count": len(v)}
        for (r, f, s), v in sorted(groups.items())
    ]  # fmt: skip


def table_text(rows: list[dict]) -> str:
    """Rows as CSV text (the columns of the first row).

    Examples
    --------
    >>> table_text([{"a": 1, "b": 0.5}])
    'a,b\\r\\n1,0.5\\r\\n'
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def train_from_config(
    config, *, pre_align: bool = False, output=None, progress: ProgressCallback | None = None
) -> list[dict]:
    """``imgsuite mabs --train``: :func:`train` with the config's settings; writes ``mabs-train.csv`` (every
    row) and ``mabs-train-summary.csv`` (:func:`train_summary`) together into ``output`` (default: the
    config's ``[TRAINING] training_dir``); returns the summary.

    Parameters
    ----------
    config : path
        The mabs config: ``[TRAINING] atlas_dir`` (at least two atlases), one or more ``registration_config``
        files and fusion methods to compare.
    pre_align : bool
        Start each registration from the centres of gravity put together.
    output : path, optional
        The folder of the two tables; ``[TRAINING] training_dir`` otherwise.
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    list of dict
        :func:`train_summary`'s rows: mean and minimum Dice per registration, fusion and structure.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import SimpleITK as sitk
    >>> d = Path(tempfile.mkdtemp())
    >>> def box(shift):  # air with a water box, moved ``shift`` voxels along y
    ...     a = np.full((8, 16, 16), -1000, np.int16); a[2:6, 4 + shift:10 + shift, 4:10] = 0
    ...     return sitk.GetImageFromArray(a)
    >>> for s in (0, 1, 2):
    ...     (d / "atlases" / f"a{s}" / "structures").mkdir(parents=True)
    ...     sitk.WriteImage(box(s), str(d / "atlases" / f"a{s}" / "img.nrrd"))
    ...     sitk.WriteImage(box(s) > -500, str(d / "atlases" / f"a{s}" / "structures" / "BOX.nrrd"))
    >>> _ = (d / "reg.txt").write_text("[GLOBAL]\\n[STAGE]\\nxform=translation\\nres=1 1 1\\nmax_its=30\\n")
    >>> _ = (d / "mabs.cfg").write_text("[TRAINING]\\natlas_dir = atlases\\ntraining_dir = train\\n"
    ...                                 "[REGISTRATION]\\nregistration_config = reg.txt\\n[FUSION]\\nmethod = vote\\n")
    >>> summary = train_from_config(d / "mabs.cfg")
    >>> [(r["fusion"], r["structure"], round(r["mean_dice"], 3)) for r in summary]
    [('registration', 'BOX', 1.0), ('vote', 'BOX', 1.0)]
    >>> sorted(p.name for p in (d / "train").iterdir())
    ['mabs-train-summary.csv', 'mabs-train.csv']
    """
    from pathlib import Path

    from ..io import atomic_dir
    from .atlas import read_mabs_config

    cfg = read_mabs_config(config)
    folder = Path(output) if output else cfg.training_dir
    if folder is None:
        raise ImgSuiteError("--train needs --output or [TRAINING] training_dir for its tables", cfg.path)
    selection = (cfg.selection[0], cfg.selection[1] or None) if cfg.selection else None
    rows = train(
        cfg.atlases(), cfg.registrations, cfg.fusions, pre_align=pre_align or cfg.pre_align, selection=selection,
        gaussian_sigma=cfg.gaussian_sigma, local_radius_mm=cfg.local_radius, progress=progress,
    )  # fmt: skip
    summary = train_summary(rows)
    with atomic_dir(folder) as tmp:
        (Path(tmp) / "mabs-train.csv").write_text(table_text(rows))
        (Path(tmp) / "mabs-train-summary.csv").write_text(table_text(summary))
    return summary


def atlas_selection_from_config(config, target, *, pre_align: bool = False, input_roi=None) -> list[dict]:
    """``imgsuite mabs --atlas-selection TARGET``: the ranking (rank, atlas, criteria, similarity, selected)."""
    from ..io import read_image
    from .atlas import _read_roi, read_mabs_config

    cfg = read_mabs_config(config)
    image = read_image(target)
    criteria, k = cfg.selection or ("nmi", None)
    how = PreAlign(_read_roi(input_roi, image), cfg.roi_structure)
    aligned = pre_align or cfg.pre_align or input_roi is not None
    ranked = rank_atlases(image, cfg.atlases(), criteria=criteria, prealignment=how if aligned else None)
    return [
        {"rank": n + 1, "atlas": a.name, "criteria": criteria, "similarity": round(score, 6),
         "selected": k is None or n < k}
        for n, (a, score, _) in enumerate(ranked)
    ]  # fmt: skip
