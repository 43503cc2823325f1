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

import logging
import sys
from pathlib import Path

from shared import cli
from shared.errors import InputError
from shared.tagging import DIALECTS, REPLY_SENSE
from shared.training import corpus
from shared.training.export import WANTED_MB, Rules, export

log = logging.getLogger("export")


def run(config, bots, subreddit=(), out=None, dialect=REPLY_SENSE, all_chains=None, max_comments=None,
        seed=0, **_options):
    training = config.training
    names = list(dict.fromkeys(s.lower() for s in subreddit))
    if not names:
        raise InputError("export: pass --subreddit NAME (repeat for several)")
    corpus.open(training.db, must_exist=True)
    try:
        counts = corpus.subreddit_counts()
        for name in names:
            if counts.get(name, (None, 0, 0))[1] == 0:
                held = ", ".join(f"r/{n} ({p} posts)" for n, p, _c in sorted(counts.values(), key=lambda v: -v[1])[:8])
                raise InputError(f"r/{name}: no posts in {training.db} (it holds {held or 'nothing yet'}); "
                                 f"run python -m jobs.download ... --subreddit {name} first")
        summary = export(names, Path(out or training.data_dir), Rules.from_config(training), dialect,
                         training.all_chains if all_chains is None else all_chains,
                         training.max_comments if max_comments is None else max_comments, seed)
    finally:
        corpus.close()
    print(format_summary(summary))
    if summary["mb"] < WANTED_MB[0]:
        log.warning("only %.2f MB of training text: GPT-2 124M wants %d-%d MB; download more "
                    "(more subreddits, a longer date range) or export with --all-chains",
                    summary["mb"], *WANTED_MB)
    return summary


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
