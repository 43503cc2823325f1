"""What every job's command line shares: arguments, logging, the lock, exit codes.

A job module defines ``run(config, bots, **options)`` (the work, also called by
run.py) and ends with::

    def main(argv=None):
        return cli.main("fetch", __doc__, run, argv=argv)

    if __name__ == "__main__":
        sys.exit(main())

Exit codes: 0 done, also "nothing to do" and "already running";
2 bad config or input, one clear line and no traceback; 1 anything unexpected,
logged with its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os

from shared.state import db, replica, runs
from shared.config import load_config
from shared.errors import ConfigError, InputError, SsiBotError
from shared.state.lock import AlreadyRunning, job_lock

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DEFAULT_CONFIG = os.environ.get("SSI_BOT_CONFIG", "ssi-bot.yaml")


def setup_logging(verbose=False):
    """One readable line per event, on stderr."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT,
                        datefmt="%Y-%m-%d %H:%M:%S", force=True)
    # PRAW and urllib3 log every request at DEBUG; keep them out of -v unless asked.
    for noisy in ("prawcore", "urllib3", "filelock", "peewee"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def preview(text, width=80):
    """``text`` on one line, cut to ``width`` characters with an ellipsis: for log lines."""
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:width - 1] + "…"


def parser(name, doc, use_db=True, per_bot=True):
    p = argparse.ArgumentParser(prog=f"python -m jobs.{name}", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=DEFAULT_CONFIG, metavar="PATH",
                   help="ssi-bot.yaml to use (default: %(default)s, or $SSI_BOT_CONFIG)")
    if per_bot:
        p.add_argument("--bot", action="append", default=[], metavar="NAME",
                       help="only this bot (repeat for several; default: all bots)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    if use_db:
        p.add_argument("--sync", action="store_true",
                       help="restore the state DB from its snapshots first if it is missing, push a snapshot "
                            "after the job (crontab and cloud schedulers on ephemeral disks)")
    return p


def report(exc, log):
    """Log an error the way the CLIs do; return the exit code."""
    if isinstance(exc, ConfigError):
        for line in exc.problems:
            log.error(line)
        return 2
    if isinstance(exc, InputError):
        log.error(str(exc))
        return 2
    if isinstance(exc, SsiBotError):
        log.error(str(exc))
        return 1
    log.exception("unexpected failure: %s", exc)
    return 1


def main(name, doc, run, add_arguments=None, argv=None, use_db=True, use_lock=True, config_optional=False,
         record=None):
    """Parse arguments, load the config, take the job's lock and call ``run``.

    Runs of the bots' jobs (locked, beside the state DB) are recorded for the console
    (shared/state/runs.py) unless ``record(options)`` says no (``sync list`` reads only)."""
    # The offline jobs (config optional) work on training data, not on bots.
    p = parser(name, doc, use_db=use_db and use_lock, per_bot=not config_optional)
    if add_arguments:
        add_arguments(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    log = logging.getLogger(name)
    options = {k: v for k, v in vars(args).items() if k not in ("config", "bot", "verbose", "sync")}
    try:
        config = load_config(args.config, optional=config_optional)
        bots = config.select(getattr(args, "bot", []))
        sync = getattr(args, "sync", False)
        if sync:
            replica.restore_if_missing(config)
        if use_db:
            db.open(config.db)
        if not use_lock:
            run(config, bots, **options)
            return 0
        # The offline jobs work on the training DB: their lock lives beside it.
        recording = not config_optional and (record is None or record(options))
        with job_lock(name, config.training.db if config_optional else config.db), \
                runs.recorded(name, config.db, [bot.name for bot in bots] if recording else []):
            run(config, bots, **options)
            if sync and replica.enabled(config):
                db.close()
                replica.push(config)
        return 0
    except AlreadyRunning as exc:
        log.info(str(exc))
        return 0
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
        return report(exc, log)
    finally:
        db.close()

