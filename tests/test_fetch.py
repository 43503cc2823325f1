"""jobs.fetch against the sandbox: real PRAW over HTTP, each item stored exactly once."""

import pytest

from jobs import fetch
from shared.state import db
from shared.errors import TransientError
from tests.botworld import BOT, load, run_job, write_config


@pytest.fixture
def world(sandbox, tmp_path):
    config = load(write_config(tmp_path, sandbox.url))
    sandbox.create_account(BOT)
    yield config
    db.close()


def keys(state=None):
    query = db.Item.select().where(db.Item.bot == BOT)
    return sorted(i.key for i in query)


def test_fetch_stores_posts_and_comments_once(sandbox, world):
    alice, bob = sandbox.reddit("alice"), sandbox.reddit("bob")
    post = alice.subreddit("test").submit("Is anyone here?", selftext="hello")
    comment = bob.submission(post.id).reply("I am")
    reply = alice.comment(comment.id).reply("great")
    fetch.run(world, world.bots)
    assert keys() == sorted([post.fullname, comment.fullname, reply.fullname])
    stored = db.Thing.get_by_id(reply.fullname)
    assert (stored.subreddit, stored.author, stored.body, stored.parent, stored.submission, stored.depth) == (
        "test", "alice", "great", comment.fullname, post.fullname, 1)
    assert db.Item.get(key=comment.fullname).thread == post.fullname

    fetch.run(world, world.bots)
    assert len(keys()) == 3, "a second run stores nothing new"
    later = bob.submission(post.id).reply("still here")
    fetch.run(world, world.bots)
    assert later.fullname in keys() and len(keys()) == 4


def test_fetch_reads_several_subreddits_and_skips_the_bots_own_items(sandbox, world):
    world.bots[0].subreddits = ["test", "other"]
    alice = sandbox.reddit("alice")
    a = alice.subreddit("test").submit("one", selftext="x")
    b = alice.subreddit("other").submit("two", selftext="y")
    alice.subreddit("elsewhere").submit("three", selftext="z")
    mine = sandbox.reddit(BOT).subreddit("test").submit("by the bot", selftext="z")
    fetch.run(world, world.bots)
    assert keys() == sorted([a.fullname, b.fullname])
    assert db.Thing.get_or_none(db.Thing.fullname == mine.fullname) is not None, "kept as ancestry"


def test_inbox_mentions_and_replies_are_stored_then_marked_read(sandbox, world):
    world.bots[0].subreddits = []
    alice = sandbox.reddit("alice")
    post = alice.subreddit("faraway").submit("hi", selftext="x")
    mention = alice.submission(post.id).reply(f"what do you think u/{BOT}?")
    bot_comment = sandbox.reddit(BOT).submission(post.id).reply("I think so")
    answer = alice.comment(bot_comment.id).reply("why?")
    fetch.run(world, world.bots)
    assert db.Item.get(key=mention.fullname).source == "mention"
    assert db.Item.get(key=answer.fullname).source == "comment_reply"
    assert db.Thing.get_by_id(answer.fullname).parent == bot_comment.fullname
    assert sandbox.inbox(BOT, unread_only=True) == []
    fetch.run(world, world.bots)
    assert len(keys()) == 2


def test_a_mention_seen_first_in_a_listing_becomes_a_mention(sandbox, world):
    alice = sandbox.reddit("alice")
    post = alice.subreddit("test").submit("hi", selftext="x")
    mention = alice.submission(post.id).reply(f"hey u/{BOT}")
    fetch.run(world, world.bots)
    assert db.Item.get(key=mention.fullname).source == "mention"


def test_private_messages_are_left_unread_unless_enabled(sandbox, world):
    world.bots[0].subreddits = []
    sandbox.message("alice", BOT, "hello", "are you a bot?")
    fetch.run(world, world.bots)
    assert keys() == [] and len(sandbox.inbox(BOT, unread_only=True)) == 1
    world.bots[0].inbox.messages = True
    fetch.run(world, world.bots)
    (item,) = db.Item.select()
    assert item.source == "message" and db.Thing.get_by_id(item.key).body == "are you a bot?"
    assert sandbox.inbox(BOT, unread_only=True) == []


