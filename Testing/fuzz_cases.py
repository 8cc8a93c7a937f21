"""Damaged inputs for the fuzz test (``test_fuzz.py``) and ``bench/fuzz_vs_plastimatch.py``.

Each :class:`Case` is a folder of small generated inputs, one of them damaged (truncation, bit flips,
tag values NaN/inf/text/negative/huge, missing tags), with the ``imgsuite`` command line that reads it
and, where plastimatch has the command, plastimatch's. ``expect`` is ``"fail"`` when the damage can
only give an error, ``"either"`` when a benign outcome is possible (a flipped pixel bit). Everything is
deterministic: case ``n`` of a kind uses ``random.Random(seed + n)``.
"""

from __future__ import annotations

import random
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from damage import set_raw


@dataclass
class Case:
    kind: str
    name: str
    folder: Path  # inputs live here; outputs go to folder / "out*"
    argv: list[str]  # imgsuite
    output: Path  # the output path (file or folder) the command may write
    expect: str = "either"
    plastimatch: list[str] | None = None
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- base inputs


def make_base(root: Path) -> dict[str, Path]:
    """The undamaged inputs every case starts from (a few seconds to make)."""
    from SlicerImgSuite.demo.phantom import make_phantom
    from SlicerImgSuite.hsi.container import write_hsi
    from SlicerImgSuite.hsi.envi import write_envi
    from SlicerImgSuite.tomo.geometry import circular, linear_sweep
    from SlicerImgSuite.tomo.projset import write_projection_files

    root.mkdir(parents=True, exist_ok=True)
    phantom = make_phantom(root / "phantom", shape=(16, 16, 6), spacing=(16.0, 14.0, 20.0))
    pin_uids([*sorted(Path(phantom.ct_dir).iterdir()), phantom.rtstruct, phantom.rtdose])
    base = {"ct": phantom.ct_dir, "rs": phantom.rtstruct, "rd": phantom.rtdose}
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:8, :16, :16].astype(np.float32)
    for name, shift in (("fixed", 0.0), ("moving", 1.5)):
        image = sitk.GetImageFromArray(100 * np.exp(-((x - 8 - shift) ** 2 + (y - 8) ** 2 + (z - 4) ** 2) / 12))
        image.SetSpacing((2.0, 2.0, 3.0))
        sitk.WriteImage(image, str(root / f"{name}.mha"))
        base[name] = root / f"{name}.mha"
    (root / "landmarks.txt").write_text("0 0 0\n10 5 3\n-4 6 2\n")
    base["landmarks"] = root / "landmarks.txt"
    cube = rng.integers(0, 4000, (6, 5, 4)).astype(np.uint16)
    write_envi(root / "envi" / "cube.raw", cube, wavelength=[450.0, 550.0, 650.0, 750.0])
    base["envi"] = root / "envi"
    write_hsi(root / "cube.hsi", cube, wavelength=[450.0, 550.0, 650.0, 750.0])
    base["hsi"] = root / "cube.hsi"
    sweep = linear_sweep(5, 30, sid=1000.0, dims=(16, 12), pixel_size=(2.0, 2.0))
    write_projection_files(root / "tomo" / "image", sweep, rng.random((5, 12, 16)).astype(np.float32))
    base["tomo"] = root / "tomo"
    cone = circular(8, 1000.0, 1500.0, (16, 12), (2.0, 2.0))
    write_projection_files(root / "cone" / "image", cone, rng.random((8, 12, 16)).astype(np.float32))
    base["cone"] = root / "cone"
    import tifffile

    yy, xx = np.mgrid[:48, :48].astype(np.float32)
    blobs = np.zeros((48, 48), np.float32)
    for cy, cx in ((12, 12), (30, 20), (20, 36), (38, 38)):
        blobs += 1000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18)
    tifffile.imwrite(root / "nuclei16.tif", blobs.astype(np.uint16))
    tifffile.imwrite(root / "nuclei32f.tif", blobs)
    base["tif16"], base["tif32f"] = root / "nuclei16.tif", root / "nuclei32f.tif"
    base.update(_radiograph_base(root, rng))
    return base


def _radiograph_base(root: Path, rng) -> dict[str, Path]:
    """A DICOM DX (12 bits stored, a window), a 16-bit PNG radiograph and a small ONNX classifier for them."""
    from PIL import Image
    from pydicom.dataset import FileMetaDataset

    from SlicerImgSuite.xray.network import build_layers, to_onnx
    from SlicerImgSuite.xray.preprocess import Preprocessing

    pixels = rng.integers(0, 4000, (64, 48)).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["imgsuite-fuzz-dx"])
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.PhotometricInterpretation = "DX", "FUZZ", "MONOCHROME2"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 64, 48, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ImagerPixelSpacing, ds.WindowCenter, ds.WindowWidth = [0.143, 0.143], 2000, 3000
    ds.PixelData = pixels.tobytes()
    ds.save_as(root / "dx.dcm", enforce_file_format=True)
    Image.fromarray(pixels * 16).save(root / "radiograph16.png")
    (root / "xray.onnx").write_bytes(to_onnx(build_layers("small", 32), Preprocessing(32), ["clear", "opacity"]))
    return {"dx": root / "dx.dcm", "png16": root / "radiograph16.png", "xray_model": root / "xray.onnx"}


