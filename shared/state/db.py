"""The state DB: one SQLite file (WAL) shared by every job and every bot.

Usage::

    from shared.state import db
    db.open("ssi-bot.db")                  # creates or upgrades the schema
    item = db.Item.get(bot="MyBot", key="t1_abc")

Tables
  Thing        reddit content we have read, keyed by fullname: the ancestry cache
               every prompt is built from. Shared by all bots.
  Item         one bot's unit of work, keyed by (bot, key): a post or comment it
               may answer (key = reddit fullname) or a post of its own
               (key = "submit:SUB:SLOT"). Its ``state`` is the state machine below.
  Decision     the reply probability, the one random draw and its reasons.
  Candidate    every generated text, accepted or rejected with the reason.
  PostAttempt  every call to reddit that writes, with its outcome.
  Cursor       per-bot listing positions, so fetch resumes where it stopped.

One item's life (docs/architecture.md)::

    seen ─decide─▶ skipped
         └──────▶ queued ─generate─▶ generated ─post─▶ posting ─▶ posted
                           └▶ failed                    └─▶ failed / generated (retry_at)

Every transition is one short transaction. ``posting`` is committed *before*
the reddit call, which is what lets a later run know an outcome is unknown
and look on reddit before posting again.

Schema versions live in ``PRAGMA user_version``; ``open`` applies the missing
steps of ``MIGRATIONS`` in order (shared/state/sqlite.py), so a DB made by an older
release upgrades itself in place.
"""

from __future__ import annotations

import collections
import json
import time

import peewee as pw
from playhouse.hybrid import hybrid_property

from shared.state import sqlite

database = pw.DatabaseProxy()

# Item states. Kept as plain strings in the DB so the file is readable with sqlite3.
SEEN, SKIPPED, QUEUED, GENERATED, POSTING, POSTED, FAILED = (
    "seen", "skipped", "queued", "generated", "posting", "posted", "failed")
STATES = (SEEN, SKIPPED, QUEUED, GENERATED, POSTING, POSTED, FAILED)
# States that count against the caps: the bot has committed to answering.
COMMITTED = (QUEUED, GENERATED, POSTING, POSTED)


# An item that is one of the bot's own posts has this key: the schedule slot is in it, so a
# slot can be queued only once (``submission_key``).
SUBMISSION_PREFIX = "submit:"


def now():
    return time.time()


def submission_key(subreddit: str, slot: int | None = None) -> str:
    """The item key of the bot's own post in ``subreddit`` for schedule ``slot``
    ("submit:SUB:SLOT"); without a slot, the prefix every slot of that subreddit shares."""
    prefix = f"{SUBMISSION_PREFIX}{subreddit.lower()}:"
    return prefix if slot is None else f"{prefix}{slot}"


class BaseModel(pw.Model):
    class Meta:
        database = database


class JSONField(pw.TextField):
    def db_value(self, value):
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class Thing(BaseModel):
    """A reddit post, comment or message as we last read it."""

    fullname = pw.CharField(primary_key=True)           # t1_… comment, t3_… post, t4_… message
    subreddit = pw.CharField(null=True)
    author = pw.CharField(null=True)                    # None: deleted account or deleted item
    author_flair = pw.CharField(null=True)
    title = pw.TextField(null=True)                     # posts and messages (subject)
    body = pw.TextField(default="")                     # comment body, selftext or message text
    is_link = pw.BooleanField(default=False)
    link_flair = pw.CharField(null=True)
    parent = pw.CharField(null=True)                    # parent fullname (comments, replies to messages)
    submission = pw.CharField(null=True, index=True)    # the post a comment belongs to
    depth = pw.IntegerField(null=True)                  # 0 = top-level comment; None for posts
    created_utc = pw.FloatField()
    locked = pw.BooleanField(default=False)
    removed = pw.BooleanField(default=False)
    deleted = pw.BooleanField(default=False)
    nsfw = pw.BooleanField(default=False)
    fetched_at = pw.FloatField(default=now)
    poll_options = JSONField(null=True)                 # a poll's option texts, in order

    @property
    def kind(self):
        return {"t1": "comment", "t3": "submission", "t4": "message"}[self.fullname[:2]]


