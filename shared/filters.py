"""Checks on text: negative keywords, mentions of a user, repetition of the thread, reddit's limits.

Negative keywords keep a bot away from distasteful text: the decide job does
not answer it, the generate job rejects candidates containing it, and the
export job leaves it out of training data. A keyword is a whole word
(``rape``) or a word prefix (``nazi*``), case-insensitive. Pure: plain text
in, plain data out.

The built-in list (``DEFAULT_NEGATIVE_KEYWORDS``) covers every stem of the
original bot's list (zacc/ssi-bot utils/keyword_helper.py:14-34: politics,
religion, violence, extremism, self-harm, sexual abuse, slurs) plus more
slurs, and drops its false positives. The rule:

- **A word is blocked in every sense.** "I'd murder a pizza", "execution
  time" and "a chink in the armour" are blocked like "murder", "execution"
  and the slur: skipping a harmless thread costs the bot one reply, while
  answering a violent or hateful one can cost the account (a ban reaches the
  owner's other accounts too), and no word list can read intent.
- **A different word that merely contains a blocked one passes.** The
  original matched stems as prefixes, so "trumpet", "rapid", "Pakistan",
  "spicy", "pedometer", "Semitic languages", "Clintonville" and "kysely" were
  blocked; here a stem is a whole word, and a prefix (``*``) only where no
  innocent word shares it ("murder*" yes, "rap*" no). Words inside other
  words never match either ("therapist", "grape", "Scunthorpe", "crisis").
  Compounds that are their own innocent word pass ("Assassin's Creed",
  "cocktail", "hitman" are not on the list at all).

Usage::

    from shared.filters import DEFAULT_NEGATIVE_KEYWORDS, KeywordMatcher, check_reply

    negative = KeywordMatcher(DEFAULT_NEGATIVE_KEYWORDS)
    negative.matches("Nazis played the trumpet")        # ['nazis']

    reason = check_reply(candidate, negative, thread_texts=[post.title, parent.body])
    if reason is None:
        ...  # acceptable; otherwise reason is e.g. "too long: 10234 > 10000 chars"

    mentions("hi u/Lovebot", "Lovebot")                  # True; "u/Lovebot-fan" is someone else
    names("Lovebot said so", "Lovebot")                  # True: the bare name, a weaker signal

Keyword patterns: letters and digits, with inner spaces, hyphens or
apostrophes; a trailing ``*`` makes a prefix. An inner space or hyphen matches
any run of spaces and punctuation ("self-harm" matches "self harm"), an
apostrophe matches any apostrophe or none ("don't" matches "don’t" and
"dont"). Words are runs of letters and digits, so "_nazi_" (markdown italics)
and "nazi's" match too. Text is NFKC-normalised first, so full-width letters
match their plain forms.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

# Every stem of the original bot's list (utils/keyword_helper.py:14-34, 56 stems), each
# as the words it meant, plus slurs and self-harm phrases it lacked. See the module
# docstring for the rule; tests/test_filters.py holds the must-block and must-pass table.
DEFAULT_NEGATIVE_KEYWORDS = (
    # slurs
    "nigger*", "nigga", "niggas", "niggaz", "faggot*", "fag", "fags", "tranny", "trannies",
    "retard", "retards", "retarded", "kike*", "spic", "spics", "chink", "chinks", "gook", "gooks",
    "paki", "pakis", "wetback*", "dago", "dagos",
    # hate, extremism, terror
    "nazi*", "hitler*", "heil", "holocaust*", "auschwitz", "swastika*", "kkk", "white power",
    "white supremac*", "supremacy", "supremacist*", "master race", "aryan", "aryans", "ethnic cleansing",
    "genocid*", "concentration camp*", "racist*", "racism", "homophob*", "antisemit*", "anti-semit*",
    "nationalist*", "nationalism", "terroris*", "jihad*", "isis", "hate you", "hate u", "hate ya",
    # groups and places of the original's politics and religion stems
    "black people", "jew", "jews", "jewish", "jewry", "muslim*", "israel", "israeli", "israelis",
    "palestin*",
    # politicians
    "trump", "trumpism", "trumpist*", "putin", "clinton", "clintons",
    # violence
    "murder*", "torture*", "torturing", "torturous", "behead*", "decapitat*", "execution",
    "executions", "executioner*", "columbine", "school shoot*",
    # sexual violence, abuse of children, abortion
    "rape", "raped", "rapes", "raping", "rapist*", "pedo", "pedos", "pedophil*", "paedo", "paedos",
    "paedophil*", "child porn*", "loli", "lolis", "lolicon", "incest*", "molest*", "abortion*",
    # self-harm
    "suicid*", "kill yourself", "kill myself", "kys", "self-harm*", "selfharm*",
)

SIMILARITY_THRESHOLD = 0.95   # a reply this similar to a text of its thread repeats it


# --- mentions ----------------------------------------------------------------------------

def _mention(name: str) -> re.Pattern:
    # "u/NAME" or "/u/NAME", any case, where the name ends: reddit names are made of letters,
    # digits, "_" and "-", so u/Lovebot-fan and u/Lovebot_2 are other people; after a word or
    # a slash it is part of a link (reddit.com/u/NAME), not a mention
    return re.compile(rf"(?<![\w/-])/?u/{re.escape(name)}(?![\w-])", re.IGNORECASE)


def mentions(text: str | None, name: str) -> bool:
    """True when ``text`` mentions ``u/NAME`` (see ``_mention`` for the rule)."""
    return _mention(name).search(text or "") is not None


def strip_mentions(text: str, name: str) -> str:
    """``text`` without its mentions of ``u/NAME``; other names and links stay."""
    return _mention(name).sub("", text)


def _bare_name(name: str) -> re.Pattern:
    # NAME where a reddit name ends on both sides ("Lovebot-fan" and "xLovebot" are other
    # names), with or without "u/": the original counted the bot's name anywhere in the text
    # as a mention (zacc/ssi-bot reddit_io/logic_mixin.py:139-143)
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)


def names(text: str | None, name: str) -> bool:
    """True when ``text`` contains the name ``NAME`` as a whole name, with or without ``u/``."""
    return _bare_name(name).search(text or "") is not None


@dataclass(frozen=True)
class RedditLimits:
    """The longest texts reddit accepts, in characters."""

    comment: int = 10_000
    title: int = 300            # and at least 1
    self_post_body: int = 40_000


REDDIT_LIMITS = RedditLimits()


# --- keywords ---------------------------------------------------------------------------

_LETTER_OR_DIGIT = r"[^\W_]"
_APOSTROPHES = "'’‘ʼ`"
_PATTERN_PIECE = re.compile(rf"[\s-]+|[{_APOSTROPHES}]|.")


def _pattern_regex(pattern: str) -> str:
    """The regex of one keyword pattern (already stripped and lowercased)."""
    stem = pattern.removesuffix("*")
    if not stem or "*" in stem or not (stem[0].isalnum() and stem[-1].isalnum()):
        raise ValueError(f"keyword pattern {pattern!r}: a word or phrase that starts and ends "
                         f"with a letter or digit, with an optional trailing * for a prefix")
    pieces = []
    for piece in _PATTERN_PIECE.findall(stem):
        if piece[0].isspace() or piece[0] == "-":
            pieces.append(r"[\W_]+")
        elif piece in _APOSTROPHES:
            pieces.append(f"[{_APOSTROPHES}]?")
        else:
            pieces.append(re.escape(piece))
    rest_of_word = f"{_LETTER_OR_DIGIT}*" if pattern.endswith("*") else ""
    return f"(?<!{_LETTER_OR_DIGIT}){''.join(pieces)}{rest_of_word}(?!{_LETTER_OR_DIGIT})"


class KeywordMatcher:
    """Finds whole-word (``rape``) and word-prefix (``nazi*``) keywords in text.

    ``patterns`` are stripped, lowercased and deduplicated (``.patterns``); an
    invalid one raises ValueError naming it. All of them compile to one regex.
    An empty list matches nothing.
    """

    def __init__(self, patterns: Iterable[str]):
        cleaned = (p.strip().lower() for p in patterns)
        self.patterns = tuple(dict.fromkeys(p for p in cleaned if p))
        # Longest first, so a phrase wins over a word it starts with.
        regexes = [_pattern_regex(p) for p in sorted(self.patterns, key=len, reverse=True)]
        self._regex = re.compile("|".join(regexes), re.IGNORECASE) if regexes else None
        # Every pattern starts with a literal word. An ASCII text that holds none
        # of those words, in any case, cannot match: a substring search says so
        # about ten times faster than the regex, and most texts are like that.
        # (Non-ASCII patterns may match ASCII text after case folding: no shortcut.)
        heads = {re.split(r"[\s\-'’‘ʼ`]", p.removesuffix("*"))[0] for p in self.patterns}
        self._heads = tuple(sorted(heads)) if all(p.isascii() for p in self.patterns) else None

    def matches(self, text: str) -> list[str]:
        """The matched words of ``text``, lowercased, each once, in order of appearance."""
        if self._regex is None or not text:
            return []
        if self._heads is not None and text.isascii():
            lowered = text.lower()
            if not any(head in lowered for head in self._heads):
                return []
        found = self._regex.finditer(unicodedata.normalize("NFKC", text))
        return list(dict.fromkeys(m.group().lower() for m in found))

    def __repr__(self):
        return f"KeywordMatcher({list(self.patterns)!r})"


# --- similarity -------------------------------------------------------------------------

def _normalised(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def similarity(a: str, b: str) -> float:
    """How alike two texts are, 0 to 1: ``difflib.SequenceMatcher`` ratio, ignoring case
    and whitespace runs. Quadratic in the worst case: about 1 s for two 10,000-char texts.
    """
    return difflib.SequenceMatcher(None, _normalised(a), _normalised(b), autojunk=False).ratio()


def _first_repeat(text: str, others: Iterable[str], threshold: float) -> float | None:
    """The similarity of ``text`` to the first of ``others`` at least ``threshold`` alike."""
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    # SequenceMatcher caches what it learns about its second sequence: set it once.
    matcher.set_seq2(_normalised(text))
    for other in others:
        if not other:   # a deleted body or a link post's missing text repeats nothing
            continue
        matcher.set_seq1(_normalised(other))
        # Cheap upper bounds first: texts of very different lengths cannot be alike.
        if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
            continue
        ratio = matcher.ratio()
        if ratio >= threshold:
            return ratio
    return None


def repeats_thread(reply: str, thread_texts: Iterable[str], threshold: float = SIMILARITY_THRESHOLD) -> bool:
    """True when ``reply`` is at least ``threshold`` similar to any of ``thread_texts``."""
    return _first_repeat(reply, thread_texts, threshold) is not None


# --- checks on generated text -----------------------------------------------------------

# a tag's closing half: in generated text it means a tag the model misspelt without its "<|"
TAG_RESIDUE = "|>"


def _too_long(text: str, limit: int) -> str | None:
    return f"too long: {len(text)} > {limit} chars" if len(text) > limit else None


def _broken_tag(*texts: str) -> str | None:
    # "let me knoweoopr|>": the stop rule ends replies at "<|" and never saw this one
    return "broken tag: |>" if any(TAG_RESIDUE in text for text in texts) else None


def _negative(matcher: KeywordMatcher, *texts: str) -> str | None:
    words = list(dict.fromkeys(w for text in texts for w in matcher.matches(text)))
    return f"negative keyword: {', '.join(words)}" if words else None


def check_reply(text: str | None, negative_keywords: KeywordMatcher, thread_texts: Iterable[str] = (),
                *, threshold: float = SIMILARITY_THRESHOLD, limits: RedditLimits = REDDIT_LIMITS) -> str | None:
    """None when ``text`` may be posted as a comment, else why not, in a few words.

    ``text`` is what ``tagging.extract_reply`` returned (None: "unclosed").
    The reasons, in the order checked: ``"unclosed"``, ``"empty"``,
    ``"too long: 10234 > 10000 chars"``, ``"broken tag: |>"``, ``"negative keyword: xyz"``,
    ``"repeats the thread (similarity 0.97)"`` (against ``thread_texts``).
    """
    if text is None:
        return "unclosed"
    if not text.strip():
        return "empty"
    reason = _too_long(text, limits.comment) or _broken_tag(text) or _negative(negative_keywords, text)
    if reason:
        return reason
    ratio = _first_repeat(text, thread_texts, threshold)
    return f"repeats the thread (similarity {ratio:.2f})" if ratio is not None else None


def check_submission(title: str | None, body: str, negative_keywords: KeywordMatcher,
                     recent_titles: Iterable[str] = (), *, threshold: float = SIMILARITY_THRESHOLD,
                     limits: RedditLimits = REDDIT_LIMITS) -> str | None:
    """None when ``title`` and ``body`` may be posted as a new post, else why not.

    ``title`` None means ``tagging.extract_submission`` found no closed title.
    Pass "" as ``body`` for a link post. The reasons, in the order checked:
    ``"unclosed"``, ``"empty title"``, ``"title too long: 312 > 300 chars"``,
    ``"body too long: 40100 > 40000 chars"``, ``"broken tag: |>"``, ``"negative keyword: xyz"``,
    ``"repeats a recent title (similarity 0.97)"`` (against ``recent_titles``).
    """
    if title is None:
        return "unclosed"
    if not title.strip():
        return "empty title"
    if reason := _too_long(title, limits.title):
        return f"title {reason}"
    if reason := _too_long(body, limits.self_post_body):
        return f"body {reason}"
    if reason := _broken_tag(title, body) or _negative(negative_keywords, title, body):
        return reason
    ratio = _first_repeat(title, recent_titles, threshold)
    return f"repeats a recent title (similarity {ratio:.2f})" if ratio is not None else None
