"""jobs.decide on what fetch stored from the sandbox: one draw per item, caps, mention guard."""

import json

import pytest

from jobs import decide, fetch, status
from shared.state import db
from tests.botworld import BOT, assert_one_clear_error, load, run_job, write_config


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


# --- the safety paths at job level ------------------------------------------------------------

def test_cap_per_day_holds_after_the_hour_has_passed(sandbox, world):
    world.bots[0].caps.per_day = 3
    post = sandbox.submit("alice", "test", "hi", selftext="x")
    for i in range(3):
        sandbox.comment(f"user{i}", post["name"], f"hey u/{BOT} number {i}")
    fetch.run(world, world.bots)
    db.Item.update(state=db.SKIPPED).where(db.Item.key == post["name"]).execute()
    decide.run(world, world.bots, seed=1)
    assert db.Item.select().where(db.Item.state == db.QUEUED).count() == 3
    db.Decision.update(decided_at=db.Decision.decided_at - 2 * 3600).execute()    # two hours later
    for i in range(3):
        sandbox.comment(f"other{i}", post["name"], f"u/{BOT} are you there {i}")
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=2)
    assert db.Item.select().where(db.Item.state == db.QUEUED).count() == 3
    assert db.Item.select().where(db.Item.reason.startswith("cap per_day reached (3/3)")).count() == 3


def test_cap_per_thread_holds_in_one_thread_and_not_in_another(sandbox, world):
    world.bots[0].caps.per_thread = 2
    busy = sandbox.submit("alice", "test", "busy thread", selftext="x")
    quiet = sandbox.submit("alice", "test", "quiet thread", selftext="x")
    for i in range(4):
        sandbox.comment(f"user{i}", busy["name"], f"hey u/{BOT} number {i}")
    calm = sandbox.comment("carol", quiet["name"], f"u/{BOT} hello")
    fetch.run(world, world.bots)
    db.Item.update(state=db.SKIPPED).where(db.Item.key.in_([busy["name"], quiet["name"]])).execute()
    decide.run(world, world.bots, seed=1)
    in_busy = db.Item.select().where(db.Item.thread == busy["name"])
    assert sorted(i.state for i in in_busy if i.key != busy["name"]) == [db.QUEUED] * 2 + [db.SKIPPED] * 2
    assert [i.reason for i in in_busy if i.state == db.SKIPPED and i.key != busy["name"]] == [
        "cap per_thread reached (2/2)"] * 2
    assert db.Item.get(key=calm["name"]).state == db.QUEUED


def test_removed_and_locked_posts_reach_decide_from_fetch(sandbox, world):
    removed_post = sandbox.submit("alice", "test", "soon removed", selftext="x")
    locked_post = sandbox.submit("alice", "test", "soon locked", selftext="x")
    in_removed = sandbox.comment("bob", removed_post["name"], f"hey u/{BOT} what do you think?")
    in_locked = sandbox.comment("bob", locked_post["name"], f"hey u/{BOT} what do you think?")
    sandbox.remove(removed_post["name"])     # gone from the listing; read as ancestry through /api/info
    sandbox.lock(locked_post["name"])
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=1)
    assert (decision(in_removed["name"]).probability, decision(in_removed["name"]).reasons) == (0.0, ["removed"])
    assert (decision(in_locked["name"]).probability, decision(in_locked["name"]).reasons) == (0.0, ["locked"])


def test_a_removed_mention_read_from_the_inbox_gets_zero(sandbox, world):
    world.bots[0].subreddits = []
    post = sandbox.submit("alice", "elsewhere", "hi", selftext="x")
    mention = sandbox.comment("bob", post["name"], f"u/{BOT} look at this")
    sandbox.remove(mention["name"])
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=1)
    assert db.Item.get(key=mention["name"]).source == "mention"
    assert (decision(mention["name"]).probability, decision(mention["name"]).reasons) == (0.0, ["removed"])


def test_someone_elses_name_a_toxic_mention_a_keyword_and_a_trumpet(sandbox, world):
    """The closing note's example: what decide gives each, from the Decision rows."""
    post = sandbox.submit("alice", "test", "Band practice", selftext="who plays what?")
    fan = sandbox.comment("bob", post["name"], f"hi u/{BOT}-fan, nice band")
    toxic = sandbox.comment("carol", post["name"], f"u/{BOT} you are a worthless piece of shit")
    keyword = sandbox.comment("dave", post["name"], "Trump would love this band")
    trumpet = sandbox.comment("erin", post["name"], "I play the trumpet in it")
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=4)
    assert (decision(fan["name"]).probability, decision(fan["name"]).reasons) == (
        pytest.approx(0.20, abs=0.005), ["base -0.10", "human author +0.30", "age 0.0h x1.00"])
    assert db.Item.get(key=toxic["name"]).source == "mention"
    assert (decision(toxic["name"]).probability, decision(toxic["name"]).reasons) == (
        0.0, ["toxic: profanity 1.00 >= 0.80"])
    assert (decision(keyword["name"]).probability, decision(keyword["name"]).reasons) == (
        0.0, ["negative keyword: trump"])
    assert decision(trumpet["name"]).probability == pytest.approx(0.20, abs=0.005)
    assert decision(post["name"]).probability == pytest.approx(0.70, abs=0.005)


def test_incoming_toxicity_can_be_switched_off(sandbox, world):
    world.bots[0].toxicity.incoming = False
    post = sandbox.submit("alice", "test", "hi", selftext="x")
    toxic = sandbox.comment("carol", post["name"], f"u/{BOT} you are a worthless piece of shit")
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=4)
    assert decision(toxic["name"]).probability == 1.0


def test_decide_with_a_detoxify_checkpoint(sandbox, world, tmp_path):
    from tests.detoxify_models import build_checkpoint

    always_toxic = build_checkpoint(tmp_path / "tox", fixed=[0.9, 0.01, 0.1, 0.1, 0.1, 0.1])
    world.bots[0].toxicity.engine, world.bots[0].toxicity.checkpoint = "detoxify", str(always_toxic)
    post = sandbox.submit("alice", "test", "What a lovely day?", selftext="")
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=4)
    assert decision(post["name"]).reasons == ["toxic: toxicity 0.90 > 0.80"]


def test_a_missing_detoxify_checkpoint_is_one_line_and_exit_2(sandbox, tmp_path):
    path = write_config(tmp_path, sandbox.url, bots=[{"name": BOT, "subreddits": ["test"], "toxicity": {
        "engine": "detoxify", "checkpoint": "models/toxic.ckpt"}}])
    sandbox.submit("alice", "test", "hello", selftext="x")
    assert run_job("fetch", path).returncode == 0
    done = run_job("decide", path)
    assert_one_clear_error(done, f"bot {BOT}: toxicity.checkpoint {tmp_path / 'models' / 'toxic.ckpt'}: no such file")
