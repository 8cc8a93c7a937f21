"""Learned nuclei model, scored on pixels it never saw: 2-fold split of the DSB2018 sample by image halves.

Fold A trains on columns 0-255 and is scored on columns 256-511; fold B the reverse. Each fold goes
through the shipped path: the training half is written as a TIFF pair, ``train_from_files`` (what
``imgsuite nuclei-train`` runs) writes a model file, ``load_predictor`` + ``label_nuclei(method='model')``
(what ``imgsuite nuclei --method model`` runs) labels the held-out half *alone* (no context from the
training half). The classic default pipeline (``label_nuclei`` adaptive) runs on the same held-out
halves. Nuclei cut by the split line appear cut in both the reference and the predictions.

Pooled F1 = F1 of the summed true/false positives and false negatives over both held-out halves.

    .venv/bin/python bench/nuclei_model.py [--iterations 1200] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner import SHARED_DATA  # noqa: E402


def pooled(scores) -> float:
    tp = sum(s.true_positives for s in scores)
    fp = sum(s.false_positives for s in scores)
    fn = sum(s.false_negatives for s in scores)
    return 2 * tp / max(1, 2 * tp + fp + fn)


def describe(score) -> str:
    return f"F1 {score.f1:.3f} (tp {score.true_positives}, fp {score.false_positives}, fn {score.false_negatives})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1200, help="training iterations per fold (the CLI default)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from SlicerImgSuite.segmentation.matching import instance_f1
    from SlicerImgSuite.segmentation.nuclei import label_nuclei
    from SlicerImgSuite.segmentation.unet import load_predictor, train_from_files

    torch.set_num_threads(args.threads)
    folder = SHARED_DATA / "dsb2018-nuclei-stardist-sample"
    image = tifffile.imread(folder / "img2d.tif")
    truth = tifffile.imread(folder / "mask2d.tif")
    half = image.shape[1] // 2
    folds = {"A (train cols 0-255, score 256-511)": (slice(0, half), slice(half, None)),
             "B (train cols 256-511, score 0-255)": (slice(half, None), slice(0, half))}  # fmt: skip
    model_scores, classic_scores = [], []
    print(f"torch {torch.__version__}, {args.threads} threads, {args.iterations} iterations per fold")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (train_cols, test_cols) in folds.items():
            tmp_img, tmp_mask, model_file = Path(tmp, "img.tif"), Path(tmp, "mask.tif"), Path(tmp, "model.pt")
            tifffile.imwrite(tmp_img, np.ascontiguousarray(image[:, train_cols]))
            tifffile.imwrite(tmp_mask, np.ascontiguousarray(truth[:, train_cols]))
            start = time.perf_counter()
            cpu = time.process_time()
            train_from_files([str(tmp_img)], [str(tmp_mask)], model_file, epochs=args.iterations, seed=args.seed)
            train_s, train_cpu = time.perf_counter() - start, time.process_time() - cpu
            test_img, test_truth = image[:, test_cols], truth[:, test_cols]
            start = time.perf_counter()
            prob = load_predictor(model_file)(test_img)
            labels = label_nuclei(test_img, method="model", probability=prob)
            infer_s = time.perf_counter() - start
            model_scores.append(instance_f1(test_truth, labels))
            classic_scores.append(instance_f1(test_truth, label_nuclei(test_img)))
            print(f"fold {name}: model {describe(model_scores[-1])}; training {train_s:.0f} s wall "
                  f"({train_cpu:.0f} s CPU), inference {infer_s:.2f} s; classic {describe(classic_scores[-1])}")  # fmt: skip
    print(f"pooled F1@0.5 over both held-out halves: model {pooled(model_scores):.3f}, "
          f"classic (adaptive default) {pooled(classic_scores):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
