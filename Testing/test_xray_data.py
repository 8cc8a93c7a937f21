"""xray data: NIH table and class folders, DICOM DX/CR (VOI LUT, window, MONOCHROME1, spacing), PNG 8/16-bit,
and the one preprocessing function shared by training and prediction (no torch needed)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.xray.data import Radiograph, load_dataset, read_radiograph
from SlicerImgSuite.xray.predict import prediction_input
from SlicerImgSuite.xray.preprocess import Preprocessing, fit_preprocessing, fit_to_square, preprocess, range_warning
from SlicerImgSuite.xray.train import training_arrays

NIH = "nih-chestxray14-samples"


def _dx(path, pixels, *, photometric="MONOCHROME2", window=None, voi_lut=None, spacing=(0.143, 0.15), modality="DX"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = modality, "PAT7"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ImagerPixelSpacing = list(spacing)
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        item = pydicom.Dataset()
        item.LUTDescriptor = [len(voi_lut), 0, 12]
        item.add_new(0x00283006, "US", [int(v) for v in voi_lut])  # LUTData
        ds.VOILUTSequence = [item]
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_nih_data_entry_table(shared_data):
    ds = load_dataset(shared_data / NIH / "labels_Data_Entry_2017_v2020_subset.csv")
    assert ds.classes == ["No Finding", "Finding"]
    assert [p.split("/")[-1] for p in ds.paths] == ["00000001_000.png", "00027426_000.png"]
    assert ds.labels.tolist() == [1, 0] and ds.patients == ["1", "27426"]
    only = load_dataset(shared_data / NIH / "labels_Data_Entry_2017_v2020_subset.csv", finding="Effusion")
    assert only.labels.tolist() == [0] and only.skipped == 1  # the cardiomegaly row is not an effusion
    r = read_radiograph(ds.paths[1])
    assert r.pixels.shape == (512, 512) and r.bit_depth == 8
    assert r.pixels.max() == pytest.approx(241 / 255, abs=1e-6)  # SOURCE.md: 0..241


def test_class_folders_csv_and_patients(tmp_path):
    for cls in ("covid", "normal"):
        (tmp_path / "DATA" / cls).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((6, 4), 10 * k, np.uint8)).save(tmp_path / "DATA" / cls / f"p{k}_{cls}.png")
    ds = load_dataset(tmp_path / "DATA")
    assert ds.classes == ["normal", "covid"]  # 'normal' is the negative class whatever the sort order
    assert ds.labels.tolist() == [1, 1, 0, 0] and ds.patients == ["p0", "p1", "p0", "p1"]
    (tmp_path / "list.csv").write_text("path,label,patient_id\nDATA/covid/p0_covid.png,yes,A\nDATA/normal/p0_normal.png,no,B\n")
    ds = load_dataset(tmp_path / "list.csv")
    assert ds.classes == ["no", "yes"] and ds.labels.tolist() == [1, 0] and ds.patients == ["A", "B"]
    (tmp_path / "bad.csv").write_text("path,label\nDATA/none.png,yes\nDATA/covid/p0_covid.png,no\n")
    with pytest.raises(ImgSuiteError, match=r"bad.csv: line 2: image 'DATA/none.png' not found"):
        load_dataset(tmp_path / "bad.csv")
    (tmp_path / "three.csv").write_text("path,label\nDATA/covid/p0_covid.png,a\nDATA/covid/p1_covid.png,b\n"
                                        "DATA/normal/p0_normal.png,c\n")
    with pytest.raises(ImgSuiteError, match="exactly 2 classes"):
        load_dataset(tmp_path / "three.csv")


def test_png_16_bit_and_jpeg(tmp_path):
    Image.fromarray(np.array([[0, 1000], [30000, 65535]], np.uint16)).save(tmp_path / "a.png")
    r = read_radiograph(tmp_path / "a.png")
    assert r.bit_depth == 16 and np.allclose(r.pixels, np.array([[0, 1000], [30000, 65535]]) / 65535, atol=1e-7)
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "b.jpg", quality=100)
    assert read_radiograph(tmp_path / "b.jpg").pixels.mean() == pytest.approx(128 / 255, abs=1 / 255)
    (tmp_path / "c.png").write_bytes(b"not a png")
    with pytest.raises(ImgSuiteError, match="c.png: not a readable image"):
        read_radiograph(tmp_path / "c.png")


def test_dicom_window_monochrome1_spacing(tmp_path):
    raw = np.array([[0, 1000, 1500], [2000, 3000, 4095]])
    r = read_radiograph(_dx(tmp_path / "w.dcm", raw, window=(2000, 2001)))
    # DICOM linear window: (x - (c - 0.5)) / (w - 1) + 0.5, clipped
    expected = np.clip((raw - 1999.5) / 2000 + 0.5, 0, 1)
    assert np.allclose(r.pixels, expected, atol=1e-6) and r.spacing == (0.143, 0.15) and r.bit_depth == 12
    inverted = read_radiograph(_dx(tmp_path / "m1.dcm", raw, window=(2000, 2001), photometric="MONOCHROME1"))
    assert np.allclose(inverted.pixels, 1 - expected, atol=1e-6)
    plain = read_radiograph(_dx(tmp_path / "p.dcm", raw, modality="CR"))  # no window: the 12-bit stored range
    assert np.allclose(plain.pixels, raw / 4095, atol=1e-6)
    lut = np.minimum(np.arange(4096) * 2, 4095)  # 4096-entry VOI LUT to 12 bits (a contrast stretch)
    voi = read_radiograph(_dx(tmp_path / "v.dcm", raw, voi_lut=lut))
    assert np.allclose(voi.pixels, lut[raw] / 4095, atol=1e-6)


def test_dicom_presentation_lut_shape_inverse(tmp_path):
    """PresentationLUTShape INVERSE on MONOCHROME2 is displayed inverted: read so (before: bone came out dark, and
    the network scored a negative of the radiograph); with MONOCHROME1 it is the same single inversion."""
    raw = np.array([[0, 1000, 1500], [2000, 3000, 4095]])
    path = _dx(tmp_path / "inv.dcm", raw, window=(2000, 2001))
    ds = pydicom.dcmread(path)
    ds.PresentationLUTShape = "INVERSE"
    ds.save_as(path)
    expected = np.clip((raw - 1999.5) / 2000 + 0.5, 0, 1)
    assert np.allclose(read_radiograph(path).pixels, 1 - expected, atol=1e-6)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(path)
    assert np.allclose(read_radiograph(path).pixels, 1 - expected, atol=1e-6)


def test_dicom_folder_patient_from_tag(tmp_path):
    (tmp_path / "normal").mkdir()
    (tmp_path / "nodule").mkdir()
    _dx(tmp_path / "normal" / "a.dcm", np.zeros((4, 4)))
    _dx(tmp_path / "nodule" / "b.dcm", np.ones((4, 4)))
    ds = load_dataset(tmp_path)
    assert ds.classes == ["normal", "nodule"] and ds.patients == ["PAT7", "PAT7"]


def test_aspect_kept_and_padded():
    pixels = np.ones((100, 50), np.float32)
    square = fit_to_square(pixels, 64)
    assert square.shape == (64, 64)
    assert np.allclose(square[:, 16:48], 1.0) and np.all(square[:, :16] == 0) and np.all(square[:, 48:] == 0)


def test_training_and_prediction_preprocessing_equal(shared_data):
    """The lab's bug (images /255 twice in training, once in prediction) cannot happen: one function, equal tensors."""
    ds = load_dataset(shared_data / NIH / "labels_Data_Entry_2017_v2020_subset.csv")
    radiographs = [read_radiograph(p) for p in ds.paths]
    params = fit_preprocessing(radiographs, 64)
    train_x = training_arrays(radiographs, params)
    for i, path in enumerate(ds.paths):
        predict_x, _ = prediction_input(path, params)
        assert predict_x.shape == (1, 1, 64, 64) and predict_x.dtype == np.float32
        assert np.array_equal(train_x[i], predict_x[0])
    # and the values are normalised once: the brightest padded-square pixel maps from about 1, not 1/255
    square = fit_to_square(radiographs[1].pixels, 64)
    assert square.max() > 0.8
    assert train_x[1].max() == pytest.approx((square.max() - params.mean) / params.std, rel=1e-5)
    with pytest.raises(TypeError):
        preprocess(np.asarray(radiographs[0].pixels), params)  # a raw array is refused


