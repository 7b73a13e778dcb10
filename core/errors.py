"""Errors a user can meet. The CLI prints their message as one sentence and exits with code 2."""

from __future__ import annotations


class OnnxmendError(Exception):
    """Bad input or a missing prerequisite, stated as one sentence a user can act on."""


class BadSourceError(OnnxmendError):
    """The SOURCE argument names nothing onnxmend can load."""


class NeedsInputShapes(OnnxmendError):
    """A model built by a factory has no example_inputs and no --input was given."""


# Subclasses a worker's reply raises again by name, so callers can act on them across the process boundary.
USER_ERRORS: dict[str, type[OnnxmendError]] = {"BadSourceError": BadSourceError, "NeedsInputShapes": NeedsInputShapes}


class MissingDependencyError(OnnxmendError):
    """An optional framework (torch, tensorflow, ...) is needed but not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"This needs {package}, which is not installed; install onnxmend's `{extra}` extra "
            f"(`pip install '.[{extra}]'` in the onnxmend checkout)."
        )
        self.package, self.extra = package, extra


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type name when it has none), for one-sentence errors."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
