"""python -m jobs.console through HTTP: every page on a DB the real jobs made, escaping, secrets,
bad input, the token and the Host check, and the read-only guarantee while jobs write."""

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from html import unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
import yaml

from jobs import JOBS
from shared.console import charts, shape
from shared.state import db, replica
from shared.state.lock import job_lock
from shared.bot.decide import Situation, reply_probability
from shared.config import parse_config
from tests import console_world
from tests.botworld import ROOT, assert_one_clear_error
from tests.console_world import BOT, EVIL, QUIET_BOT, REJECTED, SECRETS, serve

TAGS = re.compile(r"<[^>]+>")


@pytest.fixture(scope="module")
def world(tmp_path_factory, demo_model_dir):
    from shared.sandbox import Sandbox

    with Sandbox() as sandbox:
        yield console_world.build(tmp_path_factory.mktemp("console"), sandbox, demo_model_dir)


@pytest.fixture(scope="module")
def console(world):
    with serve(world.config_path) as url:
        yield url


def get(url, path="", status=200, **kwargs):
    answer = requests.get(urljoin(url, path), timeout=30, allow_redirects=False, **kwargs)
    assert answer.status_code == status, f"{path}: {answer.status_code}\n{answer.text[-2000:]}"
    assert "Traceback" not in answer.text
    return answer


def text_of(answer):
    """The page's words as a reader sees them (tags dropped, entities decoded)."""
    return " ".join(unescape(TAGS.sub(" ", answer.text)).split())


