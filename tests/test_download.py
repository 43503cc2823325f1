"""jobs.download: real dump lines (the .zst included) and local stand-ins for the archive APIs."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zstandard

from jobs import download
from jobs.bench.download import write_dump
from shared.training import archive_api
from shared.training.dumps import DumpReader
from shared.records import normalise
from tests.botworld import assert_one_clear_error, run_job
from tests.archive_servers import (
    REALDATA, ArcticShiftServer, Fault, PushshiftServer, read_ndjson, real_comments, real_posts,
)

ROOT = Path(__file__).resolve().parent.parent
SCIENCE_ZST = REALDATA / "science_comments.zst"
SCIENCE_NDJSON = REALDATA / "pushshift_api_science_comments.ndjson"
REAL_NDJSON = sorted(REALDATA.glob("*.ndjson"))


def write_config(tmp_path, **training):
    tmp_path.mkdir(parents=True, exist_ok=True)
    training.setdefault("db", str(tmp_path / "training.db"))
    lines = [f"db: {tmp_path / 'state.db'}", "training:"] + [f"  {k}: {json.dumps(v)}" for k, v in training.items()]
    path = tmp_path / "ssi-bot.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_download(config, *args):
    return download.main(["--config", str(config), *args, "--no-progress"])


def snapshot(db_path):
    """Everything the training DB holds, in a comparable form."""
    with sqlite3.connect(db_path) as conn:
        return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall())
                for table in ("submission", "comment", "import_progress")}


def rows(db_path, table):
    with sqlite3.connect(db_path) as conn:
        conn.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in conn.execute(f"SELECT * FROM {table}")}


@pytest.fixture
def no_waiting(monkeypatch):
    """Record the archive client's pauses instead of sleeping through them."""
    waits = []
    monkeypatch.setattr(archive_api, "pause", waits.append)
    return waits


# --- dumps ---------------------------------------------------------------------------------------

def test_every_real_file_imports_and_the_zst_equals_its_ndjson(tmp_path):
    config = write_config(tmp_path)
    assert run_download(config, "dump", *map(str, REAL_NDJSON)) == 0
    db = tmp_path / "training.db"
    comments, posts = rows(db, "comment"), rows(db, "submission")
    assert len(comments) == 1569 + 10 + 536
    assert len(posts) == 113 + 50 + 1
    progress = snapshot(db)["import_progress"]
    assert [p[6] for p in progress] == [0] * len(REAL_NDJSON)          # no malformed line anywhere

    other = write_config(tmp_path / "zst")
    assert run_download(other, "dump", str(SCIENCE_ZST)) == 0
    from_zst = rows(tmp_path / "zst" / "training.db", "comment")
    assert from_zst == {k: v for k, v in comments.items() if k in from_zst}
    assert len(from_zst) == 1569


def test_the_real_zst_needs_the_long_window_and_streams(tmp_path):
    with pytest.raises(zstandard.ZstdError):
        zstandard.ZstdDecompressor().stream_reader(SCIENCE_ZST.open("rb")).read(100)
    lines = list(DumpReader(SCIENCE_ZST))
    assert len(lines) == 1569 and lines[-1].end == SCIENCE_NDJSON.stat().st_size


def test_malformed_lines_are_counted_and_skipped_with_their_line_numbers(tmp_path, capsys):
    good = SCIENCE_NDJSON.read_bytes().splitlines()[:5]
    path = tmp_path / "mixed_comments.ndjson"
    path.write_bytes(b"\n".join([good[0], b'{"id": "cut", "body": "trunc', good[1], b"42", b"",
                                  good[2], b'{"body": "no id", "created_utc": 1}', good[3],
                                  b'{"body": "\xff\xfe not utf-8"}', good[4]]) + b"\n")
    config = write_config(tmp_path)
    assert run_download(config, "dump", str(path)) == 0
    assert len(rows(tmp_path / "training.db", "comment")) == 5
    (progress,) = snapshot(tmp_path / "training.db")["import_progress"]
    assert progress[3:7] == (10, 5, 0, 4)     # lines, imported, skipped, malformed
    warned = capsys.readouterr().err
    for number in (2, 4, 7, 9):
        assert f"mixed_comments.ndjson line {number}:" in warned


def test_filters_at_ingest_keep_subreddit_and_date_range(tmp_path):
    config = write_config(tmp_path)
    args = ["dump", str(SCIENCE_NDJSON), str(REALDATA / "thread_3hahrw_reddit_api.ndjson"),
            "--subreddit", "r/SCIENCE", "--since", "2021-01-01", "--until", "2021-06-01T00:00"]
    assert run_download(config, *args) == 0
    kept = rows(tmp_path / "training.db", "comment")
    expected = [normalise(raw) for raw in read_ndjson(SCIENCE_NDJSON.name)]
    expected = {r["id"] for r in expected
                if r["subreddit"] == "science" and 1609459200 <= r["created_utc"] < 1622505600}
    assert set(kept) == expected and expected
    assert not rows(tmp_path / "training.db", "submission")


