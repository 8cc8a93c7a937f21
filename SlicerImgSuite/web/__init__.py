"""Views of an MRML scene without the desktop application: offscreen pictures and a browser viewer.

Both use ``trame-slicer`` (the ``web`` extra), which draws the scene with Slicer's own displayable
managers, so a picture looks like Slicer's slice and 3D views: CT with structure outlines.

- :func:`SlicerImgSuite.web.render.render_views`: axial / coronal / 3D views of a scene, ``.mrb`` or
  image, rendered offscreen into one PNG (demo report, ``Resources/Screenshots``).
- :func:`SlicerImgSuite.web.serve.serve` (``imgsuite view``): the same scene served to a browser.

VTK, slicer-core and trame are imported inside the functions, so importing this package is cheap.
"""
