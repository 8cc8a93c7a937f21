"""Static checks of what cannot run here: CMake file lists, .ui files, module structure, imports, ruff."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODULES = sorted(p for p in (REPO / "Modules").iterdir() if p.is_dir())
FORBIDDEN_AT_IMPORT = {"slicer", "qt", "ctk", "vtk", "vtkmodules", "PythonQt"}


def _cmake_set(text: str, variable: str, module_name: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\s+(.*?)\)", text, re.S)
    assert match, f"{variable} not set"
    return [w.replace("${MODULE_NAME}", module_name) for w in match.group(1).split()]


def test_top_level_cmake_adds_every_module():
    text = (REPO / "CMakeLists.txt").read_text()
    for key in (
        "EXTENSION_HOMEPAGE",
        "EXTENSION_CATEGORY",
        "EXTENSION_CONTRIBUTORS",
        "EXTENSION_DESCRIPTION",
        "EXTENSION_ICONURL",
        "EXTENSION_SCREENSHOTURLS",
        "EXTENSION_DEPENDS",
        "find_package(Slicer",
        "include(${Slicer_USE_FILE})",
        "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
        "include(${Slicer_EXTENSION_CPACK})",
    ):
        assert key in text, key
    assert "ExternalProject" not in text
    listed = re.findall(r"add_subdirectory\(\s*Modules/(\w+)\s*\)", text)
    assert sorted(listed) == [m.name for m in MODULES]
    for sub in re.findall(r"add_subdirectory\(\s*([\w/]+)\s*\)", text):
        assert (REPO / sub / "CMakeLists.txt").is_file(), sub


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_cmake_lists_existing_files(module):
    text = (module / "CMakeLists.txt").read_text()
    assert f"set(MODULE_NAME {module.name})" in text
    assert "slicerMacroBuildScriptedModule(" in text
    scripts = _cmake_set(text, "MODULE_PYTHON_SCRIPTS", module.name)
    resources = _cmake_set(text, "MODULE_PYTHON_RESOURCES", module.name)
    assert f"{module.name}.py" in scripts
    assert f"Resources/UI/{module.name}.ui" in resources
    assert f"Resources/Icons/{module.name}.png" in resources
    for f in scripts + resources:
        assert (module / f).is_file(), f"{module.name}/CMakeLists.txt lists missing {f}"
    # every file the module ships is listed (no forgotten resource)
    shipped = {
        str(p.relative_to(module)) for p in module.rglob("*") if p.is_file() and p.suffix in {".py", ".ui", ".png"}
    }
    assert shipped <= set(scripts) | set(resources), shipped - set(scripts) - set(resources)


def _ui_names(ui: Path) -> tuple[ET.Element, set[str], dict[str, str]]:
    root = ET.parse(ui).getroot()
    names = {w.get("name") for w in root.iter("widget")} | {a.get("name") for a in root.iter("action")}
    params = {}
    for w in root.iter("widget"):
        for prop in w.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                params[w.get("name")] = prop.find("string").text
    return root, names, params


def _parameter_fields(tree: ast.Module, module_name: str) -> set[str]:
    fields = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name.endswith("ParameterNode"):
            fields |= {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
    return fields


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_ui_and_python_agree(module):
    name = module.name
    root, names, params = _ui_names(module / "Resources" / "UI" / f"{name}.ui")
    top = root.find("widget")
    assert top.get("class") == "qMRMLWidget"
    source = (module / f"{name}.py").read_text()
    tree = ast.parse(source)
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    for suffix in ("", "Widget", "Logic", "Test"):
        assert f"{name}{suffix}" in classes, f"{name}.py lacks class {name}{suffix}"
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    missing = used - names
    assert not missing, f"{name}.py uses widgets missing from {name}.ui: {sorted(missing)}"
    fields = _parameter_fields(tree, name)
    unknown = {w: p for w, p in params.items() if p not in fields}
    assert not unknown, f"{name}.ui binds parameters the parameter node lacks: {unknown}"
    assert f'resourcePath("UI/{name}.ui")' in source


def test_logic_package_imports_no_slicer_qt_vtk_at_module_level():
    offenders = []
    for path in sorted((REPO / "SlicerImgSuite").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            for m in mods:
                if m.split(".")[0] in FORBIDDEN_AT_IMPORT:
                    offenders.append(f"{path.relative_to(REPO)}: import {m}")
    assert not offenders, offenders


def test_importing_every_logic_module_loads_no_slicer_or_vtk():
    code = (
        "import importlib, pkgutil, sys, SlicerImgSuite\n"
        "for m in pkgutil.walk_packages(SlicerImgSuite.__path__, 'SlicerImgSuite.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(k for k in sys.modules if k.split('.')[0] in {sorted(FORBIDDEN_AT_IMPORT)!r})\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_extension_index_entry():
    entry = json.loads((REPO / "SlicerImgSuite.json").read_text())
    for key in ("scm_url", "scm_revision", "category", "build_dependencies", "build_subdirectory"):
        assert key in entry, key
    assert (REPO / "Resources" / "Icons" / "SlicerImgSuite.png").is_file()


def test_ruff_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "SlicerImgSuite", "Modules", "Testing", "bench"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr


HEAVY = {
    "scipy",
    "skimage",
    "matplotlib",
    "torch",
    "itk",
    "spectral",
    "trame",
    "trame_slicer",
    "tifffile",
    "pylibCZIrw",
    "PIL",
    "vtk",
    "vtkmodules",
    "slicer",
    "pandas",
    "numba",
}


def test_cli_start_up_imports_nothing_heavy():
    """Building the parser imports every job's commands module: those must defer their work's imports,
    or every `imgsuite` call pays for all of them (benchmarks compare whole command runs)."""
    code = (
        "import sys\n"
        "from SlicerImgSuite.cli import build_parser\n"
        "build_parser()\n"
        f"print(sorted({{k.split('.')[0] for k in sys.modules}} & set({sorted(HEAVY)!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"imported at start-up: {result.stdout.strip()}"


def test_segmentation_module_reads_every_bound_widget_and_fills_combos_from_choices():
    """Every parameter a Segmentation.ui widget binds is read by the module (a field nobody reads is a setting
    that silently does nothing); each combo box is filled from one enumeration of SlicerImgSuite/choices.py
    (Slicer's combo-box connector needs a ``Choice`` and replaces the .ui's items with it); the nuclei fields
    reach ``NucleiOptions``, the options of the CLI's job function, under names it has."""
    import dataclasses

    from SlicerImgSuite import choices
    from SlicerImgSuite.segmentation.nuclei_job import NucleiOptions

    module = REPO / "Modules" / "Segmentation"
    root, _, params = _ui_names(module / "Resources" / "UI" / "Segmentation.ui")
    tree = ast.parse((module / "Segmentation.py").read_text())
    read = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load)}
    assert {"nucleiThreshold8bit", "perinuclearMode", "minArea"} <= set(params.values())
    assert not set(params.values()) - read, f"bound but never read: {sorted(set(params.values()) - read)}"
    imported = {
        a.name
        for n in tree.body
        if isinstance(n, ast.ImportFrom) and n.module == "SlicerImgSuite.choices"
        for a in n.names
    }
    annotations = {n.target.id: ast.unparse(n.annotation) for n in ast.walk(tree) if isinstance(n, ast.AnnAssign)}
    combos = {params[w.get("name")] for w in root.iter("widget") if w.get("class") == "QComboBox"}
    assert "perinuclearMode" in combos
    for param in combos:
        match = re.fullmatch(r"Annotated\[str, Choice\(list\((\w+)\)\)\]", annotations[param])
        assert match and match.group(1) in imported and hasattr(choices, match.group(1)), (param, annotations[param])
    assert "Choice(list(PERINUCLEAR_MODES))" in annotations["perinuclearMode"]
    widget = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SegmentationWidget")
    calls = [n for n in ast.walk(widget) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "NucleiOptions"]
    assert len(calls) == 1
    passed = {k.arg for k in calls[0].keywords}
    assert passed <= {f.name for f in dataclasses.fields(NucleiOptions)}
    assert {"threshold_8bit", "perinuclear_mode", "min_area", "perinuclear_width", "threshold"} <= passed


