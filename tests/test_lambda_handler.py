"""jobs/lambda_handler.py: a scheduled invocation end to end against the reddit sandbox and
moto's S3 and Secrets Manager, with the event EventBridge Scheduler delivers for the SAM
template's schedules.

Each "sandbox" below is a work directory standing for one Lambda execution environment
(its /tmp). Processes stand for concurrent invocations: the state DB layer is one global
per process, as it is in Lambda.
"""

import contextlib
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading

import boto3
import pytest
import yaml

from jobs import lambda_handler
from shared.state import replica
from shared.errors import ConfigError, InputError
from shared.state.storage import S3Storage
from tests.botworld import BOT, ROOT
from tests.test_infra import lambda_schedules, load_template, scheduler_input

PREFIX = "shard-a/"


def scheduled_event(schedule="Online", when="2025-06-01T12:00:00Z"):
    """The event a schedule of infra/aws/template.yaml delivers: its Input, with the context
    attributes filled in as EventBridge Scheduler fills them."""
    (input_text,) = [p["Input"] for name, p in lambda_schedules(load_template()) if name.endswith(f".{schedule}")]
    event = scheduler_input(input_text)
    event["scheduled_time"] = when
    return event


@pytest.fixture
def cloud(s3_server, sandbox, rigged_model_dir, tmp_path, monkeypatch):
    """A shard as the template deploys it: ssi-bot.yaml in the bucket, praw.ini in Secrets
    Manager, the function's environment; the bot talks to the sandbox."""
    bucket = s3_server.new_bucket("ssi-lambda")
    s3 = s3_server.client()
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    model = rigged_model_dir(["<|"], strength=2.0)
    config = {"reddit_endpoint": sandbox.url,
              "bots": [{"name": BOT, "model": str(model), "subreddits": ["test"],
                        "reply": {"base": 1.0}, "sampling": {"attempts": 6}}]}
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}ssi-bot.yaml", Body=yaml.safe_dump(config).encode())
    secrets = boto3.session.Session().client("secretsmanager", endpoint_url=s3_server.url, region_name="us-east-1")
    praw_ini = f"[{BOT}]\nclient_id=id-{BOT}\nclient_secret=secret\nusername={BOT}\npassword=pw\n"
    arn = secrets.create_secret(Name=f"ssi-bot/{PREFIX}praw.ini-{bucket}", SecretString=praw_ini)["ARN"]
    for key, value in {"AWS_ENDPOINT_URL": s3_server.url,      # every boto3 client: moto
                       "SSI_BOT_CONFIG_S3": f"s3://{bucket}/{PREFIX}ssi-bot.yaml",
                       "SSI_BOT_S3_BUCKET": bucket, "SSI_BOT_S3_PREFIX": PREFIX,
                       "SSI_BOT_PRAW_SECRET": arn,
                       "SSI_BOT_WORK_DIR": str(tmp_path / "sandbox-1")}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SSI_BOT_PRAW_INI", raising=False)
    monkeypatch.delenv("SSI_BOT_CONFIG", raising=False)
    lambda_handler._secret_cache.clear()
    sandbox.create_account(BOT)
    return {"bucket": bucket, "s3": s3, "tmp": tmp_path, "sandbox": sandbox, "monkeypatch": monkeypatch}


def in_sandbox(cloud, name):
    """Switch to another execution environment (a fresh /tmp)."""
    cloud["monkeypatch"].setenv("SSI_BOT_WORK_DIR", str(cloud["tmp"] / name))


def stored(cloud):
    """[(generation, base)] of the snapshots in the bucket, oldest first."""
    storage = S3Storage(cloud["bucket"], prefix=PREFIX)
    return [(s.generation, int(storage.get(s.key).metadata["base"])) for s in replica.list_snapshots(storage)]


def replies_by_parent(sandbox):
    parents = [c["parent_id"] for c in sandbox.comments_by(BOT)]
    return {p: parents.count(p) for p in parents}