class Item(BaseModel):
    """One bot's unit of work: something to maybe answer, or a post of its own."""

    bot = pw.CharField()
    key = pw.CharField()                                # reddit fullname, or submission_key(SUB, SLOT)
    source = pw.CharField()                             # listing, mention, comment_reply, post_reply, message, schedule
    state = pw.CharField(default=SEEN, index=True)
    subreddit = pw.CharField(null=True)
    thread = pw.CharField(null=True)                    # the post the answer lands in (per-thread caps)
    target_author = pw.CharField(null=True)             # whom the answer is to (per-user caps)
    is_link = pw.BooleanField(default=False)            # own posts: link or self
    image = pw.BooleanField(default=False)              # own posts: a link to an image found for the title
    url = pw.TextField(null=True)                       # own posts: the link posted (the image's URL)
    prompt = pw.TextField(null=True)
    title = pw.TextField(null=True)                     # own posts: accepted title
    text = pw.TextField(null=True)                      # accepted reply, or own post's body
    gen_attempts = pw.IntegerField(default=0)
    post_attempts = pw.IntegerField(default=0)
    retry_at = pw.FloatField(null=True)                 # post: not before this time (rate limits, backoff)
    result = pw.CharField(null=True)                    # fullname of what the bot posted
    reason = pw.TextField(null=True)                    # why skipped or failed (latest)
    created_at = pw.FloatField(default=now)
    updated_at = pw.FloatField(default=now, index=True)
    posted_at = pw.FloatField(null=True)

    class Meta:
        indexes = ((("bot", "key"), True), (("bot", "state"), False), (("bot", "thread"), False),
                   (("bot", "target_author"), False))

    @hybrid_property
    def is_submission(self):
        """True for the bot's own posts; on the class, the same test as a query expression
        (``Item.select().where(~Item.is_submission)``)."""
        return self.key.startswith(SUBMISSION_PREFIX)

    def move(self, state, **changes):
        """Move to ``state`` (and set ``changes``) in one committed write."""
        changes.update(state=state, updated_at=now())
        for name, value in changes.items():
            setattr(self, name, value)
        with database.atomic():
            self.save(only=[getattr(Item, name) for name in changes])
        return self


class Decision(BaseModel):
    item = pw.ForeignKeyField(Item, unique=True, on_delete="CASCADE", backref="decisions")
    probability = pw.FloatField()
    draw = pw.FloatField()
    reasons = JSONField()
    decided_at = pw.FloatField(default=now)


class Candidate(BaseModel):
    item = pw.ForeignKeyField(Item, on_delete="CASCADE", backref="candidates")
    raw = pw.TextField()                                # the model's continuation, as generated
    accepted = pw.BooleanField(default=False)
    reason = pw.TextField(null=True)                    # why it was rejected
    created_at = pw.FloatField(default=now)


class PostAttempt(BaseModel):
    item = pw.ForeignKeyField(Item, on_delete="CASCADE", backref="attempts")
    started_at = pw.FloatField(default=now)
    finished_at = pw.FloatField(null=True)
    outcome = pw.CharField(null=True)                   # posted, found, ratelimited, transient, permanent; None = unknown
    reason = pw.TextField(null=True)
    result = pw.CharField(null=True)


class Cursor(BaseModel):
    bot = pw.CharField()
    name = pw.CharField()                               # e.g. "new:a+b", "comments:a+b"
    value = pw.FloatField()                             # created_utc of the newest item stored
    updated_at = pw.FloatField(default=now)

    class Meta:
        indexes = ((("bot", "name"), True),)


TABLES = [Thing, Item, Decision, Candidate, PostAttempt, Cursor]


# --------------------------------------------------------------------------- schema versions