# What Slicer's parameter-node GUI connectors (slicer/parameterNodeWrapper/guiConnectors.py) accept: the widget's
# exact class and the parameter's type. Any other pair raises "Unable to create GUI connector" when the module
# opens. A combo box needs a Choice (Slicer fills it from the Choice, replacing the .ui's items); a spin box gets
# -inf..inf unless the parameter carries its range, so every spin box's parameter states one.
_CONNECTABLE = {
    "QCheckBox": r"bool|Annotated\[bool, .+\]",
    "QPushButton": r"bool|Annotated\[bool, .+\]",
    "QSpinBox": r"Annotated\[int, .*WithinRange\(.+\)\]",
    "QDoubleSpinBox": r"Annotated\[float, .*WithinRange\(.+\)\]",
    "QComboBox": r"Annotated\[\w+, .*Choice\(.+\)\]",
    "QLineEdit": r"str|Annotated\[str, .+\]",
    "QTextEdit": r"str|Annotated\[str, .+\]",
    "ctkPathLineEdit": r"(pathlib\.)?Path|Annotated\[(pathlib\.)?Path, .+\]",
    "ctkDirectoryButton": r"(pathlib\.)?Path|Annotated\[(pathlib\.)?Path, .+\]",
    "qMRMLNodeComboBox": r"vtkMRML\w+Node( \| (vtkMRML\w+Node|None))*",
}


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_every_bound_widget_has_a_slicer_connector(module):
    root, _, params = _ui_names(module / "Resources" / "UI" / f"{module.name}.ui")
    tree = ast.parse((module / f"{module.name}.py").read_text())
    annotations = {
        s.target.id: ast.unparse(s.annotation)
        for n in ast.walk(tree)
        if isinstance(n, ast.ClassDef) and n.name.endswith("ParameterNode")
        for s in n.body
        if isinstance(s, ast.AnnAssign)
    }
    bad = {}
    for w in root.iter("widget"):
        param = params.get(w.get("name"))
        if param is None:
            continue
        pattern = _CONNECTABLE.get(w.get("class"))
        if pattern is None or not re.fullmatch(pattern, annotations.get(param, "")):
            bad[param] = (w.get("class"), annotations.get(param))
    assert not bad, f"{module.name}: bound widgets Slicer cannot connect: {bad}"


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_every_bound_parameter_is_used(module):
    """A parameter a widget binds is read by the module, written by it (an output), or its widget's signal is
    connected: a field nobody uses is a setting that silently does nothing."""
    root, _, params = _ui_names(module / "Resources" / "UI" / f"{module.name}.ui")
    source = (module / f"{module.name}.py").read_text()
    tree = ast.parse(source)
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    connected = set(re.findall(r"self\.ui\.(\w+)\.connect\(", source))
    unused = {p for w, p in params.items() if p not in used and w not in connected}
    assert not unused, f"{module.name}: bound parameters nothing uses: {sorted(unused)}"