def newest_states(cloud, tmp_path):
    """Item states in the newest stored snapshot."""
    target = tmp_path / "check" / "state.db"
    replica.restore_db(target, S3Storage(cloud["bucket"], prefix=PREFIX))
    with contextlib.closing(sqlite3.connect(target)) as conn:
        return dict(conn.execute("SELECT state, COUNT(*) FROM item GROUP BY state").fetchall())


# --------------------------------------------------------------------------- one invocation

def test_a_scheduled_invocation_restores_the_state_runs_the_jobs_and_pushes_it(cloud, tmp_path):
    sandbox = cloud["sandbox"]
    post = sandbox.submit("alice", "test", "Anyone around?", selftext="just testing")
    sandbox.comment("bob", post["name"], "I am here")

    first = lambda_handler.handler(scheduled_event(), None)          # a new shard: nothing to restore
    assert first["ok"] and first["restored"] is None
    assert [r["job"] for r in first["ran"]] == ["fetch", "decide", "generate", "post"]
    assert first["states"][BOT]["posted"] == 2

    carol = sandbox.comment("carol", post["name"], "hi bot, how are you?")
    in_sandbox(cloud, "sandbox-2")                                   # a cold start elsewhere
    second = lambda_handler.handler(scheduled_event(when="2025-06-01T12:01:00Z"), None)

    assert second["ok"], second
    assert second["restored"] == first["generation"], "the fresh sandbox started from the pushed state"
    assert second["scheduled_time"] == "2025-06-01T12:01:00Z" and second["execution_id"] == "d32c5kddcf5bb8c3"
    assert second["schedule_arn"].startswith("arn:aws:scheduler:") and second["bots"] == [BOT]
    assert all(r["ok"] for r in second["ran"])
    assert second["pushed"] == second["generation"] > second["restored"]
    replies = replies_by_parent(sandbox)
    assert replies[carol["name"]] == 1 and set(replies.values()) == {1}, "nothing answered twice"
    assert len(replies) == 3
    assert json.loads(json.dumps(second)) == second, "the summary is plain JSON"

    history = stored(cloud)
    assert [g for g, _ in history] == list(range(1, second["generation"] + 1))
    assert all(base == generation - 1 for generation, base in history), "one line of history"
    assert newest_states(cloud, tmp_path)["posted"] == 3


def test_a_warm_sandbox_keeps_its_current_copy_and_takes_a_newer_one(cloud):
    sandbox = cloud["sandbox"]
    post = sandbox.submit("alice", "test", "hello", selftext="x")
    first = lambda_handler.handler({"jobs": ["fetch", "decide"]}, None)
    top = first["generation"]
    assert first["pushed"] == top == len(stored(cloud))

    again = lambda_handler.handler({"job": "decide"}, None)          # same sandbox, nothing to decide
    assert again["ok"] and again["restored"] is None, "a current warm copy is kept, not downloaded"
    assert again["base"] == top and again["pushed"] is None, "an unchanged DB stores nothing"
    assert len(stored(cloud)) == top

    sandbox.comment("bob", post["name"], "new here")
    in_sandbox(cloud, "sandbox-2")
    elsewhere = lambda_handler.handler({"job": "fetch"}, None)
    assert elsewhere["restored"] == top and elsewhere["pushed"] == top + 1

    in_sandbox(cloud, "sandbox-1")                                   # the first one, warm but stale
    back = lambda_handler.handler({"jobs": ["decide"]}, None)
    assert back["restored"] == top + 1, "a stale warm copy is replaced, not pushed over"
    assert back["ok"] and back["pushed"] == top + 2


