"""Node counts of onnxmend's fixed graph beside onnxsim's and onnxslim's output of the same raw export:
the zoo, the four keras.applications models of the README and the held-in set (tests/builders/peers.py,
one graph per generic-cleanup pattern). Prints a Markdown table.

    .venv/bin/python bench/peer_sizes.py [--only NAME ...] [--skip-keras] [--skip-zoo] [--no-onnxslim]

Every node counts, If/Loop bodies included. onnxmend runs as ``onnxmend fix raw.onnx`` does (fix preset,
numeric gate, the file's interface kept, so its NHWC→NCHW interface change does not enter the count); the
peers run with their defaults; no tool changes the opset. A peer that fails on a graph counts as leaving it
as it was (the note says why). onnxslim is not a project dependency: install it beside onnxsim to fill its
column (``.venv/bin/pip install onnxslim``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the held-in builders live in tests/builders

from onnxmend.core.errors import MissingDependencyError  # noqa: E402
from onnxmend.exporters import export  # noqa: E402
from onnxmend.models import zoo_names  # noqa: E402
from tests.builders.peers import HELD_IN, PeerRow, compare  # noqa: E402

KERAS_APPS = ("MobileNetV2", "EfficientNetB0", "ResNet50", "ConvNeXtTiny")


def sources(args: argparse.Namespace) -> list[str]:
    if args.only:
        return list(args.only)
    found = [] if args.skip_zoo else [f"zoo:{n}" for n in zoo_names()]
    found += [] if args.skip_keras else [f"keras:{n}" for n in KERAS_APPS]
    return found + list(HELD_IN)


def raw_model(source: str):
    return HELD_IN[source]() if source in HELD_IN else export(source).model


def cell(count: int | None, fixed: int) -> str:
    if count is None:
        return "–"
    return f"{count}" + (" ✗" if fixed > count else "")


def markdown_row(row: PeerRow, seconds: float) -> str:
    notes = "; ".join(row.notes + tuple(f"rejected: {r}" for r in row.rejected))
    return (f"| {row.model} | {row.raw} | {row.fixed} | {cell(row.onnxsim, row.fixed)} | {cell(row.onnxslim, row.fixed)} "
            f"| {seconds:.1f} | {notes} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="sources (zoo:NAME, keras:NAME, held-in:NAME) instead of all")
    parser.add_argument("--skip-keras", action="store_true", help="leave out the four keras.applications models")
    parser.add_argument("--skip-zoo", action="store_true", help="leave out the zoo")
    parser.add_argument("--no-onnxslim", action="store_true", help="leave the onnxslim column empty")
    args = parser.parse_args()
    peers = ("onnxsim",) if args.no_onnxslim else ("onnxsim", "onnxslim")
    print("| model | raw nodes | onnxmend fix | onnxsim | onnxslim | fix + peers s | notes |")
    print("|---|---|---|---|---|---|---|")
    larger = 0
    for source in sources(args):
        start = time.perf_counter()
        try:
            raw = raw_model(source)
        except MissingDependencyError as exc:  # a zoo model of a framework this machine lacks
            print(f"| {source} | – | – | – | – | – | not exported: {exc} |", flush=True)
            continue
        row = compare(source, raw, peers)
        larger += row.onnxsim is not None and row.fixed > row.onnxsim
        print(markdown_row(row, time.perf_counter() - start), flush=True)
    print(f"\nonnxmend's fixed graph is larger than onnxsim's on {larger} model(s) (marked ✗).")


if __name__ == "__main__":
    main()
