"""Training with torch on CPU (the optional ``learn`` extra, ``torch==2.13.0``), written as ONNX.

torch is imported only inside the functions that train; reading, preprocessing and prediction never
need it. The network is built from the numpy layer list of :mod:`.network` and written back to it for
the ONNX file, so the ONNX graph is exactly the trained network (checked against torch on every run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress, sub_progress
from . import STOP_MODES
from .data import Dataset, load_dataset, read_radiograph
from .metrics import auroc, grouped_folds
from .network import NORM_EPS, build_layers, to_onnx
from .preprocess import Preprocessing, fit_preprocessing, preprocess_all


@dataclass
class TrainOptions:
    """Training settings; ``threads`` 0 keeps torch's default (same seed and threads: same model).

    ``stop`` (one of :data:`STOP_MODES`) picks the validation images of early stopping: ``views`` (default)
    holds out ``validation_fraction`` of the studies of the training patients (a CSV's ``study_id``, else
    single images), ``patients`` holds out whole patients, ``fixed`` holds out nothing and keeps the last epoch.
    """

    architecture: str = "small"
    epochs: int = 30
    image_size: int = 256
    seed: int = 0
    patience: int = 5
    validation_fraction: float = 0.2
    stop: str = "views"
    flip: bool = False
    batch_size: int = 16
    learning_rate: float = 1e-3
    rotation_deg: float = 5.0
    scale: float = 0.08
    brightness: float = 0.1
    contrast: float = 0.1
    threads: int = 0

    def __post_init__(self):
        """Refuse settings that would train nothing or silently train something else (named by their CLI option)."""
        from . import ARCHITECTURES

        if self.architecture not in ARCHITECTURES:
            raise ImgSuiteError(f"--architecture {self.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
        if self.stop not in STOP_MODES:
            raise ImgSuiteError(f"--stop {self.stop!r} is not one of {', '.join(STOP_MODES)}")
        for option, value, least in (("--epochs", self.epochs, 1), ("--patience", self.patience, 1),
                                     ("--batch-size", self.batch_size, 1), ("--image-size", self.image_size, 8)):
            if int(value) != value or value < least:
                raise ImgSuiteError(f"{option} {value} must be a whole number >= {least}")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ImgSuiteError(f"--learning-rate {self.learning_rate} must be a positive number")


def _torch():
    try:
        import torch
    except ImportError:
        raise ImgSuiteError("training needs torch: pip install 'SlicerImgSuite[learn]' (torch==2.13.0, CPU)") from None
    return torch


def training_arrays(radiographs, params: Preprocessing) -> np.ndarray:
    """The network inputs ``(n, 1, size, size)`` of training: :func:`.preprocess` of each radiograph."""
    return preprocess_all(radiographs, params)


def to_torch(layers):
    """A ``torch.nn.Sequential`` holding a copy of the numpy layer list's weights."""
    torch = _torch()
    nn = torch.nn
    modules = []
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            conv = nn.Conv2d(layer[1].shape[1], layer[1].shape[0], 3, padding=layer[3])
            conv.weight.data = torch.from_numpy(layer[1].copy())
            conv.bias.data = torch.from_numpy(layer[2].copy())
            modules.append(conv)
        elif kind == "norm":
            norm = nn.BatchNorm2d(len(layer[1]), eps=NORM_EPS)
            for tensor, value in zip((norm.weight, norm.bias, norm.running_mean, norm.running_var), layer[1:5]):
                tensor.data = torch.from_numpy(np.array(value, np.float32))
            modules.append(norm)
        elif kind == "dense":
            dense = nn.Linear(layer[1].shape[1], layer[1].shape[0])
            dense.weight.data = torch.from_numpy(layer[1].copy())
            dense.bias.data = torch.from_numpy(layer[2].copy())
            modules.append(dense)
        else:
            modules.append({"relu": nn.ReLU, "maxpool": lambda: nn.MaxPool2d(2), "flatten": nn.Flatten,
                            "sigmoid": nn.Sigmoid,
                            "gap": lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                            "gmp": lambda: nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())}[kind]())
    return nn.Sequential(*modules)


