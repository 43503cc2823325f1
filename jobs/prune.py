"""Delete what is past the retention window, keeping what the bot still needs.

    python -m jobs.prune [--config ssi-bot.yaml] [--days N]

Deletes finished items (skipped, posted, failed) last touched before the
window (``retention_days``, default 30), with their decisions, candidates and
post attempts, and cached reddit content that no kept item needs as
ancestry. Kept whatever its age: work in progress (seen, queued, generated,
posting: generated text is never lost), the listing cursors, and the last
day of decisions the spam caps count. Listings and the inbox do not return
anything this old, so dropping the keys cannot cause a second reply. Frees
the space with VACUUM when more than a fifth of the file is free pages.

Idempotent: deleting twice is deleting once.
"""

from __future__ import annotations

import logging
import sys

from shared import cli
from shared.state import db

log = logging.getLogger("prune")

DAY = 86400.0
FINISHED = (db.SKIPPED, db.POSTED, db.FAILED)
VACUUM_FREE_SHARE = 0.2


def run(config, bots=None, days=None, **_options):
    days = config.retention_days if days is None else days
    cutoff = db.now() - max(days, 1) * DAY  # the caps need the last day
    with db.database.atomic():
        old = db.Item.select(db.Item.id).where(db.Item.state.in_(FINISHED) & (db.Item.updated_at < cutoff))
        counts = {
            "decisions": db.Decision.delete().where(db.Decision.item.in_(old)).execute(),
            "candidates": db.Candidate.delete().where(db.Candidate.item.in_(old)).execute(),
            "post attempts": db.PostAttempt.delete().where(db.PostAttempt.item.in_(old)).execute(),
        }
        counts["items"] = db.Item.delete().where(
            db.Item.state.in_(FINISHED) & (db.Item.updated_at < cutoff)).execute()
        keep = needed_things()
        stale = [t.fullname for t in db.Thing.select(db.Thing.fullname).where(db.Thing.fetched_at < cutoff)
                 if t.fullname not in keep]
        counts["things"] = sum(db.Thing.delete().where(db.Thing.fullname.in_(stale[i:i + 500])).execute()
                               for i in range(0, len(stale), 500))
    log.info("deleted %s (retention %g days)", ", ".join(f"{n} {k}" for k, n in counts.items()), days)
    reclaim_space()
    return counts


def needed_things():
    """Fullnames of the Things that kept items use as prompts and for decisions."""
    keep = set()
    for item in db.Item.select(db.Item.key).where(db.Item.state.not_in(FINISHED)):
        if not item.is_submission:
            keep.update(t.fullname for t in db.ancestry(item.key, 64))
    return keep


def reclaim_space():
    pages = db.database.execute_sql("PRAGMA page_count").fetchone()[0]
    free = db.database.execute_sql("PRAGMA freelist_count").fetchone()[0]
    if pages and free / pages > VACUUM_FREE_SHARE:
        db.database.execute_sql("VACUUM")
        log.info("vacuumed: %d of %d pages were free", free, pages)


def add_arguments(parser):
    parser.add_argument("--days", type=float, help="retention window in days (default: retention_days)")


def main(argv=None):
    return cli.main("prune", __doc__, run, add_arguments, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
