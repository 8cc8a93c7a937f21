"""``mask/fill --output-format dicom`` beside Debian plastimatch 1.9.4 on a real CT (IBSI STS_001).

The voxels and the geometry of the written series equal plastimatch's. plastimatch writes the series into a new
anonymous patient, study and frame of reference, so the masked CT no longer lines up with the plan's structures
or dose; ours keeps the source's patient, study and frame of reference (a new series), and dciodvfy finds no
error in it.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pydicom
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.io import read_image

KEEP = ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID")


def test_mask_and_fill_write_a_dicom_series_in_the_source_study(shared_data, tmp_path, capsys):
    ct_dir = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom" / "image"
    ct = read_image(ct_dir)
    box = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
    box.CopyInformation(ct)
    box[40:150, 50:160, 5:50] = 1
    sitk.WriteImage(box, str(tmp_path / "box.nrrd"))
    source = pydicom.dcmread(next(ct_dir.iterdir()), stop_before_pixels=True)
    for command, value in (("mask", "-1000"), ("fill", "500")):
        args = ["--input", str(ct_dir), "--mask", str(tmp_path / "box.nrrd"), "--mask-value", value]
        args += ["--output-format", "dicom"]
        subprocess.run(
            ["plastimatch", command, *args, "--output", str(tmp_path / f"pl_{command}")],
            check=True,
            capture_output=True,
        )
        assert main([command, "-q", *args, "--output", str(tmp_path / command)]) == 0
        ours, theirs = read_image(tmp_path / command), read_image(tmp_path / f"pl_{command}")
        assert ours.GetSize() == theirs.GetSize() == ct.GetSize()
        np.testing.assert_allclose(ours.GetOrigin(), theirs.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(ours.GetSpacing(), theirs.GetSpacing(), atol=1e-4)  # plastimatch: 3.270019
        np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(theirs))
        outside = sitk.GetArrayFromImage(box) == (0 if command == "mask" else 1)
        assert (sitk.GetArrayFromImage(ours)[outside] == int(value)).all()
        files = sorted((tmp_path / command).iterdir())
        first = pydicom.dcmread(files[0], stop_before_pixels=True)
        theirs_first = pydicom.dcmread(sorted((tmp_path / f"pl_{command}").iterdir())[0], stop_before_pixels=True)
        assert all(first.get(k) == source.get(k) for k in KEEP)
        assert not any(theirs_first.get(k) == source.get(k) for k in ("PatientID", "StudyInstanceUID"))
        assert first.SeriesInstanceUID != source.SeriesInstanceUID
        check = subprocess.run(["dciodvfy", str(files[0])], capture_output=True, text=True)
        assert "Error" not in check.stdout + check.stderr, check.stderr
    assert main(["mask", "--input", str(ct_dir), "--mask", str(tmp_path / "box.nrrd"), "--output-format", "dicom",
                 "--output-type", "float", "--output", str(tmp_path / "bad")]) == 2  # fmt: skip
    assert not (tmp_path / "bad").exists()
