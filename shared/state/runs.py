"""The last run of each job, per bot, and how it ended: small JSON files beside the state DB.

    with runs.recorded("fetch", config.db, ["MyBot"]):     # inside the job's lock
        fetch.run(config, bots)
    runs.last_runs(config.db)          # {"fetch": {"MyBot": {"outcome": "ok", ...}}, ...}

The Runner (jobs/__init__.py: run.py, the demo, the Lambda handler) and every job's command
line (shared/cli.py) record their runs this way; the console shows them. One file per job,
``DB.JOB.run.json`` beside the DB like the job's lock file, holding per bot::

    {"started_at": 1767000000.0, "finished_at": 1767000002.5, "outcome": "ok",
     "error": null, "last_ok_at": 1767000002.5}

``outcome`` is ``ok``, ``failed`` (with ``error``, the exception's first line),
``interrupted`` (Ctrl-C, SIGTERM at a bad moment), or ``running``: written when the job
starts, so a job that is running now, or was killed (``kill -9``, a lost machine) before
it could finish, shows as started and never finished. ``last_ok_at`` is kept across
runs, so a failing job still says when it last worked.

Crash-safe and cheap: only the job holding its lock (shared/state/lock.py) writes its
file, so there is one writer per file; each write is a new file renamed over the old
one, so a reader sees the old record or the new one. A record that cannot be written
(a full disk) is logged and the job goes on: the record serves people, not the bot.

Not a table in the state DB on purpose: a row per run would change the DB on every
cycle, so a quiet cycle would no longer leave the file as it was and every snapshot
push would store a new generation of nothing (shared/state/replica.py).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import time
from pathlib import Path

from shared.errors import first_line

log = logging.getLogger("runs")

RUNNING, OK, FAILED, INTERRUPTED = "running", "ok", "failed", "interrupted"
SUFFIX = ".run.json"
MAX_ERROR = 500                 # characters of the error kept: one line, not a traceback


def run_path(job, db_path) -> Path:
    """The record of job ``job`` on the DB at ``db_path``: beside it, ``DB.JOB.run.json``."""
    return Path(f"{db_path}.{job}{SUFFIX}")


@contextlib.contextmanager
def recorded(job, db_path, bots):
    """Record a run of ``job`` for ``bots`` (names) around the block: ``running`` now, then
    ``ok``, ``failed`` or ``interrupted``. Exceptions go on up unchanged."""
    if str(db_path) == ":memory:" or not bots:
        yield
        return
    path = run_path(job, db_path)
    _write(path, job, bots, started_at=time.time(), finished_at=None, outcome=RUNNING, error=None)
    try:
        yield
    except BaseException as exc:
        outcome = FAILED if isinstance(exc, Exception) else INTERRUPTED
        _write(path, job, bots, finished_at=time.time(), outcome=outcome, error=first_line(exc)[:MAX_ERROR])
        raise
    finished = time.time()
    _write(path, job, bots, finished_at=finished, outcome=OK, error=None, last_ok_at=finished)


def last_runs(db_path):
    """{job: {bot: record}} from the files beside ``db_path``; a file that cannot be read
    gives ``{"outcome": "unreadable", "error": why}`` under the bot name ``*``."""
    folder = Path(db_path).resolve().parent
    prefix = Path(db_path).name + "."
    found = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob(f"{glob.escape(prefix)}*{SUFFIX}")):
        job = path.name[len(prefix):-len(SUFFIX)]
        try:
            found[job] = _read(path)["bots"]
        except (OSError, ValueError) as exc:
            found[job] = {"*": {"outcome": "unreadable", "error": f"{path.name}: {first_line(exc)}"}}
    return found


def _read(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("bots"), dict):
        raise ValueError("no 'bots' object")
    return data


def _write(path, job, bots, **changes):
    try:
        try:
            data = _read(path)
        except (OSError, ValueError):
            data = {"job": job, "bots": {}}
        for bot in bots:
            data["bots"][bot] = {**data["bots"].get(bot, {"last_ok_at": None}), **changes}
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        log.warning("could not record the %s run in %s: %s", job, path, exc)
