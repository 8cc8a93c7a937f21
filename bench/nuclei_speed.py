"""Where the shipped nuclei model's time goes, and whether another build of it or other session settings run faster.

1. Stages: what ``imgsuite nuclei`` runs on a 2D plane with the shipped model (``unet.OnnxPredictor``), split
   into the diameter estimate, the shrink to the model's scale, normalise + pad, onnxruntime, the softmax,
   bringing the maps back to the plane's grid, and the labelling (medians of 5 runs, every step timed in the
   same run; the step-by-step replica is checked against the predictor's maps); on a validation plane of a held-out image's
   size (256 x 256) and on the 2048 x 2048 plane of ``bench/nuclei.py`` (the DSB sample tiled 4 x 4).
2. Sessions: onnxruntime's ``run`` alone on the planes the predictor feeds it (the 6 validation images, the 2048
   plane), for the shipped session settings, other settings and other model files, taking turns round by
   round; seconds per megapixel of the original planes and the ratio to the shipped settings.
3. ``--quantise OUT.onnx``: a static int8 (QDQ) copy of the shipped model calibrated on the TRAINING images only
   (``unet.dsb2018_split``, as the predictor feeds them), its metadata kept so ``imgsuite nuclei --model`` and
   ``bench/nuclei_model.py --model`` run it (needs the ``onnx`` package). Score it with
   ``bench/nuclei_model.py --model OUT.onnx --baseline <shipped> --sets validation``.

    .venv/bin/python bench/nuclei_speed.py [--rounds 5] [--quantise OUT.onnx [--per-tensor]] [OTHER.onnx ...]

Times on a shared machine move with its load (printed); compare only within one run.
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

DSB = SHARED_DATA / "dsb2018-stage1-nuclei"
SAMPLE = SHARED_DATA / "dsb2018-nuclei-stardist-sample" / "img2d.tif"


def _image(name: str) -> np.ndarray:
    import imageio.v3 as iio
    from nuclei_model import grey

    return grey(iio.imread(DSB / "images" / f"{name}.png"))


def _big() -> np.ndarray:
    import tifffile

    return np.tile(tifffile.imread(SAMPLE), (4, 4))


def network_inputs(image: np.ndarray) -> list[np.ndarray]:
    """The (1, 1, H, W) arrays the predictor hands onnxruntime for ``image`` (shrunk, normalised, padded)."""
    from SlicerImgSuite.segmentation import unet

    seen = []

    def run(plane):
        x = unet.normalise(plane)
        seen.append(np.pad(x, [(0, (-s) % 8) for s in x.shape], mode="reflect")[None, None].copy())
        return np.zeros((len(unet.CLASSES) + 1, *plane.shape), np.float32)

    unet.at_model_scale(run, image)
    return seen


def _steps(predictor, image: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """``predictor(image)`` done step by step as ``unet.at_model_scale`` does it; seconds of each step."""
    from scipy import ndimage as ndi

    from SlicerImgSuite.segmentation import unet
    from SlicerImgSuite.segmentation.nuclei import estimate_diameter

    clock, out = [time.perf_counter()], {}

    def lap(name):
        clock.append(time.perf_counter())
        out[name] = clock[-1] - clock[-2]

    y, x = (max(0, (n - 1024) // 2) for n in image.shape)
    diameter = estimate_diameter(image[y : y + 1024, x : x + 1024])
    lap("diameter estimate")
    zoom = unet.MODEL_DIAMETER / diameter if diameter else 1.0
    shrunk = zoom <= 0.9 and min(image.shape) * zoom >= 16
    small = ndi.zoom(np.asarray(image, np.float32), zoom, order=1, grid_mode=True, mode="nearest") if shrunk else image
    lap("shrink to the model's scale")
    plane = unet.normalise(small)
    plane = np.pad(plane, [(0, (-s) % 8) for s in plane.shape], mode="reflect")
    lap("normalise + pad")
    logits = predictor.session.run(None, {"image": plane[None, None]})[0][0]
    lap("onnxruntime run")
    prob = unet._probabilities(logits)[:, : small.shape[0], : small.shape[1]]
    lap("softmax / sigmoid")
    if shrunk:
        factors = (image.shape[0] / small.shape[0], image.shape[1] / small.shape[1])
        back, (rows, cols) = np.empty((prob.shape[0], *image.shape), np.float32), image.shape
        for c in (0, 1, *range(len(unet.CLASSES), prob.shape[0])):  # the boundary is what the others leave
            back[c] = ndi.zoom(prob[c], factors, order=1, grid_mode=True, mode="nearest")[:rows, :cols]
        back[2] = np.clip(1 - back[0] - back[1], 0, 1)
        prob = back
    lap("maps back to the plane's grid")
    out["predictor, all of the above"] = clock[-1] - clock[0]
    return unet.ClassMaps.of(prob, predictor.cores), out


def stages(predictor, image: np.ndarray, repeats: int = 5) -> dict[str, float]:
    """Median seconds of each step of ``predictor(image)`` and of the labelling after it, over ``repeats`` runs."""
    from SlicerImgSuite.segmentation.nuclei import label_nuclei

    runs = []
    for _ in range(repeats):
        maps, times = _steps(predictor, image)
        start = time.perf_counter()
        label_nuclei(image, method="model", probability=maps)
        times["labelling (label_nuclei)"] = time.perf_counter() - start
        runs.append(times)
    if not np.allclose(maps, predictor(image), atol=1e-6):
        raise SystemExit("the step-by-step replica no longer matches unet.OnnxPredictor: update _steps")
    return {name: float(np.median([r[name] for r in runs])) for name in runs[0]}


def print_stages(threads: int) -> None:
    from SlicerImgSuite.segmentation import unet

    predictor = unet.OnnxPredictor(unet.shipped_model(), threads=threads)
    validation = unet.dsb2018_split(DSB)["validation"]
    for title, image in ((f"validation {validation[5]}", _image(validation[5])), ("2048 x 2048 tiled sample", _big())):
        times = stages(predictor, image)
        print(f"\n{title} {image.shape[1]}x{image.shape[0]}, {threads} threads (load {os.getloadavg()[0]:.1f}):")
        for name, seconds in times.items():
            print(f"  {name:<36} {seconds * 1000:8.1f} ms {seconds / (image.size / 1e6):7.3f} s/MP")


def session(path, threads=2, spinning=False, level="ALL", memory_pattern=True):
    """An onnxruntime session as ``unet.OnnxPredictor`` makes it, with one setting changed."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{level}")
    options.enable_mem_pattern = memory_pattern
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def compare_sessions(others: list[str], rounds: int) -> None:
    """onnxruntime's run alone, every variant on the same planes, taking turns (order reversed every round)."""
    from SlicerImgSuite.segmentation import unet

    shipped = unet.shipped_model()
    variants = {"shipped settings (2 threads)": session(shipped), "1 thread": session(shipped, threads=1),
                "spinning threads": session(shipped, spinning=True),
                "graph optimisation EXTENDED": session(shipped, level="EXTENDED"),
                "memory pattern off": session(shipped, memory_pattern=False)}  # fmt: skip
    variants.update({f"model {Path(p).name}": session(p) for p in others})
    planes = {"6 validation": [p for n in unet.dsb2018_split(DSB)["validation"] for p in network_inputs(_image(n))]}
    megapixels = {"6 validation": sum(_image(n).size for n in unet.dsb2018_split(DSB)["validation"]) / 1e6}
    big = _big()
    planes["2048 plane"], megapixels["2048 plane"] = network_inputs(big), big.size / 1e6
    for s in variants.values():  # every shape once before timing
        for x in (x for xs in planes.values() for x in xs):
            s.run(None, {"image": x})
    seconds = {(v, p): 0.0 for v in variants for p in planes}
    names = list(variants)
    for r in range(rounds):
        for v in names if r % 2 == 0 else names[::-1]:
            for p, xs in planes.items():
                for x in xs:
                    start = time.perf_counter()
                    variants[v].run(None, {"image": x})
                    seconds[v, p] += time.perf_counter() - start
    print(f"\nonnxruntime run alone, {rounds} rounds taking turns (load {os.getloadavg()[0]:.1f}); s/MP of the planes:")
    for v in names:
        print(f"  {v:<34}" + "".join(f"  {p}: {seconds[v, p] / rounds / megapixels[p]:.3f} "
                                      f"({seconds[v, p] / seconds[names[0], p]:.2f} x)" for p in planes))  # fmt: skip