def requests_to(path_part):
    """A logging handler counting the sandbox's requests whose path holds ``path_part``."""
    import logging

    class Count(logging.Handler):
        seen = []

        def emit(self, record):
            if path_part in record.getMessage():
                self.seen.append(record.getMessage())

    return Count()


def test_a_message_brings_its_conversation_once_and_only_the_new_message_is_work(sandbox, world):
    import logging

    world.bots[0].subreddits, world.bots[0].inbox.messages = [], True
    first = sandbox.message("alice", BOT, "Question", "Hi, are you a bot?")
    mine = sandbox.reply_message(BOT, first["name"], "I am.")
    sandbox.api.store.mark(BOT, [first["name"]], new=False)    # the bot read it long ago
    later = sandbox.reply_message("alice", mine["name"], "Prove it")
    counter = requests_to("/message/messages/")
    logger = logging.getLogger("shared.sandbox")
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    try:
        fetch.run(world, world.bots)
        fetch.run(world, world.bots)
    finally:
        logger.removeHandler(counter)
    assert keys() == sorted([later["name"], first["name"]])    # first: known answered by the bot's own
    assert db.Item.get(key=first["name"]).state == db.POSTED and db.Item.get(key=later["name"]).state == db.SEEN
    chain = db.ancestry(later["name"], 10)
    assert [(t.author, t.title, t.body) for t in chain] == [
        ("alice", "Question", "Hi, are you a bot?"), (BOT, "re: Question", "I am."), ("alice", "re: Question", "Prove it")]
    assert len(counter.seen) == 1, "one request for the whole conversation, and none once it is cached"


def test_ancestors_are_read_in_batches_not_one_request_per_parent(sandbox, world):
    alice = sandbox.reddit("alice")
    post = alice.subreddit("faraway").submit("old thread", selftext="x")
    parents = [sandbox.comment("bob", post.fullname, f"parent {i}")["name"] for i in range(150)]
    # Replies that reach the bot through its inbox: their parents are not in any listing.
    mine = [sandbox.comment(BOT, p, f"bot says {i}")["name"] for i, p in enumerate(parents)]
    for i, parent in enumerate(mine):
        sandbox.comment("carol", parent, f"reply {i}")
    world.bots[0].subreddits = []
    client_requests = []
    import logging

    class Count(logging.Handler):
        def emit(self, record):
            if "/api/info" in record.getMessage():
                client_requests.append(record.getMessage())

    handler = Count()
    logging.getLogger("shared.sandbox").addHandler(handler)
    logging.getLogger("shared.sandbox").setLevel(logging.INFO)
    try:
        fetch.run(world, world.bots)
    finally:
        logging.getLogger("shared.sandbox").removeHandler(handler)
    assert len(keys()) == 150
    # 150 inbox comments (2 requests), their 150 parents (2), then their 150 parents
    # and the post (2): 6 batched requests, against 450 one per thing.
    assert len(client_requests) <= 6
    assert all(db.Thing.get_by_id(k).depth == 2 for k in keys())


def test_deleted_and_removed_items_are_recorded_as_such(sandbox, world):
    alice = sandbox.reddit("alice")
    post = alice.subreddit("test").submit("hi", selftext="x")
    gone = sandbox.comment("bob", post.fullname, "I will vanish")["name"]
    removed = sandbox.comment("bob", post.fullname, "spam")["name"]
    kept = sandbox.comment("bob", gone, "reply to a deleted comment")["name"]
    sandbox.delete(gone)
    sandbox.remove(removed)
    fetch.run(world, world.bots)
    assert db.Thing.get_by_id(gone).deleted and db.Thing.get_by_id(gone).author is None
    assert db.Thing.get_by_id(kept).depth == 1


def test_fetch_without_praw_section_exits_2_with_one_line(sandbox, tmp_path):
    path = write_config(tmp_path, sandbox.url)
    (tmp_path / "praw.ini").write_text("[SomeoneElse]\nclient_id=x\n")
    done = run_job("fetch", path)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and f"no [{BOT}] section in praw.ini" in errors[0]
    assert "Traceback" not in done.stderr


