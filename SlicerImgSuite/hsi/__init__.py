"""Hyperspectral cubes: the ``.hsi`` container (an uncompressed ZIP around an ENVI cube) and plain ENVI.

- :mod:`.envi_header` -- parse, check and write ENVI headers (strict or tolerant)
- :mod:`.envi` -- memory-mapped reading and byte-exact writing of ENVI binaries
- :mod:`.container` -- ``open_hsi`` (memory map straight out of the ZIP) and ``write_hsi``
- :mod:`.calibrate` -- reflectance from white/black references (push-broom, snapshot, drift)
- :mod:`.procedures` -- read procedures: resample, crop, rotate, merge, microservice
- :mod:`.labels` -- classification, binary masks, bounding boxes
- :mod:`.load` -- ``load_hyperspectral``: one entry point for the CLI and Slicer
- :mod:`.pack` -- build a ``.hsi`` from a plain ENVI cube or a folder
- :mod:`.images` -- cubes as SimpleITK vector images (NRRD, NIfTI)
- :mod:`.nodes` -- cubes, labels and boxes in an MRML scene

Nothing is imported here, so reading a cube does not pull in SimpleITK or Slicer.
"""
