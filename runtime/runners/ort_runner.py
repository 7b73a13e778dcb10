"""onnxruntime as a :class:`~onnxmend.runtime.runners.base.Runner`: a session on CUDA or CPU, said out loud.

``capture`` exposes intermediate tensors by adding them as graph outputs of a copy of the model (types
from shape inference), in one extra session per distinct set of names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.graph import infer_shapes
from onnxmend.core.specs import TensorSpec, specs_from_model
from onnxmend.runtime.runners.base import Arrays
from onnxmend.runtime.session import OptLevel, Provider, Session, create_session


class OnnxRunner:
    framework = "onnxruntime"

    def __init__(self, model: onnx.ModelProto | str | Path, provider: Provider = "cpu", threads: int = 0,
                 opt_level: OptLevel = "disable", tf32: bool = False) -> None:
        self.proto = model if isinstance(model, onnx.ModelProto) else None
        self.path = None if isinstance(model, onnx.ModelProto) else Path(model)
        self.options = dict(provider=provider, threads=threads, opt_level=opt_level, tf32=tf32)
        source = model if isinstance(model, onnx.ModelProto) else str(model)
        self.session: Session = create_session(source, **self.options)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        return f"onnxruntime {self.session.provider}"

    @property
    def inputs(self) -> list[TensorSpec]:
        return specs_from_model(self.model)

    @property
    def model(self) -> onnx.ModelProto:
        if self.proto is None:
            self.proto = onnx.load(str(self.path))
        return self.proto

    def run(self, feeds: Arrays) -> dict[str, np.ndarray]:
        return self.session.run(feeds)

    def capture(self, feeds: Arrays, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Every named tensor in ``names`` (all node outputs when None), by running a widened copy."""
        wanted = list(names) if names is not None else [o for n in self.model.graph.node for o in n.output if o]
        session = create_session(with_outputs(self.model, wanted), **self.options)  # type: ignore[arg-type]
        values = session.run(feeds)
        return {name: values[name] for name in wanted if name in values}

    def timed_call(self, feeds: Arrays) -> Callable[[], object]:
        inner = self.session.inner
        bound = {n: feeds[n] for n in self.session.input_names}
        return lambda: inner.run(None, bound)


def with_outputs(model: onnx.ModelProto, tensors: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph also outputs ``tensors`` (typed from shape inference when known)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    inferred = infer_shapes(copy)
    types = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    present = {o.name for o in copy.graph.output}
    produced = {o for n in copy.graph.node for o in n.output}
    for name in tensors:
        if name in present:
            continue
        if name not in produced:
            raise OnnxmendError(f"The model has no tensor named {name!r} to expose.")
        vi = types.get(name) or onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        copy.graph.output.append(vi)
    return copy
