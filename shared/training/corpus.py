"""The training corpus: a subreddit's history in its own DB, as download stores it and export reads it.

One SQLite file (WAL), separate from the bot's state DB (``shared/state/db.py``):
it grows to gigabytes and is only needed offline. Its own ``DatabaseProxy``,
so both can be open in one process.

Usage::

    from shared.training import corpus
    corpus.open("training.db")                   # creates or upgrades the schema
    corpus.store([row, ...], progress)           # upsert rows and save the position, in one transaction
    corpus.CorpusPost.select().where(corpus.CorpusPost.subreddit == "science")

Tables
  CorpusPost      a post, keyed by its bare base-36 id (``"3hahrw"``).
  CorpusComment   a comment, keyed by its bare id; ``parent_id`` is a fullname
                  (``t1_…`` a comment, ``t3_…`` the post), ``link_id`` the post's
                  bare id (the CorpusPost key).
  ImportProgress  how far each import got (``source``, ``key``): a dump file's
                  decompressed byte offset and line number, or an API query's
                  last ``created_utc``, so an interrupted run resumes there.

Rows are the dicts of ``shared/records.py``. ``store`` upserts by id (the
newest read wins) and saves the progress in the same transaction, which is
what makes an import killed at any instant resume without duplicating or
losing a row. No column holds the time of the import, so importing the same
data twice gives the same file contents.

Schema versions live in ``PRAGMA user_version``, as in ``shared/state/db.py``.
"""

from __future__ import annotations

from pathlib import Path

import peewee as pw

from shared.state import sqlite
from shared.errors import InputError
from shared.records import COMMENT, COMMENT_COLUMNS, SUBMISSION, SUBMISSION_COLUMNS

database = pw.DatabaseProxy()


class BaseModel(pw.Model):
    class Meta:
        database = database


class CorpusPost(BaseModel):
    """A post of the training corpus (what download stored)."""

    id = pw.CharField(primary_key=True)                 # base-36, no t3_ prefix
    subreddit = pw.CharField()                          # lower case, for lookups
    subreddit_name = pw.CharField()                     # as reddit writes it
    author = pw.CharField(null=True)                    # None: deleted account
    title = pw.TextField()
    selftext = pw.TextField()
    url = pw.TextField(null=True)
    is_self = pw.BooleanField()
    over_18 = pw.BooleanField()
    score = pw.IntegerField()
    created_utc = pw.FloatField()
    deleted = pw.BooleanField()                         # the author deleted it
    removed = pw.BooleanField()                         # moderators or reddit removed it

    class Meta:
        table_name = "submission"
        indexes = ((("subreddit", "created_utc"), False),)


class CorpusComment(BaseModel):
    """A comment of the training corpus."""

    id = pw.CharField(primary_key=True)                 # base-36, no t1_ prefix
    subreddit = pw.CharField()
    subreddit_name = pw.CharField()
    author = pw.CharField(null=True)
    body = pw.TextField()
    score = pw.IntegerField()
    created_utc = pw.FloatField()
    parent_id = pw.CharField()                          # "t1_…" (a comment) or "t3_…" (the post)
    link_id = pw.CharField(index=True)                  # the post's bare id
    deleted = pw.BooleanField()
    removed = pw.BooleanField()

    class Meta:
        table_name = "comment"
        indexes = ((("subreddit", "created_utc"), False),)


class ImportProgress(BaseModel):
    source = pw.CharField()                             # "dump", "arctic-shift", "pushshift"
    key = pw.CharField()                                # the file and filters, or the query
    position = pw.FloatField(default=0)                 # files: byte offset; APIs: last created_utc
    line = pw.IntegerField(default=0)                   # files: lines read; APIs: items read
    imported = pw.IntegerField(default=0)               # rows stored
    skipped = pw.IntegerField(default=0)                # other subreddits or dates
    malformed = pw.IntegerField(default=0)              # lines that were not a post or comment
    fingerprint = pw.CharField(null=True)               # files: size and mtime; a changed file starts over
    done = pw.BooleanField(default=False)

    class Meta:
        table_name = "import_progress"
        primary_key = pw.CompositeKey("source", "key")


TABLES = [CorpusPost, CorpusComment, ImportProgress]
_MODELS = {SUBMISSION: (CorpusPost, SUBMISSION_COLUMNS), COMMENT: (CorpusComment, COMMENT_COLUMNS)}


# --------------------------------------------------------------------------- schema versions

