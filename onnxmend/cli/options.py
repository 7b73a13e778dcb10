"""Click options shared by the commands that export a SOURCE or run passes."""

from __future__ import annotations

import functools
from typing import Any, Callable

import click

from onnxmend.exporters.options import DEFAULT_OPSET, ExportOptions, parse_input_arg

trust_option = click.option(
    "--trust-source", is_flag=True,
    help="Load a source file even when loading it runs code from the file (a pickled torch module, a .pt2 "
         "with pickled objects, a Keras Lambda layer). Off by default: onnxmend refuses such files.",
)


force_option = click.option(
    "--force", is_flag=True,
    help="Write over output files onnxmend did not write itself (refused by default).",
)


def export_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--input, --opset, --dynamic-batch, --torch-exporter, --weights, --trust-source; into ``export_opts``."""

    @click.option("--input", "inputs", multiple=True, metavar="NAME:1x3x224x224[:DTYPE]",
                  help="Input name and shape (repeatable); ? or -1 marks a dynamic dim. Defaults to the model's own.")
    @click.option("--opset", type=click.IntRange(7, 23), default=DEFAULT_OPSET, show_default=True,
                  help="Target ONNX opset (torch's dynamo exporter emits at least 18).")
    @click.option("--dynamic-batch", is_flag=True, help="Export with a dynamic batch axis.")
    @click.option("--torch-exporter", type=click.Choice(["dynamo", "legacy"]), default="dynamo", show_default=True,
                  help="torch.onnx exporter: dynamo (torch.export) or the legacy TorchScript tracer.")
    @click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="Local weights file for keras:NAME models (random weights otherwise).")
    @trust_option
    @functools.wraps(func)
    def wrapper(*args: Any, inputs: tuple[str, ...], opset: int, dynamic_batch: bool,
                torch_exporter: str, weights: str | None, trust_source: bool, **kwargs: Any) -> Any:
        kwargs["export_opts"] = ExportOptions(
            inputs=tuple(parse_input_arg(t) for t in inputs), opset=opset, dynamic_batch=dynamic_batch,
            torch_exporter=torch_exporter, weights=weights, trust_source=trust_source,  # type: ignore[arg-type]
        )
        return func(*args, **kwargs)

    return wrapper


def tolerance_options(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--atol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
                  help="Absolute tolerance, times max(1, max|reference|).")
    @click.option("--rtol", type=click.FloatRange(min=0), default=1e-3, show_default=True, help="Relative tolerance.")
    @click.option("--seed", type=int, default=0, show_default=True, help="Seed for synthesised inputs.")
    @click.option("--provider", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                  help="onnxruntime provider; auto uses CUDA when it works (TF32 off), CPU otherwise.")
    @click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
                  help="onnxruntime intra-op threads (0 = onnxruntime's default).")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def pass_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--preset, --passes, --verify: which passes run and whether each one is gated."""

    @click.option("--preset", type=click.Choice(["fix", "portable", "none"]), default="fix", show_default=True,
                  help="Pass preset; see `onnxmend passes`.")
    @click.option("--passes", "pass_names", default=None, metavar="A,B,...",
                  help="Run exactly these passes, in this order, instead of a preset.")
    @click.option("--verify/--no-verify", default=True, show_default=True,
                  help="Gate every pass numerically against the graph before it (rolls back a pass that changes outputs).")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def interface_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--keep-interface, --max-growth: what the rewrite may do to the model's interface and size."""

    @click.option("--keep-interface", is_flag=True,
                  help="The written model keeps the source's interface exactly: input/output names, dtypes, layout "
                       "(no NHWC→NCHW) and dynamic dims (a None batch stays dynamic). Passes that would change it are "
                       "refused; cannot go with --layout nchw.")
    @click.option("--max-growth", type=click.FloatRange(min=1.0), default=1.5, show_default=True, metavar="FACTOR",
                  help="Refuse a rewrite that makes the model's weights more than FACTOR times the input's "
                       "(constant folding can store an activation-sized tensor); inf = no limit.")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper
