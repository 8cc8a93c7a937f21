"""Chest radiograph classifier: data, one preprocessing function, training (torch, optional), evaluation,
and prediction with onnxruntime only.

Modules: :mod:`.data` (datasets and reading radiographs), :mod:`.preprocess` (the one preprocessing
function), :mod:`.network` (architectures as plain layer lists, ONNX writer, numpy reference),
:mod:`.predict` (onnxruntime, heat maps), :mod:`.train` (torch), :mod:`.metrics` and :mod:`.evaluate`,
:mod:`.summary`, :mod:`.drr_task` (the known-truth task rendered from CTs).
"""
