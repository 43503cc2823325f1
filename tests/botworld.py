"""Build a bot's world for job tests: ssi-bot.yaml and praw.ini pointing at a sandbox.

    path = write_config(tmp_path, sandbox.url, bots=[{"name": "TestBot-GPT2", "subreddits": ["test"]}])
    config = load(path)        # validated Config with the state DB opened

Bots log in to the sandbox with password "pw" (the sandbox creates the account
on first login). Jobs are run through their public entry points: ``run`` for
in-process tests, ``python -m jobs.NAME`` for subprocess ones.
"""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from shared.state import db
from shared.config import load_config

ROOT = Path(__file__).resolve().parents[1]
BOT = "TestBot-GPT2"


def write_config(directory, sandbox_url, bots=None, model="models/none", **top):
    directory = Path(directory)
    bots = bots or [{"name": BOT, "subreddits": ["test"]}]
    bots = [{"model": str(model), **bot} for bot in bots]
    data = {"db": "state.db", "reddit_endpoint": sandbox_url, "bots": bots, **top}
    path = directory / "ssi-bot.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    sections = [f"[{b['name']}]\nclient_id=id-{b['name']}\nclient_secret=secret\n"
                f"username={b['name']}\npassword=pw\n" for b in bots]
    (directory / "praw.ini").write_text("\n".join(sections))
    return path


def load(path):
    config = load_config(path)
    db.open(config.db)
    return config


def run_job(name, config_path, *args, timeout=120, **popen):
    """``python -m jobs.NAME --config PATH ARGS`` from the repo root; CompletedProcess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **popen.pop("env", {})}
    return subprocess.run([sys.executable, "-m", f"jobs.{name}", "--config", str(config_path), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env, **popen)


def assert_one_clear_error(done, *words):
    """A CLI refused bad input the product's way: exit 2, one ERROR line naming ``words``, no traceback."""
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in errors[0], errors[0]
