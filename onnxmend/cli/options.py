"""Click options shared by the commands, so every command spells a habit the same way.

``-o/--out`` names what is written, ``--provider`` the onnxruntime provider, ``--json``/``-q``/``-v`` how
much is printed (:func:`report_options`); options that contradict each other are a usage error (exit 2),
never silently ignored (:func:`reject_given_together`).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource

from onnxmend.cli.render import NORMAL, QUIET, VERBOSE, set_verbosity
from onnxmend.exporters.options import DEFAULT_OPSET, ExportOptions, parse_input_arg
from onnxmend.runtime.data import DataOptions
from onnxmend.runtime.data.images import PREPROCESS

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def given(name: str) -> bool:
    """Whether the user gave option ``name`` (its parameter name) on the command line."""
    ctx = click.get_current_context()
    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def reject_given_together(first: str, second: str, why: str) -> None:
    """A usage error (exit 2) when both options were given: ``why`` says what each one does."""
    if given(first) and given(second):
        raise click.UsageError(f"{_flag(first)} and {_flag(second)} cannot be used together: {why}")


def _flag(name: str) -> str:
    ctx = click.get_current_context()
    for param in ctx.command.params:
        if param.name == name and param.opts:
            return max(param.opts, key=len)
    return name


def out_option(kind: str, help: str, dest: str = "out", **kwargs: Any) -> Decorator:
    """``-o/--out``: a folder (``kind="dir"``) or a file (``kind="file"``), the same spelling everywhere."""
    path = click.Path(file_okay=kind == "file", dir_okay=kind == "dir")
    return click.option("-o", "--out", dest, type=path, help=help, **kwargs)


def provider_option(help: str) -> Decorator:
    return click.option("--provider", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                        help=help)


def report_options(verbose_help: str) -> Decorator:
    """``--json``, ``-q/--quiet`` and ``-v/--verbose``; the command receives ``as_json`` and ``verbose``."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @click.option("--json", "as_json", is_flag=True,
                      help="Print the result as one JSON document on stdout (everything else goes to stderr).")
        @click.option("-q", "--quiet", is_flag=True, help="Print only the verdict and the paths written.")
        @click.option("-v", "--verbose", is_flag=True, help=verbose_help)
        @functools.wraps(func)
        def wrapper(*args: Any, quiet: bool, verbose: bool, **kwargs: Any) -> Any:
            reject_given_together("quiet", "verbose", "-q prints only the verdict, -v prints more detail.")
            set_verbosity(QUIET if quiet else VERBOSE if verbose else NORMAL)
            if verbose:
                logging.getLogger("onnxmend").setLevel(logging.INFO)
            return func(*args, verbose=verbose, **kwargs)

        return wrapper

    return decorate

trust_option = click.option(
    "--trust-source", is_flag=True,
    help="Load a source file even when loading it runs code from the file (a pickled torch module, a .pt2 "
         "with pickled objects, a Keras Lambda layer). Off by default: onnxmend refuses such files.",
)


allow_no_gain_option = click.option(
    "--allow-no-gain", is_flag=True,
    help="Accept an int8 artifact that is not worth shipping (over 0.8x the fp32 size, or slower than fp32 on "
         "the target): still reported, but exit 0.",
)


force_option = click.option(
    "--force", is_flag=True,
    help="Write over output files onnxmend did not write itself (refused by default).",
)


