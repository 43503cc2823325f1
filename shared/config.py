"""ssi-bot.yaml: every key, its type, default and meaning, in one place.

The dataclasses below *are* the schema. Each field's default is the product's
default, and its ``help`` is the comment that ``ssi-bot.yaml.example`` shows
(that file is generated from here: ``python -m shared.config --example``).

Usage::

    from shared.config import load_config
    config = load_config("ssi-bot.yaml")      # raises ConfigError, one line per problem
    for bot in config.bots:
        print(bot.name, bot.model, bot.reply.base)

Validation collects every problem before raising, names the key with its full
path (``bots[0].reply.bsae``), the bad value and what is expected. Unknown keys
are errors, with a "did you mean" hint, because a misspelt weight that silently
falls back to its default is the worst kind of bug in a bot that talks to
strangers. Relative paths (``db``, ``bots[].model``) are resolved against the
directory of the config file, so crontab and cloud schedulers can run jobs
from any working directory.

Credentials never live here: they belong in praw.ini (one section per bot,
named like the bot) or PRAW's own ``praw_*`` environment variables.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from shared.errors import ConfigError
from shared.filters import DEFAULT_NEGATIVE_KEYWORDS
from shared.generation.model import Sampling


def _key(default=dataclasses.MISSING, help="", *, check=None, factory=None):
    """A schema field: its default, the comment shown in the example, and an
    optional ``check(value) -> str | None`` that returns what was expected."""
    meta = {"help": help, "check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _between(low, high):
    def check(value):
        if not low <= value <= high:
            return f"a number from {low} to {high}"
    return check


def _at_least(low):
    def check(value):
        if value < low:
            return f"a number >= {low}"
    return check


def _one_of(*choices):
    def check(value):
        if value not in choices:
            return "one of " + ", ".join(repr(c) for c in choices)
    return check


def _hours_of_day(value):
    if any(not 0 <= h <= 23 for h in value):
        return "hours of the day from 0 to 23 (UTC)"


def _subreddit_name(value):
    names = value if isinstance(value, list) else [value]
    for name in names:
        if not name or name.startswith(("r/", "/r/")) or "+" in name or " " in name:
            return "subreddit names without 'r/', one per entry (e.g. SubSimGPT2Interactive)"


@dataclass
class ReplyWeights:
    """The reply probability: a sum of weights, capped at 1, times the age decay (shared/bot/decide.py)."""

    base: float = _key(-0.1, "starting value of the sum")
    per_depth_level: float = _key(-0.05, "added per comment level below top level (top level is depth 1)")
    human_author: float = _key(0.3, "the author looks human")
    bot_author: float = _key(
        -0.1, "the author looks like a bot (flair 'verified gpt-2', name ends in ssi/bot/gpt2)")
    positive_keyword: float = _key(0.5, "the text matches one of positive_keywords")
    new_post: float = _key(0.1, "the item is a new post")
    question: float = _key(
        0.4, "a question on a post or in a reply to the bot: '?', or one of the words what/how/when/why "
             "or you/your/yours/you're/u")
    reply_to_bot: float = _key(0.3, "the item replies to the bot")
    in_own_post: float = _key(0.5, "the item is a comment in the bot's own post")
    bare_name: float = _key(
        0.3, "the text names the bot without being a u/BOTNAME mention (the original counted it as one)")
    mention_or_message: float = _key(
        1.0, "the probability for a u/BOTNAME mention or a DM instead of the sum (the original's "
             "message_mention_reply_probability)", check=_between(0, 1))
    max_depth: int = _key(12, "never reply to comments deeper than this (top level is depth 1)", check=_at_least(0))
    age_decay_hours: float = _key(
        24.0, "the probability falls linearly to 0 as the post reaches this age", check=_at_least(0.1))
    mention_guard_depth: int = _key(
        4, "mentions get mention_or_message down to this depth; deeper they decay (loop guard)",
        check=_at_least(0))
    mention_decay_per_level: float = _key(
        0.25, "how much a mention loses per level beyond mention_guard_depth", check=_between(0, 1))


@dataclass
class DetoxifyThresholds:
    """Detoxify's labels: a text is toxic when any score is above its threshold (the
    original's values, zacc/ssi-bot utils/toxicity_helper.py:14). A label the model does
    not have is not checked (the 'original' models have no sexual_explicit)."""

    toxicity: float = _key(0.8, check=_between(0, 1))
    severe_toxicity: float = _key(0.05, check=_between(0, 1))
    obscene: float = _key(0.8, check=_between(0, 1))
    identity_attack: float = _key(0.4, check=_between(0, 1))
    insult: float = _key(0.4, check=_between(0, 1))
    threat: float = _key(0.3, check=_between(0, 1))
    sexual_explicit: float = _key(0.8, check=_between(0, 1))


TOXICITY_ENGINES = ("profanity-check", "detoxify")


@dataclass
class Toxicity:
    """A trained classifier, on top of the negative keywords (shared/bot/toxicity.py)."""

    engine: str = _key("profanity-check", "profanity-check (alt-profanity-check: offline, fast) or detoxify "
                                          "(a local checkpoint)", check=_one_of(*TOXICITY_ENGINES))
    incoming: bool = _key(True, "check what the bot reads: a toxic item gets probability 0, even a mention")
    generated: bool = _key(True, "check what the bot writes: a toxic candidate is rejected with the reason")
    threshold: float = _key(
        0.8, "profanity-check: toxic when a sentence scores this or more", check=_between(0, 1))
    checkpoint: typing.Optional[str] = _key(
        None, "detoxify: a Detoxify checkpoint file (.ckpt) on this machine; relative to this file "
              "(Detoxify cannot download one offline)")
    thresholds: DetoxifyThresholds = _key(help="detoxify: toxic when any label scores above its threshold",
                                          factory=DetoxifyThresholds)


@dataclass
class Caps:
    """Hard limits, counted from what the bot queued or posted (they hold across restarts)."""

    per_hour: int = _key(10, "replies per hour, all threads together", check=_at_least(0))
    per_day: int = _key(100, "replies per 24 hours", check=_at_least(0))
    per_thread: int = _key(6, "replies in one post's thread per 24 hours", check=_at_least(0))
    per_user: int = _key(8, "replies to one author per 24 hours", check=_at_least(0))


@dataclass
class Inbox:
    """Which inbox items the bot reads (and marks read once stored)."""

    replies: bool = _key(True, "replies to the bot's comments and posts")
    mentions: bool = _key(True, "u/BOTNAME mentions")
    messages: bool = _key(False, "private messages (DMs); they get probability 1 when on")


@dataclass
class BotSampling:
    """How one bot's replies and posts are sampled: ``shared.generation.Sampling`` (whose
    defaults are the product's) plus best-of-N."""

    temperature: float = _key(Sampling.temperature, "softmax temperature", check=_between(0.01, 5))
    top_k: int = _key(Sampling.top_k, "sample from the k likeliest tokens (0 = off)", check=_at_least(0))
    top_p: typing.Optional[float] = _key(
        None, f"nucleus sampling: smallest set with this total probability (empty = the model's "
              f"model_args.json top_p, else {Sampling.top_p})", check=_between(0.01, 1))
    repetition_penalty: float = _key(Sampling.repetition_penalty, "penalise tokens already in the text (1 = off)",
                                     check=_between(1, 3))
    max_new_tokens: int = _key(Sampling.max_new_tokens, "longest reply in tokens (also bounded by the model's context)",
                               check=_at_least(1))
    candidates: int = _key(2, "best-of-N: candidates per item in one batch; the first that passes wins",
                           check=_at_least(1))
    attempts: int = _key(3, "generation rounds per item before giving up", check=_at_least(1))


