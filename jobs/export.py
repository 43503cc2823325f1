"""Write tagged training text from the training DB: train.txt and eval.txt.

    python -m jobs.export --subreddit S [--subreddit S2 ...] [--out DIR] [--dialect reply_sense|legacy]
                          [--all-chains] [--max-comments N] [--seed N]

For each post of the subreddits (oldest first), one sample: the post, its best-scored
acceptable top-level comment, that comment's best-scored acceptable reply, and so on, up
to training.max_comments (10) comments. A post without acceptable comments still gives a
post-only sample (it teaches new posts). With --all-chains (or training.all_chains), one
sample per root-to-leaf chain instead, best chains first, at most 50 per post.

Left out, with a count per reason in the summary: posts and comments by bot accounts
(shared/known_bots.txt plus training.bot_authors, any case), deleted or removed ones
(also those whose author is [deleted]), comments that are only a link, text matching a
negative keyword (the built-in list plus training.negative_keywords), NSFW posts unless
training.include_nsfw, items scored under training.min_score, posts whose title has fewer
than training.min_title_words words. A left-out comment takes its replies with it: a
chain never skips a level.

Samples are written by shared/tagging.py's training_sample, the code that also writes
the bot's prompts, one sample per line. eval.txt gets min(10 %, 3000) of them (at least
one when there are two or more), picked at random with --seed (default 0), a whole post's
samples on the same side. The summary gives samples, MB and counts filtered by reason,
and warns under the 6 MB that GPT-2 124M wants (6-10 MB).

Idempotent: a pure function of the DB, the config and --seed; the files are written to
temporary names and renamed into place at the end, so a failed run leaves the previous
train.txt and eval.txt as they were and no half-written file.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from shared import cli
from shared import training_db as tdb
from shared.errors import InputError
from shared.filters import DEFAULT_NEGATIVE_KEYWORDS, KeywordMatcher
from shared.tagging import DIALECTS, REPLY_SENSE, Comment, Post, Thread, training_sample

log = logging.getLogger("export")

BOTS_FILE = Path(__file__).resolve().parent.parent / "shared" / "known_bots.txt"
EVAL_SHARE = 0.10
EVAL_MAX = 3000
MAX_CHAINS_PER_POST = 50
WANTED_MB = (6, 10)          # what GPT-2 124M wants for a personality
POSTS_PER_QUERY = 500

# Reasons, in the order they are checked.
DELETED = "deleted or removed"
BOT = "bot author"
EMPTY = "empty"
URL_ONLY = "only a link"
NEGATIVE = "negative keyword"
NSFW = "nsfw"
LOW_SCORE = "low score"
SHORT_TITLE = "short title"

_URL = r"(?:<?(?:https?://|www\.)\S+?>?|\[[^\]\n]*\]\(\s*\S+?\s*\))"
_URL_ONLY = re.compile(rf"^(?:\s*{_URL})+\s*$", re.IGNORECASE)
_GONE = {"[deleted]", "[removed]", "[deleted by user]"}


def known_bots(path=BOTS_FILE) -> tuple[str, ...]:
    """The built-in bot accounts (shared/known_bots.txt): one name a line, # comments."""
    names = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line)
    return tuple(names)


# --- what is acceptable: pure, on plain dicts (training_db rows) ----------------------------

@dataclass(frozen=True)
class Rules:
    """What export leaves out; ``bot_authors`` lower case."""

    bot_authors: frozenset
    negative: KeywordMatcher
    include_nsfw: bool = True
    min_score: int | None = None
    min_title_words: int = 0

    @classmethod
    def from_config(cls, training):
        bots = {n.lower() for n in known_bots()} | {n.lower() for n in training.bot_authors}
        return cls(frozenset(bots), KeywordMatcher(list(DEFAULT_NEGATIVE_KEYWORDS) + list(training.negative_keywords)),
                   training.include_nsfw, training.min_score, training.min_title_words)


def is_url_only(text: str) -> bool:
    """True when ``text`` is nothing but links (bare, <angled> or [markdown](links))."""
    return bool(_URL_ONLY.match(text))


