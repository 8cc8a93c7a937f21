"""Tomosynthesis on sweeps we did not make: plastimatch's arc and linear sweeps of a bead CT, our own
``drr --sweep`` sweeps and DICOM projections, each reconstructed on ``imgsuite tomo``'s default grid.

Every bead must come into focus within 1 mm of its true depth for every algorithm. Held out of tuning:
the ``drr --sweep arc`` case (not run while the default grid and the focus measure were written).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.tomo.dicom import write_rtimage_projections
from SlicerImgSuite.tomo.drr import drr
from SlicerImgSuite.tomo.geometry import arc_sweep
from SlicerImgSuite.tomo.phantom import focus_depths
from SlicerImgSuite.tomo.projset import read_projections

PLASTIMATCH = shutil.which("plastimatch") or "plastimatch"  # the Debian package is the anchor (CI has it)
BEADS = [(-35.0, -25.0, 20.0), (-10.0, 20.0, -30.0), (0.0, 0.0, 0.0), (20.0, -20.0, 30.0), (30.0, 25.0, -15.0)]
PANEL = ["-r", "160 160", "-z", "160 160", "--sad", "1700", "--sid", "1800"]  # the SAD/SID, 1 mm pixels


def bead_ct(path):
    """A 1 mm CT: a water cylinder (radius 50 mm, along z) holding 5 mm steel-like beads (3000 HU)."""
    n = 121
    z, y, x = (np.arange(n, dtype=np.float32) - 60.0 for _ in range(3))
    z, y, x = np.meshgrid(z, y, x, indexing="ij")
    hu = np.where(x**2 + y**2 < 50.0**2, 0, -1000).astype(np.int16)
    for bx, by, bz in BEADS:
        hu[(x - bx) ** 2 + (y - by) ** 2 + (z - bz) ** 2 <= 2.5**2] = 3000
    image = sitk.GetImageFromArray(hu)
    image.SetOrigin((-60.0, -60.0, -60.0))
    sitk.WriteImage(image, str(path))


def plastimatch_linear(ct, prefix, views=13, angle=40.0):
    """A linear sweep from plastimatch: a static coronal panel at y = +100 mm, the tube moving along z at
    y = -1700 mm (one ``drr`` call per view: the isocentre slides with the tube, the principal point
    ``-c`` moves the other way so the panel stays put)."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for k, theta in enumerate(np.linspace(-angle / 2, angle / 2, views)):
        dz = 1800.0 * np.tan(np.radians(theta))
        one = prefix.parent / f"one{k}_"
        cmd = [PLASTIMATCH, "drr", "-t", "pfm", "-a", "1", "-n", "0 -1 0", "-o", f"0 0 {dz:.6f}"]
        cmd += ["-c", f"79.5 {79.5 - dz:.6f}", *PANEL, "-O", str(one), str(ct)]
        subprocess.run(cmd, check=True, capture_output=True)
        for ext in ("pfm", "txt"):
            (prefix.parent / f"one{k}_0000.{ext}").rename(f"{prefix}{k:04d}.{ext}")


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    work = tmp_path_factory.mktemp("foreign")
    ct = work / "beads.mha"
    bead_ct(ct)
    out = {}
    # the command (plastimatch 1.9 reads -y in radians: the arc is oblique, not centred on 0)
    arc = ["-a", "13", "-N", "3.3333", "-y", "-20"]
    cmd = [PLASTIMATCH, "drr", "-t", "pfm", *arc, *PANEL, "-O", str(work / "pl_arc/image"), str(ct)]
    subprocess.run(cmd, check=True, capture_output=True)
    out["plastimatch arc"] = work / "pl_arc"
    plastimatch_linear(ct, work / "pl_linear" / "image")
    out["plastimatch linear"] = work / "pl_linear"
    # our sweeps: a linear one (the panel 60 mm behind the isocentre, so that every view sees the whole
    # phantom) and an arc about the isocentre with the default SAD 1000, SID 1500
    small = ["-r", "160 160", "-z", "240 240"]
    for kind, panel in (("linear", [*small, "--sad", "1440"]), ("arc", small)):
        argv = ["drr", "-q", "--sweep", kind, "--views", "13", *panel]
        assert main([*argv, "-O", str(work / f"our_{kind}/image"), str(ct)]) == 0
        out[f"drr --sweep {kind}"] = work / f"our_{kind}"
    # RT Image views turn about the superior axis: a +-20 degree arc about z, source anterior
    geometry = arc_sweep(13, 40.0, sad=1000, sid=1500, dims=(160, 160), pixel_size=(1.5, 1.5), rotation_axis=(0, 0, 1))
    write_rtimage_projections(drr(sitk.ReadImage(str(ct)), geometry), work / "dicom")
    out["DICOM RT Image arc"] = work / "dicom"
    return work, out


