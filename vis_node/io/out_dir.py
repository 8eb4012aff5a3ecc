"""Checking a command's ``--out`` before any work is done.

A command that writes a folder of results (``vsis run``, ``vsis replay``) calls
:func:`prepare_out_dir` first; one that writes a single file (``vsis eval``) calls
:func:`check_out_file`. Neither creates anything but a probe file, removed at once. Both turn every way an output path can be unusable (a file
where a folder is needed, a read-only place, a folder holding earlier results) into
an :class:`~vis_node.structures.errors.InputDataError` that says what to do.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from vis_node.structures.errors import InputDataError


def _probe_writable(folder: Path) -> None:
    """Create and remove a file in ``folder``; raise when that is not possible."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputDataError(
            folder, f"cannot write here ({exc.strerror or exc}); choose another --out"
        ) from None


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder above ``path`` that exists (``path``'s own parent first)."""
    for ancestor in path.absolute().parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise InputDataError(ancestor, "is a file; --out must be inside a folder")
            return ancestor
    raise InputDataError(path, "has no existing folder above it; choose another --out")


def prepare_out_dir(path: Path, *, overwrite: bool, outputs: Iterable[str]) -> Path:
    """Check that ``path`` can receive a command's results, before the work starts.

    Nothing is created: a missing folder only needs a writable folder above it (the
    writers create it). With ``overwrite``, the earlier results named in ``outputs``
    are removed now, so earlier and new results never mix.

    Parameters
    ----------
    path:
        The ``--out`` folder.
    overwrite:
        Allow a folder that already holds files.
    outputs:
        Names of the files and folders the command writes directly under ``path``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputDataError
        If ``path`` is a file, cannot be written, or is not empty and ``overwrite`` is
        false.
    """
    if not path.exists():
        _probe_writable(_existing_ancestor(path))
        return path
    if not path.is_dir():
        raise InputDataError(path, "is a file; --out needs a folder (new or empty)")
    _probe_writable(path)
    if any(path.iterdir()):
        if not overwrite:
            raise InputDataError(
                path,
                "is not empty; pass --overwrite to replace the results in it, or choose "
                "another --out",
            )
        for name in outputs:
            entry = path / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry.exists() or entry.is_symlink():
                entry.unlink()
    return path


def check_out_file(path: Path) -> Path:
    """Check that the file ``path`` can be written, before the work starts.

    Raises
    ------
    InputDataError
        If ``path`` is a folder or no file can be written where it goes.
    """
    if path.is_dir():
        raise InputDataError(path, "is a folder; --out needs a file name (e.g. report.json)")
    _probe_writable(_existing_ancestor(path))
    return path