def pin_uids(files: list[Path]) -> None:
    """Give the files' random UIDs fixed ones (one mapping for all, so references hold) and fix the dates and
    times: the same bytes every run, so a flipped bit lands on the same byte in CI as here."""
    mapping: dict[str, str] = {}

    def pinned(uid: str) -> str:
        if uid.startswith("1.2.840.10008."):  # DICOM's own (SOP classes, transfer syntaxes): fixed already
            return uid
        return mapping.setdefault(uid, pydicom.uid.generate_uid(entropy_srcs=["imgsuite-fuzz", str(len(mapping))]))

    def visit(ds, element) -> None:
        if element.VR == "UI" and element.value:
            element.value = pinned(str(element.value))
        elif element.VR in ("DA", "TM", "DT") and element.value:
            element.value = {"DA": "20260101", "TM": "120000", "DT": "20260101120000"}[element.VR]

    for path in files:
        ds = pydicom.dcmread(path)
        ds.walk(visit)
        ds.file_meta.walk(visit)
        ds.save_as(path, enforce_file_format=True)


# --------------------------------------------------------------------------- byte-level damage


def flip_bits(path: Path, rng: random.Random, count: int, start: int = 0) -> None:
    data = bytearray(path.read_bytes())
    for _ in range(count):
        k = rng.randrange(start, len(data))
        data[k] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def truncate(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


# Values put into numeric tags and fields: (text, always fatal for geometry)
BAD_VALUES = ["nan", "inf", "-inf", "abc", "-1", "0", "1e30", "", "1e12"]


# --------------------------------------------------------------------------- DICOM series

_GEOMETRY = {"ImagePositionPatient": 3, "ImageOrientationPatient": 6, "PixelSpacing": 2}


def _series_value_fatal(keyword: str, value: str | None) -> bool:
    if keyword in _GEOMETRY:
        if value is None or value in ("nan", "inf", "-inf", "abc", "", "1e30", "1e12"):
            return True
        if keyword == "PixelSpacing":
            return True  # -1, 0: not positive; one value where two are needed
        return True  # one value where 3 or 6 are needed
    if keyword == "RescaleSlope":
        return value in ("nan", "inf", "-inf", "abc", "0", "1e30", "1e12")
    if keyword == "RescaleIntercept":
        return value in ("nan", "inf", "-inf", "abc", "1e30", "1e12")
    return False


def dicom_cases(base: dict, root: Path, seed: int = 100) -> list[Case]:
    cases = []
    keywords = [*_GEOMETRY, "RescaleSlope", "RescaleIntercept", "SliceThickness", "SeriesInstanceUID"]
    n = 0
    for keyword in keywords:
        for value in [*BAD_VALUES, None]:
            if keyword in ("SliceThickness", "SeriesInstanceUID") and value not in ("nan", "abc", "", None):
                continue
            rng = random.Random(seed + n)
            folder = root / f"dicom_{n:03d}"
            shutil.copytree(base["ct"], folder / "ct")
            victim = rng.choice(sorted((folder / "ct").glob("*.dcm")))
            ds = pydicom.dcmread(victim)
            set_raw(ds, keyword, value)
            ds.save_as(victim, enforce_file_format=True)
            cases.append(
                _series_case(
                    folder, f"{keyword}={value!r}", "fail" if _series_value_fatal(keyword, value) else "either"
                )
            )
            n += 1
    for keyword, values in (
        ("BitsAllocated", (12, 0, 64)),
        ("Rows", (0, 9999)),
        ("Columns", (0,)),
        ("SamplesPerPixel", (2,)),
    ):
        for value in values:
            folder = root / f"dicom_{n:03d}"
            shutil.copytree(base["ct"], folder / "ct")
            victim = sorted((folder / "ct").glob("*.dcm"))[n % 6]
            ds = pydicom.dcmread(victim)
            setattr(ds, keyword, value)
            ds.save_as(victim, enforce_file_format=True)
            cases.append(_series_case(folder, f"{keyword}={value}", "fail"))
            n += 1
    for k in range(6):  # truncated slices: the end of a file is its PixelData
        folder = root / f"dicom_{n:03d}"
        shutil.copytree(base["ct"], folder / "ct")
        truncate(sorted((folder / "ct").glob("*.dcm"))[k], [0.3, 0.6, 0.8, 0.95, 0.99, 0.5][k])
        cases.append(_series_case(folder, f"truncated slice {k}", "fail"))
        n += 1
    for k in range(16):  # random bit flips anywhere in one slice
        rng = random.Random(seed + n)
        folder = root / f"dicom_{n:03d}"
        shutil.copytree(base["ct"], folder / "ct")
        flip_bits(rng.choice(sorted((folder / "ct").glob("*.dcm"))), rng, 1 + k % 4, start=128)
        cases.append(_series_case(folder, f"bit flips {k}", "either"))
        n += 1
    return cases


def _series_case(folder: Path, name: str, expect: str) -> Case:
    out = folder / "out.nrrd"
    return Case(
        "dicom",
        name,
        folder,
        ["convert", "--input", str(folder / "ct"), "--output-img", str(out)],
        out,
        expect,
        ["convert", "--input", str(folder / "ct"), "--output-img", str(folder / "out_plm.nrrd")],
    )


# --------------------------------------------------------------------------- RTSTRUCT


def rtstruct_cases(base: dict, root: Path, seed: int = 200) -> list[Case]:
    def contour_value(text):
        def mutate(ds, rng):
            roi = rng.randrange(len(ds.ROIContourSequence))
            contours = ds.ROIContourSequence[roi].ContourSequence
            item = contours[rng.randrange(len(contours))]
            points = [str(v) for v in item.ContourData]
            points[rng.randrange(len(points))] = text
            set_raw(item, "ContourData", "\\".join(points))

        return mutate

    def reference(value):
        def mutate(ds, rng):
            item = ds.ROIContourSequence[rng.randrange(len(ds.ROIContourSequence))]
            if value is None:
                del item.ReferencedROINumber
            else:
                set_raw(item, "ReferencedROINumber", value)

        return mutate

    def drop(keyword):
        return lambda ds, rng: delattr(ds, keyword)

    def duplicate(ds, rng):
        ds.StructureSetROISequence[1].ROINumber = ds.StructureSetROISequence[0].ROINumber

    def modality(ds, rng):
        ds.Modality = "CT"

    mutations = [
        (f"ContourData {v!r}", contour_value(v), "fail") for v in ("nan", "inf", "-inf", "abc", "1e12", "1e30")
    ]
    mutations += [(f"ContourData {v!r}", contour_value(v), "either") for v in ("-1", "0")]
    mutations += [(f"ReferencedROINumber {v!r}", reference(v), "fail") for v in (None, "999", "abc")]
    mutations += [
        ("no StructureSetROISequence", drop("StructureSetROISequence"), "fail"),
        ("no ROIContourSequence", drop("ROIContourSequence"), "either"),
        ("duplicate ROINumber", duplicate, "fail"),
        ("Modality CT", modality, "fail"),
        ("no FrameOfReferenceUID", drop("FrameOfReferenceUID"), "either"),
    ]
    cases = []
    for n, (name, mutate, expect) in enumerate(mutations):
        folder = root / f"rtstruct_{n:03d}"
        folder.mkdir()
        ds = pydicom.dcmread(base["rs"])
        mutate(ds, random.Random(seed + n))
        ds.save_as(folder / "RS.dcm")
        cases.append(_rtstruct_case(base, folder, name, expect))
    for k in range(14):
        n = len(mutations) + k
        folder = root / f"rtstruct_{n:03d}"
        folder.mkdir()
        name, expect = byte_damage(base["rs"], folder / "RS.dcm", k, [0.2, 0.5, 0.8, 0.97], random.Random(seed + n))
        cases.append(_rtstruct_case(base, folder, name, expect))
    return cases


def byte_damage(source: Path, target: Path, k: int, fractions: list[float], rng: random.Random) -> tuple[str, str]:
    """Copy ``source`` to ``target`` truncated at ``fractions[k]``, or (past them) with bits flipped after the
    DICOM preamble; returns the case name and its expectation."""
    shutil.copy(source, target)
    if k < len(fractions):
        truncate(target, fractions[k])
        return f"truncated at {fractions[k]:.0%}", "fail"
    flip_bits(target, rng, 1 + k % 3, start=132)
    return f"bit flips {k}", "either"


def _rtstruct_case(base: dict, folder: Path, name: str, expect: str) -> Case:
    rs, out = folder / "RS.dcm", folder / "out.nrrd"
    argv = ["convert", "--input", str(rs), "--referenced-ct", str(base["ct"]), "--output-labelmap", str(out)]
    plm = [
        "convert",
        "--input",
        str(rs),
        "--referenced-ct",
        str(base["ct"]),
        "--output-labelmap",
        str(folder / "plm.nrrd"),
    ]
    return Case("rtstruct", name, folder, argv, out, expect, plm)


# --------------------------------------------------------------------------- RTDOSE


def rtdose_cases(base: dict, root: Path, seed: int = 300) -> list[Case]:
    cases = []
    n = 0
    geometry = ("nan", "inf", "abc", "", "1e30")
    scaling = ("nan", "inf", "abc", "-1", "0", None)  # "either": the RTDOSE reader's checks are another branch's
    for keyword, values, expect in (
        ("PixelSpacing", geometry, "fail"),
        ("ImagePositionPatient", geometry, "fail"),
        ("ImageOrientationPatient", geometry, "fail"),
        ("DoseGridScaling", scaling, "either"),
        ("GridFrameOffsetVector", scaling, "either"),
    ):
        for value in values:
            folder = root / f"rtdose_{n:03d}"
            folder.mkdir()
            ds = pydicom.dcmread(base["rd"])
            set_raw(ds, keyword, value)
            ds.save_as(folder / "RD.dcm", enforce_file_format=True)
            cases.append(_rtdose_case(folder, f"{keyword}={value!r}", expect))
            n += 1
    for k in range(10):
        folder = root / f"rtdose_{n:03d}"
        folder.mkdir()
        name, expect = byte_damage(base["rd"], folder / "RD.dcm", k, [0.3, 0.6, 0.9, 0.99], random.Random(seed + n))
        cases.append(_rtdose_case(folder, name, expect))
        n += 1
    return cases


def _rtdose_case(folder: Path, name: str, expect: str) -> Case:
    rd, out = folder / "RD.dcm", folder / "out.nrrd"
    plm = ["convert", "--input", str(rd), "--output-img", str(folder / "plm.nrrd")]
    return Case("rtdose", name, folder, ["convert", "--input", str(rd), "--output-img", str(out)], out, expect, plm)


# --------------------------------------------------------------------------- registration command files

_COMMAND = """[GLOBAL]
fixed={fixed}
moving={moving}
xform_out={out}/x.tfm
img_out={out}/warped.mha
[STAGE]
xform=translation
optim=rsg
max_its=3
res=1 1 1
[STAGE]
xform=bspline
grid_spac=8 8 8
max_its=2
regularization_lambda=1
"""
_NUMERIC_LINES = {8: "max_its", 9: "res", 13: "grid_spac", 14: "max_its", 15: "regularization_lambda"}


def cmdfile_cases(base: dict, root: Path, seed: int = 400) -> list[Case]:
    cases = []

    def add(name, expect, edit, files=None):
        n = len(cases)
        folder = root / f"cmdfile_{n:03d}"
        folder.mkdir()
        text = _COMMAND.format(fixed=base["fixed"], moving=base["moving"], out=folder / "out")
        for name_, make in (files or {}).items():
            make(folder / name_)
        lines = text.splitlines()
        text = edit(lines, folder, random.Random(seed + n))
        (folder / "reg.txt").write_text(text)
        cases.append(
            Case("cmdfile", name, folder, ["register", str(folder / "reg.txt")], folder / "out", expect,
                 ["register", str(folder / "reg.txt")])
        )  # fmt: skip

    for line, key in _NUMERIC_LINES.items():
        for value in ("nan", "inf", "abc", "1e99", "-1", "0", ""):
            fatal = value in ("nan", "inf", "abc", "1e99", "") or (
                key != "regularization_lambda" and value in ("-1", "0")
            )
            add(f"{key} = {value!r} (line {line})", "fail" if fatal else "either",
                lambda ls, f, r, line=line, key=key, value=value: "\n".join(ls[: line - 1] + [f"{key}={value}"] + ls[line:]) + "\n")  # fmt: skip
    add("grid_spac 0.01", "fail", lambda ls, f, r: "\n".join(ls[:12] + ["grid_spac=0.01"] + ls[13:]) + "\n")
    add("img_out_fmt jpeg2000", "fail", lambda ls, f, r: "\n".join(ls[:5] + ["img_out_fmt=jpeg2000"] + ls[5:]) + "\n")
    add("unclosed [STAGE", "fail", lambda ls, f, r: "\n".join(ls[:5] + ["[STAGE"] + ls[6:]) + "\n")
    add("empty [STAGE]", "fail", lambda ls, f, r: "\n".join(ls[:10] + ["[STAGE]"] + ls[10:]) + "\n")
    add("no fixed", "fail", lambda ls, f, r: "\n".join(ls[:1] + ls[2:]) + "\n")
    add("fixed missing file", "fail", lambda ls, f, r: "\n".join(ls[:1] + [f"fixed={f}/none.mha"] + ls[2:]) + "\n")
    add("unknown key", "fail", lambda ls, f, r: "\n".join(ls[:9] + ["maxits=3"] + ls[9:]) + "\n")
    add("garbage line", "fail", lambda ls, f, r: "\n".join(ls[:9] + ["%%%% garbage"] + ls[9:]) + "\n")

    def tiny(path):
        sitk.WriteImage(sitk.Image(1, 1, 1, sitk.sitkFloat32), str(path))

    def all_nan(path):
        image = sitk.ReadImage(str(base["moving"]))
        array = sitk.GetArrayFromImage(image) * np.nan
        out = sitk.GetImageFromArray(array)
        out.CopyInformation(image)
        sitk.WriteImage(out, str(path))

    for label, make in (("1-voxel moving", tiny), ("all-NaN moving", all_nan)):
        add(label, "fail", lambda ls, f, r: "\n".join(ls[:2] + [f"moving={f}/m.mha"] + ls[3:]) + "\n", {"m.mha": make})
    for label, content in (("garbage landmarks", "\x00\x01 nan 2 3\n"), ("NaN landmarks", "nan 1 2\n3 4 5\n6 7 8\n"),
                           ("text landmarks", "a b c\n")):  # fmt: skip
        add(label, "fail",
            lambda ls, f, r, c=content: "\n".join(ls[:3] + [f"fixed_landmarks={base['landmarks']}", f"moving_landmarks={f}/lm.txt"] + ls[3:]) + "\n",
            {"lm.txt": lambda p, c=content: p.write_text(c)})  # fmt: skip
    add(
        "img_out fails after xform_out",
        "fail",
        lambda ls, f, r: "\n".join(ls[:4] + [f"img_out={f}/out/warped.unknownsuffix"] + ls[5:]) + "\n",
    )
    for k in range(10):
        add(
            f"truncated text {k}",
            "either",
            lambda ls, f, r: "\n".join(ls)[: r.randrange(len("\n".join(ls[:5])) + 1, len("\n".join(ls)))] + "\n",
        )
    for k in range(8):

        def flip(ls, f, r):  # in the stages: a flipped path would rightly write elsewhere
            head = "\n".join(ls[:5]) + "\n"
            text = bytearray("\n".join(ls[5:]).encode())
            for _ in range(2):
                text[r.randrange(len(text))] ^= 1 << r.randrange(7)
            return head + text.decode("latin-1")

        add(f"bit flips {k}", "either", flip)
    return cases


# --------------------------------------------------------------------------- ENVI and .hsi


def envi_cases(base: dict, root: Path, seed: int = 500) -> list[Case]:
    cases = []
    fields = ["samples", "lines", "bands", "data type", "byte order", "header offset", "interleave"]
    n = 0
    for key in fields:
        for value in ("nan", "-1", "0", "abc", "999999999", ""):
            folder = root / f"envi_{n:03d}"
            shutil.copytree(base["envi"], folder / "envi")
            hdr = folder / "envi" / "cube.hdr"
            lines = [
                f"{key} = {value}" if ln.split("=")[0].strip() == key else ln for ln in hdr.read_text().splitlines()
            ]
            hdr.write_text("\n".join(lines) + "\n")
            benign = key == "header offset" and value == "0" or key == "byte order" and value == "0"
            benign = benign or key == "interleave"  # an invalid interleave is assumed bsq with a warning
            cases.append(
                _hsi_case(
                    "envi", folder, folder / "envi" / "cube.hdr", f"{key} = {value!r}", "either" if benign else "fail"
                )
            )
            n += 1
    for k in range(6):
        folder = root / f"envi_{n:03d}"
        shutil.copytree(base["envi"], folder / "envi")
        raw = folder / "envi" / "cube.raw"
        if k < 3:
            truncate(raw, [0.1, 0.5, 0.99][k])
        else:
            flip_bits(folder / "envi" / "cube.hdr", random.Random(seed + n), 2)
        cases.append(
            _hsi_case(
                "envi",
                folder,
                folder / "envi" / "cube.hdr",
                f"{'truncated raw' if k < 3 else 'hdr bit flips'} {k}",
                "fail" if k < 3 else "either",
            )
        )
        n += 1
    return cases + hsi_cases(base, root, seed + 50)


def hsi_cases(base: dict, root: Path, seed: int) -> list[Case]:
    cases = []

    def repack(folder, change, method=zipfile.ZIP_STORED):
        with zipfile.ZipFile(base["hsi"]) as zin, zipfile.ZipFile(folder / "cube.hsi", "w") as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, change(info.filename, zin.read(info)), compress_type=method)

    def header(old, new):
        return lambda name, data: data.replace(old, new) if name == "data.hdr" else data

    variants = [
        ("header offset -64", header(b"header offset = 0", b"header offset = -64"), zipfile.ZIP_STORED, "fail", False),
        ("lines huge, deflated", header(b"lines = 6", b"lines = 400000000"), zipfile.ZIP_DEFLATED, "fail", True),
        (
            "deflate bomb",
            lambda n, d: d + bytes(4 << 20) if n == "data.envi" else d,
            zipfile.ZIP_DEFLATED,
            "fail",
            True,
        ),
        ("deflated, not allowed", lambda n, d: d, zipfile.ZIP_DEFLATED, "fail", False),
        ("deflated, allowed", lambda n, d: d, zipfile.ZIP_DEFLATED, "either", True),
        ("bands nan", header(b"bands = 4", b"bands = nan"), zipfile.ZIP_STORED, "fail", False),
        ("data type 99", header(b"data type = 12", b"data type = 99"), zipfile.ZIP_STORED, "fail", False),
        ("no data.envi", lambda n, d: d if n != "data.envi" else b"", zipfile.ZIP_STORED, "fail", False),
    ]
    for n, (name, change, method, expect, allow) in enumerate(variants):
        folder = root / f"hsi_{n:03d}"
        folder.mkdir()
        repack(folder, change, method)
        cases.append(_hsi_case("hsi", folder, folder / "cube.hsi", name, expect, allow))
    n = len(variants)
    folder = root / f"hsi_{n:03d}"
    folder.mkdir()
    shutil.copy(base["hsi"], folder / "cube.hsi")
    data = bytearray((folder / "cube.hsi").read_bytes())
    data[6] |= 1  # the first member's local header: encrypted flag
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1
    (folder / "cube.hsi").write_bytes(bytes(data))
    cases.append(_hsi_case("hsi", folder, folder / "cube.hsi", "encrypted flag", "fail"))
    for k in range(14):
        n += 1
        folder = root / f"hsi_{n:03d}"
        folder.mkdir()
        shutil.copy(base["hsi"], folder / "cube.hsi")
        if k < 4:
            truncate(folder / "cube.hsi", [0.1, 0.5, 0.9, 0.999][k])
        else:
            flip_bits(folder / "cube.hsi", random.Random(seed + n), 1 + k % 3)
        cases.append(
            _hsi_case(
                "hsi",
                folder,
                folder / "cube.hsi",
                f"{'truncated' if k < 4 else 'bit flips'} {k}",
                "fail" if k < 4 else "either",
            )
        )
    return cases


