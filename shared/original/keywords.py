"""The original bot's keywords (regular expressions) as ssi-bot's word and ``prefix*`` patterns.

The original matched each keyword as ``re.search(r"\\b" + keyword, text, re.IGNORECASE)``
(zacc/ssi-bot utils/keyword_helper.py:68-78): a regex after a word boundary and none after
it, so ``human`` matched ``humans``. ssi-bot's keywords are whole words or ``prefix*``
(shared/filters.py). Pure::

    keyword_patterns("galax(y|ies)")     # (['galaxy*', 'galaxies*'], [])         same texts
    keyword_patterns("telescopes?")      # (['telescope*'], [])                   same texts
    keyword_patterns("moon\\b")           # (['moon'], [])                         a whole word
    keyword_patterns("buy.*followers")   # (['buy*'], ['a repeat without ...'])   matches more

Alternatives, optional parts, small character classes (``[sz]``) and bounded repeats are
expanded; a part that can match nothing at the end is dropped (a prefix matches the same
texts); a trailing ``\\b`` makes a whole word; ``\\s``, ``\\s*`` and ``\\s+`` become a space.
What patterns cannot express (``.*`` in the middle, ``\\d``, ``[a-z]``, lookarounds) keeps
only what comes before it, and the reasons say so: an empty list of reasons means the
patterns match the same texts as the regex, up to the word rules every pattern follows
(shared/filters.py: ``_`` separates words, a space matches any run of punctuation).
"""

from __future__ import annotations

import os
import re
import re._constants as sre
import re._parser as sre_parse
from dataclasses import dataclass

from shared.filters import KeywordMatcher

_SEPARATORS = " -"
_APOSTROPHES = "'’‘ʼ`"
MAX_ALTERNATIVES = 32
MAX_CLASS = 6           # letters in a character class expanded into alternatives ([sz] yes, [a-z] no)
MIN_CUT_STEM = 3        # a keyword cut short keeps at least this many letters or digits, or is dropped


@dataclass
class _Alt:
    text: str
    end: str = "open"       # open (a prefix so far), word (ends at a word boundary), cut (cut short)


class _Why:
    def __init__(self):
        self.reasons = []

    def add(self, reason):
        if reason not in self.reasons:
            self.reasons.append(reason)


def _piece(ch, why):
    """One character of a keyword as a piece of our pattern."""
    if ch.isalnum():
        return ch
    if ch in _SEPARATORS:
        return ch
    if ch in _APOSTROPHES:
        return "'"
    if ch.isspace():
        return " "
    why.add(f"{ch!r} is matched as any space or punctuation")
    return " "


def _extend(alts, pieces):
    """Every open alternative followed by each of ``pieces`` (strings)."""
    out = []
    for alt in alts:
        if alt.end != "open":
            out.append(alt)
            continue
        out += [_Alt(alt.text + p) for p in pieces]
    return out


def _concat(alts, tails):
    """Every open alternative followed by each alternative of ``tails``."""
    out = []
    for alt in alts:
        if alt.end != "open":
            out.append(alt)
            continue
        out += [_Alt(alt.text + t.text, t.end) for t in tails]
    return out


def _cut(alts, why, reason):
    why.add(reason)
    return [_Alt(a.text, "cut") if a.end == "open" else a for a in alts]


def _expand(items, alts, tail, why):
    """``alts`` followed by the parsed regex ``items``; ``tail``: nothing follows them."""
    items = list(items)
    for i, (op, av) in enumerate(items):
        last = tail and i == len(items) - 1
        alts = _step(op, av, alts, last, why, items[i + 1] if i + 1 < len(items) else None)
        if sum(a.end == "open" for a in alts) > MAX_ALTERNATIVES:
            opened = [a.text for a in alts if a.end == "open"]
            alts = [a for a in alts if a.end != "open"] + [_Alt(os.path.commonprefix(opened), "cut")]
            why.add(f"more than {MAX_ALTERNATIVES} alternatives: their common start is kept")
    return alts


def _is_separator_item(item):
    if item is None:
        return False
    op, av = item
    if op is sre.LITERAL:
        return not chr(av).isalnum()
    return op is sre.IN and all(o is sre.CATEGORY and a is sre.CATEGORY_SPACE for o, a in av)


def _step(op, av, alts, last, why, following):
    if op is sre.LITERAL:
        return _extend(alts, [_piece(chr(av), why)])
    if op is sre.ANY:
        why.add("'.' (any character) is matched as any space or punctuation")
        return _extend(alts, [" "])
    if op is sre.IN:
        return _char_class(av, alts, why)
    if op is sre.BRANCH:
        return [alt for branch in av[1] for alt in _expand(branch, alts, last, why)]
    if op is sre.SUBPATTERN:
        return _expand(av[-1], alts, last, why)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
        return _repeat(av, alts, last, why)
    if op is sre.AT:
        return _anchor(av, alts, last, why, following)
    return _cut(alts, why, f"a regex construct ({str(op).lower()}) that patterns cannot express: "
                           f"only what comes before it is kept")


