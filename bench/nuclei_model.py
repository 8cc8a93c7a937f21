"""The shipped nuclei model on images it never saw, against the classic default pipeline, in one run.

The shipped ONNX model (``SlicerImgSuite/segmentation/models/nuclei-dsb2018.onnx``) was trained by
``imgsuite nuclei-train --dsb2018`` on a fixed split BY IMAGE of ``../shared/data/dsb2018-stage1-nuclei``
(:func:`SlicerImgSuite.segmentation.unet.dsb2018_split`): every third fluorescence image in
``index.csv`` order is held out (never trained on, never used for early stopping). This script scores,
on those held-out images, what ``imgsuite nuclei --method model`` runs (onnxruntime, no torch) and the
classic default (``--method adaptive``): F1 at IoU 0.5 per image and pooled (summed true/false
positives and false negatives), where the model's F1 is lost (:func:`error_kinds`: merges, splits,
misses, badly drawn outlines, false positives on background), and the time per megapixel (the
network with its rescaling, and network + labelling). The validation
images (early stopping only) and the colour/brightfield images (never trained on; made grey, inverted
when the background is bright) are reported separately.

    .venv/bin/python bench/nuclei_model.py [--model FILE.onnx] [--threads 2] [--baseline OLD.onnx]
        [--baseline-threads N] [--sets validation,colour]

``--sets`` picks the image sets scored (e.g. ``validation`` alone while a change is chosen, so the
held-out images are looked at once, at the end); ``--baseline`` without ``--baseline-threads`` runs
with ``--threads``; the baseline may be the same file at another thread count.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner import SHARED_DATA  # noqa: E402


def pooled(scores) -> float:
    tp = sum(s.true_positives for s in scores)
    fp = sum(s.false_positives for s in scores)
    fn = sum(s.false_negatives for s in scores)
    return 2 * tp / max(1, 2 * tp + fp + fn)


def grey(image: np.ndarray) -> np.ndarray:
    """A colour image as one nuclear channel (mean of RGB, inverted when the background is bright); grey kept."""
    if image.ndim == 2:
        return image
    image = image[..., :3].astype(np.float32).mean(axis=-1)
    return image.max() - image if np.median(image) > 0.5 * (image.min() + image.max()) else image


def error_kinds(truth: np.ndarray, labels: np.ndarray) -> dict[str, int]:
    """Why each unmatched nucleus (IoU <= 0.5) was missed, and how many predictions lie on background.

    ``merge``: the prediction that covers most of it also covers 30 % of another true nucleus;
    ``split``: no prediction covers half of it, two or more cover a fifth each; ``miss``: none covers
    30 %; ``shape``: the rest (one prediction over it, outline too far off); ``fp_background``:
    unmatched predictions lying mostly on background.
    """
    from scipy import sparse

    inter = sparse.coo_matrix((np.ones(truth.size), (truth.ravel(), labels.ravel()))).toarray()
    t_area, p_area = inter.sum(axis=1), inter.sum(axis=0)
    iou = inter / (t_area[:, None] + p_area[None, :] - inter)
    iou[0, :] = iou[:, 0] = 0
    kinds = dict.fromkeys(("merge", "split", "miss", "shape", "fp_background"), 0)
    unmatched = np.flatnonzero((t_area > 0) & ~(iou > 0.5).any(axis=1))
    for i in unmatched[unmatched > 0]:
        cover = inter[i, 1:]
        best = int(cover.argmax()) + 1
        if cover.max() < 0.5 * t_area[i] and (cover > 0.2 * t_area[i]).sum() >= 2:
            kinds["split"] += 1
        elif cover.max() < 0.3 * t_area[i]:
            kinds["miss"] += 1
        elif (inter[1:, best] > 0.3 * t_area[1:]).sum() >= 2:
            kinds["merge"] += 1
        else:
            kinds["shape"] += 1
    unmatched = np.flatnonzero((p_area > 0) & ~(iou > 0.5).any(axis=0))
    unmatched = unmatched[unmatched > 0]
    kinds["fp_background"] = int((inter[0, unmatched] > 0.5 * p_area[unmatched]).sum())
    return kinds


def _timed(predictor, image):
    start = time.perf_counter()
    probability = predictor(image)
    return probability, time.perf_counter() - start


def score_set(ids, folder: Path, predictor, title: str, baseline=None) -> None:
    import imageio.v3 as iio
    import tifffile

    from SlicerImgSuite.segmentation.matching import instance_f1
    from SlicerImgSuite.segmentation.nuclei import label_nuclei

    model_scores, classic_scores, base_scores = [], [], []
    model_s = net_s = classic_s = base_s = megapixels = 0.0
    total = dict.fromkeys(("merge", "split", "miss", "shape", "fp_background"), 0)
    print(f"\n{title}: {len(ids)} images")
    for name in ids:
        image = grey(iio.imread(folder / "images" / f"{name}.png"))
        truth = tifffile.imread(folder / "labels" / f"{name}.tif")
        megapixels += image.size / 1e6
        if baseline is not None and len(model_scores) % 2:  # the two models take turns at going first
            base_probability, seconds = _timed(baseline, image)
            base_s += seconds
        start = time.perf_counter()
        probability = predictor(image)
        net_s += time.perf_counter() - start
        labels = label_nuclei(image, method="model", probability=probability)
        model_s += time.perf_counter() - start
        if baseline is not None and len(model_scores) % 2 == 0:
            base_probability, seconds = _timed(baseline, image)
            base_s += seconds
        if baseline is not None:
            base_scores.append(instance_f1(truth, label_nuclei(image, method="model", probability=base_probability)))
        start = time.perf_counter()
        classic = label_nuclei(image)
        classic_s += time.perf_counter() - start
        model_scores.append(instance_f1(truth, labels))
        classic_scores.append(instance_f1(truth, classic))
        m, c = model_scores[-1], classic_scores[-1]
        kinds = error_kinds(truth, labels)
        total = {k: total[k] + v for k, v in kinds.items()}
        print(f"  {name} {image.shape[1]}x{image.shape[0]} {int(truth.max()):4d} nuclei: model F1 {m.f1:.3f} "
              f"(fp {m.false_positives}, fn {m.false_negatives}: "
              + ", ".join(f"{k} {v}" for k, v in kinds.items()) + f"), classic F1 {c.f1:.3f}"
              + (f", baseline model F1 {base_scores[-1].f1:.3f}" if base_scores else ""))  # fmt: skip
    print(f"  pooled F1@0.5: model {pooled(model_scores):.3f}, classic (adaptive) {pooled(classic_scores):.3f}")
    if base_scores:
        print(f"  pooled F1@0.5 of the baseline model: {pooled(base_scores):.3f}; its network {base_s / megapixels:.3f} "
              f"s/MP (ours / baseline: {net_s / max(base_s, 1e-9):.2f})")  # fmt: skip
    print("  model errors: " + ", ".join(f"{k} {v}" for k, v in total.items()))
    print(f"  time per megapixel: network {net_s / megapixels:.3f} s, model + labels {model_s / megapixels:.3f} s, "
          f"classic {classic_s / megapixels:.3f} s (ratio {model_s / max(classic_s, 1e-9):.2f}; "
          f"load average {os.getloadavg()[0]:.1f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="ONNX model file (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime CPU threads")
    parser.add_argument("--baseline", help="another ONNX model (e.g. the one shipped before) scored and timed in the "
                        "same run, image by image, taking turns at going first")  # fmt: skip
    parser.add_argument(
        "--baseline-threads", type=int, help="onnxruntime CPU threads of the baseline (default: --threads)"
    )
    parser.add_argument("--sets", default="held_out,validation,colour",
                        help="comma-separated image sets to score: held_out, validation, colour, train (the model's "
                        "own training images: a fit check)")  # fmt: skip
    args = parser.parse_args()
    sets = args.sets.split(",")
    unknown = set(sets) - {"held_out", "validation", "colour", "train"}
    if unknown:
        parser.error(f"unknown --sets {sorted(unknown)}: held_out, validation, colour, train")

    from SlicerImgSuite.segmentation.unet import OnnxPredictor, dsb2018_split, shipped_model

    folder = SHARED_DATA / "dsb2018-stage1-nuclei"
    split = dsb2018_split(folder)
    predictor = OnnxPredictor(args.model or shipped_model(), threads=args.threads)
    print(f"model {args.model or shipped_model()}, onnxruntime {args.threads} threads")
    print(f"model note: {predictor.note[:400]}")
    baseline_threads = args.baseline_threads or args.threads
    baseline = OnnxPredictor(args.baseline, threads=baseline_threads) if args.baseline else None
    if baseline is not None:
        print(f"baseline model {args.baseline}, {baseline_threads} threads: {baseline.note[:200]}")
    titles = {
        "held_out": "HELD-OUT fluorescence (never trained on, no early stopping)",
        "validation": "validation fluorescence (early stopping only)",
        "colour": "colour/brightfield (never trained on; grey, inverted)",
        "train": "TRAINING fluorescence (the model's own; a fit check, not a score)",
    }
    for name in sets:
        score_set(split[name], folder, predictor, titles[name], baseline)


if __name__ == "__main__":
    main()
