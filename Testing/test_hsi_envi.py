"""ENVI header parsing/writing and plain ENVI cubes, on PlantCV's real (and deliberately odd) headers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.hsi.envi import read_envi, write_envi
from SlicerImgSuite.hsi.envi_header import (
    DATA_TYPES,
    EnviHeaderWarning,
    format_header,
    header_to_json,
    layout,
    parse_header,
    read_header,
)

FULL_HEADER = """ENVI
; a comment line
Description = {A cube, with commas, in its description}
samples = 3
lines = 2
BANDS = 4
header offset = 0
file type = ENVI Standard
data type = 12
interleave = bil
byte order = 1
wavelength units = Nanometers
wavelength = {400.5, 500,
  600, 700.25}
fwhm = {10, 10, 10, 10}
band names = {blue, green, red, nir}
default bands = {3, 2, 1}
pixel size = {0.1, 0.2, units=mm}
reflectance scale factor = 10000
data offset values = {0, 0, 0, 0}
read procedures = {resample:{2, 2, 4}, crop:{0:1, 0:1, 1:3}, rotate:clockwise, merge:{data:0:0, tile:2:0}, microservice:denoise}
acquisition time = 2024-05-01T10:20:30
problem = {leaf spots}
series = A12
target = leaf
target info = {cultivar B73, day 12}
measurement = {reflectance, in lab}
sensor type = Headwall Hyperspec III
device = G4-426
optics = 23 mm lens
temperature = 21.5
my vendor key = something, with a comma outside braces
class = healthy
classification file = Exploration/classification.envi
classes = 3
class lookup = {0, 0, 0, 255, 0, 0, 0, 255, 0}
class names = {Unclassified, leaf, soil}
bounding boxes = Exploration/boxes.csv
"""


def test_header_fields_parse_and_round_trip():
    header = parse_header(FULL_HEADER, strict=True)
    assert header["samples"] == "3" and header["BANDS"] == "4"  # names are case-insensitive
    assert header["description"] == "A cube, with commas, in its description"
    assert header["wavelength"] == ["400.5", "500", "600", "700.25"]
    assert header["my vendor key"] == "something, with a comma outside braces"
    assert header["read procedures"][0] == "resample:{2, 2, 4}"
    assert header["read procedures"][3] == "merge:{data:0:0, tile:2:0}"
    assert header.comments == ["a comment line"]
    text = format_header(header)
    assert text.startswith("ENVI\n") and "\nbands = 4\n" in text  # written lower case
    again = parse_header(text, strict=True)
    assert dict(again) == dict(header) and again.comments == header.comments
    assert len(header) == FULL_HEADER.count(" = ")  # every field kept
    lay = layout(header, strict=True)
    assert lay.file_shape == (2, 4, 3) and lay.dtype == np.dtype(">u2")


def test_header_json_numbers_and_lists():
    data = header_to_json(parse_header(FULL_HEADER))
    assert data["samples"] == 3 and data["temperature"] == 21.5
    assert data["wavelength"] == [400.5, 500, 600, 700.25]
    assert data["class names"] == ["Unclassified", "leaf", "soil"]
    assert data["sensor type"] == "Headwall Hyperspec III"


@pytest.mark.parametrize("missing", ["byte order", "header offset", "file type", "interleave", "wavelength"])
def test_strict_errors_tolerant_warns(missing):
    lines = [ln for ln in FULL_HEADER.splitlines() if not ln.lower().startswith(missing + " =")]
    if missing == "wavelength":
        lines = [ln for ln in lines if not ln.strip().startswith(("600", "wavelength ="))]
    text = "\n".join(lines)
    with pytest.raises(ImgSuiteError, match=missing.split()[0]):
        layout(parse_header(text, "x.hdr"), "x.hdr", strict=True)
    with pytest.warns(EnviHeaderWarning):
        lay = layout(parse_header(text, "x.hdr"), "x.hdr")
    assert (lay.byte_order, lay.header_offset) == ((0 if missing == "byte order" else 1), 0)


def test_bad_headers_name_the_file(tmp_path):
    with pytest.raises(ImgSuiteError, match="first line must be 'ENVI'"):
        parse_header("samples = 3\n", "a.hdr")
    with pytest.raises(ImgSuiteError, match="unsupported data type 7"):
        layout(parse_header(FULL_HEADER.replace("data type = 12", "data type = 7")), strict=True)
    with pytest.raises(ImgSuiteError, match="not 'field = value'"):
        parse_header("ENVI\nsamples 3\n", "a.hdr", strict=True)
    with pytest.raises(ImgSuiteError, match=r"never closed"):
        parse_header("ENVI\nwavelength = {1, 2\n", "a.hdr", strict=True)
    with pytest.raises(ImgSuiteError, match="no such|cannot read"):
        read_header(tmp_path / "missing.hdr")


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("byte_order", [0, 1])
@pytest.mark.parametrize("code", sorted(DATA_TYPES))
def test_plain_envi_byte_exact(tmp_path, code, byte_order, interleave):
    rng = np.random.default_rng(code)
    dtype = np.dtype(DATA_TYPES[code])
    raw_bytes = rng.integers(0, 256, size=5 * 7 * 3 * dtype.itemsize, dtype=np.uint8).tobytes()
    cube = np.frombuffer(raw_bytes, dtype=dtype).reshape(5, 7, 3)  # every bit pattern, NaNs included
    write_envi(tmp_path / "c.envi", cube, interleave=interleave, byte_order=byte_order, wavelength=[1, 2, 3])
    back, header = read_envi(tmp_path / "c.hdr", strict=True)
    assert back.shape == cube.shape and back.dtype == dtype.newbyteorder(">" if byte_order else "<")
    assert back.astype(dtype).tobytes() == cube.tobytes()
    # the file itself is the documented layout: numpy reading of (order, shape) gives the cube
    order = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    expected = cube.transpose(order).astype(dtype.newbyteorder(">" if byte_order else "<")).tobytes()
    assert (tmp_path / "c.envi").read_bytes() == expected


def test_plantcv_corn_kernel_matches_numpy_reading(shared_data):
    folder = shared_data / "envi-hyperspectral-plantcv"
    with pytest.warns(EnviHeaderWarning, match="byte order"):
        cube, header = read_envi(folder / "corn-kernel-hyperspectral.hdr")
    # documented layout: BIL, 31 lines x 580 bands x 43 samples, uint16 little endian
    plain = np.fromfile(folder / "corn-kernel-hyperspectral.raw", dtype="<u2").reshape(31, 580, 43)
    np.testing.assert_array_equal(cube, plain.transpose(0, 2, 1))
    assert cube.shape == (31, 43, 580) and int(cube.max()) == 2887
    wavelengths = header.wavelengths
    assert len(wavelengths) == 580 and wavelengths[0] == pytest.approx(366.551) and wavelengths[-1] > 1048
    with pytest.raises(ImgSuiteError, match="byte order"):
        read_envi(folder / "corn-kernel-hyperspectral.hdr", strict=True)


def test_plantcv_dark_reference_and_variants(shared_data):
    folder = shared_data / "envi-hyperspectral-plantcv"
    binary = folder / "darkReference"
    plain = np.fromfile(binary, dtype="<u2").reshape(1, 978, 1600).transpose(0, 2, 1)
    cube, header = read_envi(folder / "darkReference.hdr", strict=True)  # leading-comma wavelengths are valid
    np.testing.assert_array_equal(cube, plain)
    assert header["default bands"] == ["159", "253", "520"]
    assert header.wavelengths[0] == pytest.approx(379.027) and header.wavelengths[1] == pytest.approx(379.663)

    variants = folder / "header_variants"
    cube3, _ = read_envi(variants / "darkReference3.hdr", binary, strict=True)  # no default bands: fine
    np.testing.assert_array_equal(cube3, plain)
    with pytest.raises(ImgSuiteError, match="interleave 'bup'"):
        read_envi(variants / "darkReference4.hdr", binary, strict=True)
    with pytest.warns(EnviHeaderWarning, match="bup"):
        cube4, _ = read_envi(variants / "darkReference4.hdr", binary)
    assert cube4.shape == (1, 1600, 978)  # tolerant: decided bsq, same size
    with pytest.raises(ImgSuiteError, match="wavelength"):
        read_envi(variants / "darkReference2.hdr", binary, strict=True)
    with pytest.raises(ImgSuiteError, match="ESRI"):
        read_envi(variants / "darkReference_arcgis.hdr", binary, strict=True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cube_esri, esri = read_envi(variants / "darkReference_arcgis.hdr", binary)
    assert any("ESRI" in str(w.message) for w in seen)
    assert (esri["samples"], esri["lines"], esri["bands"], esri["interleave"]) == ("1600", "1", "978", "bil")
    np.testing.assert_array_equal(cube_esri, plain)
    arcgis = read_header(variants / "arcgis.hdr")  # a 540 x 510 x 636 cube whose binary is absent
    assert (arcgis["lines"], arcgis["samples"], arcgis["bands"]) == ("540", "510", "636")
    with pytest.raises(ImgSuiteError, match="bytes"):
        read_envi(variants / "arcgis.hdr", binary)  # the header asks for more than the file holds


def test_spectral_python_anchor_reads_what_we_read_and_write(tmp_path, shared_data):
    import spectral

    folder = shared_data / "envi-hyperspectral-plantcv"
    ours, header = read_envi(folder / "darkReference.hdr", strict=True)
    theirs = spectral.envi.open(str(folder / "darkReference.hdr"), str(folder / "darkReference"))
    np.testing.assert_array_equal(ours, np.asarray(theirs.load(dtype=np.uint16)))
    np.testing.assert_allclose(header.wavelengths, theirs.bands.centers)
    cube = np.random.default_rng(5).normal(size=(4, 6, 3)).astype(np.float32)
    for interleave in ("bsq", "bil", "bip"):
        for byte_order in (0, 1):
            name = tmp_path / f"c_{interleave}_{byte_order}.envi"
            write_envi(name, cube, interleave=interleave, byte_order=byte_order, wavelength=[500, 600, 700])
            loaded = spectral.envi.open(str(name.with_suffix(".hdr")), str(name))
            np.testing.assert_array_equal(np.asarray(loaded.load(dtype=np.float32)), cube)
            assert loaded.bands.centers == [500.0, 600.0, 700.0]
