"""``convert``'s structure and pointset options (issue 16 item 1) side by side with Debian plastimatch 1.9.4.

``--input-ss-img`` (plastimatch's own ss-img: a vector of uchar planes), ``--prune-empty``, ``--output-colormap``,
``--output-prefix-fcsv`` and ``--output-pointset``. The structures are the IBSI STS_001 RTSTRUCT (real, MIM) and the
demo phantom's eight structures. plastimatch 1.9.4 reads a Slicer 5 ``.fcsv`` (CoordinateSystem = LPS) as RAS, so
x and y come back negated; ours writes ``CoordinateSystem = RAS``, which both read right (tested).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.registration.landmarks import read_landmarks
from SlicerImgSuite.rtstruct.outputs import masks_from_ss_image


def _plastimatch(*argv):
    subprocess.run(["plastimatch", *map(str, argv)], check=True, capture_output=True, timeout=300)


def _convert(*argv) -> int:
    return main(["convert", "-q", *map(str, argv)])


@pytest.fixture(scope="module")
def sts(shared_data):
    return shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom"


@pytest.fixture(scope="module")
def plastimatch_ss(phantom, tmp_path_factory):
    """plastimatch's ss-img, ss-list and CT image of the phantom (what a plastimatch user has on disk)."""
    d = tmp_path_factory.mktemp("plm_ss")
    _plastimatch("convert", "--input", phantom.rtstruct, "--referenced-ct", phantom.ct_dir, "--output-ss-img",
                 d / "ss.nrrd", "--output-ss-list", d / "ss.txt", "--output-colormap", d / "colormap.txt")  # fmt: skip
    _plastimatch("convert", "--input", phantom.ct_dir, "--output-img", d / "ct.nrrd")
    return d


def _bits(path, count):
    return masks_from_ss_image(sitk.ReadImage(str(path)), count)


def test_image_and_ss_img_become_a_series_and_an_rtstruct_plastimatch_rasterizes_back(plastimatch_ss, tmp_path):
    d = plastimatch_ss
    assert sitk.ReadImage(str(d / "ss.nrrd")).GetNumberOfComponentsPerPixel() == 2  # uchar planes, 8 bits each
    assert _convert("--input", d / "ct.nrrd", "--input-ss-img", d / "ss.nrrd", "--input-ss-list", d / "ss.txt",
                    "--output-dicom", tmp_path / "study") == 0  # fmt: skip
    _plastimatch("convert", "--input", tmp_path / "study" / "RS.dcm", "--referenced-ct", tmp_path / "study",
                 "--output-ss-img", tmp_path / "back.nrrd", "--output-ss-list", tmp_path / "back.txt")  # fmt: skip
    assert (tmp_path / "back.txt").read_text() == (d / "ss.txt").read_text()  # names, colours, order
    for n, (original, back) in enumerate(zip(_bits(d / "ss.nrrd", 8), _bits(tmp_path / "back.nrrd", 8))):
        assert original.sum() > 0
        np.testing.assert_array_equal(back, original, err_msg=f"structure {n}")
    for path in (tmp_path / "study" / "RS.dcm", sorted((tmp_path / "study").glob("CT*.dcm"))[0]):
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        assert "Error" not in report.stdout + report.stderr, (path, report.stderr)


def test_ss_img_alone_with_referenced_ct_matches_plastimatch(sts, tmp_path):
    _plastimatch("convert", "--input", sts / "mask" / "RS.dcm", "--referenced-ct", sts / "image",
                 "--output-ss-img", tmp_path / "ss.nrrd", "--output-ss-list", tmp_path / "ss.txt")  # fmt: skip
    assert _convert("--input-ss-img", tmp_path / "ss.nrrd", "--input-ss-list", tmp_path / "ss.txt",
                    "--dicom-dir", sts / "image", "--output-dicom", tmp_path / "ours") == 0  # fmt: skip
    _plastimatch("convert", "--input", tmp_path / "ours" / "RS.dcm", "--referenced-ct", sts / "image",
                 "--output-ss-img", tmp_path / "back.nrrd")  # fmt: skip
    original, back = _bits(tmp_path / "ss.nrrd", 1)[0], _bits(tmp_path / "back.nrrd", 1)[0]
    assert original.sum() == 117145  # the IBSI reference mask's voxel count (SOURCE.md)
    np.testing.assert_array_equal(back, original)


