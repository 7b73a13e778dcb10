"""The README's examples, run as a user would: every bash and python block in sequence in a fresh folder
(.ci/readme_blocks.py), each command exiting as the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / ".ci" / "readme_blocks.py"
sys.path.insert(0, str(RUNNER.parent))

import readme_blocks  # noqa: E402


def test_the_readme_blocks_split_into_the_commands_a_user_types() -> None:
    text = "```bash\nonnxmend zoo\ncat > a.py <<'PY'\nprint(1)\nPY\nonnxmend fix a b \\\n  --force   # exit 2\n```\n"
    (block,) = readme_blocks.blocks(text)
    found = readme_blocks.commands(block)
    assert [c for _, c in found] == ["onnxmend zoo", "cat > a.py <<'PY'\nprint(1)\nPY", "onnxmend fix a b \\\n  --force   # exit 2"]
    assert readme_blocks.EXPECT.search(found[2][1].splitlines()[-1]).group(1) == "2"


def test_every_runnable_readme_command_is_a_known_command() -> None:
    known = ("onnxmend ", "cat >", "echo ", "printf ", "python -c ", "cp ", "ls ", "mkdir ")
    for block in readme_blocks.blocks((ROOT / "README.md").read_text(encoding="utf-8")):
        if block.lang == "bash":
            for line, command in readme_blocks.commands(block):
                assert command.startswith(known), f"README line {line}: {command!r}"


@pytest.mark.slow
def test_every_readme_example_runs_as_written(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(RUNNER), "--dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=3600)
    assert done.returncode == 0, done.stdout + done.stderr
