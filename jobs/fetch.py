"""Read what is new on reddit for each bot: posts, comments and the inbox.

    python -m jobs.fetch [--config ssi-bot.yaml] [--bot NAME]

For each bot: the newest posts and comments of its subreddits (one
multi-subreddit listing, a+b+c) back to the stored cursor, and the unread
inbox (replies, mentions, and private messages when enabled). Each is stored
as a Thing (the content) and an Item (the bot's work). Then the ancestors
that prompts and decisions need (parent comments up to the post) are read in
batches of 100 through /api/info, one request per level, never one per parent;
and the earlier messages of a private conversation (its subject, the bot's own
replies) in one request per conversation.

Idempotent: items are keyed by (bot, fullname) and listing cursors are
stored, so a second run stores nothing new. A reply of the bot's found in a
listing marks its parent as answered, so even a DB that lost its history
(restored from an older snapshot) never answers the same item twice. Inbox items are marked read only
after they are committed; a crash in between re-reads them next time and the
unique key drops the duplicate.
"""

from __future__ import annotations

import logging
import sys

from shared import cli
from shared.state import db
from shared.bot import reddit

log = logging.getLogger("fetch")

# How far back the first run of a bot looks: one page per listing. Older
# items would be decayed to probability 0 by their age anyway.
FIRST_RUN_LIMIT = 100
# Messages of a conversation walked in the cache before reading it again from reddit.
CONVERSATION_LIMIT = 1000
# A listing goes back at most 1000 items on reddit.
LISTING_LIMIT = 1000
# Cursors step back this far: items that share the newest timestamp, or that
# reddit indexed late, are read again and dropped by the unique key.
CURSOR_OVERLAP_SECONDS = 60


def run(config, bots, **_options):
    reddit.check_credentials(config, bots)
    for bot in bots:
        client = reddit.connect(bot, config)
        with reddit.translated_errors():
            fetch_bot(client, bot)


def fetch_bot(client, bot):
    new_items = []
    if bot.subreddits:
        multi = client.subreddit("+".join(bot.subreddits))
        new_items += read_listing(bot, "new", multi.new)
        new_items += read_listing(bot, "comments", multi.comments)
    inbox = read_inbox(client, bot)
    new_items += inbox["items"]
    pending = [i.key for i in db.Item.select(db.Item.key).where(
        (db.Item.bot == bot.name) & (db.Item.state == db.SEEN)) if not i.is_submission]
    requests = resolve_ancestry(client, pending, levels=bot.reply.max_depth + 2)
    requests += read_conversations(client, bot, [key for key in pending if key.startswith("t4_")])
    if inbox["read"]:
        client.inbox.mark_read(inbox["read"])
    kinds = {}
    for item in new_items:
        kinds[item.source] = kinds.get(item.source, 0) + 1
    detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing new"
    log.info("%s: %d new items (%s); %d ancestry requests", bot.name, len(new_items), detail, requests)
    return new_items


def read_listing(bot, kind, listing):
    """Store what ``listing`` (multi.new or multi.comments) holds down to the cursor."""
    name = f"{kind}:{'+'.join(sorted(s.lower() for s in bot.subreddits))}"
    cursor = db.Cursor.get_or_none(bot=bot.name, name=name)
    since = cursor.value - CURSOR_OVERLAP_SECONDS if cursor else None
    records = []
    for thing in listing(limit=LISTING_LIMIT if cursor else FIRST_RUN_LIMIT):
        if since is not None and thing.created_utc < since:
            break
        records.append(reddit.thing_row(thing))
    if not records:
        return []
    with db.database.atomic():
        created = store(bot, records, "listing")
        newest = max(r["created_utc"] for r in records)
        if cursor is None or newest > cursor.value:
            (db.Cursor.insert(bot=bot.name, name=name, value=newest, updated_at=db.now())
             .on_conflict(conflict_target=[db.Cursor.bot, db.Cursor.name],
                          update={db.Cursor.value: newest, db.Cursor.updated_at: db.now()})
             .execute())
    return created


