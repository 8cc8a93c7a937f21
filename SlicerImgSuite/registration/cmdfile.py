"""plastimatch registration command files: ``[GLOBAL]`` then ``[STAGE]`` sections of ``key = value`` lines.

Stage keys found in ``[GLOBAL]`` are defaults for every stage, and a ``[STAGE]`` starts as a copy of the one
before it (as in plastimatch). Unknown keys and bad values are errors that name the file and the line. Keys
plastimatch files carry that no engine here reads are accepted with a warning naming the line
(``CommandFile.warnings``, and the log).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ImgSuiteError
from ..io.images import OUTPUT_TYPES

log = logging.getLogger("SlicerImgSuite.registration")

GLOBAL_KEYS = {
    "fixed", "moving", "fixed_roi", "moving_roi", "fixed_mask", "moving_mask", "fixed_landmarks",
    "moving_landmarks", "xform_in", "xform_out", "vf_out", "img_out", "img_out_fmt", "img_out_type",
    "warped_landmarks", "default_value", "background_val", "logfile", "resample_when_linear",
}  # fmt: skip
# GLOBAL spellings plastimatch also accepts (background_val is its other name of default_value, the fill value)
GLOBAL_ALIASES = {"fixed_mask": "fixed_roi", "moving_mask": "moving_roi", "background_val": "default_value"}

XFORMS = {
    "translation": "translation",
    "rigid": "rigid",
    "versor": "rigid",
    "quaternion": "rigid",
    "affine": "affine",
    "bspline": "bspline",
    "vf": "vf",
    "demons": "vf",
    "align_center": "align_center",
    "align_center_of_gravity": "align_center_of_gravity",
}
METRICS = {"mse": "mse", "ms": "mse", "mi": "mi", "mattes": "mi", "mi_mattes": "mi", "nmi": "nmi", "gm": "gm",
           "ncc": "ncc"}  # fmt: skip
OPTIMIZERS = {"rsg", "versor", "amoeba", "lbfgs", "lbfgsb", "liblbfgs", "steepest", "demons", "frpr", "quat",
              "oneplusone", "nocedal", "gd"}  # fmt: skip
IMPLS = {"itk", "plastimatch", "imgsuite"}


def _xform(v):
    return _choice(v, XFORMS)


def _metric(v):
    metric = _choice(v, METRICS)
    if metric == "gm":
        raise ValueError("gm (gradient magnitude) is not available here; use mse, mi, nmi or ncc")
    return metric


def _choice(v, table):
    key = v.strip().lower()
    if key not in table:
        raise ValueError(f"expected one of {', '.join(sorted(table))}")
    return table[key]


def _one_of(names):
    """A parser that accepts one of ``names`` (case-insensitive) and returns it lower case."""
    table = {n: n for n in names}
    return lambda v: _choice(v, table)


_optim, _impl, _output_type = _one_of(OPTIMIZERS), _one_of(IMPLS), _one_of(OUTPUT_TYPES)


def _words(v):
    return v.replace(",", " ").split()


MAX_COUNT = 1_000_000  # iterations, histogram bins, subsampling: beyond it a value is a typo, not a request
MAX_MAGNITUDE = 1e30  # beyond it a value is damage and overflows float32 arithmetic


def _finite(v) -> float:
    """A finite number of sane size (``nan``, ``inf``, 1e99 reach the optimiser as silent garbage)."""
    x = float(v)
    if not (math.isfinite(x) and abs(x) <= MAX_MAGNITUDE):
        raise ValueError(f"expected a finite number within +-{MAX_MAGNITUDE:g}")
    return x


def _floats(n):
    def parse(v):
        vals = [_finite(w) for w in _words(v)]
        if len(vals) == 1:
            vals = vals * n
        if len(vals) != n:
            raise ValueError(f"expected 1 or {n} numbers")
        return vals

    return parse


def _positive_floats(v):
    vals = _floats(3)(v)
    if any(x <= 0 for x in vals):
        raise ValueError("expected positive numbers")
    return vals


def _res(v):
    # plastimatch resamples by any rate ("res = 1.5" is 1.5 voxels); the bin shrink here takes whole ones only,
    # and rounding would change the stage's sampling silently
    raw = [_finite(w) for w in _words(v)]
    if any(x != int(x) for x in raw):
        raise ValueError("expected whole voxels (a subsampling rate such as 1.5 is not supported: round it)")
    vals = [int(x) for x in raw]
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3 or any(x < 1 or x > MAX_COUNT for x in vals):
        raise ValueError(f"expected 1 or 3 integers from 1 to {MAX_COUNT}")
    return vals


def _int_pos(v):
    x = _finite(v)
    if x < 1 or x > MAX_COUNT:
        raise ValueError(f"expected an integer from 1 to {MAX_COUNT}")
    return int(x)


def _float_nonneg(v):
    x = _finite(v)
    if x < 0:
        raise ValueError("expected a number >= 0")
    return x


def _text(v):
    return v.strip()


def _lower(v):
    return v.strip().lower()


STAGE_KEYS = {
    "xform": _xform,
    "optim": _optim,
    "impl": _impl,
    "metric": _metric,
    "max_its": _int_pos,
    "min_its": _int_pos,
    "convergence_tol": _float_nonneg,
    "grad_tol": _float_nonneg,
    "res": _res,
    "ss": _res,
    "grid_spac": _positive_floats,
    "regularization_lambda": _float_nonneg,
    "landmark_penalty": _float_nonneg,
    "background_val": _finite,
    "demons_std": _float_nonneg,
    "max_step": _float_nonneg,
    "min_step": _float_nonneg,
    "mi_histogram_bins": _int_pos,
    "num_hist_bins": _int_pos,
    "threading": _text,
    "sampling": _float_nonneg,  # fraction of voxels sampled by ITK metrics (imgsuite extension)
    "translation_scale": _float_nonneg,
    "default_value": _finite,
    # plastimatch writes these per stage too; here only in the last stage (the final result)
    "xform_out": _text,
    "vf_out": _text,
    "img_out": _text,
}
STAGE_OUTPUTS = ("xform_out", "vf_out", "img_out")
# plastimatch reads background_val as default_value (the fill of the warped image), in [GLOBAL] and [STAGE]; it
# was a metric threshold here, so "background_val = -1000" filled the uncovered part of img_out with 0 HU
STAGE_ALIASES = {"ss": "res", "num_hist_bins": "mi_histogram_bins", "background_val": "default_value"}
IMG_OUT_FORMATS = {"dicom", "itk"}
# plastimatch format names of image files: accepted with a warning (img_out's suffix picks the format)
IMAGE_FILE_FORMATS = {"nifti", "nii", "nrrd", "mha", "mhd", "metaimage", "analyze", "gipl", "vtk", "raw"}


def _img_out_fmt(v):
    fmt = _lower(v)
    if fmt not in IMG_OUT_FORMATS | IMAGE_FILE_FORMATS:
        raise ValueError(
            f"not a format imgsuite writes (dicom, itk, or an image file format: {', '.join(sorted(IMAGE_FILE_FORMATS))})"
        )
    return fmt


GLOBAL_PARSERS = {"default_value": _finite, "img_out_type": _output_type, "img_out_fmt": _img_out_fmt}

# Engines (see engine_of) that read a stage key; keys not listed are read wherever they apply.
# An empty tuple: accepted because plastimatch files carry it, but nothing here reads it.
USED_BY = {
    "optim": (),  # each engine has its own optimiser
    "min_its": (),
    "threading": (),  # SimpleITK and BLAS pick their own threads
    "translation_scale": (),  # linear stages scale parameters by physical shift
    "regularization_lambda": ("bspline",),
    "landmark_penalty": ("bspline",),
    "grid_spac": ("bspline", "itk_bspline"),
    "convergence_tol": ("bspline", "itk_bspline"),
    "grad_tol": ("linear", "bspline"),
    "max_step": ("linear",),
    "min_step": ("linear",),
    "sampling": ("linear", "itk_bspline"),
    "demons_std": ("demons",),
}
ENGINE_NAMES = {
    "linear": "translation/rigid/affine stages",
    "align": "align_center stages",
    "bspline": "B-spline stages with metric=mse",
    "itk_bspline": "ITK B-spline stages (impl=itk or metric other than mse)",
    "demons": "vf/demons stages",
}
IGNORED_GLOBALS = {"resample_when_linear": "linear transforms are always kept exact, never resampled"}


def engine_of(stage: dict) -> str:
    """Which engine runs a stage: ``linear``, ``align``, ``bspline`` (the fast MSE engine), ``itk_bspline``
    or ``demons``."""
    xform = stage.get("xform", "rigid")
    if xform in ("align_center", "align_center_of_gravity"):
        return "align"
    if xform == "vf":
        return "demons"
    if xform == "bspline":
        fast = stage.get("metric", "mse") == "mse" and stage.get("impl", "plastimatch") != "itk"
        return "bspline" if fast else "itk_bspline"
    return "linear"


@dataclass
class CommandFile:
    """A parsed command file: ``globals`` (file roles, outputs) and one dict per ``[STAGE]``."""

    globals: dict = field(default_factory=dict)
    stages: list[dict] = field(default_factory=list)
    path: str | None = None
    warnings: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Write back in plastimatch's format."""
        return format_command_file(self.globals, self.stages)


