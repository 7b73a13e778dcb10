"""The reference zoo: registry, framework-level twin checks (no ONNX), and torch exports that run in ORT."""

from __future__ import annotations

import collections
import re

import numpy as np
import onnx
import pytest

from onnxmend.core.errors import BadSourceError, OnnxmendError
from onnxmend.exporters.options import ExportOptions
from onnxmend.exporters.zoo import export_zoo
from onnxmend.models import ZOO, build, zoo_names
from onnxmend.models.weights import tf_same_pads
from onnxmend.runtime.compare import Comparator
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.runners import source_runner
from onnxmend.runtime.session import create_session

torch = pytest.importorskip("torch")

REQUIRED = {
    "tf-same-conv-keras", "tf-same-conv-torch", "tf-same-conv-torch-naive", "depthwise-keras", "depthwise-torch",
    "bn-stack-keras", "bn-stack-torch", "bn-stack-torch-eps-fixed", "layernorm-hwc-keras", "layernorm-chw-torch",
    "groupnorm1-torch", "layernorm-last-keras", "gap-keepdims-torch", "gap-keras", "tf-pad-dynamic-torch",
    "tf-pad-static-torch", "vit-block-torch", "resnet18-torch", "mobilenetv2-torch", "bert-encoder-torch",
}
TORCH_NAMES = sorted(n for n, e in ZOO.items() if e.framework == "torch")
# Built and checked in their framework's worker (tests/models/test_ports.py, tests/exporters/).
REMOTE = {n for n, e in ZOO.items() if e.framework in ("tflite", "paddle", "mindspore")}
KERAS_NAMES = sorted(n for n, e in ZOO.items() if e.framework == "keras")
HEAVY = {"resnet18-torch", "mobilenetv2-torch", "bert-encoder-torch"}  # dynamo export 8-15 s each, unloaded


def marked(names: list[str]) -> list:
    """Parameters with the 224x224 CNNs and BERT marked slow (build + calibration + forward take seconds)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in names]


def run_torch(name: str, *arrays: np.ndarray) -> list[np.ndarray]:
    model = build(name)
    with torch.inference_mode():
        out = model(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]




def run_keras(name: str, x: np.ndarray) -> np.ndarray:
    pytest.importorskip("keras")
    return np.asarray(build(name)(x, training=False))


def nhwc_input(name: str, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(ZOO[name].inputs[0].shape).astype(np.float32)


def to_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def keras_vs_torch(keras_name: str, torch_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both twins on the same numpy input; the Keras output brought to NCHW."""
    x = nhwc_input(keras_name)
    expected = run_keras(keras_name, x)
    (actual,) = run_torch(torch_name, to_nchw(x))
    if expected.ndim == 4:
        expected = expected.transpose(0, 3, 1, 2)
    return expected, actual


# --- registry --------------------------------------------------------------------------------


def test_registry_has_every_seed_model_with_valid_metadata() -> None:
    assert REQUIRED <= set(ZOO)
    assert zoo_names() == sorted(ZOO)
    for name, e in ZOO.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), name
        assert e.framework in ("torch", "keras", "onnx", "tflite", "paddle", "mindspore")
        assert e.description and "seed" not in e.description.lower(), e.description  # users read these
        assert e.twin_of is None or e.twin_of in ZOO
        assert e.quantize == "" or e.framework == "tflite"
        expected_layout = "NHWC" if e.framework in ("keras", "tflite") else ("NCHW", "NCL", "other")
        assert all(s.layout in expected_layout for s in e.inputs), name


def test_zoo_is_read_only() -> None:
    with pytest.raises(TypeError):
        ZOO["new"] = ZOO["gap-keras"]  # type: ignore[index]


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(BadSourceError, match=r"no zoo model 'nope'.*bert-encoder-torch.*tf-same-conv-keras"):
        build("nope")
    with pytest.raises(BadSourceError, match=r"choose one of"):
        export_zoo("nope", ExportOptions())


def test_weights_option_is_refused() -> None:
    with pytest.raises(OnnxmendError, match=r"drop --weights"):
        export_zoo("gap-keepdims-torch", ExportOptions(weights="w.h5"))


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads"),
    [
        (32, 3, 2, (0, 1)), (16, 5, 2, (1, 2)), (7, 3, 2, (1, 1)),  # stride 2: the odd pad goes after
        (28, 3, 1, (1, 1)), (14, 5, 1, (2, 2)), (8, 1, 1, (0, 0)),
    ],
)
def test_tf_same_pads(size: int, kernel: int, stride: int, pads: tuple[int, int]) -> None:
    assert tf_same_pads(size, kernel, stride) == pads


