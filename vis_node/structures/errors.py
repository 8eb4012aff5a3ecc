"""The one error type raised for unreadable inputs."""

from __future__ import annotations

from pathlib import Path


class InputDataError(RuntimeError):
    """An input file or folder could not be read.

    Raised by every reader in :mod:`vis_node.io` for missing, corrupt or unsupported
    inputs. The message names the offending file and says what to do.

    Parameters
    ----------
    path:
        The file or folder that failed.
    reason:
        What is wrong with it, phrased so a user knows what to fix.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class InvalidDataError(ValueError):
    """A message or array handed to a core stage is malformed.

    Raised for data that arrives at run time (an instance message with a negative
    score, a NaN embedding, arrays of different lengths), as opposed to
    :class:`InputDataError` for files. A node counts it as a rejected message and skips
    it; the message says which field is wrong and what a valid value is.
    """
