"""capture_with_hooks, the forward-hook capture the Paddle and MindSpore runners share: one hook per wanted
child, each child's first output kept, unknown names one sentence, the hooks gone after the run (also when
it raises)."""

from __future__ import annotations

import numpy as np
import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.runtime.runners.hooks import capture_with_hooks


class Child:
    def __init__(self) -> None:
        self.hooks: list = []

    def register(self, hook):
        self.hooks.append(hook)
        child = self

        class Handle:
            def remove(self) -> None:
                child.hooks.remove(hook)
        return Handle()

    def fire(self, output) -> None:
        for hook in list(self.hooks):
            hook(self, (), output)


def _first(output):
    return np.asarray(output[0]) if output else None


def test_each_wanted_child_keeps_its_first_output_and_the_hooks_are_removed() -> None:
    children = {"a": Child(), "b": Child(), "c": Child()}

    def run() -> None:
        children["a"].fire([1.0, 2.0])
        children["b"].fire([])  # nothing to keep
        children["c"].fire([3.0])

    captured = capture_with_hooks(children, ["a", "b"], Child.register, _first, run, "The net has no child named")
    assert set(captured) == {"a"} and captured["a"] == 1.0
    assert all(not c.hooks for c in children.values())
    assert set(capture_with_hooks(children, None, Child.register, _first, run, "-")) == {"a", "c"}


def test_an_unknown_name_is_one_sentence_and_a_failing_run_leaves_no_hook() -> None:
    children = {"a": Child()}
    with pytest.raises(OnnxmendError, match="The net has no child named 'z'"):
        capture_with_hooks(children, ["z"], Child.register, _first, lambda: None, "The net has no child named")

    def boom() -> None:
        raise RuntimeError("kernel failed")

    with pytest.raises(RuntimeError):
        capture_with_hooks(children, ["a"], Child.register, _first, boom, "-")
    assert children["a"].hooks == []
