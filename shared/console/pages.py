"""What each console page shows, read from the state DB (read-only), the config and files.

    db.open_readonly(config.db)
    with db.reading():
        summary = pages.bot_summary(config, config.bot("MyBot"), now=time.time())

Every function returns plain data (dicts, lists, numbers, strings) for the templates;
none writes anything. The DB functions run inside ``db.reading()`` (one consistent read,
connected for that read only); ``models`` and ``snapshots`` read files and storage.
Raises ``NotFound`` for a thread or item the DB does not hold.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import peewee as pw

from shared import cli
from shared.console import charts, shape
from shared.state import db, replica, runs
from shared.training.finetune import BEST_MODEL, PROGRESS_CSV, progress_history

RECENT = 10                     # failures, conversations and post attempts on a bot's page
MAX_CONVERSATIONS = 200
MAX_THREAD_ITEMS = 2000         # comments of one thread shown (a huge thread is cut, newest kept)
# Post attempts that did not post: transient errors, rate limits, permanent refusals.
FAILED_ATTEMPTS = ("transient", "ratelimited", "permanent")
CAP_PREFIX = "cap "             # a skip's reason when a cap stopped it (shared/bot/decide.py cap_reached)


class NotFound(LookupError):
    """The DB holds no such thread or item; the message says what was asked for."""


# --------------------------------------------------------------------------- bots

def overview(config):
    """Per configured bot: items per state and their total."""
    counts = db.state_counts()
    return [{"name": bot.name, "subreddits": bot.subreddits,
             "states": counts.get(bot.name, dict.fromkeys(db.STATES, 0)),
             "total": sum(counts.get(bot.name, {}).values())} for bot in config.bots]


def bot_summary(config, bot, now):
    """A bot's page: items per state, caps, post schedule, job runs, failures, conversations."""
    states = db.state_counts(bot.name).get(bot.name, dict.fromkeys(db.STATES, 0))
    return {
        "states": states,
        "total": sum(states.values()),
        "caps": caps(bot, now),
        "schedule": schedule(bot, now),
        "runs": job_runs(config, bot),
        "failures": [{"item": _item_row(item), "reason": item.reason, "at": item.updated_at}
                     for item in db.latest_failures(bot.name, RECENT)],
        "attempts": failed_attempts(bot, RECENT),
        "next_retry": _next_retry(bot),
        "conversations": conversations(bot, RECENT),
    }


def caps(bot, now):
    """Each cap: how much of it is used now (the numbers decide compares) and its limit."""
    counts = db.cap_counts(bot.name, now)
    thread = db.busiest(bot.name, now - db.DAY, "thread")
    author = db.busiest(bot.name, now - db.DAY, "target_author")
    rows = [("per hour", counts["per_hour"], bot.caps.per_hour, "all threads, last hour", None),
            ("per day", counts["per_day"], bot.caps.per_day, "all threads, last 24 h", None),
            ("per thread", thread[1] if thread else 0, bot.caps.per_thread,
             "busiest thread, last 24 h", thread[0] if thread else None),
            ("per user", author[1] if author else 0, bot.caps.per_user,
             f"most answered author, last 24 h{': u/' + author[0] if author else ''}", None)]
    return [{"name": name, "used": used, "limit": limit, "scope": scope, "thread": link,
             "share": min(1.0, used / limit) if limit else 1.0, "reached": used >= limit}
            for name, used, limit, scope, link in rows]


def schedule(bot, now):
    """Per subreddit the bot posts in: the next opening, a post still pending, the last post."""
    rows = []
    for entry in bot.submit:
        prefix = db.submission_key(entry.subreddit)
        items = list(db.Item.select().where((db.Item.bot == bot.name) & db.Item.key.startswith(prefix))
                     .order_by(db.Item.id.desc()))
        taken = {int(item.key.rpartition(":")[2]) for item in items if item.key.rpartition(":")[2].isdigit()}
        pending = next((i for i in items if i.state in (db.QUEUED, db.GENERATED, db.POSTING)), None)
        last = next((i for i in items if i.state == db.POSTED), None)
        rows.append({"subreddit": entry.subreddit, "every_hours": entry.every_hours,
                     "hours_of_day": entry.hours_of_day, "next": entry.next_opening(now, taken),
                     "pending": _item_row(pending) if pending else None,
                     "last": _item_row(last) if last else None})
    return rows