@pytest.mark.parametrize("name", marked(TORCH_NAMES))
def test_torch_builds_carry_example_inputs_matching_the_spec(name: str) -> None:
    model = build(name)
    assert not model.training
    specs = ZOO[name].inputs
    assert [tuple(t.shape) for t in model.example_inputs] == [s.shape for s in specs]
    assert [str(t.dtype).removeprefix("torch.") for t in model.example_inputs] == [s.dtype for s in specs]
    for t, s in zip(model.example_inputs, specs):
        if s.value_range:
            assert int(t.min()) >= s.value_range[0] and int(t.max()) < s.value_range[1]


def test_builds_are_seeded() -> None:
    x = to_nchw(nhwc_input("tf-same-conv-keras"))
    first = build("tf-same-conv-torch", seed=0)
    again = build("tf-same-conv-torch", seed=0)
    other = build("tf-same-conv-torch", seed=1)
    with torch.inference_mode():
        outs = [m(torch.from_numpy(x)).numpy() for m in (first, again, other)]
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.abs(outs[0] - outs[2]).max() > 0.1


# --- twins, framework level -------------------------------------------------------------------


def test_faithful_same_conv_port_matches_keras_and_naive_port_does_not() -> None:
    expected, faithful = keras_vs_torch("tf-same-conv-keras", "tf-same-conv-torch")
    assert np.abs(expected - faithful).max() <= 1e-5
    _, naive = keras_vs_torch("tf-same-conv-keras", "tf-same-conv-torch-naive")
    assert naive.shape == expected.shape  # the naive port keeps the shape: the bug is silent
    mean_abs = float(np.abs(expected - naive).mean())
    assert mean_abs > 0.2, f"naive port mean abs diff {mean_abs}"  # measured 1.23 (seed 001: 0.21)


def test_depthwise_twins_match() -> None:
    expected, actual = keras_vs_torch("depthwise-keras", "depthwise-torch")
    assert np.abs(expected - actual).max() <= 1e-5


def test_bn_stack_eps_fixed_matches_keras_and_default_eps_drifts() -> None:
    expected, fixed = keras_vs_torch("bn-stack-keras", "bn-stack-torch-eps-fixed")
    assert Comparator().compare({"y": expected}, {"y": fixed}).passed  # atol 1e-4 × max|ref|: 24 layers of fp32
    _, drifted = keras_vs_torch("bn-stack-keras", "bn-stack-torch")
    max_err = float(np.abs(expected - drifted).max())
    assert max_err > 0.1, f"default-eps drift {max_err}"  # measured 0.82 (seed 002: ~0.6 after 70 layers)


def test_groupnorm1_equals_tf_contrib_layer_norm() -> None:
    expected, actual = keras_vs_torch("layernorm-hwc-keras", "groupnorm1-torch")
    assert np.abs(expected - actual).max() <= 1e-5


def test_layernorm_chw_torch_has_full_affine_and_normalizes_over_chw() -> None:
    model = build("layernorm-chw-torch")
    conv, norm = model[0], model[1]
    assert tuple(norm.weight.shape) == (16, 8, 8)
    x = np.random.default_rng(2).standard_normal((1, 16, 8, 8)).astype(np.float32)
    with torch.inference_mode():
        y = conv(torch.from_numpy(x)).numpy().astype(np.float64)
        actual = model(torch.from_numpy(x)).numpy()
    mean, var = y.mean(axis=(1, 2, 3), keepdims=True), y.var(axis=(1, 2, 3), keepdims=True)
    reference = (y - mean) / np.sqrt(var + norm.eps) * norm.weight.detach().numpy() + norm.bias.detach().numpy()
    assert np.abs(reference - actual).max() <= 1e-5


def test_layernorm_last_keras_normalizes_the_last_axis_only() -> None:
    keras = pytest.importorskip("keras")
    model = build("layernorm-last-keras")
    x = nhwc_input("layernorm-last-keras")
    y = np.asarray(model.get_layer("conv")(x)).astype(np.float64)
    gamma, beta = (np.asarray(w) for w in model.get_layer("layer_norm").get_weights())
    mean, var = y.mean(axis=-1, keepdims=True), y.var(axis=-1, keepdims=True)
    reference = (y - mean) / np.sqrt(var + 1e-3) * gamma + beta
    assert isinstance(model, keras.Model)
    assert np.abs(reference - np.asarray(model(x, training=False))).max() <= 1e-5
    assert not np.allclose(gamma, 1.0) and not np.allclose(beta, 0.0)


