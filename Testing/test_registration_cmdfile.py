"""Command-file parsing: plastimatch's format, defaults, aliases and errors with line numbers."""

from __future__ import annotations

import pytest

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.registration import parse_command_file, read_command_file

TEXT = """# a plastimatch command file
[GLOBAL]
fixed = f.mha
moving=m.mha      # trailing comment
fixed_mask = fm.nrrd
xform_out=out.h5
max_its = 7        # a stage default in GLOBAL

[STAGE]
xform=align_center
[STAGE]
xform = versor
optim=versor
impl=itk
metric=mattes
ss=4
[stage]
xform=bspline
res = 2 2 1
grid_spac=30,30,20
regularization_lambda=0.01
"""


def test_parse_globals_stages_defaults_and_aliases():
    cf = parse_command_file(TEXT, "reg.txt")
    assert cf.globals == {"fixed": "f.mha", "moving": "m.mha", "fixed_roi": "fm.nrrd", "xform_out": "out.h5"}
    assert [s["xform"] for s in cf.stages] == ["align_center", "rigid", "bspline"]
    assert cf.stages[1]["metric"] == "mi" and cf.stages[1]["res"] == [4, 4, 4]
    assert cf.stages[2]["grid_spac"] == [30.0, 30.0, 20.0]
    assert all(s["max_its"] == 7 for s in cf.stages)
    again = parse_command_file(cf.text())
    assert [{k: v for k, v in s.items() if k != "_line"} for s in again.stages] == [
        {k: v for k, v in s.items() if k != "_line"} for s in cf.stages
    ]


@pytest.mark.parametrize(
    "text, where",
    [
        ("[GLOBAL]\nfixed=a\n[STAGE]\nxform=rigid\nmax_itz=3\n", "line 5: unknown key 'max_itz'"),
        ("[GLOBAL]\n[STAGE]\nxform=spline\n", "line 3: bad value 'spline' for xform"),
        ("[GLOBAL]\n[STAGE]\nres=2 2\n", "line 3: bad value '2 2' for res"),
        ("[GLOBAL]\n[STAGE]\nmax_its=-1\n", "line 3: bad value '-1' for max_its"),
        ("[GLOBAL]\n[STAGE]\njust words\n", "line 3: expected 'key = value'"),
        ("[GLOBAL]\n[STAGES]\n", "line 2: unknown section"),
        ("[GLOBAL]\nfixed=a\n", "no [STAGE] section"),
        ("[STAGE]\nxform=rigid\n[GLOBAL]\n", "line 3: [GLOBAL] must come first"),
        # values that would fail only once registering or writing: refused while parsing
        ("[GLOBAL]\n[STAGE]\nxform=rigid\nmetric=gm\n", "line 4: bad value 'gm' for metric: gm (gradient"),
        ("[GLOBAL]\nimg_out_type=shrt\n[STAGE]\n", "line 2: bad value 'shrt' for img_out_type"),
        # plastimatch writes a stage's output after that stage: here the final result went into that file
        ("[GLOBAL]\n[STAGE]\nxform=rigid\nxform_out=rigid.tfm\n[STAGE]\nxform=bspline\n", "line 4: xform_out in stage 1 of 2"),
        # ... and [GLOBAL]'s file was not written at all
        ("[GLOBAL]\nimg_out=a.mha\n[STAGE]\nimg_out=b.mha\n", "line 4: img_out is named in [GLOBAL] too (line 2)"),
    ],
)
def test_errors_name_the_file_and_line(text, where):
    with pytest.raises(ImgSuiteError) as err:
        parse_command_file(text, "/x/reg.txt")
    assert str(err.value).startswith("/x/reg.txt: ") and where in str(err.value)


