"""Prediction with onnxruntime only (no torch): probabilities and occlusion heat maps.

The model file carries its preprocessing parameters and class names in the ONNX metadata
(:func:`.network.to_onnx`), so prediction preprocesses exactly as training did.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress
from .data import IMAGE_SUFFIXES, Radiograph
from .network import INPUT_NAME, META_ARCHITECTURE, META_CLASSES, META_PREPROCESSING
from .preprocess import Preprocessing, load_batch, range_warning


@dataclass
class XRayModel:
    """An ONNX classifier opened with onnxruntime: ``session``, ``params``, ``classes``, ``architecture``."""

    session: object
    params: Preprocessing
    classes: list[str]
    architecture: str
    path: str

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Probability of ``classes[1]`` for a preprocessed batch ``(n, 1, size, size)``."""
        batch = np.ascontiguousarray(batch, np.float32)
        return self.session.run(None, {INPUT_NAME: batch})[0].reshape(len(batch))


def load_model(path: str | os.PathLike, *, threads: int = 0) -> XRayModel:
    """Open an ``imgsuite xray`` ONNX model (``threads`` 0: onnxruntime's default)."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ImgSuiteError("no such model file", path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ImgSuiteError(f"not a readable ONNX model ({exc.__class__.__name__})", path) from None
    meta = session.get_modelmeta().custom_metadata_map
    if META_PREPROCESSING not in meta or META_CLASSES not in meta:
        raise ImgSuiteError(f"ONNX metadata lacks {META_PREPROCESSING}/{META_CLASSES}: not an imgsuite xray model",
                            path)
    try:
        params = Preprocessing.from_json(meta[META_PREPROCESSING])
    except (ValueError, TypeError, KeyError, ImgSuiteError) as exc:
        raise ImgSuiteError(f"bad {META_PREPROCESSING} metadata ({exc})", path) from None
    return XRayModel(session, params, json.loads(meta[META_CLASSES]), meta.get(META_ARCHITECTURE, ""), str(path))


def occlusion_map(model: XRayModel, image: np.ndarray, *, grid: int = 8) -> np.ndarray:
    """How much the probability drops when each region is blanked (0 = training mean), ``(size, size)``.

    A window of twice the grid step slides in steps of ``size / grid``; each pixel gets the mean drop of
    the windows covering it, negative drops clipped to 0.
    """
    size = image.shape[-1]
    step = max(1, size // grid)
    width = 2 * step
    starts = range(0, max(size - width, 0) + 1, step)
    boxes = [(r, c) for r in starts for c in starts]
    batch = np.repeat(image.reshape(1, 1, size, size), len(boxes), axis=0)
    for k, (r, c) in enumerate(boxes):
        batch[k, 0, r:r + width, c:c + width] = 0.0
    base = model.probabilities(image.reshape(1, 1, size, size))[0]
    drops = base - model.probabilities(batch)
    heat = np.zeros((size, size))
    count = np.zeros((size, size))
    for (r, c), d in zip(boxes, drops):
        heat[r:r + width, c:c + width] += d
        count[r:r + width, c:c + width] += 1
    return np.clip(heat / np.maximum(count, 1), 0.0, None).astype(np.float32)


def heatmap_on_image(radiograph: Radiograph, heat: np.ndarray, params: Preprocessing) -> np.ndarray:
    """The heat map (on the padded square) cropped and resized back onto the radiograph's own grid."""
    from PIL import Image

    rows, cols = radiograph.pixels.shape
    size = params.image_size
    scale = size / max(rows, cols)
    new_rows, new_cols = max(1, round(rows * scale)), max(1, round(cols * scale))
    r0, c0 = (size - new_rows) // 2, (size - new_cols) // 2
    crop = np.ascontiguousarray(heat[r0:r0 + new_rows, c0:c0 + new_cols], np.float32)
    return np.asarray(Image.fromarray(crop, mode="F").resize((cols, rows), Image.Resampling.BILINEAR))


def overlay_png(radiograph: Radiograph, heat: np.ndarray, path: Path, *, max_size: int = 1024) -> None:
    """Write the radiograph in grey with the heat map in colour (alpha grows with the heat)."""
    from matplotlib import colormaps
    from PIL import Image

    grey = radiograph.pixels
    scale = max(grey.shape) / max_size
    if scale > 1:
        shape = (round(grey.shape[1] / scale), round(grey.shape[0] / scale))
        grey = np.asarray(Image.fromarray(grey, mode="F").resize(shape, Image.Resampling.BILINEAR))
        heat = np.asarray(Image.fromarray(heat, mode="F").resize(shape, Image.Resampling.BILINEAR))
    top = float(heat.max())
    norm = heat / top if top > 0 else heat
    colour = colormaps["jet"](norm)[..., :3]
    alpha = 0.5 * norm[..., None]
    rgb = (1 - alpha) * np.clip(grey, 0, 1)[..., None] + alpha * colour
    Image.fromarray((rgb * 255 + 0.5).astype(np.uint8), "RGB").save(path, format="PNG")