def test_range_warning(shared_data):
    r = read_radiograph(shared_data / NIH / "00000001_000.png")
    params = fit_preprocessing([r], 64)
    assert range_warning(r, params) is None
    twice = Radiograph(r.pixels / 255.0, source="twice.png")
    assert "already divided by 255" in range_warning(twice, params)
    params = Preprocessing(64, 0.5, 0.25, (0.45, 0.5))
    assert "outside the training range" in range_warning(Radiograph(np.ones((8, 8), np.float32), source="w.png"),
                                                          params)


def test_ct_slice_is_refused_not_classified(shared_data, tmp_path):
    from SlicerImgSuite.xray.network import build_layers, to_onnx

    ct_slice = sorted((shared_data / "ibsi-sts-ct-rtstruct/STS_001/dicom/image").iterdir())[0]
    with pytest.raises(ImgSuiteError, match=r"Modality \(0008,0060\) CT is not a projection radiograph"):
        read_radiograph(ct_slice)
    assert read_radiograph(_dx(tmp_path / "dx.dcm", np.eye(4) * 100)).pixels.shape == (4, 4)  # DX still read
    model = tmp_path / "m.onnx"
    model.write_bytes(to_onnx(build_layers("small", 16), Preprocessing(16), ["normal", "opacity"]))
    result = subprocess.run([sys.executable, "-m", "SlicerImgSuite.cli", "xray", "predict", str(ct_slice), "--model",
                             str(model), "--output", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "Modality (0008,0060) CT" in result.stderr and ct_slice.name in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("shape", [(1, 4000), (1, 1), (7, 300)])
def test_an_image_too_small_for_a_radiograph_is_refused(tmp_path, shape, capsys):
    # a 1 x 4000 image once gave a traceback (resized to the network's square: 0 rows); a 1 x 1 one a probability
    from PIL import Image

    from SlicerImgSuite.cli import main
    from SlicerImgSuite.xray.network import build_layers, to_onnx
    from SlicerImgSuite.xray.preprocess import Preprocessing, preprocess

    path = tmp_path / "strip.png"
    Image.fromarray(np.full(shape, 100, np.uint8)).save(path)
    with pytest.raises(ImgSuiteError, match=f"strip.png: the image is {shape[0]} x {shape[1]} pixels: too small"):
        preprocess(read_radiograph(path), Preprocessing(32))
    (tmp_path / "m.onnx").write_bytes(to_onnx(build_layers("small", 32), Preprocessing(32), ["a", "b"]))
    assert main(["xray", "predict", str(path), "--model", str(tmp_path / "m.onnx"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "strip.png" in err and "Traceback" not in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize(("rows", "expect"), [
    ("a.png,normal,1\na.png,opacity,2\n", "line 3: image 'a.png' is listed again (line 2)"),  # was taken twice
    ("a.png,normal,\nb.png,opacity,\n", "line 2: the patient_id of 'a.png' is empty"),  # each image its own patient
    ("a.png,,1\nb.png,opacity,1\n", "line 2: the label of 'a.png' is empty"),
    ("a.png,normal,1\nb.png,normal,2\n", "labels.csv: the classifier is binary"),
])
def test_csv_rows_that_would_leak_between_folds_are_refused(tmp_path, rows, expect):
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / name)
    (tmp_path / "labels.csv").write_text("path,label,patient_id\n" + rows)
    with pytest.raises(ImgSuiteError, match=re.escape(expect)):
        load_dataset(tmp_path / "labels.csv")


def test_nih_labels_compared_without_case_or_spaces(shared_data, tmp_path):
    """An exported table with 'No Finding ' / 'no finding' keeps those images negative, and --finding matches
    whatever the case (before: the normal image was labelled positive, and --finding cardiomegaly found nothing)."""
    for name in ("00000001_000.png", "00027426_000.png"):
        (tmp_path / name).write_bytes((shared_data / NIH / name).read_bytes())
    for negative in ("No Finding ", "no finding", " NO FINDING"):
        table = tmp_path / "table.csv"
        table.write_text("Image Index,Finding Labels,Patient ID\n00000001_000.png,Cardiomegaly ,1\n"
                         f"00027426_000.png,{negative},27426\n")
        assert load_dataset(table).labels.tolist() == [1, 0], negative
        only = load_dataset(table, finding="cardiomegaly")
        assert only.labels.tolist() == [1, 0] and only.classes == ["No Finding", "cardiomegaly"]


def test_csv_classes_differing_only_in_case_refused(tmp_path):
    """'Effusion' and 'effusion ' are one label typed twice: before, they were trained and scored as two classes."""
    for k in range(2):
        Image.fromarray(np.full((8, 8), 10 * k, np.uint8)).save(tmp_path / f"p{k}_x.png")
    (tmp_path / "labels.csv").write_text("path,label\np0_x.png,Effusion\np1_x.png,effusion \n")
    with pytest.raises(ImgSuiteError, match="differ only in case"):
        load_dataset(tmp_path / "labels.csv")


def test_dicom_pixel_padding_is_not_anatomy(tmp_path):
    """PixelPaddingValue marks pixels outside the detector: read as 0 (black, like the square's padding), in
    MONOCHROME1 too (before: a MONOCHROME2 padding of 4095 came out as a white frame, counted as anatomy)."""
    raw = np.full((8, 8), 1000)
    raw[:, :2] = 4095  # padded columns
    path = _dx(tmp_path / "pad.dcm", raw)
    ds = pydicom.dcmread(path)
    ds.add_new(0x00280120, "US", 4095)  # PixelPaddingValue
    ds.save_as(path)
    r = read_radiograph(path)
    assert r.pixels[:, :2].max() == 0.0 and np.allclose(r.pixels[:, 2:], 1000 / 4095, atol=1e-6)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(path)
    r = read_radiograph(path)
    assert r.pixels[:, :2].max() == 0.0 and np.allclose(r.pixels[:, 2:], 1 - 1000 / 4095, atol=1e-6)


def test_lateral_view_warned(tmp_path):
    """A lateral DX (ViewPosition LL) is read, but its prediction carries a warning (before: scored silently as if
    it were a frontal film)."""
    raw = np.tile(np.linspace(0, 4095, 16), (16, 1)).astype(int)
    params = Preprocessing(image_size=8, train_mean_range=(0.3, 0.7))
    path = _dx(tmp_path / "pa.dcm", raw)
    assert range_warning(read_radiograph(path), params) is None
    ds = pydicom.dcmread(path)
    ds.ViewPosition = "LL"
    ds.save_as(path)
    assert "ViewPosition LL is a lateral" in range_warning(read_radiograph(path), params)
