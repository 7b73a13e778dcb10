"""Loaded arrays against a model's input specs: what fits (cast, renamed, split), and the one sentence for
what does not."""

from __future__ import annotations

import numpy as np
import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.specs import TensorSpec
from onnxmend.runtime.data.fit import fit_samples

IMAGE = [TensorSpec("x", (1, 3, 4, 4))]
TOKENS = [TensorSpec("ids", ("batch", "seq"), "int64"), TensorSpec("mask", ("batch", "seq"), "int64")]


def test_a_single_input_takes_an_array_of_any_name() -> None:
    fitted, notes = fit_samples([{"pixels": np.zeros((1, 3, 4, 4))}], IMAGE, "in.npz")
    assert list(fitted[0]) == ["x"] and fitted[0]["x"].dtype == np.float32
    assert notes == ["the array 'pixels' feeds input x"]


def test_whole_batches_of_a_fixed_batch_model_are_split_into_samples() -> None:
    data = np.arange(5 * 48, dtype=np.float32).reshape(5, 3, 4, 4)
    fitted, notes = fit_samples([{"x": data}], IMAGE, "in.npz")
    assert len(fitted) == 5 and all(s["x"].shape == (1, 3, 4, 4) for s in fitted)
    np.testing.assert_array_equal(fitted[3]["x"][0], data[3])
    assert "fixed batch" in notes[0]


def test_whole_floats_go_into_an_integer_input_and_shared_dims_agree() -> None:
    sample = {"ids": np.array([[1.0, 2.0, 3.0]]), "mask": np.array([[1, 1, 0]])}
    (fitted,), _ = fit_samples([sample], TOKENS, "in.json")
    assert fitted["ids"].dtype == np.int64 and fitted["ids"].tolist() == [[1, 2, 3]]


BAD = {
    "missing input": ({"ids": np.ones((1, 3), np.int64)}, TOKENS, r"in\.npz has no array for input mask \(the model takes ids, mask"),
    "extra input": ({"ids": np.ones((1, 3)), "mask": np.ones((1, 3)), "token_type": np.ones((1, 3))}, TOKENS,
                    r"holds an array 'token_type', which is not an input of the model \(its inputs: ids, mask\)"),
    "wrong rank": ({"x": np.zeros((3, 4, 4))}, IMAGE, r"'x' has 3 axes \(3x4x4\), but input x takes 4 \(1x3x4x4\); add the batch axis"),
    "3 channels into 1": ({"x": np.zeros((1, 3, 4, 4))}, [TensorSpec("x", (1, 1, 4, 4))],
                          r"'x' is 1x3x4x4, but input x takes 1x1x4x4 \(axis 1 must be 1\)"),
    "not whole batches": ({"x": np.zeros((2, 3, 4, 4))}, [TensorSpec("x", (3, 3, 4, 4))], r"axis 0 must be 3"),
    "shared dim disagrees": ({"ids": np.ones((1, 3)), "mask": np.ones((1, 4))}, TOKENS,
                             r"'ids' and 'mask' disagree on dim 'seq' \(3 vs 4\)"),
    "fractional ids": ({"ids": np.array([[0.5, 1]]), "mask": np.ones((1, 2))}, TOKENS,
                       r"'ids' \(float64\) holds values that are not whole numbers; input ids \(int64\) takes integers"),
    "out of range": ({"x": np.full((1, 2), 300)}, [TensorSpec("x", (1, 2), "uint8")], r"holds values outside 0\.\.255"),
    "too large for float16": ({"x": np.full((1, 2), 1e6)}, [TensorSpec("x", (1, 2), "float16")], r"too large for input x"),
    "not booleans": ({"x": np.array([[0, 2]])}, [TensorSpec("x", (1, 2), "bool")], r"values other than 0 and 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_what_does_not_fit_is_one_sentence(case: str) -> None:
    sample, specs, sentence = BAD[case]
    with pytest.raises(OnnxmendError, match=sentence):
        fit_samples([sample], specs, "in.npz")


def test_the_sample_is_named_when_there_are_several() -> None:
    with pytest.raises(OnnxmendError, match=r"in\.json \(sample 1\)'s 'x' is 1x3x4x5"):
        fit_samples([{"x": np.zeros((1, 3, 4, 4))}, {"x": np.zeros((1, 3, 4, 5))}], IMAGE, "in.json")
