"""Benchmark: import a generated N-line .zst dump and measure peak memory and speed.

    python -m jobs.bench.download [--lines 200000] [--keep DIR]     (or: python -m jobs.bench --only download)

Writes a synthetic but realistic dump (every era's field types mixed: created_utc as int,
string and float; parent_id as fullname, integer and null; retrieved_on / retrieved_utc /
_meta; deleted, removed and a few malformed lines), compressed the way the real dumps are
(one zstd frame, streamed, no content size, a 2 GiB window: zstd --long=31). Then runs
``python -m jobs.download dump FILE`` in a child process and reports its peak RSS (VmHWM
from /proc, read by the child itself at exit), lines per second and the DB size; then
the same for the same lines as plain NDJSON.

``bench_download(lines)`` returns the numbers as a dict (``python -m jobs.bench`` calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zstandard

from shared.records import base36

ROOT = Path(__file__).resolve().parents[2]
SUBREDDITS = ("SubSimGPT2Interactive", "science", "AskReddit", "funny")
WORDS = ("the a of to and in is it you that he was for on are with as I his they be at one have this from "
         "or had by hot word but what some we can out other were all there when up use your how said an "
         "each she which do their time if will way about many then them write would like so these her long "
         "make thing see him two has look more day could go come did number sound no most people my over "
         "know water than call first who may down side been now find science robot reddit model gpt").split()


def _text(rng, mean_words):
    words = max(1, int(rng.lognormvariate(0, 0.9) * mean_words))
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    if rng.random() < 0.2:
        text += "\n\n&gt; " + " ".join(rng.choice(WORDS) for _ in range(8))
    if rng.random() < 0.05:
        text += " \U0001F600 caf\u00e9"
    return text


def _era_line(rng, i, posts):
    """One raw dump object; the era decides the field types, as in the real monthly dumps."""
    era = rng.choice(("2006", "2012", "2016", "2020", "2022api", "2024"))
    base = {"2006": 1136073600, "2012": 1346457600, "2016": 1451606400, "2020": 1606780800,
            "2022api": 1667260800, "2024": 1706745600}[era]
    created = base + i
    sub = rng.choice(SUBREDDITS)
    author = "[deleted]" if rng.random() < 0.05 else f"user_{rng.randrange(5000)}"
    created_value = {"2012": str(created), "2024": float(created)}.get(era, created)
    if rng.random() < 0.15 or not posts:
        post_id = base36(10_000_000 + i)
        posts.append(post_id)
        obj = {"author": author, "created_utc": created_value, "domain": f"self.{sub}", "id": post_id,
               "num_comments": rng.randrange(50), "over_18": rng.random() < 0.03,
               "permalink": f"/r/{sub}/comments/{post_id}/x/", "score": rng.randrange(-5, 5000),
               "selftext": _text(rng, 40) if rng.random() < 0.6 else "", "subreddit": sub,
               "subreddit_id": "t5_2qh1i", "thumbnail": "self", "title": _text(rng, 9),
               "url": f"https://www.reddit.com/r/{sub}/comments/{post_id}/x/"}
        if era != "2006":
            obj["is_self"] = bool(obj["selftext"])
            obj["retrieved_on"] = created + 86400 * 30
        if era in ("2020", "2022api", "2024"):
            obj["removed_by_category"] = rng.choice((None,) * 12 + ("moderator", "deleted", "reddit"))
            obj.update(all_awardings=[], gildings={}, link_flair_richtext=[], media_embed={},
                       secure_media_embed={}, treatment_tags=[], upvote_ratio=0.97, wls=6, pwls=6)
        if era == "2024":
            obj["_meta"] = {"retrieved_2nd_on": created + 129600}
        return obj
    post_id = rng.choice(posts[-200:])
    comment_id = base36(2_000_000_000 + i)
    parent = rng.random()
    obj = {"author": author, "body": "[removed]" if rng.random() < 0.04 else _text(rng, 30),
           "controversiality": 0, "created_utc": created_value, "distinguished": None, "edited": False,
           "gilded": 0, "id": comment_id, "link_id": f"t3_{post_id}", "score": rng.randrange(-10, 900),
           "stickied": False, "subreddit": sub, "subreddit_id": "t5_2qh1i",
           "author_flair_css_class": None, "author_flair_text": None}
    earlier = base36(2_000_000_000 + max(0, i - rng.randrange(1, 50)))
    if era == "2022api":
        obj["parent_id"] = None if parent < 0.4 else int(earlier, 36)
        if obj["parent_id"] is None:
            obj["nest_level"] = 1
        obj.update(retrieved_utc=created + 3600, updated_utc=created + 7200,
                   utc_datetime_str=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created)))
    else:
        obj["parent_id"] = f"t3_{post_id}" if parent < 0.4 else f"t1_{earlier}"
        obj["retrieved_utc" if era == "2020" else "retrieved_on"] = created + 86400
    if era in ("2020", "2022api", "2024"):
        obj.update(all_awardings=[], associated_award=None, author_fullname=f"t2_{rng.randrange(10**6)}",
                   awarders=[], collapsed=False, gildings={}, is_submitter=False, locked=False,
                   no_follow=True, permalink=f"/r/{sub}/comments/{post_id}/x/{comment_id}/",
                   send_replies=True, top_awarded_type=None, total_awards_received=0, treatment_tags=[])
    if era == "2024":
        obj["_meta"] = {"retrieved_2nd_on": created + 129600, "was_deleted_later": rng.random() < 0.05}
    return obj


def write_dump(path, lines, seed=0, malformed_every=997):
    """Write a ``lines``-line synthetic dump to ``path`` (zstd, 2 GiB window); return decompressed bytes."""
    rng = random.Random(seed)
    posts = []
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=31, write_content_size=False)
    compressor = zstandard.ZstdCompressor(compression_params=params)
    written = 0
    with open(path, "wb") as handle, compressor.stream_writer(handle, closefd=False) as out:
        for i in range(1, lines + 1):
            if malformed_every and i % malformed_every == 0:
                text = '{"author": "cut_off", "body": "a line the dump truncated'
            else:
                text = json.dumps(_era_line(rng, i, posts), ensure_ascii=rng.random() < 0.5)
                if rng.random() < 0.01:      # a lone surrogate escape, as some real dump lines have
                    text = text.replace('"body": "', '"body": "\\ud83d ', 1)
            data = (text + "\n").encode("utf-8")
            written += len(data)
            out.write(data)
    return written


# Runs the download job and writes its peak RSS (VmHWM, KiB) to $SSI_BENCH_HWM at exit.
# Read inside the child: the kernel's ru_maxrss of a child also counts the parent's
# memory the child had before exec (fork), which would charge the generator's to it.
_MEASURED_CHILD = """
import atexit, os, runpy

