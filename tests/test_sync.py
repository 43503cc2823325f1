"""State sync (shared/state/replica.py, shared/state/storage.py, jobs/sync.py) against moto's S3 server
and a local directory: round trips, conditional writes under races, corrupt snapshots,
one-line errors, and the wiring run.py and single-job runs use."""

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
import zstandard

import jobs.sync
from shared.state import db, replica
from shared.config import load_config
from shared.errors import ConfigError, InputError
from shared.state.lock import job_lock
from shared.state.storage import Conflict, LocalStorage, NotFound, S3Storage

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers

def write_config(folder, **s3):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ssi-bot.yaml"
    path.write_text(yaml.safe_dump({"db": "state.db", "snapshots": s3}))
    return path


@pytest.fixture
def s3_config(tmp_path, s3_server):
    """A config whose s3 section points at a fresh bucket on the moto server."""
    bucket = s3_server.new_bucket()
    path = write_config(tmp_path / "runner", bucket=bucket, endpoint_url=s3_server.url, region="us-east-1")
    return load_config(path)


def storage_of(config):
    return replica.storage_for(config)


def add_rows(path, names, body="hello"):
    """Write some state into the state DB (created with its schema when missing).

    Through sqlite3, not peewee: db.database is one global proxy, and the race test
    writes from eight threads at once."""
    if not os.path.exists(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db.open(str(path))
        db.close()
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn, conn:
        for name in names:
            conn.execute("INSERT INTO thing (fullname, body, author, created_utc, is_link, locked, removed, "
                         "deleted, nsfw, fetched_at) VALUES (?, ?, ?, 1.0, 0, 0, 0, 0, 0, ?)",
                         (f"t1_{name}", f"{body} {name}", name, time.time()))
            conn.execute("INSERT INTO cursor (bot, name, value, updated_at) VALUES ('bot', ?, ?, ?)",
                         (f"cursor:{name}", float(len(name)), time.time()))


def table_rows(path):
    """Every row of every table but the sync state, sorted: 'row for row' equality."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                 if n != replica.STATE_TABLE]
        rows = {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr) for name in names}
        rows["user_version"] = conn.execute("PRAGMA user_version").fetchone()
    return rows


def wipe(path):
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def thing_names(path):
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {n for (n,) in conn.execute("SELECT author FROM thing")}


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "jobs.sync", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)


class ReplaceableS3:
    """Overwrite an object behind the sync's back (what a broken disk or a bad upload does)."""

    def __init__(self, s3_server, config):
        self.client = s3_server.client()
        self.bucket = config.snapshots.bucket
        self.prefix = config.snapshots.prefix

    def get(self, generation):
        answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + replica.snapshot_key(generation))
        return answer["Body"].read(), answer["Metadata"]

    def replace(self, generation, data, metadata):
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + replica.snapshot_key(generation),
                               Body=data, Metadata=metadata)


# --------------------------------------------------------------------------- round trips

def test_round_trip_push_wipe_restore_equals_the_original_row_for_row(s3_config):
    add_rows(s3_config.db, [f"user{i}" for i in range(200)], body="x" * 300)
    original = table_rows(s3_config.db)
    pushed = jobs.sync.run(s3_config, [], action="push")
    assert pushed.generation == 1 and pushed.base == 0
    assert pushed.stored < pushed.size, "compressed"
    wipe(s3_config.db)
    assert replica.restore_if_missing(s3_config) is True
    assert table_rows(s3_config.db) == original
    assert replica.read_state(s3_config.db).generation == 1
    db.open(s3_config.db)          # the restored file is a working state DB
    try:
        assert db.Thing.select().count() == 200
    finally:
        db.close()


