"""State that survives the machine: numbered SQLite snapshots in S3 (or a folder).

Usage::

    from shared.state import replica
    replica.restore_if_missing(config)     # before db.open: an empty disk gets the newest snapshot
    replica.push(config)                   # after a cycle: snapshot, compress, upload as the next number
    replica.restore(config, force=False)   # pull: newest good snapshot into place
    replica.snapshots(config)              # [Snapshot(generation, key, size, modified)]

Objects are ``{prefix}/snapshots/{generation:012d}.db.zst`` (zero-padded, so key
order is number order): a ``VACUUM INTO`` copy of the live DB taken from a
fresh connection (never one holding a write transaction), zstd-compressed,
with metadata ``sha256`` (of the uncompressed file) and ``base`` (the
generation it was based on, 0 for none). They are written only with the
storage's put-if-absent (shared/state/storage.py), so no object is ever replaced.

No lost update
    Every local DB remembers, in its one-row ``s3sync_state`` table, the
    generation it was restored from or last pushed as: its *base*. A push
    is allowed only while the base is the newest generation in storage, and
    it takes base+1 with put-if-absent. So every stored generation N+1 was
    taken from a DB that already held N, and holds all of N's changes: the
    history is one line. A runner whose base is older than the newest
    generation is *stale* (another runner pushed since): its push is refused
    with ``StaleState``, never stored under another number, unless forced.
    When two runners based on N race for N+1, exactly one object is stored;
    the other gets ``Conflict`` and is refused as stale the same way.

    Two exceptions, both explicit: a forced push (``force=True``), and a
    restore that refused corrupt snapshots and fell back to an older one:
    that DB's base is the good one, and the refused numbers above it count
    as seen, so its next push skips them (``seen`` in the state table).

Crash safety
    A push records the generation and checksum it is about to upload
    (``pending``) before the upload. If the process dies after the upload but
    before recording success, the next push finds that object, sees its own
    checksum and adopts it as the base instead of calling itself stale. A
    restore writes the snapshot to a temporary file beside the DB, checks its
    sha256 and ``PRAGMA quick_check``, records its generation in it, then
    moves it into place with ``os.replace``: the DB is the old one or the new
    one, never half of either.

A local DB is never replaced by a restore when it is as new as or newer than
the newest snapshot, nor when it was never synced at all, unless forced; and
never while another process has it open. Pushing a DB whose content has not
changed since its base stores nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import zstandard
from filelock import FileLock, Timeout

from shared.errors import ConfigError, InputError
from shared.state.lock import lock_path
from shared.files import fsync
from shared.state.storage import Conflict, LocalStorage, NotFound, S3Storage

log = logging.getLogger("sync")

SNAPSHOTS = "snapshots/"
_SNAPSHOT_KEY = re.compile(r"^snapshots/(\d{12})\.db\.zst$")
ZSTD_LEVEL = 6                 # about 4x on the state DB, well under a second for tens of MB
LOCK_TIMEOUT = 600.0           # seconds a push or restore waits for another one on the same DB

STATE_TABLE = "s3sync_state"
_STATE_SCHEMA = f"""CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  generation INTEGER,          -- the snapshot this DB was restored from or last pushed as (its base)
  seen INTEGER,                -- newest generation seen then (above generation: refused as corrupt)
  pending_generation INTEGER,  -- a push in flight: the number it is taking ...
  pending_sha256 TEXT,         -- ... and the checksum it uploads
  fingerprint TEXT,            -- content fingerprint of the base (unchanged DB: nothing to push)
  updated_at REAL NOT NULL)"""
_STATE_COLUMNS = ("generation", "seen", "pending_generation", "pending_sha256", "fingerprint")


class StaleState(InputError):
    """Storage holds a generation newer than this DB's base: pushing would lose its changes."""


class CorruptSnapshot(InputError):
    """A snapshot failed its checks (checksum, decompression, quick_check), or none passed."""


class NoSnapshot(InputError):
    """Storage holds no snapshot yet."""


@dataclass
class Snapshot:
    generation: int
    key: str
    size: int                 # compressed bytes in storage
    modified: float


