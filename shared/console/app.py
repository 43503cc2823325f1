"""The console's web app: routes, the guard in front of them, and the pages' templates.

    app = create_app(config)                       # on 127.0.0.1: local requests only
    app = create_app(config, token="...")          # --allow-remote: every request carries the token
    uvicorn.run(app, host="127.0.0.1", port=8080)  # what python -m jobs.console does

Pages (every one is server-rendered HTML, no JavaScript, works offline)::

    /                                   the bots: items per state
    /bots/NAME                          caps, post schedule, job runs, failures, conversations
    /bots/NAME/conversations            the threads and DMs the bot has items in
    /bots/NAME/conversations/ID         a thread as reddit shows it, with each decision
    /bots/NAME/items/ID                 one item: decision, every candidate and its verdict
    /bots/NAME/activity?days=N          replies, posts and decisions per hour
    /bots/NAME/rehearse?thread=URL      what the bot would make of a thread (or ?text=...):
                                        probability rule by rule, prompt, candidates; never posts
    /models                             eval-loss curves of the finetune runs under models/
    /sync                               the snapshots in the bucket or folder

What it guarantees: it only reads. The state DB is opened in SQLite's read-only mode, one
connection per page, closed after it (shared/state/db.py ``reading``); no job lock is
taken, so it works while jobs run. Text from reddit and the model is escaped by the
templates (autoescape on), and the Content-Security-Policy allows no script at all.
Nothing from praw.ini is read. Without a token, requests must name this machine as their
Host (a web page elsewhere cannot reach the console by DNS rebinding); with one, each
request carries it as ``Authorization: Bearer``, the cookie the first visit sets, or
``?token=`` (which sets the cookie and redirects, so the token leaves the address bar).
A missing or corrupt DB, an unknown bot, thread or item: a page that says so.

The models are bound process-wide to the read-only DB: run the console in its own
process (the demo starts ``python -m jobs.console``).
"""

from __future__ import annotations

import hmac
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from shared.console import pages, shape
from shared.errors import ConfigError, InputError, first_line
from shared.state import db

