"""An output that is an input is refused before any work; no folder is made at the filesystem root."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.io.atomic import atomic_path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_convert_output_img_onto_its_input_is_refused(tmp_path, capsys):
    image = tmp_path / "ct.nrrd"
    sitk.WriteImage(sitk.Image(4, 4, 2, sitk.sitkInt16), str(image))
    before = _digest(image)
    link = tmp_path / "alias.nrrd"
    link.symlink_to(image)
    for target in (image, link, tmp_path / "." / "ct.nrrd"):
        assert main(["convert", "--input", str(image), "--output-img", str(target), "--output-type", "float"]) == 2
        err = capsys.readouterr().err
        assert "--output-img is an input of this command" in err and str(target) in err
    assert _digest(image) == before


def test_output_labelmap_onto_the_rtstruct_is_refused(phantom, tmp_path, capsys):
    rs = tmp_path / "RS.dcm"
    shutil.copy(phantom.rtstruct, rs)
    before = _digest(rs)
    args = ["convert", "--input", str(rs), "--referenced-ct", str(phantom.ct_dir), "--output-labelmap", str(rs)]
    assert main(args) == 2
    assert "--output-labelmap is an input" in capsys.readouterr().err
    assert _digest(rs) == before


def test_output_onto_a_file_inside_an_input_folder_is_refused(phantom, tmp_path, capsys):
    ct = tmp_path / "ct"
    shutil.copytree(phantom.ct_dir, ct)
    victim = sorted(ct.glob("*.dcm"))[0]
    before = _digest(victim)
    assert main(["convert", "--input", str(ct), "--output-img", str(victim)]) == 2
    assert f"would overwrite a file inside the input folder {ct}" in capsys.readouterr().err
    assert _digest(victim) == before
    assert main(["convert", "--input", str(ct), "--output-img", str(ct / "new.nrrd")]) == 0  # a new file: fine
    assert main(["convert", "--input", str(ct), "--output-dicom", str(ct)]) == 2
    assert "--output-dicom is an input folder of this command" in capsys.readouterr().err


def test_hsi_pack_onto_the_cubes_raw_is_refused(shared_data, tmp_path, capsys):
    src = shared_data / "envi-hyperspectral-plantcv"
    for name in ("corn-kernel-hyperspectral.hdr", "corn-kernel-hyperspectral.raw"):
        shutil.copy(src / name, tmp_path / name)
    raw = tmp_path / "corn-kernel-hyperspectral.raw"
    before = _digest(raw)
    assert main(["hsi", "pack", str(tmp_path / "corn-kernel-hyperspectral.hdr"), "--output", str(raw)]) == 2
    assert "--output is an input" in capsys.readouterr().err
    assert _digest(raw) == before


def test_no_new_folder_at_the_filesystem_root(tmp_path):
    target = Path("/imgsuite_nonexistent_dir_11b/x.csv")
    with pytest.raises(ImgSuiteError, match="filesystem root"):
        with atomic_path(target) as tmp:
            tmp.write_text("a")
    assert not target.parent.exists()
    with atomic_path(tmp_path / "new" / "deeper" / "x.csv") as tmp:  # below an existing folder: still created
        tmp.write_text("a")
    assert (tmp_path / "new" / "deeper" / "x.csv").read_text() == "a"
