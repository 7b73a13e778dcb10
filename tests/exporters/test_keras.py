"""The Keras / TensorFlow exporter: conversion, parity with Keras, file formats, weights, bad inputs.

The four keras.applications models are ``slow`` (each is converted once per module).
"""

from __future__ import annotations

import collections
import gc
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import keras  # noqa: E402  (after the skip above)

from onnxmend.core import lazy  # noqa: E402
from onnxmend.core.errors import BadSourceError, MissingDependencyError, OnnxmendError  # noqa: E402
from onnxmend.core.large import check_model  # noqa: E402
from onnxmend.exporters import export  # noqa: E402
from onnxmend.exporters.base import Export  # noqa: E402
from onnxmend.exporters.keras import tf_compat, weights_as_inputs  # noqa: E402
from onnxmend.exporters.keras.init import realistic_random_init  # noqa: E402
from onnxmend.exporters.keras.source import export_keras_model, export_keras_source, load_weights  # noqa: E402
from onnxmend.exporters.options import ExportOptions, InputArg  # noqa: E402
from onnxmend.runtime.compare import Comparator, Comparison, Tolerance  # noqa: E402
from onnxmend.runtime.inputs import synthesize  # noqa: E402
from onnxmend.runtime.runners import source_runner  # noqa: E402
from onnxmend.runtime.session import create_session  # noqa: E402

TF_ONLY_OPS = {"Erfc", "StatefulPartitionedCall", "PartitionedCall"}


class LayerScale(keras.layers.Layer):
    """ConvNeXt's per-channel residual scale, with its tiny default init."""

    def build(self, input_shape) -> None:
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer=keras.initializers.Constant(1e-6))

    def call(self, x):
        return x * self.scale


def small_model(grouped: bool = True) -> keras.Model:
    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    if grouped:
        x = keras.layers.Conv2D(16, 7, padding="same", groups=16)(x)  # ConvNeXt's depthwise conv
        x = keras.layers.Conv2D(32, 3, padding="same", groups=4)(x)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Activation("gelu")(x)  # exact GELU: Erfc in TF
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(10, name="logits")(x)
    model = keras.Model(inp, out, name="small")
    realistic_random_init(model, seed=0)
    return model


def parity(exported: Export, seed: int = 1, batch: int = 1) -> tuple[Comparison, dict[str, np.ndarray]]:
    feeds = synthesize(exported.inputs, seed=seed, batch=batch)
    reference = source_runner(exported).run(feeds)
    session = create_session(exported.model, provider="cpu", opt_level="disable")
    return Comparator(Tolerance(1e-4, 1e-3)).compare(reference, session.run(feeds)), reference