def job_runs(config, bot):
    """The last run of each job that ran for this bot, newest first (shared/state/runs.py)."""
    rows = []
    for job, by_bot in runs.last_runs(config.db).items():
        record = by_bot.get(bot.name) or by_bot.get("*")
        if record:
            rows.append({"job": job, **record})
    return sorted(rows, key=lambda r: -(r.get("started_at") or 0))


def failed_attempts(bot, limit):
    query = (db.PostAttempt.select(db.PostAttempt, db.Item).join(db.Item)
             .where((db.Item.bot == bot.name) & db.PostAttempt.outcome.in_(FAILED_ATTEMPTS))
             .order_by(db.PostAttempt.started_at.desc()).limit(limit))
    return [{"item": _item_row(a.item), "outcome": a.outcome, "reason": a.reason, "at": a.started_at}
            for a in query]


def _next_retry(bot):
    row = (db.Item.select(db.Item.retry_at).where((db.Item.bot == bot.name) & db.Item.retry_at.is_null(False) &
                                                  db.Item.state.in_((db.GENERATED, db.POSTING)))
           .order_by(db.Item.retry_at).first())
    return row.retry_at if row else None


# --------------------------------------------------------------------------- conversations

def conversation_id(item):
    """The conversation an item belongs to: its own post once posted, the post it is in, or the
    message itself (a DM has no post). ``_conversation_sql`` is the same rule in SQL."""
    if item.is_submission:
        return item.result
    return item.thread or item.key


def _conversation_sql():
    return pw.Case(None, [(db.Item.is_submission, db.Item.result)], pw.fn.COALESCE(db.Item.thread, db.Item.key))


def conversations(bot, limit=MAX_CONVERSATIONS):
    """The threads (and DMs) the bot has items in, most recently active first, with how many of
    its items are in each state there. Grouped by SQLite: a bot may have a month of items."""
    conversation = _conversation_sql()
    counts = [pw.fn.SUM(pw.Case(None, [(db.Item.state == state, 1)], 0)).alias(state) for state in db.STATES]
    query = (db.Item.select(conversation.alias("id"), pw.fn.MAX(db.Item.updated_at).alias("last"),
                            pw.fn.MAX(db.Item.subreddit).alias("subreddit"),
                            pw.fn.MAX(pw.Case(None, [(db.Item.is_submission, db.Item.title)])).alias("own_title"),
                            *counts)
             .where((db.Item.bot == bot.name) & conversation.is_null(False))
             .group_by(conversation).order_by(pw.SQL("last").desc()).limit(limit).dicts())
    found = [{"id": row["id"], "last": row["last"], "subreddit": row["subreddit"], "title": row["own_title"],
              "own": row["own_title"] is not None, "author": None,
              "states": {state: row[state] for state in db.STATES if row[state]}} for row in query]
    things = db.things(entry["id"] for entry in found)
    for entry in found:
        thing = things.get(entry["id"])
        if thing is not None:
            entry["title"] = thing.title or cli.preview(thing.body)
            entry["subreddit"] = thing.subreddit or entry["subreddit"]
            entry["author"] = thing.author
    return found


