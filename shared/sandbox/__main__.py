"""``python -m shared.sandbox --port PORT [--db FILE] [--host 127.0.0.1]``: serve a local reddit.

Prints the URL once listening (``--port 0`` picks a free port) and logs one line per
request. Point PRAW at it with ``oauth_url`` and ``reddit_url`` set to that URL (any
client id/secret; a new username/password pair creates the account). Drive it from
another process with ``shared.sandbox.RemoteSandbox(URL)``.
"""

import argparse
import logging
import signal
import sys

from .ratelimit import DEFAULT_BUDGET
from .sandbox import Sandbox


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m shared.sandbox", description="Serve a local reddit that real, unmodified PRAW can talk to.")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one (default 8765)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--db", default=None, help="SQLite file for the state (default: in memory, lost on exit)")
    parser.add_argument("--ratelimit-budget", type=int, default=DEFAULT_BUDGET,
                        help="requests per client id per 600 s window (default %(default)s)")
    parser.add_argument("--archive-after-days", type=float, default=180,
                        help="posts older than this refuse replies with TOO_OLD (default 180)")
    parser.add_argument("--quiet", action="store_true", help="do not log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sandbox = Sandbox(args.db, host=args.host, port=args.port, ratelimit_budget=args.ratelimit_budget,
                      archive_after_days=args.archive_after_days)
    sandbox.start()
    print(f"reddit sandbox listening on {sandbox.url}", flush=True)
    # SIGTERM stops as cleanly as Ctrl-C: the SQLite file is closed, not cut mid-write.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        sandbox.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
