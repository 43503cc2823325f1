"""A local reddit for tests, the offline demo and bot rehearsals: real PRAW talks to it.

    from shared.sandbox import Sandbox
    with Sandbox() as sb:                      # or Sandbox(db_path="state.db").start()
        reddit = sb.reddit("alice")            # praw.Reddit with oauth_url/reddit_url = sb.url
        reddit.subreddit("test").submit("title", selftext="text")
        sb.faults.add("ratelimit", path="/api/comment")

Command line: ``python -m shared.sandbox --port 8765 --db state.db``. Another process
drives it with ``RemoteSandbox(url)`` (the /_sandbox admin API). Only the standard
library is needed to serve; ``Sandbox.reddit`` imports PRAW when called.

Modules: server.py (HTTP, routing, auth), api.py (reddit's rules), store.py (SQLite),
things.py (reddit-shaped JSON), faults.py (fault injection), ratelimit.py (x-ratelimit
headers), replies.py (reddit's error answers), admin.py (admin and read helpers),
remote.py (the admin API client).
"""

from .admin import ACTIONS, SandboxError
from .faults import Fault
from .remote import RemoteSandbox
from .sandbox import Sandbox, praw_reddit

__all__ = ["ACTIONS", "Fault", "RemoteSandbox", "Sandbox", "SandboxError", "praw_reddit"]