# Each step is frozen SQL (see shared/state/sqlite.py).
_V1 = """
CREATE TABLE "item" ("id" INTEGER NOT NULL PRIMARY KEY, "bot" VARCHAR(255) NOT NULL, "key" VARCHAR(255) NOT NULL,
  "source" VARCHAR(255) NOT NULL, "state" VARCHAR(255) NOT NULL, "subreddit" VARCHAR(255), "thread" VARCHAR(255),
  "target_author" VARCHAR(255), "is_link" INTEGER NOT NULL, "prompt" TEXT, "title" TEXT, "text" TEXT,
  "gen_attempts" INTEGER NOT NULL, "post_attempts" INTEGER NOT NULL, "retry_at" REAL, "result" VARCHAR(255),
  "reason" TEXT, "created_at" REAL NOT NULL, "updated_at" REAL NOT NULL, "posted_at" REAL);
CREATE INDEX "item_state" ON "item" ("state");
CREATE INDEX "item_updated_at" ON "item" ("updated_at");
CREATE UNIQUE INDEX "item_bot_key" ON "item" ("bot", "key");
CREATE INDEX "item_bot_state" ON "item" ("bot", "state");
CREATE TABLE "candidate" ("id" INTEGER NOT NULL PRIMARY KEY, "item_id" INTEGER NOT NULL, "raw" TEXT NOT NULL,
  "accepted" INTEGER NOT NULL, "reason" TEXT, "created_at" REAL NOT NULL,
  FOREIGN KEY ("item_id") REFERENCES "item" ("id") ON DELETE CASCADE);
CREATE INDEX "candidate_item_id" ON "candidate" ("item_id");
CREATE TABLE "cursor" ("id" INTEGER NOT NULL PRIMARY KEY, "bot" VARCHAR(255) NOT NULL, "name" VARCHAR(255) NOT NULL,
  "value" REAL NOT NULL, "updated_at" REAL NOT NULL);
CREATE UNIQUE INDEX "cursor_bot_name" ON "cursor" ("bot", "name");
CREATE TABLE "decision" ("id" INTEGER NOT NULL PRIMARY KEY, "item_id" INTEGER NOT NULL, "probability" REAL NOT NULL,
  "draw" REAL NOT NULL, "reasons" TEXT NOT NULL, "decided_at" REAL NOT NULL,
  FOREIGN KEY ("item_id") REFERENCES "item" ("id") ON DELETE CASCADE);
CREATE UNIQUE INDEX "decision_item_id" ON "decision" ("item_id");
CREATE TABLE "postattempt" ("id" INTEGER NOT NULL PRIMARY KEY, "item_id" INTEGER NOT NULL, "started_at" REAL NOT NULL,
  "finished_at" REAL, "outcome" VARCHAR(255), "reason" TEXT, "result" VARCHAR(255),
  FOREIGN KEY ("item_id") REFERENCES "item" ("id") ON DELETE CASCADE);
CREATE INDEX "postattempt_item_id" ON "postattempt" ("item_id");
CREATE TABLE "thing" ("fullname" VARCHAR(255) NOT NULL PRIMARY KEY, "subreddit" VARCHAR(255), "author" VARCHAR(255),
  "author_flair" VARCHAR(255), "title" TEXT, "body" TEXT NOT NULL, "is_link" INTEGER NOT NULL,
  "link_flair" VARCHAR(255), "parent" VARCHAR(255), "submission" VARCHAR(255), "depth" INTEGER,
  "created_utc" REAL NOT NULL, "locked" INTEGER NOT NULL, "removed" INTEGER NOT NULL, "deleted" INTEGER NOT NULL,
  "nsfw" INTEGER NOT NULL, "fetched_at" REAL NOT NULL);
CREATE INDEX "thing_submission" ON "thing" ("submission");
"""

# v2: the per-thread and per-author caps count items on every decision.
_V2 = """
CREATE INDEX "item_bot_thread" ON "item" ("bot", "thread");
CREATE INDEX "item_bot_target_author" ON "item" ("bot", "target_author");
"""

# v3: a poll's options, which the bot's prompts write after the post's body; image posts.
_V3 = """
ALTER TABLE "thing" ADD COLUMN "poll_options" TEXT;
ALTER TABLE "item" ADD COLUMN "image" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "item" ADD COLUMN "url" TEXT;
"""

MIGRATIONS = [_V1, _V2, _V3]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db=None):
    return sqlite.schema_version(db or database)


def open(path):
    """Open (creating or upgrading) the state DB at ``path`` and bind the models to it."""
    db = sqlite.open_database(path, MIGRATIONS, what="state DB", foreign_keys=1)
    database.initialize(db)
    return db


def open_readonly(path):
    """Bind the models to the state DB at ``path`` in SQLite's read-only mode, for a reader in
    a process of its own (the console: the models are bound process-wide, and the jobs of the
    same process would read and write through it). Read with ``reading()``."""
    database.initialize(sqlite.readonly_database(path))


def reading():
    """One consistent read of the DB bound by ``open_readonly``, connected for the block only;
    InputError (one line) when the file is missing, corrupt, not a state DB or too new."""
    return sqlite.reading(database.obj, MIGRATIONS, what="state DB")


def close():
    if database.obj is not None and not database.is_closed():
        database.close()


# --------------------------------------------------------------------------- common queries

def add_item(bot, key, source, **fields):
    """Insert an item unless (bot, key) exists; return (item, created).

    A mention or inbox reply that arrives after the same comment was seen in a
    listing upgrades the item's source, as long as it is not decided yet: the
    mention is what makes it worth answering.
    """
    with database.atomic():
        item = Item.get_or_none(bot=bot, key=key)
        if item is None:
            return Item.create(bot=bot, key=key, source=source, **fields), True
        if item.state == SEEN and item.source == "listing" and source != "listing":
            item.source = source
            item.save(only=[Item.source])
        return item, False


def mark_answered(bot, key, reply):
    """Record that ``bot`` already answered ``key`` with ``reply`` (seen on reddit)."""
    with database.atomic():
        item, _ = add_item(bot, key, "listing")
        if item.state != POSTED:
            item.move(POSTED, result=reply, posted_at=item.posted_at or now(),
                      reason="the bot's reply was already on reddit")


def record_decision(item, probability, draw, reasons, queue, reason=None):
    """Store the one draw for ``item`` and move it to queued or skipped (with ``reason``)."""
    with database.atomic():
        Decision.create(item=item, probability=probability, draw=draw, reasons=reasons)
        item.move(QUEUED if queue else SKIPPED, reason=reason)