@dataclass
class SyncState:
    generation: int | None = None
    seen: int | None = None
    pending_generation: int | None = None
    pending_sha256: str | None = None
    fingerprint: str | None = None

    @property
    def known(self):
        """The newest generation this DB has accounted for (its base, or refused ones above it)."""
        numbers = [n for n in (self.generation, self.seen) if n is not None]
        return max(numbers) if numbers else None


@dataclass
class Pushed:
    generation: int
    base: int
    size: int                 # uncompressed bytes
    stored: int               # compressed bytes
    sha256: str
    seconds: float


@dataclass
class Restored:
    generation: int
    size: int
    path: str
    refused: list             # generations refused on the way (newest first)
    seconds: float


# --------------------------------------------------------------------------- configuration

def enabled(config):
    """True when ssi-bot.yaml names a bucket or a directory for snapshots."""
    return bool(config.snapshots.bucket or config.snapshots.directory)


def storage_for(config):
    """The storage ssi-bot.yaml's ``snapshots`` section names, or None when sync is off."""
    where = config.snapshots
    if where.directory:
        return LocalStorage(Path(where.directory) / where.prefix.strip("/"))
    if where.bucket:
        return S3Storage(where.bucket, prefix=where.prefix, region=where.region, endpoint_url=where.endpoint_url)
    return None


def _require_storage(config):
    storage = storage_for(config)
    if storage is None:
        where = f" in {config.path}" if config.path else ""
        raise ConfigError(f"snapshots.bucket and snapshots.directory are empty{where}: set one to sync the state DB")
    return storage


# --------------------------------------------------------------------------- the public operations

def push(config, force=False):
    """Snapshot config.db and store it as the next generation (see push_db)."""
    return push_db(config.db, _require_storage(config), keep=config.snapshots.keep, force=force)


def restore(config, force=False):
    """Put the newest good snapshot in place of config.db (see restore_db)."""
    return restore_db(config.db, _require_storage(config), force=force)


def snapshots(config):
    """Every stored snapshot, oldest first."""
    return list_snapshots(_require_storage(config))


def restore_if_missing(config):
    """Restore config.db from the newest snapshot when the file is missing and sync is on.

    Call it before anything opens the DB (run.py at start, a single-job run).
    Returns True when a snapshot was restored; False when sync is off, the DB
    exists, or storage has no snapshot yet (a new bot starts empty). Raises
    ConfigError for storage it cannot reach, CorruptSnapshot when snapshots
    exist but none passes its checks.
    """
    storage = storage_for(config)
    if storage is None or config.db == ":memory:" or os.path.exists(config.db):
        return False
    with _sync_lock(config.db):
        if os.path.exists(config.db):
            return False           # another process restored it while we waited
        try:
            return _restore_locked(str(config.db), storage, force=False) is not None
        except NoSnapshot:
            log.info("no snapshot in %s yet: starting with a new DB", storage.describe())
            return False


def push_db(db_path, storage, keep=48, force=False, level=ZSTD_LEVEL):
    """Store a consistent snapshot of ``db_path`` as generation base+1.

    Returns ``Pushed``, or None when the DB has not changed since its base.
    Raises ``StaleState`` when storage has moved past this DB's base (another
    runner pushed), before or during the upload, unless ``force``. Retention
    then deletes all but the newest ``keep`` snapshots.
    """
    db_path = str(db_path)
    if not os.path.exists(db_path):
        raise InputError(f"{db_path}: no DB to push (restore it first: python -m jobs.sync pull)")
    started = time.monotonic()
    with _sync_lock(db_path):
        _remove_leftovers(db_path)
        _ensure_state_table(db_path)
        state = read_state(db_path)
        stored = list_snapshots(storage)
        newest = stored[-1].generation if stored else None
        if state.pending_generation is not None:
            state = _settle_pending(db_path, storage, state)
        known = state.known
        stale = newest is not None and (known is None or newest > known)
        if stale:
            if not force:
                raise StaleState(_stale_message(db_path, storage, known, newest))
            log.warning("forced push over %012d: this DB was based on %s", newest, _gen(known))
        generation = max(newest or 0, known or 0) + 1
        with _temporary(db_path, "snapshot") as temp:
            _vacuum_into(db_path, temp)
            fingerprint = _fingerprint(temp)
            if fingerprint == state.fingerprint and newest == known and not force:
                log.info("unchanged since snapshot %s: nothing to push", _gen(known))
                return None
            raw = Path(temp).read_bytes()
        sha = hashlib.sha256(raw).hexdigest()
        data = zstandard.ZstdCompressor(level=level).compress(raw)
        metadata = {"sha256": sha, "base": state.generation or 0, "size": len(raw),
                    "created": f"{time.time():.3f}", "forced": int(stale)}
        key = snapshot_key(generation)
        write_state(db_path, pending_generation=generation, pending_sha256=sha)
        if not _put_once(storage, key, data, metadata):
            write_state(db_path, pending_generation=None, pending_sha256=None)
            raise StaleState(f"{db_path}: another runner stored snapshot {generation:012d} while this one "
                             f"was pushing; this DB (based on {_gen(known)}) is stale and was not pushed "
                             "(pull to take the newer state, or push --force to override it)")
        write_state(db_path, generation=generation, seen=generation, pending_generation=None,
                    pending_sha256=None, fingerprint=fingerprint)
        seconds = time.monotonic() - started
        log.info("pushed snapshot %012d (%s, zstd %.1fx) in %.1fs", generation, _size(len(raw)),
                 len(raw) / max(1, len(data)), seconds)
        _apply_retention(storage, keep)
        return Pushed(generation, state.generation or 0, len(raw), len(data), sha, seconds)


