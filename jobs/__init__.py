"""The jobs: one module per command (``python -m jobs.NAME``), and the loop that runs them.

Every module in this package is a command a user runs; each reads like a script and
wires shared/ logic to I/O. This file holds what run.py, the offline demo and the
Lambda handler share: the order of a cycle and the Runner that runs jobs by name.

    runner = Runner(config)
    runner.cycle()                 # every job once, in the order the data flows
    runner.loop()                  # every job on its interval until runner.stop is set

Used by ``run.py``, the offline demo and the Lambda handler, so all three run
jobs the same way: under the per-job lock that ``python -m jobs.NAME`` takes
too, with a job's exception logged and the rest of the cycle going on, and each
run recorded beside the DB (shared/state/runs.py) for the console.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
import time

import schedule

from shared import cli
from shared.state import replica, runs
from shared.state.lock import AlreadyRunning, job_lock

log = logging.getLogger("run")

# One cycle, in the order the data flows. Each name is a module of this package.
JOBS = ["fetch", "decide", "submit", "generate", "post", "prune", "sync"]


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
            with job_lock(name, self.config.db), \
                    runs.recorded(name, self.config.db, [bot.name for bot in self.config.bots]):
                importlib.import_module(f"jobs.{name}").run(self.config, self.config.bots)
        except AlreadyRunning as exc:
            log.info(str(exc))
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the bot
            self.failures += 1
            cli.report(exc, logging.getLogger(name))
        else:
            log.debug("%s took %.1fs", name, time.monotonic() - started)

    def jobs(self):
        """JOBS, less sync while no bucket or directory is configured."""
        return [name for name in JOBS if name != "sync" or replica.enabled(self.config)]

    def cycle(self):
        for name in self.jobs():
            self.run_job(name)

    def schedule(self, scheduler):
        for name in self.jobs():
            every = getattr(self.config.schedule, name)
            if every > 0:
                scheduler.every(every).seconds.do(self.run_job, name)

    def loop(self, scheduler=None, max_idle=60.0):
        """Run due jobs until ``stop`` is set. Jobs catch their own errors (docs/architecture.md:
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
