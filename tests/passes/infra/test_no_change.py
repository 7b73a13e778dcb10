"""A pass that reports no change leaves the graph exactly as it found it.

The manager relies on this: it hands the same imported graph to the next pass until one reports a
change, instead of importing the model again for every pass (the costliest step on big graphs).
"""

from __future__ import annotations

import onnx
import onnx_graphsurgeon as gs
import pytest

from onnxmend.core.graph import model_opset
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import all_passes, resolve
from tests.builders import conv_relu_model, run_passes
from tests.builders.norms import at_opset, decomposed_ln, tf_folded_ln

CONTEXTS = {
    "auto": lambda opset: PassContext(opset=opset),
    "pinned-nchw": lambda opset: PassContext(opset=opset, layout="nchw", fusions_may_transpose=False),
}


def graphs() -> dict[str, onnx.ModelProto]:
    raw = {
        "conv-relu": conv_relu_model(),
        "ln-last-axis": decomposed_ln(),
        "ln-channel-nchw": tf_folded_ln(shape=(2, 4, 3, 3), axes=(1,), gamma_shape=(1, 4, 1, 1)),
        "ln-opset-13": at_opset(tf_folded_ln(), 13),
    }
    fixed = {f"{name}-fixed": run_passes(model, resolve("fix"), verify=False)[0] for name, model in raw.items()}
    return raw | fixed


def canonical(graph: gs.Graph) -> tuple:
    """Nodes (order-free), their attributes and constant values, and the graph's inputs and outputs."""
    nodes = []
    for node in graph.nodes:
        consts = tuple(t.values.tobytes() for t in node.inputs if isinstance(t, gs.Constant))
        attrs = tuple(sorted((k, repr(v)) for k, v in node.attrs.items()))
        nodes.append((node.op, node.name, tuple(t.name for t in node.inputs), tuple(t.name for t in node.outputs), attrs, consts))
    io = tuple((t.name, tuple(t.shape or ()), str(t.dtype)) for t in graph.inputs + graph.outputs)
    return tuple(sorted(nodes)), io


GRAPHS = graphs()


@pytest.mark.parametrize("context", sorted(CONTEXTS))
@pytest.mark.parametrize("graph_name", sorted(GRAPHS))
def test_no_change_means_untouched(graph_name: str, context: str) -> None:
    model = onnx.shape_inference.infer_shapes(GRAPHS[graph_name])
    untouched = 0
    # Dead nodes a pass sweeps away do not count: compare both sides after a cleanup.
    before = canonical(gs.import_onnx(model).cleanup(remove_unused_graph_inputs=False))
    for name, cls in all_passes().items():
        graph = gs.import_onnx(model)
        result = cls().apply(graph, CONTEXTS[context](model_opset(model)))
        if result.changed == 0 and not result.discard:
            graph.cleanup(remove_unused_graph_inputs=False)
            assert canonical(graph) == before, f"{name} reported no change but rewrote {graph_name}"
            untouched += 1
    assert untouched >= len(all_passes()) // 2  # the test is not vacuous: most passes had nothing to do
