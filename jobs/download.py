"""Collect a subreddit's history into the training DB: dump files, Arctic Shift, or a Pushshift-compatible API.

    python -m jobs.download dump FILE... [--subreddit S ...] [--since DATE] [--until DATE]
    python -m jobs.download arctic-shift --subreddit S ... [--kind posts|comments|both] [--since DATE]
                                         [--until DATE] [--url BASE]
    python -m jobs.download arctic-shift --thread POST_ID ... [--url BASE]
    python -m jobs.download pushshift --subreddit S ... [--kind ...] [--since DATE] [--until DATE] [--url BASE]

Sources:
  dump          per-subreddit dumps (science_submissions.zst, science_comments.zst) or monthly
                ones (RS_2023-01.zst, RC_2023-01.zst), zstd with a long window, streamed line
                by line; plain .ndjson / .json too; a directory means the dumps inside it.
                Every era (2005-2025) imports; a malformed line is counted, logged with its
                line number, and skipped.
  arctic-shift  the Arctic Shift API (training.arctic_shift_url): /api/posts/search and
                /api/comments/search paged by created_utc; --thread fetches whole threads
                through /api/comments/tree.
  pushshift     a Pushshift-compatible API such as PullPush (training.pushshift_url).

Filters at ingest: --subreddit (repeat; any case; required for the APIs, and for monthly dumps
unless you want everything), --since (inclusive) and --until (exclusive), each a date
(2021-01-31), a UTC time (2021-01-31T12:00) or epoch seconds. Rows land in training.db
(the config's training.db), upserted by reddit id.

Idempotent and resumable: rows are upserted by id and each import's position (a dump's byte
offset and line number, an API query's last created_utc) is committed in the same
transaction as its rows, so a run killed at any moment resumes where it stopped, and
finishing equals one uninterrupted run. A finished dump is not read again (--restart
reads it from the start); an API query without --until continues from its last item on the
next run, fetching only what is new.

Exit codes: 0 done; 2 bad input (a missing or non-zstd file, an HTML answer, a subreddit with
no rows), one line naming the problem; 1 an archive that kept failing through every retry.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from shared import cli
from shared.training import corpus
from shared.training.archive_api import ArcticShift, PushshiftCompatible, pages
from shared.training.dumps import DUMP_SUFFIXES, DumpLine, DumpReader, check_dump, kind_hint
from shared.errors import InputError
from shared.records import RecordError, flatten_tree, normalise

log = logging.getLogger("download")

BATCH_LINES = 5000            # dump lines per transaction
SHOWN_MALFORMED = 10          # malformed lines logged one by one, per file; the rest are counted


# --- what to keep -----------------------------------------------------------------------------

def parse_date(text: str) -> float:
    """Epoch seconds from ``2021-01-31``, ``2021-01-31T12:00[:00]`` (UTC unless it names a zone) or epoch seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a date like 2021-01-31, a UTC time like "
                                         "2021-01-31T12:00, or epoch seconds") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def subreddit_name(text: str) -> str:
    name = text.strip().removeprefix("/").removeprefix("r/")
    if not name or "/" in name or " " in name or "+" in name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one subreddit name, like science")
    return name


