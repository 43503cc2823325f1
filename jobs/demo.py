"""The offline demo: a bot living on a local reddit, with no account and no network.

    python run.py --demo [--cycles N] [--no-console]   # the same as: python -m jobs.demo [...]
    python -m jobs.demo --rebuild-model                 # (re)build models/demo and exit

Starts the reddit sandbox in this process, writes a config and praw.ini for a
demo bot into ``.demo/`` (wiped at each start), makes sure the demo model
exists (``models/demo``, trained by the project's own export → finetune
pipeline on generated threads; built on first use), then runs the bot's
normal cycle (fetch, decide, submit, generate, post) while simulated humans
keep posting, commenting, answering the bot and mentioning it. The log shows
what the bot reads, decides and posts; the end prints the conversations.
While it runs, the operator console (``python -m jobs.console``, in its own
process) serves the demo's state at the address printed first; ``--no-console``
skips it.

Everything the demo runs is the real product: the same jobs, config, DB,
PRAW over HTTP, and model loading a real bot uses.
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from jobs import Runner, install_signal_handlers, status
from shared import cli
from shared.config import load_config
from shared.state import db

log = logging.getLogger("demo")

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / ".demo"
BOT = "DemoBot-GPT2"
SUBREDDIT = "SubSimDemo"
CYCLE_PAUSE_SECONDS = 3

HUMANS = ("alice_in_chains", "bob_the_builder", "carol_sings", "dave_grohl_fan")
POSTS = (
    ("What is everyone doing this weekend?", "I am thinking about a hike if the weather holds."),
    ("Is it just me or is coffee better in the morning?", "Genuinely curious what you all think."),
    ("Show me your favourite cat picture", ""),
    ("I finally fixed my bike", "Took three weekends and a lot of swearing, but it rides."),
    ("Best pizza topping, go", "Pineapple people, explain yourselves."),
)
COMMENTS = (
    "Ha, same here.", "Why would you do that?", "This is the best thing I have read today.",
    "Do you really think so?", "I disagree, but I like your style.", "What about the cats though?",
    "Tell me more!", "I tried that once. Never again.", "How did you even find this sub?",
    "You are a very strange bot and I love it.",
)


def write_world(url, model_dir):
    """Config and praw.ini for the demo bot, in a fresh .demo/ directory."""
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir()
    config = {
        "db": "state.db",
        "reddit_endpoint": url,
        "bots": [{
            "name": BOT, "model": str(model_dir), "subreddits": [SUBREDDIT],
            # Livelier than a real bot: the demo should show replies within a minute.
            "reply": {"base": 0.2},
            # the small demo model often writes an empty reply: more candidates, fewer misses
            "sampling": {"max_new_tokens": 64, "candidates": 4},
            "submit": [{"subreddit": SUBREDDIT, "every_hours": 1}],
        }],
        "schedule": {"fetch": 5, "decide": 5, "generate": 5, "post": 5, "submit": 60, "prune": 3600},
    }
    path = DEMO_DIR / "ssi-bot.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    (DEMO_DIR / "praw.ini").write_text(
        f"[{BOT}]\nclient_id=demo\nclient_secret=demo\nusername={BOT}\npassword=demo-password\n")
    return path


class Humans:
    """Simulated people: they post, comment, answer the bot and mention it."""

    def __init__(self, sandbox, seed=0):
        self.sandbox = sandbox
        self.rng = random.Random(seed)
        self.posts = []

    def start_conversation(self):
        for title, body in POSTS[:2]:
            self.post(title, body)
        self.comment_somewhere()
        self.comment_somewhere()

    def post(self, title, body):
        author = self.rng.choice(HUMANS)
        created = self.sandbox.submit(author, SUBREDDIT, title, selftext=body)
        self.posts.append(created["name"])
        log.info("human u/%s posts: %s", author, title)

    def comment_somewhere(self):
        author, text = self.rng.choice(HUMANS), self.rng.choice(COMMENTS)
        parent = self.rng.choice(self.posts)
        self.sandbox.comment(author, parent, text)
        log.info("human u/%s comments: %s", author, text)

    def answer_the_bot(self):
        replies = self.sandbox.comments_by(BOT)
        if not replies:
            return False
        target = self.rng.choice(replies[:3])
        author, text = self.rng.choice(HUMANS), self.rng.choice(COMMENTS)
        self.sandbox.comment(author, target["name"], text)
        log.info("human u/%s answers the bot: %s", author, text)
        return True

    def mention_the_bot(self):
        author = self.rng.choice(HUMANS)
        text = f"Hey u/{BOT}, what do you think about this?"
        self.sandbox.comment(author, self.rng.choice(self.posts), text)
        log.info("human u/%s mentions the bot: %s", author, text)

    def tick(self, cycle):
        """Something new happens every cycle."""
        if cycle % 3 == 2 and len(self.posts) < len(POSTS):
            self.post(*POSTS[len(self.posts)])
        elif cycle % 2 == 1:
            self.answer_the_bot() or self.comment_somewhere()
        else:
            self.mention_the_bot()


def conversations(sandbox):
    """Each of the bot's comments under what it answered, oldest first."""
    lines = []
    for mine in reversed(sandbox.comments_by(BOT)):
        parent = sandbox.thing(mine["parent_id"])
        said = parent.get("body") or parent.get("title") or ""
        lines.append(f"  u/{parent.get('author')}: {said}")
        lines.append(f"    u/{BOT}: {mine['body']}")
    for post in reversed(sandbox.submissions_by(BOT)):
        lines.append(f"  u/{BOT} posted: {post['title']}")
    return "\n".join(lines) or "  (the bot has not posted yet: run more cycles)"