def query(world, sql, *args):
    con = sqlite3.connect(f"file:{world.db_path}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def items(world):
    return {key: (ident, state) for ident, key, state in query(world, "SELECT id, key, state FROM item")}


# --------------------------------------------------------------------------- every page

def test_the_bots_page_lists_every_bot_with_items_per_state(console, world):
    page = text_of(get(console, "/"))
    assert BOT in page and QUIET_BOT in page
    posted = sum(1 for _, state in items(world).values() if state == "posted")
    assert f"{posted} posted" in page, page


def test_a_bots_page_shows_states_caps_schedule_job_runs_and_failures(console, world):
    page = text_of(get(console, f"/bots/{BOT}"))
    assert "per user 1 1" in page, "mallory used the per-user cap: 1 of 1"
    assert "per hour" in page and "per day" in page and "per user" in page
    assert "r/test" in page and "next slot opens" in page
    for job in ("fetch", "decide", "submit", "generate", "post"):
        assert re.search(rf"\b{job} ok\b", page), f"{job} has no recorded run: {page}"
    assert "no acceptable text after 3 rounds" in page, "the latest failure and its reason"
    assert "transient reddit answered 503" in page, "the post attempt that did not post"
    assert "I finally fixed my bike" in page, "a recent conversation"


def test_the_conversation_is_the_thread_with_every_decision_rule_by_rule(console, world):
    answer = get(console, f"/bots/{BOT}/conversations/{world.post['name']}")
    page = text_of(answer)
    assert "I finally fixed my bike" in page and "How long did that take?" in page
    assert "u/alice" in page and "u/bob" in page and "the bot" in page
    assert page.count("queued") >= 2 and "skipped: cap" in page
    assert "cap per_user reached (1/1)" in page, "a capped comment says which cap"
    assert "human author +0.30" in page
    assert re.search(r"p 1\.00 · draw 0\.\d\d → queued", page)
    # the bot's replies are highlighted, each under what it answered
    mine = re.findall(r'<div class="self mine">', answer.text)
    (replies,) = query(world, "SELECT COUNT(*) FROM item WHERE thread = ? AND state = 'posted'", world.post["name"])
    assert len(mine) == replies[0], "each reply the bot posted in the thread, highlighted"
    # candidates are one click away
    question_item = items(world)[world.question["name"]][0]
    assert f'href="/bots/{BOT}/items/{question_item}"' in answer.text


def test_an_items_page_lists_every_candidate_with_its_verdict(console, world):
    page = text_of(get(console, f"/bots/{BOT}/items/{world.failed_item}"))
    assert "Candidates (3)" in page
    for reason in REJECTED:
        assert f"rejected: {reason}" in page
    assert "base +0.30" in page and "depth 1 -0.05" in page and "draw 0.12 < p 0.55: queued" in page
    assert "sum, capped to 0–1, times the age factor +0.55 → 0.55" in page
    answered = items(world)[world.question["name"]][0]
    page = text_of(get(console, f"/bots/{BOT}/items/{answered}"))
    found = console_world.verdicts(world, world.question["name"])
    assert found and f"Candidates ({len(found)})" in page and "Post attempts" in page
    for n, said in enumerate(found, start=1):
        assert f"#{n} {said}" in page


def test_the_conversations_list_and_the_dm(console, world):
    page = get(console, f"/bots/{BOT}/conversations")
    dm = re.search(rf'href="/bots/{BOT}/conversations/(t4_\w+)"', page.text)
    assert dm and world.post["name"] in page.text
    (own,) = query(world, "SELECT state, result FROM item WHERE key LIKE 'submit:%'")
    if own[0] == "posted":       # the model wrote an acceptable title in its three rounds
        assert f"{own[1]} · the bot's own post" in text_of(page)
    else:
        assert own[0] == "failed" and "no acceptable text" in text_of(get(console, f"/bots/{BOT}"))
    messages = text_of(get(console, f"/bots/{BOT}/conversations/{dm.group(1)}"))
    assert "Do you like bikes?" in messages and "private message" in messages


def test_the_quiet_bot_has_empty_pages_not_errors(console):
    assert "No conversations yet" in text_of(get(console, f"/bots/{QUIET_BOT}"))
    assert "No conversations yet" in text_of(get(console, f"/bots/{QUIET_BOT}/conversations"))
    activity = get(console, f"/bots/{QUIET_BOT}/activity")
    assert activity.text.count("<svg") == 2 and "replies 0 posts 0 queued 0" in text_of(activity)
    assert re.findall(r'text-anchor="end">([^<]+)</text>', activity.text)[:2] == ["0", "1"], "whole counts"


def test_activity_plots_have_numbers_on_both_axes(console, world):
    answer = get(console, f"/bots/{BOT}/activity?days=2")
    assert answer.text.count("<svg") == 2
    labels = re.findall(r'text-anchor="(?:end|middle)">([^<]+)</text>', answer.text)
    assert {"0", "1"} <= set(labels), "y axis numbers"
    assert any(re.fullmatch(r"\d\d-\d\d|\d\d:00", label) for label in labels), "x axis times"
    page = text_of(answer)
    replies = sum(1 for key, (_, s) in items(world).items() if s == "posted" and not key.startswith("submit:"))
    assert f"replies {replies}" in page
    assert "skipped: cap 2" in page, "two of mallory's three items"
    for days in ("0", "999", "x"):
        get(console, f"/bots/{BOT}/activity?days={days}")       # clamped or the default, never an error


def test_the_models_page_draws_each_runs_eval_loss(console, world, demo_model_dir):
    broken = world.config_path.parent / "models" / "broken-run"     # under finetune.output_dir
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "training_progress_scores.csv").write_bytes(b"global_step,eval_loss\n\x00\xff,\"unclosed\n")
    answer = get(console, "/models")
    assert "broken-run" in answer.text
    page = text_of(answer)
    run = Path(demo_model_dir).parent
    rows = (run / "training_progress_scores.csv").read_text().splitlines()[1:]
    best = min(float(row.split(",")[2]) for row in rows)
    assert run.name in page and f"{best:.4f}" in page and BOT in page
    assert "eval loss" in answer.text and "global step" in answer.text and "<polyline" in answer.text


def test_the_sync_page_lists_snapshots_newest_first(world, tmp_path):
    copy = tmp_path / "state.db"
    shutil.copy(world.db_path, copy)
    config = yaml.safe_load(world.config_path.read_text())
    config.update(db=str(copy), snapshots={"directory": str(tmp_path / "snapshots")})
    path = tmp_path / "ssi-bot.yaml"
    path.write_text(yaml.safe_dump(config))
    loaded = parse_config(config, base_dir=tmp_path)
    replica.push(loaded)
    db.open(copy)
    db.add_item(BOT, "t3_new", "listing")
    db.close()
    replica.push(loaded)
    with serve(path) as url:
        page = text_of(get(url, "/sync"))
    assert page.index("000000000002") < page.index("000000000001")
    assert "000000000002 local DB" in page and "keeps the newest 48" in page


