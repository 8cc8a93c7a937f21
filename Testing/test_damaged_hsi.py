"""Damaged .hsi containers: bounded, streamed inflation; encrypted members and negative offsets refused."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.hsi.container import open_hsi, write_hsi


def _repack(src, dst, change):
    """Copy a container member by member; ``change(name, data) -> (data, compress_type)``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data, method = change(info.filename, zin.read(info))
            zout.writestr(info.filename, data, compress_type=method)
    return dst


@pytest.fixture
def cube_file(tmp_path):
    cube = np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3)
    path = tmp_path / "a.hsi"
    write_hsi(path, cube, wavelength=[500, 600, 700])
    return path, cube


def test_deflated_member_reads_when_it_holds_what_the_header_says(cube_file, tmp_path):
    path, cube = cube_file
    deflated = _repack(path, tmp_path / "d.hsi", lambda n, d: (d, zipfile.ZIP_DEFLATED))
    with open_hsi(deflated, allow_compressed=True) as hsi:
        np.testing.assert_array_equal(hsi.read(), cube)


def test_member_inflating_beyond_its_header_is_refused(cube_file, tmp_path):
    path, _ = cube_file
    bomb = bytes(8 << 20)  # 8 MiB of zeros after the cube: deflates to a few kB

    def change(name, data):
        return (data + bomb if name == "data.envi" else data), zipfile.ZIP_DEFLATED

    big = _repack(path, tmp_path / "bomb.hsi", change)
    with pytest.raises(ImgSuiteError, match="member 'data.envi' inflates beyond the 120 bytes"):
        open_hsi(big, allow_compressed=True)


def _header_edit(old: bytes, new: bytes, method: int):
    """A ``_repack`` change that edits ``data.hdr`` and stores every member with ``method``."""
    return lambda name, data: (data.replace(old, new) if name == "data.hdr" else data, method)


@pytest.mark.parametrize(
    "old, new, method, words",
    [
        (b"lines = 4", b"lines = 400000000", zipfile.ZIP_DEFLATED, "member 'data.envi' holds at most"),
        (b"header offset = 0", b"header offset = -64", zipfile.ZIP_STORED, "header offset must be >= 0 bytes, not -64"),
    ],
)
def test_header_lies_are_refused_before_allocating(cube_file, tmp_path, old, new, method, words):
    path, _ = cube_file
    liar = _repack(path, tmp_path / "liar.hsi", _header_edit(old, new, method))
    with pytest.raises(ImgSuiteError, match=words):
        open_hsi(liar, allow_compressed=True)


def test_encrypted_member_is_an_error(cube_file, tmp_path, capsys):
    path, _ = cube_file
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("data.hdr")
    data[info.header_offset + 6] |= 1  # local header flag bits
    central = data.rfind(b"PK\x01\x02", 0, len(data))
    while central >= 0:  # the central directory entry of data.hdr: set its flag too
        name_len = int.from_bytes(data[central + 28 : central + 30], "little")
        if bytes(data[central + 46 : central + 46 + name_len]) == b"data.hdr":
            data[central + 8] |= 1
            break
        central = data.rfind(b"PK\x01\x02", 0, central)
    path.write_bytes(bytes(data))
    out = tmp_path / "out.nrrd"
    assert main(["hsi", "convert", str(path), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "member 'data.hdr' is encrypted" in err and str(path) in err and "Traceback" not in err
    assert not out.exists()
