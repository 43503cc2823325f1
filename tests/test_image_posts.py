"""Image posts: an image found through an image search API (Openverse, here its local
stand-in), DOMAIN_BANNED retried with the next image, a text post when no image will do."""

import pytest

from jobs import generate, post, submit
from shared.bot import images
from shared.config import ConfigError, parse_config
from shared.state import db
from tests.botworld import BOT, load, write_config
from tests.openverse_server import OpenverseServer

BANNED = "https://img.banned.example/cup.jpg"
GOOD = "https://live.staticflickr.com/65535/coffee.jpg"


@pytest.fixture
def openverse():
    with OpenverseServer({"coffee": [BANNED, GOOD], "morning": ["https://images.example/sunrise.png"]}) as server:
        yield server


@pytest.fixture
def world(sandbox, tmp_path, rigged_model_dir, openverse):
    # The tiny model's titles are random words: the prefix guarantees a search to make.
    bots = [{"name": BOT, "subreddits": [], "sampling": {"attempts": 6},
             "submit": [{"subreddit": "test", "every_hours": 6, "image_share": 1.0}],
             "images": {"openverse_url": openverse.url, "search_prefix": "coffee"}}]
    config = load(write_config(tmp_path, sandbox.url, model=rigged_model_dir(["<|"], strength=2.0), bots=bots))
    sandbox.create_account(BOT)
    sandbox.ban_domain("banned.example", "spam")
    yield config
    db.close()


def queue_and_generate(config):
    submit.run(config, config.bots, seed=1)
    (item,) = db.Item.select()
    assert item.image and item.is_link and item.state == db.QUEUED
    generate.run(config, config.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.GENERATED and item.title, item.reason
    return item


def test_an_image_post_retries_past_domain_banned(sandbox, world, openverse, caplog):
    item = queue_and_generate(world)
    post.run(world, world.bots)
    (posted,) = sandbox.submissions_by(BOT)
    assert (posted["is_self"], posted["url"], posted["title"]) == (False, GOOD, item.title)
    item = db.Item.get_by_id(item.id)
    assert (item.state, item.result, item.url) == (db.POSTED, posted["name"], GOOD)
    attempts = [(a.outcome, a.reason) for a in item.attempts.order_by(db.PostAttempt.id)]
    assert attempts[0][0] == "posted"
    assert attempts[1] == ("refused", f"DOMAIN_BANNED: banned.example is not allowed on reddit: spam ({BANNED})")
    assert openverse.requests[0]["q"].startswith("coffee") and openverse.requests[0]["mature"] == "false"
    assert "reddit refused https://img.banned.example/cup.jpg" in caplog.text
    post.run(world, world.bots)
    assert len(sandbox.submissions_by(BOT)) == 1, "posted once"


def test_a_failed_search_falls_back_to_a_text_post(sandbox, world, openverse):
    item = queue_and_generate(world)
    for _ in range(10):   # every query of the title fails
        openverse.fail(503)
    post.run(world, world.bots)
    (posted,) = sandbox.submissions_by(BOT)
    assert posted["is_self"] is True and posted["title"] == item.title
    assert db.Item.get_by_id(item.id).state == db.POSTED, "the slot is not lost"


def test_a_throttled_search_falls_back_to_a_text_post(sandbox, world, openverse):
    queue_and_generate(world)
    for _ in range(10):
        openverse.throttle()
    post.run(world, world.bots)
    assert [p["is_self"] for p in sandbox.submissions_by(BOT)] == [True]


def test_when_every_image_is_refused_the_post_is_a_text_post(sandbox, world, openverse):
    sandbox.ban_domain("staticflickr.com", "not here")
    item = queue_and_generate(world)
    post.run(world, world.bots)
    (posted,) = sandbox.submissions_by(BOT)
    assert posted["is_self"] is True
    refused = [a.reason for a in db.Item.get_by_id(item.id).attempts if a.outcome == "refused"]
    assert len(refused) == 2 and "staticflickr.com is not allowed" in refused[1]


def test_an_image_post_is_posted_once_when_the_answer_is_lost(sandbox, world):
    sandbox.unban_domain("banned.example")
    item = queue_and_generate(world)
    sandbox.faults.add("accept_then_hang", path="/api/submit", drop=True)   # reddit takes it, the answer is lost
    post.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.POSTING and len(sandbox.submissions_by(BOT)) == 1, "reddit has it, the DB does not know"
    db.Item.update(retry_at=None).where(db.Item.id == item.id).execute()
    post.run(world, world.bots)
    (posted,) = sandbox.submissions_by(BOT)
    item = db.Item.get_by_id(item.id)
    assert (item.state, item.result, posted["url"]) == (db.POSTED, posted["name"], BANNED)


# --- the search ----------------------------------------------------------------------------

def test_queries_go_from_the_titles_keywords_to_fewer():
    assert images.keywords("Is it just me, or is coffee better in the morning? 2 cups!") == [
        "coffee", "better", "morning", "cups"]
    assert images.queries("Is it just me or is coffee better in the morning?", "pokemon") == [
        "pokemon coffee better morning", "pokemon coffee better", "pokemon coffee", "pokemon"]
    assert images.queries("the a of", "") == []


def test_find_takes_the_most_specific_query_with_results(openverse):
    search = images.OpenverseSearch(openverse.url)
    found = images.find(search, "Coffee in the afternoon", "", 10)
    # "coffee afternoon" has no images (all words must match); "coffee" has two
    assert [i.url for i in found] == [BANNED, GOOD]
    assert [r["q"] for r in openverse.requests] == ["Coffee afternoon", "Coffee"]
    assert found[1].license == "CC BY 2.0" and found[1].source == "openverse/flickr"
    assert found[1].landing_url.startswith("https://www.flickr.com/photos/")
    assert images.find(search, "Nothing matches here", "", 10) == []


def test_search_failures_are_one_line(openverse):
    search = images.OpenverseSearch(openverse.url)
    openverse.fail(500)
    with pytest.raises(images.SearchFailed, match="HTTP 500"):
        search.search("coffee", 5)
    openverse.fail(200, b"<html><body>Welcome to our captive portal</body></html>")
    with pytest.raises(images.SearchFailed, match="not a search answer"):
        search.search("coffee", 5)
    with pytest.raises(images.SearchFailed, match="ConnectionError"):
        images.OpenverseSearch("http://127.0.0.1:9").search("coffee", 5)


def test_mature_and_urlless_results_are_left_out(openverse):
    class Answers(images.OpenverseSearch):
        pass

    search = Answers(openverse.url)
    good = openverse.answer("coffee", 20)
    good["results"][0]["mature"] = True
    good["results"][1]["url"] = None
    import json

    import requests

    class Session(requests.Session):
        def get(self, *args, **kwargs):
            answer = requests.Response()
            answer.status_code, answer._content = 200, json.dumps(good).encode()
            return answer

    assert images.OpenverseSearch(openverse.url, session=Session()).search("coffee", 5) == []


def test_image_and_link_shares_cannot_exceed_one():
    with pytest.raises(ConfigError, match="link_share 0.5 \\+ image_share 0.6 is over 1"):
        parse_config({"bots": [{"name": "b", "model": "m", "submit": [
            {"subreddit": "test", "link_share": 0.5, "image_share": 0.6}]}]})
