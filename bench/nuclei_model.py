"""The shipped nuclei model on images it never saw, against the classic default pipeline, in one run.

The shipped ONNX model (``SlicerImgSuite/segmentation/models/nuclei-dsb2018.onnx``) was trained by
``imgsuite nuclei-train --dsb2018`` on a fixed split BY IMAGE of ``../shared/data/dsb2018-stage1-nuclei``
(:func:`SlicerImgSuite.segmentation.unet.dsb2018_split`): every third fluorescence image in
``index.csv`` order is held out (never trained on, never used for early stopping). This script scores,
on those held-out images, what ``imgsuite nuclei --method model`` runs (onnxruntime, no torch) and the
classic default (``--method adaptive``): F1 at IoU 0.5 per image and pooled (summed true/false
positives and false negatives), and the time per megapixel (prediction + labelling). The validation
images (early stopping only) and the colour/brightfield images (never trained on; made grey, inverted
when the background is bright) are reported separately.

    .venv/bin/python bench/nuclei_model.py [--model FILE.onnx] [--threads 2]
"""

from __future__ import annotations

import argparse
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


def score_set(ids, folder: Path, predictor, title: str) -> None:
    import imageio.v3 as iio
    import tifffile

    from SlicerImgSuite.segmentation.matching import instance_f1
    from SlicerImgSuite.segmentation.nuclei import label_nuclei

    model_scores, classic_scores = [], []
    model_s = classic_s = megapixels = 0.0
    print(f"\n{title}: {len(ids)} images")
    for name in ids:
        image = grey(iio.imread(folder / "images" / f"{name}.png"))
        truth = tifffile.imread(folder / "labels" / f"{name}.tif")
        megapixels += image.size / 1e6
        start = time.perf_counter()
        labels = label_nuclei(image, method="model", probability=predictor(image))
        model_s += time.perf_counter() - start
        start = time.perf_counter()
        classic = label_nuclei(image)
        classic_s += time.perf_counter() - start
        model_scores.append(instance_f1(truth, labels))
        classic_scores.append(instance_f1(truth, classic))
        m, c = model_scores[-1], classic_scores[-1]
        print(f"  {name} {image.shape[1]}x{image.shape[0]} {int(truth.max()):4d} nuclei: model F1 {m.f1:.3f} "
              f"(fp {m.false_positives}, fn {m.false_negatives}), classic F1 {c.f1:.3f}")  # fmt: skip
    print(f"  pooled F1@0.5: model {pooled(model_scores):.3f}, classic (adaptive) {pooled(classic_scores):.3f}; "
          f"time per megapixel: model {model_s / megapixels:.3f} s, classic {classic_s / megapixels:.3f} s "
          f"(ratio {model_s / max(classic_s, 1e-9):.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="ONNX model file (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime CPU threads")
    args = parser.parse_args()

    from SlicerImgSuite.segmentation.unet import OnnxPredictor, dsb2018_split, shipped_model

    folder = SHARED_DATA / "dsb2018-stage1-nuclei"
    split = dsb2018_split(folder)
    predictor = OnnxPredictor(args.model or shipped_model(), threads=args.threads)
    print(f"model {args.model or shipped_model()}, onnxruntime {args.threads} threads")
    print(f"model note: {predictor.note[:400]}")
    score_set(split["held_out"], folder, predictor, "HELD-OUT fluorescence (never trained on, no early stopping)")
    score_set(split["validation"], folder, predictor, "validation fluorescence (early stopping only)")
    score_set(split["colour"], folder, predictor, "colour/brightfield (never trained on; grey, inverted)")


if __name__ == "__main__":
    main()