def conversation(config, bot, thread_id):
    """A thread as reddit shows it, with the bot's decisions and candidates on each item."""
    if thread_id.startswith("t4_"):
        chain = [_thing_dict(t) for t in db.ancestry(thread_id, 50)]
        comments, root = chain, None
        items = _items_keyed(bot, [db.Item.key.in_([t["fullname"] for t in chain] or [""])])
    else:
        root_thing = db.Thing.get_or_none(db.Thing.fullname == thread_id)
        root = _thing_dict(root_thing) if root_thing else None
        comments = [_thing_dict(t) for t in db.Thing.select().where(db.Thing.submission == thread_id)
                    .order_by(db.Thing.created_utc.desc()).limit(MAX_THREAD_ITEMS)]
        # one indexed query each: its items in the thread, the post itself, its own post
        items = _items_keyed(bot, [db.Item.thread == thread_id, db.Item.key == thread_id,
                                   (db.Item.state == db.POSTED) & (db.Item.result == thread_id)])
    if root is None and not comments and not items:
        raise NotFound(f"no conversation {thread_id} for {bot.name} in the state DB")
    own = next((i for i in items.values() if i["is_submission"]), None)
    if root is None and own is not None:       # the bot's own post, not fetched back yet
        root = _thing_dict(fullname=thread_id, title=own["title"], body=own["text"] or "", author=bot.name,
                           subreddit=own["subreddit"], created_utc=own["posted_at"], is_link=own["is_link"])
    known = {t["fullname"] for t in comments} | ({root["fullname"]} if root else set())
    for item in items.values():                # replies posted since the last fetch
        if item["result"] and item["result"] not in known and not item["is_submission"]:
            comments.append(_thing_dict(fullname=item["result"], parent=item["key"], author=bot.name,
                                        body=item["text"] or "", created_utc=item["posted_at"],
                                        submission=thread_id))
    if root is None and thread_id.startswith("t3_"):
        root = _thing_dict(fullname=thread_id, title="(the post is not in the cache)", body="", missing=True)
    things = ([root] if root else []) + comments
    for thing in things:
        thing["mine"] = (thing.get("author") or "").lower() == bot.name.lower()
        thing["item"] = items.get(thing["fullname"])
        thing["url"] = _url(config, thing["fullname"], thing.get("submission") or thread_id)
    if thread_id.startswith("t4_"):
        top, nested = None, _chain(things)
    else:
        top, nested = shape.tree(things, thread_id)
    return {"id": thread_id, "root": top.thing if top else None, "comments": nested,
            "own": own, "count": len(comments), "cut": len(comments) >= MAX_THREAD_ITEMS}


def _chain(things):
    """A DM chain as nested nodes, each message under the one it answers."""
    nodes = [shape.Node(t) for t in things]
    for parent, child in zip(nodes, nodes[1:]):
        parent.children.append(child)
    return nodes[:1]


def _items_keyed(bot, conditions):
    """{fullname: item row} of ``bot``'s items meeting any of ``conditions`` (and its own post
    under the fullname it was posted as), with their decisions and candidate counts."""
    items = {}
    for condition in conditions:
        items.update((i.id, i) for i in db.Item.select().where((db.Item.bot == bot.name) & condition))
    items = sorted(items.values(), key=lambda i: i.id)
    decisions = _decisions([i.id for i in items])
    counts = _candidate_counts([i.id for i in items])
    keyed = {}
    for item in items:
        row = _item_row(item)
        row["decision"] = decisions.get(item.id)
        row["candidates"] = counts.get(item.id, 0)
        keyed[item.key] = row
        if item.is_submission and item.result:
            keyed[item.result] = row
    return keyed


def _decisions(item_ids):
    found = {}
    for start in range(0, len(item_ids), 500):
        for decision in db.Decision.select().where(db.Decision.item.in_(item_ids[start:start + 500])):
            found[decision.item_id] = decision
    items = {i.id: i for i in db.Item.select(db.Item.id, db.Item.state, db.Item.reason)
             .where(db.Item.id.in_(list(found)))} if found else {}
    return {item_id: _decision_row(d, items[item_id]) for item_id, d in found.items()}


def _decision_row(decision, item):
    outcome = shape.outcome_of(item.state == db.SKIPPED, (item.reason or "").startswith(CAP_PREFIX),
                               decision.probability <= 0)
    explained = shape.breakdown(decision.probability, decision.draw, decision.reasons,
                                "queued" if outcome == "queued" else "skipped", item.reason)
    return {"probability": decision.probability, "draw": decision.draw, "outcome": outcome,
            "breakdown": explained, "at": decision.decided_at}


def _candidate_counts(item_ids):
    if not item_ids:
        return {}
    query = (db.Candidate.select(db.Candidate.item, pw.fn.COUNT(db.Candidate.id).alias("n"))
             .where(db.Candidate.item.in_(item_ids)).group_by(db.Candidate.item))
    return {row.item_id: row.n for row in query}


# --------------------------------------------------------------------------- one item

