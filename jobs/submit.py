"""Queue the bot's own posts on each subreddit's schedule.

    python -m jobs.submit [--config ssi-bot.yaml] [--bot NAME] [--seed N]

For each ``submit`` entry of a bot: time is cut into slots of
``every_hours``; in each slot, at an allowed hour of the day (UTC, when
``hours_of_day`` is set), one post is queued: an item keyed
``submit:SUBREDDIT:SLOT`` (``db.submission_key``) that generate gives a title and body (through the
same tagging and model as replies) and post submits with the entry's flair
and NSFW flag. A share ``image_share`` of the posts link to an image found for their
title (jobs.post searches it), a share ``link_share`` link to the subreddit; the
others are self posts. Image and link posts are generated as link posts (``<|sols``).

Idempotent: the slot is in the key, so a slot is queued once however often
this runs; and no new post is queued for a subreddit while an earlier one is
still pending (queued, generated or posting).
"""

from __future__ import annotations

import logging
import random
import sys

from shared import cli
from shared.state import db

log = logging.getLogger("submit")

PENDING = (db.QUEUED, db.GENERATED, db.POSTING)


def run(config, bots, seed=None, now=None, **_options):
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    now = db.now() if now is None else now
    for bot in bots:
        for schedule in bot.submit:
            if schedule.allows(now):
                queue_slot(bot, schedule, now, rng)


def queue_slot(bot, schedule, now, rng):
    key = db.submission_key(schedule.subreddit, schedule.slot(now))
    prefix = db.submission_key(schedule.subreddit)
    pending = db.Item.get_or_none((db.Item.bot == bot.name) & db.Item.key.startswith(prefix) &
                                  db.Item.state.in_(PENDING) & (db.Item.key != key))
    if pending is not None:
        log.info("%s r/%s: earlier post %s still %s; not queueing another", bot.name, schedule.subreddit,
                 pending.key, pending.state)
        return
    draw = rng.random()
    image = draw < schedule.image_share
    is_link = draw < schedule.image_share + schedule.link_share
    item, created = db.add_item(bot.name, key, "schedule", state=db.QUEUED, subreddit=schedule.subreddit,
                                is_link=is_link, image=image, target_author=None)
    if created:
        log.info("%s r/%s: queued a%s post (%s)", bot.name, schedule.subreddit,
                 "n image" if image else " link" if is_link else " self", key)


def add_arguments(parser):
    parser.add_argument("--seed", type=int, help="seed the link/self choice (tests)")


def main(argv=None):
    return cli.main("submit", __doc__, run, add_arguments, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
