"""dedupe-initializers: byte-identical constants (same dtype, shape and values) share one initializer.

Before::

    B  = [0.1, 0.2] ─ Add ─ …
    B2 = [0.1, 0.2] ─ Add ─ …

After::

    B = [0.1, 0.2] ─ Add ─ …
                   └ Add ─ …

Values are compared by a SHA-1 of their bytes with dtype and shape.
"""

from __future__ import annotations

import hashlib

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import replace_uses
from onnxmend.passes.cleanup.eliminate_dead_nodes import constants
from onnxmend.passes.infra.base import Pass, PassContext, PassResult


class DedupeInitializers(Pass):
    name = "dedupe-initializers"
    fixes = "Makes byte-identical constants (same dtype, shape and values) share one initializer."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        keep: dict[tuple[str, tuple[int, ...], str], gs.Constant] = {}
        for const in constants(graph).values():
            values = np.asarray(const.values)
            key = (str(values.dtype), values.shape, hashlib.sha1(values.tobytes()).hexdigest())
            first = keep.setdefault(key, const)
            if first is not const:
                replace_uses(const, first)
                result.changed += 1
        return result


PASS = DedupeInitializers