SCHEDULE_HORIZON_DAYS = 8


@dataclass
class SubmitSchedule:
    """One subreddit the bot makes its own posts in."""

    subreddit: str = _key(help="where to post", check=_subreddit_name)
    every_hours: float = _key(24.0, "one post per this many hours", check=_at_least(0.1))
    hours_of_day: list[int] = _key(help="UTC hours when posting is allowed (empty = any hour)",
                                   factory=list, check=_hours_of_day)
    flair_id: typing.Optional[str] = _key(None, "link flair template id to set on the post")
    nsfw: bool = _key(False, "mark the post NSFW")
    link_share: float = _key(0.0, "share of link posts (0 = all self posts)", check=_between(0, 1))
    image_share: float = _key(
        0.0, "share of posts that link to an image found for their title (the original's "
             "image_post_frequency; see images); with link_share at most 1 in all", check=_between(0, 1))

    # Time is cut into slots of every_hours (counted from the epoch); one post per slot, queued
    # at an allowed hour. jobs/submit.py queues by these; the console shows the next opening.
    def slot(self, at):
        """The number of the slot that the time ``at`` (epoch seconds) falls in."""
        return int(at // (self.every_hours * 3600))

    def allows(self, at):
        """True when ``at`` is at an allowed hour of the day (UTC)."""
        return not self.hours_of_day or time.gmtime(at).tm_hour in self.hours_of_day

    def next_opening(self, now, taken=()):
        """The first time from ``now`` on at which a post may be queued: an allowed hour in a slot
        not in ``taken`` (slots that already have their post). None when none comes within
        ``SCHEDULE_HORIZON_DAYS`` days."""
        length = self.every_hours * 3600
        slot, limit = self.slot(now), now + SCHEDULE_HORIZON_DAYS * 86400
        while slot * length < limit:
            at, end = max(now, slot * length), (slot + 1) * length
            while slot not in taken and at < end:
                if self.allows(at):
                    return at
                at = (at // 3600 + 1) * 3600            # the next hour of the day
            slot += 1
        return None


@dataclass
class Images:
    """Where a bot's image posts find their image: an image search API, never scraping."""

    source: str = _key("openverse", "the image search: openverse (openly licensed images, no key needed)",
                       check=_one_of("openverse"))
    search_prefix: str = _key("", "words put before the title's keywords in every search "
                                  "(the original's image_post_search_prefix)")
    openverse_url: str = _key("https://api.openverse.org", "Openverse API base URL")
    results: int = _key(10, "images tried per post, in the search's order, before falling back to a text post",
                        check=_at_least(1))


@dataclass
class Bot:
    """One reddit account driven by one model."""

    name: str = _key(help="reddit username; also the praw.ini section holding its credentials")
    model: str = _key(help="model directory (transformers or simpletransformers layout, or its best_model/)")
    subreddits: list[str] = _key(help="subreddits whose new posts and comments the bot reads",
                                 factory=list, check=_subreddit_name)
    dialect: str = _key("reply_sense", "tag dialect the model was trained on",
                        check=_one_of("reply_sense", "legacy"))
    positive_keywords: list[str] = _key(help="words that make a reply likelier (word or prefix*)", factory=list)
    negative_keywords: list[str] = _key(
        help="never read or write text with these (word or prefix*), on top of the built-in list", factory=list)
    default_negative_keywords: bool = _key(
        True, "use the built-in safe list (shared/filters.py) as well")
    excluded_authors: list[str] = _key(help="authors the bot never answers (the original's list)",
                                       factory=lambda: ["AutoModerator", "reddit", "profanitycounter"])
    toxicity: Toxicity = _key(help="a trained classifier on what the bot reads and writes", factory=Toxicity)
    reply: ReplyWeights = _key(help="reply probability weights", factory=ReplyWeights)
    caps: Caps = _key(help="spam caps", factory=Caps)
    inbox: Inbox = _key(help="inbox items to read", factory=Inbox)
    sampling: BotSampling = _key(help="sampling settings", factory=BotSampling)
    submit: list[SubmitSchedule] = _key(help="the bot's own posts, per subreddit", factory=list)
    images: Images = _key(help="image posts (submit[].image_share)", factory=Images)

    def negative_patterns(self):
        """Every negative keyword pattern this bot applies: the built-in list and its own."""
        builtin = list(DEFAULT_NEGATIVE_KEYWORDS) if self.default_negative_keywords else []
        return builtin + self.negative_keywords


@dataclass
class Schedule:
    """How often run.py runs each job, in seconds (0 = never)."""

    fetch: int = _key(60, "read new posts, comments and the inbox", check=_at_least(0))
    decide: int = _key(60, "roll the reply probability of new items", check=_at_least(0))
    generate: int = _key(60, "write replies for queued items", check=_at_least(0))
    post: int = _key(60, "post generated replies and submissions", check=_at_least(0))
    submit: int = _key(300, "queue scheduled posts", check=_at_least(0))
    prune: int = _key(86400, "delete rows past the retention window", check=_at_least(0))
    sync: int = _key(300, "snapshot the DB (when snapshots.bucket or snapshots.directory is set)",
                     check=_at_least(0))


@dataclass
class Generation:
    """The model runtime shared by all bots."""

    batch_size: int = _key(16, "prompts per forward pass (candidates count as prompts)", check=_at_least(1))
    backend: str = _key("auto", "auto picks the fastest measured here (openvino, then ctranslate2, "
                                "then transformers)",
                        check=_one_of("auto", "openvino", "ctranslate2", "transformers"))
    precision: str = _key("auto", "auto, int8 (openvino or ctranslate2), int4 (openvino), fp32 or bf16 "
                                  "(transformers)",
                          check=_one_of("auto", "int8", "int4", "fp32", "bf16"))
    device: str = _key("auto", "auto uses a GPU when present", check=_one_of("auto", "cpu", "cuda"))


@dataclass
class Snapshots:
    """Where the DB's snapshots live: an S3 bucket or a folder (off while both are empty)."""

    bucket: typing.Optional[str] = _key(None, "S3 bucket name; empty = no sync")
    prefix: str = _key("ssi-bot/", "folder inside the bucket (or sub-folder of directory); "
                                   "'bots/a' and 'bots/a/' are the same")
    region: typing.Optional[str] = _key(None, "AWS region (empty = the SDK's default)")
    endpoint_url: typing.Optional[str] = _key(None, "any S3-compatible store (MinIO, R2, B2...)")
    directory: typing.Optional[str] = _key(
        None, "a local folder (NAS mount) instead of a bucket; relative to this file")
    keep: int = _key(48, "snapshots to keep", check=_at_least(1))


@dataclass
class Training:
    """Offline work: downloading a subreddit's history and exporting training text."""

    db: str = _key("training.db", "the training DB (SQLite); relative to this file")
    data_dir: str = _key("data", "where download keeps dump files and export writes train/eval text")
    arctic_shift_url: str = _key("https://arctic-shift.photon-reddit.com", "Arctic Shift API base URL")
    pushshift_url: str = _key("https://api.pullpush.io", "a Pushshift-compatible API base URL (PullPush)")
    bot_authors: list[str] = _key(help="authors left out of training data, on top of the built-in bot list",
                                  factory=list)
    negative_keywords: list[str] = _key(help="leave out text with these, on top of the built-in list",
                                        factory=list)
    min_title_words: int = _key(0, "leave out posts with shorter titles", check=_at_least(0))
    min_score: typing.Optional[int] = _key(None, "leave out posts and comments scored lower (empty = keep all)")
    include_nsfw: bool = _key(True, "keep NSFW posts")
    all_chains: bool = _key(False, "one sample per comment chain instead of one per post")
    max_comments: int = _key(10, "comments per sample, at most", check=_at_least(0))


@dataclass
class Finetune:
    """python -m jobs.finetune: simpletransformers' GPT-2 finetuning, with the community's settings."""

    name: str = _key("mybot", "the run folder: output_dir/NAME/best_model is the model the bot loads")
    base_model: typing.Optional[str] = _key(
        None, "GPT-2 directory to start from (transformers or simpletransformers layout); relative to this file")
    init: typing.Optional[str] = _key(
        None, "no base model: a fresh GPT-2 of this size (tiny or 124M), tokenizer trained on train.txt",
        check=_one_of("tiny", "124M"))
    output_dir: str = _key("models", "where run folders live; relative to this file")
    epochs: int = _key(4, "passes over train.txt; best_model keeps the lowest eval loss", check=_at_least(1))
    learning_rate: float = _key(1e-4, "AdamW learning rate (linear decay after 6% warmup)", check=_between(1e-7, 1))
    max_seq_length: int = _key(512, "tokens per training block (the model's context at most)",
                               check=_between(8, 1024))
    sliding_window: bool = _key(True, "cut samples longer than a block into overlapping windows (false: keep the start)")
    train_batch_size: int = _key(4, "blocks per forward pass (also for evaluation)", check=_at_least(1))
    gradient_accumulation_steps: int = _key(1, "forward passes per optimizer step", check=_at_least(1))
    evaluate_during_training_steps: int = _key(
        2000, "evaluate on eval.txt (and keep a better best_model) every this many steps, and at each epoch end",
        check=_at_least(1))
    save_steps: int = _key(0, "also checkpoint every this many steps (0 = at evaluations and epoch ends only)",
                           check=_at_least(0))
    keep_checkpoints: int = _key(2, "newest resumable checkpoints kept (124M: 1.5 GB each)", check=_at_least(1))
    seed: int = _key(42, "seed of the weights (init), data order and dropout")
    fp16: typing.Optional[bool] = _key(None, "mixed precision on a CUDA GPU (empty = on when there is one)")


@dataclass
class Config:
    """The whole of ssi-bot.yaml."""

    db: str = _key("ssi-bot.db", "the state DB (SQLite); relative to this file")
    bots: list[Bot] = _key(help="the bots this runner drives", factory=list)
    reddit_endpoint: typing.Optional[str] = _key(
        None, "base URL of a Reddit-compatible API (the local sandbox); empty = reddit.com")
    user_agent: str = _key("ssi-bot/1.0 (GPT-2 bot framework; u/{bot})", "PRAW user agent; {bot} = bot name")
    retention_days: float = _key(30.0, "prune rows older than this", check=_at_least(1))
    schedule: Schedule = _key(help="run.py's job intervals", factory=Schedule)
    generation: Generation = _key(help="model runtime", factory=Generation)
    snapshots: Snapshots = _key(help="state DB snapshots in S3 or a folder (python -m jobs.sync)",
                                factory=Snapshots)
    training: Training = _key(help="download and export (offline jobs)", factory=Training)
    finetune: Finetune = _key(help="python -m jobs.finetune (offline job)", factory=Finetune)

    path: typing.Optional[Path] = field(default=None, metadata={"internal": True})
    warnings: list = field(default_factory=list, metadata={"internal": True})

    def bot(self, name):
        """The bot called ``name`` (case-insensitive), or ConfigError."""
        for bot in self.bots:
            if bot.name.lower() == name.lower():
                return bot
        known = ", ".join(b.name for b in self.bots) or "none"
        raise ConfigError(f"--bot {name}: no such bot in {self.path} (bots: {known})")

    def select(self, names):
        """The bots named on the command line (all when ``names`` is empty)."""
        return [self.bot(n) for n in names] if names else list(self.bots)


# --------------------------------------------------------------------------- loading

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _public_fields(cls):
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def _convert(value, hint, path, problems):
    """Check ``value`` against the type ``hint``; return the converted value."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, inner, path, problems)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, problems)
    if origin is list:
        (inner,) = typing.get_args(hint)
        if not isinstance(value, list):
            problems.append(f"{path}: got {value!r}, expected a list")
            return []
        return [_convert(v, inner, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if hint is float and isinstance(value, str):
        # YAML 1.1 reads 1e-4 (no dot) as a string; it is what people write for a learning rate.
        try:
            value = float(value)
        except ValueError:
            pass
    ok = (isinstance(value, hint) and not (hint is int and isinstance(value, bool))) or (
        hint is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        problems.append(f"{path}: got {value!r}, expected {_TYPE_NAMES.get(hint, hint.__name__)}")
        return value
    return float(value) if hint is float else value


def _build(cls, data, path, problems):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{path or 'the file'}: got {data!r}, expected a mapping of keys")
        return cls() if all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
                            for f in _public_fields(cls)) else None
    fields = {f.name: f for f in _public_fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            where = f"{path}.{key}" if path else str(key)
            suggestion = f"did you mean '{hint[0]}'?" if hint else "known keys: " + ", ".join(fields)
            problems.append(f"{where}: unknown key ({suggestion})")
    values = {}
    for name, f in fields.items():
        where = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"{where}: missing, expected {f.metadata['help']}")
            continue
        before = len(problems)
        value = _convert(data[name], hints[name], where, problems)
        check = f.metadata.get("check")
        if check and len(problems) == before and value is not None:
            expected = check(value)
            if expected:
                problems.append(f"{where}: got {data[name]!r}, expected {expected}")
        values[name] = value
    try:
        return cls(**values)
    except TypeError:  # a required key was missing; already reported
        return None


def _check_bots(config, problems):
    seen = set()
    for i, bot in enumerate(config.bots):
        if bot is None:
            continue
        if bot.name.lower() in seen:
            problems.append(f"bots[{i}].name: {bot.name!r} appears twice, expected one entry per account")
        seen.add(bot.name.lower())
        if bot.toxicity and bot.toxicity.engine == "detoxify" and not bot.toxicity.checkpoint:
            problems.append(f"bots[{i}].toxicity.checkpoint: missing, expected a Detoxify checkpoint file on this "
                            f"machine when engine is detoxify (Detoxify cannot download one offline)")
        slots = [s.subreddit.lower() for s in bot.submit if s]
        for sub in {s for s in slots if slots.count(s) > 1}:
            problems.append(f"bots[{i}].submit: r/{sub} appears twice, expected one schedule per subreddit")
        for j, schedule in enumerate(bot.submit):
            shares = (schedule.link_share, schedule.image_share) if schedule is not None else (0, 0)
            if all(isinstance(x, (int, float)) and 0 <= x <= 1 for x in shares) and sum(shares) > 1:
                problems.append(f"bots[{i}].submit[{j}]: link_share {schedule.link_share} + image_share "
                                f"{schedule.image_share} is over 1, expected shares of the posts that add up to 1 at most")


# Keys that were renamed: old name -> new name. A file with the old name still loads,
# with one warning line saying what to rename.
RENAMED_KEYS = {"s3": "snapshots"}


def _renamed(data, problems):
    """``data`` with renamed top-level keys under their new names; warnings to log."""
    if not isinstance(data, dict):
        return data, []
    data, warnings = dict(data), []
    for old, new in RENAMED_KEYS.items():
        if old not in data:
            continue
        value = data.pop(old)
        if new in data:
            problems.append(f"{old}: renamed to '{new}', and both are set: keep only '{new}'")
            continue
        data[new] = value
        warnings.append(f"{old}: renamed to '{new}' (same keys); rename it in the file")
    return data, warnings


def parse_config(data, base_dir=Path(".")):
    """Validate an already-parsed YAML mapping; return a Config or raise ConfigError.

    Warnings about renamed keys are in ``config.warnings``.
    """
    problems = []
    data, warnings = _renamed(data, problems)
    config = _build(Config, data, "", problems)
    if config is not None:
        _check_bots(config, problems)
    if problems:
        raise ConfigError(problems)
    base_dir = Path(base_dir)
    config.db = str((base_dir / config.db).resolve()) if config.db != ":memory:" else config.db
    for bot in config.bots:
        bot.model = str((base_dir / bot.model).resolve())
        if bot.toxicity.checkpoint:
            bot.toxicity.checkpoint = str((base_dir / bot.toxicity.checkpoint).resolve())
    config.training.db = str((base_dir / config.training.db).resolve())
    if config.snapshots.directory:
        config.snapshots.directory = str((base_dir / config.snapshots.directory).resolve())
    config.training.data_dir = str((base_dir / config.training.data_dir).resolve())
    config.warnings = warnings
    return config


def load_config(path, optional=False):
    """Read and validate ssi-bot.yaml at ``path``; raise ConfigError naming every problem.

    With ``optional``, a missing file gives the defaults (no bots): the
    offline jobs (download, export, finetune) work without a bot config.
    """
    path = Path(path)
    if optional and not path.exists():
        config = parse_config({}, base_dir=Path.cwd())
        config.path = path
        return config
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file (copy ssi-bot.yaml.example to {path.name} "
                          "and edit it, or pass --config PATH)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: not valid YAML ({problem})") from None
    try:
        config = parse_config(data, base_dir=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError([f"{path}: {p}" for p in exc.problems]) from None
    config.path = path
    for warning in config.warnings:
        logging.getLogger("config").warning("%s: %s", path, warning)
    return config


# --------------------------------------------------------------------------- the example file

EXAMPLE_BOT = {"name": "MyBot-GPT2", "model": "models/mybot/best_model",
               "subreddits": ["SubSimGPT2Interactive"],
               "submit": [{"subreddit": "SubSimGPT2Interactive"}]}


def _yaml_value(value):
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...")


def _example_lines(cls, values, indent):
    pad = " " * indent
    lines = []
    for f in _public_fields(cls):
        value = values[f.name] if f.name in values else _default(f)
        comment = f"  # {f.metadata['help']}" if f.metadata.get("help") else ""
        if dataclasses.is_dataclass(value):
            lines.append(f"{pad}{f.name}:{comment}")
            lines += _example_lines(type(value), {}, indent + 2)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            item_cls = typing.get_args(typing.get_type_hints(cls)[f.name])[0]
            lines.append(f"{pad}{f.name}:{comment}")
            for item in value:
                item_lines = _example_lines(item_cls, item, indent + 4)
                item_lines[0] = f"{pad}  - " + item_lines[0].lstrip()
                lines += item_lines
        else:
            lines.append(f"{pad}{f.name}: {_yaml_value(value)}{comment}")
    return lines


def _default(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def example_yaml():
    """ssi-bot.yaml.example: every key with its default and meaning."""
    header = [
        "# ssi-bot configuration. Copy to ssi-bot.yaml and edit.",
        "# Every key is shown with its default; delete what you do not change.",
        "# Credentials are not here: put them in praw.ini (copy praw_template.ini),",
        "# one section per bot, named like the bot.",
        "",
    ]
    return "\n".join(header + _example_lines(Config, {"bots": [EXAMPLE_BOT]}, 0)) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--example"]:
        sys.stdout.write(example_yaml())
    elif len(sys.argv) == 3 and sys.argv[1] == "--check":
        try:
            load_config(sys.argv[2])
        except ConfigError as exc:
            sys.stderr.write(str(exc) + "\n")
            sys.exit(2)
        print(f"{sys.argv[2]}: ok")
    else:
        sys.stderr.write("usage: python -m shared.config --example | --check FILE\n")
        sys.exit(2 if sys.argv[1:] not in (["-h"], ["--help"]) else 0)
