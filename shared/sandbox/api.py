"""Reddit's semantics over the store, without HTTP: what each endpoint does and answers.

Every public method takes already-parsed arguments (the caller's account row or
``None`` for an app-only token, query/form values as strings) and returns a JSON-able
body, or raises ``ApiError`` carrying reddit's error answer. The HTTP layer
(server.py) and the Python admin API (admin.py) both call it::

    api = Api(Store(), clock=time.time)
    api.submit(alice, {"sr": "test", "kind": "self", "title": "hi", "text": "body"})
    api.comment(bob, {"thing_id": "t3_100001", "text": "hello u/alice"})

Rules mirrored from reddit: replying to a deleted comment gives DELETED_COMMENT (HTTP
200 form error), and so does a link to a banned domain (DOMAIN_BANNED, on the url); a locked submission/comment or a ban gives HTTP 403; a submission older
than ``archive_after_days`` gives TOO_OLD; replies and ``u/NAME`` mentions land in the
inbox (a reply to NAME is never also a mention of NAME, and nobody is notified of their
own comment).
"""

import re
import time
from urllib.parse import urlsplit

from . import things
from .replies import ApiError, envelope, forbidden, form_error, not_found
from .store import split_fullname

MAX_LIMIT = 100
CONTEXT_LIMIT = 8  # reddit returns at most 8 ancestors for ?context=N
MENTION = re.compile(r"(?<![\w/])/?u/([A-Za-z0-9_-]+)", re.IGNORECASE)
SUBREDDIT_NAME = re.compile(r"^[A-Za-z0-9_]{2,21}$")
INBOX_TYPES = {  # /message/WHERE -> inbox item types (None: all)
    "inbox": None, "unread": None, "mentions": ("username_mention",),
    "comments": ("comment_reply",), "selfreply": ("post_reply",), "messages": ("message",),
}


def truthy(value):
    return str(value).strip().lower() in ("1", "true", "on", "yes")


def limit_of(params, default=25):
    try:
        return max(1, min(int(params.get("limit", default)), MAX_LIMIT))
    except ValueError:
        return default


def mentioned_names(body):
    """Distinct names mentioned as u/NAME or /u/NAME, in order, case preserved."""
    seen, names = set(), []
    for match in MENTION.finditer(body):
        name = match.group(1)
        if name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    return names


