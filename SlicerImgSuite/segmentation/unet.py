"""Learned nuclear mask: a small U-Net predicting background / interior / boundary.

Prediction runs the ONNX model shipped in ``models/`` (or a user's) with onnxruntime, no torch.
torch is imported only for training and export (``pip install -e ".[learn]"``): ``imgsuite
nuclei-train`` trains on image / instance-mask pairs (``--dsb2018 FOLDER``: the fixed split by image
the shipped model was made with) and writes ``.onnx`` (or a torch ``.pt``). Nothing is downloaded.

Instances come from the class maps. The shipped model has a distance channel (``nuclei-train
--distance-weight``: each nucleus's depth, normalised to 1 at its centre): each piece of it above 0.5 seeds
one nucleus, flooded down the distance over the foreground. Without that channel the confident *interior*
seeds them and each seed is grown back to the whole foreground by a watershed: a one-pixel boundary class
(the model shipped before) has its interior cut by the package's distance-transform watershed where two
interiors still meet; a model trained on nuclear cores (``nuclei-train --core 0.5``: touching nuclei have
cores apart) takes each core piece as one nucleus.
torch models average the 8 flips/rotations; the ONNX path makes one pass (speed).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress

CLASSES = ("background", "interior", "boundary")
ONNX_FORMAT = "imgsuite-unet-onnx-1"
SHIPPED_MODEL = Path(__file__).resolve().parent / "models" / "nuclei-dsb2018.onnx"
# nuclei wider than this (pixels) are shrunk to it before the model runs: chosen on the validation images
# (F1 as at full size there, 0.4-0.6 of the pixels); the held-out images were not looked at
MODEL_DIAMETER = 14.0


def _torch():
    try:
        import torch
    except ImportError:
        raise ImgSuiteError("the learned nuclei model needs torch: pip install torch==2.13.0 (CPU)") from None
    return torch


def normalise(image: np.ndarray) -> np.ndarray:
    """Percentile normalisation (1 -> 0, 99.8 -> 1), so a model sees the same range on any camera."""
    image = np.asarray(image, np.float32)
    step = int(np.sqrt(image.size / 1e6)) + 1 if image.size > 2e6 else 1  # ~1M samples are plenty on big planes
    lo, hi = np.percentile(image[::step, ::step] if image.ndim == 2 else image, [1, 99.8])
    return ((image - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)


def targets(labels: np.ndarray, core: float = 0.0) -> np.ndarray:
    """Per-pixel class from an instance mask: 0 background, 1 interior, 2 boundary (incl. touching edges).

    ``core`` 0: the boundary is each nucleus's outermost pixel ring. ``core`` > 0: the interior is
    only each nucleus's core, the pixels deeper than ``core`` times its largest depth (distance to its
    own edge), the rest of it is boundary: two touching nuclei get cores well apart, whatever their size.

    Examples
    --------
    >>> labels = np.zeros((9, 16), int)
    >>> labels[1:8, 1:8], labels[1:8, 8:15] = 1, 2
    >>> print(targets(labels, core=0.5)[4])
    [0 2 2 1 1 1 2 2 2 2 1 1 1 2 2 0]
    """
    from skimage.segmentation import find_boundaries

    out = (labels > 0).astype(np.int64)
    if core <= 0:
        out[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
        return out
    out[(labels > 0) & (distance_target(labels) <= core)] = 2
    return out


def distance_target(labels: np.ndarray) -> np.ndarray:
    """Each nucleus's depth (distance to its own edge, touching edges included) over its largest depth.

    1 at each nucleus's deepest pixels, 0 on its outer pixel ring and on background: touching nuclei are
    two hills with a valley between, whatever their size.

    Examples
    --------
    >>> labels = np.zeros((7, 14), int)
    >>> labels[1:6, 1:7], labels[1:6, 7:13] = 1, 2
    >>> print(np.round(distance_target(labels)[3], 1))
    [0.  0.  0.5 1.  1.  0.5 0.  0.  0.5 1.  1.  0.5 0.  0. ]
    """
    from skimage.segmentation import find_boundaries

    inside = (labels > 0) & ~find_boundaries(labels, mode="inner")
    depth = ndi.distance_transform_edt(inside)
    deepest = np.asarray(ndi.maximum(depth, labels, index=np.arange(int(labels.max()) + 1)), np.float64)
    return np.where(labels > 0, depth / np.maximum(deepest, 1.0)[labels], 0.0).astype(np.float32)


def build_unet(widths=(16, 32, 64, 128), distance: bool = False):
    """A small 2D U-Net: two 3x3 convolutions (batch norm, ReLU) per level, max-pool down, transposed conv up.

    ``widths``: channels per level, finest first (any increasing counts, e.g. 8,16,32,64 or 4,16,32,64).
    ``distance``: a fourth output, the logit of :func:`distance_target` (after the three class logits).
    """
    torch = _torch()
    nn = torch.nn

    def block(i, o):
        return nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
            nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
        )  # fmt: skip

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.ModuleList()
            c = 1
            for w in widths:
                self.down.append(block(c, w))
                c = w
            pairs = list(zip(widths[:0:-1], widths[-2::-1]))  # (level, the level above), deepest first
            self.up = nn.ModuleList(nn.ConvTranspose2d(w, above, 2, stride=2) for w, above in pairs)
            self.merge = nn.ModuleList(block(2 * above, above) for _, above in pairs)
            self.head = nn.Conv2d(widths[0], len(CLASSES) + int(distance), 1)

        def forward(self, x):
            skips = []
            for i, level in enumerate(self.down):
                x = level(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
                x = merge(torch.cat([up(x), skip], dim=1))
            return self.head(x)

    return UNet()


def _sample(img, lab, patch, rng, core=0.0, distance=False):
    """One augmented training patch: random crop at a random scale, rotation, flip and intensity change."""
    scale = rng.uniform(0.75, 1.33)  # nuclei a quarter smaller or a third larger than annotated
    size = min(int(round(patch / scale)), *img.shape)
    y0 = rng.integers(0, img.shape[0] - size + 1)
    x0 = rng.integers(0, img.shape[1] - size + 1)
    x = img[y0 : y0 + size, x0 : x0 + size]
    lab = lab[y0 : y0 + size, x0 : x0 + size]
    if size != patch:
        zoom = patch / size
        x = ndi.zoom(x, zoom, order=1, grid_mode=True, mode="nearest")[:patch, :patch]
        lab = ndi.zoom(lab, zoom, order=0, grid_mode=True, mode="nearest")[:patch, :patch]
    y = targets(lab, core)
    if distance:  # one more target plane, turned and flipped with the classes (no extra random draw)
        y = np.concatenate([y[None].astype(np.float32), distance_target(lab)[None]])
    k = rng.integers(4)
    x, y = np.rot90(x, k), np.rot90(y, k, axes=(-2, -1))
    if rng.random() < 0.5:
        x, y = x[:, ::-1], y[..., ::-1]
    # intensity: gamma, gain, offset, noise (another camera, stain or exposure)
    x = np.clip(x, 0, None) ** rng.uniform(0.7, 1.4) * rng.uniform(0.7, 1.3) + rng.normal(0, 0.05)
    x = x + rng.normal(0, rng.uniform(0, 0.03), x.shape)
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y)


def _at_training_scale(image: np.ndarray, labels: np.ndarray, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """A training pair shrunk as :func:`at_model_scale` shrinks a plane (its nuclei' median width from the mask).

    So the network learns nuclei of the size it is shown at prediction; never below ``patch`` pixels.
    """
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    zoom = MODEL_DIAMETER / (2 * np.sqrt(np.median(areas) / np.pi)) if areas.size else 1.0
    zoom = max(zoom, patch / min(image.shape))
    if zoom > 0.9:
        return image, labels
    return (ndi.zoom(image, zoom, order=1, grid_mode=True, mode="nearest"),
            ndi.zoom(labels, zoom, order=0, grid_mode=True, mode="nearest"))  # fmt: skip


def _pick(rng, weight: np.ndarray, weighted: bool) -> int:
    """The index of the next training image: drawn by ``weight``, or uniformly (the earlier recipe's draw)."""
    return int(rng.choice(len(weight), p=weight)) if weighted else int(rng.integers(len(weight)))


def _validation_f1(model, validation) -> float:
    """Pooled F1 at IoU 0.5 of the model (one view) over validation image / mask pairs."""
    from .matching import instance_f1
    from .nuclei import label_nuclei

    tp = fp = fn = 0
    for image, truth in validation:
        if model.core > 0 or model.distance > 0:  # these recipes check as shipped: at the model's scale
            probability = ClassMaps.of(
                at_model_scale(lambda plane: predict(model, plane, augment=False), image), model.core
            )
        else:
            probability = predict(model, image, augment=False)
        labels = label_nuclei(image, method="model", probability=probability)
        score = instance_f1(truth, labels)
        tp, fp, fn = tp + score.true_positives, fp + score.false_positives, fn + score.false_negatives
    return 2 * tp / max(1, 2 * tp + fp + fn)


def train_unet(
    images: list[np.ndarray],
    masks: list[np.ndarray],
    iterations: int = 1200,
    patch: int = 128,
    batch: int = 8,
    seed: int = 0,
    widths=(16, 32, 64, 128),
    validation: list[tuple[np.ndarray, np.ndarray]] | None = None,
    check_every: int = 250,
    boundary_weight: float = 3.0,
    core: float = 0.0,
    distance_weight: float = 0.0,
    model_scale: bool | None = None,
    by_count: bool | None = None,
    average_from: int = 0,
    progress: ProgressCallback | None = None,
):
    """Train the U-Net on image / instance-mask pairs (random patches, scales, flips, rotations, gain).

    Returns the trained model (``torch.nn.Module``, eval mode). Weighted cross-entropy (boundary
    x ``boundary_weight``) so the thin class that separates touching nuclei is learned; ``core``: see
    :func:`targets` (0: one-pixel boundary). With
    ``validation`` (image / mask pairs never trained on) the weights with the best pooled F1 there, checked every
    ``check_every`` iterations, are kept (early stopping; with ``core`` > 0 only checks in the second half of the
    schedule count, at the model's scale: on 6 validation images the best early check was noise, a half-trained
    model fitting its own training images at F1 0.75 against 0.84); ``model.history`` lists ``(iteration, F1)``.
    ``core`` > 0 also shrinks the training pairs to the model's scale (:func:`at_model_scale`) and draws images
    by the square root of their nuclei's count. ``distance_weight`` > 0 adds a fourth output trained to
    :func:`distance_target` (binary cross-entropy on its logit, this weight against the classes' loss;
    the training is otherwise as with ``core`` 0). ``model_scale`` and ``by_count`` (default: ``core`` > 0) set
    the shrinking to the model's scale and the draw by nuclei count apart from ``core``. ``average_from`` > 0
    returns the mean of the weights from that iteration to the end instead (:class:`_WeightAverage`; no early
    stopping: validation is then only reported, the averaged weights' F1 in ``model.averaged_f1``).
    """
    torch = _torch()
    progress = progress or no_progress
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    # the core recipe (core > 0) also trains at the model's scale, draws images by the square root of their
    # nuclei's count (crowded images, where nuclei touch, more often) and stops early in the second half only;
    # core 0 trains as before (the shipped model's command makes it again)
    if not 0 <= core < 1:  # 1 or more leaves no interior: a model that finds no nucleus
        raise ImgSuiteError(f"--core must be a fraction from 0 to below 1, got {core:g}")
    if not 0 <= distance_weight < float("inf"):
        raise ImgSuiteError(f"--distance-weight must be 0 or more, got {distance_weight:g}")
    if not 0 <= average_from <= iterations:
        raise ImgSuiteError(f"--average-from must be from 0 to the iterations ({iterations}), got {average_from}")
    distance = distance_weight > 0
    cores = core > 0
    model_scale = cores if model_scale is None else bool(model_scale)
    by_count = cores if by_count is None else bool(by_count)
    data = [(normalise(i), np.asarray(m)) for i, m in zip(images, masks)]
    data = [_at_training_scale(i, m, patch) for i, m in data] if model_scale else data
    for img, _ in data:
        if min(img.shape) < patch:
            raise ImgSuiteError(f"training images must be at least {patch} x {patch} pixels, got {img.shape}")
    weight = np.sqrt([len(np.unique(m)) for _, m in data])
    weight /= weight.sum()
    model = build_unet(widths, distance)
    model.widths, model.core, model.distance = tuple(widths), float(core), float(distance_weight)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=iterations)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 1.0, float(boundary_weight)]))
    best, history, average = None, [], _WeightAverage(average_from)
    draw = lambda: _batch(data, weight, by_count, batch, patch, rng, core, distance)  # noqa: E731
    for it in range(iterations):
        model.train()
        x, y = draw()
        if distance:
            out = model(x)
            loss = loss_fn(out[:, : len(CLASSES)], y[:, 0].long()) + distance_weight * torch.nn.functional.\
                binary_cross_entropy_with_logits(out[:, len(CLASSES)], y[:, 1])
        else:
            loss = loss_fn(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        average.update(model, it + 1)
        message = f"iteration {it + 1}/{iterations}: loss {loss.item():.3f}"
        if validation and ((it + 1) % check_every == 0 or it == iterations - 1):
            model.eval()
            history.append((it + 1, _validation_f1(model, validation)))
            if (2 * (it + 1) >= iterations or not cores) and not average_from and (
                best is None or history[-1][1] > best[1]
            ):
                best = (it + 1, history[-1][1], {k: v.clone() for k, v in model.state_dict().items()})
            message += f", validation F1 {history[-1][1]:.3f}" + (f" (kept {best[1]:.3f} at {best[0]})" if best else "")
        if it % 10 == 0 or it == iterations - 1 or "validation" in message:
            progress((it + 1) / iterations, message)
    if best is not None:
        model.load_state_dict(best[2])
    if average_from:
        average.apply(model, [draw()[0] for _ in range(50)])
        model.averaged_f1 = _validation_f1(model, validation) if validation else None
    model.eval()
    model.history = history
    return model


def _batch(data, weight, by_count, batch, patch, rng, core, distance):
    """One training batch ``(x, y)`` (torch tensors) of augmented patches from the training pairs."""
    torch = _torch()
    pairs = [_sample(*data[_pick(rng, weight, by_count)], patch, rng, core, distance) for _ in range(batch)]
    return torch.from_numpy(np.stack([p[0] for p in pairs])[:, None]), torch.from_numpy(np.stack([p[1] for p in pairs]))


class _WeightAverage:
    """The running mean of a model's weights at iteration ``start`` and every ``every`` after it (0: off).

    Weights visited at a high learning rate each fit the few training images in their own way; their mean
    is steadier than any one of them (what early stopping on 6 validation images picked was partly noise).
    Batch norm's statistics do not average with the weights: :meth:`apply` measures them anew.
    """

    def __init__(self, start: int, every: int = 10):
        self.start, self.every, self.count, self.mean = int(start), every, 0, None

    def update(self, model, iteration: int) -> None:
        if not self.start or iteration < self.start or (iteration - self.start) % self.every:
            return
        self.count += 1
        weights = {k: v.detach() for k, v in model.named_parameters()}
        if self.mean is None:
            self.mean = {k: v.clone() for k, v in weights.items()}
        else:
            for k, v in weights.items():
                self.mean[k] += (v - self.mean[k]) / self.count

    def apply(self, model, batches) -> None:
        """Put the mean weights into ``model`` and measure batch norm's statistics on ``batches`` for them."""
        torch = _torch()
        if self.mean is None:
            raise ImgSuiteError(f"--average-from {self.start}: later than the last iteration, nothing averaged")
        norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        with torch.no_grad():
            for k, v in model.named_parameters():
                v.copy_(self.mean[k])
            for norm in norms:
                norm.reset_running_stats()
                norm.momentum = None  # a plain mean over the batches
            model.train()
            for x in batches:
                model(x)
        for norm in norms:
            norm.momentum = 0.1
        model.eval()


def save_model(model, path: str | os.PathLike, note: str = "") -> None:
    """Write the model (weights + architecture) atomically."""
    from ..io.atomic import atomic_path

    torch = _torch()
    with atomic_path(path) as tmp:
        torch.save({"format": "imgsuite-unet-1", "widths": list(model.widths), "state": model.state_dict(),
                    "core": getattr(model, "core", 0.0), "distance": getattr(model, "distance", 0.0),
                    "note": note}, tmp)  # fmt: skip


def predict(model, image: np.ndarray, augment: bool = True) -> np.ndarray:
    """Class probabilities ``(3, Y, X)`` for a 2D image (padded to a multiple of the U-Net's stride).

    A distance model (:func:`distance_target`) adds its predicted distance as a fourth plane ``(4, Y, X)``.
    ``augment`` averages the 8 flips/rotations the model was trained with (steadier seeds, 8x the time).
    """
    torch = _torch()
    x = normalise(image)
    stride = 2 ** (len(model.widths) - 1)
    size = max(x.shape) + (-max(x.shape)) % stride  # square, so every rotation has the same shape
    x = np.pad(x, [(0, size - s) for s in x.shape], mode="reflect")
    views = [(k, f) for k in range(4) for f in (False, True)] if augment else [(0, False)]
    total = np.zeros((len(CLASSES) + int(getattr(model, "distance", 0.0) > 0), size, size), np.float32)
    with torch.no_grad():
        for k, flip in views:  # one view at a time: memory of a single pass on large planes
            view = np.rot90(x[:, ::-1] if flip else x, k)[None, None].copy()
            out = np.rot90(_probabilities(model(torch.from_numpy(view))[0].numpy()), -k, axes=(1, 2))
            total += out[:, :, ::-1] if flip else out  # undo the rotation, then the flip
    return (total / len(views))[:, : image.shape[0], : image.shape[1]]


def _probabilities(logits: np.ndarray) -> np.ndarray:
    """The class logits as probabilities (softmax); a fourth plane (distance logit) through the sigmoid."""
    classes = logits[: len(CLASSES)] - logits[: len(CLASSES)].max(axis=0, keepdims=True)
    prob = np.exp(classes)
    prob /= prob.sum(axis=0, keepdims=True)
    if logits.shape[0] == len(CLASSES):
        return prob
    return np.concatenate([prob, 1 / (1 + np.exp(-logits[len(CLASSES) :]))])


class ClassMaps(np.ndarray):
    """Class probabilities ``(3, Y, X)`` that know whether their model was trained on nuclear cores.

    ``cores`` (the model's training ``core``, :func:`targets`; 0 = one-pixel boundary) decides how
    :func:`labels_from_probabilities` seeds the nuclei; slices and copies keep it.
    """

    cores = 0.0

    @classmethod
    def of(cls, prob: np.ndarray, cores: float) -> ClassMaps:
        out = np.asarray(prob).view(cls)
        out.cores = float(cores)
        return out

    def __array_finalize__(self, source):
        self.cores = getattr(source, "cores", 0.0)


def labels_from_probabilities(prob: np.ndarray, min_area: float = 15, diameter: float | None = None) -> np.ndarray:
    """Instances from the class maps: split the confident interior, grow it over the foreground.

    Maps with a fourth plane (a distance model, as shipped) are labelled from it instead
    (:func:`_labels_from_distance`). Otherwise seeds are the pieces of the confident interior (> 0.5). From a model trained on nuclear cores
    (``prob.cores`` > 0, :class:`ClassMaps`), each piece is one nucleus (the cores of touching nuclei
    lie apart; splitting them further cut elongated nuclei: validation F1 0.882 against 0.906).
    Otherwise (a one-pixel boundary class) the interior is cut by the distance-transform watershed
    of :func:`.nuclei.split_nuclei` (markers a quarter diameter apart; the diameter is the median of
    a first, unsplit pass when not given), since two touching interiors can still meet through a thin
    neck. Each seed is then grown by a watershed on the interior probability over the foreground
    (background < 0.5).
    """
    from .nuclei import _fill_holes, split_nuclei

    if prob.shape[0] > len(CLASSES):  # a distance model: seeds and flooding from its distance map
        return _labels_from_distance(prob, min_area)
    foreground = _fill_holes(prob[0] < 0.5)
    core, _ = ndi.label(prob[1] > 0.5)
    sizes = np.bincount(core.ravel())
    core[(sizes < max(1, min_area / 4))[core]] = 0
    relief = -np.asarray(prob[1])
    if getattr(prob, "cores", 0.0) > 0:
        return _grow(relief, core, foreground | (core > 0))
    if diameter is None:
        first = _grow(relief, core, foreground | (core > 0))
        areas = np.bincount(first.ravel())[1:]
        areas = areas[areas > 0]
        diameter = 2 * np.sqrt(np.median(areas) / np.pi) if areas.size else 4.0
    seeds = split_nuclei(core > 0, max(float(diameter), 4.0))
    return _grow(relief, seeds, foreground | (seeds > 0))


DISTANCE_SEED = 0.5  # seeds: pieces of the predicted distance above this (of a nucleus's depth)


def _labels_from_distance(prob: np.ndarray, min_area: float = 15) -> np.ndarray:
    """Instances from a distance model: each piece of the predicted distance > :data:`DISTANCE_SEED` seeds one
    nucleus, flooded down the distance over the foreground (background < 0.5).

    Touching nuclei are two hills of the distance map with a valley between, so a seed per hill
    separates them without a diameter to tune.
    """
    from .nuclei import _fill_holes

    distance = np.asarray(prob[len(CLASSES)])
    seeds, _ = ndi.label(distance > DISTANCE_SEED)
    sizes = np.bincount(seeds.ravel())
    seeds[(sizes < max(1, min_area / 4))[seeds]] = 0
    return _grow(-distance, seeds, _fill_holes(np.asarray(prob[0]) < 0.5) | (seeds > 0))


def _grow(relief: np.ndarray, seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``watershed(relief, seeds, mask=mask)``, run only where a piece of the mask holds two seeds or more.

    The same labels as one watershed of the whole plane (both flood 4-connected pieces of the mask
    separately): a piece with one seed label takes it whole, a piece without any stays 0.
    """
    from skimage.segmentation import watershed

    pieces, n = ndi.label(mask)
    seeded = seeds > 0
    where, label = pieces[seeded], seeds[seeded]
    piece_of = np.zeros(int(label.max(initial=0)) + 1, np.int64)
    piece_of[label] = where  # the piece of each seed label (one of them, if it lay in several)
    used = np.flatnonzero(np.bincount(label, minlength=piece_of.size))
    count = np.bincount(piece_of[used], minlength=n + 1)
    count[where[piece_of[label] != where]] = 2  # a seed label in several pieces: flood those pieces
    lut = np.zeros(n + 1, np.int32)
    one = used[count[piece_of[used]] == 1]
    lut[piece_of[one]] = one
    labels = lut[pieces]
    boxes = ndi.find_objects(pieces)
    for i in np.flatnonzero(count > 1):
        box = boxes[i - 1]
        inside = pieces[box] == i
        flooded = watershed(relief[box], np.where(inside, seeds[box], 0), mask=inside)
        labels[box][inside] = flooded[inside]
    return labels


def load_model(path: str | os.PathLike):
    """Read a model file written by :func:`save_model`."""
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise ImgSuiteError("model file not found", path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = build_unet(tuple(saved["widths"]), float(saved.get("distance", 0.0)) > 0)
        model.load_state_dict(saved["state"])
    except Exception as exc:
        reason = str(exc).splitlines()[0][:80]
        raise ImgSuiteError(f"not an imgsuite nuclei model (made by imgsuite nuclei-train): {reason}", path) from None
    model.eval()
    model.widths, model.core = tuple(saved["widths"]), float(saved.get("core", 0.0))
    model.distance = float(saved.get("distance", 0.0))
    return model


def shipped_model() -> Path:
    """The ONNX model that ships with the package (trained by ``imgsuite nuclei-train --dsb2018``)."""
    return SHIPPED_MODEL


class OnnxPredictor:
    """Class probabilities from an ONNX model file, run by onnxruntime (no torch).

    One pass of the (normalised, padded) plane; ``threads`` caps onnxruntime's CPU threads.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImgSuiteError("the nuclei model needs onnxruntime: pip install onnxruntime") from None
        path = Path(path)
        if not path.is_file():
            raise ImgSuiteError("model file not found", path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or min(os.cpu_count() or 1, 4))
        options.inter_op_num_threads = 1
        # no busy-waiting between operators: on a shared, loaded machine spinning threads only steal time
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            meta = self.session.get_modelmeta().custom_metadata_map
            if meta.get("format") != ONNX_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {ONNX_FORMAT!r}")
            self.widths = tuple(int(w) for w in meta["widths"].split(","))
            self.cores = float(meta.get("core", 0))
            self.distance = float(meta.get("distance", 0))
        except Exception as exc:
            reason = str(exc).splitlines()[0][:80]
            raise ImgSuiteError(
                f"not an imgsuite nuclei model (made by imgsuite nuclei-train): {reason}", path
            ) from None
        self.note = meta.get("note", "")

    def __call__(self, image: np.ndarray, diameter: float | None = None) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 2:
            raise ImgSuiteError("the nuclei model works on 2D planes (stacks: use adaptive or otsu)")
        return ClassMaps.of(at_model_scale(self._run, image, diameter), self.cores)

    def _run(self, image: np.ndarray) -> np.ndarray:
        x = normalise(image)
        stride = 2 ** (len(self.widths) - 1)
        x = np.pad(x, [(0, (-s) % stride) for s in x.shape], mode="reflect")
        logits = self.session.run(None, {"image": x[None, None]})[0][0]
        return _probabilities(logits)[:, : image.shape[0], : image.shape[1]]


def at_model_scale(run, image: np.ndarray, diameter: float | None = None) -> np.ndarray:
    """``run(image)`` (class probabilities) on the plane shrunk so nuclei are about ``MODEL_DIAMETER`` wide.

    Planes whose nuclei are larger (``diameter``, or :func:`.nuclei.estimate_diameter` of the
    plane's centre) are shrunk (linear), run, and the probabilities brought back to the plane's
    grid (linear; they still sum to 1); planes with smaller nuclei run as they are (never
    enlarged). Fewer pixels = less time: ``(MODEL_DIAMETER / diameter)**2`` of the work.

    Examples
    --------
    >>> seen = []
    >>> def run(plane):
    ...     seen.append(plane.shape)
    ...     return np.stack([np.full(plane.shape, p, np.float32) for p in (0.5, 0.3, 0.2)])
    >>> at_model_scale(run, np.zeros((100, 120)), diameter=28).shape, seen
    ((3, 100, 120), [(50, 60)])
    """
    from .nuclei import estimate_diameter

    if diameter is None:  # from the central 1024 x 1024 at most (the estimate costs as much as the model)
        y, x = (max(0, (n - 1024) // 2) for n in image.shape)
        diameter = estimate_diameter(image[y : y + 1024, x : x + 1024])
    zoom = MODEL_DIAMETER / diameter if diameter else 1.0
    if zoom > 0.9 or min(image.shape) * zoom < 16:
        return run(image)
    small = ndi.zoom(np.asarray(image, np.float32), zoom, order=1, grid_mode=True, mode="nearest")
    prob = run(small)
    factors = (image.shape[0] / small.shape[0], image.shape[1] / small.shape[1])
    out = np.empty((prob.shape[0], *image.shape), np.float32)
    for c in (0, 1, *range(len(CLASSES), prob.shape[0])):  # the boundary is what the other classes leave
        out[c] = ndi.zoom(prob[c], factors, order=1, grid_mode=True, mode="nearest")[: image.shape[0], : image.shape[1]]
    out[2] = np.clip(1 - out[0] - out[1], 0, 1)
    return out


def load_predictor(path: str | os.PathLike | None = None):
    """A function ``(image2d, diameter=None) -> (3, Y, X)`` class probabilities, from a model file.

    Large nuclei are shrunk to the model's scale first (:func:`at_model_scale`). ``.onnx`` files
    run with onnxruntime (one pass); torch files (``.pt``) with torch (the 8 flips/rotations
    averaged). ``None`` = the shipped model (:func:`shipped_model`).
    """
    if path is None or str(path).lower().endswith(".onnx"):
        return OnnxPredictor(SHIPPED_MODEL if path is None else path)
    model = load_model(path)

    def predictor(image: np.ndarray, diameter: float | None = None) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 2:
            raise ImgSuiteError("the nuclei model works on 2D planes (stacks: use adaptive or otsu)")
        return ClassMaps.of(at_model_scale(lambda plane: predict(model, plane), image, diameter), model.core)

    return predictor


def export_onnx(model, path: str | os.PathLike, note: str = "") -> None:
    """Write the model as ONNX (input ``image`` (1, 1, H, W) normalised, output ``logits`` (1, 3, H, W)).

    A distance model's output has a fourth plane, the distance logit; its ``distance`` (training weight)
    goes into the metadata.

    H and W are free (multiples of the U-Net's stride); batch norm is folded into the convolutions.
    ``note``, the widths and the training ``core`` (:func:`targets`) go into the file's metadata. Only
    onnxruntime is needed to run it.
    """
    import io

    import onnx

    from ..io.atomic import atomic_path

    torch = _torch()
    model.eval()
    buffer = io.BytesIO()
    stride = 2 ** (len(model.widths) - 1)
    torch.onnx.export(
        model, torch.zeros(1, 1, 4 * stride, 4 * stride), buffer, dynamo=False, opset_version=17,
        input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {2: "height", 3: "width"}, "logits": {2: "height", 3: "width"}},
    )  # fmt: skip
    _check_parity(model, buffer.getvalue(), stride)
    proto = onnx.load_from_string(buffer.getvalue())
    meta = {
        "format": ONNX_FORMAT,
        "widths": ",".join(map(str, model.widths)),
        "core": f"{getattr(model, 'core', 0.0):g}",
        "note": note,
    }
    if getattr(model, "distance", 0.0) > 0:  # older readers and models: no key, no distance channel
        meta["distance"] = f"{model.distance:g}"
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))


def _check_parity(model, onnx_bytes: bytes, stride: int) -> None:
    """The exported graph must give torch's logits (on a random plane of an odd, non-square size)."""
    import onnxruntime as ort

    torch = _torch()
    x = np.random.default_rng(0).random((1, 1, 5 * stride, 7 * stride), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    worst = float(np.max(np.abs(got - expected)))
    if worst > 1e-3 * max(1.0, float(np.max(np.abs(expected)))):
        raise ImgSuiteError(f"the ONNX export differs from the torch model by {worst:.3g}: not written")


def read_pair(image_path: str | os.PathLike, mask_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A 2D training image (TIFF or PNG; colour made grey) and its instance mask, same shape."""
    import imageio.v3 as iio
    import tifffile

    def read(path):
        path = str(path)
        return tifffile.imread(path) if path.lower().endswith((".tif", ".tiff")) else iio.imread(path)

    try:
        img, lab = read(image_path), read(mask_path)
    except Exception as exc:
        raise ImgSuiteError(f"cannot read training pair: {exc}", image_path) from None
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :3].mean(axis=-1)
    if img.shape != lab.shape or img.ndim != 2:
        raise ImgSuiteError(f"image {img.shape} and mask {lab.shape} must be the same 2D shape", mask_path)
    return img, lab


def dsb2018_split(folder: str | os.PathLike) -> dict[str, list[str]]:
    """The fixed split by image of ``dsb2018-stage1-nuclei`` used for the shipped model.

    Fluorescence images in ``index.csv`` order: every third from the first is *held out* (never
    trained on, never used for early stopping), every sixth from the
    second is *validation* (early stopping), the rest *train*; colour images are left out.
    Returns image ids per part (``train``, ``validation``, ``held_out``, ``colour``).
    """
    import csv

    index = Path(folder) / "index.csv"
    if not index.is_file():
        raise ImgSuiteError("no index.csv: not the dsb2018-stage1-nuclei folder", folder)
    with open(index, newline="") as handle:
        rows = list(csv.DictReader(handle))
    fluo = [r["id"] for r in rows if r["kind"] == "fluorescence"]
    parts = {
        "train": [],
        "validation": [],
        "held_out": [],
        "colour": [r["id"] for r in rows if r["kind"] != "fluorescence"],
    }
    for n, name in enumerate(fluo):
        parts["held_out" if n % 3 == 0 else "validation" if n % 6 == 1 else "train"].append(name)
    return parts


def train_from_files(
    images: list[str],
    masks: list[str],
    output: str | os.PathLike,
    epochs: int = 1200,
    seed: int = 0,
    validation_images: list[str] = (),
    validation_masks: list[str] = (),
    widths=(16, 32, 64, 128),
    patch: int = 128,
    boundary_weight: float = 3.0,
    core: float = 0.0,
    distance_weight: float = 0.0,
    model_scale: bool | None = None,
    by_count: bool | None = None,
    average_from: int = 0,
    progress: ProgressCallback | None = None,
) -> None:
    """``imgsuite nuclei-train``: read image / mask pairs, train, write the model file (.onnx or .pt).

    Parameters
    ----------
    images, masks : list of path
        2D training images (TIFF or PNG) and their instance masks (0 background, one label per nucleus).
    output : path
        The model file: ``.onnx`` (what ``imgsuite nuclei --model`` runs) or a torch file.
    epochs : int
        Training iterations (one batch of random patches each).
    seed : int
        Seed of the patches, augmentations and initial weights.
    validation_images, validation_masks : list of path
        Pairs for early stopping (the weights of the best validation F1 are kept; see :func:`train_unet`).
    widths : tuple of int
        Channels of the U-Net's levels.
    patch : int
        Training patch size (pixels); images must be at least this large.
    boundary_weight : float
        Loss weight of the boundary class (3).
    core : float
        Interior = nuclear cores deeper than this fraction of each nucleus's depth (0: all but the outer ring;
        :func:`targets`).
    distance_weight : float
        Loss weight of a fourth output trained to each nucleus's normalised depth (:func:`distance_target`),
        whose peaks then seed the nuclei (0: no such output, the shipped model's recipe).
    model_scale, by_count : bool, optional
        Train on pairs shrunk to the model's scale (:func:`at_model_scale`); draw images by the square root of
        their nuclei's count (crowded images more often). Default: both when ``core`` > 0.
    average_from : int
        Keep the mean of the weights from this iteration to the last (0: the last, or the best on validation).
    progress : callable, optional
        ``(fraction, message)``.

    Examples
    --------
    >>> import tempfile, tifffile
    >>> d = Path(tempfile.mkdtemp())
    >>> image, labels = np.zeros((32, 32), np.uint16), np.zeros((32, 32), np.uint16)
    >>> image[4:12, 4:12] = image[18:28, 16:26] = 1000
    >>> labels[4:12, 4:12], labels[18:28, 16:26] = 1, 2
    >>> tifffile.imwrite(d / "image.tif", image); tifffile.imwrite(d / "labels.tif", labels)
    >>> train_from_files([d / "image.tif"], [d / "labels.tif"], d / "nuclei.pt", epochs=2, widths=(4, 8), patch=16)
    >>> type(load_model(d / "nuclei.pt")).__name__
    'UNet'
    """
    pairs = [read_pair(i, m) for i, m in zip(images, masks)]
    validation = [read_pair(i, m) for i, m in zip(validation_images, validation_masks)]
    model = train_unet([p[0] for p in pairs], [p[1] for p in pairs], iterations=epochs, seed=seed, widths=widths,
                       patch=patch, validation=validation or None, boundary_weight=boundary_weight,
                       core=core, distance_weight=distance_weight, model_scale=model_scale, by_count=by_count,
                       average_from=average_from, progress=progress)  # fmt: skip
    note = "trained on: " + ", ".join(os.path.basename(i) for i in images)
    if validation and average_from:
        note += "; validation (reported only): " + ", ".join(os.path.basename(i) for i in validation_images)
        note += f"; its F1 for the averaged weights {model.averaged_f1:.3f}, by iteration: "
        note += ", ".join(f"{i}:{f:.3f}" for i, f in model.history)
    elif validation:
        note += "; early stopping on: " + ", ".join(os.path.basename(i) for i in validation_images)
        note += "; validation F1 by iteration: " + ", ".join(f"{i}:{f:.3f}" for i, f in model.history)
    note += f"; iterations {epochs}, seed {seed}, patch {patch}, boundary weight {boundary_weight:g}"
    note += f", core {core:g}" if core else ""
    note += f", distance weight {distance_weight:g}" if distance_weight else ""
    note += f", at model scale {bool(model_scale)}" if model_scale is not None else ""
    note += f", drawn by count {bool(by_count)}" if by_count is not None else ""
    note += f", weights averaged from iteration {average_from}" if average_from else ""
    if str(output).lower().endswith(".onnx"):
        export_onnx(model, output, note)
    else:
        save_model(model, output, note)
