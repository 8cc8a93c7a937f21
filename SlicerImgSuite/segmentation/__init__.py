"""Segmentation: CT threshold tools (body, lungs, bone), atlas-based segmentation and fluorescence nuclei.

- :mod:`.ct` -- ``segment_body``, ``segment_lungs``, ``segment_bone``, ``segment_preset`` on CT images.
- :mod:`.atlas` -- multi-atlas segmentation: register, warp labels, fuse (vote, STAPLE, local weights).
- :mod:`.nuclei` -- nuclear masks and instance labels from fluorescence images (2D or 3D).
- :mod:`.measure` -- per-nucleus, per-channel intensity measurements and perinuclear rings.
- :mod:`.tracking` -- nearest-neighbour linking of nuclei over time, with gap memory.
- :mod:`.microscopy` -- TIFF/OME-TIFF and Zeiss CZI readers with channel names.
- :mod:`.matching` -- instance F1 at an IoU threshold (the accuracy measure of the nuclei tests).
- :mod:`.nuclei_job` -- the ``imgsuite nuclei`` job: a file or folder in, labels/CSV/PNGs out.
"""