def start_console(config_path):
    """``python -m jobs.console`` on a free port, reading the demo's DB; (process, its address),
    or (None, None) when it did not start (the demo goes on without it)."""
    process = subprocess.Popen([sys.executable, "-m", "jobs.console", "--config", str(config_path), "--port", "0"],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    first = process.stdout.readline().split()
    if first[:1] != ["console:"]:
        process.wait()
        log.warning("the console did not start (exit %s); the demo goes on without it", process.returncode)
        return None, None
    return process, first[1]


def stop_console(process):
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def run_demo(cycles=4, console=True):
    """Run the demo for ``cycles`` cycles (0: until Ctrl-C), with the console unless told not to;
    exit code."""
    from shared.training.demo_model import ensure_demo_model
    from shared.sandbox import Sandbox

    # One line per bot event: the sandbox's request log would drown them.
    logging.getLogger("shared.sandbox").setLevel(logging.WARNING)
    log.info("the demo model: models/demo (built on first use by export -> finetune, 1-3 minutes)")
    model_dir = ensure_demo_model()
    process = None
    try:
        with Sandbox() as sandbox:
            config_path = write_world(sandbox.url, model_dir)
            config = load_config(config_path)
            db.open(config.db)
            log.info("local reddit at %s; state in %s; model %s", sandbox.url, DEMO_DIR, model_dir)
            if console:
                process, url = start_console(config_path)
                if url:
                    print(f"console: {url}  (open it while the demo runs; --cycles 0 runs until Ctrl-C)",
                          flush=True)
            runner = run_cycles(sandbox, config, cycles)
            if process is not None:
                print("The console stopped with the demo; to look again: python -m jobs.console "
                      f"--config {config_path.relative_to(ROOT)}")
            db.close()
    finally:
        stop_console(process)
    return 1 if runner.failures else 0


def run_cycles(sandbox, config, cycles):
    """The bot's cycles while the humans act; prints what it said; the Runner."""
    humans = Humans(sandbox)
    humans.start_conversation()
    runner = Runner(config, stop=threading.Event())
    install_signal_handlers(runner.stop)
    cycle = 0
    while not runner.stop.is_set() and (cycles == 0 or cycle < cycles):
        log.info("--- cycle %d ---", cycle + 1)
        runner.cycle()
        humans.tick(cycle)
        cycle += 1
        if cycles == 0 or cycle < cycles:
            runner.stop.wait(CYCLE_PAUSE_SECONDS)
    print(f"\nWhat u/{BOT} said on r/{SUBREDDIT} in {cycle} cycles:\n{conversations(sandbox)}")
    print("\n" + status.render(status.collect(config.bots)))
    print(f"\nThe demo's config, praw.ini and state DB are in {DEMO_DIR}.")
    return runner


def rebuild_model():
    """Build models/demo again, even when a complete one is cached; exit code."""
    from shared.training.demo_model import DEMO_DIR as MODEL_DIR, ensure_demo_model

    started = time.perf_counter()
    model_dir = ensure_demo_model(MODEL_DIR, progress=True, force=True)
    print(f"demo model: {model_dir} (built in {time.perf_counter() - started:.0f} s)")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m jobs.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=4, metavar="N",
                        help="cycles before exiting (default %(default)s; 0 = until Ctrl-C)")
    parser.add_argument("--rebuild-model", action="store_true",
                        help="rebuild models/demo (export -> finetune on generated threads) and exit")
    parser.add_argument("--no-console", action="store_true",
                        help="do not serve the operator console (python -m jobs.console) while the demo runs")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    cli.setup_logging(args.verbose)
    if args.cycles < 0:
        parser.error(f"--cycles {args.cycles}: expected 0 (until Ctrl-C) or more")
    return rebuild_model() if args.rebuild_model else run_demo(args.cycles, console=not args.no_console)


if __name__ == "__main__":
    sys.exit(main())
