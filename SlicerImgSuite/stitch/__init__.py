"""Panoramic stitching of radiographs (long-leg and full-spine "mosaic" radiography).

When the anatomy is longer than the panel, several overlapping exposures ("shots", top to bottom) are joined
into one image on a **measurement plane**: a plane parallel to the panel at a stated distance from the source
(the table top or the object), where lengths are measured. Each shot is a cone-beam view
(:class:`SlicerImgSuite.tomo.geometry.Geometry`), so one resampling serves both acquisition modes:

- *parallel*: tube and panel translate together; each shot has its own source.
- *angled*: the tube stays at one focus and tilts while the panel translates.

Overlaps are placed from the geometry alone (``geometry``), refined on the anatomy (``image``: normalised
cross-correlation, insensitive to exposure differences) or on a radiopaque ruler's graduation marks
(``ruler``). Modules:

- :mod:`.shots` — reading shots (DICOM DX/CR, PNG/TIFF with a JSON sidecar, a projection set of ``imgsuite drr``).
- :mod:`.plane` — the measurement plane and the resampling of a shot onto it.
- :mod:`.align` — image- and ruler-based registration of the overlaps.
- :mod:`.blend` — exposure matching and blending (linear feather or multi-band).
- :mod:`.job` — :func:`stitch_radiographs`, the job the CLI and the Slicer module call.
- :mod:`.phantom` — a long phantom with markers at known positions, rendered as overlapping shots.
"""

from ..choices import STITCH_BLENDS as BLENDS
from ..choices import STITCH_METHODS as METHODS
from ..choices import STITCH_MODES as MODES

__all__ = ["BLENDS", "METHODS", "MODES"]
