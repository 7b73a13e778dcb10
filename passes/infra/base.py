"""The pass interface: one pass is one class, in one module named after it, that rewrites an
onnx-graphsurgeon graph in place.

A pass declares its ``name`` (kebab-case, used on the command line), what it ``fixes`` and its
``preconditions`` in words, and checks them in code with :meth:`Pass.requires` (a reason, or ``None``),
which the manager calls once per pipeline before the pass first runs. :meth:`Pass.apply` returns a
:class:`PassResult` that counts what it changed and says why it left each candidate alone.

:meth:`Pass.candidates` is the pass's matcher as ``inspect`` runs it: what ``apply`` would change on this
graph, without changing it. A :class:`MatchingPass` is a matcher plus a rewrite — ``apply`` rewrites
exactly the matches ``candidates`` reports, so the two cannot disagree; other passes (fixed-point sweeps
such as push-transposes, graphsurgeon's constant folding) answer with a dry run on a copy of the graph.
Matches are small frozen dataclasses returned by ``match``, never state kept on ``self``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Literal

import onnx_graphsurgeon as gs

from onnxmend.passes.infra.naming import Namer
from onnxmend.passes.infra.provenance import rewriting

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
    # The pass swept dead nodes and sorted the graph after its last edit (push-transposes does between its
    # sweeps), or its edits cannot leave a node dead or out of order (dedupe-initializers only points readers
    # at an equal constant): the manager need not walk the whole graph twice more.
    tidy: bool = False

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
    # True while a graph is prepared for int8 (PREPARE_FOR_INT8): a Transpose may then not turn a MatMul
    # into a 1x1 Conv, since dynamic quantization makes a Conv a slow ConvInteger.
    keep_matmuls: bool = False
    # --keep-interface: no pass may change a graph input or output (name, dtype, layout, static/dynamic
    # dims); the manager rejects a rewrite that does, and passes that need static dims say so.
    keep_interface: bool = False


@dataclass(frozen=True)
class Candidates:
    """What a pass would change on a graph: ``inspect``'s view of one pass."""

    name: str
    count: int
    skipped: list[Skip] = field(default_factory=list)
    not_run: str | None = None  # the unmet precondition, when the pass would not run at all


class Pass(ABC):
    name: ClassVar[str]
    fixes: ClassVar[str]
    preconditions: ClassVar[str] = "none"

    def requires(self, graph: gs.Graph, ctx: PassContext) -> str | None:
        """Why this pass cannot run on ``graph`` at all (an unmet precondition), or None."""
        return None

    @abstractmethod
    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        """Rewrite ``graph`` in place and say what changed. Dead nodes are swept by the manager."""

    def candidates(self, graph: gs.Graph, ctx: PassContext) -> Candidates:
        """What :meth:`apply` would change on ``graph``, leaving ``graph`` untouched (a dry run on a copy)."""
        reason = self.requires(graph, ctx)
        if reason:
            return Candidates(self.name, 0, not_run=reason)
        result = self.apply(graph.copy(), ctx)
        return Candidates(self.name, 0 if result.discard else result.changed, list(result.skipped))

    def __repr__(self) -> str:
        return f"<pass {self.name}>"


class MatchingPass(Pass):
    """A pass that is a matcher plus a rewrite.

    ``anchors`` lists the nodes worth trying, ``match`` turns one into a match (a frozen dataclass),
    a reason it is declined (a string) or ``None`` (not a candidate at all, nothing to report), and
    ``rewrite`` edits the graph for one match. ``apply`` and ``candidates`` both run ``match`` on every
    anchor, so what ``inspect`` counts is what ``fix`` rewrites. A match may carry ``note`` (a line for
    the report, e.g. "rewritten as Mul+Add") and ``declined`` (the :class:`Skip` of a partial match, e.g.
    the link where a foldable chain stops); both are reported alike by ``apply`` and ``candidates``.
    """

    @abstractmethod
    def anchors(self, graph: gs.Graph) -> Iterable[gs.Node]:
        """The nodes a match can start from."""

    @abstractmethod
    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> Any:
        """A match for ``node``, a reason it is declined, or None when it is no candidate."""

    @abstractmethod
    def rewrite(self, graph: gs.Graph, match: Any, ctx: PassContext, names: Namer) -> None:
        """Edit the graph for ``match``."""

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        names: Namer | None = None
        for node in list(self.anchors(graph)):
            if not node.outputs:
                continue  # removed by an earlier rewrite in this sweep
            found = self.match(graph, node, ctx)
            if found is None:
                continue
            if isinstance(found, str):
                result.skip(node, found)
                continue
            names = names or Namer(graph)
            with rewriting(graph, found):  # new nodes answer for the source layers of what they replace
                self.rewrite(graph, found, ctx, names)
            result.changed += 1
            result.skipped.extend(getattr(found, "declined", ()))
            if getattr(found, "note", ""):
                result.notes.append(found.note)
        return result

    def candidates(self, graph: gs.Graph, ctx: PassContext) -> Candidates:
        reason = self.requires(graph, ctx)
        if reason:
            return Candidates(self.name, 0, not_run=reason)
        count, skipped = 0, []
        for node in list(self.anchors(graph)):
            found = self.match(graph, node, ctx)
            if isinstance(found, str):
                skipped.append(Skip(node.name or node.op, found))
            elif found is not None:
                count += 1
                skipped.extend(getattr(found, "declined", ()))
        return Candidates(self.name, count, skipped)
