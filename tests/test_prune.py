"""jobs.prune: old finished work goes, work in progress and what it needs stay."""

import time

import pytest

from jobs import prune
from shared.state import db
from shared.config import parse_config

DAY = 86400


@pytest.fixture
def config(tmp_path):
    config = parse_config({"db": str(tmp_path / "state.db"), "retention_days": 30})
    db.open(config.db)
    yield config
    db.close()


def thing(fullname, parent=None, age_days=0, **fields):
    born = time.time() - age_days * DAY
    db.store_things([dict(fullname=fullname, parent=parent, created_utc=born, body="x", **fields)])
    db.Thing.update(fetched_at=born).where(db.Thing.fullname == fullname).execute()


def item(key, state, age_days, **fields):
    created, _ = db.add_item("bot", key, "listing", **fields)
    db.Item.update(state=state, updated_at=time.time() - age_days * DAY).where(db.Item.id == created.id).execute()
    return created


def test_prune_deletes_old_finished_work_and_keeps_what_is_still_needed(config):
    thing("t3_old", age_days=40)
    thing("t1_parent", parent="t3_old", age_days=40)
    thing("t1_waiting", parent="t1_parent", age_days=40)
    thing("t1_done", parent="t3_old", age_days=40)
    thing("t3_new", age_days=1)
    old_posted = item("t1_done", db.POSTED, 40)
    db.Decision.create(item=old_posted, probability=1, draw=0.1, reasons=["x"])
    db.Candidate.create(item=old_posted, raw="hi<|", accepted=True)
    db.PostAttempt.create(item=old_posted, outcome="posted")
    item("t3_old", db.SKIPPED, 40)
    item("t1_waiting", db.GENERATED, 40, text="never lost")          # in progress: kept, with its ancestry
    item("t3_new", db.SKIPPED, 1)                                     # inside the window

    counts = prune.run(config)
    assert counts == {"decisions": 1, "candidates": 1, "post attempts": 1, "items": 2, "things": 1}
    assert sorted(i.key for i in db.Item.select()) == ["t1_waiting", "t3_new"]
    assert sorted(t.fullname for t in db.Thing.select()) == ["t1_parent", "t1_waiting", "t3_new", "t3_old"]
    assert db.Item.get(key="t1_waiting").text == "never lost"
    assert prune.run(config) == {"decisions": 0, "candidates": 0, "post attempts": 0, "items": 0, "things": 0}


def test_prune_reclaims_space_when_much_was_freed(config, tmp_path):
    for i in range(3000):
        thing(f"t1_{i}", age_days=40, title="y" * 200)
    size_before = (tmp_path / "state.db").stat().st_size + (tmp_path / "state.db-wal").stat().st_size
    prune.run(config)
    db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert db.Thing.select().count() == 0
    assert (tmp_path / "state.db").stat().st_size < size_before / 4


@pytest.mark.parametrize("state", [db.SEEN, db.QUEUED, db.GENERATED, db.POSTING])
def test_work_in_progress_and_its_ancestry_are_kept_whatever_their_age(config, state):
    thing("t3_post", age_days=90)
    thing("t1_parent", parent="t3_post", age_days=90)
    thing("t1_item", parent="t1_parent", age_days=90)
    kept = item("t1_item", state, 90, text="work in progress")
    db.Decision.create(item=kept, probability=1, draw=0.1, reasons=["x"])
    db.Candidate.create(item=kept, raw="hi<|", accepted=True)
    db.PostAttempt.create(item=kept)
    counts = prune.run(config)
    assert counts == {"decisions": 0, "candidates": 0, "post attempts": 0, "items": 0, "things": 0}
    assert [i.key for i in db.Item.select()] == ["t1_item"]
    assert sorted(t.fullname for t in db.Thing.select()) == ["t1_item", "t1_parent", "t3_post"]


def test_the_last_day_is_kept_whatever_days_says_because_the_caps_count_it(config):
    thing("t1_recent", age_days=0.5)
    thing("t1_old", age_days=2)
    recent = item("t1_recent", db.POSTED, 0.5)
    db.Decision.create(item=recent, probability=1, draw=0.1, reasons=["x"])
    item("t1_old", db.SKIPPED, 2)
    prune.run(config, days=0.01)
    assert [i.key for i in db.Item.select()] == ["t1_recent"] and db.Decision.select().count() == 1
    assert [t.fullname for t in db.Thing.select()] == ["t1_recent"]
