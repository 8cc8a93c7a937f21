"""``imgsuite xray summary|train|evaluate|pool|predict``: the chest radiograph classifier.

Only option parsing here; the work is in :mod:`.summary`, :mod:`.train`, :mod:`.evaluate`, :mod:`.repeats` and
:mod:`.predict`.
"""

from __future__ import annotations

import argparse
import json
import sys


def _data_options(p) -> None:
    p.add_argument("data", help="folder with one sub-folder per class, or a CSV (path,label[,patient_id] or NIH Data_Entry)")
    p.add_argument("--positive-class", help="name of the positive class (default: the one not named normal/No Finding)")
    p.add_argument("--finding", help="NIH tables: positive = this finding, negative = No Finding (default: any finding)")


def _optimiser_options(p) -> None:
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam step size (1e-3)")
    p.add_argument("--batch-size", type=int, default=16, help="images per step (16)")


def _stopping_options(p) -> None:
    from . import STOP_MODES

    p.add_argument("--stop", choices=tuple(STOP_MODES), default="views",
                   help="how training picks its epoch: " + "; ".join(f"{k} = {v}" for k, v in STOP_MODES.items())
                   + " (views; with few patients a held-out patient keeps barely trained models)")
    p.add_argument("--patience", type=int, default=5, help="epochs without validation AUROC gain before stopping")
    p.add_argument("--validation-fraction", type=float, default=0.2,
                   help="share of the training studies (--stop views) or patients (--stop patients) validated (0.2)")


def register(subparsers) -> None:
    from . import ARCHITECTURES

    xray = subparsers.add_parser("xray", help="chest radiograph classifier: summary, train, evaluate, predict")
    sub = xray.add_subparsers(dest="xray_command", metavar="SUBCOMMAND", required=True)
    common = [subparsers.common_parent]

    p = sub.add_parser("summary", parents=common, help="class counts, image sizes, intensity ranges, figures")
    _data_options(p)
    p.add_argument("--output", help="folder for classes.png, examples.png, histograms.png")
    p.set_defaults(func=run_summary)

    p = sub.add_parser("train", parents=common, help="train a CNN (needs torch==2.13.0) and write it as ONNX")
    _data_options(p)
    p.add_argument("--output", required=True, help="model file to write (.onnx)")
    p.add_argument("--architecture", choices=ARCHITECTURES, default="small", help="network (small)")
    p.add_argument("--epochs", type=int, default=30, help="most epochs (early stopping on validation AUROC)")
    p.add_argument("--image-size", type=int, default=256, help="square network input in pixels (256)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same model")
    _stopping_options(p)
    p.add_argument("--flip", action="store_true", help="also flip left-right in augmentation (off: anatomy is not symmetric)")
    _optimiser_options(p)
    p.set_defaults(func=run_train)

    p = sub.add_parser("evaluate", parents=common, help="AUROC with CIs, calibration, baseline, HTML report")
    _data_options(p)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--model", help="evaluate this ONNX model on DATA")
    how.add_argument("--cross-validate", type=int, metavar="K",
                     help="patient-grouped stratified K-fold training (the test fold's patients never train or validate)")
    p.add_argument("--output", required=True, help="report folder (report.html, predictions.csv, figures)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold for sensitivity/specificity")
    p.add_argument("--architecture", choices=ARCHITECTURES, default="small", help="network for --cross-validate")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    _stopping_options(p)
    _optimiser_options(p)
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of patients (2000)")
    p.add_argument("--extra-training", metavar="DATA",
                   help="with --cross-validate: more labelled images (other patients, e.g. phantoms) added to the "
                        "training side of every fold, CNN and baseline alike; never tested on")
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser("pool", parents=common, help="one AUROC per method from repeated `evaluate --cross-validate` runs")
    p.add_argument("reports", nargs="+", help="report folders of `xray evaluate --cross-validate` (same data's patients)")
    p.add_argument("--output", help="folder for pooled.json")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of patients (2000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_pool)

    p = sub.add_parser("predict", parents=common, help="classify radiographs with onnxruntime; heat maps")
    p.add_argument("inputs", nargs="+", help="image files (PNG/JPEG/DICOM) or folders")
    p.add_argument("--model", required=True, help="ONNX model from imgsuite xray train")
    p.add_argument("--output", required=True, help="output folder: predictions.csv, heatmaps/")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--no-heatmap", dest="heatmaps", action="store_false", help="skip the occlusion heat maps")
    p.set_defaults(func=run_predict)


