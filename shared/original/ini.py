"""The original bot's ssi-bot.ini (zacc/ssi-bot) as an equivalent, commented ssi-bot.yaml.

Pure: the ini's text in; the mapping for ssi-bot.yaml, its commented YAML text
and the notes an operator must read out. No files, no clock: ``python -m
jobs.migrate`` does the I/O::

    from shared.original.ini import migrate

    result = migrate(ini_text, source="ssi-bot.ini", ini_dir="/old/ssi-bot", out_dir="/new/ssi-bot")
    result.data          # {"bots": [...]}: what ssi-bot.yaml holds (shared.config.parse_config accepts it)
    result.yaml_text     # the same, with each value's ini key in a comment (reads back as result.data)
    result.not_exact     # what could not be carried exactly, one line each
    result.by_design     # where ssi-bot behaves differently from the original on purpose
    result.as_read       # values kept as the original read them, which may not be what was meant

The ini is read the way the original read it (``configparser.ConfigParser()``
with its defaults, zacc/ssi-bot run.py:16-17, reddit_io/reddit_io.py:51-52):
every section but ``[DEFAULT]`` is one bot named like its reddit account; a
``[DEFAULT]`` key is seen by every bot unless the bot sets its own, which
replaces it (never merged, keyword lists included); keys are case-insensitive;
there are no inline comments (``key = a ; b`` is the value ``a ; b``); quotes
are kept (``''`` is two apostrophes); ``%(key)s`` is interpolated and a lone
``%`` is an error. Every key the original's code reads is converted, including
the ones its template does not show (the reply weights, ``use_reply_sense``,
the Detoxify thresholds, ``message_mention_reply_probability``, ...), with the
original's code defaults where a key is absent. Keywords go through
``shared.original.keywords``.

What the original refused at start-up (a bad number or boolean, a schedule
entry without ``=`` or with fractional hours, a flair entry without ``=``) and
what ConfigParser cannot read raise ``ConfigError``: one line per problem,
naming the section, the key and the fix. So does a bot without
``text_model_path`` (the original could not generate for it).
"""

from __future__ import annotations

import configparser
import dataclasses
import difflib
import os
import re
import textwrap
from dataclasses import dataclass, field

import yaml

from shared.config import Caps, Images, ReplyWeights, Toxicity, parse_config
from shared.errors import ConfigError
from shared.original.keywords import keyword_patterns

# --------------------------------------------------------------------------- the original's keys

# Reply weights: ini key -> (reply key, the original's code default), in the order
# reddit_io/reddit_io.py:101-109 reads them (one line each). comment_depth_reply_penalty is
# subtracted per level there; per_depth_level is added here.
WEIGHTS = {
    "base_reply_probability": ("base", -0.1),
    "comment_depth_reply_penalty": ("per_depth_level", 0.05),
    "positive_keyword_reply_boost": ("positive_keyword", 0.5),
    "human_author_reply_boost": ("human_author", 0.3),
    "bot_author_reply_boost": ("bot_author", -0.1),
    "new_submission_reply_boost": ("new_post", 0.1),
    "own_comment_reply_boost": ("reply_to_bot", 0.3),
    "interrogative_reply_boost": ("question", 0.4),
    "own_submission_reply_boost": ("in_own_post", 0.5),
}
MENTION_KEY = "message_mention_reply_probability"          # default 1 (reddit_io.py:110)
# Detoxify labels and the original's thresholds (utils/toxicity_helper.py:14); "<label>_threshold" keys.
THRESHOLDS = {"toxicity": 0.8, "severe_toxicity": 0.05, "obscene": 0.8, "identity_attack": 0.4,
              "insult": 0.4, "threat": 0.3, "sexual_explicit": 0.8}
OTHER_KEYS = (
    "text_model_path", "subreddits", "subreddit_flair_id_map", "new_submission_schedule",
    "set_nsfw_flair_on_submissions", "image_post_frequency", "image_post_search_prefix",
    "enable_inbox_replies", "submission_image_generator", "imgur_client_id", "use_reply_sense",
    "positive_keywords", "negative_keywords", "vqgan-clip_path",
)
KNOWN_KEYS = OTHER_KEYS + tuple(WEIGHTS) + (MENTION_KEY,) + tuple(f"{label}_threshold" for label in THRESHOLDS)

