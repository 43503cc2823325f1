"""Run jobs where the disk does not outlive the run: AWS Lambda, ECS Fargate, Kubernetes CronJobs.

    jobs.lambda_handler.handler(event, context)                # AWS Lambda (infra/aws/template.yaml)
    python -m jobs.lambda_handler fetch decide generate post   # ECS, Kubernetes, a rehearsal
    python -m jobs.lambda_handler cycle                        # every online job, in order
    python -m jobs.lambda_handler --event event.json           # a scheduler's event, from a file or -

Each run:

1. loads ssi-bot.yaml from ``$SSI_BOT_CONFIG_S3`` (``s3://bucket/key``) or
   ``$SSI_BOT_CONFIG`` (a path); ``$SSI_BOT_S3_BUCKET``/``$SSI_BOT_S3_PREFIX``
   override its ``s3`` section (the template's bucket). The DB is kept in
   ``$SSI_BOT_WORK_DIR`` (default /tmp/ssi-bot, the only writable place in
   Lambda), whatever ``db`` says;
2. writes praw.ini (mode 0600) into the work dir, from the first of
   ``$SSI_BOT_PRAW_SECRET`` (a Secrets Manager secret, or an SSM SecureString
   parameter as ``ssm:/name`` or its ARN; fetched once per process),
   ``$SSI_BOT_PRAW_INI`` (the text itself), or the praw.ini beside the config
   file. The value is praw.ini text, one section per bot, or the same as JSON
   ``{"BotName": {"client_id": ..., ...}}``. Without any, PRAW's ``praw_*``
   environment variables (one bot) are used. Credentials never live in the image;
3. brings the local DB up to the newest snapshot: a fresh sandbox restores it
   (a new shard starts empty); a warm one keeps its copy when it is current and
   replaces it when another runner has pushed since;
4. runs each job of the event through ``Runner.run_job`` (the job's lock, its
   errors caught and logged, as in run.py), pushing a snapshot after each job
   (nothing is stored when the DB did not change). A refused push (another
   runner pushed first: ``StaleState``) stops the run before its next job, so
   a stale copy never goes on to post. No job is started when less than a
   quarter of the time left at the start remains (Lambda's timeout would
   kill it mid-write), nor after SIGTERM;
5. returns a JSON-able summary: the jobs, bots, restored and pushed
   generations, per-job outcome, items per state. A run with a failed job or a
   refused push raises ``RunFailed`` (its message is the summary), so Lambda
   counts an error; the CLI prints the summary and exits 1 (2 for a config error).

The event, as EventBridge Scheduler delivers the template's Input once it has
filled in its context attributes (every key but the jobs is optional)::

    {"jobs": ["fetch", "decide", "generate", "post"],      # or "job": "post", or "cycle"
     "bots": ["MyBot-GPT2"],                                 # default: every bot in ssi-bot.yaml
     "schedule_arn": "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/ssi-bot-Online",
     "scheduled_time": "2025-06-01T12:00:00Z",
     "execution_id": "d32c5kddcf5bb8c3",
     "attempt": "1"}

Runs of one state DB must not overlap: the template gives the function a
reserved concurrency of 1 and the Kubernetes CronJob ``concurrencyPolicy:
Forbid``. Should two overlap anyway, the snapshots' conditional writes keep the
history linear: the second push from the same base is refused, never stored.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import io
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import yaml

from jobs import status
from shared import cli
from shared.state import db, replica
from shared.bot import reddit
from shared.config import load_config, parse_config
from shared.errors import ConfigError, InputError
from jobs import JOBS, Runner, install_signal_handlers

log = logging.getLogger("lambda")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK_DIR = "/tmp/ssi-bot"
# The event keys echoed into the summary, as the template's Input names them.
SCHEDULER_KEYS = ("schedule_arn", "scheduled_time", "execution_id", "attempt")
# The jobs an event may name: the Runner's, less sync (the handler pushes after each job itself).
ONLINE_JOBS = [name for name in JOBS if name != "sync"]
# A job is not started with less than this share of the run's starting time budget left.
TIME_RESERVE = 0.25

_secret_cache = {}        # SSI_BOT_PRAW_SECRET -> praw.ini text, fetched once per process
_logging_ready = False


class RunFailed(Exception):
    """A job failed or a push was refused; ``summary`` says which (the message is its JSON)."""

    def __init__(self, summary):
        self.summary = summary
        super().__init__(json.dumps(summary, default=str))


# --------------------------------------------------------------------------- entry points

def handler(event, context):
    """AWS Lambda entry point: run the event's jobs; return the summary or raise RunFailed."""
    global _logging_ready
    if not _logging_ready:
        setup_logging()
        _logging_ready = True
    remaining = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining = lambda: context.get_remaining_time_in_millis() / 1000.0  # noqa: E731
    summary = run_event(event if isinstance(event, dict) else json.loads(event or "{}"), remaining=remaining)
    if not summary["ok"]:
        raise RunFailed(summary)
    return summary