def test_round_trip_through_a_local_directory(tmp_path):
    config = load_config(write_config(tmp_path / "runner", directory="../nas", prefix="bot-a/"))
    add_rows(config.db, ["alice", "bob"])
    original = table_rows(config.db)
    assert jobs.sync.run(config, [], action="push").generation == 1
    assert (tmp_path / "nas" / "bot-a" / "snapshots" / "000000000001.db.zst").is_file()
    wipe(config.db)
    assert replica.restore_if_missing(config) is True
    assert table_rows(config.db) == original


@pytest.mark.parametrize("prefix", ["bots/holdout", "bots/holdout/", "/bots/holdout"])
def test_a_prefix_is_a_folder_with_or_without_its_slash(tmp_path, s3_server, prefix):
    bucket = s3_server.new_bucket()
    config = load_config(write_config(tmp_path, bucket=bucket, endpoint_url=s3_server.url, prefix=prefix))
    add_rows(config.db, ["alice"])
    replica.push(config)
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["bots/holdout/snapshots/000000000001.db.zst"]
    wipe(config.db)
    assert replica.restore_if_missing(config) and thing_names(config.db) == {"alice"}


def test_snapshots_left_under_the_old_slashless_key_are_one_line_saying_where_to_move_them(tmp_path, s3_server):
    bucket = s3_server.new_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="bots/holdoutsnapshots/000000000001.db.zst", Body=b"x")
    config = load_config(write_config(tmp_path, bucket=bucket, endpoint_url=s3_server.url, prefix="bots/holdout"))
    with pytest.raises(ConfigError, match=f"move them to s3://{bucket}/bots/holdout/snapshots/"):
        replica.snapshots(config)


def test_snapshot_metadata_holds_the_checksum_of_the_uncompressed_file_and_the_base(s3_config, s3_server):
    add_rows(s3_config.db, ["alice"])
    first = replica.push(s3_config)
    add_rows(s3_config.db, ["bob"])
    second = replica.push(s3_config)
    data, metadata = ReplaceableS3(s3_server, s3_config).get(2)
    raw = zstandard.ZstdDecompressor().decompress(data)
    assert metadata["sha256"] == hashlib.sha256(raw).hexdigest() == second.sha256
    assert (metadata["base"], second.base, first.base) == ("1", 1, 0)


def test_pushing_an_unchanged_db_stores_nothing_even_right_after_a_restore(s3_config):
    add_rows(s3_config.db, ["alice"])
    assert replica.push(s3_config).generation == 1
    assert replica.push(s3_config) is None
    wipe(s3_config.db)
    replica.restore_if_missing(s3_config)
    db.open(s3_config.db)          # opening (WAL, migrations) is not a change
    db.close()
    assert replica.push(s3_config) is None
    add_rows(s3_config.db, ["bob"])
    assert replica.push(s3_config).generation == 2
    assert [s.generation for s in replica.snapshots(s3_config)] == [1, 2]


def test_retention_keeps_the_newest_snapshots(tmp_path):
    config = load_config(write_config(tmp_path / "runner", directory="nas", keep=3))
    for name in ("a", "b", "c", "d", "e"):
        add_rows(config.db, [name])
        replica.push(config)
    assert [s.generation for s in replica.snapshots(config)] == [3, 4, 5]


# --------------------------------------------------------------------------- no lost update