def _day(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M") if seconds else "-"


@dataclass(frozen=True)
class Scope:
    """The ingest filter: subreddits (lower case; empty = all) and [since, until)."""

    subreddits: tuple = ()
    since: float | None = None
    until: float | None = None

    def key(self) -> str:
        subs = ",".join(sorted(self.subreddits)) or "*"
        return f"r={subs};since={self.since or '-'};until={self.until or '-'}"

    def accepts(self, row) -> bool:
        if self.subreddits and row["subreddit"] not in self.subreddits:
            return False
        if self.since is not None and row["created_utc"] < self.since:
            return False
        return self.until is None or row["created_utc"] < self.until


# --- the job ----------------------------------------------------------------------------------

def run(config, bots, command=None, files=(), subreddit=(), since=None, until=None, kind="both",
        url=None, thread=(), restart=False, batch_lines=BATCH_LINES, progress_bars=True, **_options):
    if since is not None and until is not None and since >= until:
        raise InputError(f"--since {_day(since)} is not before --until {_day(until)}")
    names = list(dict.fromkeys(subreddit))
    scope = Scope(tuple(sorted({n.lower() for n in names})), since, until)
    training = config.training
    if command == "dump":
        paths = dump_paths(files)          # every file checked before anything is written
        with training_db_open(training.db):
            seen = Counter()
            done = [import_dump(path, scope, restart=restart, batch_lines=batch_lines, seen=seen,
                                progress_bars=progress_bars) for path in paths]
            others = f" (they hold {_top(seen)})" if seen else ""
            require_rows(names, f"the dump files{others}", done)
        return
    if command == "arctic-shift":
        client, source = ArcticShift(url or training.arctic_shift_url), "arctic-shift"
    else:
        client, source = PushshiftCompatible(url or training.pushshift_url), "pushshift"
    if not names and not thread:
        raise InputError(f"{command}: pass --subreddit NAME (or --thread POST_ID): an API is queried per subreddit")
    if thread and command != "arctic-shift":
        raise InputError("--thread works with arctic-shift only (it uses /api/comments/tree)")
    with training_db_open(training.db):
        for post_id in thread:
            download_thread(client, post_id, restart=restart)
        kinds = ("posts", "comments") if kind == "both" else (kind,)
        for name in names:
            done = [download_query(client, source, name, what, scope, restart=restart,
                                   progress_bars=progress_bars) for what in kinds]
            require_rows([name], f"{client.name} at {client.base_url}", done)


@contextlib.contextmanager
def training_db_open(path):
    """The training DB, open; a DB this run created and left empty (bad input) is removed again."""
    created = str(path) != ":memory:" and not Path(path).exists()
    corpus.open(path)
    try:
        yield
    except InputError:
        empty = not (corpus.CorpusPost.select().exists() or corpus.CorpusComment.select().exists()
                     or corpus.ImportProgress.select().exists())
        corpus.close()
        if created and empty:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        raise
    finally:
        corpus.close()


def require_rows(names, where, imports=()):
    """InputError for the first subreddit of ``names`` that has no rows in the DB at all.

    The progress of ``imports`` that stored nothing is forgotten first, so the DB
    is left as it was before the run.
    """
    for name in names:
        if not corpus.has_rows(name):
            for progress in imports:
                if progress.imported == 0:
                    corpus.ImportProgress.delete().where((corpus.ImportProgress.source == progress.source)
                                                      & (corpus.ImportProgress.key == progress.key)).execute()
            raise InputError(f"r/{name}: no posts or comments found in {where}; check the spelling "
                             "and the dates, or pass the right dump file")


def _top(counter, n=5):
    shown = ", ".join(f"r/{name} ({count})" for name, count in counter.most_common(n))
    return shown + (f" and {len(counter) - n} more subreddits" if len(counter) > n else "")


# --- dumps --------------------------------------------------------------------------------------

def dump_paths(files):
    """The dump files named (directories expanded), each checked readable; InputError otherwise."""
    if not files:
        raise InputError("dump: name at least one dump file (e.g. science_comments.zst)")
    paths = []
    for name in files:
        path = Path(name)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DUMP_SUFFIXES)
            if not inside:
                raise InputError(f"{path}: a directory without dump files ({', '.join(DUMP_SUFFIXES)})")
            paths += inside
        else:
            paths.append(path)
    for path in paths:
        check_dump(path)
    return list(dict.fromkeys(paths))


def import_dump(path, scope, restart=False, batch_lines=BATCH_LINES, seen=None, progress_bars=True):
    """Import one dump file into the open training DB; return its ImportProgress.

    Every ``batch_lines`` lines, the rows and the position after the last line
    are committed together; a kill loses at most the lines since, and the next
    run reads them again.
    """
    stat = path.stat()
    key = f"{path.resolve()}|{scope.key()}"
    fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}"
    progress = corpus.progress_for("dump", key, fingerprint)
    if restart:
        progress = corpus.ImportProgress(source="dump", key=key, fingerprint=fingerprint)
    if progress.done:
        log.info("%s: already imported (%d lines, %d rows); --restart imports it again",
                 path.name, progress.line, progress.imported)
        return progress
    if progress.line:
        log.info("%s: resuming after line %d", path.name, progress.line)
    reader = DumpReader(path, start=int(progress.position), start_line=progress.line)
    tally = _Tally(path.name, kind_hint(path), scope, Counter() if seen is None else seen, progress)
    started, first_line = time.monotonic(), progress.line
    bar = tqdm(total=stat.st_size, unit="B", unit_scale=True, unit_divisor=1024, desc=path.name,
               mininterval=0.5, disable=not progress_bars, file=sys.stderr)
    rows, line = [], None
    try:
        for line in reader:
            tally.add(line, rows)
            if line.number - progress.line >= batch_lines:
                tally.commit(line, rows)
                rows = []
                bar.update(reader.compressed_position() - bar.n)
                bar.set_postfix(lines=f"{line.number:,}", kept=f"{tally.imported:,}", bad=tally.malformed,
                                refresh=False)
    except InputError:
        if line is not None:      # keep every whole line read before the damage
            tally.commit(line, rows)
        raise
    finally:
        bar.close()
    # ``line`` is None when a resumed run finds nothing left to read.
    tally.commit(line or DumpLine(progress.line, int(progress.position)), rows, done=True)
    elapsed = max(time.monotonic() - started, 1e-6)
    read = progress.line - first_line
    log.info("%s: %d lines read in %.1fs (%.0f lines/s): %d rows stored, %d skipped "
             "(other subreddits or dates), %d malformed", path.name, read, elapsed, read / elapsed,
             progress.imported, progress.skipped, progress.malformed)
    return progress


