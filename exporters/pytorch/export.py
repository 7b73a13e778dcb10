"""PyTorch sources: ``torch:pkg.module:factory``, ``path/file.py:factory`` and ``model.pt2``.

Two exporters are available. The dynamo exporter (``torch.export`` + onnxscript) is the default: on a
TF-padded MobileNetV2 it gives 100 nodes and no Pad, where the legacy TorchScript exporter gives 1,054
nodes with 52 Pads and 52 Transposes from shape-computed padding. ``--torch-exporter legacy`` keeps the
TorchScript path for models only it can trace; which one ran is recorded in the ``Export``.
"""

from __future__ import annotations

import inspect
import io
import logging
import time
import warnings
from dataclasses import replace
from typing import Any, Sequence

import onnx

from onnxmend.core.deps import require
from onnxmend.core.errors import NeedsInputShapes, OnnxmendError, first_line
from onnxmend.core.specs import TensorSpec
from onnxmend.exporters.base import Export, SourceModel
from onnxmend.exporters.options import ExportOptions, InputArg
from onnxmend.exporters.pytorch.factory import build_module

log = logging.getLogger(__name__)

# torch.onnx's dynamo exporter builds opset 18 graphs; converting them down fails on Pad.
DYNAMO_MIN_OPSET = 18


def export_torch_source(source: str, options: ExportOptions) -> Export:
    if source.endswith(".pt2"):
        from onnxmend.exporters.pytorch.pt2 import export_pt2

        return export_pt2(source, options)
    if source.endswith((".pt", ".pth")):
        from onnxmend.exporters.pytorch.pt2 import export_pickled_module

        return export_pickled_module(source, options)
    # Seeded like load_torch_source: a factory that initialises randomly builds the same weights in every
    # process, so `convert` and a later `validate` (or `bench --source`) compare the same model.
    require("torch").manual_seed(options.seed)
    return export_module(build_module(source), source, options)


def export_module(
    module: Any, source: str, options: ExportOptions,
    input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
    value_ranges: dict[str, tuple[float, float]] | None = None,
) -> Export:
    """Export an ``nn.Module``; inputs come from ``--input`` or the module's ``example_inputs``."""
    prepared, examples, declared_outputs = prepare_module(module, options, input_names, output_names, value_ranges)
    start = time.perf_counter()
    notes = []
    if options.torch_exporter == "dynamo" and options.opset < DYNAMO_MIN_OPSET:
        notes.append(
            f"The dynamo exporter emits opset {DYNAMO_MIN_OPSET} at least (onnx cannot down-convert Pad to "
            f"{options.opset}); exported at opset {DYNAMO_MIN_OPSET}. Use --torch-exporter legacy for opset {options.opset}."
        )
        options = replace(options, opset=DYNAMO_MIN_OPSET)
    model, exporter_name = _run_exporter(module, tuple(examples), prepared.input_names, prepared.output_names, options)
    seconds = time.perf_counter() - start
    outputs = [
        TensorSpec(o.name, tuple(d.dim_value or d.dim_param or None for d in o.type.tensor_type.shape.dim))
        for o in model.graph.output
    ]
    source_model = replace(prepared, output_names=tuple(o.name for o in model.graph.output))
    return Export(model, list(prepared.inputs), outputs, source_model, "torch", exporter_name, source, seconds, notes,
                  declared_inputs=list(prepared.inputs), declared_outputs=declared_outputs)


