"""Second audit pass, as a new user on data the project never made (IBSI STS_001 CT and RTSTRUCT), against
plastimatch 1.9.4: DRR/FDK projection files, registration command files, the reviewed RTSTRUCT export. Values
that parse but are implausible are refused naming the file and the line, key or option (exit 2, no traceback,
nothing written); keys that mean something else in plastimatch now mean what they mean there; numbers that came
out wrong (align_center, a stage that made things worse, renumbered ROIs) match the anchor. Each test failed on
main.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from test_audit_values import _refused

from SlicerImgSuite.cli import main

STS_CT = ("ibsi-sts-ct-rtstruct", "STS_001", "nifti", "CT_image.nii.gz")


def test_register_fractional_res_is_refused(tmp_path, shared_data, capsys):
    """plastimatch's ``res = 1.5`` resamples by 1.5 voxels; it was rounded to 2 here, silently."""
    ct = shared_data.joinpath(*STS_CT)
    out = tmp_path / "warped.nii.gz"
    cmd = tmp_path / "reg.txt"
    text = f"[GLOBAL]\nfixed = {ct}\nmoving = {ct}\nimg_out = {out}\n[STAGE]\nxform = translation\nres = 1.5 1.5 1\n"
    cmd.write_text(text)
    _refused(["register", cmd], capsys, out, "reg.txt", "line 7", "res")


@pytest.fixture(scope="module")
def sts_views(tmp_path_factory, shared_data):
    """12 plastimatch-format DRRs of the real STS_001 CT (isocentre in the tumour), as a folder and as a stack."""
    work = tmp_path_factory.mktemp("views")
    ct, opts = shared_data.joinpath(*STS_CT), ["-a", "12", "-N", "30", "-r", "32 32", "-z", "200 200"]
    assert main(["drr", "-q", *opts, "-o", "72 12 -786", "-O", str(work / "set/img"), str(ct)]) == 0
    assert main(["drr", "-q", *opts, "-o", "72 12 -786", "-O", str(work / "stack.mha"), str(ct)]) == 0
    return work


FDK = ["-r", "16 16 4", "-z", "160 160 40"]


@pytest.mark.parametrize("pixel_size", [[1e-300, 6.25], [6.25, 1e20], [-6.25, 6.25]])
def test_stack_geometry_with_an_absurd_pixel_size_is_refused_naming_the_json(sts_views, tmp_path, capsys, pixel_size):
    """pixel_size 1e-300 mm in the stack's .json was a ZeroDivisionError traceback in fdk's ramp filter; the
    negative one was refused without naming the file."""
    shutil.copy(sts_views / "stack.mha", tmp_path / "p.mha")
    geometry = json.loads((sts_views / "stack.json").read_text())
    geometry["pixel_size"] = pixel_size
    (tmp_path / "p.json").write_text(json.dumps(geometry))
    out = tmp_path / "fdk.mha"
    _refused(["fdk", "-I", tmp_path / "p.mha", "-O", out, *FDK], capsys, out, "p.json", "pixel")


def test_matrix_files_giving_absurd_pixels_are_refused(sts_views, tmp_path, capsys):
    """Every .txt's matrix rows 1-2 scaled by 1e12 (pixels of 4e-12 mm): fdk wrote a volume, exit 0."""
    shutil.copytree(sts_views / "set", tmp_path / "set")
    for txt in (tmp_path / "set").glob("*.txt"):
        lines = txt.read_text().splitlines()
        for i in (1, 2):
            lines[i] = " ".join(f"{float(w) * 1e12:18.8e}" for w in lines[i].split())
        txt.write_text("\n".join(lines) + "\n")
    out = tmp_path / "fdk.mha"
    _refused(["fdk", "-I", tmp_path / "set", "-O", out, *FDK], capsys, out, "img0000.txt", "lines 2-3")


STS_DICOM = ("ibsi-sts-ct-rtstruct", "STS_001", "dicom")
# (ROI Number, name, colour, interpreted type): the IBSI GTV's contours under three ROIs numbered out of order
STS_ROIS = [(5, "GTV_Mass_CT", [255, 0, 0], "GTV"), (9, "CTV", [0, 255, 0], "CTV"), (2, "PTV", [0, 0, 255], "PTV")]


