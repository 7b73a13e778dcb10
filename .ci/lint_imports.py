"""Check that imports only point down: import-linter's contracts (pyproject.toml, [tool.importlinter]).

Each floor lives in a top-level folder (core/, passes/, runtime/, ...) that setuptools maps into the
``onnxmend`` namespace; ``onnxmend/`` holds a relative link to each of them, so the checkout itself is the
installed layout and ``lint-imports`` run at the repository root reads the whole namespace. This script runs
it on a checkout (``--root``, e.g. a scratch copy with an upward import) without import-linter's cache.

    python .ci/lint_imports.py [--root DIR]     exit 0 when every contract is kept
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(args.root)}  # the checkout's onnxmend, not the installed one
    return subprocess.call([str(lint), str(args.root / "pyproject.toml"), "--no-cache"],
                           cwd=args.root, env=env)


if __name__ == "__main__":
    sys.exit(main())
