"""A PyTorch module as a :class:`~onnxmend.runtime.layers.graph.SourceGraph`, from one traced forward pass.

Every submodule gets a forward pre-hook (the tensors it reads) and a forward hook (the tensor it writes);
the order in which forwards *finish* is the network order, so a block comes after its children. A layer
reads from the leaf module that last wrote the tensor it takes (an in-place ReLU after its BatchNorm), or
from the block that first returned it. Only modules that ran are
layers; a module called twice keeps its first call.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

from onnxmend.core.deps import require
from onnxmend.exporters.pytorch.export import flatten_outputs
from onnxmend.runtime.layers.graph import SourceGraph, SourceLayer, as_list, axis_letters


def torch_graph(module: Any, tensors: list[Any]) -> SourceGraph:
    """Run ``module`` once on ``tensors`` (torch tensors) and return its layers in network order."""
    torch = require("torch")
    named = {m: n for n, m in module.named_modules() if n}
    reads: dict[str, list[str]] = {}
    ranks: dict[str, int] = {}
    order: list[str] = []
    writer: dict[int, tuple[weakref.ref, str]] = {}  # weak: the trace must not keep activations alive
    handles = []
    for sub, name in named.items():
        handles.append(sub.register_forward_pre_hook(_reader(name, reads, ranks, writer)))
        leaf = not any(True for _ in sub.children())
        handles.append(sub.register_forward_hook(_writer(name, leaf, order, writer)))
    try:
        with torch.inference_mode():
            module(*tensors)
    finally:
        for handle in handles:
            handle.remove()
    by_name = {n: m for m, n in named.items()}
    layers = []
    for name in order:
        sub = by_name[name]
        params = tuple((f"{name}.{p}", tuple(t.shape)) for p, t in sub.named_parameters(recurse=False))
        producers = tuple(dict.fromkeys(p for p in reads.get(name, []) if p != name))
        layers.append(SourceLayer(name, type(sub).__name__, len(layers), params, torch_facts(sub, ranks.get(name)),
                                  producers, container=any(True for _ in sub.children())))
    return SourceGraph("torch", layers, channels_last=False)


def torch_facts(sub: Any, rank: int | None) -> dict[str, object]:
    """``sub``'s configuration as comparable facts (``rank``: of its first input)."""
    kind = type(sub).__name__
    facts: dict[str, object] = {}
    if kind.startswith("Conv") or kind.endswith(("Pool1d", "Pool2d", "Pool3d")):
        facts.update(_window_facts(sub, rank))
    elif kind.startswith("BatchNorm"):
        momentum = getattr(sub, "momentum", None)
        facts.update(epsilon=sub.eps, momentum=None if momentum is None else round(1.0 - momentum, 12), axes=["C"])
    elif kind == "LayerNorm":
        count = len(sub.normalized_shape)
        rank = rank or count + 1
        facts.update(epsilon=sub.eps, axes=axis_letters(range(rank - count, rank), rank, False))
    elif kind == "GroupNorm":
        rank = rank or 4
        facts.update(epsilon=sub.eps, num_groups=sub.num_groups, axes=axis_letters(range(1, rank), rank, False))
    elif kind in ("InstanceNorm1d", "InstanceNorm2d"):
        rank = rank or 4
        facts.update(epsilon=sub.eps, axes=axis_letters(range(2, rank), rank, False))
    elif kind in ("ZeroPad2d", "ConstantPad2d"):
        left, right, top, bottom = as_list(sub.padding, 4)
        facts["pads"] = [top, left, bottom, right]
    elif kind == "Linear":
        facts["units"] = sub.out_features
    elif kind in ("ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Tanh"):
        facts["activation"] = kind.lower()
        for key, attr in (("min", "min_val"), ("max", "max_val"), ("negative_slope", "negative_slope"),
                          ("approximate", "approximate")):
            if hasattr(sub, attr):
                facts[key] = getattr(sub, attr)
    return facts


def _window_facts(sub: Any, rank: int | None) -> dict[str, object]:
    spatial = (rank - 2) if rank else 2
    kernel = as_list(getattr(sub, "kernel_size", 1), spatial)
    strides = as_list(getattr(sub, "stride", None) or kernel, spatial)
    dilations = as_list(getattr(sub, "dilation", 1), spatial)
    padding = getattr(sub, "padding", 0)
    facts: dict[str, object] = {"kernel": kernel, "strides": strides, "dilations": dilations}
    if isinstance(padding, str):
        facts["padding"] = padding
        facts["pads"] = [0] * (2 * spatial) if padding == "valid" else None
        if padding == "same":  # torch "same" (stride 1 only) puts the odd element at the end, like TF
            facts["pads"] = _torch_same(kernel, dilations)
    else:
        each = as_list(padding, spatial)
        facts["pads"] = each + each
    if hasattr(sub, "groups"):
        facts["group"] = int(sub.groups)
    return facts


def _torch_same(kernel: list[int], dilations: list[int]) -> list[int]:
    totals = [d * (k - 1) for k, d in zip(kernel, dilations)]
    return [t // 2 for t in totals] + [t - t // 2 for t in totals]


def _reader(name: str, reads: dict[str, list[str]], ranks: dict[str, int],
            writer: dict[int, tuple[weakref.ref, str]]) -> Callable[..., None]:
    def hook(_module: Any, inputs: Any) -> None:
        if name in reads:
            return
        tensors = flatten_outputs(inputs)
        found = [writer.get(id(t)) for t in tensors]
        reads[name] = [w[1] for t, w in zip(tensors, found) if w is not None and w[0]() is t]
        if tensors:
            ranks[name] = tensors[0].dim()

    return hook


def _writer(name: str, leaf: bool, order: list[str], writer: dict[int, tuple[weakref.ref, str]]) -> Callable[..., None]:
    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        if name in order:
            return
        order.append(name)
        for tensor in flatten_outputs(output):
            known = writer.get(id(tensor))
            # a leaf writes it (the last one, for in-place activations); a block passing it on does not
            if known is None or known[0]() is not tensor or leaf:
                writer[id(tensor)] = (weakref.ref(tensor), name)

    return hook