def _char_class(av, alts, why):
    chars, space = set(), False
    for o, a in av:
        if o is sre.LITERAL:
            chars.add(chr(a))
        elif o is sre.RANGE and a[1] - a[0] < MAX_CLASS:
            chars.update(chr(c) for c in range(a[0], a[1] + 1))
        elif o is sre.CATEGORY and a is sre.CATEGORY_SPACE:
            space = True
        else:
            return _cut(alts, why, "a character class such as [a-z], \\d or \\w: only what comes before it is kept")
    letters = sorted(c for c in chars if c.isalnum())
    others = [c for c in chars if not c.isalnum()]
    if letters and (others or space):
        return _cut(alts, why, "a character class of letters and punctuation: only what comes before it is kept")
    if letters:
        if len(letters) > MAX_CLASS:
            return _cut(alts, why, "a wide character class: only what comes before it is kept")
        return _extend(alts, letters)
    for c in others:
        if c not in _SEPARATORS and not c.isspace():
            why.add(f"{c!r} is matched as any space or punctuation")
    return _extend(alts, [" "])


def _repeat(av, alts, last, why):
    low, high, sub = av
    unbounded = high is sre.MAXREPEAT or high > 3
    if low == 0 and unbounded and last:
        return alts          # optional and nothing after it: a prefix matches the same texts
    if all(_is_separator_item(item) for item in sub):
        # spaces of any number: a space of a pattern matches a run of them
        return alts + _extend(alts, [" "]) if low == 0 else _extend(alts, [" "])
    if low > 3:
        return _cut(alts, why, "a repeat of more than 3: only what comes before it is kept")
    if low == 0 and unbounded:
        return _cut(alts, why, "a repeat without a bound in the middle (such as .*): only what comes before it is kept")
    inner = _Why()
    one = _expand(sub, [_Alt("")], last, inner)
    for reason in inner.reasons:
        why.add(reason)
    required = alts
    for _ in range(low):
        required = _concat(required, one)
    if unbounded:
        if last:
            return required
        return _cut(required, why, "a repeat without a bound in the middle (such as .*): only what comes before it is kept")
    out, current = list(required), required
    for _ in range(low, high):
        current = _concat(current, one)
        out += current
    return out


def _anchor(av, alts, last, why, following):
    at_start = all(a.text == "" for a in alts)
    if av is sre.AT_BOUNDARY:
        if at_start:
            return alts                       # the original puts one there anyway
        if last:
            return [_Alt(a.text, "word") if a.end == "open" and a.text[-1:].isalnum() else a for a in alts]
        if _is_separator_item(following) or all(not a.text[-1:].isalnum() for a in alts if a.end == "open"):
            return alts                       # a boundary before a space holds anyway
        why.add("a \\b inside the keyword is dropped")
        return alts
    if av in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING) and at_start:
        why.add("'^' (only at the start of the text) is dropped: the pattern matches anywhere")
        return alts
    if av in (sre.AT_END, sre.AT_END_STRING) and last:
        why.add("'$' (only at the end of the text) is matched as the end of a word")
        return [_Alt(a.text, "word") if a.end == "open" else a for a in alts]
    return _cut(alts, why, "an anchor inside the keyword: only what comes before it is kept")


def _finish(alt, why):
    """One alternative as a pattern string, or None when nothing usable is left."""
    text = re.sub(r"[ -]*-[ -]*", "-", alt.text)          # a run with a hyphen: one hyphen
    text = re.sub(r"[ -]{2,}| ", " ", text)
    end = alt.end
    start = text.lstrip(_SEPARATORS + "'")
    if start != text:
        why.add("starts with a space or punctuation, which is dropped")
    text = start
    stripped = text.rstrip(_SEPARATORS + "'")
    if stripped != text:
        why.add("ends with a space or punctuation: matched as the end of a word")
        text, end = stripped, "word"
    letters = sum(c.isalnum() for c in text)
    if not letters or (end == "cut" and letters < MIN_CUT_STEM):
        return None
    pattern = text + ("" if end == "word" else "*")
    try:
        KeywordMatcher([pattern])
    except ValueError:
        return None
    return pattern


def _covers(a, b):
    """Pattern ``a`` matches every text pattern ``b`` matches."""
    stem_a, stem_b = (p.removesuffix("*").replace("-", " ") for p in (a, b))
    if a.endswith("*"):
        return stem_b.startswith(stem_a)
    return a == b


def keyword_patterns(keyword: str) -> tuple[list[str], list[str]]:
    """(patterns, reasons) for one of the original's keywords (already lowercased and stripped).

    ``patterns`` is what ssi-bot matches instead (empty: nothing usable); ``reasons`` is empty
    when they match the same texts as the original's ``\\b`` + keyword regex (up to the rules
    in BY_DESIGN), else says what differs.
    """
    why = _Why()
    try:
        parsed = sre_parse.parse(keyword, 0)
    except (re.error, RecursionError, OverflowError):
        return [], ["not a valid regular expression: the original dropped it too (utils/keyword_helper.py:54-59)"]
    if _top_level_bar(keyword):
        why.add("'|' outside a group: the original's \\b applied to the first alternative only, "
                "the others matched inside words too")
    finished = [_finish(alt, why) for alt in _expand(parsed, [_Alt("")], True, why)]
    if why.reasons:
        # Cut short or changed: a stem of one or two letters would match far more than was meant.
        finished = [p if p and sum(c.isalnum() for c in p) >= MIN_CUT_STEM else None for p in finished]
    patterns = list(dict.fromkeys(p for p in finished if p is not None))
    kept = [p for p in patterns if not any(q != p and _covers(q, p) for q in patterns)]
    if not kept:
        why.add("nothing of 3 letters or more left to match: dropped")
    elif None in finished:
        why.add("an alternative with nothing left to match is dropped")
    return kept, why.reasons


def _top_level_bar(keyword):
    """True when ``keyword`` has a '|' outside any group or character class."""
    depth, in_class, escaped = 0, False, False
    for ch in keyword:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
    return False