# The original's exclusions (reddit_io/logic_mixin.py:21) and hard-coded limits (:153, :201).
EXCLUDED_AUTHORS = ["AutoModerator", "reddit", "profanitycounter"]
MAX_DEPTH = 12
AGE_DECAY_HOURS = 24.0

BY_DESIGN = [
    "questions: ssi-bot counts '?' and the whole words what/how/when/why/you/your/yours/you're/u; the "
    "original tested substrings (logic_mixin.py:182), so 'your', 'young' and 'show' counted and "
    "'You ...' at the start of a comment did not",
    "mentions: a u/NAME mention (where the name ends) and a DM get reply.mention_or_message, mentions only "
    "down to depth reply.mention_guard_depth and less below it (a loop guard); the bot's bare name adds "
    "reply.bare_name. The original gave message_mention_reply_probability to any text containing the "
    "name, at any depth and post age (logic_mixin.py:139-143)",
    "the built-in negative keywords are whole words and prefix* patterns (shared/filters.py) covering every "
    "stem of the original's list; its stems also blocked 'trumpet', 'rapid', 'Pakistan' "
    "(utils/keyword_helper.py:14-34)",
    "keywords match where a word starts and ends on letters and digits (an '_' separates words) and a space "
    "in a phrase matches any run of spaces or punctuation; the original's \\b counted '_' as a letter "
    "and its phrases needed exactly one space",
    f"caps: at most {Caps.per_hour} replies an hour, {Caps.per_day} a day, {Caps.per_thread} per thread and "
    f"{Caps.per_user} per author a day (bots[].caps); the original had no caps",
    f"toxicity: ssi-bot checks with {Toxicity.engine} unless a bot sets toxicity.engine: detoxify and a "
    "checkpoint file; the original ran Detoxify 'unbiased-small' on every item (utils/toxicity_helper.py:24). "
    "Its thresholds are carried under toxicity.thresholds",
    "the probability is not rounded (the original rounded it to 2 decimals, logic_mixin.py:203) and "
    "never below 0 (the original's negative values also meant never)",
    "submit: one post per slot of every_hours, counted from the epoch in UTC; the original posted again "
    "once the bot's newest post in that subreddit was every_hours old (reddit_io.py:459-505)",
]

# --------------------------------------------------------------------------- the result


@dataclass
class Migration:
    """What ``migrate`` returns; see the module docstring."""

    data: dict
    yaml_text: str
    bots: list[str]
    not_exact: list[str] = field(default_factory=list)
    by_design: list[str] = field(default_factory=list)
    as_read: list[str] = field(default_factory=list)
    model_dirs: dict = field(default_factory=dict)      # bot name -> model path as written (relative to out_dir)


# --------------------------------------------------------------------------- reading the ini

