"""Files that parse but carry an implausible value, made from real data the project never made: each is one line
naming the file and the tag, exit 2, no traceback, nothing written, or a correct number, never a silent wrong one.

Found by a new user's audit (fifth session) on the shared data (Nelms RTDOSE and RTSTRUCTs, OpenTPS 4D lung CT,
IBSI STS_001, the PlantCV ENVI dark frame, the DSB nuclei image); each refusal or warning here was a silent wrong
number or a traceback on main (plastimatch 1.9.4 gives the same wrong numbers on most of these files, or crashes).
The tests that read a file right (signed dose, MR without rescale, position jitter, markups in mm) are controls.
"""

from __future__ import annotations

import csv
import json
import shutil
import zipfile

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main

NELMS_DOSE = ("nelms-dvh-analytic-phantom", "DOSE_GRIDS", "Linear_AntPost_3mm_Aligned.dcm")
LUNG = ("opentps-4dct-light-lung", "00")


def _refused(args, capsys, out, *names):
    """exit 2, one error line naming each of ``names``, no traceback, ``out`` not written."""
    capsys.readouterr()
    assert main([*map(str, args), "-q"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for name in names:
        assert str(name) in err, (name, err)
    assert not out.exists()


def _dose_cases():
    def fewer_frames(ds):  # PixelData holds 19 frames; the header says 18
        ds.NumberOfFrames -= 1
        ds.GridFrameOffsetVector = list(ds.GridFrameOffsetVector)[:-1]

    def huge_scaling(ds):  # 1e30 Gy per unit: every non-zero voxel became +inf, exit 0
        ds.DoseGridScaling = "1e30"

    def signed_physical(ds):  # a PHYSICAL dose stored as signed: stored values past 2^31 became -40 Gy, exit 0
        ds.PixelRepresentation = 1

    return {
        "fewer_frames": (fewer_frames, "NumberOfFrames (0028,0008)"),
        "huge_scaling": (huge_scaling, "DoseGridScaling (3004,000E)"),
        "signed_physical": (signed_physical, "PixelRepresentation (0028,0103)"),
    }


@pytest.mark.parametrize("case", sorted(_dose_cases()))
def test_rtdose_with_an_implausible_value_is_refused(shared_data, tmp_path, capsys, case):
    change, tag = _dose_cases()[case]
    ds = pydicom.dcmread(shared_data.joinpath(*NELMS_DOSE))
    change(ds)
    rd = tmp_path / "RD.dcm"
    ds.save_as(rd)
    out = tmp_path / "dose.nrrd"
    _refused(["convert", "--input-dose-img", rd, "--output-dose-img", out], capsys, out, rd, tag)
    rs = shared_data / NELMS_DOSE[0] / "STRUCTURES_3mm" / "Sphere_30_0.dcm"
    _refused(["dvh", "--input-dose", rd, "--input-rtstruct", rs, "--output-csv", out], capsys, out, rd, tag)


def test_signed_rtdose_with_no_negative_value_reads_right(shared_data, tmp_path):
    """PixelRepresentation 1 is refused only where it makes a negative dose: stored values below 2^31 are the same."""
    ds = pydicom.dcmread(shared_data.joinpath(*NELMS_DOSE))
    stored = ds.pixel_array.copy()
    stored[stored >= 2**31] = 2**31 - 1
    ds.PixelData = stored.astype(np.uint32).tobytes()
    ds.PixelRepresentation = 1
    ds.save_as(tmp_path / "RD.dcm")
    assert main(["convert", "--input-dose-img", str(tmp_path / "RD.dcm"), "--output-dose-img",
                 str(tmp_path / "d.nrrd"), "-q"]) == 0  # fmt: skip
    got = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "d.nrrd")))
    np.testing.assert_allclose(got, stored * float(ds.DoseGridScaling), rtol=1e-6)


def _lung_copy(shared_data, tmp_path, change, which=None):
    folder = tmp_path / "ct"
    shutil.copytree(shared_data.joinpath(*LUNG), folder)
    files = sorted(folder.glob("*.dcm"))
    for path in files if which is None else [files[which]]:
        ds = pydicom.dcmread(path)
        change(ds)
        ds.save_as(path)
    return folder, files


def _drop(*keywords):
    def change(ds):
        for keyword in keywords:
            delattr(ds, keyword)

    return change