def histogram(model: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(node.op_type for node in model.graph.node)


def conv_groups(model: onnx.ModelProto) -> list[int]:
    return sorted(
        next((a.i for a in node.attribute if a.name == "group"), 1)
        for node in model.graph.node if node.op_type == "Conv"
    )


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return small_model()


@pytest.fixture(scope="module")
def exported(model) -> Export:
    return export_keras_model(model, "small", ExportOptions())


def test_small_model_converts_and_matches_keras(exported):
    onnx.checker.check_model(exported.model, full_check=True)
    comparison, reference = parity(exported)
    assert comparison.verdict == "pass", comparison.outputs[0].reason
    assert comparison.worst_max_abs_scaled <= 1e-4
    assert float(reference["logits"].std()) > 0.05


def test_small_model_graph_has_onnx_ops_only(exported):
    ops = histogram(exported.model)
    assert not TF_ONLY_OPS & set(ops)
    assert ops["Erf"] == 1  # Erfc(x) -> 1 - Erf(x)
    assert conv_groups(exported.model) == [1, 4, 16, 16]  # stem, grouped g=4, depthwise x2
    assert tf_compat.unknown_ops(exported.model) == {}


def test_small_model_interface(exported):
    (spec,) = exported.inputs
    assert (spec.name, spec.shape, spec.layout, spec.dtype) == ("image", (1, 32, 32, 3), "NHWC", "float32")
    assert [o.name for o in exported.outputs] == ["logits"]
    assert [i.name for i in exported.model.graph.input] == ["image"]
    assert exported.exporter.startswith("tf2onnx ") and exported.exporter.endswith("(opset 17)")
    assert exported.framework == "keras"
    assert any("1 grouped Conv2D" in note for note in exported.notes)


def test_tracing_patch_is_undone_so_the_runner_runs_keras_untouched(exported):
    import importlib

    nn = importlib.import_module("keras.src.backend.tensorflow.nn")
    assert nn.conv.__qualname__ == "conv"  # the backend's own function, not the tracing replacement
    assert source_runner(exported).run(synthesize(exported.inputs, seed=3))["logits"].shape == (1, 10)


def test_heavy_models_are_traced_with_their_big_weights_as_inputs(model, monkeypatch):
    """Past HEAVY_KERAS_BYTES the weights of FED_BYTES or more are arguments of the traced function, bound
    as initializers afterwards: no weight input is left, the data movement tf2onnx put on them is folded,
    parity holds, and the fix passes make of it the graph they make of the plain export."""
    from onnxmend.exporters.keras import source
    from onnxmend.passes.infra.base import PassContext
    from onnxmend.passes.infra.catalogue import resolve
    from onnxmend.passes.infra.manager import run_passes

    plain = export_keras_model(model, "small", ExportOptions(dynamic_batch=True))
    monkeypatch.setattr(source, "HEAVY_KERAS_BYTES", 0)
    monkeypatch.setattr(weights_as_inputs, "FED_BYTES", 1024)  # the grouped kernels and the Dense one; not the rest
    exported = export_keras_model(model, "small", ExportOptions(dynamic_batch=True))
    graph = exported.model.graph
    check_model(exported.model, full_check=True)
    assert [i.name for i in graph.input] == ["image"]
    stored = [t for t in graph.initializer if lazy.is_lazy(t)]
    assert [t.name for t in stored] == [weights_as_inputs.WEIGHT_PREFIX + "3"]  # the Dense kernel, read as is
    store = Path(lazy.source(stored[0])[0]).parent
    constants = {t.name for t in graph.initializer}
    read = {n for node in graph.node for n in node.input}
    assert constants <= read
    assert not [n.op_type for n in graph.node if n.op_type in weights_as_inputs.FOLDED_OPS
                and all(i in constants for i in n.input if i)]
    assert any(note.startswith("traced with its 4 weights of 0.000976562 MiB or more as inputs")
               for note in exported.notes), exported.notes
    comparison, _ = parity(exported, batch=3)
    assert comparison.verdict == "pass" and comparison.worst_max_abs_scaled <= 1e-4
    ctx = PassContext(opset=17, preset="fix", framework="keras")
    fixed = [run_passes(e.model, resolve("fix", None), ctx)[0] for e in (plain, exported)]
    assert histogram(fixed[0]) == histogram(fixed[1])
    assert store.is_dir()
    del exported, graph, stored, fixed
    gc.collect()
    assert not store.exists(), "the weights' file goes with the export"


def test_tf2onnx_switches_are_restored_after_a_conversion(exported):
    import os

    from tf2onnx import graph as tf2onnx_graph

    assert "TF2ONNX_CATCH_ERRORS" not in os.environ
    assert tf2onnx_graph.Node.update_proto.__qualname__ == "Node.update_proto"


def test_dynamic_batch_runs_any_batch(model):
    exported = export_keras_model(model, "small", ExportOptions(dynamic_batch=True, opset=15))
    dim = exported.model.graph.input[0].type.tensor_type.shape.dim[0]
    assert not dim.HasField("dim_value")
    assert exported.inputs[0].shape[0] == "batch"
    assert exported.exporter.endswith("(opset 15)")
    comparison, reference = parity(exported, batch=3)
    assert comparison.verdict == "pass"
    assert reference["logits"].shape == (3, 10)


def test_sequence_model_with_grouped_conv1d():
    inp = keras.Input((20, 8), name="tokens")
    x = keras.layers.Conv1D(16, 3, padding="same", groups=4)(inp)
    out = keras.layers.LayerNormalization(name="features")(keras.layers.Conv1D(16, 5, groups=16)(x))
    model = keras.Model(inp, out)
    realistic_random_init(model, seed=0)
    exported = export_keras_model(model, "seq", ExportOptions())
    assert exported.inputs[0].layout == "NLC"
    assert not TF_ONLY_OPS & set(histogram(exported.model))
    assert conv_groups(exported.model) == [4, 16]
    assert parity(exported)[0].verdict == "pass"


def test_input_override_names_and_sizes_the_input():
    inp = keras.Input((None, None, 3))
    out = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, padding="same")(inp))
    model = keras.Model(inp, out)
    options = ExportOptions(inputs=(InputArg("pixels", (2, 40, 48, 3)),))
    exported = export_keras_model(model, "gap", options)
    assert [(s.name, s.shape) for s in exported.inputs] == [("pixels", (2, 40, 48, 3))]
    assert parity(exported)[0].verdict == "pass"