class _Tally:
    """One dump import's counts, kept in plain attributes (model attributes are slow per line)."""

    def __init__(self, name, hint, scope, seen, progress):
        self.name, self.hint, self.scope, self.seen, self.progress = name, hint, scope, seen, progress
        self.imported, self.skipped, self.malformed = progress.imported, progress.skipped, progress.malformed
        self.shown = 0

    def add(self, line, rows):
        """Append the rows of ``line`` that the scope keeps to ``rows``; count the rest."""
        problems = [line.error] if line.error else []
        for obj in line.objects:
            try:
                row = normalise(obj, self.hint)
            except RecordError as exc:
                problems.append(str(exc))
                continue
            if row is None:
                continue
            if self.scope.accepts(row):
                rows.append(row)
                self.imported += 1
            else:
                self.skipped += 1
                if len(self.seen) < 10_000 or row["subreddit_name"] in self.seen:
                    self.seen[row["subreddit_name"]] += 1
        if problems:
            self.malformed += len(problems)
            if self.shown < SHOWN_MALFORMED:
                log.warning("%s line %d: %s (skipped)", self.name, line.number, "; ".join(problems))
                self.shown += 1
                if self.shown == SHOWN_MALFORMED:
                    log.warning("%s: further malformed lines are counted, not shown", self.name)

    def commit(self, line, rows, done=False):
        """Store ``rows`` and the position after ``line``, in one transaction."""
        progress = self.progress
        progress.position, progress.line, progress.done = line.end, line.number, done
        progress.imported, progress.skipped, progress.malformed = self.imported, self.skipped, self.malformed
        corpus.store(rows, progress)


# --- APIs --------------------------------------------------------------------------------------

def download_query(client, source, name, what, scope, restart=False, progress_bars=True):
    """Page one subreddit's posts or comments from an API into the open DB; resumable."""
    sub = name.lower()
    key = f"{what}:{sub}:since={scope.since or '-'}:until={scope.until or '-'}"
    progress = corpus.progress_for(source, key)
    if restart:
        progress = corpus.ImportProgress(source=source, key=key)
    if progress.done:
        log.info("r/%s %s: already downloaded up to %s; --restart fetches it again",
                 name, what, _day(scope.until))
        return progress
    fresh = corpus.ImportProgress.get_or_none(source=source, key=key) is None or restart
    after = (scope.since - 1 if scope.since is not None else None) if fresh else progress.position
    if not fresh:
        log.info("r/%s %s: resuming after %s", name, what, _day(after))
    hint = client.kinds[what]
    only_sub = Scope((sub,), scope.since, scope.until)
    bar = tqdm(unit=" items", desc=f"r/{name} {what}", mininterval=0.5, disable=not progress_bars,
               file=sys.stderr)

    def search(after, before):
        return client.search(what, name, after=after, before=before)

    for items, cursor in pages(search, after=after, before=scope.until, name=f"{client.name} at {client.base_url}"):
        rows = []
        for item in items:
            try:
                row = normalise(item, hint)
            except RecordError as exc:
                progress.malformed += 1
                log.warning("r/%s %s: item %s skipped: %s", name, what, item.get("id"), exc)
                continue
            if row is None:
                continue
            if only_sub.accepts(row):
                rows.append(row)
                progress.imported += 1
            else:
                progress.skipped += 1
        progress.position, progress.line = cursor, progress.line + len(items)
        corpus.store(rows, progress)
        bar.update(len(items))
        bar.set_postfix(stored=f"{progress.imported:,}", newest=_day(cursor), refresh=False)
    bar.close()
    if scope.until is not None:
        progress.done = True
        if progress.line:
            corpus.store([], progress)
    log.info("r/%s %s from %s: %d items read, %d rows stored, %d skipped, %d malformed (%d requests)",
             name, what, client.name, progress.line, progress.imported, progress.skipped,
             progress.malformed, client.requests)
    return progress