def test_colormap_is_plastimatchs(phantom, plastimatch_ss, tmp_path):
    assert _convert("--input", phantom.rtstruct, "--referenced-ct", phantom.ct_dir,
                    "--output-colormap", tmp_path / "colormap.txt") == 0  # fmt: skip
    assert (tmp_path / "colormap.txt").read_text().split() == (plastimatch_ss / "colormap.txt").read_text().split()


def test_prune_empty_drops_the_empty_structure_as_plastimatch_does(phantom, tmp_path):
    from SlicerImgSuite.io import read_image
    from SlicerImgSuite.rtstruct.write import write_rtstruct_from_masks

    empty = sitk.Image(phantom.ct.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(read_image(phantom.ct_dir))
    masks = {"GTV": phantom.masks["GTV"], "EMPTY": empty, "PTV": phantom.masks["PTV"]}
    write_rtstruct_from_masks(tmp_path / "RS.dcm", phantom.ct_dir, masks)
    outputs = ["--output-ss-list", "list.txt", "--output-labelmap", "labels.nrrd", "--output-colormap", "cmap.txt"]
    _plastimatch("convert", "--input", tmp_path / "RS.dcm", "--referenced-ct", phantom.ct_dir, "--prune-empty",
                 *[tmp_path / f"plm_{w}" if "." in w else w for w in outputs])  # fmt: skip
    assert _convert("--input", tmp_path / "RS.dcm", "--referenced-ct", phantom.ct_dir, "--prune-empty",
                    *[tmp_path / f"ours_{w}" if "." in w else w for w in outputs]) == 0  # fmt: skip
    ours, theirs = (tmp_path / "ours_list.txt").read_text(), (tmp_path / "plm_list.txt").read_text()
    assert [line.split("|")[2] for line in ours.splitlines()] == ["GTV", "PTV"]
    assert [line.split("|")[::2] for line in ours.splitlines()] == [
        line.split("|")[::2] for line in theirs.splitlines()
    ]
    assert (tmp_path / "ours_cmap.txt").read_text().split()[::6] == (tmp_path / "plm_cmap.txt").read_text().split()[::6]
    labels = [sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"{w}_labels.nrrd"))) for w in ("ours", "plm")]
    np.testing.assert_array_equal(labels[0], labels[1])


def test_prefix_fcsv_has_plastimatchs_points_and_both_readers_agree(sts, tmp_path):
    _plastimatch("convert", "--input", sts / "mask" / "RS.dcm", "--referenced-ct", sts / "image",
                 "--output-prefix-fcsv", tmp_path / "plm")  # fmt: skip
    assert _convert("--input", sts / "mask" / "RS.dcm", "--referenced-ct", sts / "image",
                    "--output-prefix-fcsv", tmp_path / "ours") == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == ["GTV_Mass_CT.fcsv"]
    ours, labels = read_landmarks(tmp_path / "ours" / "GTV_Mass_CT.fcsv")  # through Slicer's markups reader
    theirs, their_labels = read_landmarks(tmp_path / "plm" / "GTV_Mass_CT.fcsv")
    assert labels == their_labels and len(ours) == 21029  # every contour point of the 32 contours
    np.testing.assert_allclose(ours, theirs, atol=1e-4)  # plastimatch writes float32
    _plastimatch("convert", "--input", tmp_path / "ours" / "GTV_Mass_CT.fcsv", "--output-pointset", tmp_path / "b.txt")
    np.testing.assert_allclose(np.loadtxt(tmp_path / "b.txt"), ours, atol=1e-4)  # plastimatch reads ours right


