"""HTTP for the sandbox: routing, OAuth tokens, rate-limit headers, faults, admin API.

``App`` turns one request (method, path, query, form, headers) into a ``Reply``;
``SandboxHTTPServer`` is a ``ThreadingHTTPServer`` (a thread per connection, HTTP/1.1
keep-alive, as PRAW's requests session expects) that feeds requests to it. Each request
is logged at INFO as ``METHOD /path STATUS`` on the ``shared.sandbox`` logger.

Request flow: access-token requests are answered first (Basic auth, password or
client_credentials grant); everything else needs ``Authorization: bearer TOKEN`` (401 +
``www-authenticate`` otherwise), is counted against the client's budget, may be
replaced by an injected fault, then goes to its route. ``/_sandbox/...`` is the admin
API (no auth): ``GET /_sandbox/health``, ``GET|POST|DELETE /_sandbox/faults``,
``POST /_sandbox/<action>`` for each name in admin.ACTIONS.
"""

import base64
import json
import logging
import re
import secrets
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .admin import ACTIONS, SandboxError
from .faults import normalize_path
from .replies import ApiError, Reply, bad_request, not_found, too_many_requests, unauthorized

log = logging.getLogger("shared.sandbox")

TOKEN_LIFETIME = 86400
USERNAME = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
THREAD = r"(?P<link>[a-z0-9]+)(?:/[^/]*(?:/(?P<comment>[a-z0-9]+))?)?"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    form: dict
    account: dict = None  # None with an app-only (client_credentials) token
    client_id: str = ""


class App:
    """Reddit's HTTP surface over ``api`` (api.Api), ``faults`` and ``budget``."""

    def __init__(self, api, faults, budget):
        self.api = api
        self.faults = faults
        self.budget = budget
        a = api
        # (method, anchored path pattern, handler(request, **groups)); first match wins.
        self.routes = [(method, re.compile(f"^{pattern}$", re.IGNORECASE), handler) for method, pattern, handler in [
            ("GET", r"/api/v1/me", lambda r: a.me(r.account, r.client_id)),
            ("GET", r"/api/info", lambda r: a.info(r.query)),
            ("GET", r"/", lambda r: a.subreddit_listing("all", "t3", r.query)),
            ("GET", r"/r/(?P<subs>[^/]+)/comments", lambda r, subs: a.subreddit_listing(subs, "t1", r.query)),
            ("GET", r"/r/[^/]+/comments/" + THREAD, lambda r, link, comment: a.thread(link, r.query, comment)),
            ("GET", r"/comments/" + THREAD, lambda r, link, comment: a.thread(link, r.query, comment)),
            ("GET", r"/r/(?P<name>[^/]+)/about", lambda r, name: a.subreddit_about(name, r.account)),
            # hot/rising order like new here: every sandbox post has the same score.
            ("GET", r"/r/(?P<subs>[^/]+)(?:/(?:new|hot|rising))?",
             lambda r, subs: a.subreddit_listing(subs, "t3", r.query)),
            ("GET", r"/(?:user|u)/(?P<name>[^/]+)/about", lambda r, name: a.user_about(name)),
            ("GET", r"/(?:user|u)/(?P<name>[^/]+)/comments", lambda r, name: a.user_listing(name, "t1", r.query)),
            ("GET", r"/(?:user|u)/(?P<name>[^/]+)/submitted",
             lambda r, name: a.user_listing(name, "t3", r.query)),
            ("GET", r"/message/messages/(?P<message_id>[a-z0-9]+)",
             lambda r, message_id: a.conversation(r.account, message_id.lower())),
            ("GET", r"/message/(?P<where>inbox|unread|mentions|comments|selfreply|messages|sent)",
             lambda r, where: a.inbox_listing(r.account, where.lower(), r.query)),
            ("POST", r"/api/read_message", lambda r: a.read_message(r.account, r.form)),
            ("POST", r"/api/unread_message", lambda r: a.read_message(r.account, r.form, new=True)),
            ("POST", r"/api/read_all_messages", lambda r: Reply(202, a.read_all(r.account))),
            ("POST", r"/api/comment", lambda r: a.comment(r.account, r.form)),
            ("POST", r"/api/submit", lambda r: a.submit(r.account, r.form)),
            ("POST", r"/api/compose", lambda r: a.compose(r.account, r.form)),
            ("POST", r"/api/del", lambda r: a.delete(r.account, r.form)),
            ("POST", r"/api/editusertext", lambda r: a.edit(r.account, r.form)),
        ]]

    def handle(self, method, path, query, form, headers):
        """Answer one request: (Reply, fault to apply after answering or None)."""
        path = normalize_path(path)
        if path in ("/api/v1/access_token", "/api/v1/revoke_token"):
            fault = self.faults.take(method, path, form.get("username"))
            if fault and fault.kind != "accept_then_hang":
                return fault.reply(), None
            client_id = basic_auth_client(headers)
            reply = self._token(client_id, form) if path.endswith("access_token") else self._revoke(form)
            if client_id and reply.ratelimit_headers:
                reply.headers.update(self.budget.spend(client_id)[0])
            return reply, fault
        token = bearer_token(headers)
        row = self.api.store.token(token) if token else None
        if row is None:
            return unauthorized(), None
        account = self.api.store.account(row["account"]) if row["account"] else None
        rate_headers, over_budget = self.budget.spend(row["client_id"])
        fault = None if over_budget else self.faults.take(method, path, account["name"] if account else None)
        if over_budget:
            reply = too_many_requests(max(int(rate_headers["x-ratelimit-reset"]), 1))
        elif fault and fault.kind != "accept_then_hang":
            reply, fault = fault.reply(), None
        else:
            reply = self._route(Request(method, path, query, form, account, row["client_id"]))
        if reply.ratelimit_headers:
            reply.headers.update(rate_headers)
        return reply, fault

    def _route(self, request):
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                try:
                    # One transaction per request: concurrent clients see each request
                    # whole, and a refused one leaves nothing half-written.
                    with self.api.store.tx():
                        result = handler(request, **match.groupdict())
                except ApiError as error:
                    return error.reply
                return result if isinstance(result, Reply) else Reply(200, result)
        return not_found()

    def _token(self, client_id, form):
        if client_id is None:
            return unauthorized()
        grant = form.get("grant_type")
        name = None
        if grant == "password":
            username, password = form.get("username", ""), form.get("password", "")
            if not USERNAME.match(username) or not password:
                return Reply(200, {"error": "invalid_grant"})
            store = self.api.store
            with store.tx():
                account = store.account(username) or store.create_account(username, password, self.api.now())
            if account["password"] != password:
                # Reddit answers a bad password with HTTP 200 (oauth_token_invalid_grant.json).
                return Reply(200, {"error": "invalid_grant"})
            name = account["name"]
        elif grant != "client_credentials":
            return Reply(200, {"error": "unsupported_grant_type"})
        token = secrets.token_urlsafe(24)
        scope = form.get("scope") or "*"
        self.api.store.add_token(token, name, client_id, scope, self.api.now())
        return Reply(200, {"access_token": token, "token_type": "bearer",
                           "expires_in": TOKEN_LIFETIME, "scope": scope})

    def _revoke(self, form):
        self.api.store.run("DELETE FROM tokens WHERE token = ?", (form.get("token", ""),))
        return Reply(200, None)


