"""The HTTP answers reddit gives, as plain values the sandbox's HTTP layer sends.

A ``Reply`` is a status, a JSON-able body (or raw bytes/str, or ``None`` for an
empty body) and extra headers. Reddit semantics code raises ``ApiError(reply)``
to answer with an error instead of a result::

    raise ApiError(forbidden())
    raise ApiError(form_error("DELETED_COMMENT", "that comment has been deleted", "parent"))

The bodies copy the recorded ones in ``tests/data/reddit_api`` (forbidden_403.json,
not_found_404.json, me_401_invalid_token.json, me_429_with_retry_after.json, ...).
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> sent as is; None -> empty body
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json; charset=UTF-8"
    # Reddit's CDN answers 5xx without rate-limit headers (21 of 22 recorded 5xx).
    ratelimit_headers: bool = True


class ApiError(Exception):
    """Raised by the reddit semantics to answer with ``reply`` instead of a result."""

    def __init__(self, reply):
        super().__init__(f"{reply.status} {reply.body!r}")
        self.reply = reply


def envelope(errors=(), data=None):
    """Reddit's ``api_type=json`` form envelope: ``{"json": {"errors": [...], "data": ...}}``."""
    body = {"errors": [list(e) for e in errors]}
    if data is not None:
        body["data"] = data
    return {"json": body}


# Known form-error triples, verbatim from error_envelopes_observed_in_the_wild.json and
# reddit's source; faults and the semantics both use them, so one table.
FORM_ERRORS = {
    "RATELIMIT": ("Looks like you've been doing that a lot. Take a break for 51 seconds "
                  "before trying again.", "ratelimit"),
    "THREAD_LOCKED": ("Comments are locked.", "parent"),
    "DELETED_COMMENT": ("that comment has been deleted", "parent"),
    "DELETED_LINK": ("the link you are commenting on has been deleted", "parent"),
    "TOO_OLD": ("that's a piece of history now; it's too late to reply to it", "parent"),
    "USER_REQUIRED": ("Please log in to do that.", None),
    "INVALID_USER": ("That user is invalid", "to"),
    "NO_TEXT": ("we need something here", "text"),
    "TOO_LONG": ("this is too long", "text"),
    "NO_URL": ("a url is required", "url"),
    "ALREADY_SUB": ("that link has already been submitted", "url"),
    "SUBREDDIT_NOEXIST": ("that community doesn't exist", "sr"),
    "INVALID_OPTION": ("that option is not valid", "kind"),
    # reddit's source: r2/r2/lib/errors.py ("%(domain)s is not allowed on reddit: %(reason)s"),
    # on the "url" field of POST /api/submit (r2/r2/controllers/api.py, POST_submit).
    # Api.submit fills in the banned domain and the ban's reason.
    "DOMAIN_BANNED": ("that domain is not allowed on reddit: banned", "url"),
}


def form_error(code, message=None, field=None):
    """HTTP 200 with one ``[code, message, field]`` triple, as reddit sends form errors."""
    default_message, default_field = FORM_ERRORS.get(code, (code.lower().replace("_", " "), None))
    return Reply(200, envelope([(code, message or default_message, field or default_field)]))


def ratelimit_message(seconds):
    """Reddit's current RATELIMIT wording; PRAW parses the number and unit out of it."""
    return f"Looks like you've been doing that a lot. Take a break for {seconds} seconds before trying again."


def unauthorized():
    return Reply(401, {"message": "Unauthorized", "error": 401},
                 {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'})


def forbidden():
    return Reply(403, {"message": "Forbidden", "error": 403})


def not_found():
    return Reply(404, {"message": "Not Found", "error": 404})


def bad_request():
    return Reply(400, {"message": "Bad Request", "error": 400})


TOO_MANY_REQUESTS_HTML = """
<!doctype html>
<html>
  <head>
    <title>Too Many Requests</title>
  </head>
  <body>
    <h1>whoa there, pardner!</h1>
<p>we're sorry, but you appear to be a bot and we've seen too many requests
from you lately. we enforce a hard speed limit on requests that appear to come
from bots to prevent abuse.</p>
<p>please wait {seconds} second(s) and try again.</p>
  </body>
</html>
"""


def too_many_requests(retry_after=4):
    """HTTP 429 with ``retry-after`` and reddit's HTML body (me_429_with_retry_after.json)."""
    return Reply(429, TOO_MANY_REQUESTS_HTML.format(seconds=retry_after),
                 {"retry-after": str(retry_after)}, "text/html; charset=UTF-8")


def server_error(status=500):
    """5xx with an empty body and no rate-limit headers, as recorded (server_error_*_retries.json)."""
    return Reply(status, None, {}, ratelimit_headers=False)


def http_error(status):
    """The body reddit sends with a bare HTTP error ``status``."""
    if status == 401:
        return unauthorized()
    if status == 403:
        return forbidden()
    if status == 404:
        return not_found()
    if status == 429:
        return too_many_requests()
    if status >= 500:
        return server_error(status)
    return Reply(status, {"message": "Error", "error": status})
