"""``onnxmend bench MODEL.onnx [MORE.onnx ...] [--source SOURCE] [-o DIR]``: latency side by side.

Renders :class:`~onnxmend.runtime.bench.results.BenchResult` as a rich table and writes ``DIR/bench.json``
and ``DIR/bench.png``; the measuring is :func:`onnxmend.flows.bench.bench`.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from onnxmend.cli.options import force_option, trust_option
from onnxmend.cli.render import console, print_json, stdout_for_json
from onnxmend.core.errors import OnnxmendError
from onnxmend.core.outputs import claim_dir
from onnxmend.flows.bench import bench
from onnxmend.runtime.bench.options import OPT_LEVELS, PROVIDERS, BenchOptions
from onnxmend.runtime.bench.results import ArtifactResult, BenchResult, write_report


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
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="bench-out", show_default=True,
              help="Directory for bench.json and bench.png.")
@click.option("--providers", callback=_providers, default=None, metavar="cpu,cuda",
              help="onnxruntime providers; default cpu, plus cuda when it works here.")
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
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for synthesised inputs.")
@force_option
@click.option("--json", "as_json", is_flag=True, help="Print bench.json to stdout instead of the table.")
def command(models: tuple[str, ...], source: str | None, trust_source: bool, out_dir: str, providers: tuple[str, ...],
            batches: tuple[int, ...], warmup: int, runs: int | None, seconds: float | None, rounds: int,
            threads: int, opt_level: str, tf32: bool, include_copies: bool, baseline: str, compile_: bool,
            memory: bool, seed: int, force: bool, as_json: bool) -> None:
    """Latency percentiles, throughput and memory of ONNX files, measured interleaved, beside the source."""
    if not models and not source:
        raise click.UsageError("Give at least one MODEL.onnx (or --source SOURCE) to benchmark.")
    options = BenchOptions(
        providers=providers, batches=batches, warmup=warmup, runs=runs, seconds=seconds, rounds=rounds,
        threads=threads, opt_level=opt_level, tf32=tf32, include_copies=include_copies,
        baseline=int(baseline) if baseline.isdigit() else baseline, seed=seed, memory=memory, compile=compile_,
    )
    claim_dir(Path(out_dir), ("bench.json", "bench.png"), force)
    with stdout_for_json(as_json):
        result = bench(list(models), source, options, trust_source=trust_source)
        json_path, png_path = write_report(result, out_dir)
    if not any(row.stats for row in result.results):
        reasons = sorted({row.reason for row in result.results if row.reason})
        raise OnnxmendError(f"Nothing was measured: every subject was skipped ({'; '.join(reasons)[:300]}); "
                            f"{json_path} says why for each.")
    if as_json:
        print_json(result.to_json())
        return
    table, footnotes = results_table(result)
    out = console if console.is_terminal else Console(width=max(console.width, 150))
    out.print(table)
    for index, note in enumerate(footnotes, 1):
        out.print(f"[dim]\\[{index}][/] {escape(note)}", highlight=False)
    for note in result.notes:
        out.print(f"[dim]note:[/] {escape(note)}", highlight=False)
    out.print(f"wrote {json_path}" + (f" and {png_path}" if png_path else "") + f" in {result.seconds:.1f} s")


def results_table(result: BenchResult) -> tuple[Table, list[str]]:
    """The table, plus the footnotes its notes column points to (notes repeat across rows)."""
    settings = result.settings
    caption = (f"threads {settings['threads'] or 'default'}, ORT opt level {settings['opt_level']}, "
               f"TF32 {'on' if settings['tf32'] else 'off'} (CUDA only), warm-up {settings['warmup']}, "
               f"{settings['rounds']} interleaved rounds. speedup = baseline p50 / p50 per round, "
               "median \\[p10–p90]. RSS = peak growth over an idle onnxruntime process.")
    table = Table(title=f"onnxmend bench — {result.machine.get('cpu_model', '')}", title_justify="left",
                  caption=caption, caption_justify="left")
    for col in ("subject", "provider", "batch", "runs", "p50 ms", "p90 ms", "p99 ms", "mean ± std ms", "cold ms",
                "items/s", f"speedup vs {result.baseline}", "RSS MB", "agrees", "notes"):
        table.add_column(col, justify="left" if col in ("subject", "provider", "notes") else "right")
    footnotes: list[str] = []
    for row in result.results:
        table.add_row(*_cells(row, footnotes))
    return table, footnotes


def _cells(row: ArtifactResult, footnotes: list[str]) -> list[str]:
    head = [escape(row.label), row.provider, str(row.batch)]
    if row.stats is None:
        return head + ["-"] * 10 + [f"[yellow]skipped[/] {_mark(f'skipped: {row.reason}', footnotes)}"]
    s = row.stats
    speed = "-" if row.speedup is None else escape(
        f"{row.speedup.median:.2f}× [{row.speedup.p10:.2f}–{row.speedup.p90:.2f}]")
    rss = "-" if row.memory is None else f"{row.memory.growth_mb:.0f}"
    marks = [_mark(note, footnotes) for note in row.notes]
    return head + [
        str(s.runs), f"{s.p50_ms:.3f}", f"{s.p90_ms:.3f}", f"{s.p99_ms:.3f}", f"{s.mean_ms:.3f} ± {s.std_ms:.3f}",
        "-" if s.cold_ms is None else f"{s.cold_ms:.2f}", f"{s.throughput:,.0f}", speed, rss, _agrees(row),
        " ".join(marks),
    ]


def _agrees(row: ArtifactResult) -> str:
    """Cosine of the subject's outputs to the reference subject's (the source, else the baseline)."""
    found = row.agreement
    if not found:
        return "-"
    if found["vs"] == row.label:
        return "(reference)"
    style = {"pass": "green", "mismatch": "yellow", "degenerate": "yellow"}[str(found["verdict"])]
    return f"[{style}]cos {float(found['min_cosine']):.5f}[/]"


def _mark(note: str, footnotes: list[str]) -> str:
    if note not in footnotes:
        footnotes.append(note)
    return f"\\[{footnotes.index(note) + 1}]"
