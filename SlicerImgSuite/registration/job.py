"""The registration jobs as functions: what ``imgsuite register`` does, callable by the CLI, the Slicer module and the
cohort runner alike. Every output of a job is written together (all or nothing, :func:`~SlicerImgSuite.io.atomic.write_together`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import require_same_grid
from ..io import read_image, write_image
from ..io.atomic import write_together
from ..io.dicom_write import new_study, study_from_series, write_ct_series
from ..progress import ProgressCallback, no_progress, sub_progress
from .cmdfile import CommandFile, check_stages_against_image
from .engine import RegistrationResult, register_images, warp_image
from .landmarks import check_pairs, invert_points, read_landmarks, write_landmarks
from .xforms import read_transform, warn_if_partly_deformed, write_transform


def register_from_command_file(cf: CommandFile, progress: ProgressCallback | None = None) -> RegistrationResult:
    """Run a parsed plastimatch command file: read the [GLOBAL] inputs, register, write every requested output.

    Parameters
    ----------
    cf : CommandFile
        From :func:`~SlicerImgSuite.registration.cmdfile.read_command_file`; ``xform_out``, ``vf_out``,
        ``img_out``, ``warped_landmarks`` and ``logfile`` name the outputs (the last stage may name them too).
    progress : callable, optional
        ``(fraction, message)``; raising :class:`~SlicerImgSuite.progress.Cancelled` stops the job.

    Returns
    -------
    RegistrationResult
        The transform (fixed -> moving), one report per stage, the log text and the warnings.

    Raises
    ------
    ImgSuiteError
        A missing input or an impossible output request; nothing is written then, nor when any output fails.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from SlicerImgSuite.registration.cmdfile import parse_command_file
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> ball = sitk.Cast(sitk.GaussianSource(sitk.sitkFloat32, [24] * 3, [4] * 3, [12, 12, 12], 100), sitk.sitkFloat32)
    >>> sitk.WriteImage(ball, str(d / "f.mha"))
    >>> sitk.WriteImage(sitk.Resample(ball, sitk.TranslationTransform(3, (2, 0, 0))), str(d / "m.mha"))
    >>> cf = parse_command_file(f"[GLOBAL]\\nfixed={d}/f.mha\\nmoving={d}/m.mha\\nxform_out={d}/x.tfm\\n"
    ...                         "img_out=" + str(d / "w.mha") + "\\n[STAGE]\\nxform=translation\\n")
    >>> result = register_from_command_file(cf)
    >>> round(result.transform.TransformPoint((0, 0, 0))[0])
    -2
    >>> sorted(p.name for p in d.iterdir())
    ['f.mha', 'm.mha', 'w.mha', 'x.tfm']
    """
    g = cf.globals
    for key in ("fixed", "moving"):
        if not g.get(key):
            raise ImgSuiteError(f"[GLOBAL] needs {key} = IMAGE", cf.path)
    progress = progress or no_progress
    # plastimatch lets the last stage name outputs too
    outputs = dict(g)
    for s in cf.stages:
        for k in ("xform_out", "vf_out", "img_out"):
            if s.get(k):
                outputs[k] = s[k]
    fixed = _registrable(read_image(g["fixed"]), g["fixed"])
    moving = _registrable(read_image(g["moving"]), g["moving"])
    check_stages_against_image(cf, fixed)
    # read before registering, so a fixed series without usable headers fails first
    study = None
    if outputs.get("img_out") and outputs.get("img_out_fmt") == "dicom":
        study = _dicom_study(g["fixed"], fixed)
    fixed_mask = _roi(g, "fixed_roi", fixed, "the fixed image")
    moving_mask = _roi(g, "moving_roi", moving, "the moving image")
    f_lm = m_lm = None
    if g.get("fixed_landmarks") or g.get("moving_landmarks"):
        if not (g.get("fixed_landmarks") and g.get("moving_landmarks")):
            raise ImgSuiteError("fixed_landmarks and moving_landmarks go together", cf.path)
        (f_lm, f_labels), (m_lm, m_labels) = read_landmarks(g["fixed_landmarks"]), read_landmarks(g["moving_landmarks"])
        f_lm, m_lm = check_pairs(f_lm, m_lm, g["fixed_landmarks"], g["moving_landmarks"], f_labels, m_labels)
    if outputs.get("warped_landmarks") and m_lm is None:
        raise ImgSuiteError("warped_landmarks needs moving_landmarks", cf.path)
    initial = read_transform(g["xform_in"]) if g.get("xform_in") else None
    if initial is not None:  # a B-spline or field for another grid starts the registration with a seam
        warn_if_partly_deformed(initial, fixed, g["xform_in"], "the fixed image's grid")
    stages = [{k: v for k, v in s.items() if k not in ("xform_out", "vf_out", "img_out")} for s in cf.stages]
    try:
        result = register_images(
            fixed,
            moving,
            stages,
            progress=sub_progress(progress, 0.0, 0.9),
            fixed_mask=fixed_mask,
            moving_mask=moving_mask,
            initial_transform=initial,
            fixed_landmarks=f_lm,
            moving_landmarks=m_lm,
        )
    except ImgSuiteError as exc:  # a stage's problem (e.g. no overlap) names the command file
        if exc.path:
            raise
        raise ImgSuiteError(exc.problem, cf.path) from None
    result.warnings[:0] = cf.warnings  # the command file's ignored keys go to the logfile too
    progress(0.92, "writing outputs")
    _write_outputs(cf, outputs, result, fixed=fixed, moving=moving, study=study, moving_landmarks=m_lm)
    progress(1.0, "registered")
    return result


def _roi(globals_: dict, key: str, image: sitk.Image, what: str) -> sitk.Image | None:
    """The ``fixed_roi`` / ``moving_roi`` mask, checked to lie on its image's grid."""
    if not globals_.get(key):
        return None
    mask = read_image(globals_[key])
    require_same_grid(image, mask, what, globals_[key])
    return mask


