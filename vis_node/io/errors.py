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
