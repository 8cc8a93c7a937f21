"""The architectures as plain layer lists with numpy weights, the ONNX writer and a numpy reference.

A network is a list of layers: ``("conv", w, b, pad)`` (3x3, stride 1), ``("relu",)``, ``("maxpool",)``
(2x2, stride 2, floor), ``("gap",)`` / ``("gmp",)`` (global average / max pool then flatten), ``("flatten",)``,
``("dense", w, b)`` (``w`` is out x in), ``("norm", scale, shift, mean, var)`` (batch normalisation, eps 1e-5,
running statistics) and ``("sigmoid",)``. torch builds its module from the same
list (:mod:`.train`), so the ONNX file written here is the trained network, and tests build ONNX models
from numpy weights without torch.

- ``seed``: the lab exercise's network: three conv(3x3, valid) + max-pool blocks (32, 64, 128 filters),
  dense 128, sigmoid.
- ``small``: four padded conv + batch-norm blocks (8, 16, 32, 32 filters), global average pooling, one dense unit.
- ``small-max``: ``small`` with global max pooling: the strongest local response anywhere decides, as for a
  finding that covers a small part of the image (averaging over the whole image dilutes it).
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import ImgSuiteError
from . import ARCHITECTURES
from .preprocess import Preprocessing

NORM_EPS = 1e-5
INPUT_NAME, OUTPUT_NAME = "image", "probability"
META_PREPROCESSING, META_CLASSES, META_ARCHITECTURE = "imgsuite.xray.preprocessing", "imgsuite.xray.classes", \
    "imgsuite.xray.architecture"


def _conv(rng, cin, cout, pad):
    w = rng.normal(0.0, np.sqrt(2.0 / (9 * cin)), (cout, cin, 3, 3)).astype(np.float32)
    return ("conv", w, np.zeros(cout, np.float32), pad)


def _norm(channels):
    ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    return ("norm", ones, zeros.copy(), zeros.copy(), ones.copy())


def _dense(rng, cin, cout, last=False):
    """Glorot-uniform (Keras' default) weights; the output unit starts near 0 so training starts at p = 0.5."""
    limit = 0.01 if last else np.sqrt(6.0 / (cin + cout))
    return ("dense", rng.uniform(-limit, limit, (cout, cin)).astype(np.float32), np.zeros(cout, np.float32))


def build_layers(architecture: str, image_size: int, seed: int = 0) -> list[tuple]:
    """Initial layers (He-normal convolutions, Glorot-uniform dense) of an architecture for square inputs of ``image_size``.

    Examples
    --------
    >>> [layer[0] for layer in build_layers("small", 32)][-4:]
    ['relu', 'gap', 'dense', 'sigmoid']
    """
    rng = np.random.default_rng(seed)
    if architecture == "seed":
        layers, cin, size = [], 1, image_size
        for cout in (32, 64, 128):
            layers += [_conv(rng, cin, cout, 0), ("relu",), ("maxpool",)]
            cin, size = cout, (size - 2) // 2
        if size < 1:
            raise ImgSuiteError(f"--image-size {image_size} is too small for the seed architecture (need >= 22)")
        return layers + [("flatten",), _dense(rng, cin * size * size, 128), ("relu",), _dense(rng, 128, 1, True),
                         ("sigmoid",)]
    if architecture in ("small", "small-max"):
        layers, cin = [], 1
        for i, cout in enumerate((8, 16, 32, 32)):
            layers += [_conv(rng, cin, cout, 1), _norm(cout), ("relu",)] + ([("maxpool",)] if i < 3 else [])
            cin = cout
        pool = ("gap",) if architecture == "small" else ("gmp",)
        return layers + [pool, _dense(rng, cin, 1, True), ("sigmoid",)]
    raise ImgSuiteError(f"unknown architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}")


def forward_numpy(layers: list[tuple], batch: np.ndarray) -> np.ndarray:
    """Reference forward pass in float64 numpy: ``(n, 1, s, s)`` to probabilities ``(n,)``."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(batch, np.float64)
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            w, b, pad = layer[1], layer[2], layer[3]
            if pad:
                x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
            windows = sliding_window_view(x, (3, 3), axis=(2, 3))  # n, c, h, w, 3, 3
            x = np.einsum("nchwij,ocij->nohw", windows, w.astype(np.float64)) + b[None, :, None, None]
        elif kind == "norm":
            scale, shift, mean, var = (np.asarray(v, np.float64)[None, :, None, None] for v in layer[1:5])
            x = (x - mean) / np.sqrt(var + NORM_EPS) * scale + shift
        elif kind == "relu":
            x = np.maximum(x, 0.0)
        elif kind == "maxpool":
            h, w = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
            x = x[:, :, :h, :w].reshape(x.shape[0], x.shape[1], h // 2, 2, w // 2, 2).max(axis=(3, 5))
        elif kind == "gap":
            x = x.mean(axis=(2, 3))
        elif kind == "gmp":
            x = x.max(axis=(2, 3))
        elif kind == "flatten":
            x = x.reshape(len(x), -1)
        elif kind == "dense":
            x = x @ layer[1].astype(np.float64).T + layer[2]
        elif kind == "sigmoid":
            x = 1.0 / (1.0 + np.exp(-x))
    return x.reshape(len(x))


def to_onnx(layers: list[tuple], params: Preprocessing, classes: list[str], architecture: str = "") -> bytes:
    """The serialised ONNX model (opset 17, dynamic batch) with preprocessing and classes in its metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, name = [], [], INPUT_NAME
    for i, layer in enumerate(layers):
        kind, out = layer[0], f"{layer[0]}{i}"
        if kind == "conv":
            inits += [numpy_helper.from_array(layer[1], f"w{i}"), numpy_helper.from_array(layer[2], f"b{i}")]
            nodes.append(helper.make_node("Conv", [name, f"w{i}", f"b{i}"], [out], kernel_shape=[3, 3],
                                          pads=[layer[3]] * 4))
        elif kind == "norm":
            names = [f"{part}{i}" for part in ("scale", "shift", "mean", "var")]
            inits += [numpy_helper.from_array(np.asarray(v, np.float32), n) for v, n in zip(layer[1:5], names)]
            nodes.append(helper.make_node("BatchNormalization", [name, *names], [out], epsilon=NORM_EPS))
        elif kind == "relu":
            nodes.append(helper.make_node("Relu", [name], [out]))
        elif kind == "maxpool":
            nodes.append(helper.make_node("MaxPool", [name], [out], kernel_shape=[2, 2], strides=[2, 2]))
        elif kind in ("gap", "gmp"):
            pool = "GlobalAveragePool" if kind == "gap" else "GlobalMaxPool"
            nodes += [helper.make_node(pool, [name], [out + "p"]), helper.make_node("Flatten", [out + "p"], [out], axis=1)]
        elif kind == "flatten":
            nodes.append(helper.make_node("Flatten", [name], [out], axis=1))
        elif kind == "dense":
            inits += [numpy_helper.from_array(layer[1], f"w{i}"), numpy_helper.from_array(layer[2], f"b{i}")]
            nodes.append(helper.make_node("Gemm", [name, f"w{i}", f"b{i}"], [out], transB=1))
        elif kind == "sigmoid":
            nodes.append(helper.make_node("Sigmoid", [name], [out]))
        name = out
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "flat"))
    nodes.append(helper.make_node("Reshape", [name, "flat"], [OUTPUT_NAME]))
    size = params.image_size
    graph = helper.make_graph(
        nodes, "imgsuite_xray",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 1, size, size])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="SlicerImgSuite")
    model.ir_version = 8
    for key, value in ((META_PREPROCESSING, params.to_json()), (META_CLASSES, json.dumps(list(classes))),
                       (META_ARCHITECTURE, architecture)):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()