def test_sync_off_says_how_to_turn_it_on(console):
    assert "Sync is off" in text_of(get(console, "/sync"))


# --------------------------------------------------------------------------- safety

def test_user_text_is_escaped_and_no_script_may_run(console, world):
    for path in (f"/bots/{BOT}/conversations/{world.post['name']}", f"/bots/{BOT}/conversations",
                 f"/bots/{BOT}/conversations/{world.evil_post['name']}", f"/bots/{BOT}/items/{world.failed_item}"):
        answer = get(console, path)
        assert "<script" not in answer.text.lower() and "<b>not bold</b>" not in answer.text, path
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; &amp; &lt;b&gt;not bold&lt;/b&gt;" in answer.text, path
        assert "script-src" not in answer.headers["content-security-policy"]
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_no_page_shows_a_praw_ini_secret(console, world):
    """Every page reachable from the front page, followed link by link."""
    seen, queue = set(), ["/"]
    while queue and len(seen) < 200:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        answer = get(console, path)
        for secret in SECRETS:
            assert secret not in answer.text, path
        for link in re.findall(r'href="(/[^"#]*)"', answer.text):
            if urlsplit(link).path not in seen:
                queue.append(unescape(link))
    assert len(seen) > 10 and f"/bots/{BOT}/items/{world.failed_item}" in seen


def test_unknown_bot_thread_or_item_is_a_page_that_says_so(console):
    for path, words in [("/bots/NoSuchBot", "no such bot in"),
                        (f"/bots/{BOT}/conversations/t3_nothere", "no conversation t3_nothere"),
                        (f"/bots/{BOT}/items/987654", "no item 987654"),
                        (f"/bots/{BOT}/items/abc", "item ids are numbers"),
                        ("/no/such/page", "no page at /no/such/page")]:
        page = text_of(get(console, path, status=404))
        assert words in page, page


@pytest.mark.parametrize("content, words", [
    (None, "no state DB there yet"),
    (b"\x00garbage that is not sqlite" * 50, "cannot read it as a state DB"),
])
def test_a_missing_or_corrupt_db_is_a_page_that_says_so(world, tmp_path, content, words):
    config = yaml.safe_load(world.config_path.read_text())
    config["db"] = "state.db"
    path = tmp_path / "ssi-bot.yaml"
    path.write_text(yaml.safe_dump(config))
    if content is not None:
        (tmp_path / "state.db").write_bytes(content)
    with serve(path) as url:
        for page in ("/", f"/bots/{BOT}", f"/bots/{BOT}/conversations", f"/bots/{BOT}/activity"):
            assert words in text_of(get(url, page, status=503)), page
        get(url, "/models")
        get(url, "/sync")
    assert not (tmp_path / "state.db").exists() or (tmp_path / "state.db").read_bytes() == content


def test_requests_must_be_addressed_to_this_machine(console):
    refused = get(console, "/", status=400, headers={"Host": "attacker.example"})
    assert "only requests addressed to this machine" in refused.text
    get(console, "/", headers={"Host": "localhost:8080"})


def test_the_page_views_leave_the_db_untouched_while_a_job_writes(tmp_path):
    """A writer commits into the WAL, never checkpointing, while every page is viewed: the pages
    see its rows, and the DB file's bytes are those from before, so the console wrote nothing.
    Then the writer is gone with its commits still in the WAL, and the console is the only
    reader: a connection that could write would checkpoint them into the file when it closes."""
    config = console_world.write_config(tmp_path, "http://127.0.0.1:9", "models/none")
    path = tmp_path / "state.db"
    db.open(path)
    db.add_item(BOT, "t3_first", "listing", thread="t3_first")
    db.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    files = sorted(p.name for p in tmp_path.iterdir())
    pages = ("/", f"/bots/{BOT}", f"/bots/{BOT}/conversations", f"/bots/{BOT}/activity",
             f"/bots/{BOT}/conversations/t3_first", f"/bots/{BOT}/items/1", "/sync", "/models")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), BOT], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == "writing"
        seen = []
        with serve(config) as url:
            deadline = time.time() + 60
            while len(set(seen)) < 3 and time.time() < deadline:
                for page in pages:
                    get(url, page)
                seen.append(int(re.search(r"(\d+) items seen", text_of(get(url, "/"))).group(1)))
            assert len(set(seen)) >= 3 and seen == sorted(seen), f"the pages follow the writer: {seen}"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == before
            writer.stdin.close()
            assert writer.wait(timeout=30) == 0
            wal = (tmp_path / "state.db-wal").stat().st_size
            assert wal > 0, "the writer's commits are still in the WAL"
            for page in pages:
                get(url, page)
            assert int(re.search(r"(\d+) items seen", text_of(get(url, "/"))).group(1)) >= seen[-1]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "the console wrote to the DB file"
        assert (tmp_path / "state.db-wal").stat().st_size == wal
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files + ["state.db-wal", "state.db-shm"]), \
            "no job lock, journal or other file made"
    finally:
        if writer.poll() is None:
            writer.kill()


