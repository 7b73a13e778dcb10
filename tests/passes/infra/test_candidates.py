"""``inspect`` and ``fix`` can never disagree: at every step of the fix pipeline, on real exports, what a
pass's matcher reports (``Pass.candidates``, which ``inspect`` shows) is exactly what its ``apply`` then
changes, with the same skip reasons.

Every zoo model and the four keras.applications models of the README are ``slow``; three small zoo models
(one per framework family) run in the fast subset.
"""

from __future__ import annotations

import pytest

from onnxmend.core.deps import available
from onnxmend.exporters import ExportOptions, export
from onnxmend.models import zoo_entry, zoo_names
from onnxmend.passes.infra.base import Candidates, Pass, PassResult
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.manager import run_passes
from tests.builders import context

FAST = ("tf-same-conv-keras", "tf-pad-static-torch", "layernorm-hwc-keras")
KERAS_APPS = ("MobileNetV2", "EfficientNetB0", "ResNet50", "ConvNeXtTiny")
# what exporting a zoo model of each framework needs in this environment (TFLite converts with tf2onnx)
NEEDS = {"torch": ("torch",), "keras": ("tensorflow",), "tflite": ("tensorflow", "tf2onnx"),
         "paddle": ("paddle", "paddle2onnx"), "mindspore": ("mindspore",), "onnx": ()}


def _skip_unless_exportable(name: str) -> None:
    framework = zoo_entry(name).framework
    missing = [m for m in NEEDS[framework] if not available(m)]
    if missing:
        pytest.skip(f"zoo:{name} is a {framework} model and {', '.join(missing)} is not installed")


class Audited(Pass):
    """Runs ``inner`` as the manager would, after asking its matcher what it will change."""

    def __init__(self, inner: Pass, seen: list[tuple[str, Candidates, PassResult]]) -> None:
        self.inner, self.seen = inner, seen
        self.name, self.fixes = inner.name, inner.fixes

    def requires(self, graph, ctx):
        return self.inner.requires(graph, ctx)

    def apply(self, graph, ctx):
        found = self.inner.candidates(graph, ctx)
        result = self.inner.apply(graph, ctx)
        self.seen.append((self.name, found, result))
        return result


def _audit(source: str, layout: str = "keep", exporter: str = "dynamo") -> list[tuple[str, Candidates, PassResult]]:
    exported = export(source, ExportOptions(torch_exporter=exporter))  # type: ignore[arg-type]
    seen: list[tuple[str, Candidates, PassResult]] = []
    ctx = context(exported.model, framework=exported.framework, layout=layout)
    run_passes(exported.model, [Audited(p, seen) for p in resolve("fix")], ctx)
    return seen


def _assert_agree(seen: list[tuple[str, Candidates, PassResult]]) -> None:
    assert seen, "no pass ran"
    for name, found, result in seen:
        changed = 0 if result.discard else result.changed
        assert (name, found.count) == (name, changed)
        assert [s.reason for s in found.skipped] == [s.reason for s in result.skipped], name


@pytest.mark.parametrize("name", FAST)
def test_matchers_agree_with_apply_on_small_zoo_models(name: str) -> None:
    _skip_unless_exportable(name)
    # torch's legacy exporter leaves the passes more to do than dynamo, which folds Pads and BatchNorms itself
    seen = _audit(f"zoo:{name}", layout="nchw" if name.endswith("keras") else "keep", exporter="legacy")
    _assert_agree(seen)
    assert any(result.changed for _, _, result in seen)  # the agreement is about real rewrites


@pytest.mark.slow
@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
@pytest.mark.parametrize("name", zoo_names())
def test_matchers_agree_with_apply_on_every_zoo_model(name: str, exporter: str) -> None:
    if zoo_entry(name).framework != "torch" and exporter == "legacy":
        pytest.skip("the torch exporter choice applies to torch models only")
    _skip_unless_exportable(name)
    _assert_agree(_audit(f"zoo:{name}", layout="nchw" if name.endswith("keras") else "keep", exporter=exporter))


@pytest.mark.slow
@pytest.mark.parametrize("app", KERAS_APPS)
def test_matchers_agree_with_apply_on_keras_applications(app: str) -> None:
    pytest.importorskip("tensorflow")
    _assert_agree(_audit(f"keras:{app}", layout="nchw"))