def run_summary(args: argparse.Namespace) -> int:
    from ..progress import progress_for
    from .summary import summarize_dataset

    s = summarize_dataset(args.data, output=args.output, positive=args.positive_class, finding=args.finding,
                          progress=progress_for(args))
    print(json.dumps(s, indent=1))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from ..progress import progress_for
    from .train import TrainOptions, train_model

    options = TrainOptions(architecture=args.architecture, epochs=args.epochs, image_size=args.image_size,
                           seed=args.seed, patience=args.patience, validation_fraction=args.validation_fraction,
                           stop=args.stop, flip=args.flip, learning_rate=args.learning_rate, batch_size=args.batch_size)
    result = train_model(args.data, args.output, options, positive=args.positive_class, finding=args.finding,
                         progress=progress_for(args))
    if not args.quiet:
        where = {"views": " (held-out views of the training patients: not an estimate for new patients)",
                 "patients": " (held-out patients)"}.get(args.stop)
        chosen = (f"best validation AUROC {result['best_auroc']:.3f}{where} at epoch {result['best_epoch']}" if where
                  else f"no validation (--stop fixed): epoch {result['best_epoch']} kept")
        print(f"{chosen}; "
              f"ONNX vs torch max difference {result['onnx_torch_max_diff']:.2e}; wrote {args.output}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from ..progress import progress_for
    from .evaluate import evaluate
    from .train import TrainOptions

    options = TrainOptions(architecture=args.architecture, epochs=args.epochs, image_size=args.image_size,
                           seed=args.seed, patience=args.patience, validation_fraction=args.validation_fraction,
                           stop=args.stop, learning_rate=args.learning_rate, batch_size=args.batch_size)
    report = evaluate(args.data, args.output, model=args.model, folds=args.cross_validate, train_options=options,
                      threshold=args.threshold, bootstrap=args.bootstrap, positive=args.positive_class,
                      finding=args.finding, extra_training=args.extra_training, progress=progress_for(args))
    if not args.quiet:
        for name, m in report["methods"].items():
            lo, hi = m["auroc_ci_bootstrap"]
            print(f"{name}: AUROC {m['auroc']:.3f} (95% CI {lo:.3f}-{hi:.3f}), Brier {m['brier']:.3f}")
        for note in report["notes"]:
            print(f"note: {note}")
    return 0


def run_pool(args: argparse.Namespace) -> int:
    from .repeats import pool_repeats

    pooled = pool_repeats(args.reports, args.output, resamples=args.bootstrap, seed=args.seed)
    if not args.quiet:
        print(f"{len(pooled['repeats'])} repeats, {pooled['images']} images, {pooled['patients']} patients")
        for name, m in pooled["methods"].items():
            lo, hi = m["auroc_ci_bootstrap"]
            print(f"{name}: pooled AUROC {m['auroc']:.3f} (95% CI over patients {lo:.3f}-{hi:.3f})")
        lo, hi = pooled["auroc_difference_ci"]
        verdict = "above 0" if lo > 0 else "below 0" if hi < 0 else "includes 0"
        print(f"CNN - baseline: 95% CI over patients {lo:+.3f} to {hi:+.3f} ({verdict})")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from ..progress import progress_for
    from .predict import predict_images

    rows, warnings = predict_images(args.inputs, args.model, args.output, heatmaps=args.heatmaps,
                                    threshold=args.threshold, progress=progress_for(args))
    for w in warnings:
        print(f"imgsuite xray: warning: {w}", file=sys.stderr)
    if not args.quiet:
        key = next(k for k in rows[0] if k.startswith("p_"))
        for row in rows:
            print(f"{row['path']}: {key[2:]} {row[key]:.3f} -> {row['predicted']}")
    return 0
