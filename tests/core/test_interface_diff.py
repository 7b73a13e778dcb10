"""The interface diff: what changed at a graph's inputs and outputs, tensor by tensor."""

from __future__ import annotations

from onnxmend.core.interface_diff import describe, diff_specs, relative_perms
from onnxmend.core.specs import TensorSpec


def test_nhwc_with_a_none_batch_against_nchw_batch_1_is_a_layout_and_a_static_change():
    before = [TensorSpec("image", (None, 96, 96, 3), "float32", "NHWC")]
    after = [TensorSpec("image", (1, 3, 96, 96))]
    [change] = diff_specs("input", before, after, {"image": [0, 3, 1, 2]})
    assert change.aspects == ("layout", "static")
    assert (describe(change.before), describe(change.after)) == (
        "image float32 [?,96,96,3] NHWC", "image float32 [1,3,96,96] NCHW")


def test_the_same_interface_is_no_change_whatever_the_dynamic_dims_are_called():
    before = [TensorSpec("x", ("batch", 3, 8, 8)), TensorSpec("y", (None, 10), "int64")]
    after = [TensorSpec("x", ("unk__7", 3, 8, 8)), TensorSpec("y", ("s0", 10), "int64")]
    assert diff_specs("input", before, after) == []


def test_renames_dtypes_sizes_and_dynamic_dims_are_told_apart():
    before = [TensorSpec("input_layer_3", (1, 8), "float32"), TensorSpec("mask", (1, 8), "int64")]
    after = [TensorSpec("input", ("batch", 16), "float32"), TensorSpec("mask", (1, 8), "int32")]
    changes = {c.tensor: c.aspects for c in diff_specs("input", before, after)}
    assert changes == {"input": ("name", "dynamic", "shape"), "mask": ("dtype",)}


def test_added_and_removed_tensors():
    changes = diff_specs("output", [TensorSpec("a", (1,)), TensorSpec("b", (1,))], [TensorSpec("a", (1,))])
    assert [(c.tensor, c.aspects, describe(c.after)) for c in changes] == [("b", ("removed",), "-")]
    changes = diff_specs("output", [TensorSpec("a", (1,))], [TensorSpec("a", (1,)), TensorSpec("c", (2,))])
    assert [(c.tensor, c.aspects) for c in changes] == [("c", ("added",))]


def test_permutations_recorded_from_the_source_compose_between_two_files():
    # b = NCHW of the NHWC source; a = the source as it was: from b, a is transpose(b, (0,2,3,1)).
    assert relative_perms({"x": [0, 3, 1, 2]}, {"x": [0, 1, 2, 3]}) == {"x": [0, 2, 3, 1]}
    assert relative_perms({}, {"x": [0, 3, 1, 2]}) == {"x": [0, 3, 1, 2]}
