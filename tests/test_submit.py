"""jobs.submit: one post per subreddit and period, at the allowed hours, never two pending."""

import calendar

import pytest

from jobs import submit
from shared.state import db
from shared.config import parse_config

BOT = "TestBot-GPT2"


@pytest.fixture
def config(tmp_path):
    config = parse_config({"db": str(tmp_path / "state.db"), "bots": [{
        "name": BOT, "model": "m",
        "submit": [{"subreddit": "test", "every_hours": 6, "hours_of_day": [9, 10, 18]},
                   {"subreddit": "links", "every_hours": 24, "link_share": 1.0}]}]})
    db.open(config.db)
    yield config
    db.close()


def at(hour, day=1, minute=0):
    return float(calendar.timegm((2026, 11, day, hour, minute, 0)))


def queued(subreddit):
    return [i for i in db.Item.select().where(db.Item.subreddit == subreddit).order_by(db.Item.id)]


def test_posts_are_queued_only_at_allowed_hours(config):
    submit.run(config, config.bots, now=at(8))
    assert queued("test") == []
    submit.run(config, config.bots, now=at(9, minute=30))
    (item,) = queued("test")
    assert item.state == db.QUEUED and item.source == "schedule" and not item.is_link


def test_one_post_per_slot_and_none_while_one_is_pending(config):
    submit.run(config, config.bots, now=at(9))
    submit.run(config, config.bots, now=at(10))            # same 6-hour slot (06:00-12:00)
    assert len(queued("test")) == 1
    submit.run(config, config.bots, now=at(18))            # next slot, but the first is still queued
    assert len(queued("test")) == 1
    queued("test")[0].move(db.POSTED)
    submit.run(config, config.bots, now=at(18, minute=5))
    assert [i.state for i in queued("test")] == [db.POSTED, db.QUEUED]


def test_link_share_one_makes_link_posts(config):
    submit.run(config, config.bots, now=at(3), seed=1)
    (item,) = queued("links")
    assert item.is_link and item.key == f"submit:links:{int(at(3) // 86400)}"


def test_image_share_makes_image_posts_generated_as_link_posts(tmp_path):
    # zacc/ssi-bot reddit_io/tagging_mixin.py:54-60: random() < image_post_frequency -> a link (image) post.
    config = parse_config({"db": str(tmp_path / "state.db"), "bots": [{
        "name": BOT, "model": "m", "submit": [{"subreddit": "pics", "every_hours": 1, "image_share": 1.0},
                                              {"subreddit": "mixed", "every_hours": 1, "image_share": 0.5,
                                               "link_share": 0.5}]}]})
    db.open(config.db)
    try:
        kinds = set()
        for hour in range(24):
            submit.run(config, config.bots, now=at(hour), seed=hour)
            for item in queued("pics") + queued("mixed"):
                kinds.add((item.subreddit, item.image, item.is_link))
                item.move(db.POSTED)
        assert kinds == {("pics", True, True), ("mixed", True, True), ("mixed", False, True)}
    finally:
        db.close()


def test_the_next_opening_is_when_submit_queues_the_next_post(config):
    test, links = config.bots[0].submit
    assert test.next_opening(at(8)) == at(9)                 # an allowed hour of the free slot
    assert test.next_opening(at(9, minute=30)) == at(9, minute=30)
    taken = {test.slot(at(9))}                               # the 06:00-12:00 slot has its post
    # 12:00-18:00 has no allowed hour: the next opening is 18:00
    assert test.next_opening(at(9, minute=30), taken) == at(18)
    assert links.next_opening(at(3), {links.slot(at(3))}) == at(0, day=2)
    assert test.next_opening(at(8), {test.slot(at(8)) + n for n in range(100)}) is None

    opening = test.next_opening(at(7))
    submit.run(config, config.bots, now=opening - 1)
    assert queued("test") == []
    submit.run(config, config.bots, now=opening)
    assert [i.key for i in queued("test")] == [db.submission_key("test", test.slot(opening))]