def _gone(author, *texts) -> bool:
    return author is None or author == "[deleted]" or any(t.strip() in _GONE for t in texts)


def post_problem(post: dict, rules: Rules) -> str | None:
    """Why ``post`` is left out (one of the reasons above), or None."""
    if post["deleted"] or post["removed"] or _gone(post["author"], post["title"], post["selftext"]):
        return DELETED
    if post["author"].lower() in rules.bot_authors:
        return BOT
    if not post["title"].strip():
        return EMPTY
    if rules.negative.matches(post["title"]) or rules.negative.matches(post["selftext"]):
        return NEGATIVE
    if post["over_18"] and not rules.include_nsfw:
        return NSFW
    if rules.min_score is not None and post["score"] < rules.min_score:
        return LOW_SCORE
    if len(post["title"].split()) < rules.min_title_words:
        return SHORT_TITLE
    return None


def comment_problem(comment: dict, rules: Rules) -> str | None:
    """Why ``comment`` is left out, or None."""
    if comment["deleted"] or comment["removed"] or _gone(comment["author"], comment["body"]):
        return DELETED
    if comment["author"].lower() in rules.bot_authors:
        return BOT
    if not comment["body"].strip():
        return EMPTY
    if is_url_only(comment["body"]):
        return URL_ONLY
    if rules.negative.matches(comment["body"]):
        return NEGATIVE
    if rules.min_score is not None and comment["score"] < rules.min_score:
        return LOW_SCORE
    return None


def _best_first(comments):
    return sorted(comments, key=lambda c: (-c["score"], c["created_utc"], c["id"]))


def best_chain(post_id: str, children: dict, max_comments: int) -> list[dict]:
    """Post ``post_id``'s chain: the best-scored acceptable child at each level, ``max_comments`` at most.

    ``children`` maps a parent fullname to its acceptable comments.
    """
    chain, parent = [], f"t3_{post_id}"
    while len(chain) < max_comments and children.get(parent):
        best = _best_first(children[parent])[0]
        chain.append(best)
        parent = f"t1_{best['id']}"
    return chain


def all_chains(post_id: str, children: dict, max_comments: int, cap: int = MAX_CHAINS_PER_POST) -> list[list[dict]]:
    """Every root-to-leaf chain of acceptable comments (cut at ``max_comments``), best first, ``cap`` at most.

    A post without acceptable comments has one chain, the empty one.
    """
    chains = []
    stack = [[]]                                   # partial chains, explored best child first
    while stack and len(chains) < cap:
        chain = stack.pop()
        parent = f"t1_{chain[-1]['id']}" if chain else f"t3_{post_id}"
        kids = children.get(parent) if len(chain) < max_comments else None
        if not kids:
            chains.append(chain)
            continue
        stack.extend(chain + [kid] for kid in reversed(_best_first(kids)))
    return chains


def thread_of(post: dict, chain) -> Thread:
    """The tagging Thread of a post row and a chain of comment rows."""
    return Thread(Post(post["subreddit_name"], post["author"], post["title"], post["selftext"],
                       is_link=not post["is_self"]),
                  tuple(Comment(c["author"], c["body"]) for c in chain))


def eval_groups(group_sizes, seed) -> set[int]:
    """The groups (posts) whose samples go to eval: about min(10 %, 3000) samples, drawn with ``seed``."""
    total = sum(group_sizes)
    if total < 2:
        return set()
    wanted = min(max(1, int(total * EVAL_SHARE)), EVAL_MAX)
    order = list(range(len(group_sizes)))
    random.Random(seed).shuffle(order)
    chosen, taken = set(), 0
    for group in order:
        if taken >= wanted:
            break
        size = group_sizes[group]
        if size and taken + size <= EVAL_MAX and (taken + size <= wanted or not chosen):
            chosen.add(group)
            taken += size
    if taken == total:          # never leave train empty
        chosen.discard(next(iter(chosen)))
    return chosen


# --- the job ------------------------------------------------------------------------------------