def test_gap_twins_differ_only_in_kept_dims() -> None:
    x = nhwc_input("gap-keras")
    dropped, kept = run_keras("gap-keras", x), run_keras("gap-keepdims-keras", x)
    (torch_out,) = run_torch("gap-keepdims-torch", to_nchw(x))
    assert dropped.shape == (1, 16) and kept.shape == (1, 1, 1, 16) and torch_out.shape == (1, 16, 1, 1)
    assert np.abs(dropped - torch_out.reshape(1, 16)).max() <= 1e-5
    assert np.abs(kept.reshape(1, 16) - dropped).max() == 0.0


def test_tf_pad_dynamic_and_static_twins_match() -> None:
    x = np.random.default_rng(3).standard_normal((1, 3, 56, 56)).astype(np.float32)
    (dynamic,) = run_torch("tf-pad-dynamic-torch", x)
    (static,) = run_torch("tf-pad-static-torch", x)
    np.testing.assert_array_equal(dynamic, static)


@pytest.mark.parametrize("name", marked(sorted(set(ZOO) - REMOTE)))
def test_outputs_are_not_degenerate(name: str) -> None:
    if ZOO[name].framework == "keras":
        outputs = [run_keras(name, nhwc_input(name))]
    elif ZOO[name].framework == "onnx":  # dynamic sizes: run where the graph runs
        model = build(name)
        x = np.random.default_rng(0).standard_normal((1, 3, 64, 64) if "detector" in name else (1, 1, 256))
        outputs = list(create_session(model, provider="cpu").run({"x": x.astype(np.float32)}).values())
    else:
        outputs = run_torch(name, *(t.numpy() for t in build(name).example_inputs))
    for out in outputs:
        assert np.isfinite(out).all()
        assert float(out.std()) > 1e-2, f"{name}: output std {out.std()}"


# --- ONNX exports -----------------------------------------------------------------------------


def export_and_compare(name: str, options: ExportOptions) -> onnx.ModelProto:
    exported = export_zoo(name, options)
    onnx.checker.check_model(exported.model)
    assert exported.source == f"zoo:{name}"
    feeds = synthesize(exported.inputs, seed=0)
    actual = create_session(exported.model, provider="cpu", opt_level="disable").run(feeds)
    comparison = Comparator().compare(source_runner(exported).run(feeds), actual)
    assert comparison.passed, comparison.to_json()
    return exported.model


@pytest.mark.parametrize("name", marked(TORCH_NAMES))
def test_torch_zoo_exports_and_matches_in_onnxruntime(name: str) -> None:
    model = export_and_compare(name, ExportOptions())
    names = [i.name for i in model.graph.input]
    assert names == [s.name for s in ZOO[name].inputs]
    assert [o.name for o in model.graph.output] == list(ZOO[name].outputs)


def histogram(model: onnx.ModelProto) -> collections.Counter[str]:
    return collections.Counter(node.op_type for node in model.graph.node)


def test_legacy_export_of_dynamic_tf_pad_has_shape_chains() -> None:
    dynamic = histogram(export_and_compare("tf-pad-dynamic-torch", ExportOptions(torch_exporter="legacy")))
    static = histogram(export_and_compare("tf-pad-static-torch", ExportOptions(torch_exporter="legacy")))
    # One Pad per conv either way; only the dynamic one computes its pads from Shape→Gather→… at run time.
    assert dynamic["Pad"] == static["Pad"] == 6
    assert dynamic["Shape"] >= 12 and dynamic["Gather"] >= 12
    assert static["Shape"] == 0
    assert sum(dynamic.values()) > 2 * sum(static.values())


def test_dynamo_export_of_dynamic_tf_pad_is_static() -> None:
    # torch.export specialises the shapes, and the exporter's optimizer folds the constant pads into Conv.
    ops = histogram(export_and_compare("tf-pad-dynamic-torch", ExportOptions()))
    assert ops == {"Conv": 6, "Relu": 6}


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_keras_zoo_exports_and_matches_in_onnxruntime(name: str) -> None:
    pytest.importorskip("onnxmend.exporters.keras")
    model = export_and_compare(name, ExportOptions())
    assert len(model.graph.input) == 1