TEMPLATES = Path(__file__).resolve().parent / "templates"
COOKIE = "ssi_console_token"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_DAYS = 30
MAX_CANDIDATES = 16          # one rehearsal generates at most this many (it runs in the page's request)
SECURITY_HEADERS = [
    # No script may run, whatever a page contains; styles only inline; charts are inline SVG.
    (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def create_app(config, token=None, hosts=None, rehearse=None):
    """The console for ``config``. ``token``: required on every request (remote use); without
    it, requests must come with a Host header of this machine (``LOCAL_HOSTS`` + ``hosts``).

    ``rehearse(config, bot, thread=..., text=..., n=...)``, when given, serves the Rehearse
    page: python -m jobs.console passes jobs.rehearse's, the same code as the command.
    """
    db.open_readonly(config.db)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, lstrip_blocks=True)
    env.filters.update(when=shape.when, size=shape.size, svg=Markup)
    templates = Jinja2Templates(env=env)
    views = Views(config, templates, rehearse)
    routes = [
        Route("/", views.index, name="index"),
        Route("/bots/{bot}", views.bot, name="bot"),
        Route("/bots/{bot}/conversations", views.conversations, name="conversations"),
        Route("/bots/{bot}/conversations/{thread}", views.conversation, name="conversation"),
        Route("/bots/{bot}/items/{item}", views.item, name="item"),
        Route("/bots/{bot}/activity", views.activity, name="activity"),
        Route("/models", views.models, name="models"),
        Route("/sync", views.sync, name="sync"),
    ]
    if rehearse is not None:
        routes.append(Route("/bots/{bot}/rehearse", views.rehearse, name="rehearse"))
    app = Starlette(routes=routes, exception_handlers={HTTPException: views.http_error, Exception: views.crash})
    return Guard(app, token=token, hosts=LOCAL_HOSTS | set(hosts or ()))


class Views:
    """One method per page: read inside one DB read, render one template."""

    def __init__(self, config, templates, rehearse=None):
        self.config = config
        self.templates = templates
        self.rehearse_with = rehearse

    def page(self, request, name, status=200, **context):
        now = time.time()
        context.update(config=self.config, now=now, ago=lambda at: shape.ago(now - at) if at else "",
                       bots=[b.name for b in self.config.bots], can_rehearse=self.rehearse_with is not None)
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def problem(self, request, status, title, message):
        return self.page(request, "problem.html", status=status, title=title, message=message)

    def read(self, request, build):
        """Render what ``build()`` returns, read in one consistent read; a problem page instead
        when the DB cannot be read, or the bot, thread or item is unknown."""
        try:
            with db.reading():
                name, context = build()
        except InputError as exc:
            return self.problem(request, 503, "The state DB cannot be read", str(exc))
        except pages.NotFound as exc:
            return self.problem(request, 404, "Not found", str(exc))
        except ConfigError as exc:
            return self.problem(request, 404, "No such bot", "; ".join(exc.problems))
        return self.page(request, name, **context)

    def bot_named(self, request):
        return self.config.bot(request.path_params["bot"])           # ConfigError: no such bot

    def index(self, request):
        return self.read(request, lambda: ("index.html", {"overview": pages.overview(self.config)}))

    def bot(self, request):
        def build():
            bot = self.bot_named(request)
            return "bot.html", {"bot": bot, "summary": pages.bot_summary(self.config, bot, time.time())}
        return self.read(request, build)

    def conversations(self, request):
        def build():
            bot = self.bot_named(request)
            return "conversations.html", {"bot": bot, "conversations": pages.conversations(bot)}
        return self.read(request, build)

    def conversation(self, request):
        def build():
            bot = self.bot_named(request)
            thread = pages.conversation(self.config, bot, request.path_params["thread"])
            return "conversation.html", {"bot": bot, "thread": thread}
        return self.read(request, build)

    def rehearse(self, request):
        """A thread (?thread=URL or id) or a new post (?text=...) through the bot's decide, prompt,
        generation and checks. A GET: it reads and generates, and never writes anywhere."""
        try:
            bot = self.bot_named(request)
        except ConfigError as exc:
            return self.problem(request, 404, "No such bot", "; ".join(exc.problems))
        query = request.query_params
        thread, text = query.get("thread", "").strip(), query.get("text", "").strip()
        n = query.get("n", "")
        context = {"bot": bot, "thread": thread, "text": text, "n": n, "result": None, "error": None}
        if thread or text:
            try:
                count = int(n) if n else None
                if count is not None and not 1 <= count <= MAX_CANDIDATES:
                    raise InputError(f"n {count}: rehearse 1 to {MAX_CANDIDATES} candidates")
                context["result"] = self.rehearse_with(self.config, bot, thread=thread or None,
                                                       text=text or None, n=count)
            except ValueError:
                context["error"] = f"n {n!r}: expected a whole number of candidates"
            except (InputError, ConfigError) as exc:
                context["error"] = str(exc)
        return self.page(request, "rehearse.html", **context)

    def item(self, request):
        def build():
            bot = self.bot_named(request)
            number = request.path_params["item"]
            if not number.isdigit():
                raise pages.NotFound(f"no item {number!r}: item ids are numbers")
            return "item.html", {"bot": bot, "item": pages.item_detail(self.config, bot, int(number))}
        return self.read(request, build)

    def activity(self, request):
        def build():
            bot = self.bot_named(request)
            days = request.query_params.get("days", "3")
            days = min(MAX_DAYS, max(1, int(days))) if days.isdigit() else 3
            return "activity.html", {"bot": bot, "activity": pages.activity(bot, time.time(), days)}
        return self.read(request, build)

    def models(self, request):
        return self.page(request, "models.html", models=pages.models(self.config))

    def sync(self, request):
        try:
            found = pages.snapshots(self.config)
        except Exception as exc:  # noqa: BLE001 - storage unreachable, refused credentials: say so
            return self.problem(request, 503, "The snapshots cannot be listed", first_line(exc))
        try:
            with db.reading():
                base = pages.local_generation()
        except InputError as exc:
            base, found["local_problem"] = None, str(exc)
        return self.page(request, "sync.html", sync=found, base=base)

    async def http_error(self, request, exc):
        if exc.status_code == 404:
            return self.problem(request, 404, "Not found", f"no page at {request.url.path}")
        return self.problem(request, exc.status_code, "Refused", exc.detail)

    async def crash(self, request, exc):
        # The page says what failed; the server logs the traceback (Starlette re-raises it).
        return self.problem(request, 500, "Something went wrong",
                            f"{type(exc).__name__}: {first_line(exc)} (the console's log has the details)")


class Guard:
    """ASGI middleware in front of every page: the Host check or the token, and the security
    headers on every answer."""

    def __init__(self, app, token=None, hosts=LOCAL_HOSTS):
        self.app, self.token, self.hosts = app, token, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            return await refusal(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope):
        """None when the request may go on, else the response that refuses it."""
        headers = Headers(scope=scope)
        if self.token is None:
            if host_of(headers.get("host", "")) not in self.hosts:
                return plain(400, "This console answers only requests addressed to this machine "
                                  "(http://127.0.0.1:PORT/).")
            return None
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if self.matches(query.get("token")):
            rest = urlencode({k: v for k, v in query.items() if k != "token"})
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return response
        kind, _, value = headers.get("authorization", "").partition(" ")
        cookie = SimpleCookie(headers.get("cookie", ""))
        if (kind.lower() == "bearer" and self.matches(value.strip())) or \
                (COOKIE in cookie and self.matches(cookie[COOKIE].value)):
            return None
        return plain(401, "This console needs its token: open the address python -m jobs.console printed "
                          "(it ends in ?token=...), or send Authorization: Bearer TOKEN.")

    def matches(self, given):
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())


def host_of(header):
    """The host of a Host header: '127.0.0.1:8080' -> '127.0.0.1', '[::1]:8080' -> '::1'."""
    if header.startswith("["):
        return header[1:header.find("]")]
    return header.rsplit(":", 1)[0] if ":" in header else header


def plain(status, message):
    return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>ssi-bot console</title><p>{message}</p>",
                        status_code=status)