def run(config, bots, subreddit=(), out=None, dialect=REPLY_SENSE, all_chains=None, max_comments=None,
        seed=0, **_options):
    training = config.training
    names = list(dict.fromkeys(s.lower() for s in subreddit))
    if not names:
        raise InputError("export: pass --subreddit NAME (repeat for several)")
    tdb.open(training.db, must_exist=True)
    try:
        counts = tdb.subreddit_counts()
        for name in names:
            if counts.get(name, (None, 0, 0))[1] == 0:
                held = ", ".join(f"r/{n} ({p} posts)" for n, p, _c in sorted(counts.values(), key=lambda v: -v[1])[:8])
                raise InputError(f"r/{name}: no posts in {training.db} (it holds {held or 'nothing yet'}); "
                                 f"run python -m jobs.download ... --subreddit {name} first")
        summary = export(names, Path(out or training.data_dir), Rules.from_config(training), dialect,
                         training.all_chains if all_chains is None else all_chains,
                         training.max_comments if max_comments is None else max_comments, seed)
    finally:
        tdb.close()
    print(format_summary(summary))
    if summary["mb"] < WANTED_MB[0]:
        log.warning("only %.2f MB of training text: GPT-2 124M wants %d-%d MB; download more "
                    "(more subreddits, a longer date range) or export with --all-chains",
                    summary["mb"], *WANTED_MB)
    return summary


def _posts(names):
    query = (tdb.Submission.select().where(tdb.Submission.subreddit.in_(names))
             .order_by(tdb.Submission.created_utc, tdb.Submission.id).dicts())
    return query.iterator()


def _comments_of(post_ids):
    by_post = defaultdict(list)
    for comment in tdb.Comment.select().where(tdb.Comment.link_id.in_(post_ids)).dicts():
        by_post[comment["link_id"]].append(comment)
    return by_post


def write_samples(handle, names, rules, dialect, chains_mode, max_comments):
    """Write every sample to ``handle``; return (samples per post, counts)."""
    counts = Counter()
    group_sizes = []
    posts = _posts(names)
    while chunk := list(itertools.islice(posts, POSTS_PER_QUERY)):
        comments = _comments_of([p["id"] for p in chunk])
        for post in chunk:
            counts["posts read"] += 1
            mine = comments.get(post["id"], ())
            problem = post_problem(post, rules)
            if problem:
                counts["post: " + problem] += 1
                counts["comments in left-out posts"] += len(mine)
                continue
            children = defaultdict(list)
            for comment in mine:
                counts["comments read"] += 1
                problem = comment_problem(comment, rules)
                if problem:
                    counts["comment: " + problem] += 1
                else:
                    children[comment["parent_id"]].append(comment)
            if chains_mode:
                chains = all_chains(post["id"], children, max_comments)
            else:
                chains = [best_chain(post["id"], children, max_comments)]
            for chain in chains:
                handle.write(training_sample(thread_of(post, chain), dialect) + "\n")
                counts["comments used"] += len(chain)
            counts["posts used"] += 1
            group_sizes.append(len(chains))
    return group_sizes, counts


