"""``RemoteSandbox``: drive a sandbox in another process through its /_sandbox admin API.

Same admin and read methods as ``Sandbox`` (admin.ACTIONS), plus ``faults``::

    rs = RemoteSandbox("http://127.0.0.1:8765")
    rs.faults.add("http", status=503, path="/api/comment", times=3)
    rs.lock("t3_100001")
    bot = rs.reddit("bot1")

Uses only the standard library, like the server.
"""

import inspect
import json
import urllib.error
import urllib.request

from .admin import ACTIONS, Admin, SandboxError
from .sandbox import praw_reddit


def _call(url, method, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")["result"]
    except urllib.error.HTTPError as error:
        body = error.read()
        raise SandboxError(error.code, json.loads(body) if body else None) from None


class RemoteFaults:
    def __init__(self, url):
        self._url = url + "/_sandbox/faults"

    def add(self, kind, **settings):
        """Same arguments as faults.Faults.add; returns the fault as a dict."""
        return _call(self._url, "POST", {"kind": kind, **settings})

    def pending(self):
        return _call(self._url, "GET")

    def clear(self):
        return _call(self._url, "DELETE")


class RemoteSandbox:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.faults = RemoteFaults(self.url)

    def __getattr__(self, name):
        if name not in ACTIONS:
            raise AttributeError(name)
        signature = inspect.signature(getattr(Admin, name))

        def action(*args, **kwargs):
            # Positional arguments become keywords, named as in Admin.
            bound = signature.bind(None, *args, **kwargs)
            return _call(f"{self.url}/_sandbox/{name}", "POST", dict(list(bound.arguments.items())[1:]))

        return action

    def healthy(self):
        try:
            return _call(f"{self.url}/_sandbox/health", "GET")["ok"]
        except OSError:
            return False

    def reddit(self, username=None, password="pw", **praw_kwargs):
        return praw_reddit(self.url, username, password, **praw_kwargs)
