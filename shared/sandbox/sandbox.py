"""``Sandbox``: a local reddit that real PRAW talks to, served from a background thread.

::

    from shared.sandbox import Sandbox

    with Sandbox() as sb:                       # in-memory state, a free port
        alice = sb.reddit("alice")              # praw.Reddit bound to the sandbox
        post = alice.subreddit("test").submit("hello", selftext="hi u/bot1")
        sb.faults.add("ratelimit", path="/api/comment")
        sb.lock(post.fullname)
        print(sb.url, sb.inbox("bot1"))

``Sandbox(db_path="state.db")`` keeps its state in a file across restarts. All admin
and read helpers (lock, remove, ban, comments_by, ...) come from admin.Admin; the same
actions are served over HTTP under /_sandbox for other processes (see remote.py).
"""

import threading

from .admin import Admin
from .api import Api
from .faults import Faults
from .ratelimit import DEFAULT_BUDGET, RateBudget
from .server import App, SandboxHTTPServer
from .store import Store


def praw_reddit(url, username=None, password="pw", **praw_kwargs):
    """A praw.Reddit for the sandbox at ``url``; no ``username``: a read-only client.

    The client id defaults to one per user, since reddit counts request budgets per
    client id. PRAW is imported here so that the server itself does not need it.
    """
    import praw

    settings = {
        "client_id": f"sandbox-{username or 'app'}", "client_secret": "sandbox-secret",
        "user_agent": f"ssi-bot sandbox client (u/{username or 'app'})",
        "oauth_url": url, "reddit_url": url, "check_for_updates": False,
    }
    if username is not None:
        settings.update(username=username, password=password)
    settings.update(praw_kwargs)
    return praw.Reddit(**settings)


class Sandbox(Admin):
    def __init__(self, db_path=None, *, host="127.0.0.1", port=0, ratelimit_budget=DEFAULT_BUDGET,
                 archive_after_days=180):
        """``archive_after_days=None``: nothing ever gets TOO_OLD to reply to."""
        self.store = Store(db_path)
        self.api = Api(self.store, archive_after_days=archive_after_days)
        self.faults = Faults()
        self.budget = RateBudget(ratelimit_budget)
        self._address = (host, port)
        self._server = None
        self._thread = None

    @property
    def url(self):
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        app = App(self.api, self.faults, self.budget)
        self._server = SandboxHTTPServer(self._address, app, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="reddit-sandbox",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def wait(self):
        """Block until the server stops (the CLI's main loop)."""
        if self._thread is not None:
            self._thread.join()

    def stop(self):
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
            self._thread = None
        self.store.close()

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *exc):
        self.stop()

    def reddit(self, username=None, password="pw", **praw_kwargs):
        """A ``praw.Reddit`` logged in as ``username`` (created on first login)."""
        return praw_reddit(self.url, username, password, **praw_kwargs)
