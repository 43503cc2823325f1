"""Training samples from the training corpus: what is left out, which chains, the train/eval split.

The logic behind ``python -m jobs.export`` (its docstring says what the command does):

    from shared.training.export import Rules, export
    summary = export(["science"], Path("data/science"), Rules.from_config(config.training))

``post_problem``/``comment_problem`` say why a row is left out; ``best_chain`` and
``all_chains`` pick the comment chains of a post; ``export`` writes train.txt and eval.txt
through ``shared.tagging.training_sample`` (the code that also writes the bot's prompts),
to temporary names renamed into place at the end.
"""

from __future__ import annotations

import itertools
import os
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from shared.errors import InputError
from shared.filters import DEFAULT_NEGATIVE_KEYWORDS, KeywordMatcher
from shared.records import gone
from shared.tagging import DIALECTS, END_OF_TEXT, REPLY_SENSE, Comment, Post, Thread, training_sample
from shared.training import corpus

BOTS_FILE = Path(__file__).resolve().parents[1] / "known_bots.txt"
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


def known_bots(path=BOTS_FILE) -> tuple[str, ...]:
    """The built-in bot accounts (shared/known_bots.txt): one name a line, # comments."""
    names = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line)
    return tuple(names)


# --- what is acceptable: pure, on plain dicts (corpus rows) ---------------------------------

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


def post_problem(post: dict, rules: Rules) -> str | None:
    """Why ``post`` is left out (one of the reasons above), or None."""
    if post["deleted"] or post["removed"] or post["author"] is None or any(gone((post["title"], post["selftext"]), {})):
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
    if comment["deleted"] or comment["removed"] or comment["author"] is None or any(gone((comment["body"],), {})):
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


def _posts(names):
    query = (corpus.CorpusPost.select().where(corpus.CorpusPost.subreddit.in_(names))
             .order_by(corpus.CorpusPost.created_utc, corpus.CorpusPost.id).dicts())
    return query.iterator()


def _comments_of(post_ids):
    by_post = defaultdict(list)
    for comment in corpus.CorpusComment.select().where(corpus.CorpusComment.link_id.in_(post_ids)).dicts():
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
            for sample, group in zip(_samples(source), groups):
                side = "eval" if group in to_eval else "train"
                (evaluation if side == "eval" else train).write(sample)
                sizes[side][0] += 1
                sizes[side][1] += len(sample.encode("utf-8"))
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


def _samples(handle):
    """The samples ``write_samples`` wrote, each with its line break: a sample ends at
    ``<|endoftext|>`` (a legacy one may span lines)."""
    pending = ""
    for line in handle:
        pending += line
        if line.endswith(END_OF_TEXT + "\n"):
            yield pending
            pending = ""
    if pending:
        yield pending


def _reasons(counts, prefix):
    found = [(k[len(prefix):], v) for k, v in counts.most_common() if k.startswith(prefix)]
    return ", ".join(f"{reason} {n:,}" for reason, n in found) or "none"
