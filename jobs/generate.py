"""Write the text of every queued reply and post, in batches, across bots.

    python -m jobs.generate [--config ssi-bot.yaml] [--bot NAME]

Takes every item waiting for text (state ``queued``), builds its prompt from
the cached thread (shared/tagging.py, the same code that writes training
data), and generates ``sampling.candidates`` candidates per item in shared
batches: bots that name the same model directory share one loaded model and
one batch. Each candidate is checked (closed, not empty, no negative
keyword, not a repeat of the thread, within reddit's limits: ``CandidateCheck``,
which jobs.rehearse shows too), then the ones that pass go through the bot's
toxicity check (shared/bot/toxicity.py), one classifier call per round; the
first that passes everything is stored and the item moves to ``generated``.
Every candidate is stored with its verdict (a toxic one with the classifier's
reason). A private message is prompted with its whole conversation, a comment
with its thread up to the post. Items with no good candidate get another
round, up to ``sampling.attempts``, then ``failed`` with the reasons.

Idempotent: only ``queued`` items are taken; every candidate and attempt is
committed as it is made, so a crash loses at most the batch in flight.
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from dataclasses import astuple

from shared import cli, filters, generation, tagging
from shared.bot import toxicity
from shared.state import db

log = logging.getLogger("generate")

# Items a prompt shows (docs/tag-format.md): at most 6, the post only at depth <= 5; and
# the repeats check compares a reply with as many.
PROMPT_ITEMS = 7
# How far up the cache is walked for a prompt. Roles are judged on the whole thread (a
# comment by OP is tagged so when the post is out of the window, as the original did), so
# the walk goes to the post; fetch reads ancestors only this deep anyway.
THREAD_LIMIT = 1000


def run(config, bots, **_options):
    by_name = {bot.name: bot for bot in bots}
    items = list(db.Item.select().where(db.Item.bot.in_(list(by_name)) & (db.Item.state == db.QUEUED))
                 .order_by(db.Item.created_at, db.Item.id))
    if not items:
        log.info("nothing queued")
        return
    # One batch per (model, sampling): bots that share both share the forward passes.
    groups = defaultdict(list)
    for item in items:
        bot = by_name[item.bot]
        groups[(bot.model, astuple(bot.sampling))].append(item)
    for (model_dir, _), group in groups.items():
        model = generation.load(model_dir, backend=config.generation.backend,
                                precision=config.generation.precision, device=config.generation.device)
        generate_group(model, group, by_name, config.generation.batch_size)


def generate_group(model, items, bots, batch_size):
    """Rounds of generation for ``items`` (same model and sampling) until each is done."""
    bot = bots[items[0].bot]
    pending = [QueuedItem(item, bots[item.bot]) for item in items]
    for queued in pending:
        if queued.item.prompt != queued.prompt:
            queued.item.prompt = queued.prompt
            queued.item.save(only=[db.Item.prompt])
    while pending:
        sampling = generation.Sampling.from_settings(bot.sampling, model_args=model.model_args)
        outputs = model.generate([q.prompt for q in pending], sampling,
                                 n=bot.sampling.candidates, batch_size=batch_size, progress=len(pending) > 4)
        verdicts = [[queued.check(raw) for raw in candidates] for queued, candidates in zip(pending, outputs)]
        screen([queued.check for queued in pending], verdicts)
        pending = [queued for queued, candidates, checked in zip(pending, outputs, verdicts)
                   if not queued.settle(candidates, checked)]


def screen(checks, verdicts):
    """Reject the toxic ones among the candidates that passed the filters, in place.

    ``verdicts[i][j]`` is ``(fields, reason)`` from ``checks[i]`` for its candidate j. The
    classifier costs mostly per call, so each bot's toxicity check runs once for the whole round.
    """
    batches = defaultdict(list)          # checker -> [(i, j, text)]
    for i, check in enumerate(checks):
        if check.toxicity is None:
            continue
        for j, (fields, _) in enumerate(verdicts[i]):
            if fields is not None:
                # a post's title and body, or the reply: what would appear on reddit
                text = "\n".join(part for part in (fields.get("title"), fields["text"]) if part)
                batches[check.toxicity].append((i, j, text))
    for check, entries in batches.items():
        for (i, j, _), reason in zip(entries, check.reasons([text for _, _, text in entries])):
            if reason:
                verdicts[i][j] = (None, reason)


class QueuedItem:
    """One queued item: its prompt, and the check its candidates must pass."""

    def __init__(self, item, bot):
        self.item, self.bot = item, bot
        if item.is_submission:
            self.prompt = tagging.submission_prompt(item.subreddit, item.is_link, bot.dialect)
            self.check = CandidateCheck(bot, submission=True, is_link=item.is_link)
        else:
            chain = db.ancestry(item.key, THREAD_LIMIT)
            self.prompt, thread_texts = reply_context(bot, chain)
            self.check = CandidateCheck(bot, thread_texts=thread_texts)

    def settle(self, candidates, verdicts):
        """Store this round's candidates with their ``verdicts`` ((fields, reason) each, from
        ``check`` and ``screen``); True when the item is done (generated or failed)."""
        item, attempts = self.item, self.item.gen_attempts + 1
        accepted, reasons = None, []
        with db.database.atomic():
            for raw, verdict in zip(candidates, verdicts):
                fields, reason = (None, "not needed") if accepted else verdict
                db.Candidate.create(item=item, raw=raw, accepted=fields is not None, reason=reason)
                if fields is not None:
                    accepted = fields
                elif reason != "not needed":
                    reasons.append(reason)
            if accepted:
                item.move(db.GENERATED, gen_attempts=attempts, reason=None, **accepted)
                log.info("%s %s: generated after %d round(s): %s", item.bot, item.key, attempts,
                         cli.preview(accepted.get("title") or accepted["text"]))
                return True
            summary = ", ".join(sorted(set(reasons)))
            if attempts >= self.bot.sampling.attempts:
                # every round's reasons: the ones that made the operator's bot fail are rarely all in the last
                every = {c.reason for c in item.candidates.where(db.Candidate.reason != "not needed")}
                item.move(db.FAILED, gen_attempts=attempts,
                          reason=f"no acceptable text after {attempts} rounds ({', '.join(sorted(every))})")
                log.warning("%s %s: failed, %s", item.bot, item.key, item.reason)
                return True
            item.move(db.QUEUED, gen_attempts=attempts, reason=f"round {attempts} rejected: {summary}")
            return False


def reply_context(bot, chain):
    """(prompt, texts the reply must not repeat) for ``bot``'s reply to the last of ``chain``
    (cached Things, oldest first: a post's comments up to the one replied to, or the
    messages of a private conversation)."""
    thread = to_conversation(chain) if chain[-1].kind == "message" else to_thread(chain)
    shown = chain[-PROMPT_ITEMS:]
    return (tagging.reply_prompt(thread, bot.name, bot.dialect),
            [t.body for t in shown] + [t.title for t in shown if t.title])


class CandidateCheck:
    """What a candidate must pass to be posted: the one check jobs.generate stores and
    jobs.rehearse shows. ``check(raw)`` gives (fields to store, None) for an acceptable
    candidate, else (None, the reason); ``check.text(raw)`` what it would post.

    The toxicity check (``toxicity``, None when the bot's is off) runs on the candidates
    that pass, batched over a whole round: ``screen``. Both jobs apply it.
    """

    def __init__(self, bot, *, submission=False, is_link=False, thread_texts=()):
        self.bot, self.submission, self.is_link = bot, submission, is_link
        self.thread_texts = list(thread_texts)
        self.negative = filters.KeywordMatcher(bot.negative_patterns())
        self.toxicity = toxicity.checker(bot.toxicity, bot.name) if bot.toxicity.generated else None

    def text(self, raw):
        """What would be posted from ``raw``: the reply, or "title\n\nbody"; None if unclosed."""
        if self.submission:
            parts = tagging.extract_submission(raw, self.bot.dialect)
            return None if parts is None else "\n\n".join(p for p in parts if p)
        return tagging.extract_reply(raw, self.bot.dialect)

    def __call__(self, raw):
        if self.submission:
            parts = tagging.extract_submission(raw, self.bot.dialect)
            if parts is None:
                return None, "unclosed title"
            title, body = parts
            reason = filters.check_submission(title, "" if self.is_link else body, self.negative)
            return (None, reason) if reason else (dict(title=title, text=body), None)
        text = tagging.extract_reply(raw, self.bot.dialect)
        if text is None:
            return None, "unclosed"
        reason = filters.check_reply(text, self.negative, self.thread_texts)
        return (None, reason) if reason else (dict(text=text), None)


def to_thread(chain):
    """A tagging.Thread from cached Things, oldest first."""
    post, comments = None, []
    for thing in chain:
        if thing.kind == "submission":
            post = tagging.Post(subreddit=thing.subreddit or "", author=thing.author, title=thing.title or "",
                                body=thing.body or "", is_link=thing.is_link,
                                poll_options=tuple(thing.poll_options or ()))
        else:
            comments.append(tagging.Comment(author=thing.author, body=thing.body or ""))
    return tagging.Thread(post=post, comments=tuple(comments))


def to_conversation(chain):
    """A tagging.Conversation from cached messages, oldest first; the subject is known when the
    chain reaches the conversation's first message (the one without a parent)."""
    subject = chain[0].title or "" if chain and chain[0].parent is None else None
    return tagging.Conversation(subject, tuple(tagging.Comment(m.author, m.body or "") for m in chain))


def main(argv=None):
    return cli.main("generate", __doc__, run, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