def count_committed(bot, since, **where):
    """Answers ``bot`` decided to give since ``since`` and did not abandon (for the caps).

    Counted from decisions, not from posts: a reply queued a minute ago will
    be posted, so it counts against the hour it was decided in.
    """
    query = (Item.select().join(Decision)
             .where((Item.bot == bot) & Item.state.in_(COMMITTED) & (Decision.decided_at >= since)))
    for name, value in where.items():
        query = query.where(getattr(Item, name) == value)
    return query.count()


# The caps' windows (shared/config.py Caps): per_hour counts the last hour, the others the last day.
HOUR = 3600.0
DAY = 24 * HOUR


def cap_counts(bot, now, thread=None, target_author=None):
    """{"per_hour", "per_day"[, "per_thread"][, "per_user"]}: what ``bot`` has committed to in
    each cap's window, the numbers ``shared.bot.decide.cap_reached`` compares with the limits."""
    counts = {"per_hour": count_committed(bot, now - HOUR), "per_day": count_committed(bot, now - DAY)}
    if thread:
        counts["per_thread"] = count_committed(bot, now - DAY, thread=thread)
    if target_author:
        counts["per_user"] = count_committed(bot, now - DAY, target_author=target_author)
    return counts


def busiest(bot, since, column):
    """(value, count) of the ``column`` value ("thread" or "target_author") that ``bot`` committed
    to most often since ``since`` (the per-thread and per-user caps), or None."""
    # Counted here rather than by GROUP BY, which makes SQLite walk the column's index over
    # all of the bot's items; the committed ones of a day are few (the caps bound them).
    query = (Item.select(getattr(Item, column).alias("value")).join(Decision)
             .where((Item.bot == bot) & Item.state.in_(COMMITTED) & (Decision.decided_at >= since)))
    counts = collections.Counter(row.value for row in query if row.value is not None)
    return min(counts.items(), key=lambda pair: (-pair[1], pair[0])) if counts else None


def latest_failures(bot, limit):
    """``bot``'s newest failed items, newest first."""
    return list(Item.select().where((Item.bot == bot) & (Item.state == FAILED))
                .order_by(Item.updated_at.desc(), Item.id.desc()).limit(limit))


def state_counts(bot=None):
    """{bot: {state: count}} for every bot with items."""
    query = Item.select(Item.bot, Item.state, pw.fn.COUNT(Item.id).alias("n")).group_by(Item.bot, Item.state)
    if bot:
        query = query.where(Item.bot == bot)
    counts = {}
    for row in query:
        counts.setdefault(row.bot, dict.fromkeys(STATES, 0))[row.state] = row.n
    return counts


def store_things(records):
    """Insert or refresh Things from plain records (shared.bot.reddit.thing_row).

    A known depth is never forgotten: records read through /api/info carry no
    depth, while comment trees do. A record that changes nothing is not
    written at all, so a quiet fetch leaves the file as it was (and the next
    snapshot push has nothing to store).
    """
    if not records:
        return
    fetched_at = now()
    columns = [f for f in Thing._meta.sorted_field_names if f not in ("fullname", "fetched_at")]
    cached = things(r["fullname"] for r in records)
    with database.atomic():
        for record in records:
            row = {name: record.get(name, Thing._meta.fields[name].default) for name in columns}
            row = {k: (v() if callable(v) else v) for k, v in row.items()}
            old = cached.get(record["fullname"])
            if old is not None and all(getattr(old, k) == v for k, v in row.items()
                                       if k != "depth" or v is not None):
                continue
            update = {getattr(Thing, k): getattr(pw.EXCLUDED, k) for k in columns if k != "depth"}
            update[Thing.depth] = pw.fn.COALESCE(pw.EXCLUDED.depth, Thing.depth)
            update[Thing.fetched_at] = fetched_at
            (Thing.insert(fullname=record["fullname"], fetched_at=fetched_at, **row)
             .on_conflict(conflict_target=[Thing.fullname], update=update).execute())


def things(fullnames):
    """{fullname: Thing} for those of ``fullnames`` that are cached."""
    fullnames = list(set(fullnames))
    found = {}
    for start in range(0, len(fullnames), 500):  # SQLite's variable limit
        for thing in Thing.select().where(Thing.fullname.in_(fullnames[start:start + 500])):
            found[thing.fullname] = thing
    return found


def ancestry(fullname, limit):
    """The cached chain ending at ``fullname``, oldest first, at most ``limit`` Things.

    Walks parent links up to the post; stops early where the cache has a gap.
    """
    chain = []
    current = Thing.get_or_none(Thing.fullname == fullname)
    while current is not None and len(chain) < limit:
        chain.append(current)
        if current.parent is None:
            break
        current = Thing.get_or_none(Thing.fullname == current.parent)
    return list(reversed(chain))
