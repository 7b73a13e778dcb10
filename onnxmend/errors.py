"""Errors a user can meet. The CLI prints their message as one sentence and exits with code 2."""

from __future__ import annotations


class OnnxmendError(Exception):
    """Bad input or a missing prerequisite, stated as one sentence a user can act on."""


class BadSourceError(OnnxmendError):
    """The SOURCE argument names nothing onnxmend can load."""


class MissingDependencyError(OnnxmendError):
    """An optional framework (torch, tensorflow, ...) is needed but not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"This needs {package}, which is not installed; install it with "
            f"`pip install 'onnxmend[{extra}]'`."
        )