def read_inbox(client, bot):
    """Store the unread inbox items the bot wants; return them and what to mark read."""
    wanted = {"mention": bot.inbox.mentions, "comment_reply": bot.inbox.replies,
              "post_reply": bot.inbox.replies, "message": bot.inbox.messages}
    unread = [t for t in client.inbox.unread(limit=None) if wanted[reddit.inbox_source(t)]]
    if not unread:
        return {"items": [], "read": []}
    # Inbox copies of comments lack fields (link_id, locked, ...): read the
    # full comments through /api/info; messages are complete as they are.
    comments = [t.fullname for t in unread if t.fullname.startswith("t1_")]
    found = client.info(fullnames=comments) if comments else []
    full = {r["fullname"]: r for r in (reddit.thing_row(t) for t in found)}
    created = []
    with db.database.atomic():
        for thing in unread:
            record = full.get(thing.fullname) or reddit.thing_row(thing)
            if thing.fullname.startswith("t1_") and thing.fullname not in full:
                continue  # gone from reddit (deleted before we looked): nothing to answer
            created += store(bot, [record], reddit.inbox_source(thing))
    return {"items": created, "read": unread}


def store(bot, records, source):
    """Store Things, and an Item for each one the bot did not write itself."""
    db.store_things(records)
    created = []
    for record in records:
        if (record.get("author") or "").lower() == bot.name.lower():
            # The bot's own posts are ancestry, not work. Its comment also proves
            # it answered the parent: should the DB have lost that (a restore
            # from an older snapshot, a second runner), it must not answer again.
            if record.get("parent"):
                db.mark_answered(bot.name, record["parent"], record["fullname"])
            continue
        item, is_new = db.add_item(
            bot.name, record["fullname"], source,
            subreddit=record.get("subreddit"),
            thread=record["fullname"] if record["fullname"].startswith("t3_") else record.get("submission"),
            target_author=record.get("author"))
        if is_new:
            created.append(item)
    return created


def resolve_ancestry(client, fullnames, levels):
    """Read the missing ancestors (and posts) of ``fullnames``, a level per request.

    Then sets the depth of every comment whose chain reaches its post. Returns
    the number of /api/info requests made.
    """
    requests = 0
    frontier = set(fullnames)
    for _ in range(levels):
        cached = db.things(frontier)
        wanted = set()
        for thing in cached.values():
            wanted.update(f for f in (thing.parent, thing.submission) if f and not f.startswith("t4_"))
        missing = wanted - set(db.things(wanted))
        if missing:
            found = list(client.info(fullnames=sorted(missing)))
            requests += -(-len(missing) // reddit.INFO_BATCH)
            db.store_things([reddit.thing_row(t) for t in found])
        frontier = {thing.parent for thing in cached.values() if thing.parent and thing.parent.startswith("t1_")}
        if not frontier:
            break
    set_depths(fullnames, levels)
    return requests


def read_conversations(client, bot, fullnames):
    """Read the earlier messages of each private message in ``fullnames`` whose cached chain
    does not reach the conversation's first message: one request per conversation
    (/message/messages/ID answers all of it).

    The messages are stored as Things only (the bot's own included: the prompt shows the
    whole conversation), never as work; a reply of the bot's marks its parent answered.
    Returns the number of requests made.
    """
    requests = 0
    for fullname in fullnames:
        chain = db.ancestry(fullname, CONVERSATION_LIMIT)
        if not chain or chain[0].parent is None:   # unknown, or complete up to the first message
            continue
        messages = reddit.conversation(client, fullname)
        requests += 1
        records = [reddit.thing_row(m) for m in messages]
        with db.database.atomic():
            db.store_things(records)
            for record in records:
                if (record.get("author") or "").lower() == bot.name.lower() and record.get("parent"):
                    db.mark_answered(bot.name, record["parent"], record["fullname"])
    return requests


def set_depths(fullnames, levels):
    """Fill in Thing.depth by walking cached parents up to the post."""
    for fullname in fullnames:
        chain = db.ancestry(fullname, levels + 1)
        if not chain or not fullname.startswith("t1_") or chain[-1].depth is not None:
            continue
        if chain[0].fullname.startswith("t3_"):
            comments = chain[1:]
            depths = range(len(comments))
        elif chain[0].depth is not None:
            comments = chain
            depths = range(chain[0].depth, chain[0].depth + len(chain))
        else:
            if len(chain) > levels:  # deeper than we look: too deep to answer anyway
                db.Thing.update(depth=len(chain)).where(db.Thing.fullname == fullname).execute()
            continue
        with db.database.atomic():
            for thing, depth in zip(comments, depths):
                if thing.depth is None:
                    db.Thing.update(depth=depth).where(db.Thing.fullname == thing.fullname).execute()


def main(argv=None):
    return cli.main("fetch", __doc__, run, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
