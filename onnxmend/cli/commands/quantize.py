"""``onnxmend quantize MODEL.onnx -o DIR``: a dynamic int8 artifact with its plan, accuracy gate and manifest.

Exit code 0 when the gate passes, 1 when it fails (every file is still written), 2 on bad input.
"""

from __future__ import annotations

import click
from rich.table import Table

from onnxmend.cli.exits import UserError
from onnxmend.cli.options import force_option, trust_option
from onnxmend.cli.render import console, print_json, stdout_for_json
from onnxmend.core.errors import OnnxmendError
from onnxmend.flows.quantize import QuantizeResult, quantize
from onnxmend.runtime.compare import Thresholds
from onnxmend.runtime.quantize.plan import PlanOverrides, QuantPlan, validate_ops


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def _ops(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    ops = _split(value)
    if not ops:
        raise click.BadParameter("give at least one op type, e.g. MatMul,Gemm.")
    try:
        return validate_ops(ops)
    except OnnxmendError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("quantize")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Artifact folder: model.onnx, model.int8.onnx, manifest.json, report.md.")
@click.option("--provider", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Target provider; auto is CUDA when a CUDA session starts, CPU otherwise.")
@click.option("--ops", callback=_ops, default=None, metavar="OP,OP",
              help="Op types to quantize (MatMul, Gemm, Gather, Conv); default MatMul,Gemm,Gather.")
@click.option("--exclude-nodes", default=None, metavar="NAME,NAME", help="Node names to keep in float.")
@click.option("--per-channel/--no-per-channel", default=None, help="Per-channel MatMul/Gemm weights (default off).")
@click.option("--reduce-range/--no-reduce-range", default=None,
              help="7-bit weights (default: on for x86 without VNNI, off otherwise).")
@click.option("--weight-type", type=click.Choice(["int8", "uint8"]), default=None,
              help="Weight type (default int8; uint8 when Conv is quantized for CPU).")
@click.option("--source", default=None, help="Also gate against the source model (any SOURCE form).")
@trust_option
@click.option("--min-cosine", type=click.FloatRange(-1, 1), default=0.99, show_default=True)
@click.option("--min-sqnr", type=float, default=None, help="Minimum SQNR in dB per output.")
@click.option("--min-top1", type=click.FloatRange(0, 1), default=None, help="Minimum top-1 agreement ([N, K] outputs).")
@click.option("--layers", is_flag=True, help="Per-layer float-vs-int8 error, to see where it enters.")
@click.option("--batches", type=click.IntRange(1, 100), default=3, show_default=True, help="Seeded batches in the gate.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--runs", type=click.IntRange(0), default=20, show_default=True, help="Latency runs (0 skips timing).")
@click.option("--threads", type=click.IntRange(0), default=2, show_default=True, help="Threads for the latency check.")
@force_option
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of tables.")
@click.pass_context
def command(ctx: click.Context, model: str, out_dir: str, provider: str, ops: tuple[str, ...] | None,
            exclude_nodes: str | None, per_channel: bool | None, reduce_range: bool | None, weight_type: str | None,
            source: str | None, trust_source: bool, min_cosine: float, min_sqnr: float | None, min_top1: float | None, layers: bool,
            batches: int, seed: int, runs: int, threads: int, force: bool, as_json: bool) -> None:
    """Quantize MODEL dynamically to int8 and write a checked, hashed artifact folder."""
    overrides = PlanOverrides(ops, _split(exclude_nodes), per_channel, reduce_range, weight_type)  # type: ignore[arg-type]
    try:
        with stdout_for_json(as_json):
            result = quantize(
                model, out_dir, overrides, provider=provider, source=source,  # type: ignore[arg-type]
                thresholds=Thresholds(min_cosine, min_sqnr, min_top1), layers=layers, batches=batches, seed=seed,
                latency_runs=runs, threads=threads, on_plan=None if as_json else _print_plan,
                trust_source=trust_source, force=force,
            )
    except OnnxmendError as exc:
        raise UserError(str(exc)) from exc
    if as_json:
        print_json(result.manifest)
    else:
        _print_result(result)
    ctx.exit(0 if result.passed else 1)


def _print_plan(plan: QuantPlan) -> None:
    table = Table(title=f"Quantization plan ({plan.provider})", title_justify="left")
    for col in ("node", "op", "quantize", "reason"):
        table.add_column(col)
    for node in plan.nodes:
        table.add_row(node.name, node.op_type, "[green]yes[/]" if node.quantize else "no", node.reason)
    console.print(table)
    for key in ("provider", "op_types", "weight_type", "per_channel", "reduce_range"):
        value = getattr(plan, key, None)
        shown = ", ".join(value) if isinstance(value, tuple) else value
        console.print(f"  {key}: [bold]{shown if shown is not None else ''}[/] ({plan.reasons.get(key, '')})",
                      highlight=False)
    for risk in plan.risks:
        console.print(f"  [yellow]risk:[/] {risk}", highlight=False)


def _print_result(result: QuantizeResult) -> None:
    contents = result.contents
    table = Table(title="Accuracy", title_justify="left")
    for col in ("vs", "output", "cosine", "SQNR dB", "max abs", "top-1"):
        table.add_column(col, justify="left" if col in ("vs", "output") else "right")
    for report in filter(None, (contents.vs_fp32, contents.vs_source)):
        for out in report.outputs:
            table.add_row(report.reference, out.name, f"{out.cosine:.5f}",
                          "exact" if out.sqnr_db is None else f"{out.sqnr_db:.1f}", f"{out.max_abs:.4g}",
                          "-" if out.top1 is None else f"{out.top1:.3f}")
    console.print(table)
    ratio = result.manifest.get("size_ratio")
    console.print(f"size ratio int8/fp32: {ratio:.3f}" if isinstance(ratio, float) else "size ratio: n/a")
    if contents.latency:
        lat = contents.latency
        console.print(f"latency: fp32 {lat.fp32_ms:.2f} ms, int8 {lat.int8_ms:.2f} ms, {lat.speedup:.2f}x "
                      f"({lat.provider}, {lat.threads} threads)")
    if contents.placement.cpu_fallback:
        console.print(f"[yellow]fell back to CPU:[/] {', '.join(contents.placement.cpu_fallback)}")
    for failure in contents.failures:
        console.print(f"[red]gate:[/] {failure}", highlight=False)
    verdict = "[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    console.print(f"{verdict} → {result.paths.out_dir}")
