"""The state DB: schema versions, in-place upgrades, and models that match the migrations."""

import sqlite3

import pytest

from shared.state import db
from shared.training import corpus
from shared.errors import InputError


@pytest.fixture(autouse=True)
def closed():
    yield
    db.close()


def v1_database(path):
    """A DB exactly as release 1 left it, with a row in it."""
    con = sqlite3.connect(path)
    con.executescript(db.MIGRATIONS[0] + "PRAGMA user_version = 1;")
    con.execute("INSERT INTO item (bot, key, source, state, is_link, gen_attempts, post_attempts, created_at, "
                "updated_at, text) VALUES ('b', 't1_x', 'listing', 'generated', 0, 1, 0, 1.0, 1.0, 'kept text')")
    con.commit()
    con.close()


def test_a_db_from_an_older_release_upgrades_itself_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    v1_database(path)
    db.open(path)
    assert db.schema_version() == db.SCHEMA_VERSION
    item = db.Item.get(key="t1_x")
    assert (item.state, item.text) == ("generated", "kept text")
    indexes = {row[1] for row in db.database.execute_sql("PRAGMA index_list(item)")}
    assert {"item_bot_thread", "item_bot_target_author"} <= indexes
    db.close()
    db.open(path)                                            # upgrading twice is upgrading once
    assert db.Item.select().count() == 1


def test_a_db_from_a_newer_release_is_refused(tmp_path):
    path = tmp_path / "new.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(InputError, match="newer than this release"):
        db.open(path)


@pytest.mark.parametrize("module", [db, corpus], ids=["state", "training"])
def test_models_match_the_schema_the_migrations_build(tmp_path, module):
    module.open(tmp_path / "fresh.db")
    try:
        for model in module.TABLES:
            table = model._meta.table_name
            columns = {row[1] for row in module.database.execute_sql(f'PRAGMA table_info("{table}")')}
            assert columns == {f.column_name for f in model._meta.sorted_fields}, table
    finally:
        module.close()


def test_wal_mode_and_foreign_keys(tmp_path):
    db.open(tmp_path / "wal.db")
    assert db.database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    item, created = db.add_item("b", "t3_a", "listing")
    again, created_again = db.add_item("b", "t3_a", "mention")
    assert created and not created_again and again.id == item.id and again.source == "mention"


def test_a_readonly_reader_never_migrates_and_says_how_to_upgrade_an_older_db(tmp_path):
    import hashlib

    path = tmp_path / "old.db"
    v1_database(path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    db.open_readonly(path)
    with pytest.raises(InputError, match="schema version 1 is older than this release's .*python -m jobs.status"):
        with db.reading():
            pass
    assert db.database.is_closed(), "no connection is kept between reads"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "a reader never migrates"


def test_a_readonly_reader_reads_the_current_schema_and_cannot_write(tmp_path):
    path = tmp_path / "new.db"
    v1_database(path)
    db.open(path)                           # what any job does: upgrade in place
    db.close()
    db.open_readonly(path)
    with db.reading():
        assert db.Item.get(key="t1_x").text == "kept text"
        assert db.state_counts() == {"b": {**dict.fromkeys(db.STATES, 0), "generated": 1}}
        with pytest.raises(Exception, match="readonly"):
            db.Item.create(bot="b", key="t1_y", source="listing")
    assert db.database.is_closed(), "no connection is kept between reads"


@pytest.mark.parametrize("content, words", [
    (None, "no state DB there yet"),
    (b"this is not a database at all" * 100, "cannot read it as a state DB"),
    (b"", "not a state DB"),
])
def test_a_readonly_reader_names_a_missing_or_corrupt_file(tmp_path, content, words):
    path = tmp_path / "state.db"
    if content is not None:
        path.write_bytes(content)
    db.open_readonly(path)
    with pytest.raises(InputError, match=words):
        with db.reading():
            db.Item.select().count()
    assert not path.exists() or path.read_bytes() == content, "the reader created or changed nothing"


def test_a_readonly_reader_refuses_a_db_from_a_newer_release(tmp_path):
    path = tmp_path / "new.db"
    db.open(path)
    db.database.execute_sql(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    db.close()
    db.open_readonly(path)
    with pytest.raises(InputError, match="newer than this release"):
        with db.reading():
            pass
