"""Hostile option VALUES (NaN, infinity, 0, negative, huge) on ``imgsuite`` commands: each is refused with exit 2,
one line naming the option, no traceback and nothing written.

Every case here was a traceback (a TypeError, ZeroDivisionError, OverflowError or a multi-terabyte allocation) or a
silent wrong number (a NaN threshold that marks no voxel, a 300 % gamma dose tolerance, a NaN grid origin) before
the option checks in the job functions; the sweep that found them runs every numeric option of every command.
"""

from __future__ import annotations

import shlex

import fuzz_cases
import numpy as np
import pytest
import SimpleITK as sitk
import tifffile

from SlicerImgSuite.cli import main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("option_values")
    base = {k: str(v) for k, v in fuzz_cases.make_base(root / "base").items()}
    fixed = sitk.ReadImage(base["fixed"])
    sitk.WriteImage(sitk.Cast(fixed > 30, sitk.sitkUInt8), str(root / "mask.mha"))
    for name, factor in (("dose", 0.6), ("dose2", 0.61)):
        sitk.WriteImage(sitk.Cast(fixed, sitk.sitkFloat32) * factor, str(root / f"{name}.mha"))
    arr = np.zeros(fixed.GetSize()[::-1] + (3,))
    arr[..., 0] = 1.0
    field = sitk.GetImageFromArray(arr, isVector=True)
    field.CopyInformation(fixed)
    sitk.WriteImage(field, str(root / "vf.mha"))
    (root / "moved.txt").write_text("1 0 0\n11 5 3\n-3 6 2\n")
    cells = np.zeros((64, 64), np.uint16)
    cells[10:20, 10:20] = cells[35:47, 30:44] = 800
    tifffile.imwrite(root / "cells.tif", cells)
    base.update({k: str(root / f) for k, f in (("mask", "mask.mha"), ("dose", "dose.mha"), ("dose2", "dose2.mha"),
                                                ("vf", "vf.mha"), ("moved", "moved.txt"), ("cells", "cells.tif"))})  # fmt: skip
    return base