def test_auto_named_inputs_get_a_stable_name():
    out = keras.layers.Dense(3)(inp := keras.Input((5,)))
    assert export_keras_model(keras.Model(inp, out), "dense", ExportOptions()).inputs[0].name == "input"


def test_captured_normalization_constants_become_initializers(caplog):
    caplog.set_level("INFO", logger="onnxmend.exporters.keras.tf_compat")
    inp = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Normalization(mean=[120.0, 110.0, 100.0], variance=[3600.0, 3000.0, 2500.0])(inp)
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, name="features")(x))
    exported = export_keras_model(model, "norm", ExportOptions())
    assert [i.name for i in exported.model.graph.input] == ["image"]
    assert "folded 2 captured tensor(s) into initializers" in caplog.text
    assert [o.name for o in exported.outputs] == ["features"]
    assert parity(exported)[0].verdict == "pass"


class Subclassed(keras.Model):
    def __init__(self) -> None:
        super().__init__(name="subclassed")
        self.conv = keras.layers.Conv2D(8, 3, strides=2, padding="same")
        self.norm = keras.layers.BatchNormalization()
        self.pool = keras.layers.GlobalAveragePooling2D()

    def call(self, x, training=False):
        return self.pool(keras.activations.relu(self.norm(self.conv(x), training=training)))


def test_subclassed_model_needs_and_uses_input_shapes():
    model = Subclassed()
    batch = np.random.default_rng(0).standard_normal((4, 16, 16, 3)).astype(np.float32)
    model(batch)
    report = realistic_random_init(model, seed=0, calibration=[batch])
    assert (report.calibration, report.batch_norms_calibrated) == ("training-pass", 1)
    with pytest.raises(OnnxmendError, match="declares no inputs .*--input"):
        export_keras_model(model, "sub", ExportOptions())
    exported = export_keras_model(model, "sub", ExportOptions(inputs=(InputArg("x", (1, 16, 16, 3)),)))
    assert [s.name for s in exported.inputs] == ["x"] and [o.name for o in exported.outputs] == ["output"]
    comparison, reference = parity(exported)
    assert comparison.verdict == "pass" and float(reference["output"].std()) > 0.05


def test_input_override_that_does_not_fit_is_an_error(model):
    with pytest.raises(OnnxmendError, match=r"does not fit the model's input shape \?x32x32x3"):
        export_keras_model(model, "small", ExportOptions(inputs=(InputArg("image", (1, 64, 64, 3)),)))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_model_file_round_trip(model, tmp_path, suffix):
    path = tmp_path / f"small{suffix}"
    model.save(path)
    exported = export(str(path))
    assert exported.source == str(path)
    comparison, reference = parity(exported, seed=5)
    assert comparison.verdict == "pass"
    expected = model(synthesize(exported.inputs, seed=5)["image"], training=False).numpy()
    np.testing.assert_allclose(reference["logits"], expected, rtol=0, atol=1e-6)


def test_saved_model_directory(tmp_path):
    model = small_model(grouped=False)
    model.export(str(tmp_path / "sm"), verbose=False)
    exported = export(str(tmp_path / "sm"))
    assert exported.framework == "tensorflow"
    assert exported.inputs[0].layout == "NHWC" and exported.inputs[0].shape == (1, 32, 32, 3)
    comparison, reference = parity(exported, seed=2)
    assert comparison.verdict == "pass"
    feeds = synthesize(exported.inputs, seed=2)
    expected = model(next(iter(feeds.values())), training=False).numpy()
    np.testing.assert_allclose(next(iter(reference.values())), expected, rtol=0, atol=1e-5)


def test_weights_option_loads_weights_into_the_model(model, tmp_path):
    weights = tmp_path / "trained.weights.h5"
    model.save_weights(weights)
    other = small_model()
    realistic_random_init(other, seed=7)
    other.save(tmp_path / "other.keras")
    exported = export_keras_source(str(tmp_path / "other.keras"), ExportOptions(weights=str(weights)))
    feeds = synthesize(exported.inputs, seed=4)
    expected = model(feeds["image"], training=False).numpy()
    np.testing.assert_allclose(source_runner(exported).run(feeds)["logits"], expected, rtol=0, atol=1e-6)
    assert parity(exported, seed=4)[0].verdict == "pass"


