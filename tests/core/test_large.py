"""Large models: sizes estimated without serialising, the checker and shape inference on a skeleton, external
data written without touching the model — and the whole fix pipeline on that path (here with the size
limit lowered so that a few MB count as large)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from bench.large_model import build, tensor_hashes
from onnxmend.core import large, weight_files
from onnxmend.core.fileio import load_model, save_model
from onnxmend.core.graph import infer_shapes

WIDTH = 1024  # 4 MiB weights: past the 1 MiB a skeleton strips


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    return build(20_000_000, WIDTH)


def test_size_is_estimated_from_dims_and_dtypes(model) -> None:
    assert large.model_bytes(model) == sum(len(t.raw_data) for t in model.graph.initializer) + 2 * 4


def test_a_skeleton_keeps_names_dims_and_dtypes_but_not_the_weights(model) -> None:
    bones = large.skeleton(model)
    assert bones.ByteSize() < 100_000 < model.ByteSize() // 100
    assert [(t.name, list(t.dims), t.data_type) for t in bones.graph.initializer] == [
        (t.name, list(t.dims), t.data_type) for t in model.graph.initializer]
    stripped = [t.name for t in bones.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert stripped == [t.name for t in model.graph.initializer if t.name.startswith("w")]
    assert list(bones.graph.node) == list(model.graph.node)


def test_large_models_are_checked_and_inferred_on_their_skeleton(model, monkeypatch) -> None:
    monkeypatch.setattr(large, "LARGE_MODEL_BYTES", 1_000_000)
    large.check_model(model, full_check=True)
    broken = onnx.ModelProto()
    broken.CopyFrom(model)
    broken.graph.node[0].input[1] = "missing"
    with pytest.raises(onnx.checker.ValidationError, match="missing"):
        large.check_model(broken)
    inferred = infer_shapes(model, strict=True)
    assert inferred is model  # annotated in place, not copied
    shapes = {vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.value_info}
    assert shapes["mm0"] == ["batch", WIDTH]


def test_heavy_models_travel_to_the_graph_worker_as_their_skeleton(model, monkeypatch) -> None:
    """Past HEAVY_MODEL_BYTES the checker and the worker's inference skip the weights (keras VGG16's fix:
    61.6 s -> 19.6 s, its graph workers 3.9 GB -> gone); the caller's model is only annotated in place when
    asked."""
    from onnxmend.core import isolated

    monkeypatch.setattr(large, "HEAVY_MODEL_BYTES", 1_000_000)
    sent: list[int] = []
    call = isolated.Worker.call

    def spy(self, target, **kwargs):
        if "data" in kwargs:
            sent.append(len(kwargs["data"]))
        return call(self, target, **kwargs)

    monkeypatch.setattr(isolated.Worker, "call", spy)
    plain = onnx.ModelProto()
    plain.CopyFrom(model)
    del plain.graph.value_info[:]
    before = plain.SerializeToString()
    inferred = isolated.infer_shapes_isolated(plain, strict=True)
    assert sent and sent[-1] < 100_000 < len(before) // 100
    assert inferred is not plain and plain.SerializeToString() == before
    shapes = {vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in inferred.graph.value_info}
    assert shapes["mm0"] == ["batch", WIDTH]
    assert tensor_hashes(inferred) == tensor_hashes(plain)
    assert isolated.infer_shapes_isolated(plain, in_place=True) is plain and plain.graph.value_info
    broken = onnx.ModelProto()
    broken.CopyFrom(model)
    broken.graph.node[0].input[1] = "missing"
    with pytest.raises(onnx.checker.ValidationError, match="missing"):
        large.check_model(broken)


def test_external_data_is_written_without_touching_the_model(model, tmp_path) -> None:
    before = model.SerializeToString()
    path = save_model(model, tmp_path / "m.onnx", external_threshold=0)
    assert model.SerializeToString() == before
    offsets = [int(e.value) for t in onnx.load(str(path), load_external_data=False).graph.initializer
               for e in t.external_data if e.key == "offset"]
    assert offsets and all(o % large.ALIGNMENT == 0 for o in offsets)
    assert tensor_hashes(load_model(path)) == tensor_hashes(model)


def test_the_fix_pipeline_runs_a_large_model_verified(model, tmp_path, monkeypatch) -> None:
    # Past the limit the manager checks skeletons and the gate ships the model to onnxruntime as a file
    # with external data; the passes still run and are verified.
    from onnxmend.flows.fix import fix

    monkeypatch.setattr(large, "LARGE_MODEL_BYTES", 1_000_000)
    source = save_model(model, tmp_path / "in" / "m.onnx", external_threshold=0)
    result = fix(source, tmp_path / "out" / "m.onnx")
    assert result.exit_code == 0 and result.pipeline.verified
    # the Mul by a folded 1.0 is then removed as neutral
    assert {r.name for r in result.pipeline.records if r.status == "applied"} == {
        "remove-identity", "fold-constants", "remove-neutral-elementwise"}
    fixed = load_model(tmp_path / "out" / "m.onnx")
    after = tensor_hashes(fixed)
    assert all(after[name] == digest for name, digest in tensor_hashes(model).items())
    assert np.array_equal(onnx.numpy_helper.to_array(fixed.graph.initializer[0]),
                          onnx.numpy_helper.to_array(model.graph.initializer[0]))


def test_heavy_models_travel_to_the_onnxruntime_worker_as_a_file(model, monkeypatch) -> None:
    """Past HEAVY_MODEL_BYTES the isolated session loads the model from a file with external data written
    one tensor at a time (no serialised, pickled and framed copies of the weights); outputs are unchanged."""
    from onnxmend.runtime.runners import isolated
    from onnxmend.runtime.runners.ort_runner import OnnxRunner

    feeds = {"x": np.random.default_rng(0).standard_normal((2, WIDTH)).astype(np.float32)}
    expected = OnnxRunner(model).run(feeds)
    loads: list[tuple[bool, bool]] = []
    call_load = isolated.IsolatedOnnxRunner._call_load

    def spy(self, key, data, path, extra=None):
        loads.append((data is None, path is not None, (extra or {}).get("prepack", True)))
        return call_load(self, key, data, path, extra)

    monkeypatch.setattr(isolated.IsolatedOnnxRunner, "_call_load", spy)
    monkeypatch.setattr(large, "HEAVY_MODEL_BYTES", 1_000_000)
    runner = isolated.IsolatedOnnxRunner(model, "the test model", isolated.shared_worker())
    try:
        got = runner.run(feeds)
    finally:
        runner.close()
    assert loads == [(True, True, False)]  # from a file, without packing a second copy of the weights
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6)  # unpacked weights: another GEMM path
    monkeypatch.setattr(large, "HEAVY_MODEL_BYTES", 1 << 40)
    small = isolated.IsolatedOnnxRunner(model, "the test model", isolated.shared_worker())
    try:
        small.run(feeds)
    finally:
        small.close()
    assert loads[-1] == (False, False, True)


def test_heavy_models_are_written_one_initializer_at_a_time(model, tmp_path, monkeypatch) -> None:
    """The streamed encoding parses to the same model (re-serialised: the same bytes), and save_model uses
    it past HEAVY_MODEL_BYTES (onnx.save_model would serialise the whole model at once)."""
    import io

    tagged = onnx.ModelProto()
    tagged.CopyFrom(model)
    onnx.helper.set_model_props(tagged, {"onnxmend.source": "test"})
    tagged.graph.doc_string = "graph fields before and after the initializers survive"
    stream = io.BytesIO()
    weight_files.write_streamed(tagged, stream)
    assert onnx.load_from_string(stream.getvalue()).SerializeToString() == tagged.SerializeToString()

    import onnxmend.core.fileio as fileio

    written: list[int] = []
    streamed = weight_files.write_streamed
    monkeypatch.setattr(fileio, "write_streamed", lambda m, s: (written.append(1), streamed(m, s)))
    monkeypatch.setattr(large, "HEAVY_MODEL_BYTES", 1_000_000)
    path = save_model(tagged, tmp_path / "m.onnx")
    assert written == [1] and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    assert tensor_hashes(load_model(path)) == tensor_hashes(tagged)
    assert onnx.load(str(path)).SerializeToString() == tagged.SerializeToString()
    broken = onnx.ModelProto()
    broken.CopyFrom(tagged)
    broken.graph.initializer[0].raw_data = broken.graph.initializer[0].raw_data[:-4]  # one value short
    with pytest.raises(ValueError, match="encodes to"):
        save_model(broken, tmp_path / "broken.onnx")
    assert not (tmp_path / "broken.onnx").exists()


def test_spilled_models_read_their_big_weights_from_one_file(model, tmp_path) -> None:
    """spill() writes the big initializers once (page-aligned) and returns a copy that reads them lazily;
    saved inline (streamed from the file) or with external data, it is the model it was."""
    import io

    from onnxmend.core import lazy

    before = model.SerializeToString()
    spilled = weight_files.spill(model, tmp_path / "weights.bin", min_bytes=1_000_000)
    assert model.SerializeToString() == before
    stored = [t for t in spilled.graph.initializer if lazy.is_lazy(t)]
    assert [t.name for t in stored] == [t.name for t in model.graph.initializer if t.name.startswith("w")]
    assert all(lazy.source(t)[1] % large.ALIGNMENT == 0 for t in stored)
    assert spilled.ByteSize() < 100_000 and (tmp_path / "weights.bin").stat().st_size >= len(stored) * WIDTH * WIDTH * 4
    stream = io.BytesIO()
    weight_files.write_streamed(spilled, stream)  # the file's bytes copied in as raw_data, a chunk at a time
    assert onnx.load_from_string(stream.getvalue()).SerializeToString() == before
    assert tensor_hashes(load_model(save_model(spilled, tmp_path / "out" / "m.onnx", external_threshold=0))) == \
        tensor_hashes(model)
    # below 64 MiB and saved inline: still a model whose weights are in a file, so streamed with them copied in
    assert large.has_lazy(spilled) and large.is_heavy(spilled) and large.model_bytes(spilled) < large.HEAVY_MODEL_BYTES
    inline = save_model(spilled, tmp_path / "inline" / "m.onnx")
    assert sorted(p.name for p in inline.parent.iterdir()) == ["m.onnx"]
    assert onnx.load(str(inline)).SerializeToString() == before


def test_convert_keeps_a_heavy_exports_weights_in_a_file_that_goes_with_the_export(model) -> None:
    import gc
    from pathlib import Path

    from onnxmend.core import lazy
    from onnxmend.exporters.base import Export
    from onnxmend.flows.convert import keep_weights_on_disk

    exported = Export(model, [], [], None, "onnx", "test", "test")
    keep_weights_on_disk(exported)
    stored = [t for t in exported.model.graph.initializer if lazy.is_lazy(t)]
    assert stored and exported.model is not model
    assert {t.name: onnx.numpy_helper.to_array(lazy.materialised(t)).tobytes() for t in stored} == {
        t.name: t.raw_data for t in model.graph.initializer if t.name in {s.name for s in stored}}
    folder = Path(lazy.source(stored[0])[0]).parent
    assert folder.is_dir()
    del exported, stored
    gc.collect()
    assert not folder.exists()
