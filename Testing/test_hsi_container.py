"""The .hsi container: memory-mapped straight out of the ZIP, byte-exact round trips, safe refusals."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.hsi.container import open_hsi, write_hsi
from SlicerImgSuite.hsi.envi_header import DATA_TYPES, parse_header
from SlicerImgSuite.hsi.labels import Box, Labels


def small_cube(dtype=np.uint16, shape=(6, 8, 5), seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * np.dtype(dtype).itemsize, dtype=np.uint8).tobytes()
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("byte_order", [0, 1])
@pytest.mark.parametrize("code", sorted(DATA_TYPES))
def test_round_trip_byte_exact(tmp_path, code, byte_order, interleave):
    dtype = np.dtype(DATA_TYPES[code])
    cube = small_cube(dtype, seed=code)
    path = tmp_path / "c.hsi"
    write_hsi(
        path,
        cube,
        interleave=interleave,
        byte_order=byte_order,
        wavelength=[400, 450, 500, 550, 600],
        previews=(),
        thumbnail=False,
    )
    with open_hsi(path, strict=True) as hsi:
        assert isinstance(hsi.cube.base, np.memmap) or isinstance(hsi.cube, np.memmap)
        assert hsi.cube.dtype == dtype.newbyteorder(">" if byte_order else "<")
        assert hsi.read().astype(dtype).tobytes() == cube.tobytes()
        # data.envi inside the ZIP holds exactly the documented layout
        order = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
        stored = zipfile.ZipFile(path).read("data.envi")
        assert stored == cube.transpose(order).astype(hsi.cube.dtype).tobytes()


def test_memory_map_reads_the_zip_file_at_the_local_header_offset(tmp_path):
    cube = small_cube(np.float32, shape=(9, 11, 7))
    path = tmp_path / "c.hsi"
    write_hsi(path, cube, interleave="bil", wavelength=list(range(7)), metadata={"sensor.xml": b"<sensor/>"})
    with open_hsi(path) as hsi:
        offset = hsi.data_offset("data.envi")
        assert offset % 4096 == 0  # aligned for the page cache
        raw = path.read_bytes()[offset : offset + cube.nbytes]
        np.testing.assert_array_equal(np.frombuffer(raw, "<f4").reshape(9, 7, 11).transpose(0, 2, 1), cube)
        memmap = hsi.cube.base
        while not isinstance(memmap, np.memmap):
            memmap = memmap.base
        assert str(memmap.filename) == str(path.resolve())  # the container itself is mapped: nothing extracted
        assert hsi.read_bytes("Metadata/sensor.xml") == b"<sensor/>"
        assert {"thumbnail.jpg", "preview.hdr", "preview_1.envi", "preview_2.hdr"} <= set(hsi.names)
        preview, _ = hsi.read_envi_member("preview_1", wavelengths=False)
        np.testing.assert_allclose(preview[0, 0], cube[:2, :2].mean(axis=(0, 1)), rtol=1e-6)
    assert all(i.compress_type == zipfile.ZIP_STORED for i in zipfile.ZipFile(path).infolist())
    assert zipfile.ZipFile(path).testzip() is None  # CRCs right: any ZIP tool opens it


@pytest.mark.parametrize("units", ["um", "\u00b5m", "Micrometers"])
def test_preview_bands_for_wavelengths_in_micrometres(tmp_path, units):
    # ENVI writes "um" too: taken as nanometres, 0.40..1.00 was "nearest 640 nm" at its last band for all three
    # channels, a grey preview, thumbnail and Slicer display from the 1 um band
    wavelengths = np.round(np.linspace(0.4, 1.0, 61), 3).tolist()
    path = tmp_path / "um.hsi"
    write_hsi(path, small_cube(shape=(6, 8, 61)), {"wavelength units": units}, wavelength=wavelengths, previews=())
    with open_hsi(path) as hsi:
        _, header = hsi.read_envi_member("preview", wavelengths=False)
    assert header.numbers("wavelength") == pytest.approx([0.64, 0.55, 0.46])


def test_header_fields_survive_the_container(tmp_path):
    fields = {
        "sensor type": "Headwall",
        "acquisition time": "2024-05-01T10:20:30",
        "read procedures": ["rotate:180"],
        "target info": "cultivar B73, day 12",
        "my key": "kept",
    }
    write_hsi(tmp_path / "c.hsi", small_cube(), fields, wavelength=[1, 2, 3, 4, 5], previews=())
    header = open_hsi(tmp_path / "c.hsi").header
    for key, value in fields.items():
        assert header[key] == value


def test_labels_and_references_round_trip(tmp_path):
    cube = small_cube()
    classes = np.zeros(cube.shape[:2], np.uint8)
    classes[2:4, 3:6] = 2
    labels = Labels(
        classes,
        ["none", "leaf", "spot"],
        [(0, 0, 0), (0, 255, 0), (255, 0, 0)],
        {"spot": classes == 2},
        [Box("spot", 3, 2, 3, 2)],
    )
    white = cube[:1].astype(np.uint16) + 1
    write_hsi(
        tmp_path / "c.hsi",
        cube,
        white=white,
        black=np.zeros((8, 5), np.uint16),
        labels=labels,
        wavelength=[1, 2, 3, 4, 5],
        previews=(),
    )
    with open_hsi(tmp_path / "c.hsi") as hsi:
        got = hsi.labels()
        np.testing.assert_array_equal(got.classification, classes)
        assert got.class_names == ["none", "leaf", "spot"] and got.class_colors[2] == (255, 0, 0)
        np.testing.assert_array_equal(got.masks["spot"], classes == 2)
        assert got.boxes == [Box("spot", 3, 2, 3, 2)]
        np.testing.assert_array_equal(hsi.white, white)
        assert hsi.black.shape == (1, 8, 5) and hsi.white_after is None
        assert hsi.header["classification file"] == "Exploration/classification.envi"


def _zip_with(path, members, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_refusals_are_clear(tmp_path):
    cube = small_cube()
    write_hsi(tmp_path / "ok.hsi", cube, wavelength=[1, 2, 3, 4, 5], previews=(), thumbnail=False)
    source = zipfile.ZipFile(tmp_path / "ok.hsi")
    members = {name: source.read(name) for name in source.namelist()}

    _zip_with(tmp_path / "deflated.hsi", members, zipfile.ZIP_DEFLATED)
    with pytest.raises(ImgSuiteError, match=r"deflated.hsi: member 'data.envi' is compressed \(deflate\)"):
        open_hsi(tmp_path / "deflated.hsi")
    allowed = open_hsi(tmp_path / "deflated.hsi", allow_compressed=True)
    assert allowed.read().tobytes() == cube.tobytes()

    _zip_with(tmp_path / "evil.hsi", {**members, "../../etc/evil.hdr": b"ENVI\n"})
    with pytest.raises(ImgSuiteError, match="unsafe member name"):
        open_hsi(tmp_path / "evil.hsi")
    _zip_with(tmp_path / "abs.hsi", {**members, "/abs/x": b""})
    with pytest.raises(ImgSuiteError, match="unsafe member name"):
        open_hsi(tmp_path / "abs.hsi")

    _zip_with(tmp_path / "nodata.hsi", {"data.hdr": members["data.hdr"]})
    with pytest.raises(ImgSuiteError, match="no data.envi"):
        open_hsi(tmp_path / "nodata.hsi")

    _zip_with(tmp_path / "short.hsi", {"data.hdr": members["data.hdr"], "data.envi": members["data.envi"][:-2]})
    with pytest.raises(ImgSuiteError, match="short.hsi: member 'data.envi' holds"):
        open_hsi(tmp_path / "short.hsi")

    (tmp_path / "text.hsi").write_text("not a zip")
    with pytest.raises(ImgSuiteError, match="text.hsi: not a .hsi container"):
        open_hsi(tmp_path / "text.hsi")
    with pytest.raises(ImgSuiteError, match="no such file"):
        open_hsi(tmp_path / "missing.hsi")


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "c.hsi"
    with pytest.raises(ImgSuiteError, match="white"):
        write_hsi(target, small_cube(), white=np.zeros((2, 3, 4)), wavelength=[1, 2, 3, 4, 5])
    assert list(tmp_path.iterdir()) == []


def test_header_member_is_plain_envi_text(tmp_path):
    write_hsi(tmp_path / "c.hsi", small_cube(), wavelength=[1, 2, 3, 4, 5], previews=())
    text = zipfile.ZipFile(tmp_path / "c.hsi").read("data.hdr").decode()
    header = parse_header(text, strict=True)
    assert text.startswith("ENVI\n") and header["interleave"] == "bil" and header["wavelength units"] == "nm"
    thumb = zipfile.ZipFile(tmp_path / "c.hsi").read("thumbnail.jpg")
    from PIL import Image

    assert Image.open(io.BytesIO(thumb)).size == (8, 6)


def test_zip64_members_stay_aligned_and_mapped(tmp_path, monkeypatch):
    # members over 4 GiB need ZIP64 local headers (20 more bytes); lower the limit to exercise that path
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
    cube = small_cube(np.uint16, shape=(20, 30, 4))
    write_hsi(tmp_path / "big.hsi", cube, wavelength=[1, 2, 3, 4], previews=(), thumbnail=False)
    monkeypatch.undo()
    with open_hsi(tmp_path / "big.hsi") as hsi:
        assert hsi.data_offset("data.envi") % 4096 == 0
        np.testing.assert_array_equal(hsi.cube, cube)
    assert zipfile.ZipFile(tmp_path / "big.hsi").testzip() is None


def test_large_cube_starts_on_a_huge_page_boundary(tmp_path, monkeypatch):
    from SlicerImgSuite.hsi import container

    monkeypatch.setattr(container, "LARGE", 1)  # the 64 MiB threshold, lowered for a small cube
    cube = small_cube(np.int16, shape=(10, 12, 3))
    write_hsi(tmp_path / "c.hsi", cube, wavelength=[1, 2, 3], white=cube[:1], previews=(1,))
    with open_hsi(tmp_path / "c.hsi", strict=True) as hsi:
        assert hsi.names[:2] == ["data.envi", "data.hdr"]
        assert hsi.data_offset("data.envi") == 2 << 20  # the lead-in before the first local header
        np.testing.assert_array_equal(hsi.read(), cube)
        np.testing.assert_array_equal(hsi.white, cube[:1])
    assert zipfile.ZipFile(tmp_path / "c.hsi").testzip() is None


def test_a_preview_level_larger_than_the_cube_is_said_not_dropped_silently(tmp_path):
    cube = np.arange(6 * 5 * 4, dtype=np.uint16).reshape(6, 5, 4)
    with pytest.warns(UserWarning, match="preview level 3 bins 8 x 8 pixels, more than the 6 x 5 cube"):
        write_hsi(tmp_path / "c.hsi", cube, previews=(1, 3))
