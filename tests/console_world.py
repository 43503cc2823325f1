"""A bot's world for the console's tests, made by the real jobs, and the console serving it.

    world = build(tmp_path, sandbox, demo_model_dir)      # run.py --once against the sandbox
    with serve(world.config_path) as url:                 # python -m jobs.console --port 0
        requests.get(url + "bots/" + BOT)

``build`` seeds the sandbox (a thread with a question and two comments by mallory, one of
them ``EVIL`` markup, a post by mallory titled with it, a DM). The bot queues every item but
answers an author once a day, so two of mallory's three items are skipped by that cap. Then
it runs one real cycle with the demo model (fetch, decide, submit, generate, post:
decisions, candidates, post attempts, job runs, the bot's own post), and adds what one short
cycle rarely makes, with the DB functions the jobs use: an item that failed after its
candidates were rejected by the filters, and a post attempt that did not post. praw.ini
holds ``SECRETS``, which no page may ever show.
"""

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from shared.state import db
from tests.botworld import ROOT

BOT = "TestBot-GPT2"
QUIET_BOT = "QuietBot-GPT2"         # configured, never read anything: empty pages
EVIL = '<script>alert("pwned")</script> & <b>not bold</b>'
SECRETS = ("client-secret-never-shown-5b1e", "password-never-shown-77a9")
REJECTED = ("unclosed", "negative keyword: grape", "repeats the thread (similarity 0.97)")


@dataclass
class World:
    config_path: Path
    db_path: Path
    post: dict                  # the thread with the question (the bot answers it)
    question: dict
    evil_comment: dict          # its body is EVIL
    evil_post: dict             # its title is EVIL
    failed_item: int            # the seeded item whose candidates were all rejected


def write_config(directory, sandbox_url, model):
    bots = [{"name": BOT, "model": str(model), "subreddits": ["test"],
             "reply": {"base": 1.0},                       # every item is queued, unless a cap stops it
             "caps": {"per_user": 1},                      # ... one answer per author
             "inbox": {"messages": True},
             "sampling": {"max_new_tokens": 48, "candidates": 2},
             "submit": [{"subreddit": "test", "every_hours": 1}]},
            {"name": QUIET_BOT, "model": str(model), "subreddits": ["quiet"]}]
    path = Path(directory) / "ssi-bot.yaml"
    path.write_text(yaml.safe_dump({"db": "state.db", "reddit_endpoint": sandbox_url, "bots": bots},
                                   sort_keys=False))
    secret, password = SECRETS
    (Path(directory) / "praw.ini").write_text("".join(
        f"[{b['name']}]\nclient_id=id-{b['name']}\nclient_secret={secret}\nusername={b['name']}\npassword={password}\n"
        for b in bots))
    return path


def build(directory, sandbox, model):
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = write_config(directory, sandbox.url, model)
    post = sandbox.submit("alice", "test", "I finally fixed my bike", selftext="Took three weekends.")
    question = sandbox.comment("bob", post["name"], "How long did that take?")
    evil_comment = sandbox.comment("mallory", post["name"], EVIL)
    sandbox.comment("mallory", post["name"], "me again")
    evil_post = sandbox.submit("mallory", "test", EVIL, selftext="the title is markup")
    sandbox.message("carol", BOT, "hello", "Do you like bikes?")
    done = subprocess.run([sys.executable, "run.py", "--config", str(path), "--once"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    db_path = Path(directory) / "state.db"
    db.open(db_path)
    try:
        failed = seed_failure(question["name"], post["name"])
    finally:
        db.close()
    return World(path, db_path, post, question, evil_comment, evil_post, failed)


def seed_failure(parent, thread):
    """An item that failed because every candidate was rejected, and a post attempt that did
    not post, as jobs.generate and jobs.post record them."""
    item, _ = db.add_item(BOT, "t1_zz9999", "listing", subreddit="test", thread=thread, target_author="dave")
    db.store_things([{"fullname": "t1_zz9999", "subreddit": "test", "author": "dave", "body": "grapes or bikes?",
                      "parent": parent, "submission": thread, "depth": 1, "created_utc": time.time() - 60}])
    db.record_decision(item, 0.55, 0.12, ["base +0.30", "depth 1 -0.05", "human author +0.30",
                                          "age 0.1h x1.00"], queue=True)
    for reason in REJECTED:
        db.Candidate.create(item=item, raw=f"{EVIL} candidate text <|eoc|>", accepted=False, reason=reason)
    item.move(db.FAILED, gen_attempts=3, reason=f"no acceptable text after 3 rounds ({', '.join(REJECTED)})")
    answered = db.Item.get((db.Item.bot == BOT) & (db.Item.key == parent))
    db.PostAttempt.create(item=answered, outcome="transient", reason="reddit answered 503",
                          started_at=answered.created_at, finished_at=answered.created_at + 1)
    answered.post_attempts += 1
    answered.save(only=[db.Item.post_attempts])
    return item.id


def verdicts(world, key):
    """The verdict the console must show for each candidate of ``BOT``'s item ``key``, in order."""
    from shared.console.pages import verdict

    con = sqlite3.connect(f"file:{world.db_path}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT c.accepted, c.reason FROM candidate c JOIN item i ON c.item_id = i.id "
                           "WHERE i.bot = ? AND i.key = ? ORDER BY c.id", (BOT, key)).fetchall()
    finally:
        con.close()
    return [verdict(bool(accepted), reason) for accepted, reason in rows]


def console_command(config_path, *args):
    return [sys.executable, "-m", "jobs.console", "--config", str(config_path), "--port", "0", *args]


@contextlib.contextmanager
def serve(config_path, *args, env=None):
    """``python -m jobs.console`` on a free port of 127.0.0.1: its address (the first line it prints)."""
    process = subprocess.Popen(console_command(config_path, *args), cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    try:
        first = process.stdout.readline()
        assert first.startswith("console: http://127.0.0.1:"), first + process.stderr.read()
        yield first.split()[1]
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=30)
        assert "Traceback" not in errors, errors
