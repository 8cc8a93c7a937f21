"""X-ray classifier speed: inference per 256x256 image with onnxruntime vs torch eager (same weights) vs the
lab's Keras model (if tensorflow-cpu is importable by ``--tf-python``), training time per epoch, and a cold
``imgsuite xray predict`` of one NIH image (whole process, with and without the heat map).

Goals (issue 17): <= 50 ms per 256^2 image with onnxruntime on 2 cores, >= 3x faster than torch eager;
cold predict of one image <= 0.6 s.

    .venv/bin/python bench/xray.py [--threads 2] [--repeats 20] [--tf-python /path/to/python-with-tensorflow]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner import SHARED_DATA, Case, compare, imgsuite  # noqa: E402

from SlicerImgSuite.xray import ARCHITECTURES  # noqa: E402
from SlicerImgSuite.xray.network import build_layers, to_onnx  # noqa: E402
from SlicerImgSuite.xray.preprocess import Preprocessing  # noqa: E402

KERAS = """
import sys, time, statistics, numpy as np, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads({threads})
tf.config.threading.set_inter_op_parallelism_threads(1)
L = tf.keras.layers
model = tf.keras.Sequential([tf.keras.Input((256, 256, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(),
    L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(128, 3, activation="relu"), L.MaxPooling2D(),
    L.Flatten(), L.Dense(128, activation="relu"), L.Dense(1, activation="sigmoid")])
x = np.random.default_rng(0).normal(size=(1, 256, 256, 1)).astype(np.float32)
for _ in range(3):
    model(x, training=False)
times = []
for _ in range({repeats}):
    t = time.perf_counter(); model(x, training=False); times.append(time.perf_counter() - t)
print(tf.__version__, statistics.median(times))
"""


def _median_time(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def inference(threads: int, repeats: int, tf_python: str | None) -> None:
    import onnxruntime as ort

    x = np.random.default_rng(0).normal(size=(1, 1, 256, 256)).astype(np.float32)
    print(f"\n## inference per 256x256 image, batch 1, {threads} threads (load average {os.getloadavg()[0]:.1f})")
    for arch in ARCHITECTURES:
        layers = build_layers(arch, 256)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(to_onnx(layers, Preprocessing(256), ["a", "b"]), options,
                                       providers=["CPUExecutionProvider"])
        t_ort = _median_time(lambda s=session: s.run(None, {"image": x}), repeats)
        line = f"{arch:<9} onnxruntime {t_ort * 1e3:7.1f} ms"
        try:
            import torch

            from SlicerImgSuite.xray.train import to_torch

            torch.set_num_threads(threads)
            model = to_torch(layers).eval()
            xt = torch.from_numpy(x)
            with torch.no_grad():
                t_torch = _median_time(lambda m=model, t=xt: m(t), repeats)
            line += f" | torch eager {t_torch * 1e3:7.1f} ms | ratio torch/onnxruntime {t_torch / t_ort:5.2f}"
        except ImportError:
            line += " | torch not installed (the learn extra)"
        if arch == "seed":
            line += " | " + _keras(threads, repeats, tf_python, t_ort)
        print(line)


def _keras(threads, repeats, tf_python, t_ort) -> str:
    python = tf_python or sys.executable
    result = subprocess.run([python, "-c", KERAS.format(threads=threads, repeats=repeats)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        return "Keras: tensorflow not importable by " + python
    version, seconds = result.stdout.split()[-2:]
    return f"Keras (tf {version}) {float(seconds) * 1e3:7.1f} ms, ratio Keras/onnxruntime {float(seconds) / t_ort:5.2f}"


def training_epoch(threads: int) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("\ntraining: torch not installed (the learn extra)")
        return
    from SlicerImgSuite.xray.train import TrainOptions, fit_network

    rng = np.random.default_rng(0)
    n = 32
    x = rng.normal(size=(n, 1, 256, 256)).astype(np.float32)
    y = np.arange(n) % 2
    print(f"\n## training, 256x256, {n} images per epoch, {threads} threads (load average {os.getloadavg()[0]:.1f})")
    for arch in ARCHITECTURES:
        options = TrainOptions(architecture=arch, epochs=2, patience=5, image_size=256, threads=threads)
        t = time.perf_counter()
        fit_network(x, y, x[:8], y[:8], params=Preprocessing(256), options=options)
        per_epoch = (time.perf_counter() - t) / 2
        print(f"{arch:<9} {per_epoch:6.2f} s per epoch of {n} images = {per_epoch / n * 1e3:6.1f} ms per image")


def cold_predict(repeats: int) -> None:
    image = SHARED_DATA / "nih-chestxray14-samples" / "00000001_000.png"
    work = Path(tempfile.mkdtemp(prefix="xray-bench-"))
    (work / "m.onnx").write_bytes(to_onnx(build_layers("small", 256), Preprocessing(256), ["No Finding", "Finding"]))
    base = [*imgsuite(), "xray", "predict", str(image), "--model", str(work / "m.onnx"), "--quiet"]
    floor = [sys.executable, "-c", "import numpy, PIL.Image, onnxruntime"]  # what any onnxruntime predictor imports
    compare([Case("predict --no-heatmap", base + ["--output", str(work / "a"), "--no-heatmap"]),
             Case("predict with heat map", base + ["--output", str(work / "b")]),
             Case("python: import numpy+PIL+ort", floor)],
            repeats=repeats, title="cold imgsuite xray predict of one 512x512 NIH image (small model, 256^2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tf-python", help="a Python that can import tensorflow (default: this one)")
    args = parser.parse_args()
    inference(args.threads, args.repeats, args.tf_python)
    training_epoch(args.threads)
    cold_predict(5)


if __name__ == "__main__":
    main()
