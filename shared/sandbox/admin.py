"""The sandbox's back door: moderator/admin actions, seeding and read helpers for tests.

``Sandbox`` (and ``RemoteSandbox``, over HTTP) expose these methods; every name in
``ACTIONS`` is also ``POST /_sandbox/<name>`` with a JSON object of the keyword
arguments, answering ``{"result": ...}``::

    sb.lock("t3_100001")                     # replies now get HTTP 403
    sb.remove("t1_100002")                   # body shows "[removed]", author kept
    sb.delete("t1_100002")                   # author and body show "[deleted]"
    sb.ban("test", "bot1")                   # 403 on comment/submit in r/test
    sb.ban_domain("example.org")             # links there: DOMAIN_BANNED on /api/submit
    sb.set_created("t3_100001", time.time() - 200 * 86400)   # now archived: TOO_OLD
    sb.set_user_flair("test", "bot1", "Verified GPT-2 Bot")
    sb.add_link_flair("test", "flair-uuid", "Discussion")
    post = sb.submit("alice", "test", "title", selftext="text")   # seeding, no HTTP
    sb.comment("bob", post["name"], "hello u/alice")
    sb.comments_by("bot1")                   # newest first, deleted/removed included

Results are the ``data`` dicts of reddit's JSON (a comment's ``body``, ``name``, ...).
Reddit-level failures raise ``SandboxError`` carrying reddit's answer.
"""

import json

from .replies import ApiError


class SandboxError(Exception):
    """A seeding or admin call that reddit would have refused; ``status``/``body`` say how."""

    def __init__(self, status, body):
        super().__init__(f"reddit answered {status}: {body!r}")
        self.status = status
        self.body = body


ACTIONS = (
    "lock", "unlock", "remove", "approve", "delete", "ban", "unban", "ban_domain", "unban_domain", "set_created",
    "set_user_flair", "add_link_flair", "revoke_tokens", "create_account",
    "submit", "comment", "message", "reply_message", "thing", "comments_by", "submissions_by",
    "replies_to", "inbox",
)


class Admin:
    """Mixin: needs ``self.api`` (api.Api) and ``self.faults`` (faults.Faults)."""

    # -- moderation -------------------------------------------------------------------
    def lock(self, fullname):
        return self._flag(fullname, locked=1)

    def unlock(self, fullname):
        return self._flag(fullname, locked=0)

    def remove(self, fullname):
        """Removed by a moderator: gone from listings, body ``[removed]``."""
        return self._flag(fullname, removed=1)

    def approve(self, fullname):
        return self._flag(fullname, removed=0)

    def delete(self, fullname):
        """Deleted as if by its author: author and body ``[deleted]``."""
        return self._flag(fullname, deleted=1)

    def set_created(self, fullname, epoch):
        return self._flag(fullname, created_utc=float(epoch))

    def _flag(self, fullname, **fields):
        row = self._call(self.api.thing_or_404, fullname)
        self.api.store.update_thing(f"{row['kind']}_{row['id']}", **fields)
        return self.thing(fullname)

    def ban(self, subreddit, username):
        self.api.store.set_ban(subreddit, username, True)

    def unban(self, subreddit, username):
        self.api.store.set_ban(subreddit, username, False)

    def ban_domain(self, domain, reason="banned domain"):
        """Links to ``domain`` (and its subdomains) are refused with DOMAIN_BANNED."""
        self.api.store.ban_domain(domain, reason)

    def unban_domain(self, domain):
        self.api.store.ban_domain(domain, "", banned=False)

    def set_user_flair(self, subreddit, username, text):
        """``author_flair_text`` of ``username`` in ``subreddit`` (None clears it)."""
        self.api.store.set_user_flair(subreddit, username, text)

    def add_link_flair(self, subreddit, template_id, text):
        """Register a link flair template: posts with this ``flair_id`` show ``text``."""
        self.api.store.set_link_flair(subreddit, template_id, text)

    def revoke_tokens(self, username=None):
        """Forget access tokens (one account's, or all): clients get 401 and log in again."""
        return self.api.store.revoke_tokens(username)

    def create_account(self, username, password="pw"):
        store = self.api.store
        account = store.account(username) or store.create_account(username, password, self.api.now())
        return {"name": account["name"], "id": account["id"]}

    # -- seeding (the same rules as over HTTP, without a token) -----------------------
    def submit(self, author, subreddit, title, selftext="", url=None, flair_id=None,
               flair_text=None, nsfw=False, send_replies=True, poll_options=None):
        """A post; ``poll_options`` (a list of texts) makes it a poll (seeding only: the
        sandbox does not serve /api/submit_poll_post)."""
        form = {"sr": subreddit, "title": title, "kind": "link" if url else "self",
                "text": selftext or "", "url": url or "", "flair_id": flair_id or "",
                "flair_text": flair_text or "", "nsfw": str(nsfw), "sendreplies": str(send_replies)}
        answer = self._call(self.api.submit, self._account(author), form)
        name = answer["json"]["data"]["name"]
        if poll_options:
            self.api.store.update_thing(name, poll_options=json.dumps(list(poll_options)))
        return self.thing(name)

    def comment(self, author, parent, body):
        answer = self._call(self.api.comment, self._account(author), {"thing_id": parent, "text": body})
        return answer["json"]["data"]["things"][0]["data"]

    def message(self, author, to, subject, body):
        """A new private message; returns it as its recipient's inbox shows it."""
        self._call(self.api.compose, self._account(author), {"to": to, "subject": subject, "text": body})
        row = self.api.store.by_author(author, "t4")[0]
        return self.api.render_inbox(row, row["dest"], self.api.store.inbox_entry(row["dest"], f"t4_{row['id']}"))["data"]

    def reply_message(self, author, parent, body):
        """``author``'s reply to the message ``parent`` (a t4 fullname), as its recipient sees it."""
        answer = self._call(self.api.comment, self._account(author), {"thing_id": parent, "text": body})
        return answer["json"]["data"]["things"][0]["data"]

    def _account(self, name):
        self.create_account(name)
        return self.api.store.account(name)

    def _call(self, function, *args):
        try:
            return function(*args)
        except ApiError as error:
            raise SandboxError(error.reply.status, error.reply.body) from None

    # -- reading ----------------------------------------------------------------------
    def thing(self, fullname):
        """A t1/t3/t4 as reddit shows it (``data`` dict), or None."""
        row = self.api.store.thing(fullname)
        return self.api.render(row)["data"] if row else None

    def comments_by(self, username):
        return [self.api.render(row, view="listing")["data"]
                for row in self.api.store.by_author(username, "t1")]

    def submissions_by(self, username):
        return [self.api.render(row)["data"] for row in self.api.store.by_author(username, "t3")]

    def replies_to(self, fullname):
        """Direct replies to a thing, oldest first."""
        return [self.api.render(row)["data"] for row in self.api.store.replies_to(fullname)]

    def inbox(self, username, unread_only=False):
        """``username``'s inbox items as /message/inbox shows them, newest first."""
        account = self.api.store.account(username) or {"name": username}
        where = "unread" if unread_only else "inbox"
        body = self.api.inbox_listing(account, where, {"limit": 100})
        return [child["data"] for child in body["data"]["children"]]

