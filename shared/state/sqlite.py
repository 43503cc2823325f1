"""SQLite files with versioned schemas: the state DB and the training DB both open this way.

    db = sqlite.open_database("state.db", MIGRATIONS, what="state DB")

Each entry of ``migrations`` is frozen SQL for one schema version, applied in
order inside one transaction, with the version kept in ``PRAGMA user_version``.
A DB made by an older release upgrades itself in place; one made by a newer
release is refused rather than guessed at. Models may change, a released step
never does: a new release appends a step (and the tests check that the models
and the migrated schema agree).
"""

from __future__ import annotations

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