def quantise(output: str, per_channel: bool = True) -> None:
    """Static int8 QDQ copy of the shipped model, calibrated on the training images' network inputs only."""
    import onnx
    import tifffile
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from SlicerImgSuite.segmentation import unet

    split = unet.dsb2018_split(DSB)
    planes = [p for n in split["train"] for p in network_inputs(_image(n))]
    planes += network_inputs(tifffile.imread(SAMPLE))  # the StarDist DSB sample is a training image too

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.planes = iter(planes)

        def get_next(self):
            plane = next(self.planes, None)
            return None if plane is None else {"image": plane}

    prepared = Path(output).with_suffix(".prepared.onnx")
    quant_pre_process(str(unet.shipped_model()), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), output, Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip
    prepared.unlink()
    model, source = onnx.load(output), onnx.load(str(unet.shipped_model()))
    del model.metadata_props[:]
    for prop in source.metadata_props:
        entry = model.metadata_props.add()
        entry.key, entry.value = prop.key, prop.value
    onnx.save(model, output)
    print(f"{output}: int8 QDQ ({'per channel' if per_channel else 'per tensor'}), calibrated on {len(planes)} "
          f"training planes, {os.path.getsize(output) / 1e3:.0f} kB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("others", nargs="*", help="more ONNX model files to time against the shipped one")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the session comparison")
    parser.add_argument("--quantise", metavar="OUT.onnx", help="write a static int8 copy of the shipped model first")
    parser.add_argument("--per-tensor", action="store_true", help="--quantise with one scale per tensor")
    parser.add_argument("--no-stages", action="store_true", help="skip the split into stages")
    args = parser.parse_args()
    if args.quantise:
        quantise(args.quantise, per_channel=not args.per_tensor)
    if not args.no_stages:
        for threads in (2, 1):
            print_stages(threads)
    compare_sessions(args.others + ([args.quantise] if args.quantise else []), args.rounds)


if __name__ == "__main__":
    main()
