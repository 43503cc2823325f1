"""Reddit through PRAW: clients, plain records, and what a failure means.

The rest of ssi-bot never sees a PRAW object or exception. This module turns
PRAW objects into plain ``dict`` records (the columns of ``db.Thing``) and
PRAW/prawcore exceptions into ``shared.errors`` classes that say what to do
next (retry soon, wait N seconds, give up).

Usage::

    from shared.bot import reddit
    client = reddit.connect(bot, config)        # praw.Reddit for the bot's praw.ini section
    with reddit.translated_errors():
        comment = client.comment("abc").reply(body="hi")

Credentials come from praw.ini (section named like the bot) or PRAW's
``praw_*`` environment variables; ``config.reddit_endpoint`` points the client
at another Reddit-compatible API (the local sandbox).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import praw
import praw.config
import praw.const
import praw.exceptions
import praw.models
import prawcore
import prawcore.exceptions as core

from shared import records
from shared.errors import ConfigError, PermanentError, RateLimited, TransientError

# /api/info takes at most 100 fullnames per request; PRAW splits longer lists.
INFO_BATCH = 100

# Form-error codes that retrying cannot fix; anything else unknown is treated
# as permanent too, with its code as the reason.
_RATELIMIT_WAIT = re.compile(r"(\d+)\s*(millisecond|second|minute|hour)", re.IGNORECASE)
_UNIT_SECONDS = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600}


def _praw_ini(config):
    """PRAW's settings, with the praw.ini beside ssi-bot.yaml read in as well.

    PRAW itself looks in its package, the user's config dir and the current
    directory; crontab and cloud schedulers start jobs elsewhere, so the file
    next to the config is added to PRAW's own parser.
    """
    if praw.config.Config.CONFIG is None:
        praw.config.Config._load_config()
    parser = praw.config.Config.CONFIG
    if config is not None and config.path is not None:
        beside = Path(config.path).resolve().parent / "praw.ini"
        if beside.is_file() and beside.resolve() != Path("praw.ini").resolve():
            parser.read(beside)
    return parser


def has_credentials(site_name, config=None):
    """True when praw.ini has a section for ``site_name`` or PRAW's env vars are set."""
    if _praw_ini(config).has_section(site_name):
        return True
    return bool(os.environ.get("praw_client_id") and os.environ.get("praw_username"))


def check_credentials(config, bots):
    """ConfigError with one line per bot that has nowhere to take credentials from."""
    problems = [
        f"bot {bot.name}: no [{bot.name}] section in praw.ini (copy praw_template.ini to praw.ini beside "
        f"{config.path.name if config.path else 'ssi-bot.yaml'} and fill in the bot's client_id, "
        f"client_secret, username and password, or set PRAW's praw_client_id/praw_client_secret/"
        f"praw_username/praw_password)"
        for bot in bots if not has_credentials(bot.name, config)]
    if problems:
        raise ConfigError(problems)


class OutcomeUnknown(Exception):
    """A write whose answer never came: reddit may or may not have done it."""


# The writes that create something on reddit. Sending one twice makes two comments.
_CREATING_WRITES = ("/api/comment", "/api/submit", "/api/compose")


class WriteOnceRequestor(prawcore.Requestor):
    """prawcore resends any request after a dropped connection, a timeout or a 5xx;
    for a comment or a post that is a second copy whenever reddit had already
    taken the first (it does, under load). Such writes fail here instead, with
    an error that is not retried: the post job then looks on reddit before
    trying again."""

    def request(self, method, url, *args, timeout=None, **kwargs):
        creates = method == "POST" and str(url).split("?")[0].rstrip("/").endswith(_CREATING_WRITES)
        try:
            response = super().request(method, url, *args, timeout=timeout, **kwargs)
        except core.RequestException as exc:
            if creates and isinstance(exc.original_exception, prawcore.Session.RETRY_EXCEPTIONS):
                raise core.RequestException(OutcomeUnknown(repr(exc.original_exception)),
                                            (method, url, *args), kwargs) from None
            raise
        if creates and response.status_code in prawcore.Session.RETRY_STATUSES:
            raise core.RequestException(OutcomeUnknown(f"HTTP {response.status_code}"), (method, url, *args), kwargs)
        return response


class ReadOnlyViolation(RuntimeError):
    """A read-only client was asked to change something on reddit."""


class ReadOnlyRequestor(prawcore.Requestor):
    """Lets only reads out: every request but a GET (and the token request that logs in)
    is refused before it leaves, so a client built with it cannot post, vote, mark read
    or delete, whatever the code above it does."""

    def request(self, method, url, *args, **kwargs):
        path = str(url).split("?")[0].rstrip("/")
        if method.upper() != "GET" and not path.endswith("/api/v1/access_token"):
            raise ReadOnlyViolation(f"refused {method} {path}: this client is read-only")
        return super().request(method, url, *args, **kwargs)


def connect(bot, config, read_only=False, **overrides):
    """A praw.Reddit for ``bot``, authenticated from its praw.ini section.

    ``read_only``: a client that can only read (``ReadOnlyRequestor``), for rehearsals.
    """
    kwargs = dict(user_agent=config.user_agent.format(bot=bot.name), check_for_updates=False,
                  # We schedule rate-limited posts ourselves so one bot's wait never
                  # blocks the others: PRAW must not sleep on RATELIMIT.
                  ratelimit_seconds=0,
                  requestor_class=ReadOnlyRequestor if read_only else WriteOnceRequestor)
    if config.reddit_endpoint:
        kwargs.update(oauth_url=config.reddit_endpoint, reddit_url=config.reddit_endpoint)
    kwargs.update(overrides)
    try:
        if _praw_ini(config).has_section(bot.name):
            return praw.Reddit(site_name=bot.name, **kwargs)
        return praw.Reddit(**kwargs)
    except praw.exceptions.MissingRequiredAttributeException as exc:
        raise ConfigError(f"bot {bot.name}: praw.ini section is incomplete ({exc})") from None


