"""Loaded inputs matched to an ONNX file: its own layout, or the source's when onnxmend changed the interface;
the statement of which inputs were used; the --save-outputs path claimed before anything runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.interface import write_interface
from onnxmend.runtime.data import (
    DataOptions,
    check_save_path,
    fit_model,
    read_inputs,
    save_outputs,
    synthetic_inputs,
    to_model_layout,
)
from onnxmend.runtime.data.formats import read_arrays
from tests.builders import F, make_model, node

NHWC_TO_NCHW = [0, 3, 1, 2]


def nchw_model_from_nhwc_source():
    """x [1,3,4,5] (NCHW; the source took [1,4,5,3]) → Relu → y [1,3,4,5] (the source gave [1,4,5,3])."""
    model = make_model([node("Relu", ["x"], "y")], {"x": ([1, 3, 4, 5], F)}, ["y"])
    write_interface(model, {"x": {"kind": "input", "perm": NHWC_TO_NCHW, "was": "NHWC", "now": "NCHW"},
                            "y": {"kind": "output", "perm": NHWC_TO_NCHW, "was": "NHWC", "now": "NCHW"}})
    return model


def test_arrays_as_the_file_takes_them_are_turned_into_the_sources_layout(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 5)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    loaded = fit_model(read_inputs(tmp_path / "in.npz"), nchw_model_from_nhwc_source())
    np.testing.assert_array_equal(loaded.samples[0]["x"], x.transpose(0, 2, 3, 1))
    assert loaded.notes == []


def test_arrays_in_the_sources_layout_are_accepted_and_said_so(tmp_path: Path) -> None:
    x = np.ones((1, 4, 5, 3), np.float32)
    np.save(tmp_path / "x.npy", x)
    loaded = fit_model(read_inputs(tmp_path / "x.npy"), nchw_model_from_nhwc_source())
    np.testing.assert_array_equal(loaded.samples[0]["x"], x)
    assert "given in the source's layout: x 1x4x5x3" in loaded.used().summary


def test_arrays_in_neither_layout_get_the_files_sentence(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((1, 5, 5, 5), np.float32))
    with pytest.raises(OnnxmendError, match=r"but input x takes 1x3x4x5 \(axis 1 must be 3\)"):
        fit_model(read_inputs(tmp_path / "x.npy"), nchw_model_from_nhwc_source())


def test_outputs_go_back_to_what_the_file_returns() -> None:
    restored = {"y": np.zeros((1, 4, 5, 3))}
    assert to_model_layout(restored, nchw_model_from_nhwc_source())["y"].shape == (1, 3, 4, 5)


def test_inputs_used_say_synthetic_or_loaded(tmp_path: Path) -> None:
    used = synthetic_inputs([0, 1, 2], [{"x": (1, 3, 8, 8)}] * 3)
    assert used.summary == "synthetic (seeds 0..2, 3 batches, sizes x:1x3x8x8)"
    np.savez(tmp_path / "in.npz", **{f"sample{i}/x": np.ones((1, 3, 4, 5)) for i in range(3)})
    loaded = fit_model(read_inputs(tmp_path / "in.npz"), nchw_model_from_nhwc_source())
    assert loaded.used(2).summary == f"loaded from {tmp_path / 'in.npz'} (3 samples; the first 2 samples compared)"
    assert loaded.used().to_json()["compared"] == 3


def test_missing_and_unknown_files_are_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(OnnxmendError, match=r"nope\.npz does not exist"):
        read_inputs(tmp_path / "nope.npz")
    (tmp_path / "in.csv").write_text("1,2")
    with pytest.raises(OnnxmendError, match=r"--load-inputs takes an \.npz, \.npy or \.json file or a folder of images"):
        read_inputs(tmp_path / "in.csv")


def test_the_save_path_is_checked_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "mine.npz").write_bytes(b"user data")
    (tmp_path / "in.npz").write_bytes(b"inputs")
    with pytest.raises(OnnxmendError, match=r"mine\.npz exists and was not written by onnxmend; choose another --save-outputs"):
        check_save_path(DataOptions(save=tmp_path / "mine.npz"))
    with pytest.raises(OnnxmendError, match=r"is an input of this command; onnxmend never modifies its input"):
        check_save_path(DataOptions(load=tmp_path / "in.npz", save=tmp_path / "in.npz"), force=True)
    with pytest.raises(OnnxmendError, match=r"give a file name ending in \.npz or \.json"):
        check_save_path(DataOptions(save=tmp_path / "out.txt"))
    check_save_path(DataOptions(save=tmp_path / "mine.npz"), force=True)


def test_saved_outputs_carry_the_groups_and_can_be_replaced_by_onnxmend(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    runs = [{"y": np.ones((1, 2))}, {"y": np.zeros((1, 2))}]
    used = synthetic_inputs([0], [{"x": (1, 2)}])
    save_outputs(path, {"onnx": runs, "source": runs}, {"onnx": "m.onnx", "source": "torch"}, used)
    header = json.loads(path.read_text())["onnxmend"]
    assert header["groups"] == {"onnx": "m.onnx", "source": "torch"} and header["inputs"] == used.summary
    assert [s["source/y"].tolist() for s in read_arrays(path)] == [[[1, 1]], [[0, 0]]]
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    check_save_path(DataOptions(save=path))  # onnxmend's own file: no --force needed
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
