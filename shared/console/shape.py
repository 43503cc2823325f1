"""What the console's pages show, shaped from plain rows: pure logic, no DB, no clock.

    breakdown(0.2, 0.13, ["base -0.10", "human author +0.30", "age 0.0h x1.00"], "queued")
    tree(things, root="t3_a")              # comments nested under their parents
    hourly(times, start, hours)            # counts per hour
    ago(3700.0)                            # "1 h ago"

The reasons a decision stores are the ones shared/bot/decide.py writes ("human author
+0.30", "age 2.0h x0.92", "cap per_hour reached (10/10)"); ``breakdown`` lays them out
as a sum, and shows any reason it does not recognise as it is.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

_TERM = re.compile(r"^(?P<rule>.+?) (?P<term>[+-]\d+(?:\.\d+)?)$")
_FACTOR = re.compile(r"^(?P<rule>age .+?) x(?P<factor>\d+(?:\.\d+)?)$")

# How a decision ended, for the activity plot: the item was queued, or skipped because a
# rule made it impossible (p = 0), a cap was reached, or the draw said no.
OUTCOMES = ("queued", "skipped: draw", "skipped: cap", "skipped: p = 0")


@dataclass
class Breakdown:
    rows: list = field(default_factory=list)   # (rule, effect text), in the order decide applied them
    total: float | None = None                  # the sum of the weights, when every term was read
    probability: float = 0.0
    draw: float = 1.0
    verdict: str = ""


def breakdown(probability, draw, reasons, outcome, reason=None):
    """How ``probability`` was reached, rule by rule, and what the draw made of it."""
    result = Breakdown(probability=probability, draw=draw)
    total, complete, capped = 0.0, True, None
    for text in reasons or []:
        term, factor = _TERM.match(text), _FACTOR.match(text)
        if factor:
            result.rows.append((factor["rule"], f"× {float(factor['factor']):.2f}"))
        elif term:
            total += float(term["term"])
            result.rows.append((term["rule"], term["term"]))
        elif text.startswith("cap "):
            capped = text
            result.rows.append((text, "blocks"))
        else:
            complete = False
            result.rows.append((text, ""))
    if complete and any(_TERM.match(text) for text in reasons or []):
        result.total = total
    if outcome == "queued":
        result.verdict = f"draw {draw:.2f} < p {probability:.2f}: queued"
    elif capped:
        result.verdict = f"skipped: {capped}"
    elif probability <= 0:
        result.verdict = f"skipped: p = 0 ({reason or (reasons or ['?'])[0]})"
    else:
        result.verdict = f"draw {draw:.2f} ≥ p {probability:.2f}: skipped"
    return result


def outcome_of(skipped, capped, zero):
    """Which of ``OUTCOMES`` a decision was: queued, or skipped by a cap, by a rule that made
    p = 0, or by the draw."""
    if not skipped:
        return OUTCOMES[0]
    if capped:
        return OUTCOMES[2]
    return OUTCOMES[3] if zero else OUTCOMES[1]


@dataclass
class Node:
    thing: dict
    children: list = field(default_factory=list)


def tree(things, root):
    """The comments of a thread nested under their parents: (the root's Node or None, top-level
    Nodes). ``things`` are dicts with ``fullname``, ``parent``, ``created_utc``; a comment whose
    parent is missing from ``things`` is shown at the top level rather than lost."""
    nodes = {t["fullname"]: Node(t) for t in things}
    top = []
    for node in sorted(nodes.values(), key=lambda n: (n.thing.get("created_utc") or 0, n.thing["fullname"])):
        if node.thing["fullname"] == root:
            continue
        parent = nodes.get(node.thing.get("parent"))
        (top if parent is None or parent.thing["fullname"] == root else parent.children).append(node)
    return nodes.get(root), top


def hourly(times, start, hours):
    """How many of ``times`` (epoch seconds) fall in each of the ``hours`` hours from ``start``."""
    counts = [0] * hours
    for at in times:
        index = int((at - start) // 3600)
        if 0 <= index < hours:
            counts[index] += 1
    return counts


def hour_ticks(start, hours, most=8):
    """(index, text) under an hourly axis from ``start`` (a whole hour): at round hours, at most
    ``most`` of them, the date ('06-01') at midnight and the hour ('12:00') elsewhere (UTC)."""
    step = next(s for s in (1, 2, 3, 6, 12, 24, 48, 72, 168, 336) if hours / s <= most or s == 336)
    ticks = []
    for index in range(hours + 1):
        at = start + index * 3600
        if (at // 3600) % step == 0:
            stamp = time.gmtime(at)
            ticks.append((index, time.strftime("%m-%d", stamp) if stamp.tm_hour == 0 else f"{stamp.tm_hour:02d}:00"))
    return ticks


def when(at):
    """Epoch seconds as '2025-06-01 12:00 UTC' (empty for None)."""
    return "" if at is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def ago(seconds):
    """A duration as people say it: 'just now', '5 min ago', '3 h ago', '2 days ago'."""
    if seconds is None:
        return ""
    future = seconds < -30
    seconds = abs(seconds)
    if seconds < 60:
        text = "just now" if not future else "in under a minute"
        return text
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = int(seconds // size)
            name = "day" if unit == "days" and amount == 1 else unit
            return f"in {amount} {name}" if future else f"{amount} {name} ago"
    return ""


def size(n):
    """Bytes as '1.2 MB'."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def reddit_url(fullname, submission=None):
    """reddit.com's page for a post (t3_), a comment (t1_, in ``submission``) or a message (t4_)."""
    kind, _, ident = fullname.partition("_")
    if kind == "t3":
        return f"https://www.reddit.com/comments/{ident}/"
    if kind == "t1" and submission:
        return f"https://www.reddit.com/comments/{submission.partition('_')[2]}/_/{ident}/"
    if kind == "t4":
        return f"https://www.reddit.com/message/messages/{ident}"
    return None