def run_event(event, remaining=None, stop=None):
    """Restore, run the event's jobs, push; return the summary (``ok`` False on failure).

    ``remaining()`` gives the seconds left before the platform kills the run
    (Lambda's context); ``stop`` is a threading.Event that SIGTERM sets.
    Raises ConfigError/InputError for a config, credential or event problem.
    """
    started = time.monotonic()
    jobs = event_jobs(event)
    work_dir = Path(os.environ.get("SSI_BOT_WORK_DIR") or DEFAULT_WORK_DIR)
    work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = load_cloud_config(work_dir)
    names = event.get("bots") or []
    bots = config.select([names] if isinstance(names, str) else names)
    summary = {"ok": True, "jobs": jobs, "bots": [b.name for b in bots]}
    summary.update({k: event[k] for k in SCHEDULER_KEYS if k in event})
    log.info("run %s for %s%s", ", ".join(jobs), ", ".join(summary["bots"]) or "no bots",
             f" (scheduled {event['scheduled_time']})" if event.get("scheduled_time") else "")
    reddit.check_credentials(config, bots)

    db.close()          # a warm process: the last run's connection must not block a restore
    summary["restored"] = bring_up_to_date(config)
    db.open(config.db)
    try:
        summary["base"] = replica.read_state(config.db).generation
        budget = remaining() if remaining else None
        runner = Runner(dataclasses.replace(config, bots=bots), stop=stop)
        summary["ran"], summary["pushed"] = [], None
        for name in jobs:
            if runner.stop.is_set():
                summary["stopped"] = "SIGTERM"
                break
            left = remaining() if remaining else None
            if left is not None and left < TIME_RESERVE * budget:
                summary["stopped"] = f"{left:.0f}s left of {budget:.0f}s: not starting {name}"
                break
            outcome = run_job(runner, name)
            summary["ran"].append(outcome)
            if not outcome["ok"]:
                summary["ok"] = False
            try:
                pushed = replica.push(config)
            except replica.StaleState as exc:
                summary.update(ok=False, error=str(exc), stale=True)
                break
            except Exception as exc:  # noqa: BLE001 - storage trouble: stop, report, let Lambda count it
                summary.update(ok=False, error=f"push after {name}: {exc}")
                break
            if pushed is not None:
                outcome["pushed"] = summary["pushed"] = pushed.generation
        summary["skipped"] = jobs[len(summary["ran"]):]
        summary["generation"] = replica.read_state(config.db).generation
        summary["states"] = {name: report["states"] for name, report in status.collect(bots).items()}
    finally:
        db.close()
    summary["seconds"] = round(time.monotonic() - started, 2)
    (log.info if summary["ok"] else log.error)("summary %s", json.dumps(summary, default=str))
    return summary


def run_job(runner, name):
    """One job through the Runner (its lock, errors caught); its outcome as plain data."""
    errors = _ErrorLines()
    root = logging.getLogger()
    root.addHandler(errors)
    failures = runner.failures
    started = time.monotonic()
    try:
        runner.run_job(name)
    finally:
        root.removeHandler(errors)
    outcome = {"job": name, "ok": runner.failures == failures, "seconds": round(time.monotonic() - started, 2),
               "pushed": None}
    if errors.lines:
        outcome["errors"] = errors.lines
    return outcome


