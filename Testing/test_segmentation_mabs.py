"""Multi-atlas segmentation: atlases made from the phantom by known similarity transforms, fused back."""

from __future__ import annotations

import subprocess
import sys

import pydicom
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.segmentation.atlas import Atlas, fuse_labels, read_atlas, segment_with_atlases

STRUCTURES = ["HEART", "GTV", "LUNG_L", "SPINAL_CORD"]
AFFINE = [{"xform": "align_center"}, {"xform": "affine", "res": [2, 2, 1], "max_its": 100}]


def _dice(a, b):
    a, b = sitk.GetArrayFromImage(a) > 0, sitk.GetArrayFromImage(b) > 0
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from SlicerImgSuite.demo.phantom import make_phantom

    return make_phantom(tmp_path_factory.mktemp("mabs"), shape=(48, 48, 24), spacing=(6.4, 6.4, 6.0))


@pytest.fixture(scope="module")
def atlases(small):
    out = []
    for i, (shift, scale) in enumerate([((8, -6, 4), 1.05), ((-6, 5, -3), 0.95), ((4, 8, 0), 1.0)]):
        t = sitk.Similarity3DTransform()
        t.SetScale(scale)
        t.SetTranslation(shift)
        image = sitk.Resample(small.ct, small.ct, t, sitk.sitkLinear, -1000)
        masks = {n: sitk.Resample(small.masks[n], small.masks[n], t, sitk.sitkNearestNeighbor, 0) for n in STRUCTURES}
        out.append(Atlas(f"atlas{i}", image, masks))
    return out


def test_atlases_recover_the_truth(small, atlases):
    before = min(_dice(atlases[0].structures[n], small.masks[n]) for n in STRUCTURES)
    fused = segment_with_atlases(small.ct, atlases, AFFINE, fusion="vote")
    after = {n: _dice(fused[n], small.masks[n]) for n in STRUCTURES}
    assert before < 0.7 and min(after.values()) > 0.93, after
    assert fused["GTV"].GetSize() == small.ct.GetSize() and fused["GTV"].GetOrigin() == small.ct.GetOrigin()


def test_fusion_methods():
    grid = sitk.Image([10, 10, 4], sitk.sitkUInt8)
    target = sitk.Cast(grid, sitk.sitkFloat32)
    a, b, c = sitk.Image(grid), sitk.Image(grid), sitk.Image(grid)
    a[2:6, 2:6, :] = 1
    b[2:6, 2:6, :] = 1
    c[5:9, 5:9, :] = 1
    vote = sitk.GetArrayFromImage(fuse_labels([a, b, c], "vote"))
    assert vote.sum() == 16 * 4
    staple = sitk.GetArrayFromImage(fuse_labels([a, b, c], "staple"))
    assert staple[:, 3, 3].all() and not staple[:, 7, 7].any()
    # locally weighted voting: only atlas c looks like the target, so its label wins against the majority
    look_alike, different = sitk.Image(target), sitk.Image(target) + 400.0
    local = sitk.GetArrayFromImage(fuse_labels([a, b, c], "gaussian", target, [different, different, look_alike]))
    assert local[:, 7, 7].all() and not local[:, 3, 3].any()
    with pytest.raises(ImgSuiteError, match="fusion"):
        fuse_labels([a], "average")


def test_cli_mabs_config_writes_masks_and_rtstruct(small, atlases, tmp_path):
    from SlicerImgSuite.io import write_image

    for atlas in atlases:
        write_image(atlas.image, tmp_path / "atlases" / atlas.name / "img.nrrd")
        for name, mask in atlas.structures.items():
            write_image(mask, tmp_path / "atlases" / atlas.name / "structures" / f"{name}.nrrd")
    assert sorted(read_atlas(tmp_path / "atlases" / "atlas0").structures) == sorted(STRUCTURES)
    (tmp_path / "reg.txt").write_text(
        "[GLOBAL]\n[STAGE]\nxform=align_center\n[STAGE]\nxform=affine\nres=2 2 1\nmax_its=100\n"
    )
    (tmp_path / "mabs.cfg").write_text(
        "[TRAINING]\natlas_dir = atlases\n[REGISTRATION]\nregistration_config = reg.txt\n"
        f"[LABELING]\ninput = {small.ct_dir}\noutput = out\noutput_dicom = out_rs/RS.dcm\n[FUSION]\nmethod = staple\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "SlicerImgSuite.cli", "mabs", "--config", str(tmp_path / "mabs.cfg")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    for name in STRUCTURES:
        assert _dice(sitk.ReadImage(str(tmp_path / "out" / f"{name}.nrrd")), small.masks[name]) > 0.9
    rs = pydicom.dcmread(tmp_path / "out_rs" / "RS.dcm")
    assert rs.Modality == "RTSTRUCT"
    assert sorted(r.ROIName for r in rs.StructureSetROISequence) == sorted(STRUCTURES)


def test_mabs_bad_config(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[TRAINING]\natlas_dir = nowhere\n")
    run = subprocess.run([sys.executable, "-m", "SlicerImgSuite.cli", "mabs", str(cfg)], capture_output=True, text=True)
    assert run.returncode == 2 and "atlas_dir" in run.stderr
    (tmp_path / "atlases" / "a1").mkdir(parents=True)
    with pytest.raises(ImgSuiteError, match="img"):
        read_atlas(tmp_path / "atlases" / "a1")


def test_rtstruct_output_needs_a_dicom_target_before_any_registration(tmp_path):
    from SlicerImgSuite.segmentation.atlas import run_mabs_config

    (tmp_path / "atlases" / "a1").mkdir(parents=True)  # no img: reading it would fail later, if ever reached
    target = tmp_path / "ct.nrrd"
    sitk.WriteImage(sitk.Image(8, 8, 4, sitk.sitkInt16), str(target))
    (tmp_path / "mabs.cfg").write_text(
        f"[TRAINING]\natlas_dir = atlases\n[LABELING]\ninput = {target}\noutput = out\noutput_dicom = RS.dcm\n"
    )
    with pytest.raises(ImgSuiteError, match="ct.nrrd: an RTSTRUCT needs a DICOM CT folder"):
        run_mabs_config(tmp_path / "mabs.cfg")
    assert not (tmp_path / "out").exists() and not (tmp_path / "RS.dcm").exists()