def basic_auth_client(headers):
    """The client id of an ``Authorization: Basic`` header, or None."""
    kind, _, value = (headers.get("Authorization") or "").partition(" ")
    if kind.lower() != "basic":
        return None
    try:
        client_id, _, _secret = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return client_id or None


def bearer_token(headers):
    kind, _, value = (headers.get("Authorization") or "").partition(" ")
    return value.strip() if kind.lower() == "bearer" else None


def flat(parsed):
    """parse_qs output -> {name: last value}."""
    return {key: values[-1] for key, values in parsed.items()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as reddit; every answer has Content-Length
    server_version = "reddit-sandbox"
    timeout = 120  # close idle keep-alive connections eventually

    def do_GET(self):
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = flat(parse_qs(split.query, keep_blank_values=True))
        if split.path.startswith("/_sandbox"):
            return self._send(self.server.admin_http(self.command, split.path, query, raw))
        try:
            if "json" in (self.headers.get("Content-Type") or ""):
                form = json.loads(raw or b"{}")
            else:
                form = flat(parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True))
            reply, hang = self.server.app.handle(self.command, split.path, query, form, self.headers)
        except Exception:  # a sandbox bug: answer like reddit's 500, keep the traceback
            if not self.server.stopping.is_set():  # (a request racing stop() is no bug)
                log.exception("%s %s failed", self.command, split.path)
            reply, hang = Reply(500, None, ratelimit_headers=False), None
        if hang is not None:
            if hang.drop:
                log.info("%s %s %s (accepted, connection dropped)", self.command, split.path, reply.status)
                self.close_connection = True
                return
            self.server.stopping.wait(hang.delay)
        try:
            self._send(reply)
        except OSError:
            # The client gave up or was killed while we held the answer (accept_then_hang):
            # exactly what that fault rehearses, so no traceback.
            log.info("%s %s %s (client gone before the answer)", self.command, split.path, reply.status)
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _send(self, reply):
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes):
            payload = reply.body
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
        else:
            payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if self.close_connection:
            # The client asked for "Connection: close" (prawcore does, for token requests).
            # Say so, or its pool reuses a socket we are about to close and the next
            # request dies with "Remote end closed connection" (then a retry, then sleep).
            self.send_header("Connection", "close")
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_request(self, code="-", size="-"):
        log.info("%s %s %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.debug(format, *args)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, app, admin):
        self.app = app
        self.admin = admin
        self.stopping = threading.Event()  # wakes accept_then_hang sleepers on stop
        self._connections = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self):
        """Cut open keep-alive connections, so stopped servers do not keep serving."""
        self.stopping.set()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def admin_http(self, method, path, query, raw):
        """The /_sandbox admin API; JSON in, ``{"result": ...}`` out."""
        name = normalize_path(path)[len("/_sandbox/"):]
        try:
            kwargs = json.loads(raw or b"{}")
            if name == "health":
                result = {"ok": True}
            elif name == "faults":
                if method == "POST":
                    result = self.admin.faults.add(**kwargs).to_dict()
                elif method == "DELETE":
                    result = self.admin.faults.clear()
                else:
                    result = [fault.to_dict() for fault in self.admin.faults.pending()]
            elif name in ACTIONS and method == "POST":
                result = getattr(self.admin, name)(**kwargs)
            else:
                return not_found()
        except SandboxError as error:
            return Reply(error.status, error.body)
        except (TypeError, ValueError) as error:
            reply = bad_request()
            reply.body["explanation"] = str(error)
            return reply
        return Reply(200, {"result": result})
