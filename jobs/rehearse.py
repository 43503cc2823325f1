"""Try a bot on one thread before going live: the prompt, N candidates and the decision.

    python -m jobs.rehearse --bot NAME (--thread URL_OR_ID | --text "..." | --file thread.json)
                            [-n N] [--seed S] [--json]

The successor of the original bot's test_model.py. For the thread it shows:
- the reply probability, rule by rule, as ``jobs.decide`` computes it (the spam caps
  and the random draw are left out: they depend on what the bot did lately);
- the prompt, exactly as ``jobs.generate`` builds it (shared/tagging.py);
- N candidates sampled with the bot's settings (and its model's model_args.json), each
  with what would be posted and the verdict of the check ``jobs.generate`` applies.

Read-only: it never posts, votes or marks anything read (the reddit client refuses
every request but a read), and it neither opens nor writes the state DB.

Where the thread comes from:
  --thread URL_OR_ID   a post or comment URL (reddit.com or the sandbox), a fullname
                       (t3_..., t1_..., t4_... for a private message) or a post id,
                       read from the bot's reddit_endpoint with its praw.ini section
  --text "..."         a new self post by u/rehearsal_user (--author) in the bot's first
                       subreddit (--subreddit): the first line is its title, the rest its body
  --file thread.json   a thread written by hand (the last item is the one answered):
      {"post": {"subreddit": "test", "author": "alice", "title": "Hi", "body": "",
                "is_link": false, "poll_options": [], "link_flair": null,
                "author_flair": null, "age_hours": 0},
       "comments": [{"author": "bob", "body": "Hello", "author_flair": null}]}
    or a private conversation:
      {"subject": "Question", "messages": [{"author": "gina", "body": "Are you a bot?"}],
       "age_hours": 0}

For other tools (the console), ``rehearse(config, bot, target, n, seed)`` returns a
``Rehearsal``; ``target_from_*`` build its target.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jobs.decide import screen as screen_incoming
from jobs.decide import situation_of
from jobs.generate import CandidateCheck, reply_context, screen
from shared import cli, generation
from shared.bot import reddit
from shared.bot.decide import Situation, reply_probability
from shared.errors import InputError
from shared.state.db import Thing

log = logging.getLogger("rehearse")

HOUR = 3600.0
FILE_AUTHOR = "rehearsal_user"
# How far up a --thread comment is followed: deeper than any reply the bot may make.
MAX_LEVELS = 100


@dataclass
class Target:
    """What the bot would answer: the chain up to it (Things, oldest first; not stored) and
    how it reached the bot (``source`` as fetch records it: listing, mention, message...)."""

    chain: list
    source: str = "listing"


@dataclass
class CandidateView:
    raw: str                    # the model's continuation, as generated
    text: str | None            # what would be posted (None: never closed)
    verdict: str                # "ok", or why jobs.generate would reject it

    @property
    def accepted(self) -> bool:
        return self.verdict == "ok"


@dataclass
class Rehearsal:
    bot: str
    dialect: str
    model: str
    prompt: str
    probability: float
    reasons: list[str]          # the probability, rule by rule (shared/bot/decide.py)
    situation: dict             # what decide knew about the item
    sampling: dict
    candidates: list[CandidateView] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
        for candidate, view in zip(data["candidates"], self.candidates):
            candidate["accepted"] = view.accepted
        return data


def rehearse(config, bot, target, n=None, seed=None, model=None) -> Rehearsal:
    """The probability, the prompt and ``n`` (default: the bot's ``sampling.candidates``)
    checked candidates for ``bot``'s reply to the last thing of ``target.chain``.

    Read-only: touches neither reddit nor the state DB. ``model`` may be given already
    loaded (shared.generation.load); ``seed`` makes the candidates reproducible.
    """
    chain = target.chain
    thing = chain[-1]
    post = chain[0] if chain[0].kind == "submission" else None
    parent = chain[-2] if len(chain) > 1 else None
    # decide's toxicity check of what the bot reads, then its rules
    [situation] = screen_incoming([situation_of(thing, post, parent, target.source, bot.name, time.time())], bot)
    probability, reasons = reply_probability(situation, bot)
    prompt, thread_texts = reply_context(bot, chain)
    check = CandidateCheck(bot, thread_texts=thread_texts)

    model = model or generation.load(bot.model, backend=config.generation.backend,
                                     precision=config.generation.precision, device=config.generation.device)
    sampling = generation.Sampling.from_settings(bot.sampling, seed=seed, model_args=model.model_args)
    n = n or bot.sampling.candidates
    [raws] = model.generate([prompt], sampling, n=n, batch_size=max(n, config.generation.batch_size))
    verdicts = [[check(raw) for raw in raws]]
    screen([check], verdicts)              # generate's toxicity check, as generate applies it
    candidates = [CandidateView(raw=raw, text=check.text(raw), verdict=reason or "ok")
                  for raw, (_, reason) in zip(raws, verdicts[0])]
    return Rehearsal(bot=bot.name, dialect=bot.dialect, model=str(model.path), prompt=prompt,
                     probability=probability, reasons=reasons, situation=asdict(situation),
                     sampling=asdict(sampling), candidates=candidates)


# --- targets ----------------------------------------------------------------------------

_URL_IDS = re.compile(r"/comments/(?P<post>[a-z0-9]+)(?:/[^/]*/(?P<comment>[a-z0-9]+))?", re.IGNORECASE)
_FULLNAME = re.compile(r"^t[134]_[a-z0-9]+$", re.IGNORECASE)


def fullname_of(url_or_id: str) -> str:
    """The fullname a ``--thread`` value names: a post or comment URL, a fullname, a post id."""
    value = url_or_id.strip()
    if _FULLNAME.match(value):
        return value.lower()
    if re.fullmatch(r"[a-z0-9]+", value, re.IGNORECASE):
        return f"t3_{value.lower()}"
    short = re.match(r"^(?:https?://)?redd\.it/(?P<post>[a-z0-9]+)/?$", value, re.IGNORECASE)
    if short:
        return f"t3_{short['post'].lower()}"
    match = _URL_IDS.search(value)
    if match is None:
        raise InputError(f"--thread {url_or_id}: not a reddit post or comment URL, fullname (t3_..., t1_..., "
                         "t4_...) or post id")
    return f"t1_{match['comment'].lower()}" if match["comment"] else f"t3_{match['post'].lower()}"


def target_from_reddit(client, url_or_id: str) -> Target:
    """The thing a ``--thread`` value names and its ancestry, read through ``client`` (reads only)."""
    fullname = fullname_of(url_or_id)
    with reddit.translated_errors():
        if fullname.startswith("t4_"):
            messages = [reddit.thing_row(m) for m in reddit.conversation(client, fullname)]
            by_name = {m["fullname"]: m for m in messages}
            if fullname not in by_name:
                raise InputError(f"--thread {url_or_id}: no such message in the bot's inbox")
            chain = [by_name[fullname]]
            while chain[0].get("parent") in by_name:
                chain.insert(0, by_name[chain[0]["parent"]])
            return Target([Thing(**record) for record in chain], "message")
        chain = []
        wanted = fullname
        for _ in range(MAX_LEVELS):
            found = list(client.info(fullnames=[wanted]))
            if not found:
                if not chain:
                    raise InputError(f"--thread {url_or_id}: reddit knows no {wanted}")
                break   # a gap: the prompt starts below it
            record = reddit.thing_row(found[0])
            chain.insert(0, record)
            wanted = record.get("parent") or (None if wanted.startswith("t3_") else record.get("submission"))
            if record["fullname"].startswith("t3_") or not wanted:
                break
    if chain[0]["fullname"].startswith("t3_"):
        for depth, record in enumerate(chain[1:]):
            record["depth"] = depth
    return Target([Thing(**record) for record in chain], "listing")


def target_from_text(text: str, subreddit: str, author: str = FILE_AUTHOR) -> Target:
    """A new self post: the first line is its title, the rest its body."""
    title, _, body = text.strip().partition("\n")
    if not title.strip():
        raise InputError("--text: empty; give the post's title (and body after a line break)")
    return target_from_data({"post": {"subreddit": subreddit, "author": author, "title": title.strip(),
                                      "body": body.strip()}})


def target_from_file(path: Path) -> Target:
    """A thread or conversation written by hand (the module docstring shows the format)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--file {path}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise InputError(f"--file {path}: not JSON ({exc})") from None
    try:
        return target_from_data(data)
    except InputError as exc:
        raise InputError(f"--file {path}: {exc}") from None


def _text(entry, key, where, required=True):
    value = entry.get(key, "" if not required else None)
    if not isinstance(value, str) or (required and not value.strip()):
        raise InputError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value


def target_from_data(data) -> Target:
    """A ``Target`` from the JSON of ``--file`` (a post with comments, or a conversation)."""
    if not isinstance(data, dict) or not (("post" in data) ^ ("messages" in data)):
        raise InputError('expected an object with "post" (and "comments") or "subject" and "messages"')
    now = time.time()
    if "messages" in data:
        messages = data["messages"]
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise InputError('"messages": expected a non-empty list of {"author": ..., "body": ...}')
        born = now - float(data.get("age_hours") or 0) * HOUR
        chain = []
        for i, message in enumerate(messages):
            chain.append(Thing(fullname=f"t4_rehearsal{i}", author=_text(message, "author", f"messages[{i}]"),
                               body=_text(message, "body", f"messages[{i}]"),
                               title=data.get("subject", "") if i == 0 else "re: " + data.get("subject", ""),
                               parent=f"t4_rehearsal{i - 1}" if i else None, created_utc=born))
        return Target(chain, "message")
    post, comments = data["post"], data.get("comments") or []
    if not isinstance(post, dict) or not isinstance(comments, list) or not all(isinstance(c, dict) for c in comments):
        raise InputError('"post": expected an object, "comments": a list of objects')
    born = now - float(post.get("age_hours") or 0) * HOUR
    chain = [Thing(fullname="t3_rehearsal", subreddit=_text(post, "subreddit", "post"),
                   author=_text(post, "author", "post"), title=_text(post, "title", "post"),
                   body=_text(post, "body", "post", required=False), is_link=bool(post.get("is_link")),
                   poll_options=post.get("poll_options") or None, link_flair=post.get("link_flair"),
                   author_flair=post.get("author_flair"), created_utc=born)]
    for i, comment in enumerate(comments):
        chain.append(Thing(fullname=f"t1_rehearsal{i}", subreddit=chain[0].subreddit,
                           author=_text(comment, "author", f"comments[{i}]"),
                           body=_text(comment, "body", f"comments[{i}]"), author_flair=comment.get("author_flair"),
                           parent=chain[-1].fullname, submission="t3_rehearsal", depth=i, created_utc=born))
    return Target(chain, data.get("source") or "listing")


# --- the command ----------------------------------------------------------------------------

def report(rehearsal: Rehearsal) -> str:
    """The rehearsal as an operator reads it."""
    s = rehearsal.sampling
    lines = [
        f"bot {rehearsal.bot} ({rehearsal.dialect}), model {rehearsal.model}",
        f"reply probability {rehearsal.probability:.2f}: " + "; ".join(rehearsal.reasons),
        "  (jobs.decide's rules; the spam caps and the random draw are not applied here)",
        f"prompt ({len(rehearsal.prompt)} characters):",
        "  " + rehearsal.prompt,
        f"{len(rehearsal.candidates)} candidates (temperature {s['temperature']}, top_k {s['top_k']}, "
        f"top_p {s['top_p']}, repetition_penalty {s['repetition_penalty']}, max_new_tokens {s['max_new_tokens']}"
        + (f", seed {s['seed']}" if s["seed"] is not None else "") + "):",
    ]
    for number, candidate in enumerate(rehearsal.candidates, 1):
        verdict = "ok" if candidate.accepted else f"rejected: {candidate.verdict}"
        lines.append(f"  {number}. [{verdict}] {candidate.text!r}")
        lines.append(f"     raw: {candidate.raw!r}")
    return "\n".join(lines)


def run(config, bots, thread=None, text=None, file=None, candidates=None, seed=None, as_json=False,
        author=FILE_AUTHOR, subreddit=None, **_options):
    if len(bots) != 1:
        names = ", ".join(b.name for b in config.bots) or "none"
        raise InputError(f"--bot NAME: name the one bot to rehearse (bots: {names})")
    (bot,) = bots
    if thread:
        reddit.check_credentials(config, [bot])
        target = target_from_reddit(reddit.connect(bot, config, read_only=True), thread)
    elif text is not None:
        target = target_from_text(text, subreddit or (bot.subreddits[0] if bot.subreddits else "test"), author)
    else:
        target = target_from_file(Path(file))
    rehearsal = rehearse(config, bot, target, n=candidates, seed=seed)
    sys.stdout.write((json.dumps(rehearsal.to_json(), indent=1) if as_json else report(rehearsal)) + "\n")
    return rehearsal


def add_arguments(parser):
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--thread", metavar="URL_OR_ID", help="a post or comment URL, a fullname or a post id")
    source.add_argument("--text", help="a new self post: first line the title, the rest the body")
    source.add_argument("--file", metavar="THREAD_JSON", help="a thread or conversation written by hand")
    parser.add_argument("-n", "--candidates", type=int, metavar="N",
                        help="candidates to sample (default: the bot's sampling.candidates)")
    parser.add_argument("--seed", type=int, help="seed the sampling, for a reproducible rehearsal")
    parser.add_argument("--json", dest="as_json", action="store_true", help="print the rehearsal as JSON")
    parser.add_argument("--author", default=FILE_AUTHOR, help="--text: the post's author (default: %(default)s)")
    parser.add_argument("--subreddit", help="--text: the post's subreddit (default: the bot's first)")


def main(argv=None):
    return cli.main("rehearse", __doc__, run, add_arguments, argv=argv, use_db=False, use_lock=False)


if __name__ == "__main__":
    sys.exit(main())
