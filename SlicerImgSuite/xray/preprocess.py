"""The one preprocessing function, shared by training, evaluation and prediction.

:func:`preprocess` takes a :class:`~.data.Radiograph` (already ``[0, 1]``, see :mod:`.data`) and never a
raw array, so no caller can divide by 255 a second time: the lab exercise this replaces divided by 255 in
its training generator and again in the model, but once in prediction.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ImgSuiteError
from .data import SIDE_VIEWS, Radiograph, read_radiograph

FORMAT = "imgsuite-xray-1"


@dataclass
class Preprocessing:
    """Parameters written into the model: square ``image_size``; ``mean``/``std`` standardise the padded
    ``[0, 1]`` image; ``train_mean_range`` is the range of per-image mean intensity seen in training."""

    image_size: int = 256
    mean: float = 0.5
    std: float = 0.25
    train_mean_range: tuple[float, float] = (0.0, 1.0)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)})

    @classmethod
    def from_json(cls, text: str) -> Preprocessing:
        values = json.loads(text)
        if values.pop("format", None) != FORMAT:
            raise ImgSuiteError(f"preprocessing parameters are not {FORMAT}")
        values["train_mean_range"] = tuple(values["train_mean_range"])
        return cls(**values)


MIN_SIDE = 8  # pixels: no radiograph is smaller (a 1 x 4000 strip failed in the heat map; the DRR task has 9 x 96)


def check_size(radiograph: Radiograph) -> None:
    """Refuse an image with a side under :data:`MIN_SIDE` pixels before it reaches the network."""
    if min(radiograph.pixels.shape) < MIN_SIDE:
        rows, cols = radiograph.pixels.shape
        raise ImgSuiteError(f"the image is {rows} x {cols} pixels: too small for a radiograph (at least {MIN_SIDE} "
                            "along each side)", radiograph.source or None)


def fit_to_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize keeping the aspect ratio (longest side = ``size``, antialiased bilinear), pad with 0 centred.

    Examples
    --------
    >>> out = fit_to_square(np.ones((10, 20), np.float32), 8)
    >>> out.shape, out[:, 0].tolist()
    ((8, 8), [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    """
    from PIL import Image

    rows, cols = pixels.shape
    scale = size / max(rows, cols)
    new_rows, new_cols = max(1, round(rows * scale)), max(1, round(cols * scale))
    image = Image.fromarray(np.ascontiguousarray(pixels, np.float32), mode="F")
    resized = np.asarray(image.resize((new_cols, new_rows), Image.Resampling.BILINEAR), np.float32)
    out = np.zeros((size, size), np.float32)
    r0, c0 = (size - new_rows) // 2, (size - new_cols) // 2
    out[r0:r0 + new_rows, c0:c0 + new_cols] = resized
    return out


def preprocess(radiograph: Radiograph, params: Preprocessing) -> np.ndarray:
    """The network input of one radiograph: ``(size, size)`` float32, ``(fit_to_square - mean) / std``.

    Examples
    --------
    >>> r = Radiograph(np.full((16, 16), 0.75, np.float32))
    >>> preprocess(r, Preprocessing(image_size=2, mean=0.5, std=0.25)).tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    if not isinstance(radiograph, Radiograph):
        raise TypeError("preprocess takes a Radiograph from read_radiograph, not a raw array")
    check_size(radiograph)
    square = fit_to_square(radiograph.pixels, params.image_size)
    return (square - np.float32(params.mean)) / np.float32(params.std)


def preprocess_all(radiographs, params: Preprocessing) -> np.ndarray:
    """:func:`preprocess` of each radiograph, stacked as network inputs ``(n, 1, size, size)``."""
    if not radiographs:
        return np.zeros((0, 1, params.image_size, params.image_size), np.float32)
    return np.stack([preprocess(r, params) for r in radiographs])[:, None]


def load_batch(paths, params: Preprocessing) -> tuple[np.ndarray, list[Radiograph]]:
    """Read and preprocess images: ``(n, 1, size, size)`` float32 and the radiographs read."""
    radiographs = [read_radiograph(p) for p in paths]
    return preprocess_all(radiographs, params), radiographs


def fit_preprocessing(radiographs: list[Radiograph], image_size: int) -> Preprocessing:
    """Standardisation from training images: mean/std of their padded squares, per-image mean range."""
    for r in radiographs:
        check_size(r)
    squares = np.stack([fit_to_square(r.pixels, image_size) for r in radiographs])
    means = squares.reshape(len(squares), -1).mean(axis=1)
    return Preprocessing(image_size, float(squares.mean()), float(max(squares.std(), 1e-3)),
                         (float(means.min()), float(means.max())))


def range_warning(radiograph: Radiograph, params: Preprocessing) -> str | None:
    """A warning when an input's intensities do not look like the training images', else ``None``.

    Examples
    --------
    >>> p = Preprocessing(image_size=4, train_mean_range=(0.4, 0.6))
    >>> range_warning(Radiograph(np.full((4, 4), 0.002, np.float32), source="x.png"), p)[:40]
    'x.png: mean intensity 0.002 outside the '
    """
    pixels = radiograph.pixels
    lo, hi = params.train_mean_range
    margin = max(0.1, 0.5 * (hi - lo))
    mean = float(fit_to_square(pixels, params.image_size).mean())
    problems = []
    if not lo - margin <= mean <= hi + margin:
        problems.append(f"mean intensity {mean:.3f} outside the training range {lo:.3f}..{hi:.3f}")
    if float(pixels.max()) <= 4.0 / 255.0:
        problems.append("all pixels below 4/255: was it already divided by 255?")
    if float(pixels.max() - pixels.min()) < 1e-3:
        problems.append("the image is flat")
    if radiograph.view in SIDE_VIEWS:
        problems.append(f"ViewPosition {radiograph.view} is a lateral/oblique view; the classifier reads frontal (PA/AP) "
                        "chest radiographs")
    return f"{radiograph.source}: " + "; ".join(problems) if problems else None
