"""The operator console: a local web page that shows what each bot is doing and why.

    python -m jobs.console [--config ssi-bot.yaml] [--host 127.0.0.1] [--port 8080]
    python -m jobs.console --host 0.0.0.0 --allow-remote      # needs a token on every request

Per bot: items per state, caps used against their limits, the next post slot,
the last run of each job and how it ended, the latest failures; every thread the
bot read, rendered like reddit, with each decision's probability rule by rule and
its draw, and every generated candidate with its verdict; replies, posts and
decisions per hour; the finetune runs' eval-loss curves; the sync snapshots.
Pages are server-rendered (shared/console/), with no JavaScript and nothing
fetched from elsewhere, so they work offline and on a phone.

Read-only: the state DB is opened in SQLite's read-only mode and no job lock is
taken, so it can run next to run.py or crontab at any time; it never shows
praw.ini. It listens on 127.0.0.1 unless told otherwise; another address needs
``--allow-remote``, and then every request must carry the token it prints
(``$SSI_BOT_CONSOLE_TOKEN``, or a random one). The token travels in the clear over
plain HTTP: across a network, put the console behind TLS or reach it through
``ssh -L 8080:127.0.0.1:8080``. Ctrl-C stops it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import sys

from shared import cli
from shared.bot import reddit
from shared.config import load_config
from shared.errors import InputError

log = logging.getLogger("console")

TOKEN_VARIABLE = "SSI_BOT_CONSOLE_TOKEN"
MIN_TOKEN = 16


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host, port):
    """A listening socket on host:port (port 0: any free one); InputError naming the problem."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host.strip("[]"), port), family=family)
        # Accepted connections inherit it: without, each answer on a kept-alive connection (what
        # browsers use) waits about 40 ms for the client's delayed ACK between its two writes.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except OSError as exc:
        raise InputError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
                         "pick another --port") from None


def token_for(allow_remote):
    """The token every request must carry (remote use), or None on loopback."""
    if not allow_remote:
        return None
    token = os.environ.get(TOKEN_VARIABLE) or secrets.token_urlsafe(24)
    if len(token) < MIN_TOKEN:
        raise InputError(f"${TOKEN_VARIABLE} is {len(token)} characters: use at least {MIN_TOKEN} random ones "
                         "(python -c 'import secrets; print(secrets.token_urlsafe())')")
    return token


def rehearse_page(config, bot, thread=None, text=None, n=None):
    """The console's Rehearse page: jobs.rehearse on a reddit thread or a new post's text."""
    from jobs import rehearse

    if thread:
        reddit.check_credentials(config, [bot])
        target = rehearse.target_from_reddit(reddit.connect(bot, config, read_only=True), thread)
    else:
        target = rehearse.target_from_text(text, bot.subreddits[0] if bot.subreddits else "test")
    return rehearse.rehearse(config, bot, target, n=n)


def serve(config, host, port, allow_remote=False, verbose=False):
    """Listen, print the console's address (first line on stdout), serve until Ctrl-C or SIGTERM."""
    import uvicorn

    from shared.console import create_app

    if not is_loopback(host) and not allow_remote:
        raise InputError(f"--host {host}: the console shows every bot's decisions; listening beyond this "
                         "machine needs --allow-remote, and then every request must carry the token")
    token = token_for(allow_remote)
    sock = listen(host, port)
    app = create_app(config, token=token, hosts={host.strip("[]")} if not allow_remote else None,
                     rehearse=rehearse_page)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    print(f"console: {url}" + (f"?token={token}" if token else ""), flush=True)
    log.info("reading %s (read-only); Ctrl-C to stop", config.db)
    # One line per request with -v; uvicorn's own start and stop lines only then too.
    logging.getLogger("uvicorn.error").setLevel(logging.INFO if verbose else logging.WARNING)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=verbose, lifespan="off"))
    server.run(sockets=[sock])
    return 0


def main(argv=None):
    p = cli.parser("console", __doc__, use_db=False, per_bot=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port (default: %(default)s; 0 = any free port)")
    p.add_argument("--allow-remote", action="store_true",
                   help=f"allow a --host other than this machine; every request must then carry the token "
                        f"(${TOKEN_VARIABLE}, or a random one, printed in the address)")
    args = p.parse_args(argv)
    cli.setup_logging(args.verbose)
    try:
        config = load_config(args.config)
        return serve(config, args.host, args.port, args.allow_remote, args.verbose)
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # noqa: BLE001 - bad config or address: one line, exit 2
        return cli.report(exc, log)


if __name__ == "__main__":
    sys.exit(main())
