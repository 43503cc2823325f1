"""Post generated replies and submissions to reddit, exactly once.

    python -m jobs.post [--config ssi-bot.yaml] [--bot NAME] [--dry-run]

For every item with accepted text (state ``generated``, due now), the intent
is committed first (state ``posting`` and a PostAttempt row), then reddit is
called, then the outcome is recorded. An item found in ``posting`` when the
job starts had an unknown outcome (the process died, or the call timed out
after reddit may have accepted it): the job first looks for the bot's reply
on reddit (its newest comments, then the parent's replies; for posts, its
newest submissions) and records what it finds, and posts again only when
nothing is there. That is what makes posting exactly-once.

An image post (submit's ``image_share``) links to an image found for its title through
the bot's image search (shared/bot/images.py, Openverse by default); a refused URL
(DOMAIN_BANNED, ...) tries the next image, and a failed search or no usable image makes
it a text post: a slot is never lost.

Outcomes:
  RATELIMIT        back to ``generated`` with retry_at = the wait reddit named;
                   the bot's other items wait too, other bots go on
  5xx, timeout     stays ``posting`` (reddit may have taken it) with a backoff
                   retry_at; checked on reddit before the retry
  deleted, removed, locked, banned (403), too old
                   ``failed`` with the reason; the text stays in the DB. Reddit
                   takes replies to removed comments and posts, so the job
                   looks first (one /api/info request for all due replies)
"""

from __future__ import annotations

import logging
import sys

import praw.const

from shared import cli
from shared.state import db
from shared.bot import images, reddit
from shared.errors import PermanentError, RateLimited, TransientError

log = logging.getLogger("post")

# Transient failures back off 1, 2, 4 ... minutes, at most an hour apart,
# and give up after this many attempts (about a day).
BACKOFF_SECONDS = 60
BACKOFF_MAX_SECONDS = 3600
MAX_ATTEMPTS = 30
# How many of the bot's newest comments/posts to search for an unknown outcome.
RECOVERY_WINDOW = 100
# Form errors on a link's URL: nothing was created, another image may do.
REFUSED_URL = {"DOMAIN_BANNED", "BAD_URL", "ALREADY_SUB", "NO_LINKS"}
# ... except where the subreddit takes no links at all: straight to a text post.
NO_LINKS_HERE = {"NO_LINKS"}


def run(config, bots, dry_run=False, **_options):
    reddit.check_credentials(config, bots)
    for bot in bots:
        due = list(db.Item.select().where(
            (db.Item.bot == bot.name) & db.Item.state.in_([db.GENERATED, db.POSTING]) &
            (db.Item.retry_at.is_null() | (db.Item.retry_at <= db.now())))
            .order_by(db.Item.updated_at, db.Item.id))
        if not due:
            continue
        if dry_run:
            for item in due:
                log.info("%s %s: would post %r", bot.name, item.key, item.title or item.text)
            continue
        client = reddit.connect(bot, config)
        post_bot(client, bot, due)


def post_bot(client, bot, items):
    posted = 0
    recent = removed = None
    for item in items:
        try:
            if recent is None and not item.is_submission:
                recent = recent_replies(client, bot)
                removed = removed_targets(client, items)
            if item.key in (recent or {}):
                _mark_posted(item, recent[item.key], "found", _open_attempt(item))
                log.info("%s %s: already answered on reddit (%s); not posting again",
                         bot.name, item.key, recent[item.key])
                continue
            if item.state == db.POSTING and recover(client, bot, item):
                continue
            if item.key in (removed or {}):
                item.move(db.FAILED, retry_at=None, reason=removed[item.key])
                _finish_attempt(item, "permanent", removed[item.key])
                log.warning("%s %s: failed, %s", bot.name, item.key, item.reason)
                continue
            posted += post_item(client, bot, item)
        except RateLimited as exc:
            # Reddit refused before creating anything: nothing to look for later.
            item.move(db.GENERATED, retry_at=db.now() + exc.seconds, reason=str(exc))
            _finish_attempt(item, "ratelimited", str(exc))
            log.warning("%s: rate limited, next post in %.0fs (%s)", bot.name, exc.seconds, item.key)
            _delay_rest(items, item, exc.seconds)
            break
        except TransientError as exc:  # looking for an earlier attempt failed: look again later
            item.move(db.POSTING, retry_at=db.now() + BACKOFF_SECONDS, reason=f"recovery check: {exc}")
            log.warning("%s %s: could not check for an earlier attempt (%s)", bot.name, item.key, exc)
        except PermanentError as exc:  # the parent is gone, so no reply can exist or be made
            item.move(db.FAILED, reason=str(exc))
            log.warning("%s %s: failed, %s", bot.name, item.key, exc)
    if posted:
        log.info("%s: %d posted", bot.name, posted)