def test_read_missing_and_binary_files(tmp_path):
    with pytest.raises(ImgSuiteError, match="no such command file"):
        read_command_file(tmp_path / "none.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ImgSuiteError, match="bad.txt"):
        read_command_file(bad)


def test_a_byte_order_mark_and_windows_line_ends_are_read(tmp_path):
    # Notepad's UTF-8 files start with a byte-order mark: "line 1: expected 'key = value', got '\ufeff[GLOBAL]'"
    f = tmp_path / "reg.txt"
    f.write_bytes("[GLOBAL]\r\nfixed=f.mha\r\n[STAGE]\r\nxform=affine\r\nres=2\r\n".encode("utf-8-sig"))
    cf = read_command_file(f)
    assert cf.globals == {"fixed": "f.mha"} and cf.stages[0]["xform"] == "affine" and cf.stages[0]["res"] == [2, 2, 2]


def test_plastimatch_comment_sections_are_skipped():
    # plastimatch skips [COMMENT] sections (notes, any text): they were refused as an unknown section
    cf = parse_command_file("[COMMENT]\nphase 50 to 0, run by M.\n[GLOBAL]\nfixed=f.mha\n[STAGE]\nxform=affine\n"
                            "[COMMENT]\nmax_its = 3 was too few\n[STAGE]\nxform=bspline\n")  # fmt: skip
    assert cf.globals == {"fixed": "f.mha"} and [s["xform"] for s in cf.stages] == ["affine", "bspline"]
    assert "max_its" not in cf.stages[1]
    with pytest.raises(ImgSuiteError, match="line 5: \\[GLOBAL\\] must come first"):
        parse_command_file("[STAGE]\nxform=rigid\n[COMMENT]\nnote\n[GLOBAL]\n")


def test_python_stage_dicts_are_validated():
    from SlicerImgSuite.registration.cmdfile import validate_stage

    assert validate_stage({"xform": "bspline", "res": 2, "grid_spac": [10, 20, 30]})["res"] == [2, 2, 2]
    with pytest.raises(ImgSuiteError, match="stage 2: unknown key 'gridspacing'"):
        validate_stage({"xform": "bspline", "gridspacing": 10}, 1)


IGNORED = """[GLOBAL]
fixed=f.mha
moving=m.mha
resample_when_linear=true
img_out_fmt=nifti
regularization_lambda=5
[STAGE]
xform=rigid
optim=versor
threading=openmp
landmark_penalty=2
[STAGE]
xform=bspline
regularization_lambda=1
min_its=3
"""


def test_ignored_keys_warn_with_their_line(caplog):
    cf = parse_command_file(IGNORED, "/x/reg.txt")
    warned = {int(w.split(":")[0].split()[1]): w for w in cf.warnings}
    # line 6 is a stage default the B-spline stage reads, line 14 a key it reads: no warning
    assert sorted(warned) == [4, 5, 9, 10, 11, 15], cf.warnings
    assert "resample_when_linear is ignored" in warned[4] and "img_out_fmt = nifti is ignored" in warned[5]
    assert "optim is accepted for plastimatch files and ignored" in warned[9] and "threading" in warned[10]
    assert "landmark_penalty is ignored by stage 1 (rigid)" in warned[11] and "min_its" in warned[15]
    assert "/x/reg.txt: line 9: optim" in caplog.text
    # a stage default no stage reads is reported at its GLOBAL line
    only_rigid = parse_command_file("[GLOBAL]\ngrid_spac=20\n[STAGE]\nxform=rigid\n")
    assert only_rigid.warnings == [
        "line 2: grid_spac is ignored by every stage; only B-spline stages with metric=mse and ITK B-spline "
        "stages (impl=itk or metric other than mse) use it"
    ]
    # which engine runs a B-spline stage decides: the ITK one has no bending penalty
    itk = parse_command_file("[GLOBAL]\n[STAGE]\nxform=bspline\nmetric=mi\nregularization_lambda=1\n")
    assert len(itk.warnings) == 1 and itk.warnings[0].startswith("line 5: regularization_lambda is ignored")
    # TEXT's B-spline stage keeps stage 2's impl=itk and metric=mattes (as in plastimatch): no bending penalty there
    assert parse_command_file(TEXT).warnings == [
        "line 13: optim is accepted for plastimatch files and ignored",
        "line 21: regularization_lambda is ignored by stage 3 (bspline); only B-spline stages with metric=mse use it",
    ]


def test_a_stage_starts_as_a_copy_of_the_one_before():
    # plastimatch copies every setting of the stage before: stage 2 here is an MI B-spline
    # with lambda 0.5 and 80 iterations; read as MSE with our defaults it ran another registration, silently
    cf = parse_command_file(
        "[GLOBAL]\n[STAGE]\nxform=bspline\nmetric=mi\nres=4 4 2\nmax_its=80\nregularization_lambda=0.5\n"
        "[STAGE]\nres=2 2 1\ngrid_spac=10 10 10\n"
    )
    second = cf.stages[1]
    assert (second["xform"], second["metric"], second["max_its"], second["res"]) == ("bspline", "mi", 80, [2, 2, 1])
    assert second["regularization_lambda"] == 0.5
    from SlicerImgSuite.registration.cmdfile import engine_of

    assert engine_of(second) == "itk_bspline"


def test_the_module_says_which_command_file_keys_it_does_not_read():
    # a loaded plastimatch file's fixed_roi and xform_in were dropped by the Slicer module with no word, and so
    # were the parser's ignored-key warnings (only in the Python log)
    from SlicerImgSuite.registration.nodes import module_stages

    stages, said = module_stages("[GLOBAL]\nfixed_roi=body.nrrd\nxform_in=x.tfm\n[STAGE]\nxform=rigid\noptim=versor\n")
    assert [s["xform"] for s in stages] == ["rigid"]
    assert said[0] == "line 6: optim is accepted for plastimatch files and ignored"
    assert said[1].startswith("[GLOBAL] fixed_roi, xform_in not used by the module")
    assert module_stages("[GLOBAL]\n[STAGE]\nxform=affine\n")[1] == []