# --------------------------------------------------------------------------- records

def _name(value):
    """The name of a Redditor/Subreddit attribute, which PRAW gives as an object or None.

    Read from ``vars`` only: a missing attribute on a lazy PRAW object is a request.
    """
    if value is None:
        return None
    if isinstance(value, praw.models.Subreddit):
        return vars(value)["display_name"]
    if isinstance(value, praw.models.Redditor):
        return vars(value)["name"]
    return str(value)


def thing_row(thing):
    """A plain dict with db.Thing's columns, from a PRAW Comment, Submission or Message.

    Reads only what PRAW already holds (``vars``), so it never triggers a
    lazy fetch of a missing attribute.
    """
    data = vars(thing)
    fullname = data.get("name") or thing.fullname
    author = _name(data.get("author"))
    if author == "[deleted]":
        author = None
    common = dict(
        fullname=fullname,
        subreddit=_name(data.get("subreddit")),
        author=author,
        author_flair=data.get("author_flair_text"),
        created_utc=float(data.get("created_utc") or 0),
    )
    if fullname.startswith("t3_"):
        body = data.get("selftext") or ""
        return dict(
            common, title=data.get("title") or "", body=body,
            is_link=not data.get("is_self", True),
            link_flair=data.get("link_flair_text"),
            locked=bool(data.get("locked")),
            **_gone((data.get("title") or "", body), data),
            nsfw=bool(data.get("over_18")),
            poll_options=_poll_options(data.get("poll_data")),
        )
    if fullname.startswith("t1_"):
        body = data.get("body") or ""
        return dict(
            common, body=body,
            parent=data.get("parent_id"),
            submission=_link_id(data.get("link_id")),
            depth=data.get("depth") if isinstance(data.get("depth"), int) else None,
            locked=bool(data.get("locked")),
            **_gone((body,), data),
        )
    return dict(  # t4: a private message
        common, title=data.get("subject") or "", body=data.get("body") or "",
        parent=data.get("parent_id") or None,
    )


def _poll_options(poll):
    """The option texts of a poll (PRAW's PollData, or its JSON), or None for a plain post."""
    if poll is None:
        return None
    options = poll.get("options") if isinstance(poll, dict) else getattr(poll, "options", None)
    texts = [o.get("text") if isinstance(o, dict) else getattr(o, "text", None) for o in options or ()]
    return [t for t in texts if isinstance(t, str)] or None


def _gone(texts, data):
    deleted, removed = records.gone(texts, data)
    return {"deleted": deleted, "removed": removed}


def _link_id(value):
    if value is None:
        return None
    value = str(value)
    return value if value.startswith("t3_") else f"t3_{value}"


def conversation(client, fullname):
    """Every message of the private conversation holding message ``fullname``, oldest first.

    /message/messages/ID answers the conversation's first message with all later ones in
    its ``replies`` (tests/data/reddit_api/message_conversation.json), whichever ID is asked.
    """
    listing = client.get(praw.const.API_PATH["message"].format(id=fullname.removeprefix("t4_")))
    messages = []
    for first in listing:
        messages += [first, *getattr(first, "replies", [])]
    return messages


def inbox_source(thing):
    """How an inbox item reached the bot: mention, comment_reply, post_reply or message."""
    if thing.fullname.startswith("t4_"):
        return "message"
    kind = vars(thing).get("type")
    return {"username_mention": "mention", "post_reply": "post_reply"}.get(kind, "comment_reply")


# --------------------------------------------------------------------------- failures

def ratelimit_seconds(message):
    """The wait in a RATELIMIT message ("Take a break for 51 seconds", "try again in 4 minutes")."""
    match = _RATELIMIT_WAIT.search(message or "")
    if not match:
        return 600.0  # reddit's window; unknown text must not make us hammer it
    return max(1.0, int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])


def classify(exc):
    """The shared.errors exception for a PRAW/prawcore exception (or None if not reddit's)."""
    if isinstance(exc, praw.exceptions.RedditAPIException):
        for item in exc.items:
            if item.error_type == "RATELIMIT":
                return RateLimited(ratelimit_seconds(item.message), f"RATELIMIT: {item.message}")
        first = exc.items[0]
        return PermanentError(first.error_type, f"{first.error_type}: {first.message}")
    if isinstance(exc, core.OAuthException):
        return ConfigError(f"reddit refused the bot's credentials ({exc}); check its praw.ini section")
    if isinstance(exc, core.TooManyRequests):
        return TransientError(f"HTTP 429 too many requests (retry-after {exc.retry_after})")
    if isinstance(exc, core.Forbidden):
        return PermanentError("forbidden", "forbidden (HTTP 403): banned from the subreddit, or the thread is locked")
    if isinstance(exc, core.NotFound):
        return PermanentError("not_found", "not_found (HTTP 404): the target no longer exists")
    if isinstance(exc, (core.ServerError, core.RequestException, core.InvalidToken)):
        return TransientError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, core.ResponseException):
        return PermanentError(f"http_{exc.response.status_code}", f"HTTP {exc.response.status_code}: {exc}")
    return None


@contextlib.contextmanager
def translated_errors():
    """Re-raise PRAW/prawcore exceptions as shared.errors classes."""
    try:
        yield
    except (praw.exceptions.PRAWException, core.PrawcoreException) as exc:
        translated = classify(exc)
        if translated is None:
            raise
        raise translated from exc