# Each step is frozen SQL (see shared/state/sqlite.py).
_V1 = """
CREATE TABLE "comment" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, "subreddit" VARCHAR(255) NOT NULL,
  "subreddit_name" VARCHAR(255) NOT NULL, "author" VARCHAR(255), "body" TEXT NOT NULL, "score" INTEGER NOT NULL,
  "created_utc" REAL NOT NULL, "parent_id" VARCHAR(255) NOT NULL, "link_id" VARCHAR(255) NOT NULL,
  "deleted" INTEGER NOT NULL, "removed" INTEGER NOT NULL);
CREATE INDEX "comment_link_id" ON "comment" ("link_id");
CREATE INDEX "comment_subreddit_created_utc" ON "comment" ("subreddit", "created_utc");
CREATE TABLE "import_progress" ("source" VARCHAR(255) NOT NULL, "key" VARCHAR(255) NOT NULL,
  "position" REAL NOT NULL, "line" INTEGER NOT NULL, "imported" INTEGER NOT NULL, "skipped" INTEGER NOT NULL,
  "malformed" INTEGER NOT NULL, "fingerprint" VARCHAR(255), "done" INTEGER NOT NULL, PRIMARY KEY ("source", "key"));
CREATE TABLE "submission" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, "subreddit" VARCHAR(255) NOT NULL,
  "subreddit_name" VARCHAR(255) NOT NULL, "author" VARCHAR(255), "title" TEXT NOT NULL, "selftext" TEXT NOT NULL,
  "url" TEXT, "is_self" INTEGER NOT NULL, "over_18" INTEGER NOT NULL, "score" INTEGER NOT NULL,
  "created_utc" REAL NOT NULL, "deleted" INTEGER NOT NULL, "removed" INTEGER NOT NULL);
CREATE INDEX "submission_subreddit_created_utc" ON "submission" ("subreddit", "created_utc");
"""

MIGRATIONS = [_V1]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db=None):
    return sqlite.schema_version(db or database)


def open(path, must_exist=False):
    """Open (creating or upgrading) the training DB at ``path``; bind the models to it.

    With ``must_exist``, a missing file is an InputError (export reads, it never creates).
    """
    if must_exist and str(path) != ":memory:" and not Path(path).is_file():
        raise InputError(f"{path}: no training DB yet (run python -m jobs.download first, "
                         "or set training.db in the config)")
    # 16 MB of page cache: dump rows arrive about in id order, so upserts touch few
    # pages; 64 MB was no faster and grew the importer's memory by 50 MB.
    db = sqlite.open_database(path, MIGRATIONS, what="training DB", cache_size=-16_000)
    database.initialize(db)
    return db


def close():
    if database.obj is not None and not database.is_closed():
        database.close()


# --------------------------------------------------------------------------- writes

def _upsert_sql(model, columns):
    """``INSERT ... ON CONFLICT(id) DO UPDATE``: one statement, run with executemany.

    Built once from the model; peewee's per-row query building would cost more
    than SQLite's work on a dump of millions of lines.
    """
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c != "id")
    return (f'INSERT INTO "{model._meta.table_name}" ({names}) VALUES ({marks}) '
            f'ON CONFLICT("id") DO UPDATE SET {updates}')


_UPSERTS = {kind: (columns, _upsert_sql(model, columns)) for kind, (model, columns) in _MODELS.items()}


def store(rows, progress=None):
    """Upsert ``rows`` (records.normalise dicts) and save ``progress``, in one transaction.

    Rows with the same id: the last one wins, as if stored one by one.
    """
    by_kind = {SUBMISSION: {}, COMMENT: {}}
    for row in rows:
        by_kind[row["kind"]][row["id"]] = row
    with database.atomic():
        for kind, unique in by_kind.items():
            if unique:
                columns, sql = _UPSERTS[kind]
                database.cursor().executemany(sql, [tuple(row[c] for c in columns) for row in unique.values()])
        if progress is not None:
            save_progress(progress)


def progress_for(source, key, fingerprint=None):
    """The ImportProgress of (source, key), new or stored; a changed fingerprint starts over."""
    progress = ImportProgress.get_or_none(source=source, key=key)
    if progress is None:
        return ImportProgress(source=source, key=key, fingerprint=fingerprint)
    if progress.fingerprint != fingerprint:
        progress.position, progress.line, progress.done = 0, 0, False
        progress.imported = progress.skipped = progress.malformed = 0
        progress.fingerprint = fingerprint
    return progress


def save_progress(progress):
    """Insert or update ``progress`` (CompositeKey models need an explicit upsert)."""
    fields = {f: getattr(progress, f) for f in ImportProgress._meta.sorted_field_names}
    (ImportProgress.insert(**fields)
     .on_conflict(conflict_target=[ImportProgress.source, ImportProgress.key],
                  update={getattr(ImportProgress, f): v for f, v in fields.items()
                          if f not in ("source", "key")})
     .execute())


# --------------------------------------------------------------------------- reads

def subreddit_counts():
    """{subreddit (lower case): (display name, submissions, comments)} for the whole DB."""
    counts = {}
    for model, slot in ((CorpusPost, 1), (CorpusComment, 2)):
        query = (model.select(model.subreddit, pw.fn.MIN(model.subreddit_name), pw.fn.COUNT(model.id))
                 .group_by(model.subreddit).tuples())
        for sub, name, n in query:
            entry = list(counts.get(sub, (name, 0, 0)))
            entry[slot] = n
            counts[sub] = tuple(entry)
    return counts


def has_rows(subreddit):
    """True when the DB holds a submission or a comment of ``subreddit`` (any case)."""
    sub = subreddit.lower()
    return (CorpusPost.select().where(CorpusPost.subreddit == sub).exists()
            or CorpusComment.select().where(CorpusComment.subreddit == sub).exists())
