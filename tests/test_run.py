"""run.py: the 24/7 loop end to end against the sandbox, signals, and job isolation."""

import signal
import subprocess
import sys
import time

import pytest
import yaml

from shared.state import db
from shared.state.lock import job_lock
from tests.botworld import BOT, ROOT, run_job, write_config


def start(config_path, *args):
    return subprocess.Popen([sys.executable, "run.py", "--config", str(config_path), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_once(config_path, timeout=240):
    done = subprocess.run([sys.executable, "run.py", "--config", str(config_path), "--once"], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture
def world(sandbox, tmp_path, rigged_model_dir):
    path = write_config(tmp_path, sandbox.url, model=rigged_model_dir(["<|"], strength=2.0),
                        bots=[{"name": BOT, "subreddits": ["test"], "reply": {"base": 1.0},
                               "sampling": {"attempts": 6}}])
    sandbox.create_account(BOT)
    return path


def test_once_answers_humans_in_the_right_threads_and_a_second_cycle_posts_nothing(sandbox, world):
    post = sandbox.submit("alice", "test", "Anyone around?", selftext="just testing")
    top = sandbox.comment("bob", post["name"], "I am here")
    bot_comment = sandbox.comment(BOT, post["name"], "hello from the bot")
    answer = sandbox.comment("carol", bot_comment["name"], "hi bot, how are you?")
    log = run_once(world)
    mine = sandbox.comments_by(BOT)
    answered = sorted(c["parent_id"] for c in mine if c["name"] != bot_comment["name"])
    # The bot had already commented on the post itself: that counts as answered.
    assert answered == sorted([top["name"], answer["name"]])
    assert f"{BOT}: 3 items seen" in log and "2 posted" in log
    run_once(world)
    assert len(sandbox.comments_by(BOT)) == len(mine), "a second cycle posts nothing new"


def test_a_failing_job_is_logged_and_the_cycle_goes_on(sandbox, world, tmp_path):
    data = yaml.safe_load(world.read_text())
    data["bots"][0]["model"] = str(tmp_path / "missing-model")
    world.write_text(yaml.safe_dump(data))
    sandbox.submit("alice", "test", "hello?", selftext="x")
    log = run_once(world)
    assert "missing-model" in log and "ERROR" in log
    assert "1 queued" in log, "fetch and decide ran before generate failed"
    assert "Traceback" not in log


def test_sigterm_lets_the_job_in_flight_finish_then_exits_0(sandbox, world):
    sandbox.submit("alice", "test", "slow reddit today?", selftext="x")
    sandbox.faults.add("accept_then_hang", path="/api/comment", delay=3)
    runner = start(world)
    deadline = time.time() + 180
    while not sandbox.comments_by(BOT) and time.time() < deadline:
        time.sleep(0.05)
    assert sandbox.comments_by(BOT), "the post job is in flight"
    runner.send_signal(signal.SIGTERM)
    out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 0, out
    assert "SIGTERM: finishing the job in flight" in out and "stopped" in out
    db.open(str(world.parent / "state.db"))
    try:
        (item,) = db.Item.select()
        assert item.state == db.POSTED, "the job in flight finished and recorded its post"
    finally:
        db.close()


def test_overlapping_run_of_the_same_job_exits_0_at_once(sandbox, world):
    with job_lock("post", str(world.parent / "state.db")):
        started = time.monotonic()
        done = run_job("post", world)
    assert done.returncode == 0
    assert "post is already running" in done.stderr
    assert time.monotonic() - started < 30


def test_on_an_empty_disk_run_restores_the_newest_snapshot_from_s3_before_anything_runs(sandbox, tmp_path, s3_server):
    from shared.config import load_config
    from shared.state import replica

    snapshots = {"bucket": s3_server.new_bucket(), "endpoint_url": s3_server.url, "region": "us-east-1"}
    path = write_config(tmp_path, sandbox.url, snapshots=snapshots)
    sandbox.create_account(BOT)
    config = load_config(path)
    post = sandbox.submit("alice", "test", "answered last week", selftext="x")
    db.open(config.db)        # what the machine that died knew: this post was answered
    db.add_item(BOT, post["name"], "listing")[0].move(db.POSTED, result="t1_earlier", reason="answered")
    db.close()
    replica.push(config)
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"state.db{suffix}").unlink(missing_ok=True)

    log = run_once(path)
    assert "restored snapshot 000000000001" in log
    db.open(config.db)
    try:
        (item,) = db.Item.select()
        assert (item.key, item.state, item.result) == (post["name"], db.POSTED, "t1_earlier")
    finally:
        db.close()