def read_ini(text: str, source: str = "ssi-bot.ini") -> configparser.ConfigParser:
    """``text`` parsed exactly as the original's ``ConfigParser().read`` did; ConfigError on failure."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text, source=source)
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(f"{source}:{exc.lineno}: section [{exc.section}] appears twice "
                          f"(ConfigParser refuses that): merge the two into one") from None
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(f"{source}:{exc.lineno}: key {exc.option} appears twice in [{exc.section}] "
                          f"(ConfigParser refuses that): keep one") from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"{source}:{exc.lineno}: {exc.line.strip()!r} comes before any [section]: "
                          f"not an ssi-bot.ini (it starts with [DEFAULT] or a bot's [name])") from None
    except configparser.ParsingError as exc:
        lineno, line = exc.errors[0]
        raise ConfigError(f"{source}:{lineno}: {line.strip()!r} is neither 'key = value' nor a [section]") from None
    except configparser.Error as exc:
        raise ConfigError(f"{source}: {_first_line(exc)}") from None
    return parser


def _first_line(exc):
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class _Section:
    """One bot's keys read with the original's getters: ``get``, ``getfloat``, ``getboolean``
    with a fallback returned as given. Problems (what the original refused) are collected."""

    def __init__(self, parser, own_keys, name, source, problems):
        self.proxy = parser[name]
        self.own = own_keys
        self.name = name
        self.source = source
        self.problems = problems

    def has(self, key):
        return key in self.proxy

    def overrides_default(self, key):
        """The bot sets ``key`` itself where [DEFAULT] sets it too (its value replaces DEFAULT's)."""
        return key in self.own and key in self.proxy.parser.defaults()

    def origin(self, key):
        """Where ``key``'s value comes from, for the YAML's comments."""
        if key in self.own:
            return key
        if key in self.proxy:
            return f"{key} (from [DEFAULT])"
        return f"{key} absent: the original's default"

    def problem(self, key, message):
        self.problems.append(f"{self.source} [{self.name}] {key}: {message}")

    def get(self, key, fallback=None):
        try:
            return self.proxy.get(key, fallback)
        except configparser.InterpolationError as exc:
            self.problem(key, f"{_first_line(exc)} (ConfigParser reads %(name)s as a reference: "
                              f"write %% for a literal %)")
            return fallback

    def getfloat(self, key, fallback, where):
        value = self.get(key)
        if value is None:
            return fallback
        try:
            return float(value)
        except ValueError:
            self.problem(key, f"got {value!r}, expected a number (the original refused it at start-up: {where})"
                              + _NO_INLINE_COMMENTS * _looks_commented(value))
            return fallback

    def getboolean(self, key, fallback, where):
        value = self.get(key)
        if value is None:
            return fallback
        states = configparser.ConfigParser.BOOLEAN_STATES
        if value.lower() not in states:
            self.problem(key, f"got {value!r}, expected true/false, yes/no, on/off or 1/0 "
                              f"(the original refused it at start-up: {where})" + _NO_INLINE_COMMENTS * _looks_commented(value))
            return fallback
        return states[value.lower()]


_NO_INLINE_COMMENTS = "; ConfigParser has no inline comments: put the comment on its own line"


def _looks_commented(value):
    return bool(re.search(r"\s[;#]", value))


def _own_keys(text, source):
    """Each section's own keys, without [DEFAULT]'s: a second read where DEFAULT is a plain section."""
    raw = configparser.RawConfigParser(default_section="\x00none")
    raw.read_string(text, source=source)
    return {name: set(raw[name]) for name in raw.sections()}


def convert_keywords(value, bot, key, not_exact, as_read):
    """The original's keyword list (its raw ini value) as ssi-bot patterns; notes appended,
    each starting with [bot], the section the value was written in."""
    if value is None:
        return []
    if len(value) <= 2:
        # utils/keyword_helper.py:46,51: a value of 2 characters or fewer is not read at all.
        if value.strip():
            as_read.append(f"[{bot}] {key}: {value!r} ignored, as the original ignored values of 2 characters "
                           f"or fewer (utils/keyword_helper.py:46,51)")
        return []
    _inline_comment(value, bot, key, as_read)
    if value.strip()[:1] in "'\"" and value.strip()[-1:] == value.strip()[:1]:
        as_read.append(f"[{bot}] {key}: the quotes around {value.strip()!r} are part of the keywords "
                       f"(ConfigParser keeps them)")
    out = []
    for keyword in (k.strip() for k in value.lower().split(",")):
        if not keyword:
            consequence = ("so that bot replied to nothing and rejected every text it generated"
                           if key == "negative_keywords" else "so every text got the positive boost")
            not_exact.append(f"[{bot}] {key}: an empty keyword (a stray comma) is dropped; the original's "
                             f"regex '\\b' matched every text with a letter, {consequence}")
            continue
        patterns, reasons = keyword_patterns(keyword)
        if reasons:
            shown = ", ".join(patterns) if patterns else "nothing"
            not_exact.append(f"[{bot}] {key}: {keyword!r} -> {shown} ({'; '.join(reasons)})")
        out += [p for p in patterns if p not in out]
    return out


def _inline_comment(value, bot, key, as_read):
    if _looks_commented(value):
        as_read.append(f"[{bot}] {key}: {value!r} holds ' ;' or ' #': ConfigParser has no inline comments, "
                       f"so that text is part of the value")


# --------------------------------------------------------------------------- one bot

_SUBREDDIT = re.compile(r"^[A-Za-z0-9_]{2,21}$")


def _number(value):
    """A float as YAML shows it: 0.1 rather than 0.09999999999999998, never -0.0."""
    return round(float(value), 10) + 0.0


def _subreddits(sec, as_read):
    # reddit_io.py:59-60: .get('subreddits', 'test'), lowercased, split on ',', stripped;
    # joined with '+' for the streams (:205), so 'a+b' reads two.
    value = sec.get("subreddits", "test")
    names = []
    for entry in value.lower().split(","):
        for name in entry.split("+"):
            name = name.strip()
            if not name:
                as_read.append(f"[{sec.name}] subreddits: an empty entry in {value!r} is left out "
                               f"(the original's streams failed on it)")
                continue
            if not _SUBREDDIT.match(name):
                sec.problem("subreddits", f"{name!r} is not a subreddit name (letters, digits, '_'; "
                                          f"no 'r/'): the original could not read it either")
                continue
            if name not in names:
                names.append(name)
    return names


def _pairs(sec, key, where):
    """'a=1,b=2' as the original split it: [(a, '1'), ...]; an entry without '=' is a problem."""
    value = sec.get(key, "")
    if value == "":
        return []
    pairs = []
    for entry in value.split(","):
        parts = entry.split("=")
        if len(parts) < 2:
            sec.problem(key, f"entry {entry.strip()!r} has no '=' (the original failed at start-up: {where}): "
                             f"write subreddit=value, comma separated")
            continue
        pairs.append((parts[0].lower().strip(), parts[1].strip()))
    return pairs


def _schedule(sec, as_read):
    # reddit_io.py:68-72: subreddit lowercased, int(hours); hours <= 0 switch an entry off (:153).
    entries = {}
    for sub, hours_text in _pairs(sec, "new_submission_schedule", "reddit_io.py:70"):
        try:
            hours = int(hours_text)
        except ValueError:
            sec.problem("new_submission_schedule", f"{sub}={hours_text}: hours must be a whole number "
                                                   f"(the original's int() refused it at start-up: reddit_io.py:70)")
            continue
        if not _SUBREDDIT.match(sub):
            sec.problem("new_submission_schedule", f"{sub!r} is not a subreddit name (letters, digits, '_'; no 'r/')")
            continue
        if hours <= 0:
            as_read.append(f"[{sec.name}] new_submission_schedule: {sub}={hours} left out: the original "
                           f"never posted for hours <= 0 (reddit_io.py:153)")
            continue
        if sub in entries:
            as_read.append(f"[{sec.name}] new_submission_schedule: r/{sub} appears twice; the shorter "
                           f"interval, {min(hours, entries[sub])} hours, is kept (the original's checks let "
                           f"the shorter one post)")
            hours = min(hours, entries[sub])
        entries[sub] = hours
    return entries


def _flair_map(sec):
    # reddit_io.py:64-66: {subreddit.lower(): flair id}, the last entry of a subreddit wins.
    return dict(_pairs(sec, "subreddit_flair_id_map", "reddit_io.py:66"))


def _model_path(value, ini_dir, out_dir):
    # model_text_generator.py:111: ROOT_DIR / text_model_path, the original's checkout (the ini's folder).
    path = value if os.path.isabs(value) else os.path.join(ini_dir, value)
    if not os.path.isabs(path):
        return value
    path = os.path.normpath(path)
    relative = os.path.relpath(path, out_dir) if out_dir else path
    # Inside the new file's folder: relative; elsewhere: absolute (no ../../ chains).
    return (path if relative.startswith("..") else relative).replace(os.sep, "/")


def _bot(sec, ini_dir, out_dir, notes, comments, path):
    """The ssi-bot.yaml mapping of one bot section; comments keyed by YAML path."""
    name = sec.name
    not_exact, as_read = notes["not_exact"], notes["as_read"]

    def note(keys, text):
        comments[path + keys] = text

    bot = {"name": name}
    note(("name",), f"[{name}]: the reddit account, also its praw.ini section")

    before = len(sec.problems)
    model = sec.get("text_model_path")
    model = (model or "").strip()
    if not model and len(sec.problems) == before:
        sec.problem("text_model_path", "missing (the original could not generate for this bot: "
                                       "model_text_generator.py:111); set the model's directory")
    bot["model"] = _model_path(model, ini_dir, out_dir) if model else ""
    note(("model",), sec.origin("text_model_path") + (", relative to the ini's folder then, to this file now"
                                                      if bot["model"] != model else ""))

    reply_sense = sec.getboolean("use_reply_sense", True, "reddit_io.py:94")
    bot["dialect"] = "reply_sense" if reply_sense else "legacy"
    note(("dialect",), sec.origin("use_reply_sense") + (" (true)" if not sec.has("use_reply_sense") else ""))

    bot["subreddits"] = _subreddits(sec, as_read)
    note(("subreddits",), sec.origin("subreddits") + (" ('test')" if not sec.has("subreddits") else "")
         + ", lowercased as the original read them")

    for key in ("positive_keywords", "negative_keywords"):
        value = sec.get(key, "")
        # Notes on an inherited list name [DEFAULT], once, rather than each bot.
        bot[key] = convert_keywords(value, name if key in sec.own else "DEFAULT", key, not_exact, as_read)
        text = sec.origin(key) + ", as word or prefix* patterns"
        if sec.overrides_default(key):
            text += " (replaces [DEFAULT]'s, as in the original)"
        note((key,), text)
    bot["default_negative_keywords"] = True
    note(("default_negative_keywords",), "the original's built-in list was always on "
                                         "(utils/keyword_helper.py:42); ssi-bot's covers it")
    bot["excluded_authors"] = list(EXCLUDED_AUTHORS)
    note(("excluded_authors",), "the original's list (reddit_io/logic_mixin.py:21)")

    bot["toxicity"] = _toxicity(sec, notes, comments, path + ("toxicity",))
    note(("toxicity",), "the original ran Detoxify on every item; switch engine to detoxify with a checkpoint "
                        "to run it here (its thresholds are below)")

    bot["reply"] = _reply(sec, notes, comments, path + ("reply",))
    note(("reply",), "the reply probability (reddit_io/logic_mixin.py:83-203)")

    caps = Caps()
    bot["caps"] = {f.name: getattr(caps, f.name) for f in dataclasses.fields(Caps)}
    note(("caps",), "not in the original (it had no caps): ssi-bot's defaults")

    messages = sec.getboolean("enable_inbox_replies", False, "reddit_io.py:81")
    bot["inbox"] = {"replies": True, "mentions": True, "messages": messages}
    note(("inbox", "replies"), "the original always answered replies to the bot (reddit_io.py:163-200)")
    note(("inbox", "mentions"), "the original always answered mentions")
    note(("inbox", "messages"), sec.origin("enable_inbox_replies"))

    bot["submit"], bot["images"] = _submit(sec, notes, comments, path)
    return bot


def _toxicity(sec, notes, comments, path):
    thresholds = {}
    for label, default in THRESHOLDS.items():
        key = f"{label}_threshold"
        # utils/toxicity_helper.py:30-36: read only when present; otherwise the class default.
        value = sec.getfloat(key, default, "utils/toxicity_helper.py:36") if sec.has(key) else default
        if not 0 <= value <= 1:
            clamped = min(1.0, max(0.0, value))
            notes["as_read"].append(f"[{sec.name}] {key}: {value} written as {clamped} (a score is from 0 to 1, "
                                    f"so the original flagged the same texts)")
            value = clamped
        thresholds[label] = _number(value)
        comments[path + ("thresholds", label)] = sec.origin(key)
    engine = Toxicity().engine
    comments[path + ("engine",)] = (f"ssi-bot's default; the original used Detoxify 'unbiased-small' "
                                    f"(utils/toxicity_helper.py:24)")
    return {"engine": engine, "thresholds": thresholds}


def _reply(sec, notes, comments, path):
    reply = {}
    for key, (ours, default) in WEIGHTS.items():
        value = sec.getfloat(key, default, f"reddit_io.py:{101 + list(WEIGHTS).index(key)}")
        if key == "comment_depth_reply_penalty":
            reply[ours] = _number(-value)
            comments[path + (ours,)] = (f"{sec.origin(key)} ({_number(value)}), sign flipped: the original "
                                        f"subtracted it per level (logic_mixin.py:159)")
        else:
            reply[ours] = _number(value)
            comments[path + (ours,)] = sec.origin(key)
    weights = ReplyWeights()
    reply["bare_name"] = weights.bare_name
    comments[path + ("bare_name",)] = ("ssi-bot only: the original counted the bare name as a mention "
                                       "(see the notes at the top)")
    value = sec.getfloat(MENTION_KEY, 1.0, "reddit_io.py:110")
    if not 0 <= value <= 1:
        clamped = min(1.0, max(0.0, value))
        notes["as_read"].append(f"[{sec.name}] {MENTION_KEY}: {value} written as {clamped} (a probability "
                                f"above 1 always replies, below 0 never, as in the original)")
        value = clamped
    reply["mention_or_message"] = _number(value)
    comments[path + ("mention_or_message",)] = sec.origin(MENTION_KEY)
    reply["max_depth"] = MAX_DEPTH
    comments[path + ("max_depth",)] = "hard-coded in the original (logic_mixin.py:153)"
    reply["age_decay_hours"] = AGE_DECAY_HOURS
    comments[path + ("age_decay_hours",)] = "hard-coded in the original (logic_mixin.py:201)"
    reply["mention_guard_depth"] = weights.mention_guard_depth
    comments[path + ("mention_guard_depth",)] = "ssi-bot only: the loop guard (the original had none)"
    reply["mention_decay_per_level"] = weights.mention_decay_per_level
    comments[path + ("mention_decay_per_level",)] = "ssi-bot only: the loop guard"
    return reply


def _submit(sec, notes, comments, path):
    not_exact, as_read = notes["not_exact"], notes["as_read"]
    name = sec.name
    schedule = _schedule(sec, as_read)
    flairs = _flair_map(sec)
    nsfw = sec.getboolean("set_nsfw_flair_on_submissions", False, "reddit_io.py:79")
    share = sec.getfloat("image_post_frequency", 0.0, "reddit_io.py:74")
    if not 0 <= share <= 1:
        clamped = min(1.0, max(0.0, share))
        as_read.append(f"[{name}] image_post_frequency: {share} written as {clamped} (the original drew "
                       f"random() < it: above 1 is always, below 0 never)")
        share = clamped
    share = _number(share)
    generator = sec.get("submission_image_generator", "scraper")
    images_used = share > 0 and bool(schedule)

    entries = []
    for i, (sub, hours) in enumerate(schedule.items()):
        where = path + ("submit", i)
        entry = {"subreddit": sub, "every_hours": float(hours)}
        comments[where + ("subreddit",)] = (sec.origin("new_submission_schedule")
                                            + ", lowercased as the original did (its new-post prompt says r/" + sub + ")")
        comments[where + ("every_hours",)] = "new_submission_schedule's hours"
        if sub in flairs:
            entry["flair_id"] = flairs[sub]
            comments[where + ("flair_id",)] = sec.origin("subreddit_flair_id_map")
        entry["nsfw"] = nsfw
        comments[where + ("nsfw",)] = sec.origin("set_nsfw_flair_on_submissions")
        entry["link_share"] = 0.0
        comments[where + ("link_share",)] = "the original had no link posts but image posts"
        entry["image_share"] = share
        comments[where + ("image_share",)] = sec.origin("image_post_frequency")
        entries.append(entry)
    if schedule:
        unused = sorted(set(flairs) - set(schedule))
        if unused:
            as_read.append(f"[{name}] subreddit_flair_id_map: no schedule for {', '.join('r/' + s for s in unused)}, "
                           f"so its flair is not used (as in the original: flair is for new posts only)")
    elif share > 0:
        as_read.append(f"[{name}] image_post_frequency: {share} has no effect without new_submission_schedule "
                       f"(as in the original)")

    prefix = sec.get("image_post_search_prefix")
    search_prefix = prefix if prefix is not None else ""
    if len(search_prefix) >= 2 and search_prefix[0] in "'\"" and search_prefix[-1] == search_prefix[0]:
        search_prefix = search_prefix[1:-1].strip()
        written = f"as {search_prefix!r}" if search_prefix else "as an empty prefix"
        text = (f"[{name}] image_post_search_prefix: {prefix} written {written}: ConfigParser keeps quotes, "
                f"so the original searched for {prefix}, quotes included")
        (not_exact if images_used else as_read).append(text + ("" if images_used else " (no effect: no image posts)"))
    images = {"source": Images().source, "search_prefix": search_prefix}
    comments[path + ("images", "search_prefix")] = sec.origin("image_post_search_prefix")
    comments[path + ("images", "source")] = ("the original scraped Bing images (generators/scraper); ssi-bot "
                                             "searches Openverse's openly licensed ones")
    if images_used:
        if generator == "scraper":
            not_exact.append(f"[{name}] image posts: the original scraped Bing's image results for the title "
                             f"(generators/scraper); ssi-bot finds openly licensed images through Openverse's API")
        elif generator == "text2image":
            not_exact.append(f"[{name}] submission_image_generator = text2image: generating images (VQGAN-CLIP) "
                             f"is not supported; image posts find an image through Openverse instead")
        else:
            not_exact.append(f"[{name}] submission_image_generator = {generator}: not an image generator the "
                             f"original knew; image posts find an image through Openverse")
    elif sec.has("submission_image_generator") and generator != "scraper":
        not_exact.append(f"[{name}] submission_image_generator = {generator}: not supported (no effect: "
                         f"no image posts)")
    for key, why in (("imgur_client_id", "ssi-bot posts an image's URL and never uploads to imgur "
                                         "(the original uploaded only generated images, reddit_io.py:353-359)"),
                     ("vqgan-clip_path", "ssi-bot does not generate images")):
        if sec.has(key):
            not_exact.append(f"[{name}] {key}: dropped: {why}")
    return entries, images


# --------------------------------------------------------------------------- the whole file

def _unknown_keys(parser, name, own, as_read, referenced):
    for key in sorted(set(parser[name]) - set(KNOWN_KEYS) - referenced):
        hint = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
        where = "[DEFAULT]" if key not in own else f"[{name}]"
        as_read.append(f"{where} {key}: not a key the original read, so it had no effect"
                       + (f" (did you mean {hint[0]}?)" if hint else ""))


def _threshold_leak(parser, bots, not_exact):
    """The original kept one threshold map for every bot (utils/toxicity_helper.py:14,36): each bot's
    section overwrote the labels it set, in the order run.py read them (run.py:29-33)."""
    shared = dict(THRESHOLDS)
    for name in bots:
        for label in THRESHOLDS:
            if f"{label}_threshold" in parser[name]:
                shared[label] = parser[name][f"{label}_threshold"]
    for name in bots:
        own = {label: parser[name].get(f"{label}_threshold") for label in THRESHOLDS}
        differ = [f"{label} {value}" for label, value in own.items() if value is not None and value != shared[label]]
        if differ:
            not_exact.append(f"[{name}] toxicity thresholds: the original kept one threshold map for all bots "
                             f"(utils/toxicity_helper.py:14,36), so after start-up this bot checked what it read "
                             f"with the last section's values, not its own {', '.join(differ)}; here each bot "
                             f"keeps its own")


def migrate(text: str, source: str = "ssi-bot.ini", ini_dir: str = "", out_dir: str = "") -> Migration:
    """Convert the ini ``text``; ``ini_dir``/``out_dir`` (absolute) place model paths. ConfigError on bad input."""
    parser = read_ini(text, source)
    own = _own_keys(text, source)
    bots = parser.sections()
    if not bots:
        raise ConfigError(f"{source}: no bot sections: the original ran one bot per [section] besides "
                          f"[DEFAULT], named like its reddit account")
    problems, comments = [], {}
    referenced = {m.lower() for m in re.findall(r"%\((\w+)\)s", text)}      # keys that only feed %(key)s
    notes = {"not_exact": [], "as_read": []}
    data = {"bots": []}
    for i, name in enumerate(bots):
        sec = _Section(parser, own.get(name, set()), name, source, problems)
        _unknown_keys(parser, name, own.get(name, set()), notes["as_read"], referenced)
        data["bots"].append(_bot(sec, ini_dir, out_dir, notes, comments, ("bots", i)))
    # A [DEFAULT] key is reported once, not per bot.
    notes = {kind: list(dict.fromkeys(" ".join(line.split()) for line in lines)) for kind, lines in notes.items()}
    _threshold_leak(parser, bots, notes["not_exact"])
    if problems:
        raise ConfigError(problems)
    try:
        parse_config(data)
    except ConfigError as exc:
        raise ConfigError([f"{source}: the migrated config is refused: {p}" for p in exc.problems]) from None
    result = Migration(data=data, yaml_text="", bots=bots, not_exact=notes["not_exact"], by_design=list(BY_DESIGN),
                       as_read=notes["as_read"], model_dirs={b["name"]: b["model"] for b in data["bots"]})
    result.yaml_text = render(result, comments, source)
    return result


# --------------------------------------------------------------------------- writing YAML with comments

def _flow(value):
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip().removesuffix(
        "\n...").strip()


def _comment(text):
    return f"  # {' '.join(text.split())}" if text else ""


def _lines(value, path, comments, indent):
    pad = " " * indent
    lines = []
    for key, item in value.items():
        here = path + (key,)
        comment = _comment(comments.get(here, ""))
        if isinstance(item, dict):
            lines.append(f"{pad}{key}:{comment}")
            lines += _lines(item, here, comments, indent + 2)
        elif isinstance(item, list) and item and isinstance(item[0], dict):
            lines.append(f"{pad}{key}:{comment}")
            for i, entry in enumerate(item):
                entry_lines = _lines(entry, here + (i,), comments, indent + 4)
                entry_lines[0] = f"{pad}  - " + entry_lines[0].lstrip()
                lines += entry_lines
        else:
            flow = _flow(item)
            if isinstance(item, list) and len(pad) + len(key) + len(flow) > 100:
                lines.append(f"{pad}{key}:{comment}")
                lines += [f"{pad}  - {_flow(v)}" for v in item]
            else:
                lines.append(f"{pad}{key}: {flow}{comment}")
    return lines


def _block(title, lines):
    if not lines:
        return []
    out = ["#", f"# {title}:"]
    for line in lines:
        out += textwrap.wrap(" ".join(line.split()), 100, initial_indent="#   - ", subsequent_indent="#     ",
                             break_long_words=False, break_on_hyphens=False)
    return out


def render(result: Migration, comments: dict, source: str = "ssi-bot.ini") -> str:
    """``result.data`` as commented YAML: each value's comment names the ini key it came from."""
    header = [
        f"# ssi-bot.yaml, migrated from {os.path.basename(source)} by python -m jobs.migrate.",
        "# Each value's comment names the ini key it came from ('from [DEFAULT]' when a bot inherited",
        "# it, 'absent' when the original used its code default). Keys the original did not have keep",
        "# ssi-bot's defaults (ssi-bot.yaml.example lists them all). Credentials stay in praw.ini: put the",
        "# original's praw.ini beside this file (same sections, one per bot).",
    ]
    header += _block("Not carried exactly", result.not_exact)
    header += _block("Different from the original on purpose", result.by_design)
    header += _block("Carried as the original read the ini (check that this is what you meant)", result.as_read)
    text = "\n".join(header + [""] + _lines(result.data, (), comments, 0)) + "\n"
    if yaml.safe_load(text) != result.data:
        raise AssertionError("the commented YAML does not read back as the migrated config")
    return text
