"""One run of a job at a time: a per-job file lock beside the DB.

crontab may start ``jobs.post`` while the previous run is still going, and
``run.py`` may be running the same job in its loop. The lock is an ``flock``
(through the ``filelock`` library), which the kernel releases when the process
dies, even after ``kill -9``, so a crash never leaves a stale lock behind.

Usage::

    with job_lock("post", config.db):
        ...                      # raises AlreadyRunning if another process holds it
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from filelock import FileLock, Timeout


class AlreadyRunning(Exception):
    """Another process holds this job's lock."""


def lock_path(name, db_path) -> Path:
    """The lock file of job ``name`` on the DB at ``db_path``: beside it, ``DB.NAME.lock``."""
    if db_path == ":memory:":
        return Path(os.environ.get("TMPDIR", "/tmp")) / f"ssi-bot.{name}.lock"
    return Path(f"{db_path}.{name}.lock")


@contextlib.contextmanager
def job_lock(name, db_path):
    """Hold job ``name``'s lock for the block; ``AlreadyRunning`` at once if another process has it."""
    path = lock_path(name, db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise AlreadyRunning(f"{name} is already running (lock {path}); this run exits") from None
    try:
        yield
    finally:
        lock.release()