@pytest.mark.parametrize(
    "keywords, which, tag",
    [
        (("RescaleIntercept",), None, "RescaleIntercept (0028,1052)"),  # every voxel +1024 HU, exit 0
        (("RescaleSlope", "RescaleIntercept"), 10, "RescaleSlope (0028,1053)"),  # one slice +1024 HU, exit 0
    ],
    ids=["no_intercept", "one_slice_without_rescale"],
)
def test_ct_without_its_rescale_is_refused(shared_data, tmp_path, capsys, keywords, which, tag):
    folder, files = _lung_copy(shared_data, tmp_path, _drop(*keywords), which)
    out = tmp_path / "ct.nrrd"
    _refused(["convert", "--input", folder, "--output-img", out], capsys, out, files[which or 0].name, tag)
    _refused(["stats", folder], capsys, out, files[which or 0].name, tag)


def test_mr_without_rescale_reads_its_stored_values(shared_data, tmp_path):
    """Rescale is type 1 on a CT only: an MR series without it is its stored values (no guess, no refusal)."""

    def mr(ds):
        ds.Modality = "MR"
        del ds.RescaleSlope, ds.RescaleIntercept

    folder, files = _lung_copy(shared_data, tmp_path, mr)
    assert main(["convert", "--input", str(folder), "--output-img", str(tmp_path / "mr.nrrd"), "-q"]) == 0
    got = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "mr.nrrd")))
    first = pydicom.dcmread(files[0])
    assert got.shape == (len(files), first.Rows, first.Columns)
    assert got.min() >= 0 and int(got.max()) == int(max(pydicom.dcmread(f).pixel_array.max() for f in files))


def test_a_slice_with_another_pixel_spacing_is_refused(shared_data, tmp_path, capsys):
    """One slice at 4.9 mm in a 5 mm series was read on the first slice's grid, 2 % off in size, exit 0."""

    def spacing(ds):
        ds.PixelSpacing = ["4.9", "5"]

    folder, files = _lung_copy(shared_data, tmp_path, spacing, 10)
    out = tmp_path / "ct.nrrd"
    _refused(
        ["convert", "--input", folder, "--output-img", out], capsys, out, files[10].name, "PixelSpacing (0028,0030)"
    )


@pytest.mark.parametrize(
    "old, new",
    [
        ("data type = 12", "data type = 1"),  # uint16 read as bytes: the first half of the file, values 0..45
        ("bands = 978", "bands = 489"),  # half the spectrum, the other half dropped
        ("samples = 1600", "samples = 1599"),  # every line shifted by one more sample
    ],
    ids=["data_type", "bands", "samples"],
)
def test_envi_header_that_does_not_describe_its_binary_is_refused(shared_data, tmp_path, capsys, old, new):
    """The PlantCV dark frame with one size field changed: the binary holds more than the header describes
    (Spectral Python reads these as cubes of wrong numbers); refused in plain ENVI and inside a .hsi."""
    from SlicerImgSuite.errors import ImgSuiteError
    from SlicerImgSuite.hsi.container import open_hsi

    folder = shared_data / "envi-hyperspectral-plantcv"
    text = (folder / "darkReference.hdr").read_text()
    assert old in text
    (tmp_path / "dark.hdr").write_text(text.replace(old, new))
    (tmp_path / "dark").symlink_to(folder / "darkReference")
    out = tmp_path / "dark.nrrd"
    _refused(["hsi", "convert", tmp_path / "dark.hdr", "--output", out], capsys, out, tmp_path / "dark", "more than")
    hsi = tmp_path / "dark.hsi"  # the same pair stored in a container (the writer cannot make a lying one)
    with zipfile.ZipFile(hsi, "w") as zf:
        zf.writestr("data.hdr", text.replace(old, new))
        zf.write(folder / "darkReference", "data.envi")
    with pytest.raises(ImgSuiteError, match="member 'data.envi' holds 3129600 bytes .* more than"):
        open_hsi(hsi)
    with open_hsi(_untouched(tmp_path, folder, text)) as whole:  # the true header still reads
        assert whole.cube.shape == (1, 1600, 978) and int(whole.cube.max()) == 47


def _untouched(tmp_path, folder, text):
    path = tmp_path / "whole.hsi"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data.hdr", text)
        zf.write(folder / "darkReference", "data.envi")
    return path


