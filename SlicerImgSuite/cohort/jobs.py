"""What one cohort case runs: a thin call into the job function the CLI uses.

Each job takes ``(case, folder, options, stage)``: ``case`` maps input roles to paths (read by the
worker itself), ``folder`` is the case's (staging) output folder, ``options`` the job's options,
``stage(name)`` names the step so that a failure's error row says where it happened. A job returns
small rows (dicts), one per structure (or image, or registration stage).

This module is the one place where the cohort layer imports the job functions of ``rtstruct``,
``registration`` and ``segmentation``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ImgSuiteError

DVH_D_PERCENTS = (98, 95, 50, 2)
DVH_V_DOSES = tuple(range(5, 75, 5))  # V5 ... V70 Gy


def _need(case: dict, key: str, job: str) -> str:
    value = case.get(key)
    if not value:
        raise ImgSuiteError(f"cohort {job} needs a {key!r} path for case {case.get('case')!r}")
    return str(value)


def dvh_job(case: dict, folder: Path, options: dict, stage) -> list[dict]:
    """Dose statistics of every structure of ``case['rtstruct']`` under every dose in ``case['dose']``.

    ``case['dose']`` holds one RTDOSE path or several separated by ``;``. Structures are rasterized
    on ``case['ct']`` when given (as ``imgsuite dvh --referenced-ct``), else on the dose grid; the
    numbers are those of ``imgsuite dvh --input-rtstruct ... --output-stats``.
    """
    import numpy as np
    import pydicom

    from ..io import read_image
    from ..rtstruct.dose import read_rtdose
    from ..rtstruct.dvh import dose_samples, dose_statistics
    from ..rtstruct.rasterize import rasterize
    from ..rtstruct.structure_set import read_rtstruct

    rtstruct = _need(case, "rtstruct", "dvh")
    doses = [d for d in _need(case, "dose", "dvh").split(";") if d]
    stage("read RTSTRUCT")
    ss = read_rtstruct(rtstruct)
    reference = None
    if case.get("ct"):
        stage("read CT")
        reference = read_image(case["ct"])
    d_percents = options.get("d_percents", DVH_D_PERCENTS)
    v_doses = options.get("v_doses", DVH_V_DOSES)
    rows = []
    for dose_path in doses:
        stage(f"read dose {Path(dose_path).name}")
        header = pydicom.dcmread(dose_path, stop_before_pixels=True, specific_tags=["FrameOfReferenceUID"])
        dose = read_rtdose(dose_path)
        ss.check_frame_of_reference(str(header.get("FrameOfReferenceUID", "")), f"the dose {dose_path}")
        grid = reference if reference is not None else dose
        stage("rasterize")
        masks = rasterize(ss, grid)
        stage("dose statistics")
        for m in masks:
            d, v = dose_samples(m, dose, grid)
            s = dose_statistics(d, v, d_percents=d_percents, v_doses=v_doses)
            row = {"case": case["case"], "structure": m.roi.name, "dose": dose_path, "volume_cc": s["volume_cc"]}
            row |= {"mean": s["mean"], "min": s["min"], "max": s["max"]}
            row |= {f"D{p:g}": s.get(f"D{p:g}", np.nan) for p in d_percents}
            row |= {f"V{g:g}Gy": s.get(f"V{g:g}Gy", np.nan) for g in v_doses}
            rows.append(row)
    return rows


def convert_job(case: dict, folder: Path, options: dict, stage) -> list[dict]:
    """``imgsuite convert --input RS --referenced-ct CT --output-labelmap ... --output-seg ...`` for one case.

    Writes ``labelmap.nrrd`` (structure i -> i + 1, later structures over earlier ones),
    ``structures.nrrd`` (ss-img: bit i for structure i, nothing lost to overlaps), ``structures.txt``
    (plastimatch ss-list) and ``structures.seg.nrrd`` into the case folder; one row per structure
    with its label and its voxels (from the ss-img).
    """
    import SimpleITK as sitk

    from ..cli import build_parser
    from ..rtstruct.commands import convert
    from ..rtstruct.outputs import masks_from_ss_image

    rtstruct = _need(case, "rtstruct", "convert")
    argv = ["convert", "--input", rtstruct, "--output-labelmap", str(folder / "labelmap.nrrd")]
    argv += ["--output-ss-img", str(folder / "structures.nrrd"), "--output-ss-list", str(folder / "structures.txt")]
    argv += ["--output-seg", str(folder / "structures.seg.nrrd")]
    argv += ["--referenced-ct", case["ct"]] if case.get("ct") else []
    argv += ["--union-contours"] if options.get("union_contours") else []
    argv += ["--accurate"] if options.get("accurate") else []
    args = build_parser("convert").parse_args(argv)  # the command's own defaults, as `imgsuite convert` has them
    stage("convert")
    if not convert(args, lambda f, m="": None):
        raise ImgSuiteError("not an RTSTRUCT", rtstruct)
    listed = [line.split("|", 2) for line in (folder / "structures.txt").read_text().splitlines()]
    bits = masks_from_ss_image(sitk.ReadImage(str(folder / "structures.nrrd")), len(listed))
    return [
        {"case": case["case"], "structure": name, "label": int(i) + 1, "voxels": int(bits[int(i)].sum())}
        for i, _, name in listed
    ]


def register_job(case: dict, folder: Path, options: dict, stage) -> list[dict]:
    """Run the command-file template ``options['template']`` with this case's paths filled in.

    The template is a plastimatch command file whose values may hold ``{fixed}``, ``{moving}``
    (any manifest column) and ``{output}`` (the case's output folder).
    """
    from ..registration.cmdfile import parse_command_file
    from ..registration.job import register_from_command_file

    template = options.get("template")
    if not template:
        raise ImgSuiteError("cohort register needs --command-file TEMPLATE")
    stage("fill command file")
    fields = {k: str(v) for k, v in case.items() if v is not None} | {"output": str(folder)}
    try:
        text = Path(template).read_text().format_map(fields)
    except KeyError as exc:
        raise ImgSuiteError(f"{{{exc.args[0]}}} is neither a manifest column nor {{output}}", template) from None
    (folder / "register.txt").write_text(text)
    cf = parse_command_file(text, folder / "register.txt")
    stage("register")
    result = register_from_command_file(cf)
    return [{"case": case["case"], "stage": i + 1, "report": r.line()} for i, r in enumerate(result.stages)]


def nuclei_job(case: dict, folder: Path, options: dict, stage) -> list[dict]:
    """``imgsuite nuclei`` on one image of a plate (``case['image']``), outputs into the case folder."""
    from ..segmentation.nuclei_job import NucleiOptions, analyze_nuclei

    image = _need(case, "image", "nuclei")
    stage("nuclei")
    results, _ = analyze_nuclei(image, folder, NucleiOptions(**options))
    return [
        {"case": case["case"], "image": r.stem, "frame": t, "nuclei": int(n)}
        for r in results
        for t, n in enumerate(r.counts)
    ]


def compare_structures_job(case: dict, folder: Path, options: dict, stage) -> list[dict]:
    """``imgsuite compare-structures`` of ``case['reference']`` and ``case['test']`` (on ``case['ct']`` when given):
    ``comparison.json`` in the case folder; one row per matched pair with every metric, and one row per
    structure left unmatched (``matched`` False), so a missing structure is visible in the results table."""
    from ..review.compare import compare_structure_sets

    reference = _need(case, "reference", "compare-structures")
    test = _need(case, "test", "compare-structures")
    stage("compare")
    comparison = compare_structure_sets(
        reference,
        test,
        referenced_ct=case.get("ct") or None,
        tolerance_mm=float(options.get("tolerance", 2.0)),
        name_map=options.get("name_map") or None,
    )
    (folder / "comparison.json").write_text(comparison.to_json())
    rows = [{"case": case["case"], "matched": True, **row} for row in comparison.to_dict()["structures"]]
    rows += [{"case": case["case"], "matched": False, "reference": n} for n in comparison.unmatched_reference]
    rows += [{"case": case["case"], "matched": False, "test": n} for n in comparison.unmatched_test]
    return rows


JOBS = {
    "dvh": dvh_job,
    "convert": convert_job,
    "register": register_job,
    "nuclei": nuclei_job,
    "compare-structures": compare_structures_job,
}
# what each job imports: a worker loads it once when it joins (cohort_client's plugin), not in its first case
JOB_MODULES = {
    "dvh": ("pydicom", "SimpleITK", "SlicerImgSuite.io", "SlicerImgSuite.rtstruct.dose",
            "SlicerImgSuite.rtstruct.dvh", "SlicerImgSuite.rtstruct.rasterize", "SlicerImgSuite.rtstruct.structure_set"),
    "convert": ("SimpleITK", "SlicerImgSuite.rtstruct.commands", "SlicerImgSuite.rtstruct.outputs"),
    "register": ("SlicerImgSuite.registration.cmdfile", "SlicerImgSuite.registration.job"),
    "nuclei": ("SlicerImgSuite.segmentation.nuclei_job",),
    "compare-structures": ("SlicerImgSuite.review.compare",),
}  # fmt: skip
# the paths of a case that the job reads: its content hash decides what --resume skips
INPUT_KEYS = {
    "dvh": ("rtstruct", "dose", "ct"),
    "convert": ("rtstruct", "ct"),
    "register": None,
    "nuclei": ("image",),
    "compare-structures": ("reference", "test", "ct"),
}