@pytest.mark.parametrize("suffix", ["txt", "fcsv"])
def test_pointset_conversion_matches_plastimatch(tmp_path, suffix):
    (tmp_path / "in.txt").write_text("10 20 30\n-5.5 7.25 100\n")
    _plastimatch("convert", "--input", tmp_path / "in.txt", "--output-pointset", tmp_path / "plm.fcsv")
    assert _convert("--input", tmp_path / "plm.fcsv", "--output-pointset", tmp_path / f"ours.{suffix}") == 0
    _plastimatch("convert", "--input", tmp_path / f"ours.{suffix}", "--output-pointset", tmp_path / "back.txt")
    np.testing.assert_allclose(np.loadtxt(tmp_path / "back.txt"), [[10, 20, 30], [-5.5, 7.25, 100]])
    np.testing.assert_allclose(read_landmarks(tmp_path / f"ours.{suffix}")[0], [[10, 20, 30], [-5.5, 7.25, 100]])


def test_bad_structure_inputs_are_one_line(phantom, plastimatch_ss, tmp_path, capsys):
    d = plastimatch_ss
    assert _convert("--input", d / "ct.nrrd", "--input-ss-img", d / "ss.nrrd", "--output-dicom", tmp_path / "x") == 2
    assert "--input-ss-list" in capsys.readouterr().err and not (tmp_path / "x").exists()
    (tmp_path / "long.txt").write_text("".join(f"{n}|255 0 0|S{n}\n" for n in range(20)))
    assert _convert("--input", d / "ct.nrrd", "--input-ss-img", d / "ss.nrrd", "--input-ss-list",
                    tmp_path / "long.txt", "--output-dicom", tmp_path / "x") == 2  # fmt: skip
    assert "holds 16 bits" in capsys.readouterr().err and not (tmp_path / "x").exists()
    (tmp_path / "bad.txt").write_text("1 2\n")
    assert _convert("--input", tmp_path / "bad.txt", "--output-pointset", tmp_path / "o.fcsv") == 2
    err = capsys.readouterr().err
    assert "bad.txt" in err and "line 1" in err and not (tmp_path / "o.fcsv").exists()


def _rtstruct_in(folder):
    import pydicom

    return next(pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.name.lower().startswith(("rs", "rtss")))


@pytest.mark.parametrize("percent", [50, 90])
def test_simplify_keeps_plastimatchs_counts_and_the_shape_better(sts, tmp_path, percent):
    """plastimatch drops random points (and segfaults at 99 %); ours drops least-area points first, same counts."""
    _plastimatch("convert", "--input", sts / "mask" / "RS.dcm", "--referenced-ct", sts / "image",
                 "--simplify-perc", percent, "--output-dicom", tmp_path / "plm")  # fmt: skip
    for run in ("ours", "again"):
        assert _convert("--input", sts / "mask" / "RS.dcm", "--referenced-ct", sts / "image",
                        "--simplify-perc", percent, "--output-dicom", tmp_path / run) == 0  # fmt: skip
    counts = {
        who: [int(c.NumberOfContourPoints) for c in _rtstruct_in(tmp_path / who).ROIContourSequence[0].ContourSequence]
        for who in ("ours", "plm", "again")
    }
    assert counts["ours"] == counts["plm"] and sum(counts["ours"]) < 21029 * (100 - percent) / 100
    again = _rtstruct_in(tmp_path / "again").ROIContourSequence[0].ContourSequence
    assert [c.ContourData for c in _rtstruct_in(tmp_path / "ours").ROIContourSequence[0].ContourSequence] == [
        c.ContourData for c in again
    ]  # deterministic
    _plastimatch("convert", "--input", sts / "mask" / "RS.dcm", "--referenced-ct", sts / "image",
                 "--output-ss-img", tmp_path / "full.nrrd")  # fmt: skip
    full = _bits(tmp_path / "full.nrrd", 1)[0]
    wrong = {}
    for who in ("ours", "plm"):
        rs = next(p for p in (tmp_path / who).iterdir() if p.name.lower().startswith(("rs", "rtss")))
        _plastimatch(
            "convert", "--input", rs, "--referenced-ct", sts / "image", "--output-ss-img", tmp_path / f"{who}.nrrd"
        )
        wrong[who] = int((_bits(tmp_path / f"{who}.nrrd", 1)[0] != full).sum())
    assert wrong["ours"] < wrong["plm"] / 2, wrong