def _positions_changed(shared_data, tmp_path, shift):
    """The lung CT with each slice's ImagePositionPatient moved in-plane by ``shift(k)`` mm (k: z order)."""
    folder = tmp_path / "ct"
    shutil.copytree(shared_data.joinpath(*LUNG), folder)
    files = sorted(folder.glob("*.dcm"), key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        dx, dy = shift(k)
        ds.ImagePositionPatient = [x + dx, y + dy, z]
        ds.save_as(path)
    return folder, files


@pytest.mark.parametrize(
    "shift, slice_index, words",
    [
        (lambda k: (0.0, k * 6.0 * np.tan(np.radians(15))), -1, "gantry tilt of 15 degrees"),  # slices 74 mm apart
        (lambda k: (20.0 if k == 10 else 0.0, 0.0), 10, "moved slice"),  # one slice 4 pixels off
    ],
    ids=["gantry_tilt", "one_moved_slice"],
)
def test_slices_not_stacked_along_their_normal_are_refused(shared_data, tmp_path, capsys, shift, slice_index, words):
    """Every slice was stacked on the first one's axis whatever its position said (plastimatch does the same)."""
    folder, files = _positions_changed(shared_data, tmp_path, shift)
    out = tmp_path / "ct.nrrd"
    _refused(["convert", "--input", folder, "--output-img", out], capsys, out, files[slice_index].name, words)


def test_sub_pixel_position_jitter_is_kept(shared_data, tmp_path):
    """Positions that differ by rounding (0.01 mm here, 0.2 % of the 5 mm pixel) still make one volume."""
    folder, _ = _positions_changed(shared_data, tmp_path, lambda k: (0.01 * (k % 2), 0.0))
    assert main(["convert", "--input", str(folder), "--output-img", str(tmp_path / "ct.nrrd"), "-q"]) == 0
    assert sitk.ReadImage(str(tmp_path / "ct.nrrd")).GetSize() == (100, 100, 47)


@pytest.mark.parametrize("size", [0.0, -0.5], ids=["zero", "negative"])
def test_ome_tiff_with_a_pixel_size_that_is_not_positive_is_refused(shared_data, tmp_path, capsys, size):
    """The DSB image as an OME-TIFF with PhysicalSizeX/Y 0 (a ZeroDivisionError traceback) or -0.5 um (areas
    reported with the sign dropped): refused naming the file and the OME field; 0.65 um reads (areas x 0.4225)."""
    import tifffile

    pixels = tifffile.imread(shared_data / "dsb2018-nuclei-stardist-sample" / "img2d.tif")
    for name, value in (("bad", size), ("good", 0.65)):
        meta = {"axes": "YX", "PhysicalSizeX": value, "PhysicalSizeY": value, "Channel": {"Name": ["DAPI"]}}
        tifffile.imwrite(tmp_path / f"{name}.ome.tif", pixels, ome=True, metadata=meta)
    out = tmp_path / "out"
    args = ["nuclei", "--input", tmp_path / "bad.ome.tif", "--output", out, "--method", "otsu"]
    _refused(args, capsys, out, tmp_path / "bad.ome.tif", "PhysicalSizeX/Y/Z (OME-XML)")
    good = ["nuclei", "--input", str(tmp_path / "good.ome.tif"), "--output", str(out), "--method", "otsu", "-q"]
    assert main(good) == 0
    rows = list(csv.DictReader(open(out / "good.csv")))
    assert rows and all(float(r["area_um2"]) == pytest.approx(int(r["area_px"]) * 0.65**2, rel=1e-4) for r in rows)


def _markups_json(path, position, units):
    point = {"id": "1", "label": "F-1", "position": position}
    item = {"type": "Fiducial", "coordinateSystem": "LPS", "controlPoints": [point]}
    if units is not None:
        item["coordinateUnits"] = units
    schema = "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/"
    doc = {"@schema": schema + "markups-schema-v1.0.3.json#", "markups": [item]}
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "units, position",
    [
        (None, [-10.0, -20.0, 30.0]),
        ("mm", [-10.0, -20.0, 30.0]),
        ("um", [-10000.0, -20000.0, 30000.0]),  # was read as mm: 1000 times too far
        ({"codeValue": "um", "codingSchemeDesignator": "UCUM", "codeMeaning": "micrometer"}, [-1e4, -2e4, 3e4]),
    ],
    ids=["none", "mm", "um", "um_coded"],
)
def test_markups_in_micrometres_are_read_in_mm(tmp_path, units, position):
    """A Slicer .mrk.json whose scene unit was micrometres (coordinateUnits um): landmarks in mm."""
    source = _markups_json(tmp_path / "p.mrk.json", position, units)
    out = tmp_path / "p.txt"
    assert main(["convert", "--input", str(source), "--output-pointset", str(out), "-q"]) == 0
    np.testing.assert_allclose([float(v) for v in out.read_text().split()], [-10.0, -20.0, 30.0])


