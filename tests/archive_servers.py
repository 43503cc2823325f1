"""Local stand-ins for the archive APIs (Arctic Shift, Pushshift/PullPush), for tests.

Each is a stdlib ``http.server`` in a thread on a free port, serving real
recorded objects from tests/data/pushshift/ in the real response
envelopes: Pushshift's 2022 ``{"data": [...], "error": null, "metadata":
{...}}`` (the metadata copied from pushshift_api_envelopes.json) and Arctic
Shift's ``{"data": [...]}`` with ``X-RateLimit-Remaining`` /
``X-RateLimit-Reset`` headers.

Usage::

    with ArcticShiftServer(posts, comments) as server:
        server.fail(Fault(429, retry_after="2"), Fault(503))   # the next two requests
        ...  # point the client at server.url
        server.requests    # [(path, {param: value}), ...]

Faults are consumed one per request, in order: a status with an optional
``Retry-After``, or an HTML page (``Fault(200, html=True)``, what a wrong base
URL or a captive portal answers). ``server.fault_on[7] = Fault(...)`` answers
the 7th request so. ``server.html_always = True`` makes every
answer HTML. Searches honour ``subreddit`` (any case), ``after``/``before``
(exclusive, epoch seconds), ``sort`` and the page size, and sort by
``created_utc`` then ``id`` as the real services do.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

REALDATA = Path(__file__).resolve().parent / "data" / "pushshift"


def read_ndjson(name):
    """The objects of one real NDJSON file in REALDATA."""
    with (REALDATA / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def envelopes():
    return json.loads((REALDATA / "pushshift_api_envelopes.json").read_text(encoding="utf-8"))["examples"]


def real_posts():
    """Every real submission: r/science (2021 and 2022 APIs) and the r/funny thread's post."""
    thread = read_ndjson("thread_3hahrw_reddit_api.ndjson")
    return (read_ndjson("pushshift_api_science_submissions.ndjson")
            + read_ndjson("pushshift_api_2022_science_submissions_sample.ndjson") + thread[:1])


def real_comments():
    """Every real comment: r/science (2022 API), r/anime (2021 API), the r/funny thread."""
    thread = read_ndjson("thread_3hahrw_reddit_api.ndjson")
    return (read_ndjson("pushshift_api_science_comments.ndjson")
            + read_ndjson("pushshift_api_2021_comments_by_ids.ndjson") + thread[1:])


@dataclass
class Fault:
    """One bad answer: ``status`` with an optional Retry-After, or an HTML page."""

    status: int = 503
    retry_after: str | None = None
    html: bool = False


HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Welcome</title></head>"
             b"<body><h1>It works!</h1><p>This is not an API.</p></body></html>")


def _created(item):
    return float(item.get("created_utc") or 0)


