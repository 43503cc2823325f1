"""Whether to answer: the reply probability, its reasons, and the spam caps.

Pure logic: plain records in, a number and readable reasons out; no clock, no
DB, no PRAW. ``jobs/decide.py`` builds a ``Situation`` from the DB, calls
``reply_probability`` and makes the one random draw.

Usage::

    p, reasons = reply_probability(situation, bot)     # bot: a config.Bot
    # p == 0.2, reasons == ['base -0.10', 'human author +0.30', 'age 0.0h x1.00']

The rules, with every weight a key of ssi-bot.yaml (``reply:``), in the
original's order (zacc/ssi-bot reddit_io/logic_mixin.py:83-203): hard zeros
first (own items, excluded authors, negative keywords, announcements, toxic
text, removed/deleted/locked, too deep), then mentions and DMs at
``mention_or_message`` (1; a toxic mention still gets 0), then a sum of
weights capped at 1 and multiplied by the post's age decay. A fresh human
top-level comment gets 0.20, a fresh human post 0.30, with a question 0.70.

Depth counts as the original did: a top-level comment is depth 1, and
comments deeper than ``max_depth`` (12) get 0. A question is a "?" or one of
the words what/how/when/why or you/your/yours/you're/u ("show", "young" and
"u/SomeoneElse" are not). The bot's bare name in the text (not a u/ mention)
adds ``bare_name``; a u/BOTNAME mention is one only where the name ends
(shared/filters.py: "u/Lovebot-fan" is not Lovebot).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.filters import KeywordMatcher, mentions, names

# The original tested substrings ('?', ' you', 'what', ...), so "your" and "young" counted as
# "you" and "show" as "how" (zacc/ssi-bot reddit_io/logic_mixin.py:182). Here: whole words.
# Words addressing the reader count ("your cat is cute" talks to the bot); "u/" starts a
# username, not the word "u".
# ("you're" is the word "you" and an apostrophe.)
_QUESTION = re.compile(r"\?|\b(?:what|how|when|why|you|your|yours|yourself|u(?!/)|ur)\b", re.IGNORECASE)
_BOT_NAME_ENDINGS = ("ssi", "bot", "gpt2")


@dataclass(frozen=True)
class Situation:
    """What decide knows about one item, as plain data."""

    bot: str
    kind: str                       # "submission", "comment" or "message"
    source: str                     # listing, mention, comment_reply, post_reply, message
    author: str | None              # None when deleted
    text: str                       # title + body for posts, body otherwise
    post_age_hours: float           # age of the post the item belongs to (a message: its own age)
    author_flair: str | None = None
    depth: int | None = None        # comments: 1 = top level, as the original counted
    post_author: str | None = None
    parent_author: str | None = None
    link_flair: str | None = None
    locked: bool = False
    removed: bool = False
    deleted: bool = False
    toxic: str | None = None        # the toxicity check's reason (shared/bot/toxicity.py), if any


def looks_like_bot(author, flair):
    """The community's bot test: 'verified gpt-2' flair, or a name ending in ssi/bot/gpt2."""
    return "verified gpt-2" in (flair or "").lower() or (author or "").lower().endswith(_BOT_NAME_ENDINGS)


def is_question(text):
    return bool(_QUESTION.search(text or ""))


def _same(a, b):
    return a is not None and b is not None and a.lower() == b.lower()


def _hard_zero(s, bot, negative):
    """The reason this item must never be answered, or None."""
    if s.author is None or s.deleted:
        return "deleted"
    if _same(s.author, s.bot):
        return "the bot's own item"
    if any(_same(s.author, name) for name in bot.excluded_authors):
        return f"excluded author {s.author}"
    words = negative.matches(s.text)
    if words:
        return f"negative keyword: {words[0]}"
    if (s.link_flair or "").strip().lower() == "announcement":
        return "announcement flair"
    if s.toxic:
        return s.toxic
    if s.removed:
        return "removed"
    if s.locked:
        return "locked"
    if s.kind == "comment" and s.depth is not None and s.depth > bot.reply.max_depth:
        return f"depth {s.depth} > {bot.reply.max_depth}"
    return None


def _age_factor(s, w):
    return max(0.0, 1.0 - s.post_age_hours / w.age_decay_hours)


def reply_probability(s, bot, positive=None, negative=None):
    """(p, reasons) for situation ``s`` under config.Bot ``bot``.

    ``positive``/``negative`` are KeywordMatchers; built from the bot's lists
    when not given (pass them in when scoring many items).
    """
    positive = positive or KeywordMatcher(bot.positive_keywords)
    negative = negative or KeywordMatcher(bot.negative_patterns())
    w = bot.reply
    zero = _hard_zero(s, bot, negative)
    if zero:
        return 0.0, [zero]

    if s.source == "message":
        return w.mention_or_message, ["private message"]
    if s.source == "mention" or mentions(s.text, s.bot):
        depth = s.depth or 1
        if depth <= w.mention_guard_depth:
            return w.mention_or_message, ["mention"]
        # Two bots that mention each other would talk forever: beyond the guard
        # depth a mention loses weight per level and with the post's age.
        p = w.mention_or_message * max(0.0, 1.0 - w.mention_decay_per_level * (depth - w.mention_guard_depth))
        age = _age_factor(s, w)
        return p * age, [f"mention at depth {depth} {p:.2f}", f"age {s.post_age_hours:.1f}h x{age:.2f}"]

    reasons = [f"base {w.base:+.2f}"]
    total = w.base

    def add(weight, why):
        nonlocal total
        total += weight
        reasons.append(f"{why} {weight:+.2f}")

    if s.kind == "comment" and s.depth and s.depth > 1:
        add(w.per_depth_level * (s.depth - 1), f"depth {s.depth}")
    if looks_like_bot(s.author, s.author_flair):
        add(w.bot_author, "bot author")
    else:
        add(w.human_author, "human author")
    matched = positive.matches(s.text)
    if matched:
        add(w.positive_keyword, f"positive keyword {matched[0]}")
    if names(s.text, s.bot):
        add(w.bare_name, "names the bot")
    replying_to_bot = s.kind == "comment" and _same(s.parent_author, s.bot)
    if s.kind == "submission":
        add(w.new_post, "new post")
    if (s.kind == "submission" or replying_to_bot) and is_question(s.text):
        add(w.question, "question")
    if replying_to_bot:
        add(w.reply_to_bot, "reply to the bot")
    if s.kind == "comment" and _same(s.post_author, s.bot):
        add(w.in_own_post, "in the bot's post")

    capped = max(0.0, min(1.0, total))
    age = _age_factor(s, w)
    reasons.append(f"age {s.post_age_hours:.1f}h x{age:.2f}")
    return round(capped * age, 6), reasons


def cap_reached(counts, caps):
    """The first spam cap that ``counts`` has reached, as a reason, or None.

    ``counts`` maps "per_hour", "per_day", "per_thread", "per_user" to how many
    replies the bot has already committed to in that window.
    """
    for name in ("per_hour", "per_day", "per_thread", "per_user"):
        limit = getattr(caps, name)
        if name in counts and counts[name] >= limit:
            return f"cap {name} reached ({counts[name]}/{limit})"
    return None
