"""``diff`` between every Keras zoo model and each of its twins: a faithful port passes every aligned pair,
a broken one is named at its broken layer with the attribute or weight that differs."""

from __future__ import annotations

import pytest

from onnxmend.core.deps import available
from onnxmend.core.errors import OnnxmendError
from onnxmend.models import ZOO
from onnxmend.runtime.layers.blame import BlameOptions

pytest.importorskip("torch")
pytest.importorskip("tensorflow")

# broken twin: (the layer named first, as "A layer ↔ B module", what shows the difference)
BROKEN = {
    "tf-same-conv-torch-naive": ("conv1 ↔ 0", "pads"),
    "bn-stack-torch": ("bn0 ↔ 1", "epsilon"),
    "layernorm-last-torch-wrong-axes": ("layer_norm ↔ 1", "axes"),
    "depthwise-torch-transposed": ("depthwise ↔ 0", "weights"),
}
PAIRS = sorted((e.twin_of, name) for name, e in ZOO.items() if e.twin_of and ZOO[e.twin_of].framework == "keras")


def test_every_broken_port_is_a_twin_of_a_keras_model() -> None:
    assert set(BROKEN) <= {port for _, port in PAIRS}


@pytest.mark.slow
@pytest.mark.parametrize(("original", "port"), PAIRS)
def test_diff_of_a_keras_model_and_its_twin(original: str, port: str) -> None:
    from onnxmend.flows.diff import diff

    framework = ZOO[port].framework
    if framework in ("paddle", "mindspore") and not available(framework):
        pytest.skip(f"zoo:{port} is a {framework} model and {framework} is not installed")
    if ZOO[port].quantize:  # an int8-I/O port cannot take the float original's input
        with pytest.raises(OnnxmendError, match=r"takes x as int8: the two cannot be run on the same input"):
            diff(f"zoo:{original}", f"zoo:{port}", options=BlameOptions())
        return
    report = diff(f"zoo:{original}", f"zoo:{port}", options=BlameOptions())
    if port not in BROKEN:
        assert report.exit_code == 0, report.headline()
        assert all(r.verdict in ("pass", "degenerate") for r in report.results)
        assert report.layer_map.unmapped == [], report.layer_map.unmapped
        return
    layer, what = BROKEN[port]
    assert report.exit_code == 1
    assert report.first_wrong == layer, report.headline()
    shown = report.cause or report.detail
    assert shown is not None
    if what == "weights":
        assert shown.weights is not None and shown.weights.summary.startswith("equal after swapping kh and kw")
    else:
        assert what in shown.differs, shown.differs