def _write_outputs(cf: CommandFile, outputs: dict, result, fixed, moving, study, moving_landmarks) -> None:
    """The command file's outputs, all or nothing."""

    def warped_image(tmp):
        default = float(_stage_default(cf, cf.globals.get("default_value", 0.0)))
        warped = warp_image(moving, result.transform, fixed, "linear", default)
        if study is not None:
            write_ct_series(warped, tmp, study, series_description="warped by imgsuite register")
        else:
            write_image(warped, tmp, outputs.get("img_out_type"))

    def warped_landmarks(tmp):
        labels = read_landmarks(cf.globals["moving_landmarks"])[1]
        write_landmarks(invert_points(result.transform, moving_landmarks), tmp, labels)

    write_together(
        [
            (outputs.get("xform_out"), lambda tmp: write_transform(result.transform, tmp, fixed), False),
            (outputs.get("vf_out"), lambda tmp: write_transform(result.transform, tmp, fixed), False),
            (outputs.get("img_out"), warped_image, study is not None),
            (outputs.get("warped_landmarks"), warped_landmarks, False),
            (outputs.get("logfile"), lambda tmp: Path(tmp).write_text(result.log + "\n"), False),
        ]
    )


def _registrable(image: sitk.Image, path) -> sitk.Image:
    """Refuse an image registration cannot use: fewer than 8 voxels, or NaN/infinite voxels."""
    if np.prod(image.GetSize()) < 8:
        raise ImgSuiteError(f"{'x'.join(map(str, image.GetSize()))} voxels: too small to register", path)
    values = sitk.GetArrayViewFromImage(image)
    if values.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise ImgSuiteError(f"{bad} of {values.size} voxels are NaN or infinite; registration needs numbers", path)
    return image


def _dicom_study(fixed_path, fixed: sitk.Image) -> dict:
    """Patient, study and Frame of Reference for a warped DICOM series: the fixed series' own when the fixed
    image is a DICOM folder (the warped image lies on its grid), a new study otherwise."""
    if not Path(fixed_path).is_dir():
        return new_study()
    uid = fixed.GetMetaData("0020|000e") if fixed.HasMetaDataKey("0020|000e") else None
    return study_from_series(fixed_path, uid)


def _stage_default(cf: CommandFile, fallback: float = 0.0) -> float:
    """The fill value of the warped output: the last stage that names ``default_value`` (it writes the
    outputs, as in plastimatch), else [GLOBAL]'s, else 0."""
    for s in reversed(cf.stages):
        if "default_value" in s:
            return s["default_value"]
    return fallback