class _ErrorLines(logging.Handler):
    """The first few ERROR lines a job logs, for the summary."""

    def __init__(self, keep=3, width=300):
        super().__init__(logging.ERROR)
        self.lines, self.keep, self.width = [], keep, width

    def emit(self, record):
        if len(self.lines) < self.keep:
            self.lines.append(record.getMessage()[:self.width])


def setup_logging(verbose=False):
    """The CLIs' one-line-per-event logging, without boto's line per client it creates."""
    cli.setup_logging(verbose)
    for noisy in ("botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --------------------------------------------------------------------------- the event

def event_jobs(event):
    """The job names an event asks for, in order; InputError for anything else."""
    if not isinstance(event, dict):
        raise InputError(f"event: expected a JSON object, got {type(event).__name__}")
    names = event.get("jobs", event.get("job"))
    if isinstance(names, str):
        names = [names]
    if not names or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError('event: expected "jobs": [names] or "job": name (one of '
                         f'{", ".join(ONLINE_JOBS)}, or "cycle" for all of them)')
    jobs = []
    for name in names:
        if name == "cycle":
            jobs += [j for j in ONLINE_JOBS if j not in jobs]
        elif name in ONLINE_JOBS:
            jobs.append(name)
        else:
            raise InputError(f"event: unknown job {name!r} (one of {', '.join(ONLINE_JOBS)}, or \"cycle\"; "
                             "the handler pushes the state after each job by itself)")
    return jobs


# --------------------------------------------------------------------------- config and credentials

def load_cloud_config(work_dir):
    """ssi-bot.yaml from S3 or a path, with the DB, praw.ini and storage set for this run."""
    url = os.environ.get("SSI_BOT_CONFIG_S3")
    if url:
        text = _read_s3(url)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{url}: not valid YAML ({str(exc).splitlines()[0]})") from None
        try:
            # Relative model paths are relative to the application (/app/models/... in the image).
            config = parse_config(data, base_dir=ROOT)
        except ConfigError as exc:
            raise ConfigError([f"{url}: {p}" for p in exc.problems]) from None
        base, beside = ROOT, None
    else:
        path = Path(os.environ.get("SSI_BOT_CONFIG") or "ssi-bot.yaml")
        config = load_config(path)
        base, beside = path.resolve().parent, path.resolve().parent / "praw.ini"
    if os.environ.get("SSI_BOT_S3_BUCKET"):
        config.snapshots.bucket, config.snapshots.directory = os.environ["SSI_BOT_S3_BUCKET"], None
    if os.environ.get("SSI_BOT_S3_PREFIX"):
        config.snapshots.prefix = os.environ["SSI_BOT_S3_PREFIX"]
    if config.snapshots.directory:
        config.snapshots.directory = str(base / config.snapshots.directory)
    if not replica.enabled(config):
        raise ConfigError("s3.bucket is empty: a scheduled run's disk is gone when it ends, so the state DB "
                          "must live in S3 (set s3.bucket in ssi-bot.yaml, or SSI_BOT_S3_BUCKET)")
    config.db = str(work_dir / "state.db")
    # praw.ini is looked up beside the config's path: the work dir, where we write it.
    config.path = work_dir / "ssi-bot.yaml"
    text = praw_ini_text(beside)
    if text is not None:
        target = work_dir / "praw.ini"
        with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(text)
    return config


def praw_ini_text(beside=None):
    """praw.ini text from the secret, the environment or the file beside the config; or None."""
    source = os.environ.get("SSI_BOT_PRAW_SECRET")
    if source:
        if source not in _secret_cache:
            _secret_cache[source] = as_praw_ini(_fetch_secret(source), source)
        return _secret_cache[source]
    if os.environ.get("SSI_BOT_PRAW_INI"):
        return as_praw_ini(os.environ["SSI_BOT_PRAW_INI"], "SSI_BOT_PRAW_INI")
    if beside is not None and beside.is_file():
        return beside.read_text(encoding="utf-8")
    return None


def as_praw_ini(value, where):
    """praw.ini text as is, or JSON sections ``{"Bot": {"client_id": ...}}`` written as praw.ini."""
    stripped = value.strip()
    if not stripped.startswith("{"):
        return value
    try:
        sections = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: neither praw.ini text nor JSON ({exc})") from None
    if sections and all(not isinstance(v, dict) for v in sections.values()):
        # one bot's keys at the top level: the section is its username
        sections = {sections.get("username", "default"): sections}
    parser = configparser.ConfigParser(interpolation=None)
    for name, keys in sections.items():
        if not isinstance(keys, dict):
            raise ConfigError(f"{where}: section {name!r} must map keys to values")
        parser[name] = {k: str(v) for k, v in keys.items()}
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def _fetch_secret(source):
    import boto3

    try:
        if source.startswith("ssm:") or ":ssm:" in source:
            name = source[len("ssm:"):] if source.startswith("ssm:") else source
            answer = boto3.session.Session().client("ssm").get_parameter(Name=name, WithDecryption=True)
            return answer["Parameter"]["Value"]
        answer = boto3.session.Session().client("secretsmanager").get_secret_value(SecretId=source)
    except Exception as exc:  # noqa: BLE001 - one line the operator can act on
        raise ConfigError(f"SSI_BOT_PRAW_SECRET {source}: cannot read it ({_aws_error(exc)}); check the "
                          "name and that this role may read it") from None
    if "SecretString" not in answer:
        raise ConfigError(f"SSI_BOT_PRAW_SECRET {source}: a binary secret; store praw.ini as text")
    return answer["SecretString"]


def _read_s3(url):
    import boto3

    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ConfigError(f"SSI_BOT_CONFIG_S3 {url!r}: expected s3://bucket/key")
    bucket, key = url[5:].split("/", 1)
    try:
        answer = boto3.session.Session().client("s3").get_object(Bucket=bucket, Key=key)
        return answer["Body"].read().decode("utf-8")
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{url}: cannot read the config ({_aws_error(exc)}); upload ssi-bot.yaml there "
                          "and check that this role may read it") from None


