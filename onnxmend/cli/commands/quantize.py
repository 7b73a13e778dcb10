"""``onnxmend quantize MODEL.onnx -o DIR``: a dynamic int8 artifact with its plan, accuracy gate and manifest.

Exit code 0 when the gate passes, 1 when it fails (every file is still written), 2 on bad input.
"""

from __future__ import annotations

import click
from rich.markup import escape

from onnxmend.cli.exits import UserError
from onnxmend.cli.options import (
    allow_no_gain_option,
    data_options,
    force_option,
    out_option,
    provider_option,
    report_options,
    seed_option,
    trust_option,
)
from onnxmend.cli.render import int8_verdict, print_data, print_json, progress, say, show, stdout_for_json, verdict
from onnxmend.core.errors import OnnxmendError
from onnxmend.core.table import Cell, table
from onnxmend.flows.quantize import QuantizeResult, quantize
from onnxmend.runtime.compare import Thresholds
from onnxmend.runtime.data import DataOptions
from onnxmend.runtime.quantize.plan import PlanOverrides, QuantPlan, validate_ops
from onnxmend.runtime.quantize.quantizer import NothingToQuantize


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
@out_option("dir", "Artifact folder: model.onnx, model.int8.onnx, manifest.json, report.md.", dest="out_dir",
            required=True)
@provider_option("Target provider; auto is CUDA when a CUDA session starts, CPU otherwise.")
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
@click.option("--min-cosine", type=click.FloatRange(-1, 1), default=0.99, show_default=True,
              help="Minimum cosine similarity of each int8 output to the fp32 (and source) output.")
@click.option("--min-sqnr", type=float, default=None, help="Minimum SQNR in dB per output.")
@click.option("--min-top1", type=click.FloatRange(0, 1), default=None, help="Minimum top-1 agreement ([N, K] outputs).")
@click.option("--layers", is_flag=True, help="Per-layer float-vs-int8 error, to see where it enters.")
@click.option("--batches", type=click.IntRange(1, 100), default=3, show_default=True, help="Seeded batches in the gate.")
@seed_option("Seed for the gate's synthesised batches.")
@data_options
@click.option("--runs", type=click.IntRange(0), default=20, show_default=True, help="Latency runs (0 skips timing).")
@click.option("--threads", type=click.IntRange(0), default=2, show_default=True, help="Threads for the latency check.")
@allow_no_gain_option
@force_option
@report_options("Log each step (plan, quantization, gate, timing).")
@click.pass_context
def command(ctx: click.Context, model: str, out_dir: str, provider: str, ops: tuple[str, ...] | None,
            exclude_nodes: str | None, per_channel: bool | None, reduce_range: bool | None, weight_type: str | None,
            source: str | None, trust_source: bool, min_cosine: float, min_sqnr: float | None, min_top1: float | None, layers: bool,
            batches: int, seed: int, data: DataOptions, runs: int, threads: int, allow_no_gain: bool, force: bool, as_json: bool,
            verbose: bool) -> None:
    """Quantize MODEL dynamically to int8 and write a checked, hashed artifact folder.

    The gate judges accuracy (vs fp32, and vs SOURCE with --source) and whether the artifact is worth
    shipping: at most 0.8× the fp32 size and at least 0.95× its speed on the target (NO GAIN otherwise).
    Exit code 0 when the gate passes, 1 when it fails or finds no gain (every file is still written),
    2 on bad input, 4 on an internal error.
    """
    overrides = PlanOverrides(ops, _split(exclude_nodes), per_channel, reduce_range, weight_type)  # type: ignore[arg-type]
    try:
        with stdout_for_json(as_json), progress(not as_json) as step:
            result = quantize(
                model, out_dir, overrides, provider=provider, source=source,  # type: ignore[arg-type]
                thresholds=Thresholds(min_cosine, min_sqnr, min_top1), layers=layers, batches=batches, seed=seed,
                latency_runs=runs, threads=threads, on_plan=None if as_json else _print_plan,
                trust_source=trust_source, force=force, allow_no_gain=allow_no_gain, progress=step,
                data=data,
            )
    except NothingToQuantize as exc:
        verdict(f"[bold yellow]NO GAIN[/] {escape(str(exc))} Nothing written.")
        ctx.exit(0 if allow_no_gain else 1)
    except OnnxmendError as exc:
        raise UserError(str(exc)) from exc
    if as_json:
        print_json(result.manifest)
    else:
        _print_result(result)
    ctx.exit(0 if result.passed else 1)


def _print_plan(plan: QuantPlan) -> None:
    shown = table(f"Quantization plan ({plan.provider})", ["node", "op", "quantize", "reason"])
    for node in plan.nodes:
        shown.add(node.name, node.op_type, Cell("yes", "good") if node.quantize else "no", node.reason)
    show(shown)
    for key in ("provider", "op_types", "weight_type", "per_channel", "reduce_range"):
        value = getattr(plan, key, None)
        text = ", ".join(value) if isinstance(value, tuple) else value
        say(f"  {key}: [bold]{escape(str(text if text is not None else ''))}[/] ({escape(plan.reasons.get(key, ''))})")
    for risk in plan.risks:
        say(f"  [yellow]risk:[/] {escape(risk)}")


def _print_result(result: QuantizeResult) -> None:
    contents = result.contents
    shown = table("Accuracy", ["vs", "output!", "cosine>", "SQNR dB>", "max abs>", "top-1>"])
    for report in filter(None, (contents.vs_fp32, contents.vs_source)):
        for out in report.outputs:
            shown.add(report.reference, out.name, f"{out.cosine:.5f}",
                      "exact" if out.sqnr_db is None else f"{out.sqnr_db:.1f}", f"{out.max_abs:.4g}",
                      "-" if out.top1 is None else f"{out.top1:.3f}")
    show(shown)
    ratio = result.manifest.get("size_ratio")
    say(f"size ratio int8/fp32: {ratio:.3f}" if isinstance(ratio, float) else "size ratio: n/a")
    if contents.latency:
        lat = contents.latency
        say(f"latency: fp32 {lat.fp32_ms:.2f} ms, int8 {lat.int8_ms:.2f} ms, {lat.speedup:.2f}x "
            f"({lat.provider}, {lat.threads} threads)")
    if contents.placement.cpu_fallback:
        say(f"[yellow]fell back to CPU:[/] {escape(', '.join(contents.placement.cpu_fallback))}")
    for line in contents.prepared:
        say(f"[dim]prepared:[/] {escape(line)}")
    for failure in contents.failures:
        verdict(f"[red]gate:[/] {escape(failure)}")
    if contents.failures and contents.layers is None:
        say("[dim]hint:[/] --layers shows the first tensor where the int8 error enters; --exclude-nodes NAME keeps "
            "a node in float")
    for shortfall in contents.worth.shortfalls if contents.worth else []:
        verdict(f"[yellow]no gain:[/] {escape(shortfall)}")
    print_data(contents.inputs, result.saved_outputs)
    verdict(f"{int8_verdict(result)} → {result.paths.out_dir}")
