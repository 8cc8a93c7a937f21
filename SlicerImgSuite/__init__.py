"""SlicerImgSuite: the logic layer of the SlicerImgSuite 3D Slicer extension.

A plain Python package (no Slicer, Qt or VTK import at module level). Functions take and return
``SimpleITK.Image`` (LPS, with geometry); numpy is used inside. Subpackages, one per job:

- :mod:`SlicerImgSuite.io` -- images, DICOM series, atomic file writing
- :mod:`SlicerImgSuite.mrml` -- adapters to Slicer's MRML scene (the scene is always an argument)
- :mod:`SlicerImgSuite.demo` -- the phantom patient and the ``make demo`` report

The ``imgsuite`` command line (:mod:`SlicerImgSuite.cli`) gathers each job's ``commands`` module.
"""

__version__ = "0.1.0"
