"""The held-in set for the peer comparison (bench/peer_sizes.py, tests/flows/test_peer_sizes.py): one raw
export per generic-cleanup pattern, and the node counts of onnxmend's ``fix`` beside onnxsim's and
onnxslim's output of the same raw export.

What is compared: every node of the graph, its If/Loop bodies included, after ``onnxmend.fix`` (the
``fix`` preset with the numeric gate, ``--layout auto``: the file's interface is kept, so onnxmend's NHWC→NCHW
interface change does not enter the count) and after ``onnxsim.simplify`` / ``onnxslim.slim`` with their
defaults; none of them changes the opset. A peer that fails on a graph is counted as leaving it as it was.

The ONNX-built graphs need no framework; the torch-built ones are exported here with torch's own
exporters (dynamic batch, and sequence, where the pattern needs it) and skip without torch.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.builders import init, make_model, rand, value


def count_nodes(graph: onnx.GraphProto) -> int:
    """Nodes of ``graph`` and of every subgraph (If branches, Loop/Scan bodies)."""
    return sum(1 + sum(count_nodes(a.g) for a in n.attribute if a.type == onnx.AttributeProto.GRAPH)
               for n in graph.node)


# ------------------------------------------------------------------------------------ ONNX-built graphs


def pad_two_convs() -> onnx.ModelProto:
    """A Keras ``ZeroPadding2D`` read by two strided Convs, and an all-zero Pad in front of the output."""
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w1"], ["a"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w2"], ["b"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Add", ["a", "b"], ["s"]),
        helper.make_node("Relu", ["s"], ["r"]),
        helper.make_node("Pad", ["r", "zeros"], ["y"]),
    ]
    inits = {"pads": np.asarray([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "zeros": np.zeros(8, np.int64),
             "w1": rand((8, 3, 3, 3), 1), "w2": rand((8, 3, 3, 3), 2)}
    return make_model(nodes, [value("x", [1, 3, 16, 16])], [value("y", [1, 8, 8, 8])], inits)


def gelu_before_conv() -> onnx.ModelProto:
    """Conv → GELU written ``Mul(Mul(x, 1 + erf(x/√2)), 0.5)`` → 1×1 Conv: the 0.5 is a scalar Mul in front of a
    Conv, which fold-conv-input-affine would move into the Conv's weights before fuse-gelu saw it."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["h"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["h", "r2"], ["z"]), helper.make_node("Erf", ["z"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["h", "a"], ["ha"]),
        helper.make_node("Mul", ["ha", "half"], ["g"]),
        helper.make_node("Conv", ["g", "w2", "b2"], ["y"], kernel_shape=[1, 1]),
    ]
    inits = {"w1": rand((16, 8, 3, 3), 1) * 0.3, "b1": rand((16,), 2) * 0.1, "w2": rand((8, 16, 1, 1), 3) * 0.3,
             "b2": rand((8,), 4) * 0.1, "r2": np.float32(0.70710677), "one": np.float32(1.0), "half": np.float32(0.5)}
    return make_model(nodes, [value("x", [1, 8, 8, 8])], [value("y", [1, 8, 8, 8])], inits)


def duplicated_branches() -> onnx.ModelProto:
    """Two identical Sigmoid·x branches on equal (separately stored) constants: CSE and dedupe-initializers."""
    nodes = [
        helper.make_node("Mul", ["x", "k1"], ["m1"]), helper.make_node("Mul", ["x", "k2"], ["m2"]),
        helper.make_node("Sigmoid", ["m1"], ["s1"]), helper.make_node("Sigmoid", ["m2"], ["s2"]),
        helper.make_node("Mul", ["x", "s1"], ["g1"]), helper.make_node("Mul", ["x", "s2"], ["g2"]),
        helper.make_node("Concat", ["g1", "g2"], ["y"], axis=1),
    ]
    k = rand((1, 4, 1, 1), 5)
    return make_model(nodes, [value("x", [1, 4, 8, 8])], [value("y", [1, 8, 8, 8])], {"k1": k, "k2": k.copy()})


def _branch(name: str, k: float) -> onnx.GraphProto:
    """``x + Constant(2)·k``: a constant subexpression inside a subgraph."""
    nodes = [
        helper.make_node("Constant", [], [f"{name}_two"], value=numpy_helper.from_array(np.full(4, 2.0, np.float32))),
        helper.make_node("Mul", [f"{name}_two", f"{name}_k"], [f"{name}_c"]),
        helper.make_node("Add", ["x", f"{name}_c"], [f"{name}_out"]),
    ]
    return helper.make_graph(nodes, name, [], [value(f"{name}_out", [1, 4])], [init(f"{name}_k", np.float32([k]))])


def _loop_body() -> onnx.GraphProto:
    """One Loop iteration: ``v + Constant(2)·k``, with the condition passed through."""
    nodes = [
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.full(4, 2.0, np.float32))),
        helper.make_node("Mul", ["two", "loop_k"], ["c"]),
        helper.make_node("Add", ["v_in", "c"], ["v_out"]),
    ]
    inputs = [value("i", [], TensorProto.INT64), value("cond_in", [], TensorProto.BOOL), value("v_in", [1, 4])]
    return helper.make_graph(nodes, "body", inputs, [value("cond_out", [], TensorProto.BOOL), value("v_out", [1, 4])],
                             [init("loop_k", np.float32([0.5]))])


