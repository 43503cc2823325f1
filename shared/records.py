"""One raw reddit object, of any era and any source, as a training-DB row.

The dumps (2005–2025), the Pushshift API (2021 v3.0 and the 2022 rewrite,
which PullPush follows), Arctic Shift and reddit's own API all write
submissions and comments as JSON objects, but fields come and go and change
type between them. ``normalise`` turns any of them into one flat dict whose
keys are the columns of ``shared/training/corpus.py``. Pure: plain data in,
plain data out; no I/O, no clock.

Usage::

    from shared.records import RecordError, normalise

    row = normalise({"id": "g58knth", "link_id": "t3_isiqrk", "parent_id": 35145205214, ...})
    row["kind"]        # "comment"
    row["parent_id"]   # "t1_g58jhlq": the 2022 API's integer parent, as a fullname
    row["link_id"]     # "isiqrk": the post's bare id, the Submission primary key

What varies, and what each column becomes:

* ``created_utc``: an int, a string (2009–2014 dumps), a float (2024 dumps,
  reddit's API) or, rarely, milliseconds. Always a float of seconds here.
* ``parent_id``: ``"t1_x"``/``"t3_x"`` in dumps and the 2021 API; in the 2022
  API an integer (``int(id36, 36)``) for replies and null for top-level
  comments. Always a ``t1_``/``t3_`` fullname here; null becomes the post.
* ``link_id``: ``"t3_x"`` (an integer in some API answers): the bare id here.
* ``id``: the bare base-36 id (from ``name`` when ``id`` is missing).
* ``subreddit``: lower-cased for lookups; ``subreddit_name`` keeps reddit's case.
* ``author``: None when deleted (``"[deleted]"``, missing or null).
* ``is_self``: missing in the oldest submissions: a ``self.SUB`` domain or a
  self text means a self post.
* ``score``: missing in a few eras: ``ups - downs``, else 0.
* ``deleted`` / ``removed``: the text is gone. Deleted: ``[deleted]`` text,
  the ``[deleted by user]`` title of 2021+ dumps, ``removed_by_category``
  ``deleted``/``author``. Removed: ``[removed]``, ``[ Removed by Reddit ]``,
  any other ``removed_by_category`` (moderator, reddit, automod_filtered...),
  or a ``banned_by``.
* Titles and bodies are unescaped: dumps and the archive APIs carry reddit's
  escaped text (``&amp;``, ``&lt;``, ``&gt;``), while the bot reads reddit
  with ``raw_json=1`` (PRAW always sends it) and sees ``&``, ``<``, ``>``.
  Training text must look like what the bot will be prompted with. Lone
  UTF-16 surrogates (in some dump lines) become U+FFFD, since SQLite cannot
  store them.
* Ignored: ``retrieved_on``/``retrieved_utc``/``updated_utc``, ``_meta``
  (Arctic Shift's second fetch: its restored text is simply the text),
  ``body_html``, ``replies``, and every other field.

``normalise`` raises ``RecordError`` (a ValueError) naming what is missing
or wrong; reddit's ``{"kind": "more"}`` placeholders are not records and
give None.
"""

from __future__ import annotations

import re

SUBMISSION = "submission"
COMMENT = "comment"
KINDS = (SUBMISSION, COMMENT)

DELETED = "[deleted]"
REMOVED = "[removed]"
DELETED_TITLE = "[deleted by user]"          # 2021+: what reddit shows for a deleted post
_REMOVED_BY_REDDIT = re.compile(r"^\[\s*removed by reddit", re.IGNORECASE)
_DELETED_CATEGORIES = {"deleted", "author"}  # removed_by_category when the author did it

_BASE36 = re.compile(r"^[0-9a-z]+$")
_FULLNAME = re.compile(r"^t([13])_([0-9a-z]+)$")
_PERMALINK_SUBREDDIT = re.compile(r"^/?r/([^/]+)/")

SUBMISSION_COLUMNS = ("id", "subreddit", "subreddit_name", "author", "title", "selftext", "url",
                      "is_self", "over_18", "score", "created_utc", "deleted", "removed")
COMMENT_COLUMNS = ("id", "subreddit", "subreddit_name", "author", "body", "score", "created_utc",
                   "parent_id", "link_id", "deleted", "removed")


class RecordError(ValueError):
    """A JSON object that cannot be read as a submission or a comment."""


# --- small converters -----------------------------------------------------------------

