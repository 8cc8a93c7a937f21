"""plastimatch registration command files: ``[GLOBAL]`` then ``[STAGE]`` sections of ``key = value`` lines.

Stage keys found in ``[GLOBAL]`` are defaults for every stage (as in plastimatch). Unknown keys and bad
values are errors that name the file and the line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ImgSuiteError

GLOBAL_KEYS = {
    "fixed", "moving", "fixed_roi", "moving_roi", "fixed_mask", "moving_mask", "fixed_landmarks",
    "moving_landmarks", "xform_in", "xform_out", "vf_out", "img_out", "img_out_fmt", "img_out_type",
    "warped_landmarks", "default_value", "logfile", "resample_when_linear",
}  # fmt: skip
# GLOBAL spellings plastimatch also accepts
GLOBAL_ALIASES = {"fixed_mask": "fixed_roi", "moving_mask": "moving_roi"}

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
    return _choice(v, METRICS)


def _choice(v, table):
    key = v.strip().lower()
    if key not in table:
        raise ValueError(f"expected one of {', '.join(sorted(table))}")
    return table[key]


def _words(v):
    return v.replace(",", " ").split()


def _floats(n):
    def parse(v):
        vals = [float(w) for w in _words(v)]
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
    vals = [int(round(float(w))) for w in _words(v)]
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3 or any(x < 1 for x in vals):
        raise ValueError("expected 1 or 3 integers >= 1")
    return vals


def _int_pos(v):
    x = int(float(v))
    if x < 1:
        raise ValueError("expected an integer >= 1")
    return x


def _float_nonneg(v):
    x = float(v)
    if x < 0:
        raise ValueError("expected a number >= 0")
    return x


def _optim(v):
    key = v.strip().lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"expected one of {', '.join(sorted(OPTIMIZERS))}")
    return key


def _impl(v):
    key = v.strip().lower()
    if key not in IMPLS:
        raise ValueError(f"expected one of {', '.join(sorted(IMPLS))}")
    return key


def _text(v):
    return v.strip()


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
    "background_val": float,
    "demons_std": _float_nonneg,
    "max_step": _float_nonneg,
    "min_step": _float_nonneg,
    "mi_histogram_bins": _int_pos,
    "num_hist_bins": _int_pos,
    "threading": _text,
    "sampling": _float_nonneg,  # fraction of voxels sampled by ITK metrics (imgsuite extension)
    "translation_scale": _float_nonneg,
    "default_value": float,
    # plastimatch writes these per stage too; accepted and honoured by the last stage that names them
    "xform_out": _text,
    "vf_out": _text,
    "img_out": _text,
}
STAGE_ALIASES = {"ss": "res", "num_hist_bins": "mi_histogram_bins"}
GLOBAL_PARSERS = {"default_value": float}


@dataclass
class CommandFile:
    """A parsed command file: ``globals`` (file roles, outputs) and one dict per ``[STAGE]``."""

    globals: dict = field(default_factory=dict)
    stages: list[dict] = field(default_factory=list)
    path: str | None = None

    def text(self) -> str:
        """Write back in plastimatch's format."""
        return format_command_file(self.globals, self.stages)


def parse_command_file(text: str, path: str | os.PathLike | None = None) -> CommandFile:
    """Parse plastimatch command-file text.

    Examples
    --------
    >>> cf = parse_command_file("[GLOBAL]\\nfixed=f.mha\\nmoving=m.mha\\n[STAGE]\\nxform=rigid\\nres=4 4 2\\n")
    >>> cf.globals["fixed"], cf.stages[0]["xform"], cf.stages[0]["res"]
    ('f.mha', 'rigid', [4, 4, 2])
    """
    where = os.fspath(path) if path is not None else "command file"
    section = None
    glob: dict = {}
    stage_defaults: dict = {}
    stages: list[dict] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            name = line.strip("[]").strip().upper()
            if name == "GLOBAL":
                if section is not None:
                    raise ImgSuiteError(f"line {number}: [GLOBAL] must come first and only once", where)
                section = "GLOBAL"
            elif name == "STAGE":
                section = "STAGE"
                stages.append({"_line": number})
            else:
                raise ImgSuiteError(f"line {number}: unknown section [{name}] (use [GLOBAL] and [STAGE])", where)
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
    if not stages:
        raise ImgSuiteError("no [STAGE] section", where)
    merged = []
    for stage in stages:
        s = dict(stage_defaults)
        s.update(stage)
        s.setdefault("xform", "rigid" if not merged else merged[-1]["xform"])
        merged.append(s)
    return CommandFile(glob, merged, where)


def read_command_file(path: str | os.PathLike) -> CommandFile:
    """Read and parse a command file; relative file names are kept as written (relative to the CWD,
    as plastimatch does)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
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
    except ValueError as exc:
        at = f"line {number}: " if number is not None else ""
        raise ImgSuiteError(f"{at}bad value {value!r} for {key}: {exc}", where) from None
