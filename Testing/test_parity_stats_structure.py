"""``stats --structure`` beside Debian plastimatch 1.9.4.

plastimatch 1.9.4's ``stats --structure`` prints nothing for a uint32 structure-set image and fails on a uchar
vector one; its plain ``stats`` of a uchar vector image prints the per-structure voxel counts. Ours prints those
lines for either layout with ``--structure``: the same text as plastimatch's plain ``stats`` on the vector image.
"""

from __future__ import annotations

import subprocess

import numpy as np
import SimpleITK as sitk

from SlicerImgSuite.cli import main


def test_stats_structure_prints_plastimatch_ss_lines(tmp_path, capsys):
    bits = np.zeros((12, 14, 16), np.uint32)
    bits[2:6, 3:9, 4:8] |= 1
    bits[5:11, 6:12, 6:15] |= 2
    bits[0:3, 0:2, 0:4] |= 1 << 10
    ss32 = sitk.GetImageFromArray(bits)
    sitk.WriteImage(ss32, str(tmp_path / "ss32.nrrd"))
    planes = [sitk.GetImageFromArray(((bits >> (8 * k)) & 0xFF).astype(np.uint8)) for k in range(2)]
    sitk.WriteImage(sitk.Compose(*planes), str(tmp_path / "ssvec.nrrd"))

    plain = subprocess.run(["plastimatch", "stats", str(tmp_path / "ssvec.nrrd")], capture_output=True, text=True)
    assert plain.returncode == 0 and plain.stdout.startswith("SS_IMAGE: At most 16 structures")
    nothing = subprocess.run(["plastimatch", "stats", "--structure", str(tmp_path / "ss32.nrrd")], capture_output=True)
    assert nothing.returncode == 0 and nothing.stdout.strip() == b""

    assert main(["stats", "--structure", str(tmp_path / "ssvec.nrrd")]) == 0
    assert capsys.readouterr().out == plain.stdout
    assert main(["stats", "--structure", str(tmp_path / "ss32.nrrd")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "SS_IMAGE: At most 32 structures" and len(lines) == 33
    expected = {0: 4 * 6 * 4, 1: 6 * 6 * 9, 10: 3 * 2 * 4}
    for n in range(32):
        assert lines[1 + n] == f"S {n:4d}  NVOX {expected.get(n, 0):10d}"
    # a CT (signed HU) is no structure set: one line, exit 2
    sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkInt16), str(tmp_path / "ct.nrrd"))
    assert main(["stats", "--structure", str(tmp_path / "ct.nrrd")]) == 2
    err = capsys.readouterr().err.strip()
    assert "ct.nrrd" in err and "structure-set" in err and "\n" not in err
