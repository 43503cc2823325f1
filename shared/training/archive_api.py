"""HTTP clients for the reddit archive APIs: Arctic Shift and Pushshift-compatible ones (PullPush).

Pushshift's public API closed in 2023. Arctic Shift is its maintained
successor (its own routes); PullPush serves the 2022 Pushshift API's routes
and answers. Both page by ``created_utc``: ask for items after a time, sorted
oldest first, then ask again after the newest one seen (``pages``).

Usage::

    from shared.training.archive_api import ArcticShift, PushshiftCompatible, pages

    api = ArcticShift("https://arctic-shift.photon-reddit.com")
    for items, cursor in pages(lambda after, before: api.search("posts", "science", after, before),
                               after=1600000000):
        ...   # store items; resume later with after=cursor

What every request does, so callers need not:

* 429 and 5xx answers, timeouts and dropped connections are retried with
  exponential backoff (2, 4, 8… s), waiting what ``Retry-After`` asks when it
  is given (seconds or an HTTP date), up to ``max_wait`` per wait; after
  ``retries`` retries it raises ``ArchiveUnavailable`` (one line, exit 1).
* Arctic Shift's ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset``: when the
  budget is spent, the client sleeps until the reset before the next request.
* An answer that is an HTML page (a wrong base URL, a captive portal, a
  proxy's error page) or anything else that is not JSON raises
  ``InputError`` naming the URL and the fix; so does a 4xx answer.
* A JSON ``error`` of the "Query timed out" / "slow down" kind is retried
  like a 5xx; other ``error`` texts raise ``InputError``.

Base URLs come from the config (``training.arctic_shift_url``,
``training.pushshift_url``) or ``--url``, so tests point them at local
stand-in servers.
"""

from __future__ import annotations

import email.utils
import logging
import time

import requests

from shared.errors import InputError, SsiBotError
from shared.records import RecordError, timestamp

log = logging.getLogger("archive_api")

USER_AGENT = "ssi-bot/1.0 (training-data download; +https://github.com/zacc/ssi-bot)"
PAGE_SIZE = 100          # the most both APIs return per search request
IDS_PER_REQUEST = 100


class ArchiveUnavailable(SsiBotError):
    """The archive kept failing (5xx, 429, timeouts) through every retry: try again later."""


def pause(seconds):
    """Sleep; one place, so tests can replace it."""
    time.sleep(seconds)


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _looks_transient(error: str) -> bool:
    text = error.lower()
    return "timed out" in text or "timeout" in text or "slow down" in text or "try again" in text


