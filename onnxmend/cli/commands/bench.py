"""``onnxmend bench MODEL.onnx [MORE.onnx ...] [--source SOURCE] [-o DIR]``: latency side by side.

Renders :class:`~onnxmend.runtime.bench.results.BenchResult` as a rich table and writes ``DIR/bench.json``
and ``DIR/bench.png``; the measuring is :func:`onnxmend.flows.bench.bench`.
"""

from __future__ import annotations

from pathlib import Path

import click

from onnxmend.cli.options import data_options, force_option, out_option, report_options, seed_option, trust_option
from onnxmend.cli.render import print_bench, print_data, print_json, progress, stdout_for_json, verdict
from onnxmend.core.errors import OnnxmendError
from onnxmend.core.outputs import claim_dir
from onnxmend.flows.bench import bench
from onnxmend.runtime.bench.options import OPT_LEVELS, PROVIDERS, BenchOptions
from onnxmend.runtime.bench.results import write_report
from onnxmend.runtime.data import DataOptions, InputsUsed


def _providers(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    names = tuple(p.strip().lower() for p in value.split(",") if p.strip())
    unknown = [p for p in names if p not in PROVIDERS]
    if unknown or not names:
        raise click.BadParameter(f"unknown provider {unknown[0] if unknown else value!r}; use cpu, cuda or cpu,cuda.")
    return tuple(dict.fromkeys(names))


def _batches(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"{value!r} is not a list of positive batch sizes, e.g. 1,8.")
    return tuple(dict.fromkeys(int(p) for p in parts))


@click.command("bench")
@click.argument("models", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--source", default=None, help="Also time the source model in its own framework (any SOURCE form).")
@trust_option
@out_option("dir", "Folder for bench.json and bench.png.", dest="out_dir", default="bench-out", show_default=True)
@click.option("--provider", "providers", callback=_providers, default=None, metavar="cpu,cuda",
              help="onnxruntime provider(s) to time on, e.g. cpu or cpu,cuda; default cpu, plus cuda when it works "
                   "here.")
@click.option("--batch", "batches", callback=_batches, default="1", show_default=True, metavar="1,8,...",
              help="Batch sizes (only for models whose batch axis is dynamic).")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True, help="Untimed warm-up runs.")
@click.option("--runs", type=click.IntRange(min=1), default=None, help="Timed runs per subject and cell.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Timed seconds per subject and cell (default 1.0 unless --runs is given).")
@click.option("--rounds", type=click.IntRange(min=1), default=10, show_default=True,
              help="Interleaved rounds (A B A B ...) the timed runs are split into.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="Intra-op threads for onnxruntime and torch (0 = their defaults).")
@click.option("--opt-level", type=click.Choice(OPT_LEVELS), default="all", show_default=True,
              help="onnxruntime graph optimization level.")
@click.option("--tf32/--no-tf32", default=True, show_default=True, help="TF32 matmuls/convs on CUDA.")
@click.option("--include-copies", is_flag=True, help="On CUDA, time host<->device copies too (no I/O binding).")
@click.option("--baseline", default="0", show_default=True,
              help="Subject the speedups are relative to: a label (file stem, 'source') or a 0-based index.")
@click.option("--compile", "compile_", is_flag=True, help="Also time torch.compile of a PyTorch source.")
@click.option("--memory/--no-memory", default=True, show_default=True,
              help="Measure each ONNX artifact's peak RSS in a fresh subprocess.")
@seed_option("Seed for the synthesised inputs.")
@data_options
@force_option
@report_options("Log each subject and cell as it is timed.")
def command(models: tuple[str, ...], source: str | None, trust_source: bool, out_dir: str, providers: tuple[str, ...],
            batches: tuple[int, ...], warmup: int, runs: int | None, seconds: float | None, rounds: int,
            threads: int, opt_level: str, tf32: bool, include_copies: bool, baseline: str, compile_: bool,
            memory: bool, seed: int, data: DataOptions, force: bool, as_json: bool, verbose: bool) -> None:
    """Latency percentiles, throughput and memory of ONNX files, measured interleaved, beside the source.

    Exit code 0 when something was measured, 2 on bad input or when every subject had to be skipped
    (bench.json says why), 4 on an internal error.
    """
    if not models and not source:
        raise click.UsageError("Give at least one MODEL.onnx (or --source SOURCE) to benchmark.")
    options = BenchOptions(
        providers=providers, batches=batches, warmup=warmup, runs=runs, seconds=seconds, rounds=rounds,
        threads=threads, opt_level=opt_level, tf32=tf32, include_copies=include_copies,
        baseline=int(baseline) if baseline.isdigit() else baseline, seed=seed, memory=memory, compile=compile_,
    )
    claim_dir(Path(out_dir), ("bench.json", "bench.png"), force)
    with stdout_for_json(as_json), progress(not as_json) as step:
        step("timing " + ", ".join([*models, *([source] if source else [])]))
        result = bench(list(models), source, options, trust_source=trust_source, data=data, force=force)
        json_path, png_path = write_report(result, out_dir)
    if not any(row.stats for row in result.results):
        reasons = sorted({row.reason for row in result.results if row.reason})
        raise OnnxmendError(f"Nothing was measured: every subject was skipped ({'; '.join(reasons)[:300]}); "
                            f"{json_path} says why for each.")
    if as_json:
        print_json(result.to_json())
        return
    print_bench(result)
    print_data(InputsUsed(**result.inputs) if result.inputs else None, result.saved_outputs)  # type: ignore[arg-type]
    verdict(f"wrote {json_path}" + (f" and {png_path}" if png_path else "") + f" in {result.seconds:.1f} s")