def test_realistic_init_is_seeded_and_undoes_tiny_layer_scale():
    def build() -> keras.Model:
        inp = keras.Input((8, 8, 4))
        x = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3)(inp))
        return keras.Model(inp, LayerScale()(x))

    first, second, third = build(), build(), build()
    realistic_random_init(first, seed=3)
    realistic_random_init(second, seed=3)
    report = realistic_random_init(third, seed=4)
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(first.weights[0].numpy(), third.weights[0].numpy())
    assert (report.layer_scales, report.batch_norms_calibrated, report.calibration) == (1, 1, "graph")
    scale = first.layers[-1].scale.numpy()
    assert scale.min() >= 0.05 and scale.max() <= 0.5


def test_realistic_init_draws_in_chunks_the_values_of_one_float64_draw(monkeypatch):
    """Chunked drawing (no float64 copy of a big kernel) gives bit for bit the values one draw gave."""
    from onnxmend.exporters.keras import init

    monkeypatch.setattr(init, "_DRAW_CHUNK", 1000)
    for sample, a, b in (("normal", 0.0, 0.3), ("uniform", 0.5, 1.5)):
        expected = getattr(np.random.default_rng(11), sample)(a, b, (37, 29, 3)).astype(np.float32)
        rng = np.random.default_rng(11)
        drawn = init._drawn(getattr(rng, sample), a, b, (37, 29, 3), np.dtype(np.float32))
        assert drawn.dtype == np.float32
        np.testing.assert_array_equal(drawn, expected)


def test_realistic_init_standardises_batch_norm_inputs():
    inp = keras.Input((16, 16, 3))
    conv = keras.layers.Conv2D(8, 3, use_bias=False)(inp)
    model = keras.Model(inp, keras.layers.BatchNormalization(center=False, scale=False)(conv))
    batch = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
    realistic_random_init(model, seed=0, calibration=[batch])
    out = model(batch, training=False).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1.0, atol=1e-2)  # eps 1e-3 against var ~1e3+


def test_unknown_application_lists_valid_names():
    with pytest.raises(BadSourceError, match=r"Unknown Keras application 'MobileNetV9'.*MobileNetV2"):
        export("keras:MobileNetV9")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_unreadable_model_file(tmp_path, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"not a model")
    with pytest.raises(BadSourceError, match=rf"Cannot load .*broken\{suffix} as a Keras model"):
        export(str(path))


def test_directory_that_is_not_a_saved_model(tmp_path):
    with pytest.raises(BadSourceError, match="is a directory but not a SavedModel"):
        export_keras_source(str(tmp_path), ExportOptions())


def test_missing_or_mismatched_weights(model, tmp_path):
    model.save(tmp_path / "small.keras")
    with pytest.raises(BadSourceError, match="Weights file .* does not exist"):
        export_keras_source(str(tmp_path / "small.keras"), ExportOptions(weights=str(tmp_path / "none.weights.h5")))
    other = keras.Model(inp := keras.Input((4,)), keras.layers.Dense(2)(inp))
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(BadSourceError, match="Cannot load weights from .*other.weights.h5 into small"):
        export_keras_source(str(tmp_path / "small.keras"), ExportOptions(weights=str(tmp_path / "other.weights.h5")))


def test_weights_that_leave_layers_uninitialised_are_an_error(tmp_path):
    class PartlyLoads:  # Keras only warns when it skips parts of a model; that must not pass silently
        name = "partial"

        def load_weights(self, path: str) -> None:
            warnings.warn("Skipping nested container at 'x'. Affected layers will retain their freshly-initialized weights.")

    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"")
    with pytest.raises(BadSourceError, match="do not cover partial"):
        load_weights(PartlyLoads(), str(weights))


def test_missing_tensorflow_is_one_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependencyError, match=r"needs TensorFlow.*\[tf\]"):
        tf_compat.require("tensorflow")


