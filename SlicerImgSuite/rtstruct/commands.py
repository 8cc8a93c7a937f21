"""``imgsuite convert --input RS.dcm ...`` (structure-set outputs), ``imgsuite dvh`` and ``imgsuite gamma``.

Option names follow plastimatch (convert, dvh, gamma).
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from pathlib import Path

from ..errors import ImgSuiteError
from ..progress import progress_for, sub_progress
from .dvh import NORMALIZATIONS

# numpy, SimpleITK, pydicom and the job modules are imported inside the functions: building the
# ``imgsuite`` parser must stay cheap.

ACCURATE_OVERSAMPLE = 8


def add_convert_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("structure sets (--input RS.dcm, or a folder with CT + RTSTRUCT)")
    g.add_argument(
        "--referenced-ct", "--dicom-dir",
        help="CT folder whose grid (and UIDs, for --output-dicom) the structures (or an image) use; --dicom-dir is "
        "plastimatch's older name",
    )  # fmt: skip
    g.add_argument("--output-labelmap", help="one label value per structure (structure i -> i + 1)")
    g.add_argument("--output-ss-img", help="bit i set when the voxel is inside structure i")
    g.add_argument("--output-ss-list", help="plastimatch structure list: index|r g b|name")
    g.add_argument("--output-prefix", help="folder: one 0/1 image per structure, named after it")
    g.add_argument("--prefix-format", default="nrrd", choices=["nrrd", "mha", "nii.gz", "nii"], help="(default nrrd)")
    g.add_argument("--output-dicom", help="folder to write an RTSTRUCT into (needs --referenced-ct)")
    g.add_argument("--output-seg", help="Slicer segmentation file (.seg.nrrd)")
    g.add_argument("--output-colormap", help="Slicer colour table of the labelmap's labels (label name r g b a)")
    g.add_argument("--output-prefix-fcsv", help="folder: one Slicer .fcsv per structure with its contour points")
    g.add_argument("--prune-empty", action="store_true", help="leave out structures with no voxel on the grid")
    g.add_argument(
        "--simplify-perc",
        type=float,
        help="--output-dicom: drop this percentage of each contour's points (least-area points first)",
    )
    g.add_argument(
        "--input-ss-img",
        help="structure-set image (bits) or labelmap, with --input-ss-list: an RTSTRUCT in --output-dicom (with an "
        "image --input: the image's series and the RTSTRUCT on it)",
    )
    g.add_argument("--input-ss-list", help="with an ss-img or labelmap --input: names/colours, to write --output-dicom")
    rule = g.add_mutually_exclusive_group()
    rule.add_argument("--xor-contours", action="store_true", help="even-odd for contours on one slice (the default)")
    rule.add_argument("--union-contours", action="store_true", help="OR the contours of a slice instead of even-odd")
    g.add_argument(
        "--accurate",
        action="store_true",
        help=f"sub-voxel coverage ({ACCURATE_OVERSAMPLE}x per axis), voxels >= half covered",
    )
    g = p.add_argument_group("doses (--input RD.dcm, or --input-dose-img; values in Gy)")
    g.add_argument("--input-dose-img", help="dose: RTDOSE file, or an image (with --dose-units when it does not say)")
    g.add_argument(
        "--output-dose-img", help="the dose as a float32 image in Gy (NRRD keeps DoseUnits and the RTDOSE tags)"
    )
    g.add_argument(
        "--output-dose-dicom",
        help="the dose as an RTDOSE: a .dcm file or a folder (gets RD.dcm), in --referenced-ct's study",
    )
    add_dose_options(g)


def add_dose_options(group) -> None:
    """``--dose-units`` and ``--dose-scale`` (plastimatch's names), for every command that reads a dose."""
    from .dose import DOSE_UNITS

    group.add_argument(
        "--dose-units",
        type=str.lower,
        choices=sorted(DOSE_UNITS),
        help="units of a dose image that does not carry them (an RTDOSE does); required for any other image",
    )
    group.add_argument("--dose-scale", type=float, default=1.0, help="multiply the dose by this (default 1)")


def refuse_unused_dose_options(args, why: str) -> None:
    """Refuse ``--dose-scale``/``--dose-units`` where no dose is read: the output would silently stay unscaled."""
    given = [option for option, used in (("--dose-scale", getattr(args, "dose_scale", 1.0) != 1.0),
                                         ("--dose-units", getattr(args, "dose_units", None))) if used]  # fmt: skip
    if given:
        raise ImgSuiteError(f"{' and '.join(given)} apply to a dose, but {why}; the output would not be scaled")


def _dose_convert(args, progress) -> bool:
    """``convert`` of a dose: --input-dose-img, or an RTDOSE --input with a dose output (or --output-dicom)."""
    from ..cli_options import grid_from_args
    from .dose import convert_dose, is_rtdose_file

    source = getattr(args, "input_dose_img", None)
    dicom = getattr(args, "output_dose_dicom", None)
    wanted = getattr(args, "output_dose_img", None) or dicom
    if source is None and args.input and is_rtdose_file(args.input):
        if not wanted and args.output_dicom:
            dicom = args.output_dicom  # plastimatch writes the dose of a DICOM-RT input into --output-dicom
        if not (wanted or dicom):
            return False
        source = args.input
    if source is None:
        if wanted:
            raise ImgSuiteError(
                "--output-dose-img/--output-dose-dicom need a dose: --input-dose-img or an RTDOSE --input"
            )
        return False
    convert_dose(
        source, output_img=args.output_dose_img, output_dicom=dicom, referenced_ct=args.referenced_ct,
        units=args.dose_units, scale=args.dose_scale, grid=lambda dose: grid_from_args(args, like=dose),
        output_type=args.output_type,
    )  # fmt: skip
    progress(1.0, "done")
    return True


def _ours(args) -> bool:
    outputs = ("output_labelmap", "output_ss_img", "output_ss_list", "output_prefix", "output_dicom", "output_seg",
               "output_colormap", "output_prefix_fcsv")  # fmt: skip
    return any(getattr(args, k, None) for k in outputs)


def convert(args: argparse.Namespace, progress) -> bool:
    """The convert hook: True when ``--input`` is a structure set (or an ss-img with --input-ss-list) or a dose."""
    if _dose_convert(args, progress):
        return True
    if not _ours(args):
        return False
    from .structure_set import find_rtstruct, is_rtstruct

    if getattr(args, "input_ss_img", None) and args.input:
        return False  # an image and its structures: the image's series and an RTSTRUCT on it (io/commands.py)
    if getattr(args, "input_ss_list", None) or getattr(args, "input_ss_img", None):
        _convert_ss_img(args, progress)
        return True
    if not is_rtstruct(args.input):
        if Path(args.input).is_dir():
            try:
                find_rtstruct(args.input)
            except ImgSuiteError as exc:
                if "RTSTRUCT files" in exc.problem:  # several: say so rather than "nothing to write"
                    raise
        return False
    from .rasterize import rasterize
    from .structure_set import read_rtstruct

    ss = read_rtstruct(args.input)
    reference, ct_folder = _reference(args, ss)
    _check_outputs(args, ct_folder)
    rule = "union" if args.union_contours else "xor"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        masks = rasterize(
            ss,
            reference,
            rule=rule,
            oversample=ACCURATE_OVERSAMPLE if args.accurate else 1,
            progress=sub_progress(progress, 0.1, 0.7),
        )
    for w in caught:
        print(f"imgsuite convert: warning: {w.message}", flush=True)
    if args.prune_empty:
        masks = [m for m in masks if m.array.any()]
    _write_outputs(args, ss, masks, reference, ct_folder)
    progress(1.0, "done")
    return True


_FILE_OUTPUTS = ("output_labelmap", "output_ss_img", "output_ss_list", "output_seg", "output_colormap")
_FOLDER_OUTPUTS = ("output_prefix", "output_dicom", "output_prefix_fcsv")


def _check_outputs(args, ct_folder) -> None:
    """Refuse an impossible output before the (long) rasterization and before anything is written."""
    if args.output_dicom and ct_folder is None:
        raise ImgSuiteError(
            "--output-dicom needs --referenced-ct CT_FOLDER (the CT the RTSTRUCT points at)", args.input
        )
    for key in _FILE_OUTPUTS:
        path = getattr(args, key)
        if path and Path(path).is_dir():
            raise ImgSuiteError(f"--{key.replace('_', '-')} names a folder; give a file name", path)
    for key in _FOLDER_OUTPUTS:
        path = getattr(args, key)
        if path and Path(path).exists() and not Path(path).is_dir():
            raise ImgSuiteError(f"--{key.replace('_', '-')} names an existing file; give a folder", path)


def _write_outputs(args, ss, masks, reference, ct_folder) -> None:
    """Every requested output, all or nothing (a later failure leaves no earlier file behind)."""
    from ..io import write_image
    from ..io.atomic import write_together
    from .outputs import (
        colormap_text,
        labelmap,
        ss_image,
        ss_list_text,
        write_prefix,
        write_prefix_fcsv,
        write_seg_nrrd,
    )
    from .write import write_rtstruct

    rois = [m.roi for m in masks] if args.prune_empty else ss.rois
    if args.simplify_perc is not None:
        from .outputs import simplify_rois

        rois = simplify_rois(rois, args.simplify_perc)
    write_together(
        [
            (args.output_labelmap, lambda tmp: write_image(labelmap(masks, reference), tmp), False),
            (args.output_ss_img, lambda tmp: write_image(ss_image(masks, reference), tmp), False),
            (args.output_ss_list, lambda tmp: Path(tmp).write_text(ss_list_text(masks)), False),
            (args.output_colormap, lambda tmp: Path(tmp).write_text(colormap_text(masks)), False),
            (args.output_prefix, lambda tmp: write_prefix(masks, reference, tmp, args.prefix_format), True),
            (args.output_seg, lambda tmp: write_seg_nrrd(masks, reference, tmp), False),
            (args.output_dicom, lambda tmp: write_rtstruct(Path(tmp) / "RS.dcm", ct_folder, rois), True),
            (args.output_prefix_fcsv, lambda tmp: write_prefix_fcsv(rois, tmp), True),
        ]
    )


def _reference(args, ss):
    """The grid to rasterize on and the CT folder (if any): --referenced-ct, --fixed, --origin/..., the input folder,
    the CT beside an RTSTRUCT file (found and named, as plastimatch promises), or a guess."""
    from ..cli_options import grid_from_args
    from ..io.dicom_series import scan_folder
    from .rasterize import guess_grid

    ct_folder, series_uid = None, getattr(args, "series_uid", None)
    if args.referenced_ct:
        ct_folder = _ct_folder(args.referenced_ct)
    elif Path(args.input).is_dir() and any(s.is_image for s in scan_folder(args.input)):
        ct_folder = Path(args.input)  # plastimatch-style folder holding CT + RTSTRUCT
    elif Path(args.input).is_file() and not series_uid:
        from .study import find_referenced_ct

        found = find_referenced_ct(ss, Path(args.input).parent, subfolders=False)
        if found is not None:
            ct_folder, series_uid = found.folder, found.uid
            if not getattr(args, "quiet", False):
                print(f"imgsuite convert: using {found.text()}", file=sys.stderr)
    reference = None
    if ct_folder is not None and not getattr(args, "fixed", None) and not getattr(args, "dim", None):
        from ..io.dicom_series import select_series

        series = scan_folder(ct_folder)
        info = select_series(ct_folder, series, series_uid, getattr(args, "modality", None))
        ss.check_frame_of_reference(info.frame_of_reference, f"the CT in {ct_folder}")
        from .write import reference_series

        # only the grid is needed: slice headers, no pixel data
        reference = reference_series(info.datasets).image()
    if reference is None:
        like = guess_grid(ss, spacing=_spacing_hint(args))
        reference = grid_from_args(args, like=like) or like
    return reference, ct_folder


def _ct_folder(path) -> Path:
    """``--referenced-ct``: the CT's DICOM folder; a file there is refused with what it is."""
    path = Path(path)
    if path.is_file():
        from .study import file_modality

        what = f"a DICOM {file_modality(path)} file" if file_modality(path) else "not a DICOM file"
        raise ImgSuiteError(f"--referenced-ct names a file ({what}); give the folder holding the CT series", path)
    if not path.exists():
        raise ImgSuiteError("no such folder (--referenced-ct)", path)
    return path


def _spacing_hint(args):
    from ..cli_options import parse_numbers

    return parse_numbers(args.spacing, 3, "--spacing") if getattr(args, "spacing", None) else None


def _convert_ss_img(args, progress) -> None:
    """ss-img (uint32/uint64 bits) or labelmap + ss-list -> RTSTRUCT in --output-dicom."""
    from .write import write_rtstruct_from_masks

    if not args.output_dicom or not args.referenced_ct:
        raise ImgSuiteError(
            "--input-ss-img/--input-ss-list convert to --output-dicom only, and need --referenced-ct",
            args.input_ss_list or args.input_ss_img,
        )
    masks, colors = ss_masks(args.input_ss_img or args.input, args.input_ss_list, bits=bool(args.input_ss_img))
    if args.prune_empty:
        masks = {name: mask for name, mask in masks.items() if _any_voxel(mask)}
    write_rtstruct_from_masks(
        Path(args.output_dicom) / "RS.dcm", args.referenced_ct, masks, colors=colors, progress=progress
    )


def _any_voxel(mask) -> bool:
    import SimpleITK as sitk

    return bool(sitk.GetArrayViewFromImage(mask).any())


def ss_masks(ss_img, ss_list, bits: bool = False) -> tuple[dict, dict]:
    """Named masks and colours of a structure-set image (bits) or labelmap and its ss-list.

    ``bits``: the image holds bits whatever its type (``--input-ss-img``, plastimatch's uchar planes);
    otherwise uint32/uint64 and vector images are bits and other integers are labels (structure i = i + 1).
    """
    import numpy as np
    import SimpleITK as sitk

    from ..io import read_image
    from .outputs import masks_from_ss_image, read_ss_list

    if not ss_list:
        raise ImgSuiteError("--input-ss-img needs --input-ss-list (the names and colours of its structures)", ss_img)
    image = read_image(ss_img)
    rows = read_ss_list(ss_list)
    bits = bits or image.GetNumberOfComponentsPerPixel() > 1 or image.GetPixelID() in (sitk.sitkUInt32, sitk.sitkUInt64)
    if bits:
        arrays = masks_from_ss_image(image, max(r[0] for r in rows) + 1)
        chosen = {name: arrays[i] for i, _, name in rows}
    else:
        labels = sitk.GetArrayViewFromImage(image)
        chosen = {name: labels == i + 1 for i, _, name in rows}
    masks = {}
    for name, array in chosen.items():
        mask = sitk.GetImageFromArray(array.astype(np.uint8))
        mask.CopyInformation(image)
        masks[name] = mask
    return masks, {name: color for _, color, name in rows}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "dvh", parents=[subparsers.common_parent], help="dose-volume histograms per structure (plastimatch dvh)"
    )
    p.add_argument(
        "--input", help="study folder holding the RTSTRUCT and the RTDOSE (and the CT, used as the grid when found)"
    )
    p.add_argument("--input-dose", help="dose: RTDOSE file, or an image with --dose-units")
    p.add_argument("--input-ss-img", help="structure-set image (bits: uint32/uint64 or plastimatch's uchar planes) or labelmap (uint8/uint16)")
    p.add_argument("--input-ss-list", help="structure list for --input-ss-img")
    p.add_argument("--input-rtstruct", help="RTSTRUCT instead of ss-img/ss-list")
    p.add_argument("--referenced-ct", help="with --input-rtstruct: CT grid to rasterize on (the dose grid otherwise)")
    p.add_argument("--resample-uneven", action="store_true",
                   help="with --referenced-ct: a CT with unevenly spaced slices is resampled to even spacing "
                        "(refused otherwise)")  # fmt: skip
    p.add_argument(
        "--accurate",
        action="store_true",
        help="with --input-rtstruct: 8x8 in-plane coverage weights and 4 dose samples per slice",
    )
    p.add_argument(
        "--output-csv", help="DVH table: dose (Gy; a row is the volume at or above it) and one column per structure"
    )
    p.add_argument("--output-stats", help="per-structure statistics table (volume, min/mean/max, Dx, Vx)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--cumulative", action="store_true", help="cumulative DVH (the default)")
    kind.add_argument("--differential", action="store_true", help="differential DVH")
    p.add_argument(
        "--num-bins", type=int, help="number of bins (default: up to the maximum dose; plastimatch's default is 256)"
    )
    p.add_argument(
        "--bin-width", type=float, default=0.1, help="bin width, Gy (default 0.1; plastimatch's default is 0.5)"
    )
    add_dose_options(p)
    p.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        default="pct",
        help="DVH values: fraction of the structure (pct, plastimatch's default), cc, or voxels",
    )
    p.set_defaults(func=run_dvh, ct_series_uid=None)

    p = subparsers.add_parser(
        "gamma", parents=[subparsers.common_parent], help="gamma index between two dose images (plastimatch gamma)"
    )
    p.add_argument("image_1", help="reference dose")
    p.add_argument("image_2", help="evaluated dose")
    p.add_argument("--dose-tolerance", type=float, default=0.03, help="dose difference, fraction (default 0.03)")
    p.add_argument("--dta-tolerance", type=float, default=3.0, help="distance to agreement, mm (default 3)")
    p.add_argument("--reference-dose", type=float, help="global normalisation dose (default: reference maximum)")
    p.add_argument("--analysis-threshold", type=float, default=0.1, help="low-dose threshold, fraction (default 0.1)")
    p.add_argument("--gamma-max", type=float, default=2.0, help="largest gamma searched (default 2)")
    p.add_argument("--local-gamma", action="store_true", help="local instead of global dose difference")
    p.add_argument("--interp-search", action="store_true", help="accepted for plastimatch scripts: always on here")
    p.add_argument("--search-step", type=float, help="search lattice step, mm (default DTA/10)")
    from .dose import DOSE_UNITS

    p.add_argument(
        "--dose-units", type=str.lower, choices=sorted(DOSE_UNITS),
        help="units of dose images that do not carry them (an RTDOSE does); required for any other image",
    )  # fmt: skip
    p.add_argument("--output", help="gamma image (-1 below the threshold)")
    p.add_argument("--output-text", help="summary text file")
    p.add_argument("--output-failmap", help="uchar image: 1 where gamma > 1")
    p.add_argument("--mask", help="evaluate only the non-zero voxels of this image")
    p.add_argument("--ref-only-threshold", action="store_true", help="threshold on the reference dose alone")
    p.add_argument(
        "--compute-full-region", action="store_true", help="gamma also below the threshold (pass rate unchanged)"
    )
    p.add_argument("--resample-nn", action="store_true", help="nearest-neighbour resampling of image_2")
    p.set_defaults(func=run_gamma)


