"""jobs.post: exactly once, through crashes, rate limits, 5xx, locks and deletions."""

import signal
import subprocess
import sys
import time

import pytest

from jobs import decide, fetch, generate, post, submit
from shared.state import db
from shared.config import SubmitSchedule
from tests.botworld import BOT, ROOT, load, write_config


@pytest.fixture
def world(sandbox, tmp_path, rigged_model_dir):
    model = rigged_model_dir(["<|"], strength=2.0)
    bots = [{"name": BOT, "subreddits": ["test"], "reply": {"base": 1.0}, "sampling": {"attempts": 6}},
            {"name": "Other-GPT2", "subreddits": ["other"], "reply": {"base": 1.0}, "sampling": {"attempts": 6}}]
    config = load(write_config(tmp_path, sandbox.url, model=model, bots=bots))
    for bot in bots:
        sandbox.create_account(bot["name"])
    yield config
    db.close()


def generated(config, sandbox, subreddit="test", comments=1):
    """A human post with ``comments`` comments, fetched, decided and generated; their items."""
    post_ = sandbox.submit("alice", subreddit, "hello", selftext="x")
    for i in range(comments):
        sandbox.comment(f"user{i}", post_["name"], f"comment {i}")
    fetch.run(config, config.bots)
    decide.run(config, config.bots, seed=0)
    generate.run(config, config.bots)
    items = list(db.Item.select().where(db.Item.subreddit == subreddit))
    assert all(i.state == db.GENERATED for i in items), [(i.key, i.reason) for i in items]
    return items


def bot_comments(sandbox, name=BOT):
    return sandbox.comments_by(name)


def test_post_replies_once_in_the_right_threads(sandbox, world):
    items = generated(world, sandbox, comments=2)
    post.run(world, world.bots)
    mine = bot_comments(sandbox)
    assert sorted(c["parent_id"] for c in mine) == sorted(i.key for i in items)
    for item in db.Item.select():
        assert item.state == db.POSTED and item.result in {c["name"] for c in mine}
        assert {c["body"] for c in mine if c["name"] == item.result} == {item.text}
    post.run(world, world.bots)
    assert len(bot_comments(sandbox)) == 3, "a second run posts nothing"


