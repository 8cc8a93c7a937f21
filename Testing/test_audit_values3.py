"""Third audit pass, as a new medical physicist on the shared data the tests used least (PlantCV ENVI cubes,
the Savu projections, the Nelms RTDOSE grids, the OpenTPS lung CT, the dicompyler-core CT): realistic mistakes
(a 2D image where a 3D dose or grid is meant, a dose given to a CT tool, an output that is the input's own
header) must end in one error line naming the file and the problem (exit 2, no traceback, nothing written).
Each test failed on main.
"""

from __future__ import annotations

import shutil

from test_audit_values import _refused

ENVI = "envi-hyperspectral-plantcv"


def test_envi_output_whose_header_is_the_input_writes_nothing(shared_data, tmp_path, capsys):
    """``hsi convert cube.hdr --output cube.envi`` writes cube.envi + cube.hdr: the .hdr is the input, refused, but
    only after the 1.5 MB binary cube.envi had been written (a half-written output left beside the input)."""
    for name in ("corn-kernel-hyperspectral.hdr", "corn-kernel-hyperspectral.raw"):
        shutil.copy(shared_data / ENVI / name, tmp_path / name)
    header = tmp_path / "corn-kernel-hyperspectral.hdr"
    before = header.read_bytes()
    out = tmp_path / "corn-kernel-hyperspectral.envi"
    _refused(["hsi", "convert", header, "--output", out], capsys, out, header, "input")
    assert header.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [header.name, "corn-kernel-hyperspectral.raw"]