class ArchiveClient:
    """GET JSON from one archive API with retries, backoff and rate-limit pauses."""

    name = "archive API"
    example_url = ""

    def __init__(self, base_url, *, session=None, retries=5, backoff=2.0, max_wait=300.0, timeout=60.0):
        if not base_url or not str(base_url).startswith(("http://", "https://")):
            raise InputError(f"{self.name} base URL {base_url!r}: expected http(s)://HOST "
                             f"(e.g. {self.example_url}); set it with --url or in the config")
        self.base_url = str(base_url).rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self.retries, self.backoff, self.max_wait, self.timeout = retries, backoff, max_wait, timeout
        self.requests = 0

    # --- one request ------------------------------------------------------------------------

    def get(self, path, params=None):
        """The JSON object at ``base_url + path``; retried, rate-limited, checked."""
        url = self.base_url + path
        problem = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                self._wait(wait, f"{problem}; retry {attempt}/{self.retries}")
            wait = self.backoff * 2 ** attempt
            try:
                self.requests += 1
                response = self.session.get(url, params=params, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{url}: {type(exc).__name__}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"{url}: HTTP {response.status_code}"
                asked = _retry_after(response)
                if asked is not None:
                    if asked > self.max_wait:
                        raise ArchiveUnavailable(f"{self.name} at {self.base_url} asks to wait {asked:.0f}s "
                                                 f"(HTTP {response.status_code}); run again later, it resumes")
                    wait = asked
                continue
            body = self._json(response, url)
            if response.status_code >= 400:
                detail = body.get("detail") or body.get("error") or body.get("message") if isinstance(body, dict) else None
                raise InputError(f"{url} answered HTTP {response.status_code}"
                                 f"{f' ({detail})' if detail else ''}: check the base URL "
                                 f"({self.base_url}) and the arguments")
            error = body.get("error") if isinstance(body, dict) else None
            if error:
                if _looks_transient(str(error)):
                    problem = f"{url}: {error}"
                    continue
                raise InputError(f"{self.name} at {self.base_url} refused the query: {error}")
            self._respect_rate_limit(response)
            return body
        raise ArchiveUnavailable(f"{self.name} at {self.base_url} kept failing ({problem}) after "
                                 f"{self.retries} retries; run again later, it resumes where it stopped")

    def _json(self, response, url):
        content_type = response.headers.get("Content-Type", "")
        text = response.text
        if "html" in content_type.lower() or text.lstrip()[:1] == "<":
            raise InputError(f"{url} answered an HTML page (HTTP {response.status_code}), not JSON: is "
                             f"{self.base_url} the {self.name}'s base URL? (e.g. {self.example_url}; "
                             "set --url or the config)")
        try:
            body = response.json()
        except ValueError:
            raise InputError(f"{url} answered something that is not JSON (HTTP {response.status_code}: "
                             f"{text[:60]!r}): is {self.base_url} the {self.name}'s base URL?") from None
        if not isinstance(body, dict):
            raise InputError(f"{url} answered a JSON {type(body).__name__}, expected an object with 'data'")
        return body

    def _wait(self, seconds, why):
        seconds = min(max(0.0, seconds), self.max_wait)
        log.warning("%s: waiting %.0fs (%s)", self.name, seconds, why)
        pause(seconds)

    def _respect_rate_limit(self, response):
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset = response.headers.get("X-RateLimit-Reset")
        if remaining is None or reset is None:
            return
        try:
            remaining, reset = float(remaining), float(reset)
        except ValueError:
            return
        if remaining > 0:
            return
        # Seconds until the reset, or (seen on some servers) the reset's epoch time.
        seconds = reset - time.time() if reset > 1e9 else reset
        if seconds > 0:
            self._wait(seconds, "rate limit spent until the reset")

    def _data(self, body, url_hint):
        data = body.get("data")
        if not isinstance(data, list):
            raise InputError(f"{self.base_url}{url_hint} answered JSON without a 'data' list: is it the "
                             f"{self.name}? (e.g. {self.example_url})")
        return data


class ArcticShift(ArchiveClient):
    """https://arctic-shift.photon-reddit.com: ``/api/{posts,comments}/search``, ``/ids``, ``/api/comments/tree``."""

    name = "Arctic Shift"
    example_url = "https://arctic-shift.photon-reddit.com"
    kinds = {"posts": "submission", "comments": "comment"}

    def search(self, kind, subreddit, after=None, before=None, limit=PAGE_SIZE):
        """Items of ``kind`` ("posts"/"comments") in r/``subreddit`` created after ``after``, oldest first."""
        params = {"subreddit": subreddit, "limit": limit, "sort": "asc"}
        if after is not None:
            params["after"] = int(after)
        if before is not None:
            params["before"] = int(before)
        path = f"/api/{kind}/search"
        return self._data(self.get(path, params), path)

    def by_ids(self, kind, ids):
        """The items of ``kind`` with these ids (bare or prefixed), in requests of 100."""
        found = []
        ids = list(ids)
        path = f"/api/{kind}/ids"
        for start in range(0, len(ids), IDS_PER_REQUEST):
            found += self._data(self.get(path, {"ids": ",".join(ids[start:start + IDS_PER_REQUEST])}), path)
        return found

    def tree(self, link_id, limit=25_000):
        """The comment tree of post ``link_id`` (bare id): reddit-style nested items."""
        path = "/api/comments/tree"
        return self._data(self.get(path, {"link_id": f"t3_{link_id}", "limit": limit}), path)


class PushshiftCompatible(ArchiveClient):
    """A server speaking the Pushshift API (PullPush): ``/reddit/search/{submission,comment}/``."""

    name = "Pushshift-compatible API"
    example_url = "https://api.pullpush.io"
    kinds = {"posts": "submission", "comments": "comment"}

    def search(self, kind, subreddit, after=None, before=None, limit=PAGE_SIZE):
        """Items of ``kind`` ("posts"/"comments") in r/``subreddit`` created after ``after``, oldest first."""
        params = {"subreddit": subreddit, "size": limit, "sort": "asc", "sort_type": "created_utc"}
        if after is not None:
            params["after"] = int(after)
        if before is not None:
            params["before"] = int(before)
        path = f"/reddit/search/{self.kinds[kind]}/"
        return self._data(self.get(path, params), path)


# --- paging -----------------------------------------------------------------------------------

def _created(item) -> float | None:
    raw = item.get("data") if isinstance(item.get("data"), dict) else item
    try:
        return timestamp(raw.get("created_utc"))
    except RecordError:
        return None


def pages(search, after=None, before=None, name="the API"):
    """Yield ``(items, cursor)`` pages of ``search(after, before)`` until an empty page.

    ``cursor`` is where to resume: the next request's ``after``. It trails the
    newest item by one second, because several items can share a second and a
    page may end among them; the overlap is fetched twice and stored once.
    Raises InputError when the server does not sort oldest first (paging
    would then skip items).
    """
    cursor = after
    while True:
        items = search(after=cursor, before=before)
        if not items:
            return
        stamps = [s for s in map(_created, items) if s is not None]
        if not stamps:
            raise InputError(f"{name} answered items without created_utc: it cannot be paged")
        if any(a > b for a, b in zip(stamps, stamps[1:])):
            raise InputError(f"{name} did not sort its answer oldest first (sort=asc): paging by "
                             "created_utc would skip items; is the base URL right?")
        newest = stamps[-1]
        if cursor is not None and newest <= cursor:
            log.warning("%s ignored 'after=%s' (its newest item is older): stopping here", name, cursor)
            return
        overlap = newest - 1
        cursor = overlap if cursor is None or overlap > cursor else newest
        yield items, cursor
