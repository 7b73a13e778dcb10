"""onnxruntime as a :class:`~onnxmend.runtime.runners.base.Runner`: a session on CUDA or CPU, said out loud.

``capture`` exposes intermediate tensors by adding them as graph outputs (types from one shape inference,
kept), serializing, and taking the outputs off again — no copy of the weights beyond the serialized bytes
the extra session is built from. The last widened session is kept for a capture of the same names, and
dropped before a different one is built, so at most one is alive. The plain session is built on first use:
a runner that only captures (``validate --layers``, the int8 layer errors) never holds the weights twice.
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
        self._session: Session | None = None  # built on first use: a runner used only to capture never builds it
        self._types: dict[str, onnx.ValueInfoProto] | None = None
        self._exposed: tuple[tuple[str, ...], Session] | None = None  # the last widened session, reused

    @property
    def session(self) -> Session:
        if self._session is None:
            source = self.proto if self.proto is not None else str(self.path)
            self._session = create_session(source, **self.options)  # type: ignore[arg-type]
        return self._session

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
        """Every named tensor in ``names`` (all node outputs when None), by running a widened session."""
        wanted = list(names) if names is not None else [o for n in self.model.graph.node for o in n.output if o]
        key = tuple(wanted)
        if self._exposed is None or self._exposed[0] != key:
            self._exposed = None  # the previous widened session goes before the next one is built
            if self._types is None:
                self._types = value_types(self.model)
            session = create_session(exposed_bytes(self.model, wanted, self._types), **self.options)  # type: ignore[arg-type]
            self._exposed = (key, session)
        values = self._exposed[1].run(feeds)
        return {name: values[name] for name in wanted if name in values}

    def timed_call(self, feeds: Arrays) -> Callable[[], object]:
        inner = self.session.inner
        bound = {n: feeds[n] for n in self.session.input_names}
        return lambda: inner.run(None, bound)


def value_types(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """The type of every tensor shape inference knows (value infos only: the weights are not kept)."""
    inferred = infer_shapes(model)
    types = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    del inferred
    return types


def exposed_bytes(model: onnx.ModelProto, tensors: Sequence[str], types: dict[str, onnx.ValueInfoProto]) -> bytes:
    """``model`` serialized with ``tensors`` as extra graph outputs; ``model`` itself is left as it was."""
    present = {o.name for o in model.graph.output}
    produced = {o for n in model.graph.node for o in n.output}
    extra = []
    for name in dict.fromkeys(tensors):
        if name in present:
            continue
        if name not in produced:
            raise OnnxmendError(f"The model has no tensor named {name!r} to expose.")
        extra.append(types.get(name) or onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    kept = len(model.graph.output)
    model.graph.output.extend(extra)
    try:
        return model.SerializeToString()
    finally:
        del model.graph.output[kept:]



def with_outputs(model: onnx.ModelProto, tensors: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph also outputs ``tensors`` (typed from shape inference when known)."""
    return onnx.load_from_string(exposed_bytes(model, tensors, value_types(model)))