def item_detail(config, bot, item_id):
    """One item: what it answers, the decision, every candidate with its verdict, post attempts."""
    item = db.Item.get_or_none((db.Item.id == item_id) & (db.Item.bot == bot.name))
    if item is None:
        raise NotFound(f"no item {item_id} of {bot.name} in the state DB")
    row = _item_row(item)
    row["prompt"] = item.prompt
    decision = db.Decision.get_or_none(db.Decision.item == item)
    row["decision"] = _decision_row(decision, item) if decision else None
    row["candidate_list"] = [
        {"n": n, "raw": c.raw, "accepted": c.accepted, "reason": c.reason, "at": c.created_at,
         "verdict": verdict(c.accepted, c.reason)}
        for n, c in enumerate(db.Candidate.select().where(db.Candidate.item == item)
                              .order_by(db.Candidate.id), start=1)]
    row["candidates"] = len(row["candidate_list"])
    row["attempts"] = [{"outcome": a.outcome or "unknown (looked up before any retry)", "reason": a.reason,
                        "result": a.result, "started": a.started_at, "finished": a.finished_at}
                       for a in db.PostAttempt.select().where(db.PostAttempt.item == item)
                       .order_by(db.PostAttempt.started_at, db.PostAttempt.id)]
    row["context"] = [] if item.is_submission else [
        {**_thing_dict(t), "url": _url(config, t.fullname, t.submission)} for t in db.ancestry(item.key, 7)]
    row["conversation"] = conversation_id(item)
    return row


def verdict(accepted, reason):
    """A candidate's verdict in words: accepted, not needed, or the filter that rejected it."""
    if accepted:
        return "accepted"
    if reason == "not needed":
        return "not needed: an earlier candidate passed"
    return f"rejected: {reason}"


# --------------------------------------------------------------------------- activity

def activity(bot, now, days):
    """Replies and posts per hour, and decisions per hour by outcome, over the last ``days`` days."""
    hours = days * 24
    start = (math.floor(now / 3600) - hours + 1) * 3600
    posted = list(db.Item.select(db.Item.key, db.Item.posted_at)
                  .where((db.Item.bot == bot.name) & (db.Item.state == db.POSTED) & (db.Item.posted_at >= start)))
    replies = [i.posted_at for i in posted if not i.key.startswith(db.SUBMISSION_PREFIX)]
    own = [i.posted_at for i in posted if i.key.startswith(db.SUBMISSION_PREFIX)]
    hour = (db.Decision.decided_at / 3600).cast("INTEGER")
    skipped, capped, zero = (db.Item.state == db.SKIPPED), db.Item.reason.startswith(CAP_PREFIX), \
        (db.Decision.probability <= 0)
    decided = (db.Decision.select(hour.alias("hour"), skipped.alias("skipped"), capped.alias("capped"),
                                  zero.alias("zero"), pw.fn.COUNT(db.Decision.id).alias("n"))
               # an item moves on when it is decided, so updated_at >= decided_at: lets SQLite
               # start from the recently updated items instead of all of the bot's
               .join(db.Item).where((db.Item.bot == bot.name) & (db.Item.updated_at >= start) &
                                    (db.Decision.decided_at >= start))
               .group_by(hour, skipped, capped, zero).dicts())
    by_outcome = {name: [0] * hours for name in shape.OUTCOMES}
    for row in decided:
        index = row["hour"] - int(start // 3600)
        if 0 <= index < hours:
            by_outcome[shape.outcome_of(bool(row["skipped"]), bool(row["capped"]), bool(row["zero"]))][index] += row["n"]
    labels = [shape.when(start + h * 3600)[5:16] for h in range(hours)]      # "06-01 12:00"
    ticks = shape.hour_ticks(start, hours)
    return {
        "days": days, "start": start,
        "posted_chart": charts.bars(labels, [("replies", shape.hourly(replies, start, hours)),
                                             ("posts", shape.hourly(own, start, hours))],
                                    title=f"replies and posts per hour, last {days} days (UTC)", y_label="posted",
                                    ticks=ticks),
        "decisions_chart": charts.bars(labels, list(by_outcome.items()),
                                       title=f"decisions per hour by outcome, last {days} days (UTC)",
                                       y_label="decisions", ticks=ticks),
        "totals": {"replies": len(replies), "posts": len(own),
                   **{name: sum(counts) for name, counts in by_outcome.items()}},
    }


# --------------------------------------------------------------------------- models and sync

def model_dirs(config):
    """Folders that may hold a finetune run: those under finetune.output_dir, and each bot's
    model folder and the one above it (a run folder holds best_model/)."""
    here = Path(config.path).resolve().parent if config.path else Path.cwd()
    output = here / config.finetune.output_dir
    found = sorted(p for p in output.iterdir() if p.is_dir()) if output.is_dir() else []
    for bot in config.bots:
        found += [Path(bot.model), Path(bot.model).parent]
    unique = []
    for path in found:
        if path.resolve() not in [u.resolve() for u in unique]:
            unique.append(path)
    return unique


def models(config):
    """Each finetune run found (``model_dirs``) with training_progress_scores.csv: its eval-loss
    curve, best eval loss, and the bots that load it."""
    result = []
    for folder in model_dirs(config):
        if not (folder / PROGRESS_CSV).is_file():
            continue
        try:
            rows = progress_history(folder, math.inf)
        except (OSError, ValueError, csv.Error) as exc:
            result.append({"path": str(folder), "name": folder.name, "error": f"{PROGRESS_CSV}: {exc}"})
            continue
        evals = [(r["global_step"], r.get("eval_loss")) for r in rows if r.get("eval_loss") is not None]
        trains = [(r["global_step"], r.get("train_loss")) for r in rows if r.get("train_loss") is not None]
        best = min(evals, key=lambda p: p[1]) if evals else None
        users = [b.name for b in config.bots
                 if Path(b.model).resolve() in (folder.resolve(), (folder / BEST_MODEL).resolve())]
        result.append({"path": str(folder), "name": folder.name, "error": None, "best": best, "evaluations": len(evals),
                       "last_step": rows[-1]["global_step"] if rows else None, "bots": users,
                       "chart": charts.lines([("eval loss", evals), ("train loss", trains)],
                                             title=f"{folder.name}: loss by training step",
                                             x_label="global step", y_label="loss")})
    return result


def snapshots(config):
    """The snapshots in the configured bucket or folder, newest first, and the local DB's base."""
    if not replica.enabled(config):
        return {"enabled": False, "local_problem": None}
    storage = replica.storage_for(config)
    found = sorted(replica.snapshots(config), key=lambda s: -s.generation)
    return {"enabled": True, "where": storage.describe(), "keep": config.snapshots.keep, "local_problem": None,
            "snapshots": [{"generation": s.generation, "size": s.size, "modified": s.modified} for s in found]}


def local_generation():
    """The snapshot generation the local DB is based on (None: never synced), read read-only."""
    table = replica.STATE_TABLE
    exists = db.database.execute_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                     (table,)).fetchone()
    if not exists:
        return None
    row = db.database.execute_sql(f"SELECT generation FROM {table} WHERE id = 1").fetchone()
    return row[0] if row else None


