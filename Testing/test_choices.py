"""Each enumeration is declared once (SlicerImgSuite/choices.py): the logic, argparse, the Slicer modules and the
docs read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from SlicerImgSuite import choices
from SlicerImgSuite.cli import build_parser

REPO = Path(__file__).resolve().parent.parent


def test_the_logic_uses_the_declared_names():
    from SlicerImgSuite.io.images import OUTPUT_TYPES
    from SlicerImgSuite.registration import nodes
    from SlicerImgSuite.segmentation import atlas, ct, nuclei
    from SlicerImgSuite.tomo import recon

    assert tuple(sorted(OUTPUT_TYPES)) == choices.PIXEL_TYPES
    assert tuple(nodes.PRESETS) == choices.REGISTRATION_PRESETS and nodes.KINDS is choices.TRANSFORM_KINDS
    assert ct.PRESETS is choices.CT_PRESETS and nuclei.METHODS is choices.NUCLEI_MASK_METHODS
    assert atlas.FUSION_METHODS is choices.FUSION_METHODS
    assert recon.ALGORITHMS is choices.RECON_ALGORITHMS and recon.FILTERS is choices.RECON_FILTERS
    assert set(recon.ALGORITHM_OPTIONS) == set(choices.RECON_ALGORITHMS)
    from SlicerImgSuite.io.dicom_write import SOP_CLASS

    assert tuple(SOP_CLASS) == choices.SERIES_MODALITIES


def test_module_only_enumerations_match_the_logic():
    from SlicerImgSuite.imageops.nodes import OPERATIONS
    from SlicerImgSuite.rtstruct.dose import DOSE_UNITS

    assert tuple(OPERATIONS) == choices.IMAGE_TOOL_OPERATIONS
    assert {u.lower() for u in choices.PLAIN_VOLUME_DOSE_UNITS[1:]} == set(DOSE_UNITS)


def _choices(argv: list[str], dest: str):
    parser = build_parser(argv[0])
    sub = parser._subparsers._group_actions[0].choices
    for name in argv:
        parser = sub[name]
        sub = next((a.choices for a in parser._actions if a.dest.endswith("command") and a.choices), {})
    return tuple(next(a.choices for a in parser._actions if a.dest == dest))


@pytest.mark.parametrize(
    "argv, dest, declared",
    [
        (["segment"], "preset", choices.CT_PRESETS),
        (["segment"], "output_type", choices.PIXEL_TYPES),
        (["nuclei"], "method", choices.NUCLEI_METHODS),
        (["tomo"], "algorithm", choices.TOMO_ALGORITHMS),
        (["tomo"], "filter", choices.RECON_FILTERS),
        (["fdk"], "filter", choices.FDK_FILTERS),
        (["drr"], "sweep", choices.SWEEP_KINDS),
        (["convert"], "output_type", choices.PIXEL_TYPES),
        (["warp"], "output_type", choices.PIXEL_TYPES),
        (["resample"], "output_type", choices.PIXEL_TYPES),
        (["dvh"], "normalization", ("pct", "cc", "vox")),
    ],
)
def test_argparse_choices_are_the_declared_ones(argv, dest, declared):
    assert _choices(argv, dest) == tuple(declared)


def test_the_modules_read_the_declared_names():
    for module, names in {
        "Segmentation": ("CT_PRESETS", "FUSION_METHODS", "NUCLEI_METHODS"),
        "Tomosynthesis": ("TOMO_ALGORITHMS", "RECON_FILTERS"),
        "Registration": ("REGISTRATION_PRESETS", "TRANSFORM_KINDS"),
    }.items():
        source = (REPO / "Modules" / module / f"{module}.py").read_text()
        for name in names:
            assert (
                f"Choice(list({name}))" in source or f"{name}" in source.split("from SlicerImgSuite.choices import")[1]
            )
        assert '"lung", "bone"' not in source and '"otsu", "threshold"' not in source and '"saa", "fbp"' not in source


@pytest.mark.parametrize(
    "doc, declared",
    [
        ("tomosynthesis.md", choices.TOMO_ALGORITHMS + choices.RECON_FILTERS),
        ("segmentation.md", choices.NUCLEI_METHODS + choices.CT_PRESETS),
    ],
)
def test_the_docs_name_every_choice(doc, declared):
    text = (REPO / "docs" / doc).read_text()
    assert [c for c in declared if f"`{c}`" not in text and f"|{c}" not in text and f"{c}|" not in text] == []


@pytest.mark.parametrize("option", ["--direction-cosines", "--direction"])
def test_grid_direction_has_plastimatch_name_and_the_alias(option):
    for command, more in (("convert", []), ("warp", ["--xf", "t"]), ("resample", ["--output", "o"])):
        args = build_parser(command).parse_args([command, "--input", "x", *more, option, "identity"])
        assert "identity" in str(getattr(args, "direction", None) or getattr(args, "direction_cosines", None))