def radiograph_from_array(values: np.ndarray, window: tuple[float, float] | None = None,
                          source: str = "volume") -> Radiograph:
    """A radiograph from raw pixel values (e.g. a Slicer volume): the window ``(center, width)`` onto
    ``[0, 1]``, or the values' own min..max without one.

    Examples
    --------
    >>> radiograph_from_array(np.array([[0.0, 50.0, 100.0]]), window=(50, 50)).pixels.tolist()
    [[0.0, 0.5, 1.0]]
    """
    values = np.asarray(values, np.float64)
    if values.ndim == 3 and values.shape[0] == 1:  # a single-slice volume (k, j, i)
        values = values[0]
    if values.ndim != 2:
        raise ImgSuiteError(f"a radiograph is a single 2-D image, got shape {values.shape}", source)
    if window is not None and window[1] > 0:
        lo = window[0] - window[1] / 2
        pixels = (values - lo) / window[1]
    else:
        lo, hi = float(values.min()), float(values.max())
        pixels = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return Radiograph(np.clip(pixels, 0, 1).astype(np.float32), None, 16, source)


def classify_radiograph(radiograph: Radiograph, model: XRayModel, *, heatmap: bool = True, grid: int = 8):
    """Probability of ``model.classes[1]``, the heat map on the radiograph's grid (or ``None``), and a warning."""
    from .preprocess import preprocess

    x = preprocess(radiograph, model.params)[None, None]
    probability = float(model.probabilities(x)[0])
    heat = heatmap_on_image(radiograph, occlusion_map(model, x[0], grid=grid), model.params) if heatmap else None
    return probability, heat, range_warning(radiograph, model.params)


def expand_inputs(inputs) -> list[str]:
    """Files as given, folders expanded to their image files (sorted)."""
    paths = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImgSuiteError("folder holds no PNG/JPEG/DICOM image", item)
            paths += [str(p) for p in found]
        elif item.is_file():
            paths.append(str(item))
        else:
            raise ImgSuiteError("no such file or folder", item)
    return paths


def prediction_input(path: str | os.PathLike, params: Preprocessing) -> tuple[np.ndarray, Radiograph]:
    """The network input ``(1, 1, size, size)`` of one file, exactly as training builds it (:func:`.load_batch`)."""
    batch, (radiograph,) = load_batch([path], params)
    return batch, radiograph


def check_threshold(threshold: float) -> float:
    """``threshold`` if it is a probability in ``[0, 1]``, else an error naming ``--threshold``.

    Examples
    --------
    >>> check_threshold(0.5)
    0.5
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise ImgSuiteError(f"--threshold {threshold} is not a probability between 0 and 1")
    return float(threshold)


def predict_images(
    inputs,
    model: str | os.PathLike,
    output: str | os.PathLike,
    *,
    heatmaps: bool = True,
    threshold: float = 0.5,
    grid: int = 8,
    progress: ProgressCallback | None = None,
) -> tuple[list[dict], list[str]]:
    """Classify radiographs: ``OUTPUT/predictions.csv`` and ``OUTPUT/heatmaps/<name>.png``, written together.

    Parameters
    ----------
    inputs : image files or folders of them (PNG/JPEG 8/16-bit, DICOM).
    model : an ONNX model from ``imgsuite xray train`` (onnxruntime only; torch is not needed).
    output : output folder; must not hold an input.
    heatmaps : write an occlusion heat map overlaid on each radiograph.
    threshold : probability at or above which ``predicted`` is ``classes[1]``.
    grid : steps of the occlusion window across the image (see :func:`occlusion_map`).
    progress : callable ``(fraction, message)``, optional.

    Returns
    -------
    rows : list of dict
        The rows written to the predictions table, one per image.
    warnings : list of str
        Images whose intensity range differs from the training data's.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> from SlicerImgSuite.xray.network import build_layers, to_onnx
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "m.onnx").write_bytes(to_onnx(build_layers("small", 16), Preprocessing(16), ["no", "yes"]))
    >>> Image.fromarray(np.eye(20, dtype=np.uint8) * 200).save(d / "a.png")
    >>> rows, warnings = predict_images([d / "a.png"], d / "m.onnx", d / "out")
    >>> sorted(p.name for p in (d / "out").iterdir()), 0 <= rows[0]["p_yes"] <= 1
    (['heatmaps', 'predictions.csv'], True)
    """
    from ..io.atomic import write_together

    progress = progress or no_progress
    threshold = check_threshold(threshold)
    paths = expand_inputs(inputs)
    out = Path(output)
    resolved = {Path(p).resolve() for p in paths}
    if out.resolve() in resolved or (out / "predictions.csv").resolve() in resolved:
        raise ImgSuiteError("the output would overwrite an input", out)
    net = load_model(model)
    rows, warnings, overlays = [], [], []
    for i, path in enumerate(paths):
        progress(i / len(paths), f"classifying {Path(path).name}")
        batch, radiograph = prediction_input(path, net.params)
        warning = range_warning(radiograph, net.params)
        if warning:
            warnings.append(warning)
        p = float(net.probabilities(batch)[0])
        rows.append({"path": path, f"p_{net.classes[1]}": round(p, 6),
                     "predicted": net.classes[int(p >= threshold)], "warning": warning or ""})
        if heatmaps:
            heat = heatmap_on_image(radiograph, occlusion_map(net, batch[0], grid=grid), net.params)
            overlays.append((f"{i:04d}_{Path(path).stem}.png", radiograph, heat))
    progress(1.0, "writing")

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def write_maps(tmp: Path) -> None:
        for name, radiograph, heat in overlays:
            overlay_png(radiograph, heat, tmp / name)

    write_together([(out / "predictions.csv", write_csv, False)]
                   + ([(out / "heatmaps", write_maps, True)] if heatmaps else []))
    return rows, warnings