# (command line with {name} inputs and {out} the output folder, the option that must be named)
CASES = [
    ("convert --input {fixed} --output-img {out}/o.mha --spacing 0", "--spacing"),
    ("convert --input {fixed} --output-img {out}/o.mha --spacing nan", "--spacing"),
    ("convert --input {fixed} --output-img {out}/o.mha --dim 1e12", "--dim"),
    ("convert --input {fixed} --output-img {out}/o.mha --dim inf", "--dim"),
    ("convert --input {fixed} --output-img {out}/o.mha --origin nan", "--origin"),
    ("resample --input {fixed} --output {out}/o.mha --subsample inf", "--subsample"),
    ("resample --input {fixed} --output {out}/o.mha --spacing inf", "--spacing"),
    ("crop --input {fixed} --output {out}/o.mha --voxels=inf", "--voxels"),
    ("synth --output {out}/o.mha --dim 1e12", "--dim"),
    ("synth --output {out}/o.mha --dim 8 --spacing nan", "--spacing"),
    ("xf-invert --input {vf} --output {out}/o.mha --spacing 0", "--spacing"),
    ("warp --input {moving} --xf {vf} --output-img {out}/o.mha --dim 1e12", "--dim"),
    (
        "lm-warp --fixed-landmarks {landmarks} --moving-landmarks {moved} --input-image {moving} "
        "--output-img {out}/o.mha --spacing nan",
        "--spacing",
    ),
    (
        "lm-warp --fixed-landmarks {landmarks} --moving-landmarks {moved} --input-image {moving} "
        "--output-img {out}/o.mha --radius inf",
        "--radius",
    ),
    (
        "lm-warp --fixed-landmarks {landmarks} --moving-landmarks {moved} --input-image {moving} "
        "--output-img {out}/o.mha --stiffness -1",
        "--stiffness",
    ),
    ("gamma {dose} {dose2} --dose-units gy --output {out}/o.mha --dta-tolerance 0", "--dta-tolerance"),
    ("gamma {dose} {dose2} --dose-units gy --output {out}/o.mha --dta-tolerance nan", "--dta-tolerance"),
    ("gamma {dose} {dose2} --dose-units gy --output {out}/o.mha --gamma-max inf", "--gamma-max"),
    ("gamma {dose} {dose2} --dose-units gy --output {out}/o.mha --gamma-max 1e12", "--gamma-max"),
    ("gamma {dose} {dose2} --dose-units gy --output {out}/o.mha --dose-tolerance 3", "--dose-tolerance"),
    ("gamma {dose} {dose2} --dose-units gy --output {out}/o.mha --dose-tolerance nan", "--dose-tolerance"),
    ("gamma {dose} {dose2} --dose-units gy --output {out}/o.mha --analysis-threshold nan", "--analysis-threshold"),
    ("gamma {dose} {dose2} --dose-units gy --output {out}/o.mha --search-step nan", "--search-step"),
    ("gamma {dose} {dose2} --dose-units gy --output {out}/o.mha --reference-dose -1", "--reference-dose"),
    (
        "dvh --input-dose {rd} --input-rtstruct {rs} --referenced-ct {ct} --output-csv {out}/o.csv --bin-width nan",
        "--bin-width",
    ),
    (
        "dvh --input-dose {rd} --input-rtstruct {rs} --referenced-ct {ct} --output-csv {out}/o.csv --bin-width inf",
        "--bin-width",
    ),
    (
        "dvh --input-dose {rd} --input-rtstruct {rs} --referenced-ct {ct} --output-csv {out}/o.csv --dose-scale 1e12",
        "--dose-scale",
    ),
    ("segment --input {ct} --output-img {out}/o.mha --couch-radius nan", "--couch-radius"),
    ("segment --input {ct} --output-img {out}/o.mha --couch-radius 1e12", "--couch-radius"),
    ("segment --input {ct} --output-img {out}/o.mha --bottom nan", "--bottom"),
    ("segment --input {ct} --output-img {out}/o.mha --fill-options 0", "--fill-options"),
    ("filter {fixed} --output {out}/o.mha --gauss-width inf", "--gauss-width"),
    ("filter {fixed} --output {out}/o.mha --gauss-width 1e12", "--gauss-width"),
    ("thumbnail --input {fixed} --output {out}/o.png --dim -1", "--dim"),
    ("thumbnail --input {fixed} --output {out}/o.png --spacing -1", "--spacing"),
    ("thumbnail --input {fixed} --output {out}/o.png --loc 10 --window nan", "--window"),
    ("drr --input {fixed} --output {out}/p --dim 0 --detector-size '100 80'", "--dim"),
    ("drr --input {fixed} --output {out}/p --dim 1e12 --detector-size '100 80'", "--dim"),
    ("drr --input {fixed} --output {out}/p --dim '16 12' --detector-size '100 80' --sid nan", "--sid"),
    (
        "drr --input {fixed} --output {out}/p --dim '16 12' --detector-size '100 80' --intensity-scale nan",
        "--intensity-scale",
    ),
    ("fdk -I {cone} -O {out}/o.nrrd -r inf -z 100 100 50", "--dim"),
    ("drr --input {fixed} --output {out}/p --dim '16 12' --detector-size '100 80' --num-angles -1", "--num-angles"),
    ("synth --output {out}/o.mha --dim 8 --pattern noise --noise-std nan", "--noise-std"),
    ("synth --output {out}/o.mha --dim 8 --pattern dose --penumbra nan", "--penumbra"),
    ("synth --output {out}/o.mha --dim 8 --foreground inf", "--foreground"),
    ("fdk -I {cone} -O {out}/o.nrrd -r '8 8 4' -z '100 100 50' --image-range '-1 -1'", "--image-range"),
    ("drr --input {fixed} --output {out}/p --dim '16 12' --detector-size '100 80' --sweep linear --views 0", "--views"),
    (
        "drr --input {fixed} --output {out}/p --dim '16 12' --detector-size '100 80' --sweep linear --sweep-angle 1e12",
        "--sweep-angle",
    ),
    ("synth-vf --output {out}/o.mha --fixed {fixed} --xf-gauss --gauss-std 0", "--gauss-std"),
    ("synth-vf --output {out}/o.mha --fixed {fixed} --xf-radial --radial-radius 0", "--radial-radius"),
    ("threshold --input {fixed} --output {out}/o.mha --above nan", "--above"),
    ("scale {fixed} --weight nan --output {out}/o.mha", "--weight"),
    ("add {fixed} {moving} --output {out}/o.mha --weight nan", "--weight"),
    ("adjust --input {fixed} --output {out}/o.mha --scale inf", "--scale"),
    ("bbox {mask} --output {out}/o.mha --margin nan", "--margin"),
    ("dmap --input {mask} --output {out}/o.mha --maximum-distance nan", "--maximum-distance"),
    (
        "compare-structures --reference {rs} --test {rs} --referenced-ct {ct} --output-json {out}/o.json "
        "--workers 1 --tolerance inf",
        "--tolerance",
    ),
    # the default method (the model on 2D planes) takes a probability: an intensity level found no nucleus, silently
    ("nuclei --input {cells} --output {out}/n --threshold 300", "--threshold"),
    ("nuclei --input {cells} --output {out}/n --method threshold --threshold 300 --max-area 0", "--max-area"),
    ("nuclei --input {cells} --output {out}/n --method threshold --threshold 300 --memory -1", "--memory"),
    # a core of the whole nucleus leaves no interior class: a model that finds nothing
    ("nuclei-train --images {cells} --masks {cells} --output {out}/m.onnx --epochs 1 --core 1", "--core"),
    # averaging from past the last iteration would average nothing (and keep an untrained model)
    ("nuclei-train --images {cells} --masks {cells} --output {out}/m.onnx --epochs 1 --average-from 5",
     "--average-from"),
    # a dose scale or unit where no dose is read: the output came out unscaled, silently
    ("convert --input {rd} --output-img {out}/o.mha --dose-scale 2", "--dose-scale"),
    ("warp --input {rd} --xf {vf} --output-img {out}/o.mha --dose-scale 2", "--dose-scale"),
    ("warp --input {fixed} --xf {vf} --output-img {out}/o.mha --dose-units gy", "--dose-units"),
]


@pytest.mark.parametrize("line, option", CASES, ids=[f"{c.split()[0]} {o} {k}" for k, (c, o) in enumerate(CASES)])
def test_hostile_value_is_refused(inputs, tmp_path, capsys, line, option):
    out = tmp_path / "out"
    out.mkdir()
    argv = [word.format(out=out, **inputs) for word in shlex.split(line)]
    try:
        code = main([*argv, "--quiet"])
    except SystemExit as exc:  # argparse's own refusals exit 2 as well
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "unrecognized arguments" not in err, err
    assert option in err, err
    assert not list(out.iterdir()), "output written after a refusal"
