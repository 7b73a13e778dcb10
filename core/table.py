"""One table model for people: built once from a result, drawn by two renderers.

A :class:`Table` is a title, columns and rows of :class:`Cell` (text plus a tone: ``good``, ``bad``,
``warn``, ``dim`` or none). :func:`to_markdown` renders it for ``report.md``; the CLI's renderer draws the
same table in the terminal with rich, so a report and the screen can never show different numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence, Union

Tone = Literal["", "good", "bad", "warn", "dim", "bold"]
Align = Literal["left", "right"]


@dataclass(frozen=True)
class Cell:
    text: str
    tone: Tone = ""


@dataclass(frozen=True)
class Column:
    name: str
    align: Align = "left"
    whole: bool = False  # a name the user copies (a node, a pass, a model): never wrapped or cut

CellLike = Union[Cell, str, int, float]


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    empty: str = "(none)"  # what a table without rows says

    def add(self, *cells: CellLike) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.title!r} has {len(self.columns)} columns, got {len(cells)} cells")
        self.rows.append([c if isinstance(c, Cell) else Cell(str(c)) for c in cells])


def table(title: str, columns: Sequence[str | Column], empty: str = "(none)") -> Table:
    """A table whose columns are given by name (``"name>"`` aligns right, ``"name!"`` is kept whole).

    The first column names the row (an output, a pass, a node, a model), so it is always kept whole."""
    cols = [c if isinstance(c, Column) else _column(c, first=i == 0) for i, c in enumerate(columns)]
    return Table(title, cols, empty=empty)


def _column(spec: str, first: bool) -> Column:
    whole = first or spec.endswith("!")
    name = spec.rstrip("!>")
    return Column(name, "right" if spec.rstrip("!").endswith(">") else "left", whole)


def to_markdown(t: Table) -> str:
    """The table as GitHub Markdown (title not included; the report gives its own heading)."""
    header = "| " + " | ".join(c.name for c in t.columns) + " |"
    rule = "|" + "|".join("---:" if c.align == "right" else "---" for c in t.columns) + "|"
    rows = [header, rule]
    for row in t.rows:
        rows.append("| " + " | ".join(_md(cell) for cell in row) + " |")
    if not t.rows:
        rows.append("| " + " | ".join([t.empty] + [""] * (len(t.columns) - 1)) + " |")
    return "\n".join(rows)


def _md(cell: Cell) -> str:
    text = cell.text.replace("|", "\\|").replace("\n", " ")
    return f"**{text}**" if cell.tone in ("bad", "bold") and text else text
