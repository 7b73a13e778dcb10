"""Check that imports only point down: import-linter's contracts (pyproject.toml, [tool.importlinter]).

The repository keeps each floor in a top-level folder (core/, passes/, runtime/, ...) that setuptools maps
into the ``onnxmend`` namespace; import-linter reads a package from one directory tree. So the installed
layout is assembled in a temporary folder from ``[tool.setuptools] package-dir`` and linted there.

    python .ci/lint_imports.py [--root DIR]     exit 0 when every contract is kept
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib


def assemble(root: Path, into: Path) -> None:
    """Copy every mapped package folder of ``root`` to its place in the ``onnxmend`` namespace under ``into``."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    mapping = config["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(mapping.items(), key=lambda kv: kv[0].count(".")):
        target = into.joinpath(*package.split("."))
        shutil.copytree(root / folder, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    lint = Path(sys.executable).with_name("lint-imports")
    with tempfile.TemporaryDirectory(prefix="onnxmend-lint-") as tmp:
        assemble(args.root, Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        return subprocess.call([str(lint), str(args.root / "pyproject.toml"), "--no-cache"],
                               cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main())