def test_importing_twice_leaves_the_db_identical(tmp_path, capsys):
    config = write_config(tmp_path)
    assert run_download(config, "dump", str(SCIENCE_ZST), *map(str, REAL_NDJSON)) == 0
    first = snapshot(tmp_path / "training.db")
    assert run_download(config, "dump", str(SCIENCE_ZST), *map(str, REAL_NDJSON)) == 0
    assert snapshot(tmp_path / "training.db") == first
    assert "already imported" in capsys.readouterr().err
    assert run_download(config, "dump", str(SCIENCE_ZST), "--restart") == 0
    assert snapshot(tmp_path / "training.db") == first


def test_killed_midway_and_rerun_equals_one_uninterrupted_run(tmp_path):
    dump = tmp_path / "RC_2099-01.zst"
    write_dump(dump, 50_000, seed=7)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    command = [sys.executable, "-m", "jobs.download", "--config", str(write_config(killed)), "dump", str(dump),
               "--batch-lines", "1000", "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines_at_kill = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and child.poll() is None:
            row = None
            if (killed / "training.db").exists():      # connecting first would create it
                try:
                    with sqlite3.connect(killed / "training.db", timeout=1) as conn:
                        row = conn.execute("SELECT line, done FROM import_progress").fetchone()
                except sqlite3.Error:                  # not created yet
                    pass
            if row and row[0] >= 3000:
                child.send_signal(signal.SIGKILL)
                lines_at_kill = row[0]
                break
            time.sleep(0.005)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    with sqlite3.connect(killed / "training.db") as conn:
        line, done = conn.execute("SELECT line, done FROM import_progress").fetchone()
    assert 3000 <= lines_at_kill <= line < 50_000 and not done

    rerun = subprocess.run(command[:-1] + ["--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming after line {line}" in rerun.stderr
    uninterrupted = subprocess.run(command[:4] + [str(write_config(whole))] + command[5:], cwd=ROOT, env=env,
                                   capture_output=True, text=True)
    assert uninterrupted.returncode == 0, uninterrupted.stderr

    got, want = snapshot(killed / "training.db"), snapshot(whole / "training.db")
    assert got["submission"] == want["submission"] and got["comment"] == want["comment"]
    assert [p[2:] for p in got["import_progress"]] == [p[2:] for p in want["import_progress"]]
    assert len(want["comment"]) + len(want["submission"]) > 45_000


def test_resuming_a_plain_file_seeks_to_the_saved_offset(tmp_path):
    lines = list(DumpReader(SCIENCE_NDJSON))
    rest = list(DumpReader(SCIENCE_NDJSON, start=lines[99].end, start_line=100))
    assert [line.number for line in rest[:2]] == [101, 102]
    assert [line.objects for line in rest] == [line.objects for line in lines[100:]]


def test_a_monthly_dump_without_a_subreddit_filter_keeps_everything(tmp_path):
    monthly = tmp_path / "RC_2021-01.ndjson"
    monthly.write_text("".join(json.dumps(raw) + "\n" for raw in read_ndjson("pushshift_api_2021_comments_by_ids.ndjson")))
    assert run_download(write_config(tmp_path), "dump", str(tmp_path)) == 0     # a directory: the dumps in it
    assert {r["subreddit"] for r in rows(tmp_path / "training.db", "comment").values()} == {"anime"}


def test_a_saved_api_answer_and_a_json_array_import_too(tmp_path):
    answer = {"data": read_ndjson("pushshift_api_2021_comments_by_ids.ndjson")[:4], "error": None}
    (tmp_path / "answer.json").write_text(json.dumps(answer) + "\n")
    (tmp_path / "array.json").write_text(json.dumps(read_ndjson("pushshift_api_2021_comments_by_ids.ndjson")[4:],
                                                    indent=2))
    assert run_download(write_config(tmp_path), "dump", str(tmp_path / "answer.json"), str(tmp_path / "array.json")) == 0
    assert len(rows(tmp_path / "training.db", "comment")) == 10


# --- bad input: one line, exit 2, nothing written ---------------------------------------------

def test_a_missing_file_is_one_line_exit_2_and_no_db(tmp_path):
    result = run_job("download", write_config(tmp_path), "dump", str(SCIENCE_ZST), str(tmp_path / "RC_2099-13.zst"))
    assert_one_clear_error(result, "RC_2099-13.zst", "no such file")
    assert not (tmp_path / "training.db").exists()


def test_a_file_that_is_not_zstd_is_refused_before_anything_is_written(tmp_path):
    fake = tmp_path / "science_comments.zst"
    fake.write_bytes(SCIENCE_NDJSON.read_bytes()[:5000])
    result = run_job("download", write_config(tmp_path), "dump", str(SCIENCE_NDJSON), str(fake))
    assert_one_clear_error(result, "not a zstandard file", "rename it to .ndjson")
    assert not (tmp_path / "training.db").exists()


def test_a_truncated_zst_names_the_line_and_keeps_what_came_before(tmp_path):
    cut = tmp_path / "science_comments.zst"
    cut.write_bytes(SCIENCE_ZST.read_bytes()[:150_000])
    result = run_job("download", write_config(tmp_path), "dump", str(cut), "--batch-lines", "100")
    assert_one_clear_error(result, "truncated", "after line")
    assert 0 < len(rows(tmp_path / "training.db", "comment")) < 1569


def test_an_unknown_subreddit_is_one_line_exit_2_and_leaves_no_rows(tmp_path):
    result = run_job("download", write_config(tmp_path), "dump", str(SCIENCE_ZST), "--subreddit", "sciense")
    assert_one_clear_error(result, "r/sciense", "r/science (1568)")
    assert not (tmp_path / "training.db").exists()


def test_an_unknown_subreddit_on_an_existing_db_changes_nothing(tmp_path):
    config = write_config(tmp_path)
    assert run_download(config, "dump", str(REALDATA / "pushshift_api_2021_comments_by_ids.ndjson")) == 0
    before = snapshot(tmp_path / "training.db")
    assert run_download(config, "dump", str(SCIENCE_ZST), "--subreddit", "sciense") == 2
    assert snapshot(tmp_path / "training.db") == before


def test_bad_dates_are_refused_by_the_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_download(write_config(tmp_path), "dump", str(SCIENCE_ZST), "--since", "last tuesday")
    assert exit_.value.code == 2 and "2021-01-31" in capsys.readouterr().err


# --- Arctic Shift --------------------------------------------------------------------------------

def expected_rows(raws, subreddit):
    out = {}
    for raw in raws:
        row = normalise(raw)
        if row["subreddit"] == subreddit:
            out[row["id"]] = row
    return out


def test_arctic_shift_pages_a_subreddit_into_the_db(tmp_path, no_waiting):
    with ArcticShiftServer(real_posts(), real_comments()) as server:
        config = write_config(tmp_path, arctic_shift_url=server.url)
        assert run_download(config, "arctic-shift", "--subreddit", "science") == 0
        searches = [r for r in server.requests if r[0].endswith("/search")]
    db = tmp_path / "training.db"
    assert set(rows(db, "comment")) == set(expected_rows(real_comments(), "science"))
    assert set(rows(db, "submission")) == set(expected_rows(real_posts(), "science"))
    assert len(searches) >= 1569 // 100 + 2
    assert all(params["sort"] == "asc" and params["subreddit"] == "science" for _p, params in searches)
    assert no_waiting == []


def test_api_rows_equal_dump_rows_of_the_same_objects(tmp_path, no_waiting):
    with PushshiftServer(real_posts(), real_comments()) as server:
        config = write_config(tmp_path / "api", pushshift_url=server.url)
        assert run_download(config, "pushshift", "--subreddit", "science", "--kind", "comments") == 0
    dump_config = write_config(tmp_path)
    assert run_download(dump_config, "dump", str(SCIENCE_ZST), "--subreddit", "science") == 0
    assert rows(tmp_path / "api" / "training.db", "comment") == rows(tmp_path / "training.db", "comment")


def test_pages_overlap_so_items_sharing_a_second_at_a_page_edge_are_kept(tmp_path, no_waiting):
    base = read_ndjson("pushshift_api_2021_comments_by_ids.ndjson")[0]
    items = [dict(base, id=f"z{i:03d}", created_utc=1_600_000_000 + i // 3) for i in range(250)]
    with ArcticShiftServer(comments=items) as server:
        config = write_config(tmp_path, arctic_shift_url=server.url)
        assert run_download(config, "arctic-shift", "--subreddit", "anime", "--kind", "comments") == 0
    assert len(rows(tmp_path / "training.db", "comment")) == 250


def test_429_and_5xx_are_retried_honouring_retry_after(tmp_path, no_waiting):
    with ArcticShiftServer(real_posts(), real_comments()) as server:
        server.fail(Fault(429, retry_after="7"), Fault(503), Fault(502))
        config = write_config(tmp_path, arctic_shift_url=server.url)
        assert run_download(config, "arctic-shift", "--subreddit", "science", "--kind", "posts") == 0
    assert no_waiting == [7.0, 4.0, 8.0]       # Retry-After, then backoff 2 * 2**attempt
    assert len(rows(tmp_path / "training.db", "submission")) == 163


def test_a_spent_rate_limit_waits_for_the_reset(tmp_path, no_waiting):
    with ArcticShiftServer(real_posts(), [], rate_limit=(5, 0, 5), reset=42) as server:
        config = write_config(tmp_path, arctic_shift_url=server.url)
        assert run_download(config, "arctic-shift", "--subreddit", "science", "--kind", "posts") == 0
    assert no_waiting == [42.0]


def test_an_archive_that_keeps_failing_gives_up_with_one_line(tmp_path, no_waiting, capsys):
    with ArcticShiftServer(real_posts(), []) as server:
        server.fail(*[Fault(500)] * 6)
        config = write_config(tmp_path, arctic_shift_url=server.url)
        assert run_download(config, "arctic-shift", "--subreddit", "science") == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "kept failing" in errors[0] and "Traceback" not in err
    assert len(no_waiting) == 5


def test_a_server_that_answers_html_is_one_line_exit_2_and_no_db(tmp_path):
    with ArcticShiftServer(real_posts(), real_comments()) as server:
        server.html_always = True
        result = run_job("download", write_config(tmp_path, arctic_shift_url=server.url), "arctic-shift", "--subreddit", "science")
    assert_one_clear_error(result, "HTML page", server.url)
    assert not (tmp_path / "training.db").exists()


def test_an_unknown_subreddit_on_an_api_is_one_line_exit_2(tmp_path, no_waiting):
    with PushshiftServer(real_posts(), real_comments()) as server:
        config = write_config(tmp_path, pushshift_url=server.url)
        assert run_download(config, "pushshift", "--subreddit", "sciense") == 2
    assert not (tmp_path / "training.db").exists()


def test_an_interrupted_api_download_resumes_without_refetching(tmp_path, no_waiting):
    args = ["arctic-shift", "--subreddit", "science", "--kind", "comments", "--until", "2021-09-01"]
    with ArcticShiftServer(real_posts(), real_comments()) as server:
        config = write_config(tmp_path, arctic_shift_url=server.url)
        server.fault_on[7] = Fault(200, html=True)         # six pages stored, then the run stops
        assert run_download(config, *args) == 2
        partial = rows(tmp_path / "training.db", "comment")
        assert 500 < len(partial) <= 600         # pages overlap by a second: a few items come twice
        server.requests.clear()
        server.fault_on.clear()
        assert run_download(config, *args) == 0
        first_after = float(server.requests[0][1]["after"])
    assert first_after == max(r["created_utc"] for r in partial.values()) - 1
    resumed = snapshot(tmp_path / "training.db")
    with ArcticShiftServer(real_posts(), real_comments()) as server:
        assert run_download(write_config(tmp_path / "whole", arctic_shift_url=server.url), *args) == 0
    whole = snapshot(tmp_path / "whole" / "training.db")
    assert resumed["comment"] == whole["comment"]
    assert [p[2:] for p in resumed["import_progress"]] == [p[2:] for p in whole["import_progress"]]


def test_an_open_ended_query_fetches_only_what_is_new_next_time(tmp_path, no_waiting):
    comments = real_comments()
    with ArcticShiftServer(real_posts(), comments[:1000]) as server:
        config = write_config(tmp_path, arctic_shift_url=server.url)
        assert run_download(config, "arctic-shift", "--subreddit", "science", "--kind", "comments") == 0
    with ArcticShiftServer(real_posts(), comments) as server:
        config = write_config(tmp_path, arctic_shift_url=server.url)
        assert run_download(config, "arctic-shift", "--subreddit", "science", "--kind", "comments") == 0
        first_after = float(server.requests[0][1]["after"])
    assert first_after == max(c["created_utc"] for c in comments[:1000])
    assert set(rows(tmp_path / "training.db", "comment")) == set(expected_rows(comments, "science"))


def test_a_whole_thread_through_the_comment_tree(tmp_path, no_waiting):
    thread = read_ndjson("thread_3hahrw_reddit_api.ndjson")
    with ArcticShiftServer(thread[:1], thread[1:]) as server:
        config = write_config(tmp_path, arctic_shift_url=server.url)
        assert run_download(config, "arctic-shift", "--thread", "3hahrw") == 0
        paths = [p for p, _ in server.requests]
    assert paths.count("/api/comments/tree") == 1 and "/api/comments/ids" in paths   # depth 9 > 4: "more"
    assert len(rows(tmp_path / "training.db", "comment")) == 536
    assert set(rows(tmp_path / "training.db", "submission")) == {"3hahrw"}
