"""Interface metadata is untrusted input: whatever it holds, reading it never raises."""

from __future__ import annotations

import pytest

from onnxmend.core.interface import INTERFACE_KEY, read_interface, source_layout_specs
from tests.builders import conv_relu_model


@pytest.mark.parametrize("text", [
    "not json", "", "[1, 2]", "null", "[" * 100000 + "]" * 100000, '{"x": {"kind": "input", "perm": [' + "9" * 5000 + "]}}",
    '{"x": {"kind": "input", "perm": [0, 0, 1, 2]}}', '{"x": {"kind": "input"}}', '{"x": 1}',
])
def test_malformed_interface_metadata_is_ignored(text: str) -> None:
    model = conv_relu_model()
    model.metadata_props.add(key=INTERFACE_KEY, value=text)
    assert read_interface(model) == {}
    assert [s.shape for s in source_layout_specs(model)] == [(1, 3, 8, 8)]
