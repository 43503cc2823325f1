"""SQLite files with versioned schemas: the state DB and the training DB both open this way.

    db = sqlite.open_database("state.db", MIGRATIONS, what="state DB")
    db = sqlite.readonly_database("state.db")                  # readers in their own process
    with sqlite.reading(db, MIGRATIONS, what="state DB"): ...  # one consistent read

Each entry of ``migrations`` is frozen SQL for one schema version, applied in
order inside one transaction, with the version kept in ``PRAGMA user_version``.
A DB made by an older release upgrades itself in place; one made by a newer
release is refused rather than guessed at. Models may change, a released step
never does: a new release appends a step (and the tests check that the models
and the migrated schema agree).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import peewee as pw

from shared.errors import InputError

PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",     # WAL + normal: a crash loses at most the last commits, never corrupts
    "busy_timeout": 30_000,      # jobs from crontab and run.py may overlap briefly
}


def schema_version(db):
    return db.execute_sql("PRAGMA user_version").fetchone()[0]


def migrate(db, migrations, what="DB"):
    """Bring ``db`` up to ``len(migrations)``, one step per transaction."""
    current, latest = schema_version(db), len(migrations)
    if current > latest:
        raise InputError(f"{db.database}: {what} schema version {current} is newer than this release "
                         f"understands ({latest}); upgrade ssi-bot")
    for version in range(current + 1, latest + 1):
        with db.atomic():
            for statement in migrations[version - 1].split(";"):
                if statement.strip():
                    db.execute_sql(statement)
            db.execute_sql(f"PRAGMA user_version = {version}")


def open_database(path, migrations, what="DB", **pragmas):
    """A connected peewee SqliteDatabase at ``path``, migrated to the latest version."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = pw.SqliteDatabase(str(path), pragmas={**PRAGMAS, **pragmas})
    db.connect(reuse_if_open=True)
    migrate(db, migrations, what)
    return db


def readonly_database(path):
    """A peewee SqliteDatabase on ``path`` in SQLite's read-only mode (URI ``mode=ro``), not
    connected: ``reading`` connects it. It never creates, migrates or writes the file, and
    takes no lock but SQLite's shared read locks, so it works while jobs write (WAL)."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    db = pw.SqliteDatabase(uri, uri=True, autoconnect=False,
                           pragmas={"busy_timeout": PRAGMAS["busy_timeout"]})
    db.path = str(path)           # for messages: the URI is not what the user wrote
    return db


@contextlib.contextmanager
def reading(db, migrations, what="DB"):
    """Connect ``db`` (a ``readonly_database``), check it is a DB this release reads, and hold
    one read transaction (a consistent view) for the block; then close the connection, so a
    reader never keeps the file open between reads (a restore refuses an open DB).

    Raises InputError, one line, for a missing file, one that is not SQLite or not this kind
    of DB, and one from another release: a reader never migrates (a job does, when it opens
    the DB), and the models name columns that an older schema lacks."""
    path = db.path
    if not Path(path).is_file():
        raise InputError(f"{path}: no {what} there yet (it is created by the first job that runs)")
    try:
        db.connect(reuse_if_open=True)
        version = schema_version(db)
    except pw.DatabaseError as exc:
        db.close()
        raise InputError(f"{path}: cannot read it as a {what} ({exc})") from None
    try:
        if version == 0:
            raise InputError(f"{path}: not a {what} (no schema; is db: the right file?)")
        if version > len(migrations):
            raise InputError(f"{path}: {what} schema version {version} is newer than this release "
                             f"understands ({len(migrations)}); upgrade ssi-bot")
        if version < len(migrations):
            raise InputError(f"{path}: {what} schema version {version} is older than this release's "
                             f"({len(migrations)}); any job upgrades it when it runs (python -m jobs.status "
                             "does, and changes nothing else)")
        with db.atomic():
            yield db
    except pw.DatabaseError as exc:
        raise InputError(f"{path}: cannot read it as a {what} ({exc})") from None
    finally:
        db.close()
