"""PyTorch sources: ``torch:pkg.module:factory``, ``path/file.py:factory`` and ``model.pt2``.

Two exporters are available. The dynamo exporter (``torch.export`` + onnxscript) is the default: on a
TF-padded MobileNetV2 it gives 100 nodes and no Pad, where the legacy TorchScript exporter gives 1,054
nodes with 52 Pads and 52 Transposes from shape-computed padding. ``--torch-exporter legacy`` keeps the
TorchScript path for models only it can trace; which one ran is recorded in the ``Export``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import io
import logging
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import BadSourceError, MissingDependencyError, OnnxmendError
from onnxmend.exporters.base import Export, TensorSpec
from onnxmend.exporters.options import ExportOptions, InputArg

log = logging.getLogger(__name__)

# torch.onnx's dynamo exporter builds opset 18 graphs; converting them down fails on Pad.
DYNAMO_MIN_OPSET = 18


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("PyTorch", "torch") from exc
    return torch


def load_factory(source: str) -> Any:
    """Resolve ``torch:pkg.module:factory`` or ``path/file.py:factory`` to the factory callable."""
    if source.startswith("torch:"):
        parts = source[len("torch:"):].rsplit(":", 1)
        if len(parts) != 2 or not all(parts):
            raise BadSourceError(f"{source!r} should look like torch:package.module:factory.")
        module_name, attr = parts
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise BadSourceError(f"Cannot import module {module_name!r} ({exc}).") from exc
    else:
        path_text, attr = source.rsplit(":", 1)
        path = Path(path_text)
        if not path.is_file():
            raise BadSourceError(f"{path} does not exist.")
        spec = importlib.util.spec_from_file_location(f"onnxmend_user_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise BadSourceError(f"{path} is not a Python file onnxmend can import.")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise BadSourceError(f"Importing {path} failed: {type(exc).__name__}: {exc}") from exc
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise BadSourceError(f"{module.__name__} has no callable named {attr!r}.")
    return factory


def build_module(source: str) -> Any:
    torch = _torch()
    factory = load_factory(source)
    try:
        module = factory()
    except Exception as exc:
        raise BadSourceError(f"The factory in {source!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, torch.nn.Module):
        raise BadSourceError(
            f"The factory in {source!r} returned a {type(module).__name__}, not a torch.nn.Module."
        )
    return module


def export_torch_source(source: str, options: ExportOptions) -> Export:
    if source.endswith(".pt2"):
        return _export_pt2(source, options)
    module = build_module(source)
    return export_module(module, source, options)


def export_module(
    module: Any, source: str, options: ExportOptions,
    input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
    value_ranges: dict[str, tuple[float, float]] | None = None,
) -> Export:
    """Export an ``nn.Module``; inputs come from ``--input`` or the module's ``example_inputs``."""
    torch = _torch()
    module.eval()
    examples, names = _example_inputs(module, options.inputs, input_names)
    value_ranges = value_ranges or {}
    with torch.inference_mode():
        reference = module(*examples)
    n_out = len(_flatten_outputs(reference))
    out_names = list(output_names or (["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]))
    start = time.perf_counter()
    notes = []
    if options.torch_exporter == "dynamo" and options.opset < DYNAMO_MIN_OPSET:
        notes.append(
            f"The dynamo exporter emits opset {DYNAMO_MIN_OPSET} at least (onnx cannot down-convert Pad to "
            f"{options.opset}); exported at opset {DYNAMO_MIN_OPSET}. Use --torch-exporter legacy for opset {options.opset}."
        )
        options = replace(options, opset=DYNAMO_MIN_OPSET)
    model, exporter_name = _run_exporter(module, tuple(examples), names, out_names, options)
    seconds = time.perf_counter() - start
    inputs = [
        TensorSpec(n, _spec_shape(t, options.dynamic_batch), _np_dtype(t), _guess_layout(t), value_ranges.get(n))
        for n, t in zip(names, examples)
    ]
    outputs = [
        TensorSpec(o.name, tuple(d.dim_value or d.dim_param or None for d in o.type.tensor_type.shape.dim))
        for o in model.graph.output
    ]
    return Export(
        model, inputs, outputs, _make_runner(module, names, [o.name for o in model.graph.output]),
        "torch", exporter_name, source, seconds, notes,
    )


def _example_inputs(module: Any, args: Sequence[InputArg], names: Sequence[str] | None):
    torch = _torch()
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
        raise OnnxmendError(
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
    torch = _torch()
    if dtype.startswith("float"):
        return torch.randn(*shape, generator=gen, dtype=getattr(torch, dtype))
    if dtype == "bool":
        return torch.rand(*shape, generator=gen) > 0.5
    return torch.randint(0, 2, tuple(shape), generator=gen, dtype=getattr(torch, dtype))


def _run_exporter(module, examples, names, out_names, options: ExportOptions) -> tuple[onnx.ModelProto, str]:
    torch = _torch()
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
        try:
            import onnxscript  # noqa: F401  (the dynamo exporter needs it)
        except ImportError as exc:
            raise MissingDependencyError("onnxscript", "torch") from exc
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


def _export_pt2(source: str, options: ExportOptions) -> Export:
    torch = _torch()
    path = Path(source)
    if not path.is_file():
        raise BadSourceError(f"{path} does not exist.")
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise BadSourceError(f"{path} is not a torch.export program ({type(exc).__name__}).") from exc
    module = program.module()
    examples = program.example_inputs[0] if program.example_inputs else None
    if examples and not options.inputs:
        module.example_inputs = tuple(examples)
    names = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    return export_module(_EvalWrapper(module), source, options, input_names=names or None)


def _EvalWrapper(module):  # noqa: N802  (a factory that looks like a class to its callers)
    """``ExportedProgram.module()`` refuses ``.eval()``; wrap it so export_module can treat it like any module."""
    torch = _torch()

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module
            self.example_inputs = getattr(module, "example_inputs", None)

        def forward(self, *args):
            return self.inner(*args)

        def eval(self):  # the exported module is already in inference form
            return self

    return Wrapped()


def _make_runner(module, names: Sequence[str], out_names: Sequence[str]):
    torch = _torch()

    def run(feeds) -> dict[str, np.ndarray]:
        tensors = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names]
        with torch.inference_mode():
            result = module(*tensors)
        flat = _flatten_outputs(result)
        return {n: t.detach().cpu().numpy() for n, t in zip(out_names, flat)}

    return run


def _flatten_outputs(result) -> list:
    torch = _torch()
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return [t for v in result.values() for t in _flatten_outputs(v)]
    if isinstance(result, (list, tuple)):
        return [t for v in result for t in _flatten_outputs(v)]
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