def if_and_loop(ir_version: int = 10) -> onnx.ModelProto:
    """An If on a run-time condition and a Loop with a constant trip count, each body with a constant
    subexpression; onnxsim folds no subgraph and, at IR 14, cannot run the graph at all."""
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["branched"], then_branch=_branch("then", 3.0), else_branch=_branch("else", 4.0)),
        helper.make_node("Loop", ["trips", "", "branched"], ["y"], body=_loop_body()),
    ]
    inits = {"zero": np.float32(0.0), "trips": np.int64(3)}
    model = make_model(nodes, [value("x", [1, 4])], [value("y", [1, 4])], inits)
    model.ir_version = ir_version
    return model


# ------------------------------------------------------------------------------------ torch-built exports


def _torch_export(module, example, legacy: bool, dynamic: dict[int, str]) -> onnx.ModelProto:
    import torch

    module.eval()
    if legacy:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.onnx"
            torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                              opset_version=17, dynamic_axes={"x": dynamic, "y": {0: dynamic[0]}})
            return onnx.load(path)
    dims = {axis: torch.export.Dim(name, min=2, max=64) for axis, name in dynamic.items()}
    program = torch.onnx.export(module, (example,), dynamo=True, dynamic_shapes=({**dims},), optimize=True,
                                verbose=False, report=False, input_names=["x"], output_names=["y"], opset_version=18)
    return program.model_proto


def squeeze_excite_torch(legacy: bool = True) -> onnx.ModelProto:
    """A CNN with squeeze-excite blocks in torch's three spellings (``view(b, c)``/``view(b, c, 1, 1)``,
    ``[..., None, None]``, ``keepdim``), exported with a dynamic batch."""
    import torch

    from tests.builders.torch_nets import SqueezeExciteNet

    torch.manual_seed(0)
    return _torch_export(SqueezeExciteNet(), torch.randn(2, 3, 32, 32), legacy, {0: "batch"})


def transformer_torch(legacy: bool = False) -> onnx.ModelProto:
    """A two-block pre-norm transformer (fused qkv, SDPA, cls token), dynamic batch and sequence with the
    dynamo exporter, dynamic batch with the legacy one."""
    import torch

    from tests.builders.torch_nets import Transformer

    torch.manual_seed(0)
    return _torch_export(Transformer(), torch.randn(2, 16, 16), legacy, {0: "batch"} if legacy else {0: "batch", 1: "seq"})


HELD_IN: dict[str, Callable[[], onnx.ModelProto]] = {
    "held-in:pad-two-convs": pad_two_convs,
    "held-in:gelu-before-conv": gelu_before_conv,
    "held-in:duplicated-branches": duplicated_branches,
    "held-in:if-loop-ir10": lambda: if_and_loop(10),
    "held-in:if-loop-ir14": lambda: if_and_loop(14),
    "held-in:squeeze-excite-legacy": lambda: squeeze_excite_torch(legacy=True),
    "held-in:squeeze-excite-dynamo": lambda: squeeze_excite_torch(legacy=False),
    "held-in:transformer-dynamo": lambda: transformer_torch(legacy=False),
    "held-in:transformer-legacy": lambda: transformer_torch(legacy=True),
}
NEEDS_TORCH = {name for name in HELD_IN if "excite" in name or "transformer" in name}


# ------------------------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class PeerRow:
    """One raw export's node counts: as exported, after onnxmend's fix, after each peer (None: not installed)."""

    model: str
    raw: int
    fixed: int
    onnxsim: int | None
    onnxslim: int | None
    rejected: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def fixed_nodes(raw: onnx.ModelProto) -> tuple[int, tuple[str, ...], str]:
    """Node count after ``onnxmend.fix`` (fix preset, gated, interface kept), the passes the gate rejected,
    and why the gate could not compare (empty when it did)."""
    from onnxmend.flows.fix import fix

    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(raw, Path(tmp) / "raw.onnx")
        result = fix(Path(tmp) / "raw.onnx", Path(tmp) / "fixed.onnx")
        fixed = onnx.load(Path(tmp) / "fixed.onnx")
    unverified = "" if result.pipeline.verified else f"fix not gated: {result.pipeline.unverified_reason[:120]}"
    return count_nodes(fixed.graph), tuple(r.name for r in result.pipeline.rejected), unverified


def peer_nodes(raw: onnx.ModelProto, peer: str) -> tuple[int | None, str]:
    """Node count of the peer's output (the raw count when the peer fails), and why it failed."""
    try:
        if peer == "onnxsim":
            import onnxsim

            simplified, _ = onnxsim.simplify(onnx.ModelProto.FromString(raw.SerializeToString()))
        else:
            import onnxslim

            simplified = onnxslim.slim(onnx.ModelProto.FromString(raw.SerializeToString()))
    except ImportError:
        return None, ""
    except Exception as exc:  # a peer that cannot process the graph leaves it as it was
        return count_nodes(raw.graph), f"{peer} failed: {str(exc).strip().splitlines()[-1][:120]}"
    return count_nodes(simplified.graph), ""


def compare(name: str, raw: onnx.ModelProto, peers: tuple[str, ...] = ("onnxsim", "onnxslim")) -> PeerRow:
    fixed, rejected, unverified = fixed_nodes(raw)
    counts, notes = {}, [unverified] if unverified else []
    for peer in ("onnxsim", "onnxslim"):
        counts[peer], note = peer_nodes(raw, peer) if peer in peers else (None, "")
        notes += [note] if note else []
    return PeerRow(name, count_nodes(raw.graph), fixed, counts["onnxsim"], counts["onnxslim"], rejected, tuple(notes))
