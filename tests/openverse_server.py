"""A local stand-in for Openverse's image search, for tests (no network here).

Answers ``GET /v1/images/?q=...&page_size=N`` as the Openverse API documents it (its
OpenAPI description at api.openverse.org/v1/, written from it without network access;
shared/bot/images.py shows the shape relied on): ``{"result_count", "page_count",
"page_size", "page", "results": [Image, ...], "warnings": []}``, each Image with id,
title, indexed_on, foreign_landing_url, url, creator, creator_url, license,
license_version, license_url, provider, source, category, filesize, filetype, tags,
attribution, fields_matched, mature, height, width, thumbnail, detail_url, related_url.
A throttled client gets HTTP 429 ``{"detail": "Request was throttled. Expected
available in N seconds."}``, as Django REST framework (which serves the API) words it.

Usage::

    with OpenverseServer({"coffee": ["https://img.example/cup.jpg", ...]}) as server:
        ...   # images.openverse_url = server.url
        server.requests        # [{"q": ..., "page_size": ...}, ...]
        server.fail(503)       # the next answer
        server.throttle()      # the next answer is a 429

A query is answered with the images of every word of it that is a key of ``images``
(all words must match, like the API's default AND of terms), after those of the key
``"*"`` (answered to any query); nothing otherwise.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


def image_result(url, title="An image", source="flickr"):
    """One result as Openverse documents it."""
    image_id = str(uuid.uuid5(uuid.NAMESPACE_URL, url))
    detail = f"https://api.openverse.org/v1/images/{image_id}/"
    return {
        "id": image_id, "title": title, "indexed_on": "2024-01-01T00:00:00Z",
        "foreign_landing_url": f"https://www.{source}.com/photos/{image_id[:8]}", "url": url,
        "creator": "someone", "creator_url": f"https://www.{source}.com/people/someone",
        "license": "by", "license_version": "2.0", "license_url": "https://creativecommons.org/licenses/by/2.0/",
        "provider": source, "source": source, "category": None, "filesize": None,
        "filetype": url.rsplit(".", 1)[-1] if "." in url.rsplit("/", 1)[-1] else None,
        "tags": [{"accuracy": None, "name": title.lower(), "unstable__provider": source}],
        "attribution": f'"{title}" by someone is licensed under CC BY 2.0.', "fields_matched": ["title"],
        "mature": False, "height": 683, "width": 1024, "thumbnail": detail + "thumb/", "detail_url": detail,
        "related_url": detail + "related/",
    }


class OpenverseServer:
    def __init__(self, images=None):
        self.images = {k.lower(): list(v) for k, v in (images or {}).items()}
        self.requests = []
        self._faults = []
        self._server = None

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, status=503, body=b"<html><body>Service Unavailable</body></html>"):
        self._faults.append((status, body, "text/html"))

    def throttle(self, seconds=60):
        body = json.dumps({"detail": f"Request was throttled. Expected available in {seconds} seconds."}).encode()
        self._faults.append((429, body, "application/json"))

    def answer(self, query, page_size):
        words = [w.lower() for w in query.split()]
        urls = list(self.images.get("*", []))
        if words and all(w in self.images for w in words):
            for word in words:
                urls += [u for u in self.images[word] if u not in urls]
        results = [image_result(u, title=query.title()) for u in urls]
        page = results[:page_size]
        return {"result_count": len(results), "page_count": -(-len(results) // page_size) if results else 0,
                "page_size": page_size, "page": 1, "results": page, "warnings": []}

    def __enter__(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                split = urlsplit(self.path)
                params = dict(parse_qsl(split.query))
                server.requests.append(params)
                if server._faults:
                    status, body, kind = server._faults.pop(0)
                elif split.path.rstrip("/") != "/v1/images":
                    status, body, kind = 404, json.dumps({"detail": "Not found."}).encode(), "application/json"
                else:
                    size = min(int(params.get("page_size", 20)), 20)
                    status, body, kind = 200, json.dumps(server.answer(params.get("q", ""), size)).encode(), \
                        "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