def _three_roi_rtstruct(source, path):
    ds = pydicom.dcmread(source)
    roi, contour, observation = (
        ds[tag][0] for tag in ("StructureSetROISequence", "ROIContourSequence", "RTROIObservationsSequence")
    )
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    for i, (number, name, colour, kind) in enumerate(STS_ROIS):
        r, c, o = (copy.deepcopy(x) for x in (roi, contour, observation))
        r.ROINumber, r.ROIName = number, name
        c.ReferencedROINumber, c.ROIDisplayColor = number, colour
        o.ObservationNumber, o.ReferencedROINumber, o.RTROIInterpretedType = i + 1, number, kind
        ds.StructureSetROISequence.append(r)
        ds.ROIContourSequence.append(c)
        ds.RTROIObservationsSequence.append(o)
    ds.save_as(path)


def test_reviewed_export_keeps_roi_numbers_names_colours_and_contours(tmp_path, shared_data):
    """Approved-only export of the real IBSI RTSTRUCT: only CTV, with its ROI Number 9 (was renumbered 1), its
    colour and type; the full export keeps 5, 9, 2; dciodvfy finds no error; read back, Dice 1 on the CT."""
    from SlicerImgSuite.io.images import read_image
    from SlicerImgSuite.review.export import export_reviewed_rtstruct
    from SlicerImgSuite.review.state import ReviewState
    from SlicerImgSuite.rtstruct.rasterize import Grid, rasterize
    from SlicerImgSuite.rtstruct.structure_set import read_rtstruct

    data = shared_data.joinpath(*STS_DICOM)
    _three_roi_rtstruct(data / "mask" / "RS.dcm", tmp_path / "RS3.dcm")
    state = ReviewState([name for _, name, _, _ in STS_ROIS])
    state.set_status("CTV", "approved", reviewer="Dr A")
    state.set_status("PTV", "rejected", reviewer="Dr A")
    for out, approved_only, kept in (("only.dcm", True, STS_ROIS[1:2]), ("all.dcm", False, STS_ROIS)):
        export_reviewed_rtstruct(
            tmp_path / out, data / "image", tmp_path / "RS3.dcm", state, approved_only=approved_only
        )
        ds = pydicom.dcmread(tmp_path / out)
        rois = [(int(r.ROINumber), r.ROIName) for r in ds.StructureSetROISequence]
        assert rois == [(number, name) for number, name, _, _ in kept]
        colours = {int(c.ReferencedROINumber): [int(v) for v in c.ROIDisplayColor] for c in ds.ROIContourSequence}
        assert colours == {number: colour for number, _, colour, _ in kept}
        kinds = {int(o.ReferencedROINumber): o.RTROIInterpretedType for o in ds.RTROIObservationsSequence}
        assert kinds == {number: kind for number, _, _, kind in kept}
        dciodvfy = subprocess.run(["dciodvfy", str(tmp_path / out)], capture_output=True, text=True, timeout=120)
        assert not [line for line in (dciodvfy.stdout + dciodvfy.stderr).splitlines() if line.startswith("Error")]
    assert pydicom.dcmread(tmp_path / "only.dcm").ApprovalStatus == "APPROVED"
    ct = read_image(data / "image")
    grid = Grid.of(ct)
    (before,) = rasterize(read_rtstruct(data / "mask" / "RS.dcm"), ct)
    (after,) = rasterize(read_rtstruct(tmp_path / "only.dcm"), ct)
    a, b = before.full(grid).astype(bool), after.full(grid).astype(bool)
    assert a.sum() == 117145  # IBSI's reference mask of STS_001
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) == 1.0


def _translation(path):
    line = next(w for w in path.read_text().splitlines() if w.startswith("Parameters:"))
    return np.array([float(w) for w in line.split()[1:]][-3:])