def base36(number: int) -> str:
    """``int(id36, 36)`` undone: ``base36(35145205214) == "g58jhlq"``."""
    if number < 0:
        raise RecordError(f"negative id {number}")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def unescape(text: str) -> str:
    """Undo reddit's escaping of text bodies: only these three entities, ``&amp;`` last."""
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clean_text(value) -> str:
    """A string SQLite can store: None becomes "", lone surrogates U+FFFD."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Surrogate pairs written as two \\u escapes join up; lone halves are replaced.
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _number(value, field: str) -> float:
    if isinstance(value, bool):
        raise RecordError(f"{field} is {value!r}, expected a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise RecordError(f"{field} is {value!r}, expected a number")


def timestamp(value) -> float:
    """Seconds since the epoch from an int, a float or a string (milliseconds too)."""
    seconds = _number(value, "created_utc")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise RecordError(f"created_utc is {value!r}")
    # No post is dated after the year 5138: anything that big counts milliseconds.
    return seconds / 1000.0 if seconds > 1e11 else seconds


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _score(raw: dict) -> int:
    if raw.get("score") is not None:
        try:
            return int(_number(raw["score"], "score"))
        except RecordError:
            pass
    try:
        return int(_number(raw.get("ups") or 0, "ups") - _number(raw.get("downs") or 0, "downs"))
    except RecordError:
        return 0


def bare_id(value, field: str) -> str:
    """The base-36 id in ``value``: ``"t3_abc"``, ``"abc"`` or the integer ``int("abc", 36)``."""
    if isinstance(value, bool):
        raise RecordError(f"{field} is {value!r}")
    if isinstance(value, int):
        return base36(value)
    if isinstance(value, str):
        text = value.strip().lower()
        match = _FULLNAME.match(text)
        if match:
            return match.group(2)
        if _BASE36.match(text):
            return text
    raise RecordError(f"{field} is {value!r}, expected a reddit id")


def _parent_fullname(value, link_id: str) -> str:
    if value is None or value == "":
        return "t3_" + link_id                 # 2022 API: null parent = top-level comment
    if isinstance(value, str):
        match = _FULLNAME.match(value.strip().lower())
        if match:
            return f"t{match.group(1)}_{match.group(2)}"
    parent = bare_id(value, "parent_id")
    # A bare or integer parent (2022 API) is a comment, unless it is the post itself.
    return ("t3_" if parent == link_id else "t1_") + parent


def _author(value) -> str | None:
    if not isinstance(value, str):
        return None
    value = clean_text(value).strip()
    return None if value in ("", DELETED) else value


def _subreddit(raw: dict) -> str:
    name = raw.get("subreddit")
    if isinstance(name, dict):                         # reddit API objects sometimes embed it
        name = name.get("display_name")
    if not name:
        name = raw.get("subreddit_name_prefixed")
    if not name:
        match = _PERMALINK_SUBREDDIT.match(str(raw.get("permalink") or ""))
        name = match.group(1) if match else None
    if not isinstance(name, str) or not name.strip():
        raise RecordError("no subreddit")
    name = clean_text(name).strip()
    for prefix in ("/r/", "r/"):
        name = name.removeprefix(prefix)
    return name


def gone(texts, raw: dict) -> tuple[bool, bool]:
    """(deleted, removed): whether a post's or comment's text is gone, and who took it.

    The one rule for every source (the live API, dumps, archives): deleted by its author
    (``[deleted]`` text, the ``[deleted by user]`` title of 2021+, ``removed_by_category``
    deleted/author), or removed by moderators or reddit (``[removed]``, ``[ Removed by
    Reddit ]``, any other ``removed_by_category``, ``banned_by``). ``texts`` are the
    item's title and body (or its body); ``raw`` the object's other fields.
    """
    stripped = [t.strip() for t in texts]
    deleted = DELETED in stripped or DELETED_TITLE in stripped
    removed = REMOVED in stripped or any(_REMOVED_BY_REDDIT.match(t) for t in stripped)
    category = raw.get("removed_by_category")
    if isinstance(category, str) and category:
        if category.lower() in _DELETED_CATEGORIES:
            deleted = True
        else:
            removed = True
    if raw.get("banned_by") not in (None, False, ""):
        removed = True
    return deleted, removed


# --- the record ---------------------------------------------------------------------------

def unwrap(raw):
    """A reddit ``{"kind": "t1", "data": {...}}`` wrapper's object; other objects as they are."""
    if isinstance(raw, dict) and isinstance(raw.get("data"), dict) and isinstance(raw.get("kind"), str):
        return raw["data"], raw["kind"]
    return raw, None