def restore_db(db_path, storage, force=False):
    """Replace ``db_path`` with the newest snapshot that passes its checks.

    Returns ``Restored``, or None when the local DB was kept because it is as
    new as the newest snapshot (or newer than every good one). Refuses (with
    InputError) a local DB that was never synced, and any DB another process
    has open; ``force`` replaces the first kind, never the second.
    """
    db_path = str(db_path)
    with _sync_lock(db_path):
        return _restore_locked(db_path, storage, force)


def list_snapshots(storage):
    """Stored snapshots, oldest first (other keys under snapshots/ are ignored)."""
    found = []
    for info in storage.list(SNAPSHOTS):
        match = _SNAPSHOT_KEY.match(info.key)
        if match:
            found.append(Snapshot(int(match.group(1)), info.key, info.size, info.modified))
    return sorted(found, key=lambda s: s.generation)


def snapshot_key(generation):
    return f"{SNAPSHOTS}{generation:012d}.db.zst"


# --------------------------------------------------------------------------- the local state row

def local_generation(db_path):
    """The generation a local DB is based on; None when it is missing, unreadable or never synced."""
    if db_path == ":memory:" or not os.path.exists(db_path):
        return None
    try:
        return read_state(db_path).generation
    except sqlite3.DatabaseError:
        return None


def read_state(db_path):
    """The DB's sync state (all None when it was never synced)."""
    with contextlib.closing(_connect(db_path)) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (STATE_TABLE,)).fetchone():
            return SyncState()
        row = conn.execute(f"SELECT {', '.join(_STATE_COLUMNS)} FROM {STATE_TABLE} WHERE id = 1").fetchone()
    return SyncState(*row) if row else SyncState()


def write_state(db_path, **values):
    """Set some of the state columns, in one short write transaction of its own."""
    with contextlib.closing(_connect(db_path)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_STATE_SCHEMA)
        conn.execute(f"INSERT OR IGNORE INTO {STATE_TABLE} (id, updated_at) VALUES (1, ?)", (time.time(),))
        assignments = "".join(f"{name} = ?, " for name in values)
        conn.execute(f"UPDATE {STATE_TABLE} SET {assignments}updated_at = ? WHERE id = 1",
                     (*values.values(), time.time()))
        conn.execute("COMMIT")


def _ensure_state_table(db_path):
    # Before the snapshot, so every snapshot has the table and unchanged content
    # has an unchanged fingerprint from the first push on.
    with contextlib.closing(_connect(db_path)) as conn:
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (STATE_TABLE,)).fetchone()
    if not exists:
        write_state(db_path)


def _connect(path):
    return sqlite3.connect(path, timeout=30, isolation_level=None)


# --------------------------------------------------------------------------- push internals

def _vacuum_into(db_path, target):
    """A consistent copy of the live DB, from a fresh connection that holds no transaction."""
    with contextlib.closing(_connect(db_path)) as conn:
        conn.execute("VACUUM INTO ?", (target,))