def prepare_module(
    module: Any, options: ExportOptions, input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None, value_ranges: dict[str, tuple[float, float]] | None = None,
) -> tuple[SourceModel, list[Any], list[TensorSpec]]:
    """The module in eval mode as a :class:`SourceModel` (input specs, output names), its example tensors,
    and its outputs as it computes them on those (a dynamic batch where ``--dynamic-batch`` asks for one)."""
    torch = require("torch")
    module.eval()
    examples, names = _example_inputs(module, options.inputs, input_names)
    value_ranges = value_ranges or {}
    try:
        with torch.inference_mode():
            reference = module(*examples)
    except Exception as exc:  # the module's own code rejects these inputs: a wrong --input, mostly
        shapes = ", ".join(f"{n} {list(t.shape)}" for n, t in zip(names, examples))
        raise OnnxmendError(f"The model does not run on inputs {shapes} ({type(exc).__name__}: {first_line(exc, 200)}); "
                            "check --input.") from exc
    flat = flatten_outputs(reference)
    n_out = len(flat)
    out_names = tuple(output_names or (["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]))
    out_specs = [TensorSpec(n, _spec_shape(t, options.dynamic_batch), str(t.dtype).replace("torch.", ""))
                 for n, t in zip(out_names, flat)]
    inputs = tuple(
        TensorSpec(n, _spec_shape(t, options.dynamic_batch), _np_dtype(t), _guess_layout(t), value_ranges.get(n))
        for n, t in zip(names, examples)
    )
    return SourceModel("torch-module", "torch", module, inputs, out_names), examples, out_specs


def load_torch_source(source: str, options: ExportOptions) -> SourceModel:
    """A factory's module as a source model, without exporting it (what ``bench`` times)."""
    require("torch").manual_seed(options.seed)
    return prepare_module(build_module(source), replace(options, dynamic_batch=True))[0]


def _example_inputs(module: Any, args: Sequence[InputArg], names: Sequence[str] | None):
    torch = require("torch")
    if args:
        if any(d is None for a in args for d in a.shape):
            raise OnnxmendError("Give concrete sizes in --input for a torch model; use --dynamic-batch for a dynamic batch.")
        gen = torch.Generator().manual_seed(0)
        tensors = [_random_tensor(a.shape, a.dtype, gen) for a in args]
        return tensors, [a.name for a in args]
    examples = getattr(module, "example_inputs", None)
    if callable(examples):
        examples = examples()
    if examples is None:
        raise NeedsInputShapes(
            "The model has no example_inputs; give its input shapes with --input NAME:1x3x224x224."
        )
    if isinstance(examples, torch.Tensor):
        examples = (examples,)
    tensors = list(examples)
    if names is None:
        params = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = [p.name for p in params][: len(tensors)]
        if len(names) < len(tensors):
            names = [f"input_{i}" for i in range(len(tensors))]
    return tensors, list(names)


def _random_tensor(shape, dtype: str, gen):
    torch = require("torch")
    if dtype.startswith("float"):
        return torch.randn(*shape, generator=gen, dtype=getattr(torch, dtype))
    if dtype == "bool":
        return torch.rand(*shape, generator=gen) > 0.5
    return torch.randint(0, 2, tuple(shape), generator=gen, dtype=getattr(torch, dtype))


def _run_exporter(module, examples, names, out_names, options: ExportOptions) -> tuple[onnx.ModelProto, str]:
    torch = require("torch")
    dynamic_axes = {n: {0: "batch"} for n in list(names) + list(out_names)} if options.dynamic_batch else None
    kwargs: dict[str, Any] = dict(
        input_names=list(names), output_names=list(out_names), opset_version=options.opset,
    )
    # torch.onnx logs every unavailable torchvision op at WARNING; those are not the user's concern.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if options.torch_exporter == "legacy":
            buffer = io.BytesIO()
            torch.onnx.export(module, examples, buffer, dynamo=False, dynamic_axes=dynamic_axes,
                              do_constant_folding=True, **kwargs)
            return onnx.load_from_string(buffer.getvalue()), f"torch.onnx legacy TorchScript (torch {torch.__version__})"
        require("onnxscript")  # the dynamo exporter needs it
        dynamic_shapes = None
        if options.dynamic_batch:
            batch = torch.export.Dim("batch", min=1, max=4096)
            dynamic_shapes = tuple({0: batch} for _ in examples)
        try:
            program = torch.onnx.export(module, examples, dynamo=True, dynamic_shapes=dynamic_shapes,
                                        optimize=True, verbose=False, report=False, **kwargs)
        except Exception as exc:
            raise OnnxmendError(
                f"The dynamo exporter failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "try --torch-exporter legacy."
            ) from exc
        return program.model_proto, f"torch.onnx dynamo (torch {torch.__version__})"


def flatten_outputs(result: Any) -> list:
    """The tensors of a module's result (a tensor, or nested tuples/lists/dicts of them), in order."""
    torch = require("torch")
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return [t for v in result.values() for t in flatten_outputs(v)]
    if isinstance(result, (list, tuple)):
        return [t for v in result for t in flatten_outputs(v)]
    return []


def _spec_shape(tensor, dynamic_batch: bool) -> tuple[int | str | None, ...]:
    shape: list[int | str | None] = list(tensor.shape)
    if dynamic_batch and shape:
        shape[0] = "batch"
    return tuple(shape)


def _np_dtype(tensor) -> str:
    return str(tensor.detach().cpu().numpy().dtype) if tensor.numel() < 2 else str(tensor.numpy().dtype)


def _guess_layout(tensor) -> str:
    return "NCHW" if tensor.dim() == 4 else ("NCL" if tensor.dim() == 3 else "other")