def test_eight_concurrent_pushers_leave_a_linear_history_with_no_lost_update(s3_server, tmp_path):
    """8 runners, each with its own DB restored from the same base, each adding its own row and
    pushing at once. Each round exactly one push is stored; the others are refused as stale
    (never stored under another number); a refused runner pulls, re-applies its row and tries
    again. At the end every generation N+1 is based on N and the newest holds all 8 rows."""
    bucket = s3_server.new_bucket()
    base_dir = tmp_path / "base"
    base = load_config(write_config(base_dir, bucket=bucket, endpoint_url=s3_server.url))
    add_rows(base.db, ["seed"])
    replica.push(base)

    runners = 8
    paths = [tmp_path / f"runner{i}" / "state.db" for i in range(runners)]
    for path in paths:
        replica.restore_db(path, storage_of(base))
    outcomes = {i: [] for i in range(runners)}
    stored = {}                     # generation -> (runner, sha256) as told by push_db
    start = threading.Barrier(runners)
    lock = threading.Lock()

    def runner(i):
        storage = S3Storage(bucket, prefix=base.snapshots.prefix, endpoint_url=s3_server.url)  # own session
        add_rows(paths[i], [f"runner{i}"])
        start.wait()
        for _attempt in range(runners + 2):
            try:
                pushed = replica.push_db(paths[i], storage)
            except replica.StaleState as exc:
                outcomes[i].append(("stale", str(exc)))
                replica.restore_db(paths[i], storage)        # pull the newer state ...
                add_rows(paths[i], [f"runner{i}"])          # ... and redo this runner's change
                continue
            with lock:
                assert pushed.generation not in stored, "two pushes were told they stored one generation"
                stored[pushed.generation] = (i, pushed.sha256)
            outcomes[i].append(("pushed", pushed.generation))
            return

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(outcome[-1][0] == "pushed" for outcome in outcomes.values()), outcomes

    storage = storage_of(base)
    history = replica.list_snapshots(storage)
    assert [s.generation for s in history] == list(range(1, runners + 2)), "one stored snapshot per push"
    assert sorted(stored) == list(range(2, runners + 2))
    for snapshot in history[1:]:
        blob = storage.get(snapshot.key)
        assert int(blob.metadata["base"]) == snapshot.generation - 1, "linear: N+1 is based on N"
        assert blob.metadata["sha256"] == stored[snapshot.generation][1], "never overwritten"
    refusals = [why for outcome in outcomes.values() for kind, why in outcome if kind == "stale"]
    assert len(refusals) >= runners - 1, "the first round had one winner and seven refused"
    final = tmp_path / "final" / "state.db"
    replica.restore_db(final, storage)
    assert thing_names(final) == {"seed"} | {f"runner{i}" for i in range(runners)}, "no lost update"


class StaleListing:
    """A storage whose list() answers from before another runner's push: the race window
    between 'is my base the newest?' and the conditional put, made deterministic."""

    def __init__(self, storage, hide_from):
        self.storage = storage
        self.hide_from = hide_from

    def list(self, prefix=""):
        return [o for o in self.storage.list(prefix) if o.key < replica.snapshot_key(self.hide_from)]

    def __getattr__(self, name):
        return getattr(self.storage, name)


def test_a_runner_that_loses_the_race_for_a_number_is_refused_and_the_winner_is_kept(s3_config, tmp_path):
    storage = storage_of(s3_config)
    add_rows(s3_config.db, ["seed"])
    replica.push(s3_config)
    other = tmp_path / "other" / "state.db"
    replica.restore_db(other, storage)
    add_rows(s3_config.db, ["winner"])
    won = replica.push(s3_config)
    add_rows(other, ["loser"])
    with pytest.raises(replica.StaleState, match="another runner stored snapshot 000000000002"):
        replica.push_db(other, StaleListing(storage, hide_from=2))
    assert storage.get(replica.snapshot_key(2)).metadata["sha256"] == won.sha256
    assert [s.generation for s in replica.list_snapshots(storage)] == [1, 2], "not pushed as 3 either"
    state = replica.read_state(other)
    assert (state.generation, state.pending_generation) == (1, None)


