"""Chest radiograph classifier: data, one preprocessing function, training (torch, optional), evaluation,
and prediction with onnxruntime only.

Modules: :mod:`.data` (datasets and reading radiographs), :mod:`.preprocess` (the one preprocessing
function), :mod:`.network` (architectures as plain layer lists, ONNX writer, numpy reference),
:mod:`.predict` (onnxruntime, heat maps), :mod:`.train` (torch), :mod:`.metrics` and :mod:`.evaluate`,
:mod:`.summary`, :mod:`.drr_task` (the known-truth task rendered from CTs).
"""

# How training picks its epoch (``--stop`` of ``xray train`` and ``xray evaluate --cross-validate``; declared here so
# that the CLI reads it without importing numpy/scipy). The outer folds of ``evaluate`` are patient-grouped in every mode.
STOP_MODES = {
    "views": "early stopping on validation AUROC of held-out studies (views) of the training patients",
    "patients": "early stopping on validation AUROC of held-out training patients (a patient-grouped split)",
    "fixed": "no validation: all training images, all --epochs, the last epoch kept",
}

# The networks (:func:`.network.build_layers`); ``small-max`` pools by maximum, for findings that cover a small part of
# the image.
ARCHITECTURES = ("seed", "small", "small-max")