def _read_dose(path, units: str | None = None, scale: float = 1.0):
    """The dose (Gy): an RTDOSE, or an image declared as a dose; anything else (an uncertainty grid) is refused."""
    from .dose import check_dose_values, read_dose

    dose = read_dose(path, units, scale=scale)
    check_dose_values(dose, path)
    return dose


def _frame_of(dose) -> str:
    from .dose import FRAME_KEY

    return dose.GetMetaData(FRAME_KEY) if dose.HasMetaDataKey(FRAME_KEY) else ""


def _study_inputs(args: argparse.Namespace) -> None:
    """``dvh --input STUDY_DIR``: the RTSTRUCT, the RTDOSE and the structures' CT found in one folder (as
    plastimatch's ``dvh --input``); options given explicitly win. Says what it took."""
    from .study import find_study

    if not args.input:
        return
    study = find_study(args.input)
    args.input_dose = args.input_dose or str(study.dose)
    if not (args.input_ss_img or args.input_rtstruct):
        args.input_rtstruct = str(study.rtstruct)
    if study.ct is not None and not args.referenced_ct:
        args.referenced_ct, args.ct_series_uid = str(study.ct.folder), study.ct.uid
    if not args.quiet:
        grid = args.referenced_ct or "the dose grid (no CT found)"
        if study.ct is not None and args.ct_series_uid == study.ct.uid:
            grid = study.ct.text()
        print(f"imgsuite dvh: structures {args.input_rtstruct}, dose {args.input_dose}, grid {grid}", file=sys.stderr)