WRITER = """
import sys, time
from shared.state import db
db.open(sys.argv[1])
db.database.execute_sql("PRAGMA wal_autocheckpoint = 0")   # keep every commit in the WAL
print("writing", flush=True)
n = 0
import select
while not select.select([sys.stdin], [], [], 0.05)[0]:
    n += 1
    item, _ = db.add_item(sys.argv[2], f"t3_w{n}", "listing", thread=f"t3_w{n}")
    db.record_decision(item, 0.3, 0.9, ["base +0.30"], queue=False, reason="draw 0.90 >= p 0.30")
# exit without closing: a clean close would checkpoint the WAL into the file
import os
os._exit(0)
"""


def test_the_console_never_blocks_a_job_or_holds_its_lock(console, world):
    get(console, f"/bots/{BOT}")
    for name in JOBS:
        with job_lock(name, str(world.db_path)):        # raises AlreadyRunning if anyone held it
            get(console, f"/bots/{BOT}")


# --------------------------------------------------------------------------- the command line

def test_another_host_needs_allow_remote(world):
    done = subprocess.run(console_world.console_command(world.config_path, "--host", "0.0.0.0"), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert_one_clear_error(done, "--host 0.0.0.0", "--allow-remote")


def test_a_port_in_use_is_one_clear_line(world):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "jobs.console", "--config", str(world.config_path),
                               "--port", str(port)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert_one_clear_error(done, f"--port {port}", "cannot listen there")


def test_with_allow_remote_every_request_carries_the_token(world):
    token = "a-long-enough-token-for-the-test-1234"
    process = subprocess.Popen(console_world.console_command(world.config_path, "--allow-remote"), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "SSI_BOT_CONSOLE_TOKEN": token})
    try:
        address = process.stdout.readline().split()[1]
        assert address.endswith(f"/?token={token}")
        base = address.split("?")[0]
        assert "needs its token" in get(base, "/", status=401).text
        get(base, f"/bots/{BOT}", status=401, headers={"Authorization": "Bearer wrong-token-wrong-token"})
        get(base, f"/bots/{BOT}", status=401, cookies={"ssi_console_token": "wrong"})
        assert BOT in get(base, f"/bots/{BOT}", headers={"Authorization": f"Bearer {token}"}).text
        first = get(base, f"/bots/{BOT}?token={token}&days=2", status=303)
        assert first.headers["location"] == f"/bots/{BOT}?days=2", "the token leaves the address bar"
        assert "HttpOnly" in first.headers["set-cookie"] and "SameSite=strict" in first.headers["set-cookie"]
        session = requests.Session()
        assert BOT in session.get(address, timeout=30).text, "the cookie carries it from then on"
        assert session.get(urljoin(base, "/models"), timeout=30).status_code == 200
        get(base, "/", headers={"Host": "elsewhere.example", "Authorization": f"Bearer {token}"})
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_a_short_token_is_refused(world):
    done = subprocess.run(console_world.console_command(world.config_path, "--allow-remote"), cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SSI_BOT_CONSOLE_TOKEN": "short"})
    assert_one_clear_error(done, "SSI_BOT_CONSOLE_TOKEN", "at least 16")


def test_a_bad_config_is_one_clear_line(tmp_path):
    (tmp_path / "ssi-bot.yaml").write_text("bots: [{name: x, model: m, reply: {bsae: 1}}]\n")
    done = subprocess.run([sys.executable, "-m", "jobs.console", "--config", str(tmp_path / "ssi-bot.yaml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert_one_clear_error(done, "bots[0].reply.bsae")


# --------------------------------------------------------------------------- the pure parts

def test_the_breakdown_adds_up_to_the_probability_decide_computed():
    bot = parse_config({"bots": [{"name": "b", "model": "m"}]}).bots[0]
    situation = Situation(bot="b", kind="submission", source="listing", author="alice",
                          text="What do you think?", post_age_hours=6.0)
    p, reasons = reply_probability(situation, bot)
    explained = shape.breakdown(p, 0.5, reasons, "skipped")
    assert explained.rows[0] == ("base", "-0.10") and explained.rows[-1] == ("age 6.0h", "× 0.75")
    assert explained.total == pytest.approx(0.7)
    assert explained.total * 0.75 == pytest.approx(p)
    assert explained.verdict == f"draw 0.50 ≥ p {p:.2f}: skipped"
    assert shape.breakdown(0.0, 0.3, ["negative keyword: war"], "skipped").verdict == \
        "skipped: p = 0 (negative keyword: war)"
    capped = shape.breakdown(0.4, 0.1, ["base +0.40", "cap per_hour reached (10/10)"], "skipped")
    assert capped.verdict == "skipped: cap per_hour reached (10/10)" and capped.rows[-1][1] == "blocks"


def test_the_thread_tree_nests_replies_and_keeps_orphans():
    things = [{"fullname": "t3_p", "parent": None, "created_utc": 1},
              {"fullname": "t1_b", "parent": "t1_a", "created_utc": 3},
              {"fullname": "t1_a", "parent": "t3_p", "created_utc": 2},
              {"fullname": "t1_c", "parent": "t1_gone", "created_utc": 4}]
    root, top = shape.tree(things, "t3_p")
    assert root.thing["fullname"] == "t3_p"
    assert [n.thing["fullname"] for n in top] == ["t1_a", "t1_c"]
    assert [n.thing["fullname"] for n in top[0].children] == ["t1_b"]


def test_charts_have_round_ticks_and_escape_their_text():
    assert charts.nice_ticks(0, 7) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(0, 1, whole=True) == [0, 1] and charts.nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1]
    assert charts.nice_ticks(0.72, 2.2) == [0.5, 1.0, 1.5, 2.0, 2.5]
    svg = charts.bars(["a", "b"], [(EVIL, [1, 2])], title=EVIL)
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert ">2</text>" in svg
    assert shape.hour_ticks(0, 48)[:3] == [(0, "01-01"), (6, "06:00"), (12, "12:00")]


# --------------------------------------------------------------------------- rehearse

def test_the_rehearse_page_runs_jobs_rehearse_on_a_new_post_and_escapes_it(console, world):
    before = query(world, "SELECT COUNT(*) FROM item")
    page = get(console, f"/bots/{BOT}/rehearse", params={"text": f"A title {EVIL}\nthe body", "n": "3"})
    words = text_of(page)
    assert "Decision:" in words and "base +1.00" in words and "Candidates (3)" in words
    assert len(re.findall(r'class="card candidate"', page.text)) == 3
    assert "<script" not in page.text.lower() and "&lt;script&gt;" in page.text
    assert query(world, "SELECT COUNT(*) FROM item") == before, "a rehearsal stores nothing"


def test_the_rehearse_page_reads_a_thread_from_reddit(console, world):
    page = get(console, f"/bots/{BOT}/rehearse", params={"thread": world.question["name"], "n": "1"})
    words = text_of(page)
    assert "Candidates (1)" in words and "Prompt" in words
    assert world.question["body"] in unescape(page.text)


@pytest.mark.parametrize("params, words", [
    ({"text": "hi", "n": "lots"}, "expected a whole number"),
    ({"text": "hi", "n": "99"}, "rehearse 1 to 16 candidates"),
    ({"thread": "https://example.org/not/reddit"}, "not a reddit post"),
])
def test_bad_rehearse_input_is_said_on_the_page(console, params, words):
    page = get(console, f"/bots/{BOT}/rehearse", params=params)
    assert words in text_of(page) and "Candidates" not in text_of(page)


def test_the_rehearse_form_is_linked_from_every_bot(console):
    assert f'href="/bots/{BOT}/rehearse"' in get(console, f"/bots/{BOT}").text
    assert "Rehearse" in text_of(get(console, f"/bots/{BOT}/rehearse"))