@pytest.mark.parametrize("sweep", ["plastimatch arc", "plastimatch linear", "drr --sweep linear", "drr --sweep arc"])
@pytest.mark.parametrize("algorithm", ["saa", "fbp", "sart"])
def test_every_bead_in_focus_on_the_default_grid(sweeps, sweep, algorithm):
    work, folders = sweeps
    out = work / f"{sweep.replace(' ', '_')}_{algorithm}.mha"
    argv = ["tomo", "-q", "--input", str(folders[sweep]), "--output", str(out), "--algorithm", algorithm]
    assert main([*argv, "--slice-spacing", "1", "--pixel-size", "1"]) == 0
    volume = sitk.ReadImage(str(out))
    geometry = read_projections(folders[sweep]).geometry
    errors = focus_depths(volume, BEADS, geometry.normals[len(geometry) // 2])
    assert np.all(np.abs(errors) < 1.0), dict(zip(map(str, BEADS), np.round(errors, 2)))


def test_dicom_projections_focus_on_the_default_grid(sweeps):
    work, folders = sweeps
    out = work / "dicom_fbp.mha"
    argv = ["tomo", "-q", "--input", str(folders["DICOM RT Image arc"]), "--output", str(out)]
    assert main([*argv, "--slice-spacing", "1", "--pixel-size", "1"]) == 0
    geometry = read_projections(folders["DICOM RT Image arc"]).geometry
    errors = focus_depths(sitk.ReadImage(str(out)), BEADS, geometry.normals[len(geometry) // 2])
    assert np.all(np.abs(errors) < 1.0), np.round(errors, 2)


@pytest.mark.parametrize("sweep", ["plastimatch arc", "plastimatch linear", "drr --sweep linear"])
def test_default_grid_holds_the_object_between_source_and_panel(sweeps, sweep):
    from SlicerImgSuite.tomo.geometry import common_region, seen_by_all
    from SlicerImgSuite.tomo.recon import tomo_grid

    geometry = read_projections(sweeps[1][sweep]).geometry
    grid = tomo_grid(geometry)
    lo = np.array(grid.GetOrigin())
    hi = lo + np.array(grid.GetSpacing()) * (np.array(grid.GetSize()) - 1)
    inside = np.all((np.array(BEADS) >= lo - 1) & (np.array(BEADS) <= hi + 1), axis=1)
    assert inside.all() and seen_by_all(geometry, np.array(BEADS)).all()
    # the isocentre (0, 0, 0) and all that every view sees are inside; the grid's centre is between
    # the middle source and its panel (an LPS box round an oblique region may reach past it at the corners)
    assert np.all(lo < 0) and np.all(hi > 0)
    region = common_region(geometry)
    assert len(region) and np.all(region.min(axis=0) >= lo - grid.GetSpacing()) and np.all(region.max(axis=0) <= hi + 5)
    mid = len(geometry) // 2
    depth = ((lo + hi) / 2 - geometry.sources[mid]) @ geometry.normals[mid]
    assert 0 < depth < geometry.sid[mid]


def test_radiographs_are_not_taken_for_line_integrals(sweeps, shared_data, capsys):
    # plastimatch drr -e writes transmissions exp(-integral) (air 1): tomo reconstructed them as they were, the
    # contrast inverted, without a word. Now it warns and points to --log, which then focuses every bead.
    # Real counts (the Savu synchrotron views, never used to tune this) warn too; line integrals do not.
    import imageio.v3 as iio

    from SlicerImgSuite.tomo.projset import ProjectionSet, line_integrals, not_line_integrals

    work, folders = sweeps
    cmd = [PLASTIMATCH, "drr", "-t", "pfm", "-e", "-a", "13", "-N", "3.3333", "-y", "-20", *PANEL]
    subprocess.run([*cmd, "-O", str(work / "pl_arc_e/image"), str(work / "beads.mha")], check=True, capture_output=True)
    argv = ["tomo", "-q", "--input", str(work / "pl_arc_e"), "--slice-spacing", "1", "--pixel-size", "1"]
    assert main([*argv, "--output", str(work / "e.mha")]) == 0
    err = capsys.readouterr().err
    assert "look like raw radiographs, not line integrals" in err and "plastimatch drr -e" in err and "--log" in err
    assert main([*argv, "--output", str(work / "e_log.mha"), "--log"]) == 0
    assert "raw radiographs" not in capsys.readouterr().err
    geometry = read_projections(work / "pl_arc_e").geometry
    errors = focus_depths(sitk.ReadImage(str(work / "e_log.mha")), BEADS, geometry.normals[len(geometry) // 2])
    assert np.all(np.abs(errors) < 1.0), np.round(errors, 2)
    for sweep in folders.values():
        assert not_line_integrals(read_projections(sweep)) == ""
    savu = shared_data / "savu-parallel-beam-tomo-small" / "tiffs"
    counts = np.stack([iio.imread(savu / f"raw_{k:05d}.tiff") for k in range(0, 91, 10)]).astype(np.float32)
    counts = np.pad(counts, ((0, 0), (0, 160 - counts.shape[1]), (0, 0)), mode="edge")  # 135 x 160 views on a 160 panel
    stack = ProjectionSet(counts, read_projections(folders["drr --sweep linear"]).geometry.subset(list(range(10))))
    assert "so these are counts" in not_line_integrals(stack)
    assert not_line_integrals(line_integrals(stack, 37195.0)) == ""  # the flat field's mean as I0
