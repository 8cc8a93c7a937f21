"""Second audit pass (DRR/FDK, registration command files, review export): values that parse but mean something
else than in plastimatch, or that are implausible, are refused naming the file and the line or key (exit 2, no
traceback, nothing written). Each test here failed on main; the data is the shared IBSI STS_001 CT or made here.
"""

from __future__ import annotations

from SlicerImgSuite.cli import main

STS_CT = ("ibsi-sts-ct-rtstruct", "STS_001", "nifti", "CT_image.nii.gz")


def _refused(args, capsys, out, *names):
    """exit 2, one error line naming each of ``names``, no traceback, ``out`` not written."""
    capsys.readouterr()
    assert main([*map(str, args), "-q"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for name in names:
        assert str(name) in err, (name, err)
    assert not out.exists()


def test_register_fractional_res_is_refused(tmp_path, shared_data, capsys):
    """plastimatch's ``res = 1.5`` resamples by 1.5 voxels; it was rounded to 2 here, silently."""
    ct = shared_data.joinpath(*STS_CT)
    out = tmp_path / "warped.nii.gz"
    cmd = tmp_path / "reg.txt"
    text = f"[GLOBAL]\nfixed = {ct}\nmoving = {ct}\nimg_out = {out}\n[STAGE]\nxform = translation\nres = 1.5 1.5 1\n"
    cmd.write_text(text)
    _refused(["register", cmd], capsys, out, "reg.txt", "line 7", "res")