def _aws_error(exc):
    error = (getattr(exc, "response", None) or {}).get("Error", {})
    return error.get("Code") or type(exc).__name__


# --------------------------------------------------------------------------- the state

def bring_up_to_date(config):
    """Make config.db the newest state; return the generation restored, or None when kept.

    Fresh sandbox: restore the newest snapshot (none yet: a new DB). Warm
    sandbox: keep a copy that is current (or newer: its last push failed and
    the next one will carry it); replace one that another runner has moved
    past; a copy that was never pushed gives way to stored snapshots.
    """
    if not os.path.exists(config.db):
        if replica.restore_if_missing(config):
            return replica.read_state(config.db).generation
        return None
    force = replica.read_state(config.db).known is None
    if force and not replica.snapshots(config):
        return None
    try:
        restored = replica.restore(config, force=force)
    except replica.NoSnapshot:
        return None
    return restored.generation if restored else None


# --------------------------------------------------------------------------- command line

def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jobs.lambda_handler", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("jobs", nargs="*", metavar="JOB",
                   help=f"jobs to run in order ({', '.join(ONLINE_JOBS)}, or cycle: all of them; default cycle)")
    p.add_argument("--bot", action="append", default=[], metavar="NAME", help="only this bot (repeat for several)")
    p.add_argument("--event", metavar="FILE", help="a scheduler event as JSON, from FILE or - (stdin)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.event:
        with (sys.stdin if args.event == "-" else open(args.event, encoding="utf-8")) as source:
            event = json.load(source)
    else:
        event = {"jobs": args.jobs or ["cycle"]}
    if args.bot:
        event["bots"] = args.bot
    stop = threading.Event()
    install_signal_handlers(stop)
    try:
        summary = run_event(event, stop=stop)
    except Exception as exc:  # noqa: BLE001 - config and input errors: one line, exit 2
        return cli.report(exc, log)
    finally:
        db.close()
    print(json.dumps(summary, indent=2, default=str))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
