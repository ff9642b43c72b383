"""One error type for the local cluster, carrying what went wrong and what the user can do."""

from __future__ import annotations


class ControlPlaneError(RuntimeError):
    """A failure the user can act on: `str()` gives the problem, `hint` the next step."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n{self.hint}" if self.hint else base


class ClusterConfigError(ControlPlaneError):
    """The cluster file is wrong (unreadable, not YAML, not the schema): the user's input, so
    the command exits 2 like every other input error, not 1 like a failed start."""