def run_dvh(args: argparse.Namespace) -> int:
    import SimpleITK as sitk

    from ..io import read_image
    from ..io.atomic import write_together
    from .dvh import dvh_table, refined_grid
    from .outputs import masks_from_ss_image, read_ss_list
    from .rasterize import RoiMask, rasterize
    from .structure_set import Roi, read_rtstruct

    progress = progress_for(args)
    if args.bin_width <= 0 or (args.num_bins is not None and args.num_bins < 1):
        raise ImgSuiteError("--bin-width must be > 0 and --num-bins >= 1")
    _study_inputs(args)
    if not args.input_dose:
        raise ImgSuiteError("give --input-dose (or --input STUDY_DIR)")
    dose = _read_dose(args.input_dose, args.dose_units, args.dose_scale)
    if args.input_rtstruct:
        ss = read_rtstruct(args.input_rtstruct)
        ss.check_frame_of_reference(_frame_of(dose), f"the dose {args.input_dose}")
        reference = dose
        if args.referenced_ct:
            reference = read_image(args.referenced_ct, series_uid=getattr(args, "ct_series_uid", None),
                                   resample_uneven=args.resample_uneven)  # the refusal names this option
            # as convert: a CT of another frame means the wrong scan (a dose image without a frame went unchecked)
            frame = reference.GetMetaData("0020|0052") if reference.HasMetaDataKey("0020|0052") else ""
            ss.check_frame_of_reference(frame.strip(), f"the CT in {args.referenced_ct}")
        oversample = 1
        if args.accurate:  # sub-slices get their own dose; in-plane coverage weights
            reference = refined_grid(reference, (1, 1, 4))
            oversample = (ACCURATE_OVERSAMPLE, ACCURATE_OVERSAMPLE, 1)
        masks = rasterize(ss, reference, oversample=oversample, progress=progress)
    elif args.input_ss_img and args.input_ss_list:
        reference = read_image(args.input_ss_img)
        rows = read_ss_list(args.input_ss_list)
        # as ss_masks: uint32/uint64 (ours) and vector images (plastimatch's uchar planes: a traceback) hold bits
        bits = reference.GetNumberOfComponentsPerPixel() > 1 or reference.GetPixelID() in (sitk.sitkUInt32, sitk.sitkUInt64)
        arrays = masks_from_ss_image(reference, max(r[0] for r in rows) + 1) if bits else None
        labels = None if bits else sitk.GetArrayViewFromImage(reference)
        masks = [
            RoiMask(Roi(i + 1, name, color), (0, 0, 0), arrays[i] if bits else labels == i + 1)
            for i, color, name in rows
        ]
    else:
        raise ImgSuiteError("give --input-ss-img with --input-ss-list, or --input-rtstruct")
    table = dvh_table(
        masks,
        dose,
        reference,
        bin_width=args.bin_width,
        num_bins=args.num_bins,
        cumulative=not args.differential,
        normalization=args.normalization,
    )
    stats = table.stats
    write_together(
        [
            (args.output_csv, lambda tmp: _write_dvh_csv(table, tmp), False),
            (args.output_stats, lambda tmp: _write_stats_csv(table, tmp), False),
        ]
    )
    if not args.output_csv and not args.output_stats:
        for m, s in zip(masks, stats):
            print(
                f"{m.roi.name}: {s['volume_cc']:.3f} cc, mean {s.get('mean', float('nan')):.3f} Gy, D95 {s.get('D95', float('nan')):.3f} Gy"
            )
    return 0


