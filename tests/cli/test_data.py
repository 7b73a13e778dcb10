"""--load-inputs / --image-preprocess / --save-outputs on the command line: every form, every refusal as one
sentence with exit code 2, the outputs saved are onnxruntime's on the loaded inputs, inputs never modified."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from onnxmend.cli import main
from onnxmend.core.specs import specs_from_model
from onnxmend.runtime.data import read_inputs
from onnxmend.runtime.data.formats import read_arrays
from onnxmend.runtime.runners import onnx_runner
from tests.builders import F, conv_relu_model, make_model, node


def onnxmend(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (each subprocess would pay the imports again)."""
    monkeypatch.setattr(sys, "argv", ["onnxmend", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    out, err = capsys.readouterr()
    return int(stop.value.code or 0), out, err


def image_model(shape: list[int]) -> onnx.ModelProto:
    return make_model([node("Relu", ["x"], "y")], {"x": (shape, F)}, ["y"])


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    onnx.save(image_model([1, 3, 4, 6]), tmp_path / "rgb.onnx")
    onnx.save(image_model([1, 1, 4, 6]), tmp_path / "gray.onnx")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "x.npz", x=rng.standard_normal((1, 3, 4, 6)).astype(np.float32))
    np.save(tmp_path / "x.npy", rng.standard_normal((3, 3, 4, 6)).astype(np.float32))  # 3 samples of batch 1
    (tmp_path / "x.json").write_text(json.dumps([{"x": rng.standard_normal((1, 3, 4, 6)).tolist()} for _ in range(2)]))
    (tmp_path / "imgs").mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    return tmp_path


def hashes(folder: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("given, summary", [
    ("x.npz", r"loaded from x\.npz \(1 sample\)"),
    ("x.npy", r"loaded from x\.npy \(3 samples; split into samples of batch 1, the model's fixed batch\)"),
    ("x.json", r"loaded from x\.json \(2 samples\)"),
    ("imgs", r"loaded from imgs/ \(2 images in 2 batches of 1, resized to 4x6, RGB, scaled to \[0, 1\], NCHW\)"),
])
def test_validate_on_each_form_says_which_inputs_and_saves_onnxruntimes_outputs(work, capsys, monkeypatch, given, summary):
    before = hashes(work)
    code, out, err = onnxmend(capsys, monkeypatch, "validate", "rgb.onnx", "--source", "rgb.onnx",
                              "--load-inputs", given, "--save-outputs", "out.json")
    assert code == 0, err
    assert re.search(r"inputs: " + summary, " ".join(out.split())), out
    assert "outputs: out.json" in out
    assert all(hashes(work)[p] == h for p, h in before.items())  # the inputs are untouched
    saved = read_arrays(work / "out.json")
    model = onnx.load(work / "rgb.onnx")
    loaded = read_inputs(work / given).fit(specs_from_model(model))
    assert len(saved) == len(loaded.samples)
    runner = onnx_runner(model)
    for sample, feeds in zip(saved, loaded.samples):
        np.testing.assert_allclose(sample["onnx/y"], runner.run(feeds)["y"], rtol=1e-6)
        np.testing.assert_allclose(sample["source/y"], runner.run(feeds)["y"], rtol=1e-6)


def test_report_json_of_validate_states_the_inputs(work, capsys, monkeypatch):
    code, out, _ = onnxmend(capsys, monkeypatch, "validate", "rgb.onnx", "--source", "rgb.onnx", "--json")
    assert code == 0
    assert json.loads(out)["inputs"]["summary"] == "synthetic (seed 0, sizes x:1x3x4x6)"


def _pickled(path: Path) -> None:
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)


BAD = {
    "missing input": (lambda w: np.savez(w / "in.npz", a=np.ones(1), b=np.ones(1)), "in.npz", "rgb.onnx",
                      r"in\.npz has no array for input x \(the model takes x; the file holds a, b\)"),
    "extra input": (lambda w: np.savez(w / "in.npz", x=np.ones((1, 3, 4, 6)), z=np.ones(1)), "in.npz", "rgb.onnx",
                    r"holds an array 'z', which is not an input of the model \(its inputs: x\)"),
    "wrong rank": (lambda w: np.save(w / "in.npy", np.ones((3, 4, 6))), "in.npy", "rgb.onnx",
                   r"has 3 axes \(3x4x6\), but input x takes 4 \(1x3x4x6\); add the batch axis"),
    "3-channel image into a 1-channel model": (lambda w: None, "imgs", "gray.onnx",
                                               r"is a colour image, but input x takes 1 channel"),
    "an empty folder": (lambda w: (w / "empty").mkdir(), "empty", "rgb.onnx", r"empty holds no image files"),
    "a corrupt npz": (lambda w: (w / "in.npz").write_bytes(b"PK\x03\x04broken"), "in.npz", "rgb.onnx",
                      r"in\.npz is not a readable \.npz file"),
    "a pickled object array": (lambda w: _pickled(w / "in.npy"), "in.npy", "rgb.onnx",
                               r"holds Python objects, which can only be read by unpickling them"),
    "a missing file": (lambda w: None, "nope.npz", "rgb.onnx", r"nope\.npz does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_inputs_that_do_not_fit_are_one_sentence_and_exit_two(work, capsys, monkeypatch, case):
    make, given, model, sentence = BAD[case]
    make(work)
    before = hashes(work)
    code, out, err = onnxmend(capsys, monkeypatch, "validate", model, "--source", model, "--load-inputs", given,
                              "--save-outputs", "out.npz")
    assert code == 2, (out, err)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(sentence, err), err
    assert hashes(work) == before  # nothing written, nothing modified


@pytest.mark.parametrize("args, sentence", [
    (["validate", "rgb.onnx", "--source", "rgb.onnx", "--image-preprocess", "unit"],
     r"--image-preprocess says how a folder of images given with --load-inputs is read"),
    (["bench", "rgb.onnx", "--load-inputs", "x.npz", "--batch", "2"], r"--load-inputs and --batch cannot be used together"),
    (["quantize", "rgb.onnx", "-o", "q", "--load-inputs", "x.npz", "--batches", "2"],
     r"--load-inputs and --batches cannot be used together"),
    (["fix", "rgb.onnx", "-o", "f.onnx", "--load-inputs", "x.npz", "--input", "x:1x3x4x6"],
     r"--load-inputs and --input cannot be used together: --load-inputs gives the gate its inputs"),
    (["fix", "rgb.onnx", "-o", "f.onnx", "--load-inputs", "x.npz", "--no-verify"],
     r"--load-inputs gives the gate its inputs, and --no-verify turns the gate off; add --save-outputs"),
    (["validate", "rgb.onnx", "--source", "rgb.onnx", "--load-inputs", "x.npz", "--save-outputs", "x.npz", "--force"],
     r"--save-outputs x\.npz is an input of this command"),
    (["validate", "rgb.onnx", "--source", "rgb.onnx", "--save-outputs", "out.txt"], r"ending in \.npz or \.json"),
])
def test_conflicting_or_unsafe_options_exit_two(work, capsys, monkeypatch, args, sentence):
    before = hashes(work)
    code, out, err = onnxmend(capsys, monkeypatch, *args)
    assert code == 2, (out, err)
    assert re.search(sentence, err), err
    assert hashes(work) == before


def test_a_users_file_is_kept_unless_force(work, capsys, monkeypatch):
    (work / "mine.npz").write_bytes(b"the user's own")
    args = ["validate", "rgb.onnx", "--source", "rgb.onnx", "--save-outputs", "mine.npz"]
    code, _, err = onnxmend(capsys, monkeypatch, *args)
    assert code == 2 and "mine.npz exists and was not written by onnxmend; choose another --save-outputs file" in err
    assert (work / "mine.npz").read_bytes() == b"the user's own"
    code, _, err = onnxmend(capsys, monkeypatch, *args, "--force")
    assert code == 0, err
    assert np.load(work / "mine.npz").files == ["onnx/y", "source/y"]
    code, _, err = onnxmend(capsys, monkeypatch, *args)  # onnxmend's own file now: replaced without --force
    assert code == 0, err


def test_fix_gates_on_the_loaded_inputs_and_saves_both_graphs(work, capsys, monkeypatch):
    code, out, err = onnxmend(capsys, monkeypatch, "fix", "rgb.onnx", "-o", "f.onnx", "--load-inputs", "x.json",
                              "--save-outputs", "f.npz", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["inputs_used"]["summary"] == "loaded from x.json (2 samples)"
    saved = np.load(work / "f.npz")
    assert sorted(saved.files) == ["sample0/onnx/y", "sample0/source/y", "sample1/onnx/y", "sample1/source/y"]
    x = np.asarray(json.loads((work / "x.json").read_text())[1]["x"], np.float32)
    np.testing.assert_array_equal(saved["sample1/source/y"], np.maximum(x, 0))


def test_quantize_gates_on_the_loaded_inputs(work, capsys, monkeypatch):
    onnx.save(conv_relu_model(), work / "conv.onnx")
    np.savez(work / "c.npz", x=np.random.default_rng(5).standard_normal((2, 3, 8, 8)).astype(np.float32))
    code, out, err = onnxmend(capsys, monkeypatch, "quantize", "conv.onnx", "-o", "q", "--ops", "Conv",
                              "--load-inputs", "c.npz", "--runs", "0", "--save-outputs", "q.npz")
    assert code in (0, 1), err
    summary = "loaded from c.npz (2 samples; split into samples of batch 1, the model's fixed batch)"
    assert f"inputs: {summary}" in " ".join(out.split())
    assert json.loads((work / "q" / "manifest.json").read_text())["inputs"]["summary"] == summary
    x = np.load(work / "c.npz")["x"]
    np.testing.assert_allclose(np.load(work / "q.npz")["sample1/fp32/y"], onnx_runner(conv_relu_model()).run({"x": x[1:]})["y"])


def test_bench_times_the_first_loaded_batch(work, capsys, monkeypatch):
    code, out, err = onnxmend(capsys, monkeypatch, "bench", "rgb.onnx", "--load-inputs", "x.npy", "--runs", "2",
                              "--rounds", "1", "--no-memory", "-o", "b", "--save-outputs", "b.npz")
    assert code == 0, err
    assert ("inputs: loaded from x.npy (3 samples; split into samples of batch 1, the model's fixed batch; the first "
            "sample timed)") in " ".join(out.split())
    assert json.loads((work / "b" / "bench.json").read_text())["inputs"]["kind"] == "loaded"
    first = np.load(work / "x.npy")[:1]
    np.testing.assert_array_equal(np.load(work / "b.npz")["rgb/y"], np.maximum(first, 0))


def test_convert_states_the_inputs_in_the_terminal_and_both_reports(work, capsys, monkeypatch):
    onnx.save(conv_relu_model(), work / "conv.onnx")
    np.savez(work / "c.npz", x=np.random.default_rng(6).standard_normal((3, 3, 8, 8)).astype(np.float32))
    code, out, err = onnxmend(capsys, monkeypatch, "convert", "conv.onnx", "-o", "out", "--load-inputs", "c.npz",
                              "--save-outputs", "out/outputs.npz")
    assert code == 0, err
    summary = "loaded from c.npz (3 samples; split into samples of batch 1, the model's fixed batch)"
    assert f"inputs: {summary}" in " ".join(out.split()) and "outputs: out/outputs.npz" in out
    report = json.loads((work / "out" / "report.json").read_text())
    assert report["inputs_used"]["summary"] == summary == report["gate_inputs_used"]["summary"]
    assert report["saved_outputs"] == "out/outputs.npz"
    assert f"Inputs: {summary}." in (work / "out" / "report.md").read_text()
    saved = np.load(work / "out" / "outputs.npz")
    fixed = onnx_runner(onnx.load(work / "out" / "model.onnx"))  # validation runs ORT with its optimisations on
    np.testing.assert_allclose(saved["sample2/onnx/y"], fixed.run({"x": np.load(work / "c.npz")["x"][2:]})["y"],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_convert_a_keras_model_on_a_folder_of_images_end_to_end(work, capsys, monkeypatch):
    """NHWC images for the Keras source; model.onnx takes NCHW; its saved outputs are its own (NCHW)."""
    code, out, err = onnxmend(capsys, monkeypatch, "convert", "zoo:tf-same-conv-keras", "-o", "k",
                              "--load-inputs", "imgs", "--image-preprocess", "symmetric", "--save-outputs", "k.npz",
                              "--bench")
    assert code == 0, err
    text = " ".join(out.split())
    assert "inputs: loaded from imgs/ (2 images in 2 batches of 1, resized to 32x32, RGB, scaled to [-1, 1], NHWC)" in text
    saved = np.load(work / "k.npz")
    for i in range(2):
        onnx_out, source_out = saved[f"sample{i}/onnx/conv2"], saved[f"sample{i}/source/conv2"]
        assert onnx_out.shape[1] == source_out.shape[3]  # NCHW beside NHWC
        np.testing.assert_allclose(onnx_out.transpose(0, 2, 3, 1), source_out, atol=1e-4)
    bench = json.loads((work / "k" / "bench.json").read_text())
    assert bench["inputs"]["summary"].startswith("loaded from imgs/") and bench["settings"]["batches"] == [1]