def test_a_failing_job_makes_the_invocation_fail_but_keeps_what_the_others_did(cloud, tmp_path):
    sandbox = cloud["sandbox"]
    sandbox.submit("alice", "test", "hello?", selftext="x")
    data = yaml.safe_load(cloud["s3"].get_object(Bucket=cloud["bucket"], Key=f"{PREFIX}ssi-bot.yaml")["Body"].read())
    data["bots"][0]["model"] = str(tmp_path / "missing-model")
    cloud["s3"].put_object(Bucket=cloud["bucket"], Key=f"{PREFIX}ssi-bot.yaml", Body=yaml.safe_dump(data).encode())

    with pytest.raises(lambda_handler.RunFailed) as failed:
        lambda_handler.handler(scheduled_event(), None)
    summary = failed.value.summary
    assert json.loads(str(failed.value)) == json.loads(json.dumps(summary, default=str))
    outcome = {r["job"]: r for r in summary["ran"]}
    assert outcome["fetch"]["ok"] and outcome["decide"]["ok"] and not outcome["generate"]["ok"]
    assert any("missing-model" in line for line in outcome["generate"]["errors"])
    assert outcome["post"]["ok"], "one failed job does not stop the others (as in run.py)"
    assert newest_states(cloud, tmp_path) == {"queued": 1}, "fetch and decide were pushed"


def test_no_job_starts_without_time_to_finish_it(cloud):
    cloud["sandbox"].submit("alice", "test", "hello?", selftext="x")
    left = iter([300.0, 250.0, 60.0])          # seconds left: at the start, before fetch, before decide

    class Context:
        def get_remaining_time_in_millis(self):
            return next(left) * 1000

    summary = lambda_handler.handler({"jobs": ["fetch", "decide"]}, Context())
    assert [r["job"] for r in summary["ran"]] == ["fetch"] and summary["skipped"] == ["decide"]
    assert "not starting decide" in summary["stopped"] and summary["pushed"] == 1


def test_bad_events_and_missing_state_storage_are_one_clear_error(cloud, monkeypatch):
    with pytest.raises(InputError, match="unknown job 'finetune'"):
        lambda_handler.handler({"jobs": ["fetch", "finetune"]}, None)
    with pytest.raises(InputError, match='"jobs"'):
        lambda_handler.handler({}, None)
    with pytest.raises(ConfigError, match="no such bot"):
        lambda_handler.handler({"job": "fetch", "bots": ["Nobody"]}, None)
    monkeypatch.delenv("SSI_BOT_S3_BUCKET")
    with pytest.raises(ConfigError, match="s3.bucket is empty"):
        lambda_handler.handler({"job": "fetch"}, None)
    monkeypatch.setenv("SSI_BOT_PRAW_SECRET", "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf")
    monkeypatch.setenv("SSI_BOT_S3_BUCKET", cloud["bucket"])
    with pytest.raises(ConfigError, match="cannot read it"):
        lambda_handler.handler({"job": "fetch"}, None)


def test_cycle_means_every_online_job_in_the_order_the_data_flows():
    from jobs import JOBS
    assert lambda_handler.event_jobs({"job": "cycle"}) == [j for j in JOBS if j != "sync"]
    with pytest.raises(InputError, match="pushes the state after each job"):
        lambda_handler.event_jobs({"job": "sync"})
    assert lambda_handler.event_jobs({"jobs": ["post"]}) == ["post"]


def test_praw_ini_from_json_sections_has_one_section_per_bot():
    text = lambda_handler.as_praw_ini(json.dumps({"BotA": {"client_id": "a", "password": "p%w"},
                                                  "BotB": {"client_id": "b"}}), "test")
    assert "[BotA]" in text and "[BotB]" in text and "password = p%w" in text
    single = lambda_handler.as_praw_ini('{"client_id": "c", "username": "BotC"}', "test")
    assert single.startswith("[BotC]")
    assert lambda_handler.as_praw_ini("[BotD]\nclient_id=d\n", "test") == "[BotD]\nclient_id=d\n"