def test_markups_in_another_unit_are_refused(tmp_path, capsys):
    source = _markups_json(tmp_path / "p.mrk.json", [-1.0, -2.0, 3.0], "cm")
    out = tmp_path / "p.txt"
    _refused(["convert", "--input", source, "--output-pointset", out], capsys, out, source, "coordinateUnits")


@pytest.mark.parametrize("suffix", [".mha", ".nii.gz"])
def test_image_header_with_a_nan_origin_is_refused(shared_data, tmp_path, capsys, suffix):
    """A slice of the IBSI CT written with a NaN origin: the MetaImage reader made it 0 (the image moved, exit 0),
    NIfTI kept NaN (a resample onto NaN); both refused naming the file."""
    ct = sitk.ReadImage(str(shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "nifti" / "CT_image.nii.gz"))[
        :, :, 20:22
    ]
    ct.SetOrigin((float("nan"), *ct.GetOrigin()[1:]))
    source = tmp_path / f"ct{suffix}"
    sitk.WriteImage(ct, str(source))
    out = tmp_path / "r.nrrd"
    _refused(["resample", "--input", source, "--output", out, "--spacing", "2 2 2"], capsys, out, source, "nan")


def test_dvh_of_a_structure_beyond_the_dose_grid_says_so(shared_data, tmp_path, capsys):
    """The Nelms SupInf dose cut to its 10 lowest frames (z -30..-3 mm) leaves most of Sphere_30_0 (z -3..15 mm)
    outside the grid: the DVH counts that part at 0 Gy (as plastimatch does), now with a warning naming the
    structure and the volume; the whole grid gives no warning."""
    base = shared_data / NELMS_DOSE[0]
    ds = pydicom.dcmread(base / "DOSE_GRIDS" / "Linear_SupInf_3mm_Aligned.dcm")
    ds.PixelData = ds.pixel_array[:10].tobytes()
    ds.NumberOfFrames, ds.GridFrameOffsetVector = 10, list(ds.GridFrameOffsetVector)[:10]
    ds.save_as(tmp_path / "RD.dcm")
    common = ["dvh", "--input-rtstruct", str(base / "STRUCTURES_3mm" / "Sphere_30_0.dcm"), "--referenced-ct",
              str(base / "CT_3mm"), "-q", "--input-dose"]  # fmt: skip
    capsys.readouterr()
    assert main([*common, str(tmp_path / "RD.dcm")]) == 0
    err = capsys.readouterr().err
    assert "structure 'Sphere_30_0'" in err and "outside the dose grid" in err, err
    outside = float(err.split(" cc of structure 'Sphere_30_0'")[0].split()[-1])
    assert 5.5 < outside < 7.11  # all but the slice at z = -3 mm of its 7.11 cc
    assert main([*common, str(base / "DOSE_GRIDS" / "Linear_SupInf_3mm_Aligned.dcm")]) == 0
    assert "outside the dose grid" not in capsys.readouterr().err


def test_gamma_against_a_smaller_evaluated_grid_says_so(shared_data, tmp_path, capsys):
    """Nelms AntPost 3 mm (reference, 19^3 voxels from -30 mm) against the same field on the 1 mm grid (51^3 from
    -26 mm): the reference voxels beyond the 1 mm grid get evaluated dose 0 and fail, so the pass rate is 75.71 %
    (plastimatch 1.9.4 prints 75.708503 % on the same files); now a warning says how many lie outside. The other
    way round every reference voxel is covered: 100 %, no warning."""
    grids = shared_data / NELMS_DOSE[0] / "DOSE_GRIDS"
    coarse, fine = grids / "Linear_AntPost_3mm_Aligned.dcm", grids / "Linear_AntPost_1mm_Aligned.dcm"
    capsys.readouterr()
    assert main(["gamma", str(coarse), str(fine), "-q"]) == 0
    out, err = capsys.readouterr()
    assert "pass rate: 75.71 %" in out
    assert "lie outside the evaluated dose grid" in err, err
    outside, analysed = (int(v) for v in err.split(" analysed")[0].split()[-4::3])
    # the 3 mm centres beyond the 1 mm grid's extent (x > 26.5 or y, z < -26.5 mm), 4693 analysed in all
    assert analysed == 4693 and 1400 < outside < 1700
    assert main(["gamma", str(fine), str(coarse), "-q"]) == 0
    out, err = capsys.readouterr()
    assert "pass rate: 100.00 %" in out and "outside" not in err


