"""jobs.decide on what fetch stored from the sandbox: one draw per item, caps, mention guard."""

import json

import pytest

from jobs import decide, fetch, status
from shared.state import db
from tests.botworld import BOT, load, run_job, write_config


@pytest.fixture
def world(sandbox, tmp_path):
    path = write_config(tmp_path, sandbox.url)
    config = load(path)
    sandbox.create_account(BOT)
    yield config
    db.close()


def decision(fullname):
    return db.Decision.get(db.Decision.item == db.Item.get(key=fullname))


def test_decide_reproduces_product_md_probabilities(sandbox, world):
    alice = sandbox.reddit("alice")
    post = alice.subreddit("test").submit("Nice day", selftext="sunny")
    question = alice.subreddit("test").submit("What is your favourite colour?", selftext="")
    comment = sandbox.reddit("bob").submission(post.id).reply("indeed it is")
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=1)
    assert decision(comment.fullname).probability == pytest.approx(0.20, abs=0.005)
    assert decision(post.fullname).probability == pytest.approx(0.30, abs=0.005)
    assert decision(question.fullname).probability == pytest.approx(0.70, abs=0.005)
    assert "human author +0.30" in decision(comment.fullname).reasons


def test_each_item_is_drawn_once_and_never_requeued(sandbox, world):
    for i in range(5):
        sandbox.submit("alice", "test", f"question {i}?", selftext="")
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=7)
    before = {(i.key, i.state) for i in db.Item.select()}
    draws = {d.item_id: d.draw for d in db.Decision.select()}
    decide.run(world, world.bots, seed=99)
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=123)
    assert {(i.key, i.state) for i in db.Item.select()} == before
    assert {d.item_id: d.draw for d in db.Decision.select()} == draws
    assert db.Decision.select().count() == 5
    for item in db.Item.select():
        d = decision(item.key)
        assert (item.state == db.QUEUED) == (d.draw < d.probability)


def test_caps_per_hour_and_per_user_hold(sandbox, world):
    world.bots[0].caps.per_hour = 3
    post = sandbox.submit("alice", "test", "hi", selftext="x")
    for i in range(6):
        sandbox.comment(f"user{i}", post["name"], f"hey u/{BOT} number {i}")
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=1)
    queued = db.Item.select().where(db.Item.state == db.QUEUED).count()
    assert queued == 3
    capped = db.Item.select().where(db.Item.reason.startswith("cap per_hour"))
    assert capped.count() >= 3


def test_cap_per_user(sandbox, world):
    world.bots[0].caps.per_user = 2
    post = sandbox.submit("alice", "elsewhere", "hi", selftext="x")
    for i in range(4):
        sandbox.comment("carol", post["name"], f"u/{BOT} again {i}")
    world.bots[0].subreddits = []
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=1)
    assert db.Item.select().where(db.Item.state == db.QUEUED).count() == 2
    assert db.Item.select().where(db.Item.reason.startswith("cap per_user")).count() == 2


def test_mention_guard_decays_deep_mention_loops(sandbox, world):
    post = sandbox.submit("alice", "test", "a loop", selftext="x")
    parent, chain = post["name"], []
    for depth in range(9):  # two other bots summoning this one, deeper and deeper
        author = "chatty-gpt2" if depth % 2 == 0 else "other-gpt2"
        parent = sandbox.comment(author, parent, f"u/{BOT} answer me")["name"]
        chain.append(parent)
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=3)
    p = [decision(name).probability for name in chain]
    assert p[:4] == [1.0] * 4                                       # depths 1-4
    assert p[4:] == pytest.approx([0.75, 0.5, 0.25, 0.0, 0.0], abs=0.01)


def test_status_json_matches_the_db(sandbox, world):
    for i in range(4):
        sandbox.submit("alice", "test", f"post {i}?", selftext="")
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=5)
    item = db.Item.select().first()
    item.move(db.FAILED, reason="THREAD_LOCKED: Comments are locked.")
    db.close()
    done = run_job("status", world.path, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["bots"][BOT]
    db.open(world.db)
    expected = {s: db.Item.select().where(db.Item.state == s).count() for s in db.STATES}
    assert report["states"] == expected and report["total"] == 4
    assert report["failures"][0] == {"key": item.key, "reason": "THREAD_LOCKED: Comments are locked.",
                                     "at": pytest.approx(db.Item.get_by_id(item.id).updated_at)}
    text = status.render(status.collect(world.bots))
    assert f"{BOT}: 4 items seen" in text and "THREAD_LOCKED" in text
