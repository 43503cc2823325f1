"""What each bot is doing: items per state and the latest failures.

    python -m jobs.status [--config ssi-bot.yaml] [--bot NAME] [--json]

Per bot: how many items it has seen in all, and how many are waiting for a
decision (seen), skipped, queued for text, generated and waiting to post,
being posted, posted and failed; then the latest failures with their
reasons. ``--json`` prints the same as one JSON object for scripts and
dashboards. Read-only: safe to run at any time, even while jobs run.
"""

from __future__ import annotations

import json
import sys
import time

from shared import cli
from shared.state import db

RECENT_FAILURES = 5


def collect(bots):
    """{bot: {"total", "states", "failures", "next_post_retry"}} from the DB."""
    counts = db.state_counts()
    report = {}
    for bot in bots:
        states = counts.get(bot.name, dict.fromkeys(db.STATES, 0))
        failures = db.latest_failures(bot.name, RECENT_FAILURES)
        retry = (db.Item.select(db.Item.retry_at).where(
            (db.Item.bot == bot.name) & (db.Item.state == db.GENERATED) & db.Item.retry_at.is_null(False))
            .order_by(db.Item.retry_at).first())
        report[bot.name] = {
            "total": sum(states.values()),
            "states": states,
            "failures": [{"key": f.key, "reason": f.reason, "at": f.updated_at} for f in failures],
            "next_post_retry": retry.retry_at if retry else None,
        }
    return report


def render(report):
    lines = []
    for name, bot in report.items():
        states = bot["states"]
        lines.append(f"{name}: {bot['total']} items seen — " + ", ".join(
            f"{states[s]} {s}" for s in db.STATES))
        if bot["next_post_retry"]:
            wait = max(0, bot["next_post_retry"] - time.time())
            lines.append(f"  next post retry in {wait:.0f}s")
        for failure in bot["failures"]:
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(failure["at"]))
            lines.append(f"  failed {when} {failure['key']}: {failure['reason']}")
    return "\n".join(lines) if lines else "no bots configured"


def run(config, bots, json_output=False, **_options):
    report = collect(bots)
    print(json.dumps({"db": config.db, "bots": report}, indent=2) if json_output else render(report))


def add_arguments(parser):
    parser.add_argument("--json", dest="json_output", action="store_true", help="print JSON")


def main(argv=None):
    return cli.main("status", __doc__, run, add_arguments, argv=argv, use_lock=False)


if __name__ == "__main__":
    sys.exit(main())
