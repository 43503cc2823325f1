"""The sandbox's state in SQLite: accounts, tokens, subreddits, things, inbox, bans, flair.

One connection, guarded by one re-entrant lock: the HTTP server runs a thread per
connection, and a whole reddit operation (store a comment, fan out its inbox items)
must be atomic. ``path=None`` keeps everything in memory; a file path survives restarts::

    store = Store("sandbox.db")
    with store.tx():
        seq = store.insert_thing("t1", author="alice", ...)

Submissions (t3), comments (t1) and private messages (t4) share one table and one id
sequence, so every fullname is unique and every id is reddit-style base36.
Listings are ordered newest first by (created_utc, seq); ``set_created`` can move
a thing in time, and seq breaks ties within a second.
"""

import sqlite3
import threading
from contextlib import contextmanager

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT PRIMARY KEY COLLATE NOCASE, id TEXT NOT NULL, password TEXT NOT NULL,
    created_utc REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, account TEXT COLLATE NOCASE, client_id TEXT NOT NULL,
    scope TEXT NOT NULL, created_utc REAL NOT NULL);
CREATE TABLE IF NOT EXISTS subreddits (
    name TEXT PRIMARY KEY COLLATE NOCASE, id TEXT NOT NULL, created_utc REAL NOT NULL);