class Api:
    def __init__(self, store, *, clock=time.time, archive_after_days=180):
        self.store = store
        self.clock = clock
        self.archive_after_days = archive_after_days

    def now(self):
        # Reddit's timestamps are whole seconds as floats (1750349759.0).
        return float(int(self.clock()))

    # -- rendering --------------------------------------------------------------------
    def archived(self, link):
        if self.archive_after_days is None:
            return False
        return link["created_utc"] < self.clock() - self.archive_after_days * 86400

    def render(self, row, *, view="info", depth=0, replies=None):
        """Reddit JSON for a t1/t3 row (or t4 as seen by its author)."""
        store = self.store
        account = store.account(row["author"])
        if row["kind"] == "t4":
            return things.message_json(row, account=account, new=False)
        sub = store.subreddit(row["subreddit"])
        flair = store.user_flair(row["subreddit"], row["author"])
        if row["kind"] == "t3":
            link_flair = row["flair_text"]
            if link_flair is None and row["flair_id"]:
                link_flair = store.link_flair(row["subreddit"], row["flair_id"]) or row["flair_id"]
            return things.submission_json(
                row, sub=sub, account=account, flair=flair, link_flair_text=link_flair,
                archived=self.archived(row), num_comments=store.num_comments(f"t3_{row['id']}"))
        link = store.thing(row["link_id"])
        return things.comment_json(
            row, link=link, sub=sub, account=account, flair=flair, view=view,
            archived=self.archived(link), depth=depth, replies=replies,
            num_comments=store.num_comments(row["link_id"]) if view == "listing" else 0)

    def render_inbox(self, row, owner, entry):
        account = self.store.account(row["author"])
        if row["kind"] == "t4":
            return things.message_json(row, account=account, new=entry["new"])
        link = self.store.thing(row["link_id"])
        return things.inbox_comment_json(
            row, link=link, sub=self.store.subreddit(row["subreddit"]), account=account,
            owner=owner, item_type=entry["type"], new=entry["new"],
            num_comments=self.store.num_comments(row["link_id"]))

    def page(self, where, args, params, render):
        """A reddit Listing of ``things`` rows matching ``where``, paged by params."""
        before, after = params.get("before") or None, params.get("after") or None
        rows, more, other_side = self.store.page(where, args, before=before, after=after,
                                                 limit=limit_of(params))
        children = [render(row) for row in rows]
        names = [c["data"]["name"] for c in children]
        if before:
            # Paging towards newer items: only ``before`` continues. Never set ``after``
            # here: PRAW's ListingGenerator would follow it back into older items.
            return things.listing(children, after=None, before=names[0] if more and names else None)
        return things.listing(children, after=names[-1] if more and names else None,
                              before=names[0] if other_side and names else None)

    # -- identity ---------------------------------------------------------------------
    def me(self, account, client_id):
        if account is None:
            raise ApiError(forbidden())
        return things.me_json(account, client_id=client_id,
                              inbox_count=self.store.unread_count(account["name"]))

    def user_about(self, name):
        account = self.store.account(name)
        if account is None:
            raise ApiError(not_found())
        return things.redditor_json(account)

    def subreddit_about(self, name, account=None):
        sub = self.store.subreddit(name)
        if sub is None:
            raise ApiError(not_found())
        banned = account is not None and self.store.is_banned(sub["name"], account["name"])
        return things.subreddit_json(sub, banned=banned)

    # -- listings ---------------------------------------------------------------------
    def subreddit_listing(self, subs, kind, params):
        """/r/a+b/new (kind t3) or /r/a+b/comments (kind t1), newest first."""
        where = f"kind = '{kind}' AND removed = 0 AND deleted = 0"
        names = [s for s in subs.split("+") if s]
        args = []
        if not any(n.lower() == "all" for n in names):
            where += f" AND subreddit IN ({', '.join('?' * len(names))})"
            args = names
        view = "listing" if kind == "t1" else "info"
        return self.page(where, args, params, lambda row: self.render(row, view=view))

    def user_listing(self, name, kind, params):
        """/user/NAME/comments or /submitted; a deleted thing leaves the profile."""
        if self.store.account(name) is None:
            raise ApiError(not_found())
        where = "kind = ? AND author = ? COLLATE NOCASE AND deleted = 0"
        view = "listing" if kind == "t1" else "info"
        return self.page(where, [kind, name], params, lambda row: self.render(row, view=view))

    def info(self, params):
        """/api/info?id=t1_a,t3_b: known things in the order asked, unknown ones left out."""
        children = []
        if params.get("id"):
            for fullname in params["id"].split(",")[:MAX_LIMIT]:
                row = self.store.thing(fullname.strip())
                if row is not None and row["kind"] in ("t1", "t3"):
                    children.append(self.render(row))
        elif params.get("sr_name"):
            for name in params["sr_name"].split(",")[:MAX_LIMIT]:
                sub = self.store.subreddit(name.strip())
                if sub is not None:
                    children.append(things.subreddit_json(sub))
        elif params.get("url"):
            rows = self.store.all("SELECT * FROM things WHERE kind = 't3' AND url = ? "
                                  "ORDER BY created_utc DESC, seq DESC LIMIT 100", (params["url"],))
            children = [self.render(row) for row in rows]
        return things.listing(children)

    # -- comment trees ----------------------------------------------------------------
    def thread(self, link_id, params, comment_id=None):
        """/comments/LINK[/_/COMMENT]: [Listing(t3), Listing(t1 tree)] as reddit shapes it.

        The whole tree comes back, never ``more`` stubs, whatever ``limit``/``depth`` ask
        (PRAW's replace_more() then has nothing to do). ``sort=new`` puts the newest
        sibling first; any other sort, the oldest (all sandbox scores are equal).
        With a focus comment, ``context`` (at most 8) ancestors lead down to it and
        ``depth`` counts from the first of them, as on reddit.
        """
        link = self.store.thing(f"t3_{link_id}")
        if link is None:
            raise ApiError(not_found())
        rows = self.store.comments_of(f"t3_{link['id']}")
        children = {}
        for row in rows:
            children.setdefault(row["parent_id"], []).append(row)
        if params.get("sort") == "new":
            for siblings in children.values():
                siblings.reverse()
        visible = self._visible(f"t3_{link['id']}", children)
        roots = children.get(f"t3_{link['id']}", [])
        only = None  # with a focus comment: fullname -> the one child to follow
        if comment_id:
            focus = self.store.thing(f"t1_{comment_id}")
            if focus is None or focus["link_id"] != f"t3_{link['id']}":
                roots = []
            else:
                chain = [focus]
                try:
                    context = max(0, min(int(params.get("context", 0)), CONTEXT_LIMIT))
                except ValueError:
                    context = 0
                while len(chain) <= context and chain[-1]["parent_id"].startswith("t1_"):
                    chain.append(self.store.thing(chain[-1]["parent_id"]))
                roots = [chain[-1]]
                only = {f"t1_{a['id']}": b for a, b in zip(chain[1:], chain)}
        tree = [self._tree(row, children, visible, only, 0) for row in roots
                if f"t1_{row['id']}" in visible]
        return [things.listing([self.render(link)]), things.listing(tree)]

    def _visible(self, parent, children):
        """Fullnames to show: deleted/removed comments stay only while they have replies."""
        keep = set()
        for row in children.get(parent, []):
            name = f"t1_{row['id']}"
            below = self._visible(name, children)
            keep |= below
            if below or not (row["deleted"] or row["removed"]):
                keep.add(name)
        return keep

    def _tree(self, row, children, visible, only, depth):
        name = f"t1_{row['id']}"
        kids = children.get(name, [])
        if only and name in only:
            kids = [only[name]]
        replies = [self._tree(kid, children, visible, only, depth + 1) for kid in kids
                   if f"t1_{kid['id']}" in visible]
        return self.render(row, view="tree", depth=depth, replies=things.listing(replies) if replies else "")

    # -- inbox ------------------------------------------------------------------------
    def inbox_listing(self, account, where_name, params):
        if account is None:
            raise ApiError(forbidden())
        owner = account["name"]
        if where_name == "sent":
            where, args = "kind = 't4' AND author = ? COLLATE NOCASE", [owner]
            return self.page(where, args, params, lambda row: self.render(row))
        types = INBOX_TYPES.get(where_name, ())
        where, args = self.store.inbox_filter(owner, types, unread_only=where_name == "unread")

        def render(row):
            return self.render_inbox(row, owner, self.store.inbox_entry(owner, f"{row['kind']}_{row['id']}"))

        body = self.page(where, args, params, render)
        if truthy(params.get("mark", "false")):
            self.store.mark(owner, [c["data"]["name"] for c in body["data"]["children"]], new=False)
        return body

    def conversation(self, account, message_id):
        """/message/messages/ID: ID's whole conversation, as one Listing holding its first
        message with every later one, oldest first, in that message's ``replies``
        (recorded: message_conversation.json). Only its two people may read it."""
        if account is None:
            raise ApiError(forbidden())
        row = self.store.thing(f"t4_{message_id}")
        if row is None:
            raise ApiError(not_found())
        if account["name"].lower() not in (row["author"].lower(), (row["dest"] or "").lower()):
            raise ApiError(forbidden())

        def render(message):
            entry = self.store.inbox_entry(account["name"], f"t4_{message['id']}")
            return things.message_json(message, account=self.store.account(message["author"]),
                                       new=bool(entry and entry["new"]))

        first, *later = self.store.conversation(row["first_message"] or row["id"])
        root = render(first)
        root["data"]["replies"] = things.listing([render(m) for m in later]) if later else ""
        return things.listing([root])

    def read_message(self, account, form, new=False):
        if account is None:
            raise ApiError(forbidden())
        names = [n.strip() for n in form.get("id", "").split(",") if n.strip()]
        self.store.mark(account["name"], names, new=new)
        return {}

    def read_all(self, account):
        if account is None:
            raise ApiError(forbidden())
        self.store.mark_all_read(account["name"])
        return {}

    # -- writing ----------------------------------------------------------------------
    def _require_user(self, account):
        if account is None:
            raise ApiError(form_error("USER_REQUIRED"))

    def _check_text(self, text, field="text", max_len=10000):
        if not text.strip():
            raise ApiError(form_error("NO_TEXT", field=field))
        if len(text) > max_len:
            raise ApiError(form_error("TOO_LONG", f"this is too long (max: {max_len})", field))

    def comment(self, account, form):
        """POST /api/comment: reply to a t3, t1 or t4; answers the new thing in an envelope."""
        self._require_user(account)
        parent = self.store.thing(form.get("thing_id", ""))
        text = form.get("text", "")
        if parent is None:
            raise ApiError(not_found())
        if parent["kind"] == "t4":
            return self._reply_message(account, parent, text)
        with self.store.tx():
            link = parent if parent["kind"] == "t3" else self.store.thing(parent["link_id"])
            if parent["deleted"]:
                raise ApiError(form_error("DELETED_COMMENT" if parent["kind"] == "t1" else "DELETED_LINK"))
            if self.store.is_banned(link["subreddit"], account["name"]):
                raise ApiError(forbidden())
            if link["locked"] or parent["locked"]:
                raise ApiError(forbidden())
            if self.archived(link):
                raise ApiError(form_error("TOO_OLD"))
            self._check_text(text)
            row = self.store.insert_thing(
                "t1", author=account["name"], subreddit=link["subreddit"], link_id=f"t3_{link['id']}",
                parent_id=f"{parent['kind']}_{parent['id']}", body=text, created_utc=self.now())
            self._notify(row, parent)
        return envelope(data={"things": [self.render(row)]})

    def _notify(self, row, parent):
        """Fan a new comment out to inboxes: one item per person, reply beats mention."""
        author = row["author"].lower()
        fullname = f"t1_{row['id']}"
        notified = set()
        if not parent["deleted"] and parent["author"].lower() != author:
            if parent["kind"] == "t3" and parent["send_replies"]:
                self.store.add_inbox(parent["author"], fullname, "post_reply")
                notified.add(parent["author"].lower())
            elif parent["kind"] == "t1":
                self.store.add_inbox(parent["author"], fullname, "comment_reply")
                notified.add(parent["author"].lower())
        for name in mentioned_names(row["body"]):
            if name.lower() in notified or name.lower() == author:
                continue
            account = self.store.account(name)
            self.store.add_inbox(account["name"] if account else name, fullname, "username_mention")
            notified.add(name.lower())

    def _reply_message(self, account, parent, text):
        me = account["name"].lower()
        if me not in (parent["author"].lower(), (parent["dest"] or "").lower()):
            raise ApiError(forbidden())
        self._check_text(text)
        other = parent["dest"] if parent["author"].lower() == me else parent["author"]
        subject = parent["subject"] if parent["subject"].startswith("re: ") else f"re: {parent['subject']}"
        return envelope(data={"things": [self.render(self._message(
            account["name"], other, subject, text, parent=parent))]})

    def _message(self, author, dest, subject, text, parent=None):
        with self.store.tx():
            row = self.store.insert_thing(
                "t4", author=author, dest=dest, subject=subject, body=text, created_utc=self.now(),
                parent_id=f"t4_{parent['id']}" if parent else None,
                first_message=(parent["first_message"] or parent["id"]) if parent else None)
            self.store.add_inbox(dest, f"t4_{row['id']}", "message")
        return row

    def compose(self, account, form):
        """POST /api/compose: a new private message to ``to`` (u/NAME or NAME)."""
        self._require_user(account)
        to = re.sub(r"^/?u/", "", form.get("to", "").strip())
        if not to or to.startswith("/r/") or to.startswith("r/"):
            raise ApiError(form_error("INVALID_USER"))
        subject = form.get("subject", "")
        self._check_text(subject, "subject", 100)
        self._check_text(form.get("text", ""))
        account_to = self.store.account(to)
        self._message(account["name"], account_to["name"] if account_to else to, subject, form["text"])
        return envelope()

    def submit(self, account, form):
        """POST /api/submit kind=self|link: creates the subreddit on first use."""
        self._require_user(account)
        sr = re.sub(r"^/?r/", "", form.get("sr", "").strip())
        if not SUBREDDIT_NAME.match(sr):
            raise ApiError(form_error("SUBREDDIT_NOEXIST"))
        kind = form.get("kind", "self")
        title = form.get("title", "")
        self._check_text(title, "title", 300)
        url = form.get("url", "").strip()
        if kind not in ("self", "link"):
            raise ApiError(form_error("INVALID_OPTION"))
        if kind == "link" and not url:
            raise ApiError(form_error("NO_URL"))
        if kind == "link" and (ban := self.store.domain_ban(urlsplit(url).hostname)):
            domain, reason = ban
            raise ApiError(form_error("DOMAIN_BANNED", f"{domain} is not allowed on reddit: {reason}"))
        with self.store.tx():
            sub = self.store.get_or_create_subreddit(sr, self.now())
            if self.store.is_banned(sub["name"], account["name"]):
                raise ApiError(forbidden())
            if kind == "link" and not truthy(form.get("resubmit", "true")) and \
                    self.store.link_posted(sub["name"], url):
                raise ApiError(form_error("ALREADY_SUB"))
            flair_id = form.get("flair_id") or None
            row = self.store.insert_thing(
                "t3", author=account["name"], subreddit=sub["name"], title=title,
                body=form.get("text", ""), url=url if kind == "link" else None,
                is_self=int(kind == "self"), flair_id=flair_id,
                flair_text=form.get("flair_text") or None, over_18=int(truthy(form.get("nsfw", ""))),
                spoiler=int(truthy(form.get("spoiler", ""))),
                send_replies=int(truthy(form.get("sendreplies", "true"))), created_utc=self.now())
        return envelope(data={"url": things.REDDIT + things.submission_permalink(row),
                              "drafts_count": 0, "id": row["id"], "name": f"t3_{row['id']}"})

    def delete(self, account, form):
        """POST /api/del: the author deletes their own comment or post (others: no-op)."""
        self._require_user(account)
        row = self.store.thing(form.get("id", ""))
        if row is not None and row["author"].lower() == account["name"].lower():
            self.store.update_thing(f"{row['kind']}_{row['id']}", deleted=1)
        return {}

    def edit(self, account, form):
        """POST /api/editusertext: the author edits a comment body or self-post text."""
        self._require_user(account)
        fullname = form.get("thing_id", "")
        row = self.store.thing(fullname)
        if row is None or row["kind"] == "t4" or row["author"].lower() != account["name"].lower():
            raise ApiError(forbidden())
        if row["deleted"]:
            raise ApiError(form_error("DELETED_COMMENT"))
        if row["kind"] == "t1":  # a self post may have empty text, a comment may not
            self._check_text(form.get("text", ""))
        row = self.store.update_thing(fullname, body=form.get("text", ""), edited=self.now())
        return envelope(data={"things": [self.render(row)]})

    # -- used by admin ----------------------------------------------------------------
    def thing_or_404(self, fullname):
        kind, _ = split_fullname(fullname)
        row = self.store.thing(fullname) if kind else None
        if row is None:
            raise ApiError(not_found())
        return row
