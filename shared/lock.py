"""One run of a job at a time: a per-job file lock beside the DB.

crontab may start ``jobs.post`` while the previous run is still going, and
``run.py`` may be running the same job in its loop. ``flock`` is released by
the kernel when the process dies, even after ``kill -9``, so a crash never
leaves a stale lock behind.

Usage::

    with job_lock("post", config.db):
        ...                      # raises AlreadyRunning if another process holds it
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class AlreadyRunning(Exception):
    """Another process holds this job's lock."""


def lock_path(name, db_path):
    if db_path == ":memory:":
        return Path(os.environ.get("TMPDIR", "/tmp")) / f"ssi-bot.{name}.lock"
    return Path(f"{db_path}.{name}.lock")


@contextlib.contextmanager
def job_lock(name, db_path):
    path = lock_path(name, db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(f"{name} is already running (lock {path}); this run exits") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
