"""The growth limit: a rewrite that blows the weights up past --max-growth is refused, named and stated."""

from __future__ import annotations

import math

import numpy as np
import pytest

from onnxmend.core.graph import weight_bytes
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.growth import GROWTH_FLOOR_BYTES, GrowthLimit
from tests.builders import assert_same, make_model, node, op_counts, rand, run_passes

SHAPE = (1, 64, 64, 64)


def expand_model():
    """y = x + Expand(γ[64,1,1], [1,64,64,64]): fold-constants would store γ at the activation's size."""
    nodes = [node("Expand", ["gamma", "shape"], "g"), node("Add", ["x", "g"], "y")]
    inits = {"gamma": rand((64, 1, 1)), "shape": np.asarray(SHAPE, np.int64)}
    return make_model(nodes, {"x": (SHAPE, 1)}, ["y"], inits)


def test_the_weights_are_counted_from_dims_and_dtypes():
    assert weight_bytes(expand_model()) == 64 * 4 + 4 * 8  # γ float32, the shape int64


def test_a_pass_that_blows_the_file_up_is_refused_with_the_growth_stated():
    model = expand_model()
    fixed, report = run_passes(model, resolve("none", "fold-constants"))
    assert [r.name for r in report.rejected] == ["fold-constants"]
    assert report.rejected[0].reason == (
        "it grows the model's weights from 288 B to 1.0 MB (3640.89×), more than --max-growth 1.5 allows "
        "(pass --max-growth 3642 or inf to accept it)"
    )
    assert op_counts(fixed) == {"Expand": 1, "Add": 1}
    assert (report.weights_before, report.weights_after) == (288, 288)
    assert report.to_json()["weights"] == {"before_bytes": 288, "after_bytes": 288, "growth": 1.0, "max_growth": "1.5"}


def test_the_user_can_allow_the_growth():
    model = expand_model()
    fixed, report = run_passes(model, resolve("none", "fold-constants"), max_growth=math.inf)
    assert not report.rejected
    assert op_counts(fixed) == {"Add": 1}
    assert (report.weights_before, report.weights_after) == (288, 64 * 64 * 64 * 4)
    assert_same(model, fixed)


def test_a_limit_the_growth_stays_under_is_no_refusal():
    fixed, report = run_passes(expand_model(), resolve("none", "fold-constants"), max_growth=4000)
    assert not report.rejected and op_counts(fixed) == {"Add": 1}


@pytest.mark.parametrize("before,after,refused", [(288, GROWTH_FLOOR_BYTES * 1.5, False), (288, GROWTH_FLOOR_BYTES * 1.5 + 4, True),
                                                   (10**6, 1.5 * 10**6, False), (10**6, 1.5 * 10**6 + 4, True)])
def test_small_graphs_are_measured_against_the_floor(before, after, refused):
    limit = GrowthLimit(before)
    assert (after > limit.limit) is refused
