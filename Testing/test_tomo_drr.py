"""DRRs: ours against plastimatch drr on the same CT, and the imgsuite drr command."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.tomo.drr import drr, hu_to_attenuation
from SlicerImgSuite.tomo.geometry import circular
from SlicerImgSuite.tomo.projset import read_projections


@pytest.fixture(scope="module")
def body_ct(tmp_path_factory):
    z, y, x = np.ogrid[:50, :128, :128]
    a = np.full((50, 128, 128), -1000, np.int16)
    body = ((x - 64) / 52.0) ** 2 + ((y - 64) / 36.0) ** 2 < 1
    a[np.broadcast_to(body, a.shape)] = 30
    lung = ((x - 44) / 12.0) ** 2 + ((y - 60) / 16.0) ** 2 < 1
    a[np.broadcast_to(lung, a.shape)] = -700
    a[10:30, 76:84, 60:68] = 900
    image = sitk.GetImageFromArray(a)
    image.SetSpacing((1.5, 1.5, 4.0))
    image.SetOrigin((-95.25, -95.25, -98.0))  # taller than the field of view: its ends are not imaged
    # real CTs have partial-volume edges; a staircase would measure Siddon-vs-Joseph edge handling instead
    image = sitk.Cast(sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), 2.0), sitk.sitkInt16)
    path = tmp_path_factory.mktemp("drr") / "ct.mha"
    sitk.WriteImage(image, str(path))
    return path


def test_drr_matches_plastimatch_within_one_percent(tmp_path, body_ct):
    # 0 and 90 degrees run the separable path, 45 and 135 the general one
    subprocess.run(
        [
            "plastimatch",
            "drr",
            "-i",
            "exact",
            "-a",
            "4",
            "-N",
            "45",
            "-r",
            "96 80",
            "-z",
            "300 250",
            "-t",
            "pfm",
            "-O",
            str(tmp_path / "pl/image"),
            str(body_ct),
        ],
        check=True,
        capture_output=True,
    )
    theirs = read_projections(tmp_path / "pl")
    ours = drr(sitk.ReadImage(str(body_ct)), theirs.geometry)
    for view in range(4):
        a, b = ours.images[view], theirs.images[view]
        rms = np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b**2))
        assert rms < 0.01, (view, rms)
        assert b.max() > 0.2  # a real signal, not two empty images


def test_hu_conversion_follows_plastimatch():
    np.testing.assert_allclose(
        hu_to_attenuation([-1000, -800, -799, 0, 1000]), [0, 0, 0.022 * 0.201, 0.022, 0.044], rtol=1e-5
    )


def test_drr_command_circle_and_sweep(tmp_path, body_ct):
    assert (
        main(
            [
                "drr",
                "-q",
                "-a",
                "3",
                "-N",
                "60",
                "-r",
                "32 24",
                "-z",
                "300 250",
                "-e",
                "-O",
                str(tmp_path / "c/image"),
                str(body_ct),
            ]
        )
        == 0
    )
    ps = read_projections(tmp_path / "c")
    assert ps.images.shape == (3, 24, 32)
    assert 0 < ps.images.min() and ps.images.max() <= 1.0  # exponential: transmission
    g = circular(3, 1000, 1500, (32, 24), (300 / 32, 250 / 24), angle_step=60)
    np.testing.assert_allclose(ps.geometry.sources, g.sources, atol=1e-3)
    out = tmp_path / "sweep.mha"
    assert (
        main(
            [
                "drr",
                "-q",
                "--sweep",
                "linear",
                "--views",
                "7",
                "--sweep-angle",
                "30",
                "--sid",
                "1800",
                "-r",
                "40 30",
                "-z",
                "400 300",
                "-O",
                str(out),
                "--input",
                str(body_ct),
            ]
        )
        == 0
    )
    sweep = read_projections(out)
    assert sweep.images.shape == (7, 30, 40)
    angles = np.degrees(
        np.arctan2(
            sweep.geometry.sources[:, 2] - sweep.geometry.centers[:, 2],
            sweep.geometry.centers[:, 1] - sweep.geometry.sources[:, 1],
        )
    )
    np.testing.assert_allclose(np.abs(angles[[0, -1]]), [15, 15], atol=1e-6)  # tube head-foot, +-15 degrees
    assert np.ptp(sweep.geometry.centers, axis=0).max() == 0  # the panel does not move


def test_drr_command_bad_input(tmp_path, capsys):
    bad = tmp_path / "ct.mha"
    bad.write_text("not an image")
    assert main(["drr", "-q", "-O", str(tmp_path / "out/image"), str(bad)]) == 2
    assert "ct.mha" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# plastimatch drr calls whose output files must be named the same by both programs (-O is a file name prefix)
SAME_NAMES = [
    ["-O", "image"],  # plastimatch's most common call: files in the current folder, -r/-z defaults 128/600
    ["-O", "out/proj", "-a", "2", "-N", "90", "-r", "16 12", "-t", "pgm"],  # out/ is made
    ["-O", "out/geo", "-G", "-a", "3", "-r", "16 12"],  # geometry only: .txt files, no CT needed
    ["-O", "win/sub", "-r", "16 24", "-z", "200 300", "-w", "2 9 -3 30", "-A", "cuda"],
    ["-O", "out/", "-r", "8 8", "-A", "CPU"],  # an empty prefix: out/0000.pfm
]


def test_output_prefix_names_files_like_plastimatch(tmp_path, body_ct, monkeypatch):
    for name in ("pl", "ours"):
        (tmp_path / name).mkdir()
    for args in SAME_NAMES:
        ct = [] if "-G" in args else [str(body_ct)]
        subprocess.run(["plastimatch", "drr", *args, *ct], cwd=tmp_path / "pl", check=True, capture_output=True)
        monkeypatch.chdir(tmp_path / "ours")
        assert main(["drr", "-q", *args, *ct]) == 0, args
    names = {d: sorted(str(p.relative_to(tmp_path / d)) for p in (tmp_path / d).rglob("*")) for d in ("pl", "ours")}
    assert names["ours"] == names["pl"]
    assert "image0000.pfm" in names["ours"] and "out/proj0001.pgm" in names["ours"]
    # same panel size, pixel pitch and image centre as plastimatch (defaults and subwindow included)
    for prefix in ("image", "win/sub", "out/proj", "out/geo"):
        ours, theirs = (_matrices(tmp_path / d, prefix) for d in ("ours", "pl"))
        assert len(ours) == len(theirs) > 0
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-7)
    for prefix in ("image", "win/sub"):
        a, b = (read_projections(tmp_path / d / prefix).images for d in ("ours", "pl"))
        assert a.shape == b.shape
    assert read_projections(tmp_path / "ours/win/sub").images.shape == (1, 24, 8)


def _matrices(folder, prefix):
    """Image centre and 3x4 matrix of each ``.txt``, as 14 numbers."""
    files = sorted(folder.glob(prefix + "[0-9]*.txt"))
    return [np.array([float(w) for w in f.read_text().split()[:14]]) for f in files]


def test_drr_subwindow_autoscale_and_pgm(tmp_path, body_ct, capsys):
    common = ["drr", "-q", "-r", "24 20", "-z", "300 250", str(body_ct)]
    assert main([*common, "-O", str(tmp_path / "full")]) == 0
    assert main([*common, "-O", str(tmp_path / "win"), "-w", "3 10 5 30"]) == 0
    full, win = read_projections(tmp_path / "full"), read_projections(tmp_path / "win")
    # rows 5..19 (clipped to the panel), columns 3..10: the same rays, so the same pixels
    np.testing.assert_allclose(win.images[0], full.images[0, 5:20, 3:11], rtol=1e-5, atol=1e-7)
    assert main([*common, "-O", str(tmp_path / "auto"), "--autoscale", "--autoscale-range", "10 20", "-S", "x"]) == 0
    assert "-S" in capsys.readouterr().err  # plastimatch's ray debug files: accepted, said not written
    auto = read_projections(tmp_path / "auto").images[0]
    assert (auto.min(), auto.max()) == (10, 20)
    np.testing.assert_allclose(auto, 10 + 10 * (full.images[0] - full.images[0].min()) / np.ptp(full.images[0]), 1e-5)
    assert main([*common, "-O", str(tmp_path / "pgm"), "-s", "1000", "-t", "pgm"]) == 0
    text = (tmp_path / "pgm0000.pgm").read_text().split("\n", 4)
    assert text[0] == "P2" and text[2:4] == ["24 20", "65535"]
    values = np.array(text[4].split(), float).reshape(20, 24)
    np.testing.assert_array_equal(values, np.floor(np.clip(full.images[0] * 1000, 0, 65535) + 0.5))
    assert main([*common, "-O", str(tmp_path / "none"), "-w", "30 40 0 5"]) == 2
    assert "subwindow" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sweep", "linear", "-a", "5", "-y", "10"], "-a, -y"),
        (["--sweep", "arc", "--vup", "0 1 0"], "--vup"),
        (["--views", "9"], "need --sweep"),
        (["-O", "x.mha", "-G"], "prefix"),
    ],
)
def test_drr_refuses_options_it_would_ignore(tmp_path, body_ct, capsys, args, message):
    out = ["-O", str(tmp_path / "p")] if "-O" not in args else []
    argv = ["drr", "-q", *out, *args, str(body_ct)]
    assert main([a if a != "x.mha" else str(tmp_path / a) for a in argv]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_drr_of_what_is_not_a_ct_in_hu(body_ct):
    # a dose or an MR read as HU projected without a word; a CT stored without its rescale (air 0) made air
    # attenuate as water, silently. Now: a dose is refused, values with no air in HU warn, a CT in HU does not
    import warnings

    from SlicerImgSuite.errors import ImgSuiteError

    ct = sitk.ReadImage(str(body_ct))
    g = circular(1, sad=1000, sid=1500, dims=(16, 16), pixel_size=(8, 8))
    dose = sitk.Cast(ct, sitk.sitkFloat32) * 0 + 2.0
    dose.SetMetaData("DoseUnits", "GY")
    with pytest.raises(ImgSuiteError, match="a DRR needs a CT in HU; this image is a dose"):
        drr(dose, g)
    unsigned = sitk.Cast(sitk.Cast(ct, sitk.sitkInt32) - int(sitk.GetArrayViewFromImage(ct).min()),
                         sitk.sitkUInt16)  # fmt: skip
    with pytest.warns(UserWarning, match="takes the values as HU, but none is below 0"):
        drr(unsigned, g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drr(ct, g)
        drr(unsigned, g, hu_conversion="none")  # values taken as they are: nothing to warn of
