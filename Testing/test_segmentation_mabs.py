"""Multi-atlas segmentation: atlases made from the phantom by known similarity transforms, fused back."""

from __future__ import annotations

import re
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
    fused = segment_with_atlases(small.ct, atlases, stages=AFFINE, fusion="vote")
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


# --- training, pre-alignment and atlas selection on tiny synthetic atlases (16 x 32 x 32 voxels) ---------------

TINY = ["BONE", "ORGAN"]


def _tiny(name, shift=(0, 0, 0), bad=False, far_object=False):
    """A body with an organ and a bone, moved by ``shift`` voxels (x, y, z); ``bad``: another anatomy."""
    import numpy as np

    z, y, x = np.mgrid[:16, :32, :32]
    cx, cy, cz = 16 + shift[0], 16 + shift[1], 8 + shift[2]
    image = np.full((16, 32, 32), -1000.0, np.float32)
    body = ((x - cx) / 11.0) ** 2 + ((y - cy) / (6.0 if bad else 9.0)) ** 2 + ((z - cz) / 6.0) ** 2 < 1
    image[body] = 0.0
    side = 5 if bad else -4
    organ = ((x - cx - side) ** 2 + (y - cy) ** 2 + ((z - cz) * 1.25) ** 2 < 16) & body
    bone = (abs(x - cx + side) <= 1) & (abs(y - cy - 2) <= 1) & (abs(z - cz) <= 3)
    image[organ] = 60.0
    image[bone] = 700.0
    if far_object:  # a second object far from the organ pulls the body's centre of gravity away
        image[4:12, 1:5, 1:8] = 200.0

    def img(a, dtype):
        out = sitk.GetImageFromArray(a.astype(dtype))
        out.SetSpacing((4.0, 4.0, 5.0))
        return out

    return Atlas(name, img(image, "float32"), {"BONE": img(bone, "uint8"), "ORGAN": img(organ, "uint8")})


def _write_atlases(folder, atlases):
    from SlicerImgSuite.io import write_image

    for atlas in atlases:
        write_image(atlas.image, folder / atlas.name / "img.nrrd")
        for name, mask in atlas.structures.items():
            write_image(mask, folder / atlas.name / "structures" / f"{name}.nrrd")


def _config(tmp_path, extra="", regs="trans.txt", methods="vote"):
    (tmp_path / "trans.txt").write_text("[GLOBAL]\n[STAGE]\nxform=translation\nres=1 1 1\nmax_its=60\n")
    (tmp_path / "center.txt").write_text("[GLOBAL]\n[STAGE]\nxform=align_center\n")
    cfg = tmp_path / "mabs.cfg"
    cfg.write_text(
        f"[TRAINING]\natlas_dir = atlases\n[REGISTRATION]\nregistration_config = {regs}\n"
        f"[FUSION]\nmethod = {methods}\n{extra}"
    )
    return cfg


def test_mabs_train_leave_one_out_table(tmp_path, capsys):
    import csv

    from SlicerImgSuite.cli import main
    from SlicerImgSuite.registration import read_command_file

    atlases = [_tiny(f"a{i}", s) for i, s in enumerate([(0, 0, 0), (3, -2, 1), (-2, 3, 0), (2, 2, -1)])]
    _write_atlases(tmp_path / "atlases", atlases)
    cfg = _config(tmp_path, regs="trans.txt, center.txt", methods="vote, staple")
    assert main(["mabs", "--train", "--output", str(tmp_path / "train"), str(cfg)]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "train" / "mabs-train.csv").open()))
    # 4 targets x 2 registrations x 2 structures x (3 single registrations + 2 fusions)
    assert len(rows) == 4 * 2 * 2 * 5
    summary = {(r["registration"], r["fusion"], r["structure"]): float(r["mean_dice"])
               for r in csv.DictReader((tmp_path / "train" / "mabs-train-summary.csv").open())}  # fmt: skip
    assert "mean_dice" in printed and len(summary) == 2 * 3 * 2
    for structure in TINY:
        for fusion in ("vote", "staple", "registration"):
            # the translation stage finds the shifts; centring the (identical) grids does nothing
            assert summary[("trans.txt", fusion, structure)] > 0.9
            assert summary[("trans.txt", fusion, structure)] > summary[("center.txt", fusion, structure)] + 0.2
    # one row recomputed independently: atlas a2 left out, the others fused by vote after the translation stage
    fused = segment_with_atlases(
        atlases[2].image,
        [atlases[i] for i in (0, 1, 3)],
        stages=read_command_file(tmp_path / "trans.txt").stages,
        fusion="vote",
    )
    row = next(r for r in rows if (r["target"], r["registration"], r["fusion"], r["structure"]) ==
               ("a2", "trans.txt", "vote", "ORGAN"))  # fmt: skip
    assert float(row["dice"]) == pytest.approx(_dice(fused["ORGAN"], atlases[2].structures["ORGAN"]), abs=1e-12)
    assert main(["mabs", "--train", str(cfg)]) == 2  # no --output and no training_dir


