"""Keep the state DB off the machine: push snapshots, pull the newest, list them.

    python -m jobs.sync [push] [--force] [--config ssi-bot.yaml]
    python -m jobs.sync pull [--force]
    python -m jobs.sync list

push   takes a consistent snapshot of the DB (``VACUUM INTO``), compresses it
       (zstd) and stores it as the next numbered snapshot with a conditional
       write, so it can never replace one; then keeps the newest ``s3.keep``.
       run.py runs it on ``schedule.sync``; without ``s3.bucket`` (or
       ``s3.directory``) it does nothing.
pull   restores the newest snapshot that passes its checks (sha256,
       ``PRAGMA quick_check``) in place of the DB, atomically. Stop run.py
       first: a DB that is open elsewhere is never replaced.
list   prints the stored snapshots, newest last.

Where: ssi-bot.yaml's ``s3`` section (bucket, prefix, region, endpoint_url, or a
local ``directory``). Credentials come from the AWS SDK's usual places
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role).

Idempotent: pushing an unchanged DB stores nothing; pulling when the DB is
already at the newest snapshot changes nothing. Never loses an update: a push
from a DB that is not based on the newest snapshot (another runner pushed
since) is refused, exit 2, and so is a pull over a DB that is newer than the
newest snapshot or was never synced; ``--force`` overrides both (see
shared/state/replica.py). A missing bucket, missing or refused credentials and an
unreachable endpoint are one line and exit 2.
"""

from __future__ import annotations

import datetime
import logging
import sys

from shared import cli
from shared.state import replica
from shared.errors import InputError

log = logging.getLogger("sync")

ACTIONS = ("push", "pull", "list")


def run(config, bots=None, action="push", force=False, **_options):
    """Do ``action``; return what s3sync returned (Pushed, Restored, a list, or None)."""
    if action not in ACTIONS:
        raise InputError(f"sync: unknown action {action!r} (one of {', '.join(ACTIONS)})")
    if action == "push" and not replica.enabled(config):
        log.info("s3.bucket and s3.directory are empty: nothing to push")
        return None
    if action == "push":
        return replica.push(config, force=force)
    if action == "pull":
        return replica.restore(config, force=force)
    found = replica.snapshots(config)
    local = replica.local_generation(config.db)
    for snapshot in found:
        when = datetime.datetime.fromtimestamp(snapshot.modified, datetime.timezone.utc)
        mark = "  <- local DB" if snapshot.generation == local else ""
        print(f"{snapshot.generation:012d}  {when:%Y-%m-%d %H:%M:%S}Z  {snapshot.size:>12,d} B{mark}")
    print(f"{len(found)} snapshot(s) in {replica.storage_for(config).describe()}")
    return found


def add_arguments(parser):
    parser.add_argument("action", nargs="?", default="push", choices=ACTIONS,
                        help="push a snapshot (default), pull the newest, or list them")
    parser.add_argument("--force", action="store_true",
                        help="push over a newer snapshot, or pull over a newer or never-synced DB")


def main(argv=None):
    # use_db=False: pull must not create an empty DB before restoring, and push
    # reads the file through its own connections.
    return cli.main("sync", __doc__, run, add_arguments, argv=argv, use_db=False,
                    record=lambda options: options["action"] != "list")


if __name__ == "__main__":
    sys.exit(main())
