"""Mutation fuzzing of the command line: does every input end in a result or one sentence?

Seed graphs are the zoo's models exported to ONNX (cached in ``--cache``) and hand-built graphs carrying
Einsum, Loop, If and shape arithmetic (tests/fuzzing/seeds.py). Input ``i`` of a run is one mutation, its
class taken round-robin (bit flips, truncation, protobuf field mutations of dims, dtypes, attributes,
tensor data, op types, names — non-UTF-8 bytes included — metadata such as a malformed
``onnxmend.interface``, opsets and structure, several stacked, renamed non-ONNX files, huge/zero/negative
dims, malformed Einsum equations, huge Loop trip counts, If without branches, empty graphs), the rest
drawn from a generator seeded by ``(--seed, i)``: the same command builds the same files.

For each input it runs ``onnxmend inspect FILE --json`` and ``onnxmend fix FILE -o OUT.onnx`` (and
``convert`` with ``--commands``) in subprocesses with an outer timeout larger than onnxmend's own, and
classifies each run (tests/fuzzing/outcome.py): clean result, clean error (exit 2, one line), traceback,
native crash, hang, partial output, bad JSON, input modified. It writes ``OUT/summary.json`` (tried,
counts per command, per class, clean errors by kind, every failure signature with a file reproducing it
under ``OUT/repro/``), ``OUT/cases.jsonl`` (every run), and prints the tables.

    .venv/bin/python bench/fuzz.py --count 2000 --seed 0 --jobs 2
    .venv/bin/python bench/fuzz.py --count 100 --seed 12 --zoo onnx --jobs 2 --gate-timeout 10 --memory-gb 4
                                                   # what CI runs (tests/bench/test_fuzz.py)

Exit code 0 when no run failed (no traceback, native crash, hang, partial output, noisy error, bad JSON,
unexpected exit code or modified input), 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests.fuzzing lives beside the package, not in it
    sys.path.insert(0, str(ROOT))

from tests.fuzzing import harness  # noqa: E402
from tests.fuzzing.seeds import DEFAULT_ZOO, ONNX_ZOO, crafted_seeds, zoo_seeds  # noqa: E402
from tests.fuzzing.targeted import CLASSES  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="mutated inputs to try")
    parser.add_argument("--seed", type=int, default=0, help="run seed: the same seed builds the same inputs")
    parser.add_argument("--start", type=int, default=0, help="index of the first input (to rerun a slice)")
    parser.add_argument("--jobs", type=int, default=1, help="inputs run at the same time")
    parser.add_argument("--commands", default="inspect,fix", help="comma list of inspect, fix, convert")
    parser.add_argument("--zoo", default="default",
                        help="zoo seeds: 'default', 'onnx' (no framework needed), 'none', or a comma list of names")
    parser.add_argument("--no-crafted", action="store_true", help="leave out the hand-built seed graphs")
    parser.add_argument("--classes", default="all", help=f"comma list of mutation classes (all: {', '.join(CLASSES)})")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="outer timeout per command, seconds (larger than onnxmend's own limits)")
    parser.add_argument("--gate-timeout", type=float, default=None,
                        help="pass --timeout to fix: onnxmend's limit per onnxruntime run (default: onnxmend's, 120 s)")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="address-space limit per command (0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz", help="output folder")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "fuzz-seeds",
                        help="where exported zoo seeds are kept")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line per input")
    return parser.parse_args(argv)


def seeds_for(args: argparse.Namespace) -> list:
    names = {"default": DEFAULT_ZOO, "onnx": ONNX_ZOO, "none": ()}.get(args.zoo)
    names = names if names is not None else tuple(n for n in args.zoo.split(",") if n)
    seeds = ([] if args.no_crafted else crafted_seeds()) + zoo_seeds(names, args.cache)
    if not seeds:
        raise SystemExit("no seed graphs: give --zoo names or drop --no-crafted")
    return seeds


def settings_for(args: argparse.Namespace) -> harness.Settings:
    classes = CLASSES if args.classes == "all" else tuple(c for c in args.classes.split(",") if c)
    unknown = sorted(set(classes) - set(CLASSES))
    if unknown:
        raise SystemExit(f"unknown mutation classes {unknown}; known: {', '.join(CLASSES)}")
    return harness.Settings(args.count, args.seed, args.jobs, tuple(args.commands.split(",")), args.timeout,
                            int(args.memory_gb * 2**30), classes, args.start, args.gate_timeout)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    seeds = seeds_for(args)
    settings = settings_for(args)

    def progress(case: harness.CaseResult) -> None:
        if not args.quiet:
            marks = " ".join(f"{r.command}={r.outcome}" for r in case.runs)
            print(f"{case.mutant.index:5d} {case.mutant.kind:<13} {marks}{' INPUT MODIFIED' if case.input_modified else ''}",
                  flush=True)

    summary = harness.run(settings, seeds, args.out, progress)
    print(harness.table(summary))
    print(f"\nsummary: {args.out / 'summary.json'}")
    return 0 if not any(summary.failures().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