def test_no_function_over_100_lines():
    long = []
    for path in sorted((REPO / "SlicerImgSuite").rglob("*.py")) + sorted((REPO / "Modules").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 100:
                long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert not long, long


def test_no_array_view_of_a_temporary_image():
    """``sitk.GetArrayViewFromImage(f(...))`` reads freed memory once the temporary image is collected: what it
    shows then depends on the allocator (CI once saw NaN in an output that held none)."""
    found = []
    for path in sorted(p for top in ("SlicerImgSuite", "Modules", "Testing", "bench") for p in (REPO / top).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) == "GetArrayViewFromImage"
                and node.args
                and isinstance(node.args[0], ast.Call)
            ):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, found


# The files that call the job layer: the CLI's commands modules, the Slicer modules, and the cohort layer.
_JOB_CALLERS = ("SlicerImgSuite/*/commands.py", "SlicerImgSuite/imageops/parity_commands.py", "Modules/*/*.py")
# Where called functions are not jobs: the CLI itself, Slicer/MRML adapters (they need a scene or Qt), and the
# plumbing every job shares (progress, errors, atomic writes).
_NOT_JOB_MODULES = re.compile(
    r"SlicerImgSuite/(cli\.py|cli_options\.py|.*commands\.py|slicer_gui\.py|mrml/.*|.*/nodes\.py|"
    r"review/dicom_plugin\.py|progress\.py|errors\.py|io/atomic\.py)$"
)
# Jobs whose example cannot run in a second: each says why; the docstring still needs its sections.
_EXAMPLE_EXEMPT = {
    "SlicerImgSuite/web/serve.py:serve": "serves browsers until Ctrl-C",
    "SlicerImgSuite/demo/__init__.py:run_demo": "runs every job's demo on a 96x96x48 phantom (minutes)",
}