def test_a_stale_runner_is_refused_with_exit_2_and_force_pushes_over(s3_config, tmp_path):
    add_rows(s3_config.db, ["seed"])
    replica.push(s3_config)
    other_dir = tmp_path / "other"
    other = load_config(write_config(other_dir, bucket=s3_config.snapshots.bucket,
                                     endpoint_url=s3_config.snapshots.endpoint_url))
    replica.restore(other)
    add_rows(s3_config.db, ["first"])
    replica.push(s3_config)
    add_rows(other.db, ["second"])
    done = run_cli("push", "--config", str(other.path))
    assert done.returncode == 2, done.stderr
    assert "is based on snapshot 000000000001 but" in done.stderr and "holds 000000000002" in done.stderr
    assert "Traceback" not in done.stderr
    assert [s.generation for s in replica.snapshots(other)] == [1, 2]
    forced = replica.push(other, force=True)
    assert forced.generation == 3
    assert storage_of(other).get(replica.snapshot_key(3)).metadata["forced"] == "1"


def test_a_fresh_db_never_pushes_over_existing_snapshots(s3_config, tmp_path):
    add_rows(s3_config.db, ["seed"])
    replica.push(s3_config)
    fresh = tmp_path / "fresh" / "state.db"
    add_rows(fresh, ["empty-disk"])
    with pytest.raises(replica.StaleState, match="never restored or pushed"):
        replica.push_db(fresh, storage_of(s3_config))


class DiesAfterUpload:
    """The process is killed after the object is stored, before the push records it."""

    def __init__(self, storage):
        self.storage = storage

    def put_if_absent(self, key, data, metadata):
        self.storage.put_if_absent(key, data, metadata)
        raise KeyboardInterrupt("killed")

    def __getattr__(self, name):
        return getattr(self.storage, name)


def test_a_push_killed_after_its_upload_is_adopted_not_called_stale(tmp_path):
    config = load_config(write_config(tmp_path / "runner", directory="nas"))
    storage = storage_of(config)
    add_rows(config.db, ["alice"])
    with pytest.raises(KeyboardInterrupt):
        replica.push_db(config.db, DiesAfterUpload(storage))
    assert replica.read_state(config.db).pending_generation == 1
    add_rows(config.db, ["bob"])
    pushed = replica.push(config)
    assert (pushed.generation, pushed.base) == (2, 1)
    assert replica.read_state(config.db).pending_generation is None


class InFlightConflictOnce:
    """AWS's 409 ConditionalRequestConflict: another conditional write to the key was in flight
    (and then failed), so the key is still empty."""

    def __init__(self, storage):
        self.storage = storage
        self.conflicts = 0

    def put_if_absent(self, key, data, metadata):
        if not self.conflicts:
            self.conflicts += 1
            raise Conflict("409")
        self.storage.put_if_absent(key, data, metadata)

    def __getattr__(self, name):
        return getattr(self.storage, name)


def test_a_conflict_that_left_the_number_free_is_retried_not_called_stale(tmp_path):
    config = load_config(write_config(tmp_path / "runner", directory="nas"))
    add_rows(config.db, ["alice"])
    storage = InFlightConflictOnce(storage_of(config))
    assert replica.push_db(config.db, storage).generation == 1
    assert storage.conflicts == 1


# --------------------------------------------------------------------------- corrupt snapshots

def push_two(config):
    add_rows(config.db, ["alice"])
    replica.push(config)
    first = table_rows(config.db)
    add_rows(config.db, ["bob"])
    replica.push(config)
    return first