def export(names, out_dir, rules, dialect=REPLY_SENSE, chains_mode=False, max_comments=10, seed=0):
    """Write train.txt and eval.txt in ``out_dir``; return the summary (a dict)."""
    if dialect not in DIALECTS:
        raise InputError(f"--dialect {dialect}: use one of {', '.join(DIALECTS)}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot make that directory ({exc.strerror}); pass another") from None
    stem = f".export-{os.getpid()}"
    everything, train_tmp, eval_tmp = (out_dir / f"{stem}.{name}.tmp" for name in ("all", "train", "eval"))
    try:
        with everything.open("w", encoding="utf-8", newline="\n") as handle:
            group_sizes, counts = write_samples(handle, names, rules, dialect, chains_mode, max_comments)
        total = sum(group_sizes)
        if total == 0:
            raise InputError(f"nothing to train on: all {counts['posts read']} posts of "
                             f"{', '.join('r/' + n for n in names)} were left out ({_reasons(counts, 'post: ')})")
        to_eval = eval_groups(group_sizes, seed)
        sizes = {"train": [0, 0], "eval": [0, 0]}        # samples, bytes
        with everything.open("r", encoding="utf-8", newline="\n") as source, \
                train_tmp.open("w", encoding="utf-8", newline="\n") as train, \
                eval_tmp.open("w", encoding="utf-8", newline="\n") as evaluation:
            groups = itertools.chain.from_iterable(itertools.repeat(g, n) for g, n in enumerate(group_sizes))
            for line, group in zip(source, groups):
                side = "eval" if group in to_eval else "train"
                (evaluation if side == "eval" else train).write(line)
                sizes[side][0] += 1
                sizes[side][1] += len(line.encode("utf-8"))
        os.replace(eval_tmp, out_dir / "eval.txt")
        os.replace(train_tmp, out_dir / "train.txt")
    finally:
        for path in (everything, train_tmp, eval_tmp):
            path.unlink(missing_ok=True)
    mb = (sizes["train"][1] + sizes["eval"][1]) / 1e6
    return {
        "subreddits": names, "out": str(out_dir), "dialect": dialect, "all_chains": chains_mode,
        "samples": total, "train_samples": sizes["train"][0], "eval_samples": sizes["eval"][0],
        "train_mb": sizes["train"][1] / 1e6, "eval_mb": sizes["eval"][1] / 1e6, "mb": mb,
        "posts_read": counts["posts read"], "posts_used": counts["posts used"],
        "comments_read": counts["comments read"], "comments_used": counts["comments used"],
        "comments_in_left_out_posts": counts["comments in left-out posts"],
        "filtered_posts": {k[6:]: v for k, v in counts.items() if k.startswith("post: ")},
        "filtered_comments": {k[9:]: v for k, v in counts.items() if k.startswith("comment: ")},
    }


def _reasons(counts, prefix):
    found = [(k[len(prefix):], v) for k, v in counts.most_common() if k.startswith(prefix)]
    return ", ".join(f"{reason} {n:,}" for reason, n in found) or "none"


def format_summary(s) -> str:
    filtered_posts = ", ".join(f"{r} {n:,}" for r, n in sorted(s["filtered_posts"].items(), key=lambda i: -i[1]))
    filtered_comments = ", ".join(f"{r} {n:,}" for r, n in sorted(s["filtered_comments"].items(),
                                                                   key=lambda i: -i[1]))
    mode = "every chain" if s["all_chains"] else "one chain per post"
    return "\n".join([
        f"exported {', '.join('r/' + n for n in s['subreddits'])} to {s['out']} ({s['dialect']}, {mode})",
        f"samples: {s['samples']:,} (train.txt {s['train_samples']:,}, eval.txt {s['eval_samples']:,}), "
        f"{s['mb']:.2f} MB (train {s['train_mb']:.2f} MB, eval {s['eval_mb']:.2f} MB)",
        f"posts: {s['posts_read']:,} read, {s['posts_used']:,} used; left out: {filtered_posts or 'none'}",
        f"comments: {s['comments_read']:,} read, {s['comments_used']:,} in samples; left out: "
        f"{filtered_comments or 'none'}; {s['comments_in_left_out_posts']:,} more in left-out posts",
    ])


# --- command line --------------------------------------------------------------------------------

def add_arguments(parser):
    parser.add_argument("--subreddit", action="append", default=[], metavar="S", required=True,
                        type=lambda s: s.strip().removeprefix("/").removeprefix("r/"),
                        help="export this subreddit (repeat for several)")
    parser.add_argument("--out", metavar="DIR", help="where to write train.txt and eval.txt "
                        "(default: the config's training.data_dir)")
    parser.add_argument("--dialect", choices=DIALECTS, default=REPLY_SENSE,
                        help="tag dialect (default: %(default)s; legacy has no r/ and u/ names)")
    parser.add_argument("--all-chains", action="store_const", const=True, default=None,
                        help="one sample per comment chain instead of one per post (default: training.all_chains)")
    parser.add_argument("--max-comments", type=int, metavar="N",
                        help="comments per sample, at most (default: training.max_comments)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/eval split (default: %(default)s)")


def main(argv=None):
    return cli.main("export", __doc__, run, add_arguments, argv=argv, use_db=False, config_optional=True)


if __name__ == "__main__":
    sys.exit(main())