def test_open_contours_are_named_not_silently_empty(shared_data, tmp_path, capsys):
    """IBSI STS_001's GTV with its contours typed OPEN_PLANAR: lines, no area, so no voxel (plastimatch 1.9.4
    aborts); the empty labelmap now comes with a warning naming the ROI and the count."""
    case = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom"
    ds = pydicom.dcmread(case / "mask" / "RS.dcm")
    n = 0
    for item in ds.ROIContourSequence:
        for contour in item.ContourSequence:
            contour.ContourGeometricType, n = "OPEN_PLANAR", n + 1
    ds.save_as(tmp_path / "RS.dcm")
    out = tmp_path / "lab.nrrd"
    capsys.readouterr()
    assert main(["convert", "--input", str(tmp_path / "RS.dcm"), "--referenced-ct", str(case / "image"),
                 "--output-labelmap", str(out), "-q"]) == 0  # fmt: skip
    said = capsys.readouterr()
    assert f"{n} open contour(s)" in said.out + said.err and "'GTV_Mass_CT'" in said.out + said.err
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(out))).max() == 0


def test_an_uncertainty_grid_is_no_dose_for_dvh_or_gamma(shared_data, tmp_path, capsys):
    """The Nelms RTDOSE marked DoseType ERROR (the grid of a dose's uncertainty): dvh printed its 'mean 16 Gy' and
    gamma passed it at 100 %; both refuse it now, naming the tag. convert still writes it (for viewing)."""
    base = shared_data / NELMS_DOSE[0]
    ds = pydicom.dcmread(shared_data.joinpath(*NELMS_DOSE))
    ds.DoseType = "ERROR"
    rd = tmp_path / "RD_error.dcm"
    ds.save_as(rd)
    out = tmp_path / "dvh.csv"
    rs = base / "STRUCTURES_3mm" / "Sphere_30_0.dcm"
    dvh = ["dvh", "--input-rtstruct", rs, "--referenced-ct", base / "CT_3mm", "--input-dose", rd, "--output-csv", out]
    _refused(dvh, capsys, out, rd, "DoseType (3004,0004) is ERROR")
    gamma = ["gamma", rd, shared_data.joinpath(*NELMS_DOSE), "--output", out.with_suffix(".nrrd")]
    _refused(gamma, capsys, out.with_suffix(".nrrd"), rd, "DoseType (3004,0004) is ERROR")
    image = tmp_path / "error.nrrd"
    assert main(["convert", "--input-dose-img", str(rd), "--output-dose-img", str(image), "-q"]) == 0
    assert sitk.ReadImage(str(image)).GetMetaData("DoseType") == "ERROR"


def test_pixels_beyond_bits_stored_are_refused(shared_data, tmp_path, capsys):
    """The lung CT (12 bits stored, values up to 2801) relabelled BitsStored 11: GDCM and pydicom cut the top bit
    off, so 1777 HU bone read as 1023 HU at most and 2801 became 753 (-271 HU), exit 0 (plastimatch keeps the
    values). Refused now, naming the tag; the true 12 bits read as before."""

    def eleven(ds):
        ds.BitsStored, ds.HighBit = 11, 10

    folder, files = _lung_copy(shared_data, tmp_path, eleven)
    out = tmp_path / "ct.nrrd"
    _refused(["convert", "--input", folder, "--output-img", out], capsys, out, "BitsStored (0028,0101) = 11")
    assert main(["convert", "--input", str(shared_data.joinpath(*LUNG)), "--output-img", str(out), "-q"]) == 0
    assert int(sitk.GetArrayFromImage(sitk.ReadImage(str(out))).max()) == 1777


def test_an_roi_of_another_frame_of_reference_is_refused(shared_data, tmp_path, capsys):
    """IBSI STS_001's GTV with its ROI's ReferencedFrameOfReferenceUID (3006,0024) set to another frame (contours
    drawn on another image) while the set's frame is the CT's: it was rasterized on the CT, exit 0."""
    case = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom"
    ds = pydicom.dcmread(case / "mask" / "RS.dcm")
    ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.save_as(tmp_path / "RS.dcm")
    out = tmp_path / "lab.nrrd"
    args = ["convert", "--input", tmp_path / "RS.dcm", "--referenced-ct", case / "image", "--output-labelmap", out]
    _refused(args, capsys, out, tmp_path / "RS.dcm", "ROI 'GTV_Mass_CT' (ReferencedFrameOfReferenceUID (3006,0024))")
