"""The presets' order, as presets.py states it: cleanup first in its own order, padding before layout,
fuse-gelu before the affine folds that could move a GELU's 0.5 away, dead nodes last."""

from __future__ import annotations

import pytest

from onnxmend.passes.infra.presets import PRESETS

CLEANUP = ("remove-identity", "fold-constants", "dedupe-initializers", "eliminate-common-subexpressions",
           "fold-shape-chains", "collapse-reshapes", "remove-neutral-elementwise")


def _before(order: tuple[str, ...], first: str, then: str) -> bool:
    return order.index(first) < order.index(then)


@pytest.mark.parametrize("preset", ["fix", "portable"])
def test_cleanup_runs_first_in_its_stated_order_and_dead_nodes_last(preset):
    order = PRESETS[preset]
    assert order[: len(CLEANUP)] == CLEANUP
    assert order[-1] == "eliminate-dead-nodes"
    assert _before(order, "fold-pad", "push-transposes")


def test_fuse_gelu_runs_before_the_affine_folds():
    order = PRESETS["fix"]
    assert _before(order, "fuse-gelu", "fold-conv-affine") and _before(order, "fuse-gelu", "fold-conv-input-affine")
    assert "fuse-gelu" not in PRESETS["portable"]  # it may emit com.microsoft ops, which portable promises not to