def _fingerprint(path):
    """sha256 of a snapshot file without what changes when content does not: the header's
    counters (change counter, schema cookie, version-valid-for, SQLite version) and the
    state table's one page. Equal fingerprints: nothing to push."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (STATE_TABLE,)).fetchone()
    data = bytearray(Path(path).read_bytes())
    for start, end in ((24, 28), (40, 44), (92, 100)):
        data[start:end] = bytes(end - start)
    if root and root[0]:
        start = (root[0] - 1) * page_size
        data[start:start + page_size] = bytes(page_size)
    return hashlib.sha256(data).hexdigest()


def _put_once(storage, key, data, metadata, attempts=3):
    """Store ``key`` unless it exists; True when the object there is ours.

    A Conflict is ours when a retried request had already stored our object
    (same sha256). AWS also answers 409 while another conditional write to the
    key is in flight, which may still fail: then the key is empty and we try again.
    """
    for attempt in range(attempts):
        try:
            storage.put_if_absent(key, data, metadata)
            return True
        except Conflict:
            try:
                owner = storage.get(key).metadata.get("sha256")
            except NotFound:
                time.sleep(0.2 * (attempt + 1))
                continue
            return owner == metadata["sha256"]
    return False


def _settle_pending(db_path, storage, state):
    """A push was in flight when the process stopped: adopt its object if it is there."""
    key = snapshot_key(state.pending_generation)
    if _is_ours(storage, key, state.pending_sha256):
        log.info("snapshot %012d was stored before the last push could record it: adopting it as the base",
                 state.pending_generation)
        write_state(db_path, generation=state.pending_generation,
                    seen=max(state.pending_generation, state.seen or 0),
                    pending_generation=None, pending_sha256=None, fingerprint=None)
    else:
        write_state(db_path, pending_generation=None, pending_sha256=None)
    return read_state(db_path)


def _is_ours(storage, key, sha):
    try:
        return storage.get(key).metadata.get("sha256") == sha
    except NotFound:
        return False


def _apply_retention(storage, keep):
    stored = list_snapshots(storage)
    for old in stored[:max(0, len(stored) - keep)]:
        storage.delete(old.key)
    if len(stored) > keep:
        log.info("retention: deleted %d snapshot(s) older than %012d", len(stored) - keep,
                 stored[len(stored) - keep].generation)


def _stale_message(db_path, storage, known, newest):
    if known is None:
        return (f"{db_path} was never restored or pushed, and {storage.describe()} already holds snapshot "
                f"{newest:012d}: pushing would drop that state (pull to take it, or push --force to override it)")
    return (f"{db_path} is based on snapshot {known:012d} but {storage.describe()} holds {newest:012d}: another "
            "runner pushed since, so this DB is stale and was not pushed (pull to take the newer state, "
            "or push --force to override it)")


# --------------------------------------------------------------------------- restore internals

def _restore_locked(db_path, storage, force):
    started = time.monotonic()
    stored = list_snapshots(storage)
    if not stored:
        raise NoSnapshot(f"{storage.describe(SNAPSHOTS)}: no snapshot to restore")
    newest = stored[-1].generation
    local = None
    if os.path.exists(db_path):
        local = _local_generation(db_path, force)
        if not force:
            if local is None:
                raise InputError(f"{db_path} exists and was never restored or pushed: it is kept "
                                 f"(pull --force replaces it with snapshot {newest:012d})")
            if local >= newest:
                log.info("%s is at snapshot %012d, the newest is %012d: nothing to restore",
                         db_path, local, newest)
                return None
        _ensure_not_open(db_path)
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(db_path)
    refused = []
    for snapshot in reversed(stored):
        if local is not None and not force and snapshot.generation <= local:
            log.warning("no snapshot newer than %s's %012d passed its checks: keeping it", db_path, local)
            return None
        with _temporary(db_path, "restore") as temp:
            try:
                size = _fetch_verified(storage, snapshot, temp)
            except CorruptSnapshot as exc:
                refused.append(snapshot.generation)
                older = [s.generation for s in stored if s.generation < snapshot.generation]
                log.error("%s; %s", exc, f"trying {older[-1]:012d}" if older else "no older snapshot")
                continue
            fingerprint = _fingerprint(temp)
            with contextlib.closing(_connect(temp)) as conn:
                conn.execute("PRAGMA journal_mode = DELETE")
            write_state(temp, generation=snapshot.generation, seen=newest, pending_generation=None,
                        pending_sha256=None, fingerprint=fingerprint)
            fsync(temp)
            for suffix in ("-wal", "-shm"):
                # a WAL left by the old DB would be replayed onto the new one
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(db_path + suffix)
            os.replace(temp, db_path)
            fsync(os.path.dirname(os.path.abspath(db_path)))
        seconds = time.monotonic() - started
        log.info("restored snapshot %012d (%s) into %s in %.1fs", snapshot.generation, _size(size),
                 db_path, seconds)
        return Restored(snapshot.generation, size, db_path, refused, seconds)
    raise CorruptSnapshot(f"{storage.describe()}: none of the {len(stored)} snapshot(s) passed its checks "
                          f"(refused {', '.join(f'{g:012d}' for g in refused)}); nothing restored")


def _fetch_verified(storage, snapshot, temp):
    """Download, decompress, check sha256 and quick_check into ``temp``; return its size."""
    name = f"snapshot {snapshot.generation:012d}"
    try:
        blob = storage.get(snapshot.key)
    except NotFound:
        raise CorruptSnapshot(f"refused {name}: it vanished while restoring (retention?)") from None
    expected = blob.metadata.get("sha256")
    if not expected:
        raise CorruptSnapshot(f"refused {name}: no sha256 in its metadata")
    try:
        raw = zstandard.ZstdDecompressor().decompress(blob.data)
    except zstandard.ZstdError as exc:
        raise CorruptSnapshot(f"refused {name}: not a whole zstd frame, truncated or corrupted ({exc})") from None
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise CorruptSnapshot(f"refused {name}: sha256 {actual[:12]}… does not match {expected[:12]}… "
                              "in its metadata (corrupted or truncated)")
    Path(temp).write_bytes(raw)
    try:
        with contextlib.closing(sqlite3.connect(temp)) as conn:
            result = [row[0] for row in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise CorruptSnapshot(f"refused {name}: not a SQLite database ({exc})") from None
    if result != ["ok"]:
        raise CorruptSnapshot(f"refused {name}: PRAGMA quick_check says {'; '.join(result[:3])}")
    return len(raw)


def _local_generation(db_path, force):
    try:
        return read_state(db_path).known
    except sqlite3.DatabaseError as exc:
        if force:
            return None
        raise InputError(f"{db_path}: cannot read it ({exc}); it is kept (pull --force replaces it)") from None


def _ensure_not_open(db_path):
    """Refuse while another connection has the DB open. WAL connections hold a shared lock on
    the file for as long as they are open, so an exclusive lock succeeds only when none is."""
    conn = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        raise InputError(f"{db_path} is open by another process (run.py or a job): stop it, then pull") from None
    except sqlite3.DatabaseError:
        pass       # not a SQLite file (pull --force): nothing can have it open as a DB
    finally:
        conn.close()   # the last connection checkpoints and removes the WAL


# --------------------------------------------------------------------------- files and locks

@contextlib.contextmanager
def _sync_lock(db_path, timeout=LOCK_TIMEOUT):
    """One push or restore per DB at a time, across processes; waits for the other one.
    Its own lock file, so the ``sync`` job's lock (shared/state/lock.py) can be held around it."""
    path = lock_path("snapshot", str(db_path))
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise InputError(f"another push or restore of {db_path} has held {path} for "
                         f"{timeout:.0f}s; giving up") from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _temporary(db_path, kind):
    """A fresh temp path beside the DB (same filesystem, so os.replace is atomic)."""
    path = f"{db_path}.s3sync-{kind}-{os.getpid()}-{os.urandom(4).hex()}.tmp"
    try:
        yield path
    finally:
        for name in (path, path + "-journal", path + "-wal", path + "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)


def _remove_leftovers(db_path):
    """Temp files of a push or restore that was killed (we hold the sync lock: none is running)."""
    folder = Path(db_path).resolve().parent
    if folder.is_dir():
        for leftover in folder.glob(f"{Path(db_path).name}.s3sync-*.tmp*"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _gen(number):
    return "nothing" if number is None else f"{number:012d}"


def _size(n):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
