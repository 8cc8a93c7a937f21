"""Optional learned nuclear mask: a small U-Net (torch, CPU) predicting background / interior / boundary.

torch is imported only inside these functions (``pip install torch==2.13.0``; never needed by the
rest of the package). No weights are downloaded: a model file is made by ``imgsuite nuclei-train`` on
images the user chooses, or given by the user.

Instances come from the class maps: the confident *interior* (the boundary class separates touching
nuclei) is cut by the package's distance-transform watershed where two cores still meet, and each
piece is grown back to the whole foreground by a watershed. Prediction averages the 8 flips/rotations.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress

CLASSES = ("background", "interior", "boundary")


def _torch():
    try:
        import torch
    except ImportError:
        raise ImgSuiteError("the learned nuclei model needs torch: pip install torch==2.13.0 (CPU)") from None
    return torch


def normalise(image: np.ndarray) -> np.ndarray:
    """Percentile normalisation (1 -> 0, 99.8 -> 1), so a model sees the same range on any camera."""
    image = np.asarray(image, np.float32)
    lo, hi = np.percentile(image, [1, 99.8])
    return ((image - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)


def targets(labels: np.ndarray) -> np.ndarray:
    """Per-pixel class from an instance mask: 0 background, 1 interior, 2 boundary (incl. touching edges)."""
    from skimage.segmentation import find_boundaries

    out = (labels > 0).astype(np.int64)
    out[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
    return out


def build_unet(widths=(16, 32, 64, 128)):
    """A small 2D U-Net: two 3x3 convolutions (batch norm, ReLU) per level, max-pool down, transposed conv up."""
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
            self.up = nn.ModuleList(nn.ConvTranspose2d(w, w // 2, 2, stride=2) for w in widths[:0:-1])
            self.merge = nn.ModuleList(block(w, w // 2) for w in widths[:0:-1])
            self.head = nn.Conv2d(widths[0], len(CLASSES), 1)

        def forward(self, x):
            skips = []
            for i, level in enumerate(self.down):
                x = level(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
                x = merge(torch.cat([up(x), skip], dim=1))
            return self.head(x)

    return UNet()


def train_unet(
    images: list[np.ndarray],
    masks: list[np.ndarray],
    iterations: int = 1200,
    patch: int = 128,
    batch: int = 8,
    seed: int = 0,
    widths=(16, 32, 64, 128),
    progress: ProgressCallback | None = None,
):
    """Train the U-Net on image / instance-mask pairs (random patches, flips, rotations, gain).

    Returns the trained model (``torch.nn.Module``, eval mode). Weighted cross-entropy (boundary x3)
    so the thin class that separates touching nuclei is learned.
    """
    torch = _torch()
    progress = progress or no_progress
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = [(normalise(i), targets(m)) for i, m in zip(images, masks)]
    for img, _ in data:
        if min(img.shape) < patch:
            raise ImgSuiteError(f"training images must be at least {patch} x {patch} pixels, got {img.shape}")
    model = build_unet(widths)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=iterations)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 1.0, 3.0]))
    model.train()
    for it in range(iterations):
        xs, ys = [], []
        for _ in range(batch):
            img, tgt = data[rng.integers(len(data))]
            y0 = rng.integers(0, img.shape[0] - patch + 1)
            x0 = rng.integers(0, img.shape[1] - patch + 1)
            x = img[y0 : y0 + patch, x0 : x0 + patch]
            y = tgt[y0 : y0 + patch, x0 : x0 + patch]
            k = rng.integers(4)
            x, y = np.rot90(x, k), np.rot90(y, k)
            if rng.random() < 0.5:
                x, y = x[:, ::-1], y[:, ::-1]
            # intensity: gamma, gain, offset, noise (another camera, stain or exposure)
            x = np.clip(x, 0, None) ** rng.uniform(0.7, 1.4) * rng.uniform(0.7, 1.3) + rng.normal(0, 0.05)
            x = x + rng.normal(0, rng.uniform(0, 0.03), x.shape)
            xs.append(np.ascontiguousarray(x))
            ys.append(np.ascontiguousarray(y))
        x = torch.from_numpy(np.stack(xs)[:, None].astype(np.float32))
        y = torch.from_numpy(np.stack(ys))
        loss = loss_fn(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if it % 10 == 0 or it == iterations - 1:
            progress((it + 1) / iterations, f"iteration {it + 1}/{iterations}: loss {loss.item():.3f}")
    model.eval()
    model.widths = tuple(widths)
    return model


def save_model(model, path: str | os.PathLike, note: str = "") -> None:
    """Write the model (weights + architecture) atomically."""
    from ..io.atomic import atomic_path

    torch = _torch()
    with atomic_path(path) as tmp:
        torch.save({"format": "imgsuite-unet-1", "widths": list(model.widths), "state": model.state_dict(),
                    "note": note}, tmp)  # fmt: skip


def predict(model, image: np.ndarray, augment: bool = True) -> np.ndarray:
    """Class probabilities ``(3, Y, X)`` for a 2D image (padded to a multiple of the U-Net's stride).

    ``augment`` averages the 8 flips/rotations the model was trained with (steadier seeds, 8x the time).
    """
    torch = _torch()
    x = normalise(image)
    stride = 2 ** (len(model.widths) - 1)
    size = max(x.shape) + (-max(x.shape)) % stride  # square, so every rotation has the same shape
    x = np.pad(x, [(0, size - s) for s in x.shape], mode="reflect")
    views = [(k, f) for k in range(4) for f in (False, True)] if augment else [(0, False)]
    total = np.zeros((len(CLASSES), size, size), np.float32)
    with torch.no_grad():
        for k, flip in views:  # one view at a time: memory of a single pass on large planes
            view = np.rot90(x[:, ::-1] if flip else x, k)[None, None].copy()
            out = np.rot90(torch.softmax(model(torch.from_numpy(view)), dim=1)[0].numpy(), -k, axes=(1, 2))
            total += out[:, :, ::-1] if flip else out  # undo the rotation, then the flip
    return (total / len(views))[:, : image.shape[0], : image.shape[1]]


def labels_from_probabilities(prob: np.ndarray, min_area: float = 15, diameter: float | None = None) -> np.ndarray:
    """Instances from the class maps: split the confident interior, grow it over the foreground.

    The interior (> 0.5) is cut by the distance-transform watershed of :func:`.nuclei.split_nuclei`
    (markers a quarter diameter apart; the diameter is the median of a first, unsplit pass when not
    given), since two touching cores can still meet through a thin neck; each piece is then grown
    by a watershed on the interior probability over the foreground (background < 0.5).
    """
    from skimage.segmentation import watershed

    from .nuclei import _fill_holes, split_nuclei

    foreground = _fill_holes(prob[0] < 0.5)
    core, _ = ndi.label(prob[1] > 0.5)
    sizes = np.bincount(core.ravel())
    core[(sizes < max(1, min_area / 4))[core]] = 0
    if diameter is None:
        first = watershed(-prob[1], core, mask=foreground | (core > 0))
        areas = np.bincount(first.ravel())[1:]
        areas = areas[areas > 0]
        diameter = 2 * np.sqrt(np.median(areas) / np.pi) if areas.size else 4.0
    seeds = split_nuclei(core > 0, max(float(diameter), 4.0))
    return watershed(-prob[1], seeds, mask=foreground | (seeds > 0)).astype(np.int32)


def load_model(path: str | os.PathLike):
    """Read a model file written by :func:`save_model`."""
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise ImgSuiteError("model file not found", path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = build_unet(tuple(saved["widths"]))
        model.load_state_dict(saved["state"])
    except Exception as exc:
        reason = str(exc).splitlines()[0][:80]
        raise ImgSuiteError(f"not an imgsuite nuclei model (made by imgsuite nuclei-train): {reason}", path) from None
    model.eval()
    model.widths = tuple(saved["widths"])
    return model


def load_predictor(path: str | os.PathLike):
    """A function ``image2d -> (3, Y, X)`` class probabilities, from a model file."""
    model = load_model(path)

    def predictor(image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 2:
            raise ImgSuiteError("the nuclei model works on 2D planes (stacks: use adaptive or otsu)")
        return predict(model, image)

    return predictor


def train_from_files(
    images: list[str],
    masks: list[str],
    output: str | os.PathLike,
    epochs: int = 1200,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> None:
    """``imgsuite nuclei-train``: read TIFF pairs, train, write the model file."""
    import tifffile

    pairs = []
    for i, m in zip(images, masks):
        try:
            img, lab = tifffile.imread(i), tifffile.imread(m)
        except Exception as exc:
            raise ImgSuiteError(f"cannot read training pair: {exc}", i) from None
        if img.shape != lab.shape or img.ndim != 2:
            raise ImgSuiteError(f"image {img.shape} and mask {lab.shape} must be the same 2D shape", m)
        pairs.append((img, lab))
    model = train_unet([p[0] for p in pairs], [p[1] for p in pairs], iterations=epochs, seed=seed, progress=progress)
    save_model(model, output, note="trained on: " + ", ".join(os.path.basename(i) for i in images))
