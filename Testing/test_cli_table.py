"""The lazy ``imgsuite`` start-up: the central command table against what the ``commands`` modules register."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import subprocess
import sys

import pytest

import SlicerImgSuite
from SlicerImgSuite import cli


class _Recorder:
    """Stands in for argparse's subparsers: records each top-level command a module registers."""

    def __init__(self):
        self.names: list[str] = []
        self.common_parent = argparse.ArgumentParser(add_help=False)

    def add_parser(self, name, **kwargs):
        self.names += [name, *kwargs.get("aliases", ())]
        kwargs.pop("aliases", None)
        kwargs.pop("help", None)
        return argparse.ArgumentParser(**kwargs)


def _registered() -> dict[str, str]:
    """command -> module, from every ``SlicerImgSuite/<pkg>/commands.py`` there is (found on disk, not in the table)."""
    found = {}
    for info in pkgutil.iter_modules(SlicerImgSuite.__path__):
        name = f"{info.name}.commands"
        if not info.ispkg or importlib.util.find_spec(f"SlicerImgSuite.{name}") is None:
            continue
        recorder = _Recorder()
        importlib.import_module(f"SlicerImgSuite.{name}").register(recorder)
        for command in recorder.names:
            assert command not in found, f"{command} registered by {found.get(command)} and {name}"
            found[command] = name
    return found


def test_table_lists_every_registered_command_and_its_module():
    table = {name: module for name, (module, _) in cli.COMMANDS.items()}
    registered = _registered()
    assert sorted(set(registered) - set(table)) == [], "registered but missing from cli.COMMANDS"
    assert sorted(set(table) - set(registered)) == [], "in cli.COMMANDS but registered by no commands.py"
    assert table == registered
    for name, (_, text) in cli.COMMANDS.items():
        assert text and "\n" not in text and len(text) <= 100, name


def _modules_after(code: str) -> list[str]:
    script = f"import sys\nfrom SlicerImgSuite import cli\n{code}\nprint(sorted(sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])


def test_help_and_version_import_no_job_package():
    loaded = _modules_after("cli.listing_parser().format_help()")
    ours = [m for m in loaded if m.startswith("SlicerImgSuite")]
    assert ours == ["SlicerImgSuite", "SlicerImgSuite.cli", "SlicerImgSuite.errors", "SlicerImgSuite.progress"]
    assert not {"numpy", "SimpleITK", "pydicom"} & set(loaded)


def test_a_command_imports_only_its_package():
    loaded = _modules_after("cli.build_parser('gamma')")
    packages = {m.split(".")[1] for m in loaded if m.startswith("SlicerImgSuite.")}
    assert "rtstruct" in packages
    assert not packages & {"registration", "tomo", "segmentation", "imageops", "hsi", "web", "demo"}, packages


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_has_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: imgsuite {command}" in capsys.readouterr().out


def test_top_level_help_lists_the_table(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name, (_, text) in cli.COMMANDS.items():
        assert name in out and text.split()[0] in out


def test_a_mistyped_command_gets_a_suggestion(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["dvhh", "--input-dose", "x"])
    assert exit_.value.code == 2
    assert "did you mean 'dvh'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["zzzzzz"])
    assert "unknown command 'zzzzzz'" in capsys.readouterr().err


def test_the_chosen_command_parses_its_options():
    args = cli.build_parser("gamma").parse_args(["gamma", "a.nrrd", "b.nrrd", "--dta-tolerance", "2"])
    assert (args.command, args.image_1, args.dta_tolerance) == ("gamma", "a.nrrd", 2.0)
    with pytest.raises(SystemExit):  # the other commands of its module are not attached
        cli.build_parser("gamma").parse_args(["dvh", "--input-dose", "d.nrrd"])
