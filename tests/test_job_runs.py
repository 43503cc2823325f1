"""Job runs recorded beside the DB (shared/state/runs.py): by the Runner and by every job's command line."""

import signal
import subprocess
import sys
import time

import pytest
import yaml

from jobs import Runner
from shared.state import db, runs
from tests.botworld import BOT, ROOT, load, run_job, write_config


@pytest.fixture
def world(sandbox, tmp_path):
    path = write_config(tmp_path, sandbox.url, bots=[{"name": BOT, "subreddits": ["test"], "reply": {"base": 1.0}},
                                                     {"name": "OtherBot-GPT2", "subreddits": ["other"]}])
    sandbox.create_account(BOT)
    yield path
    db.close()


def test_the_runner_records_each_run_and_keeps_the_last_success(sandbox, world, tmp_path):
    config = load(world)
    runner = Runner(config)
    runner.run_job("generate")                                # nothing queued: ok
    first = runs.last_runs(config.db)["generate"]
    assert set(first) == {BOT, "OtherBot-GPT2"}
    assert first[BOT]["outcome"] == runs.OK and first[BOT]["last_ok_at"] == first[BOT]["finished_at"]

    sandbox.submit("alice", "test", "hello?", selftext="x")
    runner.run_job("fetch")
    runner.run_job("decide")
    runner.run_job("generate")                                # the model "models/none" does not exist
    record = runs.last_runs(config.db)["generate"][BOT]
    assert record["outcome"] == runs.FAILED and "models/none" in record["error"]
    assert "\n" not in record["error"] and record["finished_at"] >= record["started_at"] > first[BOT]["started_at"]
    assert record["last_ok_at"] == first[BOT]["last_ok_at"], "a failing job still says when it last worked"
    assert {job for job in runs.last_runs(config.db)} == {"fetch", "decide", "generate"}
    assert runs.run_path("generate", config.db).name == "state.db.generate.run.json"


def test_each_command_records_its_run_for_the_bots_it_ran_and_sync_list_records_nothing(sandbox, world):
    done = run_job("decide", world, "--bot", BOT)
    assert done.returncode == 0, done.stderr
    assert set(runs.last_runs(world.parent / "state.db")["decide"]) == {BOT}
    data = yaml.safe_load(world.read_text())
    data["snapshots"] = {"directory": "snapshots"}
    world.write_text(yaml.safe_dump(data))
    assert run_job("sync", world, "list").returncode == 0
    assert "sync" not in runs.last_runs(world.parent / "state.db")
    assert run_job("sync", world, "push").returncode == 0
    assert runs.last_runs(world.parent / "state.db")["sync"][BOT]["outcome"] == runs.OK


def test_a_killed_job_is_left_running_with_no_end(sandbox, world):
    sandbox.faults.add("accept_then_hang", path="/r/test/new", delay=60)
    job = subprocess.Popen([sys.executable, "-m", "jobs.fetch", "--config", str(world)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while "fetch" not in runs.last_runs(world.parent / "state.db") and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
    record = runs.last_runs(world.parent / "state.db")["fetch"][BOT]
    assert record["outcome"] == runs.RUNNING and record["finished_at"] is None and record["last_ok_at"] is None


def test_an_unreadable_record_is_reported_not_raised(tmp_path):
    db_path = tmp_path / "state.db"
    runs.run_path("post", db_path).write_text("{not json")
    (bad,) = runs.last_runs(db_path)["post"].values()
    assert bad["outcome"] == "unreadable" and "state.db.post.run.json" in bad["error"]
    with runs.recorded("post", db_path, ["b"]):               # a broken record is replaced, not fatal
        pass
    assert runs.last_runs(db_path)["post"]["b"]["outcome"] == runs.OK
