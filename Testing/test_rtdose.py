"""One RTDOSE reader (Gy) for every path, RTDOSE writing, and a CT never taken for a dose (issue 11 items 1-2).

The planning-system doses are the Nelms phantom's (Pinnacle3, 32-bit, DoseGridScaling ~1.7e-8, FRACTION).
"""

from __future__ import annotations

import csv
import subprocess

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom3tools import dciodvfy_errors

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError

NELMS = "nelms-dvh-analytic-phantom"


def _gy(path) -> np.ndarray:
    """The anchor: pydicom's pixel_array x DoseGridScaling, frames first."""
    ds = pydicom.dcmread(path)
    return ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)


def _array(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def pinnacle(shared_data):
    base = shared_data / NELMS
    return base / "DOSE_GRIDS" / "Linear_AntPost_3mm_Aligned.dcm", base / "DOSE_GRIDS" / "Linear_SupInf_1mm_Aligned.dcm"


def test_convert_and_warp_read_an_rtdose_in_gy(pinnacle, tmp_path):
    for dose in pinnacle:
        expected = _gy(dose)
        plain, as_dose = tmp_path / f"{dose.stem}.nrrd", tmp_path / f"{dose.stem}_dose.nrrd"
        assert main(["convert", "--input", str(dose), "--output-img", str(plain), "-q"]) == 0
        assert main(["convert", "--input-dose-img", str(dose), "--output-dose-img", str(as_dose), "-q"]) == 0
        for out in (plain, as_dose):
            image = sitk.ReadImage(str(out))
            assert image.GetPixelID() == sitk.sitkFloat32 and image.GetMetaData("DoseUnits") == "GY"
            assert image.GetMetaData("DoseSummationType") == "FRACTION"
            np.testing.assert_allclose(_array(out), expected, rtol=1e-6, atol=1e-6)
        # plastimatch's own reading of the same file (convert --input-dose-img --output-dose-img)
        plm = tmp_path / f"{dose.stem}_plm.nrrd"
        subprocess.run(["plastimatch", "convert", "--input-dose-img", str(dose), "--output-dose-img", str(plm)],
                       check=True, capture_output=True)  # fmt: skip
        np.testing.assert_allclose(_array(plain), _array(plm), rtol=1e-5, atol=1e-5)
        assert sitk.ReadImage(str(plain)).GetOrigin() == pytest.approx(sitk.ReadImage(str(plm)).GetOrigin())
    # warp: --input-dose-img and a plain --input RD.dcm both give Gy (identity field on the dose grid)
    dose = pinnacle[0]
    assert main(["synth-vf", "--fixed", str(dose), "--xf-zero", "--output", str(tmp_path / "zero.mha"), "-q"]) == 0
    for option, output in (("--input-dose-img", "--output-dose-img"), ("--input", "--output-img")):
        out = tmp_path / f"w{option}.nrrd"
        assert main(["warp", option, str(dose), output, str(out), "--xf", str(tmp_path / "zero.mha"), "-q"]) == 0
        np.testing.assert_allclose(_array(out), _gy(dose), rtol=1e-5, atol=1e-5)
    # --dose-scale (plastimatch's) multiplies
    out = tmp_path / "scaled.nrrd"
    assert main(["convert", "--input-dose-img", str(dose), "--output-dose-img", str(out), "--dose-scale", "0.5"]) == 0
    np.testing.assert_allclose(_array(out), 0.5 * _gy(dose), rtol=1e-5, atol=1e-5)


def test_written_rtdose_uses_the_integer_range_the_ct_study_and_passes_dciodvfy(shared_data, pinnacle, tmp_path):
    dose, ct = pinnacle[0], shared_data / NELMS / "CT_3mm"
    ct_header = pydicom.dcmread(next(ct.iterdir()), stop_before_pixels=True)
    # from the RTDOSE itself (into a folder), and from a dose image with the CT named (into a file)
    assert main(["convert", "--input", str(dose), "--output-dose-dicom", str(tmp_path / "out"), "-q"]) == 0
    assert main(["convert", "--input-dose-img", str(dose), "--output-dose-img", str(tmp_path / "d.nrrd"), "-q"]) == 0
    assert main(["convert", "--input-dose-img", str(tmp_path / "d.nrrd"), "--referenced-ct", str(ct),
                 "--output-dose-dicom", str(tmp_path / "RD2.dcm"), "-q"]) == 0  # fmt: skip
    expected = _gy(dose)
    for written in (tmp_path / "out" / "RD.dcm", tmp_path / "RD2.dcm"):
        assert dciodvfy_errors(written, "RTDose") == []
        ds = pydicom.dcmread(written)
        assert ds.Modality == "RTDOSE" and ds.DoseUnits == "GY" and ds.DoseSummationType == "FRACTION"
        assert ds.FrameOfReferenceUID == ct_header.FrameOfReferenceUID
        assert ds.StudyInstanceUID == ct_header.StudyInstanceUID and ds.PatientID == ct_header.PatientID
        assert int(ds.pixel_array.max()) == 2 ** int(ds.BitsStored) - 1  # the maximum uses the whole range
        back = ds.pixel_array * float(ds.DoseGridScaling)
        assert np.abs(back - expected).max() <= expected.max() / 65535
        # plastimatch reads what we wrote to the same values
        plm = tmp_path / f"{written.stem}_plm.nrrd"
        subprocess.run(["plastimatch", "convert", "--input-dose-img", str(written), "--output-dose-img", str(plm)],
                       check=True, capture_output=True)  # fmt: skip
        assert np.abs(_array(plm) - expected).max() <= expected.max() / 65535 + 1e-5
    # a warped dose written as DICOM goes into the fixed CT's study
    assert main(["synth-vf", "--fixed", str(dose), "--xf-trans", "0 0 0", "--output", str(tmp_path / "t.mha")]) == 0
    assert main(["warp", "--input-dose-img", str(dose), "--output-dose-img", str(tmp_path / "w.nrrd"), "--fixed", str(ct),
                 "--xf", str(tmp_path / "t.mha"), "--output-dicom", str(tmp_path / "warped"), "-q"]) == 0  # fmt: skip
    assert dciodvfy_errors(tmp_path / "warped" / "RD.dcm", "RTDose") == []
    warped = pydicom.dcmread(tmp_path / "warped" / "RD.dcm")
    assert warped.FrameOfReferenceUID == ct_header.FrameOfReferenceUID
    assert warped.pixel_array.shape == (20, 512, 512)  # the fixed CT's grid


def test_a_dose_image_without_a_ct_is_not_written_as_rtdose(pinnacle, tmp_path, capsys):
    image = tmp_path / "d.nrrd"
    assert main(["convert", "--input-dose-img", str(pinnacle[0]), "--output-dose-img", str(image), "-q"]) == 0
    capsys.readouterr()
    rc = main(["convert", "--input-dose-img", str(image), "--output-dose-dicom", str(tmp_path / "RD.dcm")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--referenced-ct" in err and str(image) in err
    assert not (tmp_path / "RD.dcm").exists()


def test_dose_units_cgy_relative_and_missing(pinnacle, tmp_path, capsys):
    ds = pydicom.dcmread(pinnacle[0])
    ds.DoseUnits = "CGY"
    ds.save_as(tmp_path / "cgy.dcm")
    assert main(["convert", "--input", str(tmp_path / "cgy.dcm"), "--output-img", str(tmp_path / "c.nrrd"), "-q"]) == 0
    np.testing.assert_allclose(_array(tmp_path / "c.nrrd"), _gy(pinnacle[0]) / 100, rtol=1e-6, atol=1e-8)
    assert sitk.ReadImage(str(tmp_path / "c.nrrd")).GetMetaData("DoseUnitsInFile") == "CGY"
    ds.DoseUnits = "RELATIVE"
    ds.save_as(tmp_path / "rel.dcm")
    del ds.DoseUnits
    ds.save_as(tmp_path / "none.dcm")
    capsys.readouterr()
    for name, text in (("rel.dcm", "RELATIVE"), ("none.dcm", "DoseUnits (3004,0002) is missing")):
        rc = main(["dvh", "--input-dose", str(tmp_path / name), "--input-ss-img", "x", "--input-ss-list", "y"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and text in err and str(tmp_path / name) in err
    # a file without DoseUnits is read once the user says what it holds
    assert main(["convert", "--input-dose-img", str(tmp_path / "none.dcm"), "--dose-units", "cgy",
                 "--output-dose-img", str(tmp_path / "n.nrrd"), "-q"]) == 0  # fmt: skip
    np.testing.assert_allclose(_array(tmp_path / "n.nrrd"), _gy(pinnacle[0]) / 100, rtol=1e-6, atol=1e-8)


def test_a_ct_is_refused_as_a_dose_everywhere(phantom, tmp_path, capsys):
    ct_nrrd = tmp_path / "ct.nrrd"
    sitk.WriteImage(phantom.ct, str(ct_nrrd))
    assert main(["synth-vf", "--fixed", str(ct_nrrd), "--xf-zero", "--output", str(tmp_path / "z.mha"), "-q"]) == 0
    capsys.readouterr()
    runs = [
        (["dvh", "--input-dose", str(phantom.ct_dir), "--input-rtstruct", str(phantom.rtstruct),
          "--output-stats", str(tmp_path / "s.csv")], phantom.ct_dir, "modality CT"),
        (["gamma", str(phantom.rtdose), str(ct_nrrd), "--output", str(tmp_path / "g.nrrd")], ct_nrrd, "no dose units"),
        (["warp", "--input-dose-img", str(phantom.ct_dir), "--output-dose-img", str(tmp_path / "w.nrrd"),
          "--xf", str(tmp_path / "z.mha")], phantom.ct_dir, "modality CT"),
        (["convert", "--input-dose-img", str(ct_nrrd), "--output-dose-img", str(tmp_path / "c.nrrd")], ct_nrrd, "not a dose"),
    ]  # fmt: skip
    for argv, source, kind in runs:
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1, (argv[0], err)
        assert f"{source}: not a dose" in err and kind in err and "--dose-units" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nrrd", "z.mha"]  # nothing written
    # declared by the user, an image is a dose (cGy -> Gy)
    assert main(["convert", "--input-dose-img", str(ct_nrrd), "--dose-units", "cgy",
                 "--output-dose-img", str(tmp_path / "c.nrrd"), "-q"]) == 0  # fmt: skip
    np.testing.assert_allclose(_array(tmp_path / "c.nrrd"), sitk.GetArrayFromImage(phantom.ct) / 100.0, rtol=1e-6)
    # ... and a dose image we wrote says so itself (no --dose-units needed to read it back)
    assert (
        main(["convert", "--input-dose-img", str(tmp_path / "c.nrrd"), "--output-dose-img", str(tmp_path / "d.nrrd")])
        == 0
    )
    assert np.array_equal(_array(tmp_path / "d.nrrd"), _array(tmp_path / "c.nrrd"))


def test_slicer_dvh_refuses_a_volume_that_is_not_a_dose(phantom, mrml):
    from SlicerImgSuite.mrml.volumes import volume_node_from_image
    from SlicerImgSuite.rtstruct.nodes import dose_node_from_file, dvh_nodes, segmentation_from_rtstruct

    ct_node = volume_node_from_image(mrml, phantom.ct, "CT")
    seg, _, _ = segmentation_from_rtstruct(mrml, phantom.rtstruct, ct_node)
    with pytest.raises(ImgSuiteError, match="volume 'CT': not a dose"):
        dvh_nodes(mrml, seg, ct_node, ct_node)
    dose_node = dose_node_from_file(mrml, phantom.rtdose)
    assert dose_node.GetAttribute("DicomRtImport.DoseVolume") == "1"
    _, _, stats = dvh_nodes(mrml, seg, dose_node, ct_node)
    # a plain volume holding the same dose in cGy, declared as such, gives the same statistics
    plain = sitk.GetImageFromArray(sitk.GetArrayFromImage(phantom.dose) * 100)
    plain.CopyInformation(phantom.dose)
    cgy_node = volume_node_from_image(mrml, plain, "dose in cGy")
    with pytest.raises(ImgSuiteError, match="not a dose"):
        dvh_nodes(mrml, seg, cgy_node, ct_node)
    _, _, declared = dvh_nodes(mrml, seg, cgy_node, ct_node, dose_units="cgy")
    assert declared["PTV"]["mean"] == pytest.approx(stats["PTV"]["mean"], rel=1e-3)


def test_dvh_of_a_study_folder_matches_plastimatch_dvh_input(phantom, tmp_path, capsys):
    """``dvh --input STUDY_DIR`` (RS.dcm, RD.dcm and CT/ in one folder), as plastimatch's ``dvh --input``.

    plastimatch's defaults are 256 bins of 0.5 Gy, its row x being the fraction at or above x - 0.25 Gy
    (centred bins); ours (kept as the default) is row x = the fraction at or above x. With bins of
    0.25 Gy our row x - 0.25 is plastimatch's row x; each rasterizes the structures itself here.
    """
    folder = phantom.rtstruct.parent
    ours, plm = tmp_path / "ours.csv", tmp_path / "plm.csv"
    capsys.readouterr()
    assert (
        main(["dvh", "--input", str(folder), "--num-bins", "512", "--bin-width", "0.25", "--output-csv", str(ours)])
        == 0
    )
    note = capsys.readouterr().err
    assert str(phantom.rtstruct) in note and str(phantom.rtdose) in note and str(phantom.ct_dir) in note
    subprocess.run(
        ["plastimatch", "dvh", "--input", str(folder), "--output-csv", str(plm)], check=True, capture_output=True
    )
    theirs = list(csv.reader(open(plm)))
    mine = list(csv.reader(open(ours)))
    assert theirs[0] == mine[0] and len(theirs) == 257  # same structures; plastimatch's 256 bins
    for k in range(1, 256):
        assert float(mine[2 * k - 1 + 1][0]) == pytest.approx(0.5 * k - 0.25)
        for j in range(1, len(theirs[0])):
            assert abs(float(mine[2 * k - 1 + 1][j]) - float(theirs[k + 1][j])) < 0.01, (theirs[0][j], k)
    # two doses in the folder: refused, both named
    import shutil

    study = tmp_path / "study"
    shutil.copytree(folder, study)
    shutil.copy(study / phantom.rtdose.name, study / "RD2.dcm")
    rc = main(["dvh", "--input", str(study), "--output-csv", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "2 RTDOSE files" in err and "RD2.dcm" in err and not (tmp_path / "x.csv").exists()


def test_grid_frame_offsets_absolute_or_reversed_place_the_same_dose(pinnacle, tmp_path):
    """GridFrameOffsetVector relative (Pinnacle's), absolute (first value = first frame's z) or running against
    the slice normal: the same dose at the same place, as plastimatch reads each file."""
    source = pydicom.dcmread(pinnacle[0])
    reference = sitk.ReadImage(str(pinnacle[0]))  # GDCM: the geometry (its values are the stored integers)
    offsets = [float(v) for v in source.GridFrameOffsetVector]
    z0 = float(source.ImagePositionPatient[2])
    absolute = pydicom.dcmread(pinnacle[0])
    absolute.GridFrameOffsetVector = [f"{z0 + v:g}" for v in offsets]
    absolute.save_as(tmp_path / "absolute.dcm")
    reversed_ = pydicom.dcmread(pinnacle[0])  # frames stored top to bottom: last frame first, negative offsets
    frames = reversed_.pixel_array[::-1]
    reversed_.ImagePositionPatient = [*source.ImagePositionPatient[:2], f"{z0 + offsets[-1]:g}"]
    reversed_.GridFrameOffsetVector = [f"{-v:g}" for v in offsets]
    reversed_.PixelData = np.ascontiguousarray(frames).tobytes()
    reversed_.save_as(tmp_path / "reversed.dcm")
    expected = _gy(pinnacle[0])
    for name in ("absolute", "reversed"):
        out = tmp_path / f"{name}.nrrd"
        assert main(["convert", "--input", str(tmp_path / f"{name}.dcm"), "--output-img", str(out), "-q"]) == 0
        image = sitk.ReadImage(str(out))
        assert image.GetOrigin() == pytest.approx(reference.GetOrigin()) and image.GetSpacing()[2] == pytest.approx(3)
        np.testing.assert_allclose(_array(out), expected, rtol=1e-6, atol=1e-6)
        plm = tmp_path / f"{name}_plm.nrrd"
        subprocess.run(["plastimatch", "convert", "--input-dose-img", str(tmp_path / f"{name}.dcm"),
                        "--output-dose-img", str(plm)], check=True, capture_output=True)  # fmt: skip
        np.testing.assert_allclose(_array(plm), expected, rtol=1e-5, atol=1e-5)
    # plastimatch's own spelling: the dose of an RTDOSE --input goes into --output-dicom
    assert main(["convert", "--input", str(pinnacle[0]), "--output-dicom", str(tmp_path / "dicom"), "-q"]) == 0
    assert np.abs(_gy(tmp_path / "dicom" / "RD.dcm") - expected).max() <= expected.max() / 65535


def test_descending_absolute_offsets_a_rounding_off_the_position_keep_the_grid(pinnacle, tmp_path):
    """Descending absolute GridFrameOffsetVector whose first value is 0.01 mm off the first frame's z (a rounding
    the exact-match test missed): main took the vector as relative and moved the grid by that first value
    (origin z -5.99 instead of -30, the whole dose 24 mm off, no message). The first frame is at
    ImagePositionPatient whatever the vector's type."""
    source = pydicom.dcmread(pinnacle[0])
    offsets = [float(v) for v in source.GridFrameOffsetVector]
    top = float(source.ImagePositionPatient[2]) + offsets[-1]
    rounded = pydicom.dcmread(pinnacle[0])  # frames top to bottom, offsets = their z, first one 0.01 mm off
    rounded.ImagePositionPatient = [*source.ImagePositionPatient[:2], f"{top:g}"]
    rounded.GridFrameOffsetVector = [f"{top + 0.01 - v:g}" for v in offsets]
    rounded.PixelData = np.ascontiguousarray(source.pixel_array[::-1]).tobytes()
    rounded.save_as(tmp_path / "rounded.dcm")
    out = tmp_path / "rounded.nrrd"
    assert main(["convert", "--input", str(tmp_path / "rounded.dcm"), "--output-img", str(out), "-q"]) == 0
    image = sitk.ReadImage(str(out))
    assert image.GetOrigin() == pytest.approx([float(v) for v in source.ImagePositionPatient], abs=0.02)
    np.testing.assert_allclose(_array(out), _gy(pinnacle[0]), rtol=1e-6, atol=1e-6)


def test_declared_units_a_factor_of_100_off_warn(tmp_path):
    # a plan stored in cGy declared --dose-units gy read as 7000 Gy (and a plan in Gy declared cGy as 0.7 Gy),
    # silently; now each warns naming the file and the other unit. A plausible dose, or a file that states its
    # own units, says nothing
    import warnings

    from SlicerImgSuite.rtstruct.dose import read_dose

    values = np.zeros((6, 8, 8), np.float32)
    values[2:4, 2:6, 2:6] = 7000
    sitk.WriteImage(sitk.GetImageFromArray(values), str(tmp_path / "cgy.mha"))
    sitk.WriteImage(sitk.GetImageFromArray(values / 100), str(tmp_path / "gy.mha"))
    with pytest.warns(UserWarning, match=r"cgy.mha: the dose peaks at 7000 Gy with --dose-units gy; .* cgy"):
        read_dose(tmp_path / "cgy.mha", "gy")
    with pytest.warns(UserWarning, match=r"gy.mha: the dose peaks at 0.7 Gy with --dose-units cgy; .* gy"):
        read_dose(tmp_path / "gy.mha", "cgy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(sitk.GetArrayFromImage(read_dose(tmp_path / "cgy.mha", "cgy")).max()) == pytest.approx(70)
        assert float(sitk.GetArrayFromImage(read_dose(tmp_path / "gy.mha", "gy")).max()) == pytest.approx(70)
