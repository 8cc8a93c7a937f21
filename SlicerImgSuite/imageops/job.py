"""Image-tool jobs that take files (images or RTSTRUCTs) and write their outputs: what ``imgsuite dice`` does,
callable by the CLI, the Slicer modules and the cohort runner alike."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import require_same_grid
from ..io import atomic_path, read_image
from ..rtstruct.rasterize import Grid, guess_grid, rasterize
from ..rtstruct.structure_set import StructureSet, is_rtstruct, read_rtstruct
from .distance import dice_stats

PathLike = str | os.PathLike


def structure_masks(
    reference: PathLike,
    test: PathLike,
    *,
    reference_structure: str | None = None,
    test_structure: str | None = None,
    referenced_ct: PathLike | None = None,
) -> tuple[sitk.Image, sitk.Image]:
    """The two masks to compare: images as they are; an RTSTRUCT's named ROI rasterized (voxel centre inside,
    even-odd) on ``referenced_ct``, else on the other input's grid, else on a grid that holds both ROIs.

    Parameters
    ----------
    reference, test : path
        Mask images (or DICOM folders), or RTSTRUCT files.
    reference_structure, test_structure : str, optional
        The ROI name, needed for (and only for) an RTSTRUCT input.
    referenced_ct : path, optional
        The grid for RTSTRUCT inputs.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkUInt8) + 1, str(d / "a.nrrd"))
    >>> a, b = structure_masks(d / "a.nrrd", d / "a.nrrd")
    >>> a.GetSize(), int(sitk.GetArrayViewFromImage(b).sum())
    ((4, 4, 4), 64)
    """
    sides = [(reference, reference_structure, "reference"), (test, test_structure, "test")]
    rois, images, sets = [None, None], [None, None], [None, None]
    for k, (path, name, what) in enumerate(sides):
        if path and Path(path).is_file() and is_rtstruct(path):
            if not name:
                raise ImgSuiteError(f"an RTSTRUCT {what}: name the ROI with --{what}-structure", path)
            sets[k] = read_rtstruct(path)
            rois[k] = sets[k].roi(name)
        else:
            if name:
                raise ImgSuiteError(f"--{what}-structure is for an RTSTRUCT; this {what} is an image", path)
            if not path:
                raise ImgSuiteError(f"missing {what} image")
            images[k] = read_image(path)
    if rois == [None, None]:
        return tuple(images)
    if referenced_ct:
        grid = read_image(referenced_ct)
    elif any(image is not None for image in images):
        grid = next(image for image in images if image is not None)
    else:
        grid = guess_grid(StructureSet([r for r in rois if r is not None]))
    # contours of two Frames of Reference, or on a CT of another, were compared as if one (as compare_structure_sets)
    read = [ss for ss in sets if ss is not None]
    frames = [(ss.frame_of_reference, f"the RTSTRUCT {ss.path}") for ss in read]
    if grid.HasMetaDataKey("0020|0052"):
        frames.append((grid.GetMetaData("0020|0052").strip(), f"the grid {referenced_ct or 'image'}"))
    for ss in read:
        for frame, what in frames:
            ss.check_frame_of_reference(frame, what)
    for k, roi in enumerate(rois):
        if roi is not None:
            mask = rasterize(StructureSet([roi]), grid)[0]
            images[k] = Grid.of(grid).image(mask.full(Grid.of(grid)))
    return tuple(images)


def dice(
    reference: PathLike,
    test: PathLike,
    *,
    reference_structure: str | None = None,
    test_structure: str | None = None,
    referenced_ct: PathLike | None = None,
    output_json: PathLike | None = None,
    zcrop: tuple[float, float] | None = None,
) -> dict:
    """Dice, overlap counts and Hausdorff distances of two structures given as files (``imgsuite dice``).

    Inputs as for :func:`structure_masks`; the scores are :func:`~SlicerImgSuite.imageops.distance.dice_stats`'s,
    also written to ``output_json`` when given. ``zcrop`` = ``(zsup, zinf)`` mm: both masks keep only the
    slices of the reference's z extent less ``zsup`` at the top and ``zinf`` at the bottom (every x and y,
    where plastimatch also crops both to the reference's x/y box and so drops false positives beside it).

    Parameters
    ----------
    reference, test : path
        Each a mask or labelmap image, or an RTSTRUCT (with ``referenced_ct``), as :func:`structure_masks` reads.
    reference_structure, test_structure : str, optional
        The structure (name or label) to take from a structure set or labelmap.
    referenced_ct : path, optional
        The grid RTSTRUCTs are rasterized on.
    output_json : path, optional
        Also write the scores here (atomically).
    zcrop : (float, float), optional
        ``(zsup, zinf)`` mm, see above.

    Returns
    -------
    dict
        Dice, the overlap counts (TP, TN, FP, FN) and the Hausdorff and surface distances (mm).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> a = sitk.Image([8, 8, 8], sitk.sitkUInt8)
    >>> a[2:6, 2:6, 2:6] = 1
    >>> sitk.WriteImage(a, str(d / "a.nrrd"))
    >>> b = sitk.Image([8, 8, 8], sitk.sitkUInt8)
    >>> b[2:6, 2:6, 2:4] = 1
    >>> sitk.WriteImage(b, str(d / "b.nrrd"))
    >>> s = dice(d / "a.nrrd", d / "b.nrrd", output_json=d / "s.json")
    >>> round(s["dice"], 3), (d / "s.json").exists()
    (0.667, True)
    """
    ref, cmp = structure_masks(
        reference, test, reference_structure=reference_structure, test_structure=test_structure,
        referenced_ct=referenced_ct,
    )  # fmt: skip
    require_same_grid(ref, cmp, str(reference), str(test))
    if zcrop is not None:
        from .grid import crop, mask_bounding_box, zcrop_voxels

        try:
            voxels = zcrop_voxels(ref, mask_bounding_box(ref), *zcrop)
        except ImgSuiteError as exc:
            raise ImgSuiteError(exc.problem, reference) from None
        size = ref.GetSize()
        voxels = [0, size[0] - 1, 0, size[1] - 1, *voxels[4:]]
        ref, cmp = crop(ref, voxels), crop(cmp, voxels)
    try:
        stats = dice_stats(ref, cmp)
    except ImgSuiteError as exc:  # e.g. a 4D grid: both masks share it, so the reference names it
        raise ImgSuiteError(exc.problem, exc.path or reference) from None
    if stats["tp"] + stats["fp"] + stats["fn"] == 0:  # plastimatch prints nan too, without a word
        warnings.warn(f"{reference} and {test}: both structures are empty, so Dice and the distances are undefined "
                      "(nan)", stacklevel=2)  # fmt: skip
    if output_json:
        with atomic_path(output_json) as tmp:
            Path(tmp).write_text(json.dumps(stats, indent=1, default=float))
    return stats