class _Server:
    page_max = 100

    def __init__(self, posts=(), comments=()):
        self.posts = sorted(posts, key=lambda i: (_created(i), str(i.get("id"))))
        self.comments = sorted(comments, key=lambda i: (_created(i), str(i.get("id"))))
        self.faults = []
        self.fault_on = {}        # request number (1-based) -> Fault
        self.requests = []
        self.html_always = False
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server._handle(self)

            def log_message(self, *args):   # keep test output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    def fail(self, *faults):
        """Answer the next requests with these faults, one each, in order."""
        with self._lock:
            self.faults.extend(faults)

    # --- answering ------------------------------------------------------------------------------

    def _send(self, handler, status, body, content_type="application/json; charset=UTF-8", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _handle(self, handler):
        parts = urlsplit(handler.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.requests.append((parts.path, params))
            fault = self.fault_on.get(len(self.requests)) or (self.faults.pop(0) if self.faults else None)
        if self.html_always or (fault and fault.html):
            self._send(handler, fault.status if fault else 200, HTML_PAGE, "text/html; charset=utf-8")
            return
        if fault:
            headers = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
            self._send(handler, fault.status, {"error": f"HTTP {fault.status}"}, headers=headers)
            return
        answer = self.route(parts.path.rstrip("/"), params)
        if answer is None:
            self._send(handler, 404, {"detail": "Not Found"})    # FastAPI's answer, as recorded
            return
        status, body, headers = answer
        self._send(handler, status, body, headers=headers)

    def search(self, items, params, size):
        sub = params.get("subreddit", "").lower()
        after = float(params["after"]) if params.get("after") else None
        before = float(params["before"]) if params.get("before") else None
        found = [i for i in items
                 if (not sub or str(i.get("subreddit", "")).lower() == sub)
                 and (after is None or _created(i) > after) and (before is None or _created(i) < before)]
        if params.get("sort", "asc") in ("desc",) or params.get("order") == "desc":
            found.reverse()
        return found[:min(size, self.page_max)]

    def route(self, path, params):
        raise NotImplementedError


class ArcticShiftServer(_Server):
    """``/api/posts/search``, ``/api/comments/search``, ``/api/{posts,comments}/ids``, ``/api/comments/tree``.

    ``rate_limit`` is the X-RateLimit-Remaining of each answer in turn
    (then it stays at the last); ``reset`` is X-RateLimit-Reset (seconds).
    """

    def __init__(self, posts=(), comments=(), rate_limit=(1000,), reset=60):
        super().__init__(posts, comments)
        self.rate_limit, self.reset = list(rate_limit), reset

    def _headers(self):
        with self._lock:
            remaining = self.rate_limit.pop(0) if len(self.rate_limit) > 1 else self.rate_limit[0]
        return [("X-RateLimit-Remaining", str(remaining)), ("X-RateLimit-Reset", str(self.reset))]

    def route(self, path, params):
        items = {"posts": self.posts, "comments": self.comments}
        for kind, pool in items.items():
            if path == f"/api/{kind}/search":
                limit = params.get("limit", "25")
                size = 1000 if limit == "auto" else int(limit)
                return 200, {"data": self.search(pool, params, size)}, self._headers()
            if path == f"/api/{kind}/ids":
                wanted = {i.strip().lower().split("_")[-1] for i in params.get("ids", "").split(",") if i.strip()}
                return 200, {"data": [i for i in pool if i.get("id") in wanted]}, self._headers()
        if path == "/api/comments/tree":
            if not params.get("link_id"):
                return 400, {"error": "link_id is required"}, []
            return 200, {"data": self.tree(params["link_id"], int(params.get("start_depth", 4)))}, self._headers()
        return None

    def tree(self, link_id, start_depth):
        """Reddit-style nested comments; below ``start_depth`` a ``more`` listing every id left out."""
        link_id = link_id if link_id.startswith("t3_") else f"t3_{link_id}"
        mine = [c for c in self.comments if c.get("link_id") == link_id]
        children = {}
        for comment in mine:
            children.setdefault(comment.get("parent_id"), []).append(comment)

        def descendants(fullname):
            out = []
            for child in children.get(fullname, ()):
                out.append(child["id"])
                out += descendants(f"t1_{child['id']}")
            return out

        def build(fullname, depth):
            kids = children.get(fullname, ())
            if not kids:
                return []
            if depth >= start_depth:
                return [{"kind": "more", "data": {"count": len(kids), "children": descendants(fullname),
                                                  "parent_id": fullname, "depth": depth}}]
            out = []
            for kid in kids:
                item = copy.deepcopy(kid)
                replies = build(f"t1_{kid['id']}", depth + 1)
                item["replies"] = {"kind": "Listing", "data": {"children": replies}} if replies else ""
                out.append({"kind": "t1", "data": item})
            return out

        return build(link_id, 0)


class PushshiftServer(_Server):
    """``/reddit/search/{submission,comment}/`` (PullPush) and ``/reddit/{submission,comment}/search``.

    Answers in the December 2022 envelope recorded from api.pushshift.io.
    """

    def route(self, path, params):
        kinds = {"submission": self.posts, "comment": self.comments}
        for kind, pool in kinds.items():
            if path in (f"/reddit/search/{kind}", f"/reddit/{kind}/search"):
                size = int(params.get("size") or params.get("limit") or 25)
                data = self.search(pool, params, size)
                body = copy.deepcopy(envelopes()["comment_search_2022_api"]["response"]["body"])
                body["data"] = data
                body["metadata"]["es"]["hits"]["total"]["value"] = len(data)
                return 200, body, []
        return None