def _hsi_case(kind, folder: Path, source: Path, name: str, expect: str, allow_compressed: bool = False) -> Case:
    out = folder / "out.nrrd"
    argv = ["hsi", "convert", str(source), "--output", str(out)] + (["--allow-compressed"] if allow_compressed else [])
    return Case(kind, name, folder, argv, out, expect)


# --------------------------------------------------------------------------- projections


def projection_cases(base: dict, root: Path, seed: int = 600) -> list[Case]:
    cases = []
    n = 0

    def case(kind, name, expect, damage):
        nonlocal n
        folder = root / f"proj_{n:03d}"
        shutil.copytree(base[kind], folder / "proj")
        damage(folder / "proj", random.Random(seed + n))
        out = folder / "out.nrrd"
        if kind == "tomo":
            argv = [
                "tomo",
                "--input",
                str(folder / "proj"),
                "--output",
                str(out),
                "--slice-spacing",
                "25",
                "--depth-range",
                "0",
                "100",
            ]
            plm = None
        else:
            argv = ["fdk", "-I", str(folder / "proj"), "-O", str(out), "-r", "8", "8", "4", "-z", "100", "100", "50"]
            plm = ["fdk", "-I", str(folder / "proj"), "-O", str(folder / "plm.mha"), "-r", "8 8 4", "-z", "100 100 50"]
        cases.append(Case("projections", f"{kind}: {name}", folder, argv, out, expect, plm))
        n += 1

    def pixel(value):
        def damage(d, rng):
            f = rng.choice(sorted(d.glob("*.pfm")))
            data = bytearray(f.read_bytes())
            start = data.index(b"\n", data.index(b"\n", data.index(b"\n") + 1) + 1) + 1
            k = start + 4 * rng.randrange((len(data) - start) // 4)
            data[k : k + 4] = struct.pack("<f", value)
            f.write_bytes(bytes(data))

        return damage

    def txt_line(line, value):
        def damage(d, rng):
            f = rng.choice(sorted(d.glob("*.txt")))
            lines = f.read_text().splitlines()
            lines[line] = value
            f.write_text("\n".join(lines) + "\n")

        return damage

    for kind in ("tomo", "cone"):
        for value in (float("nan"), float("inf"), float("-inf")):
            case(kind, f"pixel {value}", "fail", pixel(value))
        case(kind, "missing pfm", "fail", lambda d, r: r.choice(sorted(d.glob("*.pfm"))).unlink())
        case(kind, "missing txt", "fail", lambda d, r: r.choice(sorted(d.glob("*.txt"))).unlink())
        for line, value, expect in ((4, "0", "fail"), (4, "-5", "fail"), (5, "1", "fail"), (1, "nan 0 0 0", "fail"),
                                    (0, "abc", "fail"), (2, "1 2", "fail"), (5, "nan", "fail")):  # fmt: skip
            case(kind, f"txt line {line + 1} = {value!r}", expect, txt_line(line, value))
        case(
            kind,
            "pfm header PF (colour)",
            "fail",
            lambda d, r: _edit(r.choice(sorted(d.glob("*.pfm"))), b"Pf\n", b"PF\n"),
        )
        case(
            kind,
            "pfm size 99999",
            "fail",
            lambda d, r: _edit(r.choice(sorted(d.glob("*.pfm"))), b"\n16 12\n", b"\n99999 12\n"),
        )
        for k in range(4):
            case(
                kind,
                f"truncated pfm {k}",
                "fail",
                lambda d, r, k=k: truncate(r.choice(sorted(d.glob("*.pfm"))), [0.05, 0.4, 0.8, 0.98][k]),
            )
        for k in range(6):
            case(
                kind,
                f"bit flips {k}",
                "either",
                lambda d, r, k=k: flip_bits(r.choice(sorted(d.glob("*.pfm" if k % 2 else "*.txt"))), r, 1 + k % 3),
            )
    return cases


def _edit(path: Path, old: bytes, new: bytes) -> None:
    path.write_bytes(path.read_bytes().replace(old, new, 1))


# --------------------------------------------------------------------------- TIFF (nuclei)


def tiff_cases(base: dict, root: Path, seed: int = 700) -> list[Case]:
    import tifffile

    cases = []
    n = 0

    def case(name, expect, make):
        nonlocal n
        folder = root / f"tiff_{n:03d}"
        folder.mkdir()
        make(folder / "cells.tif", random.Random(seed + n))
        out = folder / "out"
        cases.append(
            Case(
                "tiff",
                name,
                folder,
                ["nuclei", "--input", str(folder / "cells.tif"), "--output", str(out)],
                out,
                expect,
            )
        )
        n += 1

    def float_with(value):
        def make(path, rng):
            array = tifffile.imread(base["tif32f"])
            array[rng.randrange(48), rng.randrange(48)] = value
            tifffile.imwrite(path, array)

        return make

    def tag(number, value):
        def make(path, rng):
            shutil.copy(base["tif16"], path)
            _set_tiff_tag(path, number, value)

        return make

    for value in (float("nan"), float("inf")):
        case(f"pixel {value}", "fail", float_with(value))
    case("all NaN", "fail", lambda p, r: tifffile.imwrite(p, np.full((48, 48), np.nan, np.float32)))
    case("0 x 0", "fail", lambda p, r: tifffile.imwrite(p, np.zeros((0, 0), np.uint16)))
    for number, value in ((256, 200_000), (257, 200_000), (256, 0), (258, 3), (259, 7), (273, 10**9), (279, 1)):
        case(
            f"tag {number} = {value}",
            "fail" if number in (256, 257, 273) or value == 0 else "either",
            tag(number, value),
        )
    for k in range(5):
        case(
            f"truncated {k}",
            "fail",
            lambda p, r, k=k: (shutil.copy(base["tif16"], p), truncate(p, [0.01, 0.2, 0.5, 0.8, 0.95][k])),
        )
    for k in range(12):
        case(f"bit flips {k}", "either", lambda p, r, k=k: (shutil.copy(base["tif16"], p), flip_bits(p, r, 1 + k % 4)))
    return cases


# --------------------------------------------------------------------------- radiographs (xray predict)


def radiograph_cases(base: dict, root: Path, seed: int = 800) -> list[Case]:
    from PIL import Image

    cases = []

    def case(name, expect, source, change):
        folder = root / f"radiograph_{len(cases):03d}"
        folder.mkdir()
        image = folder / f"image{source.suffix}"
        shutil.copy(source, image)
        change(image, random.Random(seed + len(cases)))
        out = folder / "out"
        argv = ["xray", "predict", str(image), "--model", str(base["xray_model"]), "--output", str(out)]
        cases.append(Case("radiograph", name, folder, argv, out, expect))

    for keyword in ("WindowCenter", "WindowWidth", "BitsStored", "Rows", "PhotometricInterpretation",
                    "RescaleSlope", "ImagerPixelSpacing"):
        for value in ("nan", "inf", "abc", "", "0", "-1"):
            fatal = value not in ("", "-1", "0") or keyword in ("WindowWidth", "ImagerPixelSpacing") and value != ""
            fatal = fatal and keyword != "PhotometricInterpretation" or keyword == "RescaleSlope" and value == "0"
            case(f"{keyword}={value!r}", "fail" if fatal else "either", base["dx"],
                 lambda p, r, k=keyword, v=value: damage_dicom(p, k, v))
    for fraction in (0.1, 0.5, 0.9, 0.99):
        case(f"DICOM truncated at {fraction:.0%}", "fail", base["dx"], lambda p, r, f=fraction: truncate(p, f))
        case(f"PNG truncated at {fraction:.0%}", "fail", base["png16"], lambda p, r, f=fraction: truncate(p, f))
    for k in range(8):
        case(f"DICOM bit flips {k}", "either", base["dx"], lambda p, r, k=k: flip_bits(p, r, 1 + k % 3, start=132))
        case(f"PNG bit flips {k}", "either", base["png16"], lambda p, r, k=k: flip_bits(p, r, 1 + k % 3, start=8))
    for shape in ((1, 4000), (1, 1), (4000, 3)):  # strips and a dot: no radiograph, and a heat map of 0 rows
        case(f"PNG {shape[0]} x {shape[1]}", "fail", base["png16"],
             lambda p, r, sh=shape: Image.fromarray(np.full(sh, 30000, np.uint16)).save(p))
    return cases


def damage_dicom(path: Path, keyword: str, value: str | None) -> None:
    ds = pydicom.dcmread(path)
    set_raw(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)


def _set_tiff_tag(path: Path, number: int, value: int) -> None:
    """Set a tag of the first IFD of a little-endian classic TIFF to ``value`` (as LONG)."""
    data = bytearray(path.read_bytes())
    offset = struct.unpack_from("<I", data, 4)[0]
    for k in range(struct.unpack_from("<H", data, offset)[0]):
        entry = offset + 2 + 12 * k
        if struct.unpack_from("<H", data, entry)[0] == number:
            struct.pack_into("<HHII", data, entry, number, 4, 1, value)
    path.write_bytes(bytes(data))


def all_cases(root: Path) -> list[Case]:
    """Every case, its inputs made under ``root`` (deterministic)."""
    base = make_base(root / "base")
    cases = []
    makers = (dicom_cases, rtstruct_cases, rtdose_cases, cmdfile_cases, envi_cases, projection_cases, tiff_cases,
              radiograph_cases)
    for make in makers:
        cases += make(base, root)
    return cases


# --------------------------------------------------------------------------- running


@dataclass
class Outcome:
    code: int | str  # exit status, or "traceback" / "hang"
    stderr: str
    problems: list[str]
    seconds: float


def snapshot(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        for p in sorted(folder.rglob("*"))
    }


def run_imgsuite(case: Case, timeout: int = 60) -> Outcome:
    """Run the case through ``SlicerImgSuite.cli.main`` in this process; check what it left behind."""
    import contextlib
    import io
    import signal
    import time
    import traceback
    import warnings

    from SlicerImgSuite.cli import main

    before = snapshot(case.folder)

    def alarm(*_):
        raise TimeoutError("case ran too long")

    err, out = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(timeout)
    start = time.perf_counter()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("default")
            code = main([*case.argv, "--quiet"])
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    except TimeoutError:
        code = "hang"
    except BaseException:  # noqa: BLE001 - what the fuzz test looks for
        code = "traceback"
        err.write(traceback.format_exc())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    seconds = time.perf_counter() - start
    return Outcome(code, err.getvalue(), _problems(case, code, err.getvalue(), before), seconds)


def _problems(case: Case, code, stderr: str, before: dict[str, str]) -> list[str]:
    after = snapshot(case.folder)
    problems = []
    changed = [p for p, h in before.items() if after.get(p) != h]
    if changed:
        problems.append(f"input changed or removed: {changed[:3]}")
    new = [p for p in after if p not in before]
    outside = [p for p in new if not (p == str(case.output) or p.startswith(str(case.output) + "/"))]
    if outside:
        problems.append(f"written outside the output path: {outside[:3]}")
    if code in ("traceback", "hang"):
        problems.append(f"{code}: {stderr.strip().splitlines()[-1] if stderr.strip() else ''}")
    elif code == 0:
        if case.expect == "fail":
            problems.append("exit 0 on an input that must fail")
        problems += _invalid_output(case)
    elif code == 2:
        if new:
            problems.append(f"output left after a failure: {new[:3]}")
        if str(case.folder) not in stderr:
            problems.append(f"message names no input file: {stderr.strip()[:200]!r}")
    else:
        problems.append(f"exit {code}")
    if "Traceback" in stderr and code != "traceback":
        problems.append("traceback printed")
    return problems


def _invalid_predictions(table: Path) -> list[str]:
    """An exit 0 of ``xray predict`` must leave a probability in [0, 1] for the image."""
    import csv

    if not table.is_file():
        return ["exit 0 without predictions.csv"]
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    values = [float(v) for row in rows for k, v in row.items() if k.startswith("p_")]
    return [] if len(rows) == 1 and values and all(0.0 <= v <= 1.0 for v in values) else [f"predictions {rows}"]


def _invalid_output(case: Case) -> list[str]:
    """An exit 0 must leave a valid output: readable, finite numbers."""
    targets = [case.output]
    if case.kind == "cmdfile":  # a flipped bit may rename an output inside the output folder
        targets = [p for p in case.output.rglob("*") if p.suffix in (".mha", ".nrrd")] if case.output.is_dir() else []
        if not targets:
            return ["exit 0 without a warped image"]
    if case.kind == "tiff":
        targets = sorted(case.output.glob("*_labels.tif")) if case.output.is_dir() else []
        return [] if targets else ["exit 0 without a labels file"]
    if case.kind == "radiograph":
        return _invalid_predictions(case.output / "predictions.csv")
    problems = []
    for target in targets:
        if not target.exists():
            problems.append(f"exit 0 without its output {target.name}")
            continue
        try:
            values = sitk.GetArrayFromImage(sitk.ReadImage(str(target)))  # a copy: a view dies with its image
        except RuntimeError as exc:
            problems.append(f"unreadable output {target.name}: {str(exc).splitlines()[-1][:100]}")
            continue
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            problems.append(f"output {target.name} holds NaN or infinite values")
    return problems
