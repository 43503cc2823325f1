"""The README's first command, and the bot end to end with the demo model the pipeline trained."""

import subprocess
import sys

import pytest
import requests

from tests.botworld import BOT, ROOT, write_config
from shared import tagging


def test_the_demo_runs_offline_and_the_bot_talks_and_the_console_shows_it(demo_model_dir):
    demo = subprocess.Popen([sys.executable, "run.py", "--demo", "--cycles", "2"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = demo.stdout.readline()
    assert first.startswith("console: http://127.0.0.1:"), first
    page = requests.get(first.split()[1] + "bots/DemoBot-GPT2", timeout=30)   # while the demo runs
    out, err = demo.communicate(timeout=600)
    assert demo.returncode == 0, out + err
    assert page.status_code == 200 and "Items per state" in page.text
    assert "What u/DemoBot-GPT2 said on r/SubSimDemo in 2 cycles:" in out
    replies = [line for line in out.splitlines() if line.startswith("    u/DemoBot-GPT2: ")]
    assert replies and all("<|" not in line and "|>" not in line for line in replies)
    assert "DemoBot-GPT2: " in out and " posted" in out
    assert "The console stopped with the demo" in out
    assert "Traceback" not in err
    assert "(openvino int8 on cpu" in err   # auto runs OpenVINO where it is installed


def test_the_demo_without_its_console(demo_model_dir):
    done = subprocess.run([sys.executable, "-m", "jobs.demo", "--cycles", "1", "--no-console"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "console" not in done.stdout and "What u/DemoBot-GPT2 said" in done.stdout


@pytest.fixture
def world(sandbox, tmp_path, demo_model_dir):
    # The 2-layer demo model often ends a reply before its first word (it learned that a tag's
    # "|>" is followed by <|endoftext|> at the end of every sample): four candidates a round
    # make three rounds without one real reply rare enough not to matter.
    path = write_config(tmp_path, sandbox.url, model=demo_model_dir,
                        bots=[{"name": BOT, "subreddits": ["test"], "reply": {"base": 1.0},
                               "sampling": {"candidates": 4}}])
    sandbox.create_account(BOT)
    return path


def test_the_demo_model_answers_in_the_right_threads_with_clean_text(sandbox, world):
    post = sandbox.submit("alice", "test", "I finally fixed my bike", selftext="Took three weekends.")
    question = sandbox.comment("bob", post["name"], "How long did that take?")
    thanks = sandbox.comment("carol", post["name"], "Nice work!")
    done = subprocess.run([sys.executable, "run.py", "--config", str(world), "--once"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    mine = sandbox.comments_by(BOT)
    assert sorted(c["parent_id"] for c in mine) == sorted([post["name"], question["name"], thanks["name"]]), done.stderr
    for comment in mine:
        assert comment["body"].strip() and tagging.TAG_OPEN not in comment["body"]
    again = subprocess.run([sys.executable, "run.py", "--config", str(world), "--once"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and len(sandbox.comments_by(BOT)) == 3