# --------------------------------------------------------------------------- rows

def _item_row(item):
    return {"id": item.id, "key": item.key, "source": item.source, "state": item.state,
            "subreddit": item.subreddit, "thread": item.thread, "is_submission": item.is_submission,
            "is_link": item.is_link, "title": item.title, "text": item.text, "reason": item.reason,
            "result": item.result, "posted_at": item.posted_at, "updated_at": item.updated_at,
            "created_at": item.created_at, "retry_at": item.retry_at, "gen_attempts": item.gen_attempts,
            "post_attempts": item.post_attempts, "target_author": item.target_author,
            "conversation": conversation_id(item)}


THING_FIELDS = ("fullname", "subreddit", "author", "author_flair", "title", "body", "parent", "submission",
                "created_utc", "is_link", "locked", "removed", "deleted")


def _thing_dict(thing=None, **fields):
    """A Thing as a dict with every field the templates read: from the cache, or made up from
    an item (``from_item``: the bot's own post or reply, not fetched back yet)."""
    row = {name: getattr(thing, name, None) for name in THING_FIELDS}
    row.update(fields, from_item=thing is None and not fields.get("missing"), missing=bool(fields.get("missing")))
    return row


def _url(config, fullname, submission):
    """{"href", "text"}: a link to the thing on reddit; on a sandbox (or another endpoint) no link
    but its address there, since the local sandbox answers only API clients with a token."""
    url = shape.reddit_url(fullname, submission)
    if url is None:
        return None
    if config.reddit_endpoint:
        parts = urlsplit(config.reddit_endpoint)
        base = urlunsplit((parts.scheme, (parts.hostname or "") + (f":{parts.port}" if parts.port else ""),
                           parts.path.rstrip("/"), "", ""))       # never a user:password@ in a page
        return {"href": None, "text": base + url.split("reddit.com", 1)[1]}
    return {"href": url, "text": "on reddit"}


