"""Run every example of README.md in sequence, in a fresh folder, as a user would type them.

    .venv/bin/python .ci/readme_blocks.py [--readme README.md] [--dir SCRATCH] [--json]

Fenced ``bash`` blocks are split into commands (a line, its ``\\`` continuations, a here-document's body)
and each command runs with ``bash`` in the scratch folder, with this interpreter's ``bin`` first on PATH
(what ``. .venv/bin/activate`` gives). A command must exit 0 unless its line ends in ``# exit N``.
Fenced ``python`` blocks run whole with this interpreter. A block whose first line is
``# needs the NAME extra`` is skipped when that extra's framework is not installed. ``sh`` blocks are the
set-up commands (``make demo``, ``pip install``; the GPU check), listed but not run here: ``.ci/run`` and
``make`` run those on a clean checkout.

Prints one table row per command (block line, command, expected and actual exit code, seconds) and exits 0
when every command did what the README says.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)\s*$")
EXPECT = re.compile(r"#\s*exit\s+(\d+)\s*$")
NEEDS = re.compile(r"^#\s*needs the ([\w-]+) extra")
HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)'?\"?")
EXTRA_MODULES = {"mindspore": "mindspore", "paddle": "paddle", "tflite": "ai_edge_litert", "ray": "ray",
                 "tf": "tensorflow", "torch": "torch"}
TIMEOUT_S = 900


@dataclass
class Block:
    lang: str
    line: int  # README line of the block's first line
    text: str


@dataclass
class Outcome:
    line: int
    lang: str
    command: str
    expected: int | None  # None: not run
    got: int | None
    seconds: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.expected is None or self.expected == self.got


def blocks(readme: str) -> list[Block]:
    found, current, start, lang = [], [], 0, None
    for number, line in enumerate(readme.splitlines(), 1):
        fence = FENCE.match(line)
        if fence and lang is None:
            lang, start, current = fence.group(1) or "text", number + 1, []
        elif line.strip() == "```" and lang is not None:
            found.append(Block(lang, start, "\n".join(current)))
            lang = None
        elif lang is not None:
            current.append(line)
    return found


def commands(block: Block) -> list[tuple[int, str]]:
    """The block's commands with their README line: continuations and here-document bodies joined."""
    lines = block.text.splitlines()
    out, i = [], 0
    while i < len(lines):
        first, text = i, [lines[i]]
        while text[-1].rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            text.append(lines[i])
        heredoc = HEREDOC.search(text[0]) if "<<" in text[0] else None
        if heredoc:
            while i + 1 < len(lines) and lines[i].strip() != heredoc.group(1):
                i += 1
                text.append(lines[i])
        i += 1
        command = "\n".join(text)
        if command.strip() and not command.lstrip().startswith("#"):
            out.append((block.line + first, command))
    return out


def missing_extra(block: Block) -> str | None:
    first = block.text.splitlines()[0] if block.text else ""
    needs = NEEDS.match(first)
    if not needs:
        return None
    module = EXTRA_MODULES.get(needs.group(1), needs.group(1))
    return None if importlib.util.find_spec(module) else needs.group(1)


def run(readme: Path, scratch: Path) -> list[Outcome]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "ONNXMEND_LOG_DIR": str(scratch / ".logs")}
    outcomes: list[Outcome] = []
    for block in blocks(readme.read_text(encoding="utf-8")):
        if block.lang not in ("bash", "python", "sh"):
            continue
        extra = missing_extra(block)
        if block.lang == "sh" or extra:
            note = f"needs the {extra} extra" if extra else "set-up command, run by make/.ci/run"
            outcomes += [Outcome(line, block.lang, cmd, None, None, 0.0, note) for line, cmd in commands(block)]
            continue
        steps = [(block.line, block.text)] if block.lang == "python" else commands(block)
        for line, command in steps:
            outcomes.append(_run_one(block.lang, line, command, scratch, env))
    return outcomes


def _run_one(lang: str, line: int, command: str, cwd: Path, env: dict[str, str]) -> Outcome:
    expect = EXPECT.search(command.splitlines()[0])
    argv = [sys.executable, "-c", command] if lang == "python" else ["bash", "-o", "pipefail", "-c", command]
    start = time.monotonic()
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        got, tail = done.returncode, (done.stderr or done.stdout).strip().splitlines()[-3:]
    except subprocess.TimeoutExpired:
        got, tail = 124, [f"timed out after {TIMEOUT_S} s"]
    shown = command if lang == "bash" else "(python block)"
    outcome = Outcome(line, lang, shown, int(expect.group(1)) if expect else 0, got, time.monotonic() - start)
    if not outcome.ok:
        outcome.note = " | ".join(tail)
    return outcome


def table(outcomes: list[Outcome]) -> str:
    rows = ["| line | command | expected | exit | s | note |", "|---:|---|---:|---:|---:|---|"]
    for o in outcomes:
        command = o.command.splitlines()[0] + (" …" if "\n" in o.command else "")
        expected = "not run" if o.expected is None else str(o.expected)
        got = "-" if o.got is None else str(o.got)
        command, note = command.replace("|", "\\|"), o.note.replace("|", "/")
        rows.append(f"| {o.line} | `{command}` | {expected} | {got} | {o.seconds:.1f} | {note} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (a fresh temporary one by default)")
    parser.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="onnxmend-readme-") as tmp:
        scratch = args.dir or Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        outcomes = run(args.readme.resolve(), scratch)
    print(json.dumps([asdict(o) for o in outcomes], indent=1) if args.json else table(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