def parse_command_file(text: str, path: str | os.PathLike | None = None) -> CommandFile:
    """Parse plastimatch command-file text.

    Parameters
    ----------
    text : str
        The command file's text: a ``[GLOBAL]`` section and one ``[STAGE]`` section per stage.
    path : path, optional
        Where the text came from, named in errors.

    Returns
    -------
    CommandFile
        ``globals`` and ``stages`` (each a dict of typed values).

    Examples
    --------
    >>> cf = parse_command_file("[GLOBAL]\\nfixed=f.mha\\nmoving=m.mha\\n[STAGE]\\nxform=rigid\\nres=4 4 2\\n")
    >>> cf.globals["fixed"], cf.stages[0]["xform"], cf.stages[0]["res"]
    ('f.mha', 'rigid', [4, 4, 2])
    """
    where = os.fspath(path) if path is not None else "command file"
    section, seen_global = None, False
    glob: dict = {}
    stage_defaults: dict = {}
    stages: list[dict] = []
    # line of each key as written, for warnings: [GLOBAL] (file and stage-default keys), then one per stage
    lines: list[dict] = [{}]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]") or line.count("[") != 1 or line.count("]") != 1:
                raise ImgSuiteError(f"line {number}: a section header is [GLOBAL] or [STAGE], got {line!r}", where)
            name = line.strip("[]").strip().upper()
            if name == "GLOBAL":
                if stages or section == "GLOBAL" or seen_global:
                    raise ImgSuiteError(f"line {number}: [GLOBAL] must come first and only once", where)
                section, seen_global = "GLOBAL", True
            elif name == "COMMENT":  # plastimatch's section for notes: its lines are skipped
                section = "COMMENT"
            elif name == "STAGE":
                section = "STAGE"
                stages.append({"_line": number})
                lines.append({})
            else:
                raise ImgSuiteError(f"line {number}: unknown section [{name}] (use [GLOBAL], [STAGE], [COMMENT])", where)
            continue
        if section == "COMMENT":
            continue
        if "=" not in line:
            raise ImgSuiteError(f"line {number}: expected 'key = value', got {line!r}", where)
        if section is None:
            raise ImgSuiteError(f"line {number}: 'key = value' before the first [GLOBAL] or [STAGE]", where)
        key, value = (s.strip() for s in line.split("=", 1))
        key = key.lower()
        if section == "GLOBAL" and key in GLOBAL_KEYS:
            key = GLOBAL_ALIASES.get(key, key)
            glob[key] = _parse(GLOBAL_PARSERS.get(key, _text), value, key, number, where)
        elif key in STAGE_KEYS:
            parsed = _parse(STAGE_KEYS[key], value, key, number, where)
            target = stage_defaults if section == "GLOBAL" else stages[-1]
            target[STAGE_ALIASES.get(key, key)] = parsed
        else:
            known = GLOBAL_KEYS | set(STAGE_KEYS) if section == "GLOBAL" else set(STAGE_KEYS)
            raise ImgSuiteError(
                f"line {number}: unknown key {key!r} in [{section}] (known: {', '.join(sorted(known))})", where
            )
        lines[-1][key] = number
    if not stages:
        raise ImgSuiteError("no [STAGE] section", where)
    for stage in stages:
        if len(stage) == 1 and not stage_defaults:  # only its "_line": refused by check_stages_against_image
            stage["_empty"] = True
    merged = []
    for stage in stages:
        s = dict(stage_defaults)
        # plastimatch starts a stage as a copy of the one before: a second B-spline stage that leaves out
        # metric = mi, max_its or regularization_lambda keeps them, not our defaults (output files are refused
        # in all but the last stage, see _refuse_stage_outputs)
        if merged:
            s.update({k: v for k, v in merged[-1].items() if not k.startswith("_")})
        s.update(stage)
        s.setdefault("xform", "rigid")
        merged.append(s)
    _refuse_stage_outputs(glob, merged, lines, where)
    warnings = _global_warnings(glob, lines[0]) + _stage_warnings(merged, lines)
    for w in warnings:
        log.warning(f"{where}: {w}")
    return CommandFile(glob, merged, where, warnings)