def _write_dvh_csv(table, path) -> None:
    """Dose (Gy) and one column per structure, a row per bin."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Dose (Gy)"] + table.names)
        for n, e in enumerate(table.edges):
            w.writerow([f"{e:g}"] + [f"{c[n]:.6g}" for c in table.curves])


def _write_stats_csv(table, path) -> None:
    """One row of statistics per structure (an empty structure has no Dx/Vx: NaN)."""
    keys = list(max(table.stats, key=len)) if table.stats else []
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["structure"] + keys)
        for name, s in zip(table.names, table.stats):
            w.writerow([name] + [f"{s.get(k, float('nan')):.6g}" for k in keys])


def run_gamma(args: argparse.Namespace) -> int:
    import SimpleITK as sitk

    from ..io import atomic_path, read_image, write_image
    from .gamma import gamma_index

    reference = _read_dose(args.image_1, args.dose_units)
    evaluation = _read_dose(args.image_2, args.dose_units)
    mask = read_image(args.mask) if args.mask else None
    gamma, rate = gamma_index(
        reference,
        evaluation,
        dose_percent=100 * args.dose_tolerance,
        dta_mm=args.dta_tolerance,
        local=args.local_gamma,
        threshold_percent=100 * args.analysis_threshold,
        reference_dose=args.reference_dose,
        max_gamma=args.gamma_max,
        resolution_mm=args.search_step,
        progress=progress_for(args),
        mask=mask,
        ref_only_threshold=args.ref_only_threshold,
        compute_full_region=args.compute_full_region,
        resample_nn=args.resample_nn,
        sources=(args.image_1, args.image_2),
    )
    text = (
        f"gamma {'local' if args.local_gamma else 'global'} {100 * args.dose_tolerance:g}%/{args.dta_tolerance:g} mm, "
        f"threshold {100 * args.analysis_threshold:g}%\npass rate: {rate:.2f} %\n"
    )
    if args.output:
        write_image(gamma, args.output)
    if args.output_failmap:
        write_image(sitk.Cast(gamma > 1.0, sitk.sitkUInt8), args.output_failmap)
    if args.output_text:
        with atomic_path(args.output_text) as tmp:
            Path(tmp).write_text(text)
    print(text, end="")
    return 0