def test_unknown_ops_names_ops_onnx_lacks():
    node = onnx.helper.make_node("Erfc", ["x"], ["y"])
    graph = onnx.helper.make_graph(
        [node, onnx.helper.make_node("Erf", ["y"], ["z"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [1])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    assert tf_compat.unknown_ops(model) == {"Erfc": 1}


# --- keras.applications (slow) -------------------------------------------------------------------

APPS = ["MobileNetV2", "EfficientNetB0", "ResNet50", "ConvNeXtTiny"]


@dataclass
class AppRun:
    exported: Export
    comparison: Comparison
    reference: dict[str, np.ndarray]


@pytest.fixture(scope="module", params=APPS)
def app(request) -> AppRun:
    exported = export_keras_source(f"keras:{request.param}", ExportOptions())
    comparison, reference = parity(exported)
    return AppRun(exported, comparison, reference)


@pytest.mark.slow
def test_application_matches_keras(app):
    assert app.comparison.verdict == "pass", app.comparison.outputs[0].reason
    assert app.comparison.worst_max_abs_scaled <= 1e-4
    assert app.comparison.outputs[0].cosine > 0.999999


@pytest.mark.slow
def test_application_is_plain_onnx(app):
    onnx.checker.check_model(app.exported.model)
    ops = histogram(app.exported.model)
    assert not TF_ONLY_OPS & set(ops)
    create_session(app.exported.model, provider="cpu", opt_level="all")  # loads with ORT's optimizers too
    if "ConvNeXt" in app.exported.source:
        assert ops["Erf"] > 0 and max(conv_groups(app.exported.model)) > 1


@pytest.mark.slow
def test_application_output_is_not_degenerate(app):
    (logits,) = app.reference.values()
    assert logits.shape == (1, 1000)
    assert float(logits.std()) > 0.05
    zeros = {name: np.zeros_like(value) for name, value in app.reference.items()}
    assert Comparator().compare(zeros, zeros).verdict == "degenerate"


@pytest.mark.slow
def test_application_with_weights_and_input_size(tmp_path):
    trained = keras.applications.MobileNetV2(weights=None, classifier_activation=None, input_shape=(32, 32, 3))
    realistic_random_init(trained, seed=5, value_range=(-1.0, 1.0))
    trained.save_weights(tmp_path / "mnv2.weights.h5")
    options = ExportOptions(inputs=(InputArg("pixels", (1, 32, 32, 3)),), weights=str(tmp_path / "mnv2.weights.h5"))
    exported = export("keras:MobileNetV2", options)
    assert [(s.name, s.shape, s.value_range) for s in exported.inputs] == [("pixels", (1, 32, 32, 3), (-1.0, 1.0))]
    assert exported.notes[0].startswith("weights loaded from")
    comparison, reference = parity(exported)
    assert comparison.verdict == "pass"
    expected = trained(synthesize(exported.inputs, seed=1)["pixels"], training=False).numpy()
    # graph vs eager TF differ in the last bits (up to ~2e-4 on logits of ~10 with oneDNN's AVX-512 kernels);
    # other weights would differ by O(1)
    np.testing.assert_allclose(reference["predictions"], expected, rtol=1e-3, atol=1e-3)


def test_realistic_init_assigns_big_weights_block_by_block_with_the_same_values(monkeypatch):
    """A variable past the draw chunk is assigned a block of rows at a time: the values are those of one
    whole-array draw (the kernel and the bias after it, from the same generator)."""
    from onnxmend.exporters.keras import init

    def build() -> keras.Model:
        inp = keras.Input((64,))
        return keras.Model(inp, keras.layers.Dense(48)(inp))

    whole, blocks = build(), build()
    realistic_random_init(whole, seed=5)
    monkeypatch.setattr(init, "_ASSIGN_BLOCK", 100)  # 2 rows of 48 per block: 32 blocks for the kernel
    monkeypatch.setattr(init, "_DRAW_CHUNK", 30)
    realistic_random_init(blocks, seed=5)
    for a, b in zip(whole.weights, blocks.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_calibration_batch_shrinks_for_big_inputs(monkeypatch):
    """Keras holds every activation of the calibration run: a big input gets a smaller batch, never 0."""
    from onnxmend.exporters.keras import init

    inp = keras.Input((64, 64, 3))
    model = keras.Model(inp, keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inp)))
    rng = np.random.default_rng(0)
    assert [b.shape for b in init._calibration_batch(model, rng, None)] == [(4, 64, 64, 3)]
    monkeypatch.setattr(init, "CALIBRATION_VALUES", 2 * 64 * 64 * 3 + 5)
    assert [b.shape for b in init._calibration_batch(model, rng, None)] == [(2, 64, 64, 3)]
    monkeypatch.setattr(init, "CALIBRATION_VALUES", 10)
    assert [b.shape for b in init._calibration_batch(model, rng, None)] == [(1, 64, 64, 3)]
    report = init.realistic_random_init(model, seed=0)
    assert report.batch_norms_calibrated == 1 and report.calibration == "graph"