def test_mabs_pre_align_and_input_roi(tmp_path, capsys):
    import numpy as np

    from SlicerImgSuite.cli import main
    from SlicerImgSuite.io import write_image
    from SlicerImgSuite.segmentation.mabs import PreAlign, prealign

    target = _tiny("target", (-5, 4, 2))
    atlases = [_tiny("a0", (5, -4, 0)), _tiny("a1", (4, -5, -1), far_object=True)]
    _write_atlases(tmp_path / "atlases", atlases)
    write_image(target.image, tmp_path / "target.nrrd")
    write_image(target.structures["ORGAN"], tmp_path / "roi.nrrd")
    # the bodies' centres of gravity give a0's shift exactly (whole voxels); a1's far object pulls them apart
    np.testing.assert_allclose(prealign(target.image, atlases[0]).GetOffset(), (40.0, -32.0, -10.0), atol=1e-6)
    biased = np.array(prealign(target.image, atlases[1]).GetOffset())
    exact = np.array(prealign(target.image, atlases[1], PreAlign(target.structures["ORGAN"], "ORGAN")).GetOffset())
    np.testing.assert_allclose(exact, (36.0, -36.0, -15.0), atol=1e-6)
    assert np.abs(biased - exact).max() > 4.0
    cfg = _config(tmp_path, regs="center.txt")
    dice = {}
    for label, extra in (("none", []), ("pre", ["--pre-align"]), ("roi", ["--input-roi", str(tmp_path / "roi.nrrd")])):
        args = ["mabs", "-q", "--segment", str(tmp_path / "target.nrrd"), "--output", str(tmp_path / label), *extra]
        if label == "roi":
            cfg.write_text(cfg.read_text() + "[PREALIGNMENT]\nroi_structure = ORGAN\n")
        assert main([*args, str(cfg)]) == 0, capsys.readouterr().err
        dice[label] = _dice(sitk.ReadImage(str(tmp_path / label / "ORGAN.nrrd")), target.structures["ORGAN"])
    assert dice["none"] < 0.3 and dice["pre"] > dice["none"] + 0.3 and dice["roi"] > 0.95, dice
    cfg.write_text(cfg.read_text().replace("roi_structure = ORGAN", "roi_structure = LIVER"))
    args = ["mabs", "--segment", str(tmp_path / "target.nrrd"), "--output", str(tmp_path / "bad")]
    assert main([*args, "--input-roi", str(tmp_path / "roi.nrrd"), str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "LIVER" in err and "\n" not in err and not (tmp_path / "bad").exists()


def test_mabs_atlas_selection_ranks_by_similarity_after_pre_alignment(tmp_path, capsys):
    import csv
    import io

    from SlicerImgSuite.cli import main
    from SlicerImgSuite.io import write_image

    target = _tiny("target", (1, -1, 0))
    atlases = [
        _tiny("a_bad", (0, 0, 0), bad=True),
        _tiny("b", (-4, 3, 1)),
        _tiny("c", (3, 4, -1)),
        _tiny("d", (5, 0, 0)),
    ]
    _write_atlases(tmp_path / "atlases", atlases)
    write_image(target.image, tmp_path / "target.nrrd")
    extra = (
        "[ATLAS-SELECTION]\nenable_atlas_selection = true\natlas_selection_criteria = nmi\natlases_from_ranking = 3\n"
    )
    cfg = _config(tmp_path, extra)
    assert main(["mabs", "--atlas-selection", str(tmp_path / "target.nrrd"), "--pre-align", str(cfg)]) == 0
    ranking = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["atlas"] for r in ranking][-1] == "a_bad" and ranking[-1]["selected"] == "False"
    assert [r["selected"] for r in ranking[:3]] == ["True"] * 3
    # without pre-alignment the shifted good atlases look less alike than after it
    assert main(["mabs", "--atlas-selection", str(tmp_path / "target.nrrd"), str(cfg)]) == 0
    raw = {r["atlas"]: float(r["similarity"]) for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    aligned = {r["atlas"]: float(r["similarity"]) for r in ranking}
    assert all(aligned[n] > raw[n] for n in ("b", "c", "d"))
    # the segmentation uses the three selected atlases: the wrong anatomy cannot outvote them
    args = ["mabs", "-q", "--pre-align", "--segment", str(tmp_path / "target.nrrd"), "--output", str(tmp_path / "out")]
    assert main([*args, str(cfg)]) == 0
    assert _dice(sitk.ReadImage(str(tmp_path / "out" / "ORGAN.nrrd")), target.structures["ORGAN"]) > 0.9
    cfg.write_text(cfg.read_text().replace("= nmi", "= ssd"))
    assert main(["mabs", "--atlas-selection", str(tmp_path / "target.nrrd"), str(cfg)]) == 2
    assert "atlas_selection_criteria" in capsys.readouterr().err


def test_atlas_selection_equals_plastimatch_mabs(tmp_path, capsys):
    """plastimatch 1.9.4 ``mabs --atlas-selection`` on the same atlases (its converted layout, training_dir/convert):
    the same ranking and, for nmi, the same similarity values (it prints six decimals); for mse the same order."""
    import csv
    import io
    import re
    import shutil

    from SlicerImgSuite.cli import main
    from SlicerImgSuite.io import write_image

    target = _tiny("target", (1, -1, 0))
    atlases = [_tiny("a_bad", bad=True), _tiny("b", (-4, 3, 1)), _tiny("c", (3, 4, -1)), _tiny("d", (5, 0, 0))]
    _write_atlases(tmp_path / "atlases", atlases)
    shutil.copytree(tmp_path / "atlases", tmp_path / "train" / "convert")
    write_image(target.image, tmp_path / "target.nrrd")
    for criteria in ("nmi", "mse"):
        cfg = _config(tmp_path, f"[ATLAS-SELECTION]\nenable_atlas_selection = true\natlas_selection_criteria = "
                                f"{criteria}\natlases_from_ranking = 3\n")  # fmt: skip
        (tmp_path / "pl.cfg").write_text(
            f"[PREALIGNMENT]\nmode=disabled\n[ATLAS-SELECTION]\nenable_atlas_selection=true\n"
            f"atlas_selection_criteria={criteria}\natlases_from_ranking=3\n[TRAINING]\natlas_dir=atlases\n"
            "training_dir=train\n[REGISTRATION]\nregistration_config=trans.txt\n"
            "[LABELING]\ninput=target.nrrd\noutput=plout\n"  # without [LABELING] plastimatch 1.9.4 segfaults
        )
        run = subprocess.run(
            ["plastimatch", "mabs", "--atlas-selection", "target.nrrd", "pl.cfg"],
            cwd=tmp_path, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert main(["mabs", "--atlas-selection", str(tmp_path / "target.nrrd"), str(cfg)]) == 0
        ours = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        selected = [r["atlas"] for r in ours if r["selected"] == "True"]
        if criteria == "nmi":
            theirs = re.findall(r"Atlas (\S+) \(# \d+\) having similarity value = ([\d.]+)", run.stdout)
            assert selected == [name for name, _ in theirs]
            for row, (_, value) in zip(ours, theirs):
                assert float(row["similarity"]) == pytest.approx(float(value), abs=2e-6)
        else:
            assert selected == re.findall(r"Selected atlas (\S+)", run.stdout)
        assert len(selected) == 3


def test_mabs_config_reads_plastimatch_fusion_criteria(tmp_path):
    from SlicerImgSuite.segmentation.atlas import read_mabs_config

    (tmp_path / "atlases").mkdir()
    (tmp_path / "a.cfg").write_text("[TRAINING]\natlas_dir = atlases\nfusion_criteria = gaussian,staple\n")
    assert read_mabs_config(tmp_path / "a.cfg").fusions == ["gaussian", "staple"]
    (tmp_path / "b.cfg").write_text("[TRAINING]\natlas_dir = atlases\nfusion_criteria = average\n")
    with pytest.raises(ImgSuiteError, match="average"):
        read_mabs_config(tmp_path / "b.cfg")


@pytest.mark.parametrize(("extra", "expect"), [
    ("[FUSION]\ngaussian_sigma = abc\n", "[FUSION] gaussian_sigma = 'abc' is not a number"),  # was a traceback
    ("[FUSION]\ngaussian_sigma = nan\n", "gaussian_sigma nan must be a positive"),  # was taken: no weights
    ("[FUSION]\ngaussian_sigma = 0\n", "gaussian_sigma 0.0 must be a positive"),
    ("[FUSION]\nlocal_radius = -1\n", "local_radius -1.0 must be 0 to 500"),
    ("[FUSION]\nlocal_radius = 1e9\n", "local_radius 1000000000.0 must be 0 to 500"),  # took the machine's memory
    ("[ATLAS-SELECTION]\nenable_atlas_selection = maybe\n", "enable_atlas_selection = 'maybe': use true or false"),
    ("[ATLAS-SELECTION]\nenable_atlas_selection = true\natlases_from_ranking = -2\n", "atlases_from_ranking must be"),
])
def test_mabs_config_numbers_and_switches_are_checked(tmp_path, extra, expect):
    from SlicerImgSuite.segmentation.atlas import read_mabs_config

    (tmp_path / "atlases").mkdir()
    (tmp_path / "mabs.cfg").write_text("[TRAINING]\natlas_dir = atlases\n" + extra)
    with pytest.raises(ImgSuiteError, match=re.escape(expect)) as err:
        read_mabs_config(tmp_path / "mabs.cfg")
    assert "mabs.cfg" in str(err.value)


@pytest.mark.parametrize(("extra", "expect"), [
    # a misspelt key or a lower-case section fell back to the default (sigma 50 HU) with no word
    ("[FUSION]\ngausian_sigma = 20\n", "[FUSION] unknown key 'gausian_sigma' (known: gaussian_sigma, local_radius"),
    ("[fusion]\nmethod = vote\n", "unknown section [fusion]"),
    ("[LABELING]\noutput_dir = out\n", "[LABELING] unknown key 'output_dir'"),
    ("[FUSION]\ngaussian_sigma\n", "[FUSION] gaussian_sigma has no value"),
])
def test_mabs_config_unknown_keys_and_sections_are_refused(tmp_path, extra, expect):
    from SlicerImgSuite.segmentation.atlas import read_mabs_config

    (tmp_path / "atlases").mkdir()
    (tmp_path / "mabs.cfg").write_text("[TRAINING]\natlas_dir = atlases\n" + extra)
    with pytest.raises(ImgSuiteError, match=re.escape(expect)) as err:
        read_mabs_config(tmp_path / "mabs.cfg")
    assert "mabs.cfg" in str(err.value)


def test_mabs_config_plastimatch_only_keys_warn(tmp_path):
    from SlicerImgSuite.segmentation.atlas import read_mabs_config

    (tmp_path / "atlases").mkdir()
    (tmp_path / "mabs.cfg").write_text(
        "[TRAINING]\natlas_dir = atlases\nthreshold_values = 0.4\n[STRUCTURES]\nParotid_L\n"
        "[OPTIMIZATION_RESULT]\ngaussian_weighting_voting_sigma = 20\n"
    )
    with pytest.warns(UserWarning) as caught:
        read_mabs_config(tmp_path / "mabs.cfg")
    said = [str(w.message) for w in caught]
    assert any("[TRAINING] threshold_values is a plastimatch mabs setting not available here" in w for w in said)
    assert any("[OPTIMIZATION_RESULT] gaussian_weighting_voting_sigma" in w for w in said)


def test_mabs_config_with_a_byte_order_mark_or_in_utf16(tmp_path):
    from SlicerImgSuite.segmentation.atlas import read_mabs_config

    (tmp_path / "atlases").mkdir()
    text = "[TRAINING]\r\natlas_dir = atlases\r\n[FUSION]\r\nmethod = vote\r\n"
    (tmp_path / "bom.cfg").write_bytes(text.encode("utf-8-sig"))  # Notepad: was "no section headers"
    assert read_mabs_config(tmp_path / "bom.cfg").fusions == ["vote"]
    (tmp_path / "u16.cfg").write_bytes(text.encode("utf-16"))  # PowerShell's '>': was a traceback
    with pytest.raises(ImgSuiteError, match=r"u16.cfg: not a UTF-8 text file"):
        read_mabs_config(tmp_path / "u16.cfg")


def test_mabs_registration_file_global_keys_are_said_to_be_ignored(tmp_path):
    # fixed_roi in the registration file restricted nothing (each atlas and the target are the images), unsaid
    from SlicerImgSuite.segmentation.atlas import read_mabs_config

    (tmp_path / "atlases").mkdir()
    (tmp_path / "reg.txt").write_text("[GLOBAL]\nfixed_roi = body.nrrd\n[STAGE]\nxform = affine\n")
    (tmp_path / "mabs.cfg").write_text("[TRAINING]\natlas_dir = atlases\n[REGISTRATION]\nregistration_config = reg.txt\n")
    with pytest.warns(UserWarning, match=r"reg.txt: \[GLOBAL\] fixed_roi ignored: mabs registers each atlas"):
        cfg = read_mabs_config(tmp_path / "mabs.cfg")
    assert cfg.registrations["reg.txt"][0]["xform"] == "affine"