def export_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--input, --opset, --dynamic-batch, --torch-exporter, --weights, --trust-source, --framework; into ``export_opts``."""

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
    @click.option("--framework", type=click.Choice(["auto", "torch", "paddle", "mindspore"]), default="auto",
                  show_default=True, help="What a file.py:factory builds; auto reads the file's imports.")
    @functools.wraps(func)
    def wrapper(*args: Any, inputs: tuple[str, ...], opset: int, dynamic_batch: bool,
                torch_exporter: str, weights: str | None, trust_source: bool, framework: str, **kwargs: Any) -> Any:
        kwargs["export_opts"] = ExportOptions(
            inputs=tuple(parse_input_arg(t) for t in inputs), opset=opset, dynamic_batch=dynamic_batch,
            torch_exporter=torch_exporter, weights=weights, trust_source=trust_source,  # type: ignore[arg-type]
            framework=None if framework == "auto" else framework,
        )
        return func(*args, **kwargs)

    return wrapper


def tolerance_options(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--atol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
                  help="Absolute tolerance, times max(1, max|reference|).")
    @click.option("--rtol", type=click.FloatRange(min=0), default=1e-3, show_default=True, help="Relative tolerance.")
    @seed_option("Seed for the synthesised inputs (the same seed gives the same inputs and verdict).")
    @provider_option("onnxruntime provider; auto uses CUDA when it works (TF32 off), CPU otherwise.")
    @click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
                  help="onnxruntime intra-op threads (0 = onnxruntime's default).")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def seed_option(help: str) -> Decorator:
    return click.option("--seed", type=int, default=0, show_default=True, help=help)


def pass_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--preset, --passes, --verify: which passes run and whether each one is gated.

    ``--passes`` with an explicit ``--preset``, or with a pinned ``--layout nchw`` but no io-layout pass to
    act on it, is a usage error: one of the two would be ignored.
    """

    @click.option("--preset", type=click.Choice(["fix", "portable", "none"]), default="fix", show_default=True,
                  help="Pass preset; see `onnxmend passes`.")
    @click.option("--passes", "pass_names", default=None, metavar="A,B,...",
                  help="Run exactly these passes, in this order, instead of a preset.")
    @click.option("--verify/--no-verify", default=True, show_default=True,
                  help="Gate every pass numerically against the graph before it (rolls back a pass that changes outputs).")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        reject_given_together("pass_names", "preset", "--passes runs exactly the passes it names, instead of a preset.")
        names = [n.strip() for n in (kwargs.get("pass_names") or "").split(",")]
        if kwargs.get("pass_names") and kwargs.get("layout") == "nchw" and "io-layout" not in names:
            raise click.UsageError("--layout nchw is carried out by the io-layout pass, which --passes leaves out; "
                                   "add io-layout to --passes or drop --layout.")
        return func(*args, **kwargs)

    return wrapper


def layout_option(auto_means: str) -> Decorator:
    return click.option(
        "--layout", type=click.Choice(["auto", "nchw", "keep"]), default="auto", show_default=True,
        help=f"auto = {auto_means}, Transposes allowed around fused norms (fastest on onnxruntime); nchw = "
             "channels-first I/O and no Transpose inside; keep = the source's I/O, at most one Transpose per "
             "NHWC input/output (recorded in the model's metadata).")
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


def data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--load-inputs, --image-preprocess, --save-outputs: real data in and out; into ``data`` (DataOptions).

    Options that size synthetic inputs (``--batch`` of bench, ``--batches`` of quantize) are usage errors
    beside ``--load-inputs``: the file gives the inputs.
    """

    @click.option("--load-inputs", type=click.Path(path_type=Path), default=None, metavar="FILE|FOLDER",
                  help="Run on these inputs instead of synthetic ones: .npz (one array per input, named after it), "
                       ".npy (single-input models), .json ({\"name\": nested list} or a list of them, one per sample) "
                       "or a folder of images (image models; see --image-preprocess). Never modified.")
    @click.option("--image-preprocess", type=click.Choice(PREPROCESS), default=None,
                  help="How a folder of images is scaled after resizing to the model's HxW (RGB, layout from the "
                       "model): unit = [0, 1] (default for float inputs), symmetric = [-1, 1], imagenet = ImageNet "
                       "mean/std, raw = 0..255 (default and only choice for integer inputs).")
    @click.option("--save-outputs", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
                  help="Write the outputs on the inputs used to FILE (.npz or .json), keyed <model>/<output>, e.g. "
                       "onnx/logits and source/logits; a file onnxmend did not write is kept unless --force.")
    @functools.wraps(func)
    def wrapper(*args: Any, load_inputs: Path | None, image_preprocess: str | None, save_outputs: Path | None,
                **kwargs: Any) -> Any:
        for name in SYNTHETIC_ONLY:
            reject_given_together("load_inputs", name, SYNTHETIC_ONLY[name])
        if given("image_preprocess") and not given("load_inputs"):
            raise click.UsageError("--image-preprocess says how a folder of images given with --load-inputs is "
                                   "read; add --load-inputs FOLDER or drop it.")
        kwargs["data"] = DataOptions(load_inputs, image_preprocess, save_outputs)
        return func(*args, **kwargs)

    return wrapper


# Options that choose synthetic inputs, which --load-inputs replaces.
SYNTHETIC_ONLY = {
    "batches": "the file gives the inputs, so the batches (and their batch size) are the file's.",
}
