"""push-transposes and io-layout: one test per handler, broadcasting, sharing, boundaries, idempotence."""

from __future__ import annotations

import numpy as np

from onnxmend.passes.layout.perm import perm_after_dropping, perm_after_inserting, permute_broadcast_operand
from tests.builders.layout import TO_NHWC

RNG = np.random.default_rng(7)


def test_perm_algebra():
    assert perm_after_dropping(TO_NHWC, [1, 2]) == (0, 1)
    assert perm_after_dropping(TO_NHWC, [3]) == (0, 1, 2)
    assert perm_after_inserting((1, 0), [0]) == (0, 2, 1)
    c = np.arange(3, dtype=np.float32)
    assert permute_broadcast_operand(c, TO_NHWC).shape == (3, 1, 1)
    assert permute_broadcast_operand(np.ones([2, 4, 5, 3]), TO_NHWC).shape == (2, 3, 4, 5)
