"""Decide, once, whether each new item gets a reply.

    python -m jobs.decide [--config ssi-bot.yaml] [--bot NAME] [--seed N]

For every item fetch stored (state ``seen``): the toxicity check of its text
(shared/bot/toxicity.py, one batch per bot; a toxic item gets 0, even a
mention), the reply probability with the bot's weights (shared/bot/decide.py),
the spam caps (per hour, per day, per thread, per author), then one random
draw. The probability, the draw and the reasons are stored, and the item moves
to ``queued`` or ``skipped``.

Idempotent: only ``seen`` items are taken and a decided item is never
re-rolled, so running twice decides nothing twice and never queues an item
twice.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import sys

from shared import cli
from shared.state import db
from shared.bot import toxicity
from shared.bot.decide import Situation, cap_reached, reply_probability
from shared.filters import KeywordMatcher

log = logging.getLogger("decide")


def run(config, bots, seed=None, **_options):
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    for bot in bots:
        decide_bot(bot, rng, now=db.now())


def decide_bot(bot, rng, now):
    positive = KeywordMatcher(bot.positive_keywords)
    negative = KeywordMatcher(bot.negative_patterns())
    items = list(db.Item.select()
                 .where((db.Item.bot == bot.name) & (db.Item.state == db.SEEN) & ~db.Item.is_submission)
                 .order_by(db.Item.created_at, db.Item.id))
    situations = screen([situation_for(item, bot.name, now) for item in items], bot)
    queued = skipped = 0
    for item, situation in zip(items, situations):
        if situation is None:
            db.record_decision(item, 0.0, 1.0, ["not in the cache"], queue=False, reason="not in the cache")
            skipped += 1
            continue
        p, reasons = reply_probability(situation, bot, positive, negative)
        draw = rng.random()
        cap = None
        if p > 0:
            cap = cap_reached(db.cap_counts(bot.name, now, item.thread, item.target_author), bot.caps)
        if cap:
            reasons.append(cap)
        queue = draw < p and cap is None
        why = None if queue else cap or (reasons[0] if p == 0 else f"draw {draw:.2f} >= p {p:.2f}")
        db.record_decision(item, p, draw, reasons, queue=queue, reason=why)
        log.info("%s %s %s by %s: p=%.2f draw=%.2f -> %s (%s)", bot.name, item.key, situation.kind,
                 situation.author or "[deleted]", p, draw, "queued" if queue else "skipped",
                 "; ".join(reasons))
        queued += queue
        skipped += not queue
    if queued or skipped:
        log.info("%s: %d queued, %d skipped", bot.name, queued, skipped)


def screen(situations, bot):
    """``situations`` with the toxicity check's verdicts filled in: one engine call for all."""
    if not bot.toxicity.incoming:
        return situations
    known = [s for s in situations if s is not None]
    if not known:
        return situations
    verdicts = iter(toxicity.checker(bot.toxicity, bot.name).reasons([s.text for s in known]))
    return [None if s is None else dataclasses.replace(s, toxic=next(verdicts)) for s in situations]


def situation_for(item, bot_name, now):
    """A decide.Situation for ``item`` from the Thing cache (None if the thing is unknown)."""
    thing = db.Thing.get_or_none(db.Thing.fullname == item.key)
    if thing is None:
        return None
    cached = db.things(f for f in (thing.submission, thing.parent) if f)
    post = thing if thing.kind == "submission" else cached.get(thing.submission)
    return situation_of(thing, post, cached.get(thing.parent), item.source, bot_name, now)


def situation_of(thing, post, parent, source, bot_name, now):
    """A decide.Situation for ``thing`` (a Thing, stored or not), its post and its parent
    (None when unknown): what jobs.rehearse shows for a thread it did not store."""
    born = post.created_utc if post else thing.created_utc
    text = f"{thing.title}\n{thing.body}" if thing.kind == "submission" else thing.body
    return Situation(
        bot=bot_name, kind=thing.kind, source=source, author=thing.author,
        author_flair=thing.author_flair, text=text,
        post_age_hours=max(0.0, now - born) / db.HOUR,
        # the cache counts depth as reddit does (0 = top level); decide as the original did (1)
        depth=thing.depth + 1 if thing.kind == "comment" and thing.depth is not None else None,
        post_author=post.author if post else None,
        parent_author=parent.author if parent else None,
        link_flair=post.link_flair if post else None,
        locked=thing.locked or bool(post and post.locked),
        removed=thing.removed or bool(post and post.removed),
        deleted=thing.deleted,
    )


def add_arguments(parser):
    parser.add_argument("--seed", type=int, help="seed the draws (tests, rehearsals); default: OS randomness")


def main(argv=None):
    return cli.main("decide", __doc__, run, add_arguments, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