def post_item(client, bot, item):
    """One attempt: intent committed, reddit called, outcome recorded. Returns 1 if posted."""
    attempt = db.PostAttempt.create(item=item)
    item.move(db.POSTING, post_attempts=item.post_attempts + 1, retry_at=None)
    try:
        with reddit.translated_errors():
            result = submit(client, bot, item) if item.is_submission else reply(client, item)
    except TransientError as exc:
        attempt.outcome, attempt.reason, attempt.finished_at = "transient", str(exc), db.now()
        attempt.save()
        if item.post_attempts >= MAX_ATTEMPTS:
            item.move(db.FAILED, reason=f"gave up after {item.post_attempts} attempts: {exc}")
            log.error("%s %s: %s", item.bot, item.key, item.reason)
            return 0
        wait = min(BACKOFF_SECONDS * 2 ** (item.post_attempts - 1), BACKOFF_MAX_SECONDS)
        # Stays ``posting``: reddit may have taken it, so the retry looks first.
        item.move(db.POSTING, retry_at=db.now() + wait, reason=str(exc))
        log.warning("%s %s: %s; retry in %.0fs", item.bot, item.key, exc, wait)
        return 0
    except PermanentError as exc:
        attempt.outcome, attempt.reason, attempt.finished_at = "permanent", str(exc), db.now()
        attempt.save()
        item.move(db.FAILED, reason=str(exc))
        log.warning("%s %s: failed, %s", item.bot, item.key, exc)
        return 0
    if result is None:
        # Reddit said OK without returning the new thing (quarantined
        # subreddits do this): unknown outcome, look for it next run.
        item.move(db.POSTING, retry_at=db.now() + BACKOFF_SECONDS, reason="posted but not returned")
        return 0
    _mark_posted(item, result, "posted", attempt)
    log.info("%s %s: posted %s: %s", item.bot, item.key, result, cli.preview(item.title or item.text))
    return 1


def reply(client, item):
    """Reply to the item's thing; the new comment's fullname, or None if reddit returned none."""
    created = client.post(praw.const.API_PATH["comment"], data={"thing_id": item.key, "text": item.text})
    return created[0].fullname if created else None


def submit(client, bot, item):
    schedule = next((s for s in bot.submit if s.subreddit.lower() == (item.subreddit or "").lower()), None)
    options = dict(flair_id=schedule.flair_id, nsfw=schedule.nsfw) if schedule else {}
    subreddit = client.subreddit(item.subreddit)
    if item.image:
        posted = submit_image(subreddit, bot, item, options)
        if posted is not None:
            return posted
    elif item.is_link:
        # Link posts are trained without their URL; the bot links to its own
        # subreddit so the post stays a link post and points nowhere surprising.
        url = f"https://www.reddit.com/r/{item.subreddit}/"
        return subreddit.submit(item.title, url=url, resubmit=True, **options).fullname
    return subreddit.submit(item.title, selftext=item.text or "", **options).fullname


def submit_image(subreddit, bot, item, options):
    """Post ``item`` as a link to an image found for its title; the post's fullname, or None
    when no image could be posted (then it goes up as a text post: the slot is never lost).

    A refused URL (DOMAIN_BANNED, BAD_URL, ...) is a form error: reddit created nothing,
    so the next image is tried at once, as the original bot retried on DOMAIN_BANNED
    (zacc/ssi-bot reddit_io/reddit_io.py:383-390). Each refusal is a PostAttempt row.
    """
    try:
        found = images.find(images.searcher(bot.images), item.title, bot.images.search_prefix,
                            bot.images.results)
    except images.SearchFailed as exc:
        log.warning("%s %s: image search failed (%s); posting it as a text post", bot.name, item.key, exc)
        return None
    if not found:
        log.warning("%s %s: no image found for %r; posting it as a text post", bot.name, item.key, item.title)
        return None
    for image in found:
        try:
            with reddit.translated_errors():
                post = subreddit.submit(item.title, url=image.url, resubmit=True, **options)
        except PermanentError as exc:
            if exc.reason not in REFUSED_URL:
                raise
            db.PostAttempt.create(item=item, finished_at=db.now(), outcome="refused",
                                  reason=f"{exc} ({image.url})")
            log.warning("%s %s: reddit refused %s (%s); trying the next image", bot.name, item.key, image.url, exc)
            if exc.reason in NO_LINKS_HERE:
                break
            continue
        item.url = image.url
        item.save(only=[db.Item.url])
        log.info("%s %s: image %s (%s, %s)", bot.name, item.key, image.url, image.license or "no license",
                 image.landing_url or image.source)
        return post.fullname
    log.warning("%s %s: no image could be posted; posting it as a text post", bot.name, item.key)
    return None