def _refuse_stage_outputs(glob: dict, stages: list[dict], lines: list[dict], where) -> None:
    """plastimatch writes a stage's ``xform_out``/``vf_out``/``img_out`` after that stage, and ``[GLOBAL]``'s at the
    end; only the final result is written here, into one file per key: an earlier stage's file held the final
    (deformable) result under its name and ``[GLOBAL]``'s file was not written, with exit 0."""
    last = len(stages) - 1
    for i, written in enumerate(lines[1:]):
        for key in STAGE_OUTPUTS:
            if key not in written:
                continue
            if i != last:
                raise ImgSuiteError(
                    f"line {written[key]}: {key} in stage {i + 1} of {last + 1}: intermediate results are not "
                    "written here (only the final one); name it in [GLOBAL] or in the last [STAGE]",
                    where,
                )
            if key in glob and glob[key] != stages[i][key]:
                raise ImgSuiteError(
                    f"line {written[key]}: {key} is named in [GLOBAL] too (line {lines[0][key]}), with another "
                    "file; give it once",
                    where,
                )


def _global_warnings(glob: dict, lines: dict) -> list[str]:
    """GLOBAL keys accepted for plastimatch's sake whose value changes nothing here."""
    out = [f"line {lines[k]}: {k} is ignored ({why})" for k, why in IGNORED_GLOBALS.items() if k in glob]
    fmt = glob.get("img_out_fmt")
    if fmt is not None and fmt not in IMG_OUT_FORMATS:
        why = "only dicom and itk are known; img_out's suffix picks the format"
        out.append(f"line {lines['img_out_fmt']}: img_out_fmt = {fmt} is ignored ({why})")
    if fmt == "dicom" and "img_out_type" in glob:
        out.append(f"line {lines['img_out_type']}: img_out_type is ignored with img_out_fmt = dicom (16-bit)")
    return out