def _module_of(path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = path.parent
    for _ in range(node.level - 1):
        base = base.parent
    return ".".join(base.relative_to(REPO).parts + ((node.module,) if node.module else ()))


def _definition(module: str, name: str, depth: int = 0):
    """(path, FunctionDef) of ``module.name``, following re-exports; None for classes and other packages."""
    base = REPO.joinpath(*module.split("."))
    path = base / "__init__.py" if (base / "__init__.py").is_file() else base.with_suffix(".py")
    if not module.startswith("SlicerImgSuite") or not path.is_file() or depth > 3:
        return None
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return (path, node) if isinstance(node, ast.FunctionDef) else None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            real = next(a.name for a in node.names if (a.asname or a.name) == name)
            return _definition(_module_of(path, node), real, depth + 1)
    # lazy package attributes (``registration/__init__.py``'s table): name -> submodule
    table = re.search(rf'"{name}": "(\w+)"', path.read_text()) if path.name == "__init__.py" else None
    return _definition(f"{module}.{table.group(1)}", name, depth + 1) if table else None


def public_job_functions() -> dict[str, tuple[Path, ast.FunctionDef]]:
    """``path:name`` -> definition of every public job function.

    A job function is a public function of the logic layer (not CLI, Slicer/MRML adapter or shared plumbing)
    that the CLI's commands modules, the Slicer modules or the cohort layer call, and that is a job: it takes a
    ``progress`` callback (long work), lives in a job module (``job.py``, ``*_job.py``), or is called by two
    of those three layers.
    """
    callers = [p for pattern in _JOB_CALLERS for p in REPO.glob(pattern)]
    callers += [p for p in (REPO / "SlicerImgSuite" / "cohort").glob("*.py") if p.name != "commands.py"]
    layers: dict[str, set[str]] = {}
    found = {}
    for path in callers:
        layer = "modules" if path.is_relative_to(REPO / "Modules") else "cohort" if "cohort" in path.parts else "cli"
        tree = ast.parse(path.read_text())
        called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            for alias in node.names:
                if (alias.asname or alias.name) not in called or alias.name.startswith("_"):
                    continue
                definition = _definition(_module_of(path, node), alias.name)
                if definition is None:
                    continue
                key = f"{definition[0].relative_to(REPO)}:{alias.name}"
                if _NOT_JOB_MODULES.match(key.split(":")[0]):
                    continue
                found[key] = definition
                layers.setdefault(key, set()).add(layer)
    jobs = {}
    for key, (path, fn) in found.items():
        names = {a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs}
        if "progress" in names or re.fullmatch(r"(job|\w+_job)\.py", path.name) or len(layers[key]) > 1:
            jobs[key] = (path, fn)
    return jobs


def _documented_parameters(doc: str) -> set[str]:
    """Names in a numpydoc ``Parameters`` section (``a, b : type`` documents both; ``**kw`` is ``kw``)."""
    found = re.search(r"^Parameters\n-{3,}\n(.*?)(?=^\w+\n-{3,}$|\Z)", doc, re.M | re.S)
    names = set()
    for line in (found.group(1) if found else "").splitlines():
        if line and not line[0].isspace():
            names |= {n.strip().lstrip("*") for n in line.split(" :")[0].rstrip(":").split(",")}
    return names


def test_every_public_job_function_has_a_numpydoc_docstring_with_a_doctest_example():
    """Each job is one documented function (numpydoc ``Parameters`` naming every parameter, ``Returns`` unless it
    returns None, and an ``Examples`` section with a ``>>>`` example, which ``pytest --doctest-modules`` runs)."""
    jobs = public_job_functions()
    assert len(jobs) >= 40, sorted(jobs)  # the discovery still finds the jobs (46 when this test was written)
    assert set(_EXAMPLE_EXEMPT) <= set(jobs), "an exemption names no job function any more"
    bad = []
    for key, (_, fn) in sorted(jobs.items()):
        doc = ast.get_docstring(fn) or ""
        sections = set(re.findall(r"^(\w+)\n-{3,}$", doc, re.M))
        returns_none = isinstance(fn.returns, ast.Constant) and fn.returns.value is None
        missing = [s for s in ("Parameters", "Returns") if s not in sections and not (s == "Returns" and returns_none)]
        arguments = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs + [fn.args.vararg, fn.args.kwarg]
        undocumented = [a.arg for a in arguments if a is not None and a.arg not in _documented_parameters(doc)]
        if undocumented and "Parameters" in sections:
            missing.append(f"parameters {undocumented}")
        if key not in _EXAMPLE_EXEMPT and not ("Examples" in sections and ">>> " in doc.split("Examples\n")[-1]):
            missing.append("Examples with a >>> example")
        if missing:
            bad.append(f"{key}: {', '.join(missing)}")
    assert not bad, "\n".join(bad)
