"""End to end on real keras.applications models: the numbers the issues promise (slow: minutes)."""

from __future__ import annotations

import pytest

from onnxmend.flows.convert import ConvertOptions, convert

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    cache: dict[tuple[str, str, str | None], object] = {}

    def run(source: str, layout: str = "auto", passes: str | None = None):
        key = (source, layout, passes)
        if key not in cache:
            out = tmp_path_factory.mktemp(source.replace(":", "_"))
            cache[key] = convert(source, out, ConvertOptions(layout=layout, passes=passes))  # type: ignore[arg-type]
        return cache[key]

    return run


def _assert_parity(result):
    assert result.validation.verdict == "pass", result.validation.to_json()
    assert result.validation.comparison.worst_max_abs_scaled <= 1e-4
    assert result.pipeline.rejected == []
    assert min(o.ref_std for o in result.validation.comparison.outputs) > 1e-2  # not a vacuous pass


@pytest.mark.parametrize("name", ["MobileNetV2", "EfficientNetB0"])
def test_tf2onnx_pads_are_folded(converted, name):
    result = converted(f"keras:{name}", "nchw")
    _assert_parity(result)
    assert result.before.ops.get("Pad", 0) == 4
    assert result.after.ops.get("Pad", 0) == 0
    assert not [a for n in result.export.model.graph.node for a in n.attribute if a.name == "auto_pad" and a.s != b"NOTSET"]


@pytest.mark.parametrize("name", ["MobileNetV2", "EfficientNetB0", "ResNet50"])
def test_nhwc_cnns_end_with_no_transpose_and_nchw_io(converted, name):
    result = converted(f"keras:{name}", "nchw")
    _assert_parity(result)
    assert result.layout == "nchw"
    assert result.after.ops.get("Transpose", 0) == 0
    assert result.after.inputs[0]["shape"][1] == 3  # channels first


def test_convnext_fuses_every_layer_norm(converted):
    result = converted("keras:ConvNeXtTiny")
    _assert_parity(result)
    assert result.layout == "nchw" and result.layout_choice == "auto"
    ops = result.after.ops
    assert ops.get("LayerNormalization") == 23
    assert ops.get("ReduceMean", 0) == ops.get("Sqrt", 0) == ops.get("Reciprocal", 0) == 0
    # ONNX LayerNormalization normalizes trailing axes only, so each channel LayerNorm of the NCHW graph
    # sits between one Transpose pair; the head LayerNorm (on [N, C]) needs none.
    assert ops.get("Transpose", 0) == 2 * 22
    assert all(e["epsilon"] == pytest.approx(1e-6) and e["differs"] for e in result.after.epsilons)


def test_convnext_pinned_nchw_layout_has_no_transpose(converted):
    result = converted("keras:ConvNeXtTiny", "nchw")
    _assert_parity(result)
    ops = result.after.ops
    assert ops.get("Transpose", 0) == 0
    assert result.after.inputs[0]["shape"][1] == 3  # channels first
    # The 22 channel LayerNorms stay decomposed (each would need a Transpose pair), respelled short:
    # 2 ReduceMean, Sub, Mul, Add, Sqrt, Div, Mul γ, Add β each, none of tf2onnx's Reciprocal/Neg; the
    # head's LayerNorm (on [N, C]) fuses.
    assert ops.get("LayerNormalization") == 1
    assert ops.get("ReduceMean") == 44 and ops.get("Div") == ops.get("Sqrt") == 22
    assert ops.get("Reciprocal", 0) == ops.get("Neg", 0) == 0
    skipped = [s.reason for s in result.pipeline.skipped["fuse-layer-norm"]]
    assert len(skipped) == 22 and all("pinned layout allows no new Transposes" in r for r in skipped)


def test_convnext_keep_layout_has_at_most_one_transpose_at_the_input(converted):
    result = converted("keras:ConvNeXtTiny", "keep")
    _assert_parity(result)
    assert result.layout == "keep"
    assert result.after.inputs[0]["shape"][3] == 3  # still NHWC
    assert result.after.ops.get("Transpose", 0) <= 1