def _stage_warnings(stages: list[dict], lines: list[dict]) -> list[str]:
    """Stage keys written where no engine reads them: in a [STAGE] whose engine ignores them, or in
    [GLOBAL] when no stage's engine reads them."""
    engines = [engine_of(s) for s in stages]
    out = []
    for key, number in lines[0].items():
        users = USED_BY.get(key)
        if users is not None and not set(users) & set(engines):
            out.append(_ignored(key, number, users, "by every stage"))
    for i, (engine, written) in enumerate(zip(engines, lines[1:])):
        for key, number in written.items():
            users = USED_BY.get(key)
            if users is not None and engine not in users:
                out.append(_ignored(key, number, users, f"by stage {i + 1} ({stages[i]['xform']})"))
    return out


def _ignored(key: str, number: int, users: tuple, by: str) -> str:
    if not users:
        return f"line {number}: {key} is accepted for plastimatch files and ignored"
    return f"line {number}: {key} is ignored {by}; only {' and '.join(ENGINE_NAMES[u] for u in users)} use it"


def read_command_file(path: str | os.PathLike) -> CommandFile:
    """Read and parse a command file; relative file names are kept as written (relative to the CWD,
    as plastimatch does).

    Parameters
    ----------
    path : path
        The plastimatch command file.

    Returns
    -------
    CommandFile
        As :func:`parse_command_file` returns it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "register.txt"
    >>> _ = f.write_text("[GLOBAL]\\nfixed=f.mha\\nmoving=m.mha\\n[STAGE]\\nxform=translation\\n")
    >>> [s["xform"] for s in read_command_file(f).stages]
    ['translation']
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")  # -sig: Notepad's byte-order mark
    except FileNotFoundError:
        raise ImgSuiteError("no such command file", path) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise ImgSuiteError(f"cannot read command file: {exc}", path) from None
    return parse_command_file(text, path)


def format_command_file(glob: dict, stages: list[dict]) -> str:
    """Render ``[GLOBAL]``/``[STAGE]`` text that plastimatch and :func:`parse_command_file` read."""

    def fmt(v):
        if isinstance(v, (list, tuple)):
            return " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
        return f"{v:g}" if isinstance(v, float) else str(v)

    lines = ["[GLOBAL]"] + [f"{k}={fmt(v)}" for k, v in glob.items()]
    for stage in stages:
        lines += ["", "[STAGE]"] + [f"{k}={fmt(v)}" for k, v in stage.items() if not k.startswith("_")]
    return "\n".join(lines) + "\n"


def validate_stage(stage: dict, index: int = 0) -> dict:
    """Check a stage dict given from Python (same keys as the command file); returns a normalised copy."""
    out = {}
    for key, value in stage.items():
        if key.startswith("_"):
            out[key] = value
            continue
        key = key.lower()
        if key not in STAGE_KEYS:
            raise ImgSuiteError(f"stage {index + 1}: unknown key {key!r} (known: {', '.join(sorted(STAGE_KEYS))})")
        if isinstance(value, str) or STAGE_KEYS[key] in (_res, _positive_floats):
            text = value if isinstance(value, str) else " ".join(str(v) for v in _as_list(value))
            value = _parse(STAGE_KEYS[key], text, key, None, f"stage {index + 1}")
        out[STAGE_ALIASES.get(key, key)] = value
    out.setdefault("xform", "rigid")
    return out


def _as_list(v):
    return v if isinstance(v, (list, tuple)) else [v]


def _parse(parser, value, key, number, where):
    try:
        return parser(value)
    except (ValueError, OverflowError) as exc:
        at = f"line {number}: " if number is not None else ""
        raise ImgSuiteError(f"{at}bad value {value!r} for {key}: {exc}", where) from None


def check_stages_against_image(cf: CommandFile, fixed) -> None:
    """Refuse, before any allocation, an empty ``[STAGE]`` and a B-spline grid finer than the fixed image can justify.

    A control grid with more control points than the fixed image has voxels (``grid_spac`` below the
    voxel size) only costs memory: a ``grid_spac`` of 0.01 mm on a CT asks for terabytes.
    """
    size, spacing = fixed.GetSize(), fixed.GetSpacing()
    voxels = math.prod(size)
    for stage in cf.stages:
        if stage.get("_empty"):
            raise ImgSuiteError(f"line {stage['_line']}: empty [STAGE] (give at least xform = ...)", cf.path)
    for n, stage in enumerate(cf.stages):
        if engine_of(stage) not in ("bspline", "itk_bspline") or "grid_spac" not in stage:
            continue
        mesh = [max(1, math.ceil((k - 1) * sp / g)) for k, sp, g in zip(size, spacing, stage["grid_spac"])]
        points = math.prod(m + 3 for m in mesh)
        if points > max(voxels, 64):
            at = f"line {stage['_line']}: " if "_line" in stage else f"stage {n + 1}: "
            raise ImgSuiteError(
                f"{at}grid_spac = {' '.join(f'{g:g}' for g in stage['grid_spac'])} mm gives {points:.3g} control "
                f"points ({points * 3 * 8 / 2**30:.3g} GiB per copy), more than the fixed image's {voxels} voxels; "
                "use a grid spacing of at least the voxel size",
                cf.path,
            )
