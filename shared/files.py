"""Replacing files and folders so that a crash leaves the old version or the new one, never half.

    replace_directory(Path("models/x/.best_model.tmp"), Path("models/x/best_model"))
    recover_directory(Path("models/x/best_model"))     # after a crash, before reading it
    fsync(path)                                         # a file's bytes, or a folder's entries

A folder cannot be swapped by one atomic rename when the target exists, so
``replace_directory`` moves the old one aside (``.NAME.old``) first; a crash between the
two renames leaves only ``.NAME.old``, which ``recover_directory`` puts back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def replace_directory(new: Path, target: Path) -> None:
    """Put the folder ``new`` at ``target`` by renames (same filesystem); the old one is deleted."""
    old = _aside(target)
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def recover_directory(target: Path) -> None:
    """Undo a ``replace_directory`` that a crash cut between its two renames."""
    old = _aside(target)
    if old.exists() and not target.exists():
        os.replace(old, target)
    shutil.rmtree(old, ignore_errors=True)


def fsync(path) -> None:
    """Flush a file, or a folder's entries (after a rename or link), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _aside(target: Path) -> Path:
    return target.parent / f".{target.name}.old"
