"""Run the bots 24/7: every job on its interval, one at a time.

    python run.py [--config ssi-bot.yaml] [--once]
    python run.py --demo            # offline: local sandbox, demo model, no account, and
                                    # the operator console at the address it prints (--no-console: not)

The loop runs fetch, decide, submit, generate, post (and prune, sync) on the
intervals of ssi-bot.yaml's ``schedule``, one job at a time, in that order
when several are due together. Each job runs under the same per-job lock as
its ``python -m jobs.NAME`` command, so crontab runs and this loop never
overlap. A job's exception is logged and the loop goes on; SIGTERM or
SIGINT (Ctrl-C) lets the job in flight finish, then the process exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys

from jobs import Runner, install_signal_handlers, status
from shared import cli
from shared.bot import reddit
from shared.config import load_config
from shared.state import db, replica

log = logging.getLogger("run")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=cli.DEFAULT_CONFIG, metavar="PATH",
                   help="ssi-bot.yaml to use (default: %(default)s)")
    p.add_argument("--once", action="store_true", help="run one full cycle, then exit")
    p.add_argument("--demo", action="store_true",
                   help="offline demo: local reddit sandbox, demo model, seeded human activity")
    p.add_argument("--cycles", type=int, default=None, metavar="N",
                   help="with --demo: cycles before exiting (default 4; 0 = until Ctrl-C)")
    p.add_argument("--no-console", action="store_true",
                   help="with --demo: do not serve the operator console (python -m jobs.console)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args.verbose)
    if args.demo:
        from jobs import demo
        return demo.run_demo(cycles=4 if args.cycles is None else args.cycles, console=not args.no_console)
    try:
        config = load_config(args.config)
        reddit.check_credentials(config, config.bots)
        replica.restore_if_missing(config)  # an empty disk starts from the newest snapshot
        db.open(config.db)
    except Exception as exc:  # noqa: BLE001 - bad config: one line, exit 2
        return cli.report(exc, log)
    runner = Runner(config)
    install_signal_handlers(runner.stop)
    if args.once:
        runner.cycle()
        print(status.render(status.collect(config.bots)))
        return 0
    log.info("running %d bot(s): %s; Ctrl-C or SIGTERM to stop", len(config.bots),
             ", ".join(b.name for b in config.bots))
    runner.loop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