def recent_replies(client, bot):
    """{parent fullname: reply fullname} for the bot's newest comments: one request.

    Checked before every post, not only after a crash: a DB restored from an
    older snapshot, or a second runner, may not know what the bot already said.
    """
    with reddit.translated_errors():
        return {c.parent_id: c.fullname for c in client.redditor(bot.name).comments.new(limit=RECOVERY_WINDOW)}


def removed_targets(client, items):
    """{key: reason} for the replies whose target, or the post it is in, moderators removed.

    Reddit still accepts replies there; a bot answering removed content looks like
    it is working around the moderators. Read in one /api/info request (two when
    comments' posts are needed), 100 things each.
    """
    keys = [item.key for item in items if item.key.startswith(("t1_", "t3_"))]
    if not keys:
        return {}
    with reddit.translated_errors():
        rows = {row["fullname"]: row for row in map(reddit.thing_row, client.info(fullnames=keys))}
        posts = {row["submission"] for row in rows.values() if row.get("submission")} - set(rows)
        if posts:
            rows.update((row["fullname"], row) for row in map(reddit.thing_row, client.info(fullnames=sorted(posts))))
    reasons = {}
    for key in keys:
        row = rows.get(key)
        post = row if key.startswith("t3_") else rows.get((row or {}).get("submission"))
        if row and row.get("removed"):
            reasons[key] = "removed: the moderators removed what it answers"
        elif post and post.get("removed"):
            reasons[key] = "removed: the moderators removed the post it is in"
    return reasons


def recover(client, bot, item):
    """Look on reddit for the result of an earlier attempt; True when found and recorded.

    The bot's newest comments were already searched (recent_replies); this
    looks at the parent's replies, or the bot's newest posts for a submission.
    """
    with reddit.translated_errors():
        found = find_submission(client, bot, item) if item.is_submission else find_reply(client, bot, item)
    if not found:
        log.info("%s %s: earlier attempt left nothing on reddit; posting again", bot.name, item.key)
        return False
    _mark_posted(item, found, "found", _open_attempt(item))
    log.info("%s %s: earlier attempt had succeeded, found %s; not posting again", bot.name, item.key, found)
    return True


def find_reply(client, bot, item):
    """Fullname of the bot's reply to item.key among the parent's replies."""
    if item.key.startswith("t1_"):
        parent = client.comment(item.key[3:])
        parent.refresh()
        replies = parent.replies
    elif item.key.startswith("t3_"):
        replies = client.submission(item.key[3:]).comments
    else:
        return None
    for comment in replies:
        if getattr(comment, "author", None) and comment.author.name.lower() == bot.name.lower():
            return comment.fullname
    return None


def find_submission(client, bot, item):
    first = item.attempts.order_by(db.PostAttempt.id).first()
    since = (first.started_at if first else item.created_at) - 600
    for post in client.redditor(bot.name).submissions.new(limit=RECOVERY_WINDOW):
        if post.created_utc < since:
            break
        if post.subreddit.display_name.lower() == item.subreddit.lower() and post.title == item.title:
            return post.fullname
    return None


def _mark_posted(item, result, outcome, attempt):
    with db.database.atomic():
        if attempt is not None:
            attempt.outcome, attempt.result, attempt.finished_at = outcome, result, db.now()
            attempt.save()
        item.move(db.POSTED, result=result, posted_at=db.now(), retry_at=None, reason=None)


def _open_attempt(item):
    """The latest attempt if its outcome is still unknown, else None."""
    attempt = item.attempts.order_by(db.PostAttempt.id.desc()).first()
    return attempt if attempt is not None and attempt.outcome is None else None


def _finish_attempt(item, outcome, reason):
    attempt = _open_attempt(item)
    if attempt is not None:
        attempt.outcome, attempt.reason, attempt.finished_at = outcome, reason, db.now()
        attempt.save()


def _delay_rest(items, current, seconds):
    """Reddit's posting limit is per account: the bot's other due items wait as well."""
    later = [i.id for i in items if i.id != current.id and i.state == db.GENERATED]
    if later:
        db.Item.update(retry_at=db.now() + seconds).where(db.Item.id.in_(later)).execute()


def add_arguments(parser):
    parser.add_argument("--dry-run", action="store_true", help="log what would be posted; write nothing")


def main(argv=None):
    return cli.main("post", __doc__, run, add_arguments, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