def test_post_never_double_posts_after_a_crash_between_reddit_and_the_db(sandbox, world):
    (item, *_) = generated(world, sandbox, comments=0)
    sandbox.faults.add("accept_then_hang", path="/api/comment", delay=60)
    job = subprocess.Popen([sys.executable, "-m", "jobs.post", "--config", str(world.path)], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while not bot_comments(sandbox) and time.time() < deadline:
        time.sleep(0.05)
    assert bot_comments(sandbox), "reddit accepted the reply"
    job.send_signal(signal.SIGKILL)
    job.wait()
    item = db.Item.get_by_id(item.id)
    assert item.state == db.POSTING and item.result is None, "the DB never heard back"

    post.run(world, world.bots)
    (comment,) = bot_comments(sandbox)
    item = db.Item.get_by_id(item.id)
    assert (item.state, item.result) == (db.POSTED, comment["name"])
    assert [a.outcome for a in item.attempts.order_by(db.PostAttempt.id)] == ["found"]
    post.run(world, world.bots)
    assert len(bot_comments(sandbox)) == 1


def test_ratelimit_waits_the_time_reddit_names_without_blocking_other_bots(sandbox, world):
    generated(world, sandbox, "test", comments=1)
    other = generated(world, sandbox, "other", comments=0)
    sandbox.faults.add("ratelimit", path="/api/comment", user=BOT, seconds=51)
    before = time.time()
    post.run(world, world.bots)
    waiting = list(db.Item.select().where((db.Item.bot == BOT)))
    assert all(i.state == db.GENERATED for i in waiting)
    assert all(before + 50 <= i.retry_at <= time.time() + 52 for i in waiting)
    assert "RATELIMIT" in waiting[0].reason or "RATELIMIT" in waiting[1].reason
    assert [c["parent_id"] for c in bot_comments(sandbox, "Other-GPT2")] == [other[0].key]
    post.run(world, world.bots)
    assert bot_comments(sandbox) == [], "not before the time reddit named"
    db.Item.update(retry_at=time.time() - 1).where(db.Item.bot == BOT).execute()
    post.run(world, world.bots)
    assert len(bot_comments(sandbox)) == 2


def test_5xx_is_retried_with_backoff_after_looking_on_reddit(sandbox, world):
    (item,) = [i for i in generated(world, sandbox, comments=0)]
    sandbox.faults.add("http", status=503, path="/api/comment")
    post.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.POSTING and item.retry_at > time.time() + 30 and "503" in item.reason
    assert bot_comments(sandbox) == [], "prawcore did not resend the write"
    db.Item.update(retry_at=time.time() - 1).where(db.Item.id == item.id).execute()
    post.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.POSTED and len(bot_comments(sandbox)) == 1
    assert [a.outcome for a in item.attempts.order_by(db.PostAttempt.id)] == ["transient", "posted"]


@pytest.mark.parametrize("break_it, reason", [
    (lambda sb, item: sb.lock(item.key), "forbidden"),
    (lambda sb, item: sb.ban("test", BOT), "forbidden"),
    (lambda sb, item: sb.delete(item.key), "DELETED_COMMENT"),
])
def test_locked_banned_and_deleted_targets_fail_with_the_reason_and_keep_the_text(sandbox, world, break_it, reason):
    items = generated(world, sandbox, comments=1)
    item = next(i for i in items if i.key.startswith("t1_"))
    break_it(sandbox, item)
    post.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.FAILED and reason in item.reason
    assert item.text, "the generated text is never lost"


def test_scheduled_posts_are_generated_and_submitted_with_flair_and_nsfw(sandbox, world):
    world.bots[0].subreddits = []
    world.bots[1].subreddits = []
    world.bots[0].submit = [SubmitSchedule(subreddit="test", every_hours=6, flair_id="flair-1", nsfw=True)]
    submit.run(world, world.bots, seed=1)
    submit.run(world, world.bots, seed=2)
    (item,) = db.Item.select()
    assert item.key.startswith("submit:test:") and item.state == db.QUEUED
    generate.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.GENERATED and item.title
    post.run(world, world.bots)
    (posted,) = sandbox.submissions_by(BOT)
    assert posted["title"] == item.title and posted["over_18"] is True
    assert posted["link_flair_template_id"] == "flair-1"
    assert db.Item.get_by_id(item.id).result == posted["name"]
    submit.run(world, world.bots, seed=3)
    assert db.Item.select().count() == 1, "one post per subreddit and period"


def test_dry_run_posts_nothing(sandbox, world):
    generated(world, sandbox, comments=1)
    post.run(world, world.bots, dry_run=True)
    assert bot_comments(sandbox) == []
    assert all(i.state == db.GENERATED for i in db.Item.select())


def test_a_reply_already_on_reddit_is_recorded_not_posted_again(sandbox, world):
    """A DB restored from an older snapshot, or a second runner, forgot the reply: reddit did not."""
    (item,) = [i for i in generated(world, sandbox, comments=0)]
    earlier = sandbox.comment(BOT, item.key, "said before the state was lost")
    post.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert (item.state, item.result) == (db.POSTED, earlier["name"])
    assert len(bot_comments(sandbox)) == 1


# --- the safety paths, each pinned through the job (real PRAW against the sandbox) ---------------

def scheduled(config, sandbox):
    """The bot's own post in r/test, queued by submit and generated; its item."""
    config.bots[0].subreddits = []
    config.bots[1].subreddits = []
    config.bots[0].submit = [SubmitSchedule(subreddit="test", every_hours=6)]
    submit.run(config, config.bots, seed=1)
    generate.run(config, config.bots)
    (item,) = db.Item.select()
    assert item.state == db.GENERATED and item.title
    return item


def due_now(item):
    db.Item.update(retry_at=time.time() - 1).where(db.Item.id == item.id).execute()


def outcomes(item):
    return [a.outcome for a in db.Item.get_by_id(item.id).attempts.order_by(db.PostAttempt.id)]


def test_a_scheduled_post_killed_between_reddits_accept_and_the_commit_is_found_not_posted_again(sandbox, world):
    item = scheduled(world, sandbox)
    sandbox.faults.add("accept_then_hang", path="/api/submit", delay=60)
    job = subprocess.Popen([sys.executable, "-m", "jobs.post", "--config", str(world.path)], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while not sandbox.submissions_by(BOT) and time.time() < deadline:
        time.sleep(0.05)
    assert sandbox.submissions_by(BOT), "reddit accepted the post"
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert db.Item.get_by_id(item.id).state == db.POSTING, "the DB never heard back"

    post.run(world, world.bots)
    (posted,) = sandbox.submissions_by(BOT)
    item = db.Item.get_by_id(item.id)
    assert (item.state, item.result) == (db.POSTED, posted["name"])
    assert outcomes(item) == ["found"]


@pytest.mark.parametrize("path", ["/api/comment", "/api/submit"])
def test_a_dropped_connection_after_reddit_took_the_write_is_never_resent(sandbox, world, path):
    """prawcore resends a request whose connection dropped; for a comment or a post that is a double."""
    (item,) = [scheduled(world, sandbox)] if path == "/api/submit" else generated(world, sandbox, comments=0)
    mine = (lambda: sandbox.submissions_by(BOT)) if path == "/api/submit" else (lambda: bot_comments(sandbox))
    sandbox.faults.add("accept_then_hang", path=path, drop=True)
    post.run(world, world.bots)
    assert len(mine()) == 1, "written once, not resent"
    item = db.Item.get_by_id(item.id)
    assert item.state == db.POSTING and item.retry_at > time.time() and "Connection aborted" in item.reason
    due_now(item)
    post.run(world, world.bots)
    (written,) = mine()
    item = db.Item.get_by_id(item.id)
    assert (item.state, item.result) == (db.POSTED, written["name"])
    assert outcomes(item) == ["transient"], "found on reddit: no second write"


@pytest.mark.parametrize("target", ["comment", "post"])
def test_a_reply_older_than_the_bots_newest_100_comments_is_found_under_its_parent(sandbox, world, target):
    items = generated(world, sandbox, comments=1)
    (item,) = [i for i in items if i.key.startswith("t1_" if target == "comment" else "t3_")]
    db.Item.update(state=db.SKIPPED).where(db.Item.id != item.id).execute()
    sandbox.faults.add("accept_then_hang", path="/api/comment", drop=True)
    post.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.POSTING
    elsewhere = sandbox.submit("alice", "other", "busy day", selftext="x")
    for i in range(post.RECOVERY_WINDOW + 5):   # the bot talks on: its reply leaves the newest 100
        sandbox.comment(BOT, elsewhere["name"], f"later comment {i}")
    due_now(item)
    post.run(world, world.bots)
    answers = [c for c in bot_comments(sandbox) if c["parent_id"] == item.key]
    assert len(answers) == 1, "found under the parent, not posted again"
    assert (db.Item.get_by_id(item.id).state, db.Item.get_by_id(item.id).result) == (db.POSTED, answers[0]["name"])


def test_transient_failures_back_off_doubling_then_give_up_after_max_attempts(sandbox, world):
    (item,) = generated(world, sandbox, comments=0)
    sandbox.faults.add("http", status=503, path="/api/comment", times=None)
    waits = []
    for _ in range(4):
        started = time.time()
        post.run(world, world.bots)
        item = db.Item.get_by_id(item.id)
        assert item.state == db.POSTING
        waits.append(item.retry_at - started)
        due_now(item)
    assert waits == pytest.approx([60, 120, 240, 480], abs=5)
    db.Item.update(post_attempts=12).where(db.Item.id == item.id).execute()
    started = time.time()
    post.run(world, world.bots)
    assert db.Item.get_by_id(item.id).retry_at - started == pytest.approx(post.BACKOFF_MAX_SECONDS, abs=5)
    db.Item.update(post_attempts=post.MAX_ATTEMPTS - 1).where(db.Item.id == item.id).execute()
    due_now(item)
    post.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.FAILED and item.reason.startswith(f"gave up after {post.MAX_ATTEMPTS} attempts")
    assert item.text and bot_comments(sandbox) == []


def test_posted_but_not_returned_is_looked_up_before_any_retry(sandbox, world):
    """Reddit answers OK with no comment in it (quarantined subreddits do): the outcome is unknown."""
    (item,) = generated(world, sandbox, comments=0)
    sandbox.faults.add("http", status=200, path="/api/comment",
                       body={"json": {"errors": [], "data": {"things": []}}})
    post.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert (item.state, item.reason, item.result) == (db.POSTING, "posted but not returned", None)
    assert item.retry_at > time.time()
    made = sandbox.comment(BOT, item.key, item.text)      # what reddit had in fact done
    due_now(item)
    post.run(world, world.bots)
    assert (db.Item.get_by_id(item.id).state, db.Item.get_by_id(item.id).result) == (db.POSTED, made["name"])
    assert len(bot_comments(sandbox)) == 1


@pytest.mark.parametrize("what", ["the comment", "its post"])
def test_a_target_the_moderators_removed_is_not_answered(sandbox, world, what):
    items = generated(world, sandbox, comments=1)
    item = next(i for i in items if i.key.startswith("t1_"))
    sandbox.remove(item.key if what == "the comment" else item.thread)
    post.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.FAILED and item.reason.startswith("removed: the moderators removed")
    assert item.text, "the generated text is never lost"
    assert item.key not in {c["parent_id"] for c in bot_comments(sandbox)}


def test_a_target_too_old_to_answer_fails_with_reddits_reason(sandbox, world):
    items = generated(world, sandbox, comments=1)
    sandbox.set_created(items[0].thread, time.time() - 200 * 86400)     # archived
    post.run(world, world.bots)
    assert [(i.state, i.reason.split(":")[0]) for i in db.Item.select()] == [(db.FAILED, "TOO_OLD")] * 2
    assert bot_comments(sandbox) == []