def test_the_command_line_runs_the_same_path_with_a_mounted_config_and_praw_ini(cloud, tmp_path):
    """Kubernetes and ECS: ssi-bot.yaml and praw.ini side by side in a read-only folder."""
    cloud["sandbox"].submit("alice", "test", "hello?", selftext="x")
    folder = tmp_path / "etc"
    folder.mkdir()
    data = yaml.safe_load(cloud["s3"].get_object(Bucket=cloud["bucket"], Key=f"{PREFIX}ssi-bot.yaml")["Body"].read())
    data["snapshots"] = {"bucket": cloud["bucket"], "prefix": PREFIX}
    (folder / "ssi-bot.yaml").write_text(yaml.safe_dump(data))
    (folder / "praw.ini").write_text(f"[{BOT}]\nclient_id=id\nclient_secret=s\nusername={BOT}\npassword=pw\n")
    folder.chmod(0o555)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SSI_BOT_") or k in ("SSI_BOT_WORK_DIR",)}
    env.update(SSI_BOT_CONFIG=str(folder / "ssi-bot.yaml"), SSI_BOT_WORK_DIR=str(tmp_path / "pod-tmp"))
    try:
        done = subprocess.run([sys.executable, "-m", "jobs.lambda_handler", "fetch", "decide"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=180)
    finally:
        folder.chmod(0o755)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] and summary["states"][BOT]["queued"] == 1
    assert [r["pushed"] for r in summary["ran"]] == [1, 2], "a snapshot after each job that changed the DB"
    assert (tmp_path / "pod-tmp" / "praw.ini").stat().st_mode & 0o077 == 0, "credentials readable by the user only"


# --------------------------------------------------------------------------- two at once

def _invoke_in_its_own_sandbox(work_dir, event, barrier, results):
    """A second execution environment: its own /tmp, the same bucket. Both reach their first
    push only when both have restored and run their first job."""
    os.environ["SSI_BOT_WORK_DIR"] = work_dir
    real_push = replica.push
    waited = []

    def push_together(config, **options):
        if not waited:
            waited.append(True)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=240)
        return real_push(config, **options)

    replica.push = push_together
    try:
        results.put(("returned", lambda_handler.handler(event, None)))
    except lambda_handler.RunFailed as exc:
        results.put(("raised", exc.summary))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(("error", repr(exc)))


def test_a_second_concurrent_invocation_does_not_clobber_the_first(cloud, tmp_path):
    sandbox = cloud["sandbox"]
    post = sandbox.submit("alice", "test", "Anyone around?", selftext="just testing")
    seeded = lambda_handler.handler({"job": "fetch"}, None)                  # generation 1 in the bucket
    assert seeded["pushed"] == 1
    sandbox.comment("bob", post["name"], "I am here")
    sandbox.comment("carol", post["name"], "me too")

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    event = scheduled_event()
    workers = [context.Process(target=_invoke_in_its_own_sandbox,
                               args=(str(tmp_path / f"concurrent-{i}"), event, barrier, results))
               for i in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=400) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)

    assert sorted(kind for kind, _ in outcomes) == ["raised", "returned"], outcomes
    (won,) = [summary for kind, summary in outcomes if kind == "returned"]
    (lost,) = [summary for kind, summary in outcomes if kind == "raised"]
    assert won["restored"] == lost["restored"] == 1, "both started from the same generation"
    assert won["ok"] and [r["job"] for r in won["ran"]] == ["fetch", "decide", "generate", "post"]
    assert not lost["ok"] and lost["stale"] and "stale" in lost["error"]
    assert [r["job"] for r in lost["ran"]] == ["fetch"], "the loser stops at its first refused push"
    assert lost["skipped"] == ["decide", "generate", "post"] and lost["pushed"] is None

    assert set(replies_by_parent(sandbox).values()) == {1}, "nothing was answered twice"
    history = stored(cloud)
    assert history[-1][0] == won["generation"]
    assert [g for g, _ in history] == list(range(1, won["generation"] + 1))
    assert all(base == generation - 1 for generation, base in history), "the history stayed one line"