def report():
    with open("/proc/self/status") as status, open(os.environ["SSI_BENCH_HWM"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))

atexit.register(report)
runpy.run_module("jobs.download", run_name="__main__", alter_sys=True)
"""


def _import(work, dump, name):
    """Run the download job on ``dump`` in a child process; (seconds, peak RSS in MB, DB path)."""
    db = work / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    config = work / f"{name}.yaml"
    config.write_text(f"db: {work / 'state.db'}\ntraining:\n  db: {db}\n")
    hwm = work / f"{name}.hwm"
    command = [sys.executable, "-c", _MEASURED_CHILD, "--config", str(config), "dump", str(dump), "--no-progress"]
    env = dict(os.environ, SSI_BENCH_HWM=str(hwm),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"download exited {result.returncode}:\n{result.stderr[-2000:]}")
    return seconds, int(hwm.read_text()) / 1024, db


def bench_download(lines=200_000, keep=None) -> dict:
    """Generate a ``lines``-line .zst dump, import it in a child process, return the measurements.

    The same lines are also imported from plain NDJSON: the difference in peak RSS
    is the zstd decoder's window, which the format needs (up to 2 GiB for dumps
    written with --long=31, as ``zstd -d --long=31`` needs too); the rest is the
    importer's own, flat whatever the file size.
    """
    with tempfile.TemporaryDirectory(prefix="ssi-bench-") as tmp:
        work = Path(keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        dump = work / "RC_bench.zst"
        decompressed = write_dump(dump, lines)
        seconds, peak_rss, db = _import(work, dump, "zst")
        with sqlite3.connect(db) as conn:
            rows = sum(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("submission", "comment"))
            malformed = conn.execute("SELECT SUM(malformed) FROM import_progress").fetchone()[0]
        db_bytes = sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists())
        plain = work / "RC_bench.ndjson"
        with open(dump, "rb") as source, open(plain, "wb") as target:
            zstandard.ZstdDecompressor(max_window_size=2 ** 31).copy_stream(source, target)
        plain_seconds, plain_rss, _db = _import(work, plain, "ndjson")
        if not keep:
            plain.unlink()
        return {
            "lines": lines,
            "rows": rows,
            "malformed": malformed,
            "dump_mb": round(dump.stat().st_size / 1e6, 1),
            "decompressed_mb": round(decompressed / 1e6, 1),
            "seconds": round(seconds, 2),
            "lines_per_s": round(lines / seconds),
            "peak_rss_mb": round(peak_rss, 1),
            "db_mb": round(db_bytes / 1e6, 1),
            "ndjson_seconds": round(plain_seconds, 2),
            "ndjson_lines_per_s": round(lines / plain_seconds),
            "ndjson_peak_rss_mb": round(plain_rss, 1),
        }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m jobs.bench.download", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000, help="dump lines (default: %(default)s)")
    parser.add_argument("--keep", metavar="DIR", help="keep the dump and DB in DIR")
    args = parser.parse_args(argv)
    result = bench_download(args.lines, keep=args.keep)
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
