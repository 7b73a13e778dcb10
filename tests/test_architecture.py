"""The house rules, checked: imports only point down, small modules and functions, every pass in a module
named after it with its test beside it in the mirrored tree, a complete package list, bench scripts that
still import, one ``first_line`` helper."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from onnxmend.passes.infra.catalogue import FAMILIES, all_passes, family_of

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ("core", "passes", "runtime", "exporters", "models", "onnxmend")
MAX_MODULE_LINES = 310  # "no module over ~300 lines"
MAX_FUNCTION_LINES = 55  # "no function over ~50"


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / ".ci" / "lint_imports.py"), "--root", str(root)],
                          capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for folder in FLOORS:
        # links kept as links: onnxmend/passes must stay the edited passes/, as in a checkout
        shutil.copytree(ROOT / folder, tmp_path / folder, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    fold_pad = tmp_path / "passes" / "padding" / "fold_pad.py"
    fold_pad.write_text(fold_pad.read_text() + "\nfrom onnxmend.runtime import session  # an upward import\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "floors: cli > flows > runtime" in result.stdout and "BROKEN" in result.stdout
    assert "onnxmend.passes.padding.fold_pad -> onnxmend.runtime.session" in result.stdout


def _python_files() -> list[Path]:
    return sorted(p for floor in FLOORS for p in (ROOT / floor).rglob("*.py"))


def test_no_module_over_about_300_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _python_files() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_over_about_50_lines() -> None:
    long = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


@pytest.mark.parametrize("name", sorted(all_passes()))
def test_each_pass_lives_in_a_module_named_after_it_with_its_test_beside_it(name: str) -> None:
    cls = all_passes()[name]
    module = cls.__module__.rsplit(".", 1)[-1]
    assert module == name.replace("-", "_")
    family = family_of(name)
    assert family in FAMILIES
    assert (ROOT / "passes" / family / f"{module}.py").is_file()
    assert (ROOT / "tests" / "passes" / family / f"test_{module}.py").is_file()


def test_the_package_list_names_every_package_folder() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for package, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    assert found == set(setuptools["packages"])


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "bench").glob("*.py")))
def test_bench_scripts_import(script: str) -> None:
    spec = importlib.util.spec_from_file_location(f"bench_{script[:-3]}", ROOT / "bench" / script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would (dataclasses look their module up there)
    try:
        spec.loader.exec_module(module)  # defines everything; main() runs only under __main__
    finally:
        del sys.modules[spec.name]
    assert callable(getattr(module, "main", None))


def test_first_line_is_written_once() -> None:
    defined = [str(p.relative_to(ROOT)) for p in _python_files() for n in ast.walk(ast.parse(p.read_text()))
               if isinstance(n, ast.FunctionDef) and n.name in ("first_line", "_first_line")]
    assert defined == ["core/errors.py"]