def download_thread(client, post_id, restart=False):
    """One whole thread (the post and its comment tree) from Arctic Shift into the open DB."""
    post_id = post_id.strip().lower().removeprefix("t3_")
    key = f"thread:{post_id}"
    progress = corpus.progress_for("arctic-shift", key)
    if progress.done and not restart:
        log.info("thread %s: already downloaded (%d rows)", post_id, progress.imported)
        return progress
    posts = client.by_ids("posts", [post_id])
    if not posts:
        raise InputError(f"thread {post_id}: {client.name} has no post with that id")
    comments, more = flatten_tree(client.tree(post_id))
    known = set()
    while more:
        # "more" placeholders list comments the tree left out; fetch them by id.
        batch = [m for m in dict.fromkeys(more) if m not in known]
        known.update(batch)
        fetched, more = flatten_tree(client.by_ids("comments", batch)) if batch else ([], [])
        comments += fetched
    rows, malformed = [], 0
    for raw, hint in itertools.chain(((p, "submission") for p in posts), ((c, "comment") for c in comments)):
        try:
            row = normalise(raw, hint)
        except RecordError as exc:
            malformed += 1
            log.warning("thread %s: item %s skipped: %s", post_id, raw.get("id"), exc)
            continue
        if row is not None:
            rows.append(row)
    progress = corpus.ImportProgress(source="arctic-shift", key=key, line=len(posts) + len(comments),
                                  imported=len(rows), malformed=malformed, done=True)
    corpus.store(rows, progress)
    log.info("thread %s: post and %d comments stored", post_id, len(rows) - 1)
    return progress


# --- command line --------------------------------------------------------------------------------

def add_arguments(parser):
    commands = parser.add_subparsers(dest="command", metavar="SOURCE", required=True)

    def common(sub):
        # Repeated here so they work after the source too; SUPPRESS keeps the top-level value.
        sub.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH", help="ssi-bot.yaml to use")
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
        sub.add_argument("--since", type=parse_date, metavar="DATE",
                         help="only items created at or after DATE (2021-01-31, 2021-01-31T12:00 UTC, epoch)")
        sub.add_argument("--until", type=parse_date, metavar="DATE", help="only items created before DATE")
        sub.add_argument("--restart", action="store_true",
                         help="ignore saved progress and read from the start (rows are upserted, never duplicated)")
        sub.add_argument("--no-progress", dest="progress_bars", action="store_false",
                         help="no progress bars (log lines only)")

    dump = commands.add_parser("dump", help="import .zst / .ndjson / .json dump files",
                               description="Import dump files (zstd long window, NDJSON, JSON).")
    dump.add_argument("files", nargs="+", metavar="FILE", help="dump files or directories of them")
    dump.add_argument("--subreddit", action="append", type=subreddit_name, default=[], metavar="S",
                      help="keep only this subreddit (repeat; default: everything in the files)")
    dump.add_argument("--batch-lines", type=int, default=BATCH_LINES, metavar="N",
                      help="lines per transaction (default: %(default)s)")
    common(dump)
    for name, helptext in (("arctic-shift", "the Arctic Shift API (training.arctic_shift_url)"),
                           ("pushshift", "a Pushshift-compatible API such as PullPush (training.pushshift_url)")):
        api = commands.add_parser(name, help=helptext, description=f"Download from {helptext}.")
        api.add_argument("--subreddit", action="append", type=subreddit_name, default=[], metavar="S",
                         help="the subreddit to download (repeat for several)")
        api.add_argument("--kind", choices=("posts", "comments", "both"), default="both",
                         help="what to download (default: %(default)s)")
        api.add_argument("--url", metavar="BASE", help="the API's base URL (default: from the config)")
        if name == "arctic-shift":
            api.add_argument("--thread", action="append", default=[], metavar="POST_ID",
                             help="download this post's whole thread (repeat for several)")
        common(api)


def main(argv=None):
    return cli.main("download", __doc__, run, add_arguments, argv=argv, use_db=False, config_optional=True)


if __name__ == "__main__":
    sys.exit(main())
