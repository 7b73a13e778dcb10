"""fix writes its output last: whatever fails before (here the report on the rewritten graph) leaves none."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.flows import fix as fix_flow
from tests.builders import conv_relu_model


def test_a_failure_after_the_passes_leaves_no_output(tmp_path: Path, monkeypatch) -> None:
    onnx.save(conv_relu_model(), tmp_path / "in.onnx")
    seen, real = [], fix_flow.inspect_model

    def inspect_then_fail(model, path, framework):
        seen.append(Path(path).name)
        if len(seen) == 2:
            raise OnnxmendError("ONNX shape inference crashed (SIGSEGV) while inferring the shapes of the input graph")
        return real(model, path, framework)

    monkeypatch.setattr(fix_flow, "inspect_model", inspect_then_fail)
    with pytest.raises(OnnxmendError, match="crashed"):
        fix_flow.fix(tmp_path / "in.onnx", tmp_path / "out.onnx", verify=False)
    assert seen == ["in.onnx", "out.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.onnx"]
