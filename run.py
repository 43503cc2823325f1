"""Run the bots 24/7: every job on its interval, one at a time.

    python run.py [--config ssi-bot.yaml] [--once]
    python run.py --demo            # offline: local sandbox, demo model, no account

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
import signal
import sys
import threading
import time

import schedule

from jobs import decide, fetch, generate, post, prune, status, submit
from shared import cli, db, reddit
from shared.config import load_config
from shared.lock import AlreadyRunning, job_lock

log = logging.getLogger("run")

# One cycle, in the order the data flows.
JOBS = {"fetch": fetch, "decide": decide, "submit": submit, "generate": generate, "post": post,
        "prune": prune}


class Runner:
    """The jobs of one config, run by name, each under its lock, never raising."""

    def __init__(self, config, stop=None):
        self.config = config
        self.stop = stop or threading.Event()
        self.failures = 0

    def run_job(self, name):
        if self.stop.is_set():
            return
        started = time.monotonic()
        try:
            with job_lock(name, self.config.db):
                JOBS[name].run(self.config, self.config.bots)
        except AlreadyRunning as exc:
            log.info(str(exc))
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the bot
            self.failures += 1
            cli.report(exc, logging.getLogger(name))
        else:
            log.debug("%s took %.1fs", name, time.monotonic() - started)

    def cycle(self):
        for name in JOBS:
            self.run_job(name)

    def schedule(self, scheduler):
        for name in JOBS:
            every = getattr(self.config.schedule, name)
            if every > 0:
                scheduler.every(every).seconds.do(self.run_job, name)

    def loop(self, scheduler=None, max_idle=60.0):
        """Run due jobs until ``stop`` is set. Jobs catch their own errors (FACTS.md:
        a job that raises inside schedule would rerun on every tick)."""
        scheduler = scheduler or schedule.Scheduler()
        self.schedule(scheduler)
        scheduler.run_all()
        while not self.stop.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            self.stop.wait(max(0.5, min(max_idle, idle if idle is not None else max_idle)))


def install_signal_handlers(stop):
    def handle(signum, _frame):
        log.info("%s: finishing the job in flight, then exiting", signal.Signals(signum).name)
        stop.set()
    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


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
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args.verbose)
    if args.demo:
        from shared import demo
        return demo.main(cycles=4 if args.cycles is None else args.cycles)
    try:
        config = load_config(args.config)
        reddit.check_credentials(config, config.bots)
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