-- One id sequence for every kind, so that ids never repeat across kinds.
CREATE TABLE IF NOT EXISTS ids (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS things (
    seq INTEGER PRIMARY KEY,            -- = ids.seq

    kind TEXT NOT NULL,                 -- t1 comment, t3 submission, t4 message
    id TEXT NOT NULL UNIQUE,
    author TEXT NOT NULL,
    subreddit TEXT COLLATE NOCASE,      -- NULL for messages
    link_id TEXT, parent_id TEXT,       -- t1: submission and parent fullnames; t4: parent
    title TEXT, body TEXT NOT NULL DEFAULT '', url TEXT, is_self INTEGER,
    dest TEXT, subject TEXT, first_message TEXT,
    flair_id TEXT, flair_text TEXT, poll_options TEXT,   -- poll_options: JSON list of option texts
    over_18 INTEGER NOT NULL DEFAULT 0, spoiler INTEGER NOT NULL DEFAULT 0,
    send_replies INTEGER NOT NULL DEFAULT 1,
    created_utc REAL NOT NULL, edited REAL,
    locked INTEGER NOT NULL DEFAULT 0, removed INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS things_by_sub ON things (kind, subreddit, created_utc, seq);
CREATE INDEX IF NOT EXISTS things_by_author ON things (author COLLATE NOCASE, kind, created_utc);
CREATE INDEX IF NOT EXISTS things_by_link ON things (link_id);
CREATE INDEX IF NOT EXISTS things_by_parent ON things (parent_id);
CREATE TABLE IF NOT EXISTS inbox (
    owner TEXT NOT NULL COLLATE NOCASE, fullname TEXT NOT NULL, type TEXT NOT NULL,
    new INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (owner, fullname));
CREATE TABLE IF NOT EXISTS banned_domains (domain TEXT PRIMARY KEY COLLATE NOCASE, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bans (
    subreddit TEXT NOT NULL COLLATE NOCASE, account TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (subreddit, account));
CREATE TABLE IF NOT EXISTS user_flair (
    subreddit TEXT NOT NULL COLLATE NOCASE, account TEXT NOT NULL COLLATE NOCASE, text TEXT,
    PRIMARY KEY (subreddit, account));
CREATE TABLE IF NOT EXISTS link_flair (
    subreddit TEXT NOT NULL COLLATE NOCASE, template_id TEXT NOT NULL, text TEXT,
    PRIMARY KEY (subreddit, template_id));
"""

# Ids start at 6 base36 digits so they look like reddit's ("100000" onwards).
ID_OFFSET = 36 ** 5
DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(number):
    out = ""
    while number:
        number, digit = divmod(number, 36)
        out = DIGITS[digit] + out
    return out or "0"


def split_fullname(fullname):
    """'t1_abc' -> ('t1', 'abc'); anything else -> (None, None)."""
    kind, sep, thing_id = (fullname or "").partition("_")
    if not sep or kind not in ("t1", "t3", "t4") or not thing_id:
        return None, None
    return kind, thing_id.lower()


class Store:
    def __init__(self, path=None):
        self.path = str(path) if path else ":memory:"
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        if path:
            # WAL + NORMAL: a killed sandbox loses at most the last commit, never the file.
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        columns = {row["name"] for row in self._conn.execute("PRAGMA table_info(things)")}
        if "poll_options" not in columns:   # a sandbox file from before polls
            self._conn.execute("ALTER TABLE things ADD COLUMN poll_options TEXT")

    def close(self):
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self):
        """Hold the lock and, for the outermost call, one transaction."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._conn.execute("COMMIT")

    # -- low level --------------------------------------------------------------------
    def all(self, sql, args=()):
        with self._lock:
            return [dict(row) for row in self._conn.execute(sql, args)]

    def one(self, sql, args=()):
        rows = self.all(sql, args)
        return rows[0] if rows else None

    def run(self, sql, args=()):
        with self._lock:
            return self._conn.execute(sql, args).lastrowid

    # -- accounts and tokens ----------------------------------------------------------
    def account(self, name):
        return self.one("SELECT * FROM accounts WHERE name = ?", (name,))

    def create_account(self, name, password, now):
        with self.tx():
            _, account_id = self.new_id("t2")
            self.run("INSERT INTO accounts VALUES (?, ?, ?, ?)", (name, account_id, password, now))
        return self.account(name)

    def add_token(self, token, account, client_id, scope, now):
        self.run("INSERT INTO tokens VALUES (?, ?, ?, ?, ?)", (token, account, client_id, scope, now))

    def token(self, token):
        return self.one("SELECT * FROM tokens WHERE token = ?", (token,))

    def revoke_tokens(self, account=None):
        with self.tx():
            if account is None:
                count = len(self.all("SELECT token FROM tokens"))
                self.run("DELETE FROM tokens")
            else:
                count = len(self.all("SELECT token FROM tokens WHERE account = ?", (account,)))
                self.run("DELETE FROM tokens WHERE account = ?", (account,))
        return count

    # -- subreddits -------------------------------------------------------------------
    def subreddit(self, name):
        return self.one("SELECT * FROM subreddits WHERE name = ?", (name,))

    def get_or_create_subreddit(self, name, now):
        with self.tx():
            row = self.subreddit(name)
            if row is None:
                _, sub_id = self.new_id("t5")
                self.run("INSERT INTO subreddits VALUES (?, ?, ?)", (name, sub_id, now))
                row = self.subreddit(name)
        return row

    # -- things -----------------------------------------------------------------------
    def new_id(self, kind):
        """(seq, base36 id) for a new thing of ``kind``."""
        seq = self.run("INSERT INTO ids (kind) VALUES (?)", (kind,))
        return seq, base36(ID_OFFSET + seq)

    def insert_thing(self, kind, **fields):
        """Insert a t1/t3/t4 row; return it with its new base36 ``id``."""
        with self.tx():
            seq, thing_id = self.new_id(kind)
            fields = {"seq": seq, "kind": kind, "id": thing_id, **fields}
            marks = ", ".join("?" * len(fields))
            self.run(f"INSERT INTO things ({', '.join(fields)}) VALUES ({marks})", tuple(fields.values()))
            return self.one("SELECT * FROM things WHERE seq = ?", (seq,))

    def thing(self, fullname):
        kind, thing_id = split_fullname(fullname)
        if kind is None:
            return None
        return self.one("SELECT * FROM things WHERE kind = ? AND id = ?", (kind, thing_id))

    def update_thing(self, fullname, **fields):
        kind, thing_id = split_fullname(fullname)
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self.tx():
            self.run(f"UPDATE things SET {sets} WHERE kind = ? AND id = ?", (*fields.values(), kind, thing_id))
        return self.thing(fullname)

    def page(self, where, args, *, before=None, after=None, limit=25):
        """One page of ``things`` matching ``where``, newest first.

        ``before``/``after`` are fullnames (``before`` wins when both are given, as on
        reddit). Returns (rows, more_in_travel_direction, more_on_the_other_side).
        """
        anchor_name = before or after
        anchor = self.thing(anchor_name) if anchor_name else None
        if anchor_name and anchor is None:
            return [], False, False
        args = list(args)
        if anchor is None:
            sql = f"SELECT * FROM things WHERE {where} ORDER BY created_utc DESC, seq DESC LIMIT ?"
            rows = self.all(sql, [*args, limit + 1])
            return rows[:limit], len(rows) > limit, False
        cmp, order = (">", "ASC") if before else ("<", "DESC")
        sql = (f"SELECT * FROM things WHERE ({where}) AND (created_utc, seq) {cmp} (?, ?) "
               f"ORDER BY created_utc {order}, seq {order} LIMIT ?")
        rows = self.all(sql, [*args, anchor["created_utc"], anchor["seq"], limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        if before:
            rows.reverse()
        return rows, more, True

    def comments_of(self, link_fullname):
        return self.all("SELECT * FROM things WHERE kind = 't1' AND link_id = ? ORDER BY created_utc, seq",
                        (link_fullname,))

    def num_comments(self, link_fullname):
        row = self.one("SELECT COUNT(*) AS n FROM things WHERE kind = 't1' AND link_id = ?", (link_fullname,))
        return row["n"]

    def ban_domain(self, domain, reason, banned=True):
        if banned:
            self.run("INSERT OR REPLACE INTO banned_domains VALUES (?, ?)", (domain.lower(), reason))
        else:
            self.run("DELETE FROM banned_domains WHERE domain = ?", (domain.lower(),))

    def domain_ban(self, host):
        """(banned domain, reason) covering ``host`` (itself or a parent domain), or None."""
        parts = (host or "").lower().split(".")
        for i in range(len(parts) - 1):
            row = self.one("SELECT * FROM banned_domains WHERE domain = ?", (".".join(parts[i:]),))
            if row:
                return row["domain"], row["reason"]
        return None

    def conversation(self, root_id):
        """The messages of the conversation whose first message is ``root_id``, oldest first."""
        return self.all("SELECT * FROM things WHERE kind = 't4' AND (id = ? OR first_message = ?) "
                        "ORDER BY created_utc, seq", (root_id, root_id))

    def replies_to(self, fullname):
        return self.all("SELECT * FROM things WHERE parent_id = ? ORDER BY created_utc, seq", (fullname,))

    def by_author(self, author, kind):
        return self.all("SELECT * FROM things WHERE kind = ? AND author = ? COLLATE NOCASE "
                        "ORDER BY created_utc DESC, seq DESC", (kind, author))

    def link_posted(self, subreddit, url):
        return self.one("SELECT id FROM things WHERE kind = 't3' AND subreddit = ? AND url = ? "
                        "AND is_self = 0 AND deleted = 0", (subreddit, url)) is not None

    # -- inbox ------------------------------------------------------------------------
    def add_inbox(self, owner, fullname, item_type):
        self.run("INSERT OR IGNORE INTO inbox (owner, fullname, type) VALUES (?, ?, ?)",
                 (owner, fullname, item_type))

    def inbox_filter(self, owner, types=None, unread_only=False):
        """SQL (where, args) selecting the ``things`` in ``owner``'s inbox."""
        where = "inbox.owner = ?"
        args = [owner]
        if types:
            where += f" AND inbox.type IN ({', '.join('?' * len(types))})"
            args += list(types)
        if unread_only:
            where += " AND inbox.new = 1"
        inner = f"SELECT fullname FROM inbox WHERE {where}"
        return f"(kind || '_' || id) IN ({inner})", args

    def inbox_entry(self, owner, fullname):
        return self.one("SELECT * FROM inbox WHERE owner = ? AND fullname = ?", (owner, fullname))

    def inbox_of(self, owner):
        return self.all("SELECT * FROM inbox WHERE owner = ?", (owner,))

    def mark(self, owner, fullnames, new):
        with self.tx():
            for fullname in fullnames:
                self.run("UPDATE inbox SET new = ? WHERE owner = ? AND fullname = ?",
                         (int(new), owner, fullname))

    def mark_all_read(self, owner):
        self.run("UPDATE inbox SET new = 0 WHERE owner = ?", (owner,))

    def unread_count(self, owner):
        return self.one("SELECT COUNT(*) AS n FROM inbox WHERE owner = ? AND new = 1", (owner,))["n"]

    # -- moderation -------------------------------------------------------------------
    def set_ban(self, subreddit, account, banned):
        if banned:
            self.run("INSERT OR IGNORE INTO bans VALUES (?, ?)", (subreddit, account))
        else:
            self.run("DELETE FROM bans WHERE subreddit = ? AND account = ?", (subreddit, account))

    def is_banned(self, subreddit, account):
        return self.one("SELECT 1 FROM bans WHERE subreddit = ? AND account = ?", (subreddit, account)) is not None

    def set_user_flair(self, subreddit, account, text):
        self.run("INSERT OR REPLACE INTO user_flair VALUES (?, ?, ?)", (subreddit, account, text))

    def user_flair(self, subreddit, account):
        row = self.one("SELECT text FROM user_flair WHERE subreddit = ? AND account = ?", (subreddit, account))
        return row["text"] if row else None

    def set_link_flair(self, subreddit, template_id, text):
        self.run("INSERT OR REPLACE INTO link_flair VALUES (?, ?, ?)", (subreddit, template_id, text))

    def link_flair(self, subreddit, template_id):
        row = self.one("SELECT text FROM link_flair WHERE subreddit = ? AND template_id = ?",
                       (subreddit, template_id))
        return row["text"] if row else None
