"""Fault injection: make the next matching request(s) fail the way reddit fails.

A fault matches by HTTP method (``None``: any), path prefix on whole segments (``/r/test``
matches ``/r/test/new``, not ``/r/testing``; trailing ``/`` and ``.json`` ignored) and,
optionally, the account behind the token. It fires ``times`` times (``None``: until
cleared), first added first. Kinds::

    faults.add("ratelimit", path="/api/comment", seconds=51)        # 200 RATELIMIT envelope
    faults.add("ratelimit", message="you are doing that too much. try again in 4 minutes.")
    faults.add("form_error", path="/api/comment", error="THREAD_LOCKED")   # or a triple
    faults.add("http", status=403, path="/api/comment", user="bot1")  # 401/403/404/429/5xx
    faults.add("http", status=429, retry_after=4)                     # + retry-after, HTML body
    faults.add("accept_then_hang", path="/api/comment", delay=30)     # write done, answer late
    faults.add("accept_then_hang", path="/api/comment", drop=True)    # write done, no answer

``accept_then_hang`` lets the request run (the comment is stored and visible to others),
then holds the answer ``delay`` seconds, or closes the connection without one.
"""

import threading
from dataclasses import asdict, dataclass

from .replies import Reply, envelope, form_error, http_error, ratelimit_message, too_many_requests

KINDS = ("ratelimit", "form_error", "http", "accept_then_hang")
PARAMS = {  # the extra settings each kind accepts
    "ratelimit": {"seconds", "message"},
    "form_error": {"error"},
    "http": {"status", "retry_after", "body"},
    "accept_then_hang": {"delay", "drop"},
}


def normalize_path(path):
    """'/r/test/new.json/' -> '/r/test/new' (the form routes and faults both use)."""
    path = "/" + "/".join(part for part in path.split("/") if part)
    return path[: -len(".json")] if path.endswith(".json") else path


@dataclass
class Fault:
    kind: str
    path: str = "/"
    method: str = None
    times: int = 1
    user: str = None
    seconds: int = 51
    message: str = None
    error: object = None  # "CODE" or [code, message, field]
    status: int = 500
    retry_after: int = 4
    body: object = None
    delay: float = 30.0
    drop: bool = False
    fired: int = 0

    def matches(self, method, path, user):
        if self.method and self.method.upper() != method:
            return False
        if self.user and (user or "").lower() != self.user.lower():
            return False
        prefix = normalize_path(self.path)
        return prefix == "/" or path == prefix or path.startswith(prefix + "/")

    def reply(self):
        """The answer for a fault that replaces the request (all kinds but accept_then_hang)."""
        if self.kind == "ratelimit":
            message = self.message or ratelimit_message(self.seconds)
            return Reply(200, envelope([("RATELIMIT", message, "ratelimit")]))
        if self.kind == "form_error":
            if isinstance(self.error, str):
                return form_error(self.error)
            return Reply(200, envelope([tuple(self.error)]))
        if self.status == 429:
            return too_many_requests(self.retry_after)
        reply = http_error(self.status)
        if self.body is not None:
            reply.body = self.body
        return reply

    def to_dict(self):
        return asdict(self)


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []

    def add(self, kind, *, path="/", method=None, times=1, user=None, **params):
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        unknown = set(params) - PARAMS[kind]
        if unknown:
            raise ValueError(f"fault {kind!r} takes no {', '.join(sorted(unknown))}")
        if kind == "form_error" and not params.get("error"):
            raise ValueError("form_error needs error='CODE' or error=(code, message, field)")
        fault = Fault(kind, path=path, method=method, times=times, user=user, **params)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method, path, user):
        """The first live fault matching this request, counted as fired; or None."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, user):
                    fault.fired += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def pending(self):
        with self._lock:
            return list(self._faults)

    def clear(self):
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
        return count
