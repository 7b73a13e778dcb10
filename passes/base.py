"""The pass interface: one pass is one class that rewrites an onnx-graphsurgeon graph in place.

A pass declares its ``name`` (kebab-case, used on the command line), what it ``fixes`` and its
``preconditions``, and returns a :class:`PassResult` that counts what it changed and says why it left
each candidate alone. Matches are small frozen dataclasses returned by a ``match`` function, never state
kept on ``self`` between checking and rewriting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import onnx_graphsurgeon as gs

Preset = Literal["fix", "portable", "none"]


@dataclass(frozen=True)
class Skip:
    """A candidate the pass looked at and left alone, and why (shown with ``--verbose``)."""

    node: str
    reason: str


@dataclass(frozen=True)
class InterfaceChange:
    """What a pass did to one graph input or output: ``new = transpose(old, perm)``."""

    tensor: str
    kind: Literal["input", "output"]
    perm: tuple[int, ...]
    was: str
    now: str

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "perm": list(self.perm), "was": self.was, "now": self.now}


@dataclass
class PassResult:
    changed: int = 0
    skipped: list[Skip] = field(default_factory=list)
    interface: list[InterfaceChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The pass gave up after rewriting part of the graph: whoever runs it must drop that graph and keep
    # the model as it was (cheaper than the pass keeping a full backup copy of a big graph).
    discard: bool = False

    def skip(self, node: gs.Node | str, reason: str) -> None:
        self.skipped.append(Skip(node if isinstance(node, str) else (node.name or node.op), reason))


@dataclass(frozen=True)
class PassContext:
    """What a pass may need to know beyond the graph."""

    opset: int
    preset: Preset = "fix"
    layout: Literal["nchw", "keep"] = "keep"
    # False when the user pinned a layout (--layout nchw|keep): a fusion may then not add Transpose nodes,
    # so a channel LayerNorm in an NCHW graph stays decomposed instead of gaining a Transpose pair.
    fusions_may_transpose: bool = True
    # Source-framework name ("torch", "keras", "onnx"): norm passes use it to judge epsilons.
    framework: str = "onnx"


class Pass(ABC):
    name: ClassVar[str]
    fixes: ClassVar[str]
    preconditions: ClassVar[str] = "none"

    @abstractmethod
    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        """Rewrite ``graph`` in place and say what changed. Dead nodes are swept by the manager."""

    def __repr__(self) -> str:
        return f"<pass {self.name}>"
