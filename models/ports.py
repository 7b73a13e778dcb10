"""The stride-2 "same" convolution pair of :mod:`.padding`, ported to Paddle and MindSpore (the padding trap).

Each port loads the one set of numpy weights of ``tf-same-conv-keras`` (Paddle and MindSpore kernels are
``[out, in, kh, kw]``, like torch's):

- ``tf-same-conv-paddle``: ``Conv2D(padding="SAME")`` — TF's rule, the odd row/column at the bottom/right;
  paddle2onnx writes it as ``auto_pad=SAME_UPPER``.
- ``tf-same-conv-mindspore``: ``Conv2d(pad_mode="same")`` — the same rule, exported as ``auto_pad``.
- ``tf-same-conv-mindspore-pads``: ``Conv2d(pad_mode="pad", padding=(top, bottom, left, right))`` with TF's
  amounts written out, ``(0, 1, 0, 1)`` and ``(1, 2, 1, 2)``. ``mindspore.export`` writes those as ONNX
  ``pads`` without reordering, which ONNX reads as ``(top, left, bottom, right)``: the right totals, so the
  shapes still agree, on the wrong sides — only a parity check against MindSpore sees it (corrected by
  :mod:`onnxmend.exporters.mindspore.pads`).

Built from built-in containers (``paddle.nn.Sequential``, ``mindspore.nn.SequentialCell``), so MindSpore's
graph compiler needs no user ``construct``. Imported only inside the framework's worker.
"""

from __future__ import annotations

from typing import Any

from onnxmend.core.deps import require
from onnxmend.models.padding import LAYERS, same_conv_weights
from onnxmend.models.weights import hwio_to_oihw, tf_same_pads

SIZE = 32


def build_paddle(seed: int) -> Any:
    paddle = require("paddle")
    layers: list[Any] = []
    for i, w in enumerate(same_conv_weights(seed)):
        k, cin, cout = w.kernel.shape[0], w.kernel.shape[2], w.kernel.shape[3]
        conv = paddle.nn.Conv2D(cin, cout, k, stride=w.stride, padding="SAME")
        conv.weight.set_value(hwio_to_oihw(w.kernel))
        conv.bias.set_value(w.bias)
        layers.append(conv)
        if i + 1 < len(LAYERS):
            layers.append(paddle.nn.ReLU())
    return paddle.nn.Sequential(*layers)


def build_mindspore(seed: int) -> Any:
    """``pad_mode="same"``."""
    return _mindspore(seed, explicit=False)


def build_mindspore_pads(seed: int) -> Any:
    """``pad_mode="pad"`` with TF-same's amounts as ``padding=(top, bottom, left, right)``."""
    return _mindspore(seed, explicit=True)


def _mindspore(seed: int, explicit: bool) -> Any:
    ms = require("mindspore")
    cells: list[Any] = []
    size = SIZE
    for i, w in enumerate(same_conv_weights(seed)):
        k, cin, cout = w.kernel.shape[0], w.kernel.shape[2], w.kernel.shape[3]
        if explicit:
            before, after = tf_same_pads(size, k, w.stride)
            mode: dict[str, Any] = {"pad_mode": "pad", "padding": (before, after, before, after)}
        else:
            mode = {"pad_mode": "same"}
        conv = ms.nn.Conv2d(cin, cout, k, stride=w.stride, has_bias=True, **mode)
        conv.weight.set_data(ms.Tensor(hwio_to_oihw(w.kernel)))
        conv.bias.set_data(ms.Tensor(w.bias))
        cells.append(conv)
        if i + 1 < len(LAYERS):
            cells.append(ms.nn.ReLU())
        size = -(-size // w.stride)
    return ms.nn.SequentialCell(cells)