def test_fetch_cli_runs_twice_and_stores_once(sandbox, tmp_path):
    path = write_config(tmp_path, sandbox.url)
    sandbox.submit("alice", "test", "hello there", selftext="x")
    first = run_job("fetch", path)
    second = run_job("fetch", path)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert f"{BOT}: 1 new items (1 listing)" in first.stderr
    assert f"{BOT}: 0 new items (nothing new)" in second.stderr


def test_a_db_that_lost_its_history_does_not_answer_again(sandbox, world):
    post = sandbox.submit("alice", "test", "hello?", selftext="x")
    answered = sandbox.comment("bob", post["name"], "first!")
    mine = sandbox.comment(BOT, answered["name"], "the bot answered this one already")
    fetch.run(world, world.bots)
    item = db.Item.get(key=answered["name"])
    assert (item.state, item.result) == (db.POSTED, mine["name"])
    assert db.Item.get(key=post["name"]).state == db.SEEN


def test_a_quiet_fetch_leaves_the_db_file_unchanged(sandbox, world):
    import hashlib
    from pathlib import Path

    post = sandbox.submit("alice", "test", "hello?", selftext="x")
    sandbox.comment("bob", post["name"], "hi")
    fetch.run(world, world.bots)
    db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = hashlib.sha256(Path(world.db).read_bytes()).hexdigest()
    fetch.run(world, world.bots)
    db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert hashlib.sha256(Path(world.db).read_bytes()).hexdigest() == before


# --- the safety paths ---------------------------------------------------------------------------

def test_the_inbox_is_marked_read_only_after_its_items_are_stored(sandbox, world):
    world.bots[0].subreddits = []
    post = sandbox.submit("alice", "elsewhere", "hi", selftext="x")
    mention = sandbox.comment("bob", post["name"], f"what do you think u/{BOT}?")
    # Reading the mentions' full comments fails: nothing is stored, so nothing may be marked read.
    sandbox.faults.add("http", status=500, path="/api/info", times=None)
    with pytest.raises(TransientError):
        fetch.run(world, world.bots)
    assert keys() == [] and len(sandbox.inbox(BOT, unread_only=True)) == 1
    sandbox.faults.clear()
    # Stored, then marking read fails: the next run reads it again and stores nothing twice.
    sandbox.faults.add("http", status=500, path="/api/read_message", times=None)
    with pytest.raises(TransientError):
        fetch.run(world, world.bots)
    assert keys() == [mention["name"]] and len(sandbox.inbox(BOT, unread_only=True)) == 1
    sandbox.faults.clear()
    fetch.run(world, world.bots)
    assert keys() == [mention["name"]] and sandbox.inbox(BOT, unread_only=True) == []


def test_listing_cursors_advance_to_the_newest_item_read(sandbox, world):
    alice = sandbox.reddit("alice")
    first = alice.subreddit("test").submit("first", selftext="x")
    comment = alice.submission(first.id).reply("a comment")
    fetch.run(world, world.bots)
    cursors = {c.name: c.value for c in db.Cursor.select().where(db.Cursor.bot == BOT)}
    assert cursors == {"new:test": first.created_utc, "comments:test": comment.created_utc}
    later = alice.subreddit("test").submit("later", selftext="y")
    sandbox.set_created(later.fullname, first.created_utc + 100)        # a minute and more later
    fetch.run(world, world.bots)
    assert db.Cursor.get(bot=BOT, name="new:test").value == first.created_utc + 100
    assert db.Cursor.get(bot=BOT, name="comments:test").value == comment.created_utc
    assert later.fullname in keys()


def test_an_unexpected_failure_exits_1_with_its_traceback(sandbox, tmp_path):
    path = write_config(tmp_path, sandbox.url)
    # A listing in a shape PRAW does not know: not a reddit error ssi-bot can explain.
    sandbox.faults.add("http", status=200, path="/r/test/new", body={"unexpected": [1, 2]}, times=None)
    done = run_job("fetch", path)
    assert done.returncode == 1, done.stderr
    assert "unexpected failure" in done.stderr and "Traceback" in done.stderr and "ValueError" in done.stderr