def test_a_truncated_snapshot_is_refused_and_the_previous_good_one_is_restored(s3_config, s3_server, caplog):
    first = push_two(s3_config)
    s3 = ReplaceableS3(s3_server, s3_config)
    data, metadata = s3.get(2)
    s3.replace(2, data[: len(data) // 2], metadata)
    wipe(s3_config.db)
    with caplog.at_level("INFO", logger="sync"):
        restored = replica.restore(s3_config)
    assert (restored.generation, restored.refused) == (1, [2])
    assert "refused snapshot 000000000002: not a whole zstd frame, truncated or corrupted" in caplog.text
    assert "trying 000000000001" in caplog.text
    assert table_rows(s3_config.db) == first
    add_rows(s3_config.db, ["carol"])
    pushed = replica.push(s3_config)
    assert (pushed.generation, pushed.base) == (3, 1), "the refused number is skipped, not taken again"


def test_a_snapshot_whose_bytes_do_not_match_its_checksum_is_refused(s3_config, s3_server, caplog):
    first = push_two(s3_config)
    s3 = ReplaceableS3(s3_server, s3_config)
    data, metadata = s3.get(2)
    raw = bytearray(zstandard.ZstdDecompressor().decompress(data))
    raw[5000] ^= 0xFF
    s3.replace(2, zstandard.ZstdCompressor().compress(bytes(raw)), metadata)
    wipe(s3_config.db)
    with caplog.at_level("INFO", logger="sync"):
        assert replica.restore(s3_config).generation == 1
    assert "refused snapshot 000000000002: sha256" in caplog.text and "does not match" in caplog.text
    assert table_rows(s3_config.db) == first


def test_a_snapshot_that_fails_quick_check_is_refused(tmp_path, caplog):
    config = load_config(write_config(tmp_path / "runner", directory="nas"))
    first = push_two(config)
    storage = storage_of(config)
    blob = storage.get(replica.snapshot_key(2))
    raw = bytearray(zstandard.ZstdDecompressor().decompress(blob.data))
    page = 4096
    raw[page: 2 * page] = os.urandom(page)            # a b-tree page full of noise, checksum to match
    metadata = dict(blob.metadata, sha256=hashlib.sha256(raw).hexdigest())
    storage.delete(replica.snapshot_key(2))
    storage.put_if_absent(replica.snapshot_key(2), zstandard.ZstdCompressor().compress(bytes(raw)), metadata)
    wipe(config.db)
    with caplog.at_level("INFO", logger="sync"):
        assert replica.restore(config).generation == 1
    assert "refused snapshot 000000000002" in caplog.text
    assert "quick_check" in caplog.text or "not a SQLite database" in caplog.text
    assert table_rows(config.db) == first


def test_when_every_snapshot_is_corrupt_pull_is_one_clear_line_and_exit_2(s3_config, s3_server):
    add_rows(s3_config.db, ["alice"])
    replica.push(s3_config)
    s3 = ReplaceableS3(s3_server, s3_config)
    data, metadata = s3.get(1)
    s3.replace(1, data[:10], metadata)
    wipe(s3_config.db)
    done = run_cli("pull", "--config", str(s3_config.path))
    assert done.returncode == 2, done.stderr
    assert "none of the 1 snapshot(s) passed its checks" in done.stderr and "Traceback" not in done.stderr
    assert not os.path.exists(s3_config.db), "nothing half-restored, no empty DB created"


# --------------------------------------------------------------------------- pull never loses local state

def test_pull_keeps_a_local_db_that_is_as_new_as_the_newest_snapshot(s3_config):
    add_rows(s3_config.db, ["alice"])
    replica.push(s3_config)
    add_rows(s3_config.db, ["unpushed"])
    assert replica.restore(s3_config) is None
    assert "unpushed" in thing_names(s3_config.db)


def test_pull_keeps_a_local_db_newer_than_the_newest_snapshot(tmp_path):
    config = load_config(write_config(tmp_path / "runner", directory="nas"))
    push_two(config)
    storage_of(config).delete(replica.snapshot_key(2))          # storage lost its newest
    assert replica.restore(config) is None
    assert thing_names(config.db) == {"alice", "bob"}


def test_pull_refuses_a_never_synced_db_unless_forced(s3_config, tmp_path):
    add_rows(s3_config.db, ["alice"])
    replica.push(s3_config)
    other = tmp_path / "other" / "state.db"
    add_rows(other, ["local-only"])
    with pytest.raises(InputError, match="was never restored or pushed: it is kept"):
        replica.restore_db(other, storage_of(s3_config))
    assert thing_names(other) == {"local-only"}
    assert replica.restore_db(other, storage_of(s3_config), force=True).generation == 1
    assert thing_names(other) == {"alice"}


def test_pull_takes_the_newer_snapshot_over_an_older_local_db(s3_config, tmp_path):
    add_rows(s3_config.db, ["alice"])
    replica.push(s3_config)
    other = tmp_path / "other" / "state.db"
    replica.restore_db(other, storage_of(s3_config))
    add_rows(s3_config.db, ["bob"])
    replica.push(s3_config)
    assert replica.restore_db(other, storage_of(s3_config)).generation == 2
    assert thing_names(other) == {"alice", "bob"}
    assert not any(p.name.endswith((".tmp", "-wal", "-shm")) for p in other.parent.iterdir())


def test_pull_never_replaces_a_db_another_connection_has_open(s3_config):
    add_rows(s3_config.db, ["alice"])
    replica.push(s3_config)
    db.open(s3_config.db)
    try:
        with pytest.raises(InputError, match="is open by another process"):
            replica.restore(s3_config, force=True)
    finally:
        db.close()


# --------------------------------------------------------------------------- storage clients

@pytest.mark.parametrize("kind", ["s3", "local"])
def test_put_if_absent_lets_exactly_one_of_eight_racing_writers_win(kind, s3_server, tmp_path):
    bucket = s3_server.new_bucket() if kind == "s3" else None

    def make():
        if kind == "s3":
            return S3Storage(bucket, prefix="race/", endpoint_url=s3_server.url)
        return LocalStorage(tmp_path / "store")

    storages = [make() for _ in range(8)]
    for key in ("a", "b", "c"):
        start = threading.Barrier(8)
        won = []

        def write(i):
            start.wait()
            try:
                storages[i].put_if_absent(key, b"writer %d" % i, {"writer": i})
                won.append(i)
            except Conflict:
                pass

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1
        blob = make().get(key)
        assert blob.data == b"writer %d" % won[0] and blob.metadata["writer"] == str(won[0])
    assert [o.key for o in make().list()] == ["a", "b", "c"]
    make().delete("a")
    make().delete("a")
    with pytest.raises(NotFound):
        make().get("a")


def test_missing_bucket_is_one_line_naming_it_and_exit_2(s3_server, tmp_path):
    path = write_config(tmp_path, bucket="no-such-bucket", endpoint_url=s3_server.url)
    add_rows(tmp_path / "state.db", ["alice"])
    done = run_cli("push", "--config", str(path))
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "no bucket 'no-such-bucket' at http://127.0.0.1" in errors[0]
    assert "Traceback" not in done.stderr


def test_missing_credentials_is_one_line_and_exit_2(s3_server, tmp_path):
    path = write_config(tmp_path, bucket=s3_server.new_bucket(), endpoint_url=s3_server.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_DEFAULT_REGION="us-east-1")
    done = run_cli("list", "--config", str(path), env=env)
    assert done.returncode == 2, done.stderr
    assert "no AWS credentials found" in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_endpoint_is_one_clear_error(tmp_path):
    config = load_config(write_config(tmp_path, bucket="bucket", endpoint_url="http://127.0.0.1:9"))
    started = time.monotonic()
    with pytest.raises(ConfigError, match="cannot reach the endpoint"):
        replica.snapshots(config)
    assert time.monotonic() - started < 20


def test_pull_or_list_without_a_bucket_is_a_config_error_and_push_does_nothing(tmp_path):
    config = load_config(write_config(tmp_path))
    add_rows(config.db, ["alice"])
    assert jobs.sync.run(config, [], action="push") is None
    assert replica.restore_if_missing(config) is False
    with pytest.raises(ConfigError, match="snapshots.bucket and snapshots.directory are empty"):
        jobs.sync.run(config, [], action="pull")


# --------------------------------------------------------------------------- wiring

def test_restore_if_missing_only_acts_on_a_missing_db_and_starts_empty_without_snapshots(s3_config):
    assert replica.restore_if_missing(s3_config) is False, "no snapshot yet: a new bot starts empty"
    assert not os.path.exists(s3_config.db)
    add_rows(s3_config.db, ["alice"])
    replica.push(s3_config)
    add_rows(s3_config.db, ["unpushed"])
    assert replica.restore_if_missing(s3_config) is False, "an existing DB is left alone"
    assert "unpushed" in thing_names(s3_config.db)


def test_the_loop_pushes_through_the_sync_job_like_any_other_job(s3_config):
    """What run.py does with "sync" in jobs.JOBS: restore before db.open, then
    Runner.run_job("sync") under the job lock; a stale push is logged, not raised."""
    from jobs import Runner

    add_rows(s3_config.db, ["alice"])
    replica.push(s3_config)
    wipe(s3_config.db)
    assert replica.restore_if_missing(s3_config) is True
    db.open(s3_config.db)
    try:
        runner = Runner(s3_config)
        db.Thing.create(fullname="t1_bob", body="b", author="bob", created_utc=1.0)
        runner.run_job("sync")
        assert runner.failures == 0
        assert [s.generation for s in replica.snapshots(s3_config)] == [1, 2]
        replica.write_state(s3_config.db, generation=0, seen=0)   # pretend another runner pushed since
        db.Thing.create(fullname="t1_carol", body="c", author="carol", created_utc=1.0)
        runner.run_job("sync")
        assert runner.failures == 1, "stale: refused and counted, the loop goes on"
    finally:
        db.close()


def test_a_single_job_run_can_restore_run_and_push(s3_config, tmp_path):
    """The --sync path of a crontab or cloud-scheduler run on an empty disk."""
    add_rows(s3_config.db, ["alice"])
    replica.push(s3_config)
    wipe(s3_config.db)
    assert replica.restore_if_missing(s3_config)
    db.open(s3_config.db)
    try:
        with job_lock("fetch", s3_config.db):
            db.Thing.create(fullname="t1_bob", body="b", author="bob", created_utc=1.0)
        assert replica.push(s3_config).generation == 2
    finally:
        db.close()
    wipe(s3_config.db)
    assert replica.restore_if_missing(s3_config)
    assert thing_names(s3_config.db) == {"alice", "bob"}


def test_cli_push_list_pull_round_trip(s3_config):
    add_rows(s3_config.db, ["alice"])
    assert run_cli("push", "--config", str(s3_config.path)).returncode == 0
    listed = run_cli("list", "--config", str(s3_config.path))
    assert listed.returncode == 0 and "000000000001" in listed.stdout and "<- local DB" in listed.stdout
    wipe(s3_config.db)
    pulled = run_cli("pull", "--config", str(s3_config.path))
    assert pulled.returncode == 0, pulled.stderr
    assert "restored snapshot 000000000001" in pulled.stderr
    assert thing_names(s3_config.db) == {"alice"}


def test_a_job_run_with_sync_restores_an_empty_disk_runs_and_pushes(tmp_path):
    """crontab or a cloud scheduler on a fresh disk: ``python -m jobs.NAME --sync``."""
    snapshots = tmp_path / "snapshots"
    config = tmp_path / "ssi-bot.yaml"
    config.write_text(yaml.safe_dump({"db": "state.db", "snapshots": {"directory": str(snapshots)}}))
    run = lambda: subprocess.run([sys.executable, "-m", "jobs.prune", "--config", str(config), "--sync"],  # noqa: E731
                                 cwd=ROOT, capture_output=True, text=True, timeout=120)
    first = run()
    assert first.returncode == 0, first.stderr
    assert [s.generation for s in replica.snapshots(load_config(config))] == [1]
    (tmp_path / "state.db").unlink()
    second = run()
    assert second.returncode == 0, second.stderr
    assert "restored" in second.stderr.lower()
    assert (tmp_path / "state.db").exists()