def test_align_center_moves_by_the_centres_difference_as_plastimatch(tmp_path, shared_data):
    """The STS_001 CT against itself moved by (30, -20, 0) mm: plastimatch's align_center finds (30, -20, 0);
    ours gave (0, 0, 0): the moving image was resampled onto the fixed grid first, so it had the fixed centre."""
    ct = shared_data.joinpath(*STS_CT)
    moving = sitk.ReadImage(str(ct))
    moving.SetOrigin((np.array(moving.GetOrigin()) + [30.0, -20.0, 0.0]).tolist())
    sitk.WriteImage(moving, str(tmp_path / "moving.nii.gz"))
    for who in ("plastimatch", "imgsuite"):
        (tmp_path / f"{who}.cmd").write_text(
            f"[GLOBAL]\nfixed = {ct}\nmoving = {tmp_path / 'moving.nii.gz'}\nxform_out = {tmp_path / who}.txt\n"
            "[STAGE]\nxform = align_center\n"
        )
    subprocess.run(["plastimatch", "register", str(tmp_path / "plastimatch.cmd")], check=True, capture_output=True)
    assert main(["register", "-q", str(tmp_path / "imgsuite.cmd")]) == 0
    theirs = _translation(tmp_path / "plastimatch.txt")
    np.testing.assert_allclose(theirs, [30, -20, 0], atol=1e-6)
    np.testing.assert_allclose(_translation(tmp_path / "imgsuite.txt"), theirs, atol=1e-6)
    # the job function, both flavours; after a start (mabs pre-alignment) the start is kept, as before
    from SlicerImgSuite.registration.engine import register_images

    fixed = sitk.ReadImage(str(ct))
    centre = fixed.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in fixed.GetSize()])
    for xform in ("align_center", "align_center_of_gravity"):
        result = register_images(fixed, moving, [{"xform": xform}])
        np.testing.assert_allclose(result.transform.TransformPoint(centre), np.add(centre, [30, -20, 0]), atol=1e-6)
    start = sitk.TranslationTransform(3, [30.0, -20.0, 0.0])
    kept = register_images(fixed, moving, [{"xform": "align_center"}], initial_transform=start)
    np.testing.assert_allclose(kept.transform.TransformPoint(centre), np.add(centre, [30, -20, 0]), atol=1e-6)


def test_background_val_is_the_fill_value_as_in_plastimatch(tmp_path, shared_data):
    """plastimatch reads ``background_val`` as ``default_value``: the warped image's fill. Here it was a metric
    threshold, so the half of the output that the cropped moving CT does not cover was 0 HU, not -1234."""
    ct = shared_data.joinpath(*STS_CT)
    sitk.WriteImage(sitk.ReadImage(str(ct))[:100], str(tmp_path / "half.nii.gz"))
    fills = {}
    for who in ("plastimatch", "imgsuite"):
        out = tmp_path / f"{who}.nii.gz"
        (tmp_path / f"{who}.cmd").write_text(
            f"[GLOBAL]\nfixed = {ct}\nmoving = {tmp_path / 'half.nii.gz'}\nimg_out = {out}\nbackground_val = -1234\n"
            "[STAGE]\nxform = align_center\n"
        )
        cmd = tmp_path / f"{who}.cmd"
        if who == "plastimatch":
            subprocess.run(["plastimatch", "register", str(cmd)], check=True, capture_output=True)
        else:
            assert main(["register", "-q", str(cmd)]) == 0
        fills[who] = sitk.GetArrayFromImage(sitk.ReadImage(str(out))) == -1234
    assert fills["plastimatch"].mean() > 0.4  # the anchor fills half of the fixed grid
    assert np.array_equal(fills["imgsuite"], fills["plastimatch"])


def test_a_linear_stage_never_returns_a_worse_place_than_its_start(tmp_path, shared_data):
    """The IBSI CT against its own left half, already aligned: one translation stage of 3 iterations left the
    optimum by a whole regular step (MSE 0 -> 1880 on the covered half, a warning only); plastimatch keeps 0."""
    from SlicerImgSuite.registration.engine import covered_mse, register_images

    fixed = sitk.Cast(sitk.ReadImage(str(shared_data.joinpath(*STS_CT))), sitk.sitkFloat32)
    half = fixed[:100]
    result = register_images(fixed, half, [{"xform": "translation", "max_its": 3}])
    assert covered_mse(fixed, half, result.transform)[0] < 1e-6
    assert any("did not improve" in w for w in result.warnings)  # still said


def test_a_panel_with_parallel_axes_is_refused_naming_the_json(sts_views, tmp_path, capsys):
    """A view whose u axis equals its v axis has no panel plane: the error named no file and printed every
    view's axis (a 36-line list)."""
    shutil.copy(sts_views / "stack.mha", tmp_path / "p.mha")
    geometry = json.loads((sts_views / "stack.json").read_text())
    geometry["views"][3]["u"] = geometry["views"][3]["v"]
    (tmp_path / "p.json").write_text(json.dumps(geometry))
    out = tmp_path / "fdk.mha"
    _refused(["fdk", "-I", tmp_path / "p.mha", "-O", out, *FDK], capsys, out, "p.json", "view 3", "parallel")


@pytest.mark.parametrize(
    ("options", "named"),
    [(["-n", "0 0 0"], "--nrm"), (["--vup", "0 0 0"], "--vup"), (["-n", "0 0 1", "--vup", "0 0 2"], "--vup")],
)
def test_drr_degenerate_directions_name_the_option(tmp_path, shared_data, capsys, options, named):
    out = tmp_path / "out"
    _refused(["drr", *options, "-O", out / "img", shared_data.joinpath(*STS_CT)], capsys, out, named)
