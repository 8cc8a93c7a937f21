"""What the Stitching module calls: the shots of a folder, and the stitched image as a Slicer volume."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ImgSuiteError
from .shots import IMAGE_SUFFIXES


def shot_paths(folder: str | os.PathLike) -> list[Path]:
    """The shots in ``folder`` in name order (images, DICOM files), or the folder itself for a projection set.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for n in ("b.png", "a.png", "a.json", "notes.txt"):
    ...     _ = (d / n).write_text("")
    >>> [p.name for p in shot_paths(d)]
    ['a.png', 'b.png']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImgSuiteError("not a folder of shots", folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and (p.suffix.lower() in IMAGE_SUFFIXES + (".dcm",)))
    if not files and any(p.suffix in (".pfm", ".raw", ".txt") for p in folder.iterdir()):
        return [folder]  # a projection set written by imgsuite drr
    if len(files) < 2:
        raise ImgSuiteError("needs at least two shots (PNG/TIFF/JPEG with sidecars, or DICOM .dcm)", folder)
    return files


def stitched_volume_node(scene, result, name: str = "Stitched"):
    """Add the stitched radiograph as a single-slice scalar volume whose spacing is the pixel size in the
    measurement plane, so Slicer's line markups measure in mm there."""
    from ..mrml.volumes import volume_node_from_image
    from .outputs import as_image

    return volume_node_from_image(scene, as_image(result), name)


def summary_text(result) -> str:
    """Seams and magnification in words, for the module's result box."""
    from .job import seam_text

    s = result.summary()
    lines = [f"{s['rows']} x {s['columns']} pixels of {s['pixel_spacing_mm'][0]:.4g} mm"]
    if result.geometry_known:
        lines.append(
            f"measurement plane {s['plane_distance_mm']} mm from the source, magnification {s['magnification_at_plane']}"
        )
    else:
        lines.append("no geometry: spacing at the detector, magnification not corrected")
    lines += [seam_text(seam) for seam in s["seams"]]
    return "\n".join(lines)