def kind_of(raw: dict, hint: str | None = None) -> str | None:
    """``"submission"``, ``"comment"``, or None for objects that are neither.

    The fields decide; ``hint`` (where the object came from) only when they cannot.
    """
    name = raw.get("name")
    if isinstance(name, str) and name[:3] in ("t1_", "t3_"):
        return COMMENT if name.startswith("t1_") else SUBMISSION
    if "title" in raw or "selftext" in raw or "is_self" in raw:
        return SUBMISSION
    if "body" in raw or "link_id" in raw or "parent_id" in raw:
        return COMMENT
    return hint if hint in KINDS else None


def normalise(raw, kind: str | None = None) -> dict | None:
    """The DB row of one raw object: a dict with ``kind`` and the table's columns.

    ``kind`` ("submission"/"comment") is a hint from where the object came from
    (a ``_comments`` dump, a comments endpoint), used when the fields cannot tell.
    Returns None for reddit's ``"more"`` placeholders. Raises RecordError.
    """
    raw, wrapper_kind = unwrap(raw)
    if wrapper_kind == "more" or (isinstance(raw, dict) and "children" in raw and "count" in raw
                                  and "body" not in raw):
        return None
    if not isinstance(raw, dict):
        raise RecordError(f"a JSON {type(raw).__name__}, expected an object")
    if wrapper_kind in ("t1", "t3"):
        kind = COMMENT if wrapper_kind == "t1" else SUBMISSION
    kind = kind_of(raw, kind)
    if kind is None:
        raise RecordError("neither a submission nor a comment (no title, body or link_id)")

    source_id = raw.get("id") if raw.get("id") not in (None, "") else raw.get("name")
    if source_id in (None, ""):
        raise RecordError("no id")
    if "created_utc" not in raw or raw["created_utc"] in (None, ""):
        raise RecordError("no created_utc")
    subreddit = _subreddit(raw)
    row = {
        "kind": kind,
        "id": bare_id(source_id, "id"),
        "subreddit": subreddit.lower(),
        "subreddit_name": subreddit,
        "author": _author(raw.get("author")),
        "score": _score(raw),
        "created_utc": timestamp(raw["created_utc"]),
    }
    if kind == SUBMISSION:
        return _submission(raw, row)
    return _comment(raw, row)


def _submission(raw: dict, row: dict) -> dict:
    title = unescape(clean_text(raw.get("title")))
    selftext = unescape(clean_text(raw.get("selftext")))
    url = raw.get("url")
    if "is_self" in raw and raw["is_self"] is not None:
        is_self = _flag(raw["is_self"])
    else:
        domain = str(raw.get("domain") or "")
        is_self = domain.lower().startswith("self.") or bool(selftext)
    deleted, removed = gone((title, selftext), raw)
    row.update(title=title, selftext=selftext, url=clean_text(url) if url else None, is_self=is_self,
               over_18=_flag(raw.get("over_18", False)), deleted=deleted, removed=removed)
    return row


def _comment(raw: dict, row: dict) -> dict:
    if raw.get("link_id") in (None, ""):
        raise RecordError("no link_id")
    link_id = bare_id(raw["link_id"], "link_id")
    body = unescape(clean_text(raw.get("body")))
    deleted, removed = gone((body,), raw)
    row.update(body=body, parent_id=_parent_fullname(raw.get("parent_id"), link_id), link_id=link_id,
               deleted=deleted, removed=removed)
    return row


# --- comment trees --------------------------------------------------------------------------

def flatten_tree(items) -> tuple[list[dict], list[str]]:
    """The comments of a reddit-style tree, flat, and the ids of its ``"more"`` placeholders.

    ``items`` are comment objects, bare or wrapped (``{"kind": "t1", "data": ...}``),
    whose ``replies`` may hold a Listing (``{"kind": "Listing", "data":
    {"children": [...]}}``) or a list; ``/api/comments/tree`` answers so.
    """
    comments, more = [], []
    stack = list(reversed(list(items or ())))
    while stack:
        item, kind = unwrap(stack.pop())
        if not isinstance(item, dict):
            continue
        if kind == "more" or ("children" in item and "body" not in item):
            more.extend(str(c) for c in item.get("children") or () if isinstance(c, (str, int)))
            continue
        replies = item.get("replies")
        if isinstance(replies, dict):
            replies = (replies.get("data") or {}).get("children")
        comments.append({k: v for k, v in item.items() if k != "replies"})
        if isinstance(replies, list):
            stack.extend(reversed(replies))
    return comments, more
