"""Reading .npz/.npy/JSON into samples and writing outputs back: every form, every refusal as one sentence,
and the round trip write → read."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.outputs import written_by_onnxmend
from onnxmend.runtime.data.formats import group_samples, read_arrays, write_arrays


def _equal(a: list[dict], b: list[dict]) -> None:
    assert [sorted(s) for s in a] == [sorted(s) for s in b]
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
            assert np.asarray(x[key]).dtype == np.asarray(y[key]).dtype


def test_npz_is_one_sample_named_after_its_arrays(tmp_path: Path) -> None:
    x, m = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2,), np.int64)
    np.savez(tmp_path / "in.npz", x=x, mask=m)
    _equal(read_arrays(tmp_path / "in.npz"), [{"x": x, "mask": m}])


def test_npz_with_sample_keys_is_several_samples(tmp_path: Path) -> None:
    np.savez(tmp_path / "in.npz", **{"sample1/x": np.ones(2), "sample0/x": np.zeros(2)})
    samples = read_arrays(tmp_path / "in.npz")
    assert [float(s["x"][0]) for s in samples] == [0.0, 1.0]


def test_npy_is_one_array(tmp_path: Path) -> None:
    np.save(tmp_path / "img.npy", np.full((1, 3), 2.5, np.float32))
    (sample,) = read_arrays(tmp_path / "img.npy")
    assert list(sample) == ["img"] and sample["img"].dtype == np.float32


def test_json_object_and_list_of_objects(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps({"x": [[1, 2], [3, 4]]}))
    (tmp_path / "two.json").write_text(json.dumps([{"x": [1.5]}, {"x": [2.5]}]))
    (one,) = read_arrays(tmp_path / "one.json")
    assert one["x"].shape == (2, 2) and one["x"].dtype.kind == "i"
    assert [s["x"].tolist() for s in read_arrays(tmp_path / "two.json")] == [[1.5], [2.5]]


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_write_then_read_is_the_same_samples_and_marked_as_onnxmends(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    samples = [{"onnx/y": rng.standard_normal((1, 4)).astype(np.float32), "source/y": rng.standard_normal((1, 4))}
               for _ in range(2)]
    path = write_arrays(tmp_path / f"out{suffix}", samples, {"inputs": "synthetic"})
    back = read_arrays(path)
    if suffix == ".json":  # JSON keeps the values, not the dtype
        back = [{k: v.astype(samples[i][k].dtype) for k, v in s.items()} for i, s in enumerate(back)]
    _equal(back, samples)
    assert written_by_onnxmend(path)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_single_sample_npz_has_plain_keys_and_the_header_as_its_comment(tmp_path: Path) -> None:
    path = write_arrays(tmp_path / "out.npz", [{"onnx/y": np.ones(3)}], {"inputs": "x"})
    assert np.load(path).files == ["onnx/y"]
    header = json.loads(zipfile.ZipFile(path).comment)["onnxmend"]
    assert header["format"] == "onnxmend.outputs/1" and header["inputs"] == "x"


def test_a_users_npz_and_json_are_not_onnxmends(tmp_path: Path) -> None:
    np.savez(tmp_path / "mine.npz", a=np.ones(2))
    (tmp_path / "mine.json").write_text('{"a": [1]}')
    assert not written_by_onnxmend(tmp_path / "mine.npz") and not written_by_onnxmend(tmp_path / "mine.json")


def _pickled_npz(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        buffer = io.BytesIO()
        np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        archive.writestr("x.npy", buffer.getvalue())


def _zip(path: Path, member: str) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, "hi")


BAD = {
    "corrupt npz": (lambda p: p.write_bytes(b"PK\x03\x04garbage"), "in.npz", r"is not a readable \.npz file"),
    "not a zip": (lambda p: p.write_bytes(b"hello"), "in.npz", r"is not a readable \.npz file \(it is not a zip archive\)"),
    "pickled npz": (_pickled_npz, "in.npz", r"'x' holds Python objects, which can only be read by unpickling them"),
    "pickled npy": (lambda p: np.save(p, np.array([None, 1], dtype=object), allow_pickle=True), "in.npy",
                    r"holds Python objects"),
    "a pickle named .npy": (lambda p: p.write_bytes(pickle.dumps([1, 2])), "in.npy", r"is not a readable \.npy file"),
    "npz with another file": (lambda p: _zip(p, "notes.txt"), "in.npz",
                              r"holds notes\.txt, which is not a \.npy array"),
    "ragged json": (lambda p: p.write_text('{"x": [[1, 2], [3]]}'), "in.json", r"'x' is not a rectangular array"),
    "text in json": (lambda p: p.write_text('{"x": ["a"]}'), "in.json", r"'x' holds text, not numbers"),
    "null in json": (lambda p: p.write_text('{"x": [1, null]}'), "in.json", r"'x' holds mixed or missing values"),
    "json not an object": (lambda p: p.write_text("[1, 2]"), "in.json", r"must hold an object of arrays"),
    "invalid json": (lambda p: p.write_text("{x: 1"), "in.json", r"is not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_one_sentence(tmp_path: Path, case: str) -> None:
    write, name, sentence = BAD[case]
    write(tmp_path / name)
    with pytest.raises(OnnxmendError, match=sentence):
        read_arrays(tmp_path / name)


def test_group_samples_leaves_other_keys_as_one_sample() -> None:
    arrays = {"sample0/x": np.ones(1), "y": np.ones(1)}
    assert group_samples(arrays) == [arrays]