def from_torch(model, layers) -> list[tuple]:
    """The layer list with the torch model's current weights."""
    out = []
    for module, layer in zip(model, layers):
        if layer[0] == "norm":
            out.append(("norm", *(t.detach().numpy().copy() for t in (module.weight, module.bias, module.running_mean,
                                                                       module.running_var))))
        elif layer[0] in ("conv", "dense"):
            w, b = (module.weight.detach().numpy().copy(), module.bias.detach().numpy().copy())
            out.append((layer[0], w, b) + tuple(layer[3:]))
        else:
            out.append(layer)
    return out


def _augment(torch, x, options: TrainOptions, pad_value: float, generator):
    """Small rotations, scaling, shifts, brightness/contrast (and left-right flip only if asked)."""
    import torch.nn.functional as F

    n = len(x)

    def uniform(scale):
        return (torch.rand(n, generator=generator) * 2 - 1) * scale

    angle = uniform(np.radians(options.rotation_deg))
    zoom = 1 + uniform(options.scale)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if options.flip else torch.ones(n)
    theta = torch.stack([torch.stack([cos * flip, -sin, uniform(0.03)], 1),
                         torch.stack([sin * flip, cos, uniform(0.03)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(x - pad_value, grid, align_corners=False, padding_mode="zeros") + pad_value
    gain = (1 + uniform(options.contrast)).view(n, 1, 1, 1)
    return moved * gain + uniform(options.brightness).view(n, 1, 1, 1)


def fit_network(x_train, y_train, x_val, y_val, *, params: Preprocessing, options: TrainOptions,
                progress: ProgressCallback | None = None) -> tuple[list[tuple], dict]:
    """Train one network with class weights, augmentation and early stopping on validation AUROC.

    Returns the best epoch's layer list and the history (``loss``, ``val_auroc`` per epoch). With no
    validation images (``x_val`` empty: ``--stop fixed``) it trains all epochs and returns the last one.
    """
    torch = _torch()
    progress = progress or no_progress
    if options.threads:
        torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    torch.use_deterministic_algorithms(True)
    generator = torch.Generator().manual_seed(options.seed)
    layers = build_layers(options.architecture, params.image_size, options.seed)
    model = to_torch(layers)
    optimiser = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    y = np.asarray(y_train, np.float32)
    counts = np.bincount(y.astype(int), minlength=2)
    if counts.min() == 0:
        raise ImgSuiteError(f"the training split holds only one class (counts {counts.tolist()})")
    class_weight = torch.tensor(len(y) / (2.0 * counts), dtype=torch.float32)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(y)
    xv = torch.from_numpy(np.ascontiguousarray(x_val))
    pad_value = -params.mean / params.std
    history, best, best_auc, waited = {"loss": [], "val_auroc": []}, None, -1.0, 0
    for epoch in range(options.epochs):
        model.train()
        order = torch.randperm(len(yt), generator=generator)
        total = 0.0
        for start in range(0, len(order), options.batch_size):
            idx = order[start:start + options.batch_size]
            xb = _augment(torch, xt[idx], options, pad_value, generator)
            p = model(xb).reshape(-1).clamp(1e-7, 1 - 1e-7)
            weight = class_weight[yt[idx].long()]
            loss = torch.nn.functional.binary_cross_entropy(p, yt[idx], weight=weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            val = auroc(y_val, model(xv).reshape(-1).numpy()) if len(xv) else float("nan")
        history["loss"].append(total / len(yt))
        history["val_auroc"].append(val)
        progress((epoch + 1) / options.epochs,
                 f"epoch {epoch + 1}/{options.epochs} loss {total / len(yt):.4f} val AUROC {val:.3f}")
        if not len(xv):
            best, history["best_epoch"] = None, epoch + 1
        elif val > best_auc + 1e-4 or best is None:
            best, best_auc, waited = from_torch(model, layers), val, 0
            history["best_epoch"] = epoch + 1
        else:
            waited += 1
            if waited >= options.patience:
                break
    history["best_auroc"] = best_auc if len(xv) else float("nan")
    return best if len(xv) else from_torch(model, layers), history


def validation_split(dataset: Dataset, fraction: float, seed: int, stop: str = "patients"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices for early stopping, positives balanced.

    ``stop="patients"``: whole patients on one side; ``"views"``: ``fraction`` of the studies (the dataset's
    ``studies``, else single images) held out, so the validation images show the training patients, each
    study whole on one side; ``"fixed"``: every index trains, none validates.
    """
    if stop not in STOP_MODES:
        raise ImgSuiteError(f"--stop {stop!r} is not one of {', '.join(STOP_MODES)}")
    everything = np.arange(len(dataset))
    if stop == "fixed":
        return everything, everything[:0]
    if not 0 < fraction < 0.5:
        raise ImgSuiteError(f"--validation-fraction {fraction} must be between 0 and 0.5")
    if stop == "patients":
        groups = list(dataset.patients)
    else:
        studies = dataset.studies or dataset.paths
        groups = [f"{p}\0{s}" for p, s in zip(dataset.patients, studies)]
    k = max(2, min(round(1 / fraction), len(set(groups))))
    folds = grouped_folds(dataset.labels, groups, k, seed)
    train, val = np.flatnonzero(folds != 0), np.flatnonzero(folds == 0)
    if len(set(dataset.labels[val].tolist())) < 2:
        raise ImgSuiteError(f"the --stop {stop} validation split holds only one class; use more images or --stop fixed")
    return train, val


def onnx_torch_difference(layers, onnx_bytes: bytes, batch: np.ndarray) -> float:
    """Largest |ONNX - torch| probability on ``batch`` (onnxruntime vs torch eager)."""
    import onnxruntime as ort

    torch = _torch()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = to_torch(layers).eval()(torch.from_numpy(np.ascontiguousarray(batch))).reshape(-1).numpy()
    got = session.run(None, {"image": np.ascontiguousarray(batch, np.float32)})[0]
    return float(np.abs(got - expected).max())


def train_model(
    data: str | os.PathLike | Dataset,
    output: str | os.PathLike,
    options: TrainOptions | None = None,
    *,
    positive: str | None = None,
    finding: str | None = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """Train a classifier on labelled radiographs and write it as ONNX with its preprocessing in the metadata.

    Parameters
    ----------
    data : class-folder tree or CSV (see :func:`.data.load_dataset`), or a loaded :class:`.data.Dataset`.
    output : the ``.onnx`` file to write.
    options : :class:`TrainOptions` (architecture, epochs, image size, seed, early stopping patience, ...).
    positive, finding : as :func:`.data.load_dataset`.
    progress : callable ``(fraction, message)``, optional.

    Returns
    -------
    dict
        ``history``, ``best_epoch``, ``best_auroc`` and ``onnx_torch_max_diff``.

    Examples
    --------
    >>> train_model("/nonexistent", "m.onnx")
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: /nonexistent: no such file or folder
    """
    from ..io.atomic import write_together

    options = options or TrainOptions()
    progress = progress or no_progress
    dataset = data if isinstance(data, Dataset) else load_dataset(data, positive=positive, finding=finding)
    if Path(output).resolve() in {Path(p).resolve() for p in dataset.paths}:
        raise ImgSuiteError("the output would overwrite an input", output)
    train_idx, val_idx = validation_split(dataset, options.validation_fraction, options.seed, options.stop)
    radiographs = []
    for i, p in enumerate(dataset.paths):
        progress(0.1 * i / len(dataset), f"reading {Path(p).name}")
        radiographs.append(read_radiograph(p))
    params = fit_preprocessing([radiographs[i] for i in train_idx], options.image_size)
    x = training_arrays(radiographs, params)
    layers, history = fit_network(x[train_idx], dataset.labels[train_idx], x[val_idx], dataset.labels[val_idx],
                                  params=params, options=options, progress=sub_progress(progress, 0.1, 0.95))
    model_bytes = to_onnx(layers, params, dataset.classes, options.architecture)
    diff = onnx_torch_difference(layers, model_bytes, x[val_idx if len(val_idx) else train_idx][:16])
    if diff > 1e-5:
        raise ImgSuiteError(f"ONNX and torch disagree by {diff:.2e} (> 1e-5): model not written", output)
    write_together([(output, lambda tmp: Path(tmp).write_bytes(model_bytes), False)])
    progress(1.0, "written")
    return {"history": history, "best_epoch": history.get("best_epoch", 0), "best_auroc": history["best_auroc"],
            "onnx_torch_max_diff": diff, "params": params, "classes": dataset.classes}
