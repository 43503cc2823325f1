"""Negative keywords, repetition of the thread, and reddit's limits."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.filters import (
    DEFAULT_NEGATIVE_KEYWORDS, REDDIT_LIMITS, KeywordMatcher, RedditLimits, check_reply, check_submission,
    repeats_thread, similarity,
)

NOTHING = KeywordMatcher([])
DEFAULT = KeywordMatcher(DEFAULT_NEGATIVE_KEYWORDS)


# --- keyword matching -------------------------------------------------------------------

@pytest.mark.parametrize("pattern, text", [
    ("trump", "I play the trumpet"),
    ("trump", "trumped up charges"),
    ("rape", "a bunch of grapes"),
    ("rape", "grape juice"),
    ("rape", "rapid transit"),
    ("rape", "my therapist said"),
    ("rape", "drape the curtains"),
    ("rapist", "my therapist said"),
    ("nazi*", "Nazareth is a town"),
    ("kill yourself", "skill yourself up"),
])
def test_words_inside_other_words_do_not_match(pattern, text):
    assert KeywordMatcher([pattern]).matches(text) == []


@pytest.mark.parametrize("pattern, text, found", [
    ("trump", "Trump said", ["trump"]),
    ("trump", "TRUMP's wall", ["trump"]),
    ("trump", "trump’s wall", ["trump"]),
    ("trump", "(trump)", ["trump"]),
    ("trump", "_trump_ in italics", ["trump"]),
    ("rape", "rape.", ["rape"]),
    ("nazi*", "the nazis", ["nazis"]),
    ("nazi*", "Nazism rose", ["nazism"]),
    ("nazi*", "a neo-nazi", ["nazi"]),
    ("nazi*", "ｎａｚｉ in full width", ["nazi"]),
    ("kill yourself", "just kill   yourself", ["kill   yourself"]),
    ("kill yourself", "Kill-yourself", ["kill-yourself"]),
    ("self-harm", "self harm", ["self harm"]),
    ("don't", "don’t do it", ["don’t"]),
    ("don't", "dont do it", ["dont"]),
])
def test_keyword_matches(pattern, text, found):
    assert KeywordMatcher([pattern]).matches(text) == found


def test_whole_word_pattern_does_not_match_longer_forms():
    assert KeywordMatcher(["rape"]).matches("rapeseed oil") == []


def test_matches_lists_each_word_once_in_order():
    matcher = KeywordMatcher(["nazi*", "trump"])
    assert matcher.matches("Trump, nazis, trump and NAZIS") == ["trump", "nazis"]


def test_a_phrase_wins_over_the_word_it_starts_with():
    assert KeywordMatcher(["white", "white power"]).matches("white power") == ["white power"]


def test_patterns_are_cleaned_and_deduplicated():
    assert KeywordMatcher([" Trump ", "trump", "", "NAZI*"]).patterns == ("trump", "nazi*")


@pytest.mark.parametrize("pattern", ["*", "a*b", "c++", "-x", "x-", "**"])
def test_invalid_patterns_are_refused_by_name(pattern):
    with pytest.raises(ValueError, match="keyword pattern"):
        KeywordMatcher([pattern])


def test_an_empty_matcher_matches_nothing_and_is_not_falsy():
    # Callers write "matcher or KeywordMatcher(defaults)": an empty matcher must not look absent.
    assert NOTHING.matches("anything at all") == []
    assert NOTHING


def test_default_keywords_have_no_duplicates():
    lowered = [k.lower() for k in DEFAULT_NEGATIVE_KEYWORDS]
    assert len(lowered) == len(set(lowered))


def test_every_default_keyword_matches_itself():
    for keyword in DEFAULT_NEGATIVE_KEYWORDS:
        assert DEFAULT.matches(f"x {keyword.removesuffix('*')} y"), keyword


@pytest.mark.parametrize("text", [
    "I play the trumpet", "grape juice", "my therapist", "rapid fire", "fire retardant", "a pedometer",
    "that niggles me", "niggardly", "what a skill", "the killer app", "Nazareth", "scrape the paint",
    "spicy food", "Pakistan", "a cocktail", "Heilbronn", "suite", "holy cow", "kysely", "lolipop",
])
def test_default_keywords_let_innocent_words_through(text):
    assert DEFAULT.matches(text) == []


# --- similarity -------------------------------------------------------------------------

def test_similarity_ignores_case_and_whitespace():
    assert similarity("Hello   World\n", "hello world") == 1.0


def test_similarity_of_unrelated_texts_is_low():
    assert similarity("the cat sat on the mat", "quantum chromodynamics") < 0.5


def test_repeats_thread_at_the_threshold_inclusive():
    parent = "a" * 20
    assert similarity("a" * 19 + "b", parent) == pytest.approx(0.95)
    assert repeats_thread("a" * 19 + "b", [parent])
    assert not repeats_thread("a" * 18 + "bb", [parent])   # 0.90


def test_repeats_thread_checks_every_text_and_skips_missing_ones():
    assert repeats_thread("Same old story", ["something else", None, "", "same old story!"], threshold=0.9)
    assert not repeats_thread("Same old story", [])


# --- checks -----------------------------------------------------------------------------

def test_acceptable_reply_has_no_reason():
    assert check_reply("What a lovely day", DEFAULT, ["Is it sunny?"]) is None


@pytest.mark.parametrize("text, reason", [
    (None, "unclosed"),
    ("", "empty"),
    ("  \n ", "empty"),
    ("x" * 10_234, "too long: 10234 > 10000 chars"),
    ("Nazis and trump", "negative keyword: nazis, trump"),
    ("Is it sunny?", "repeats the thread (similarity 1.00)"),
])
def test_reply_reasons(text, reason):
    assert check_reply(text, KeywordMatcher(["nazi*", "trump"]), ["Is it sunny?"]) == reason


def test_reply_similarity_is_reported_with_two_decimals():
    parent = "I really like turtles, they are great."
    reply = "I really like turtles, they are great!!"
    assert check_reply(reply, NOTHING, [parent]) == f"repeats the thread (similarity {similarity(reply, parent):.2f})"
    assert check_reply(reply, NOTHING, [parent], threshold=0.99) is None


def test_reply_limit_is_inclusive():
    assert check_reply("x" * REDDIT_LIMITS.comment, NOTHING) is None
    assert check_reply("x" * 20, NOTHING, limits=RedditLimits(comment=10)) == "too long: 20 > 10 chars"


def test_length_is_checked_before_keywords():
    assert check_reply("nazi " * 3000, DEFAULT) == "too long: 15000 > 10000 chars"


def test_acceptable_submission_has_no_reason():
    assert check_submission("My cat is weird", "He sits on my head", DEFAULT) is None
    assert check_submission("Look at this", "", DEFAULT) is None


@pytest.mark.parametrize("title, body, reason", [
    (None, "", "unclosed"),
    ("", "body", "empty title"),
    ("   ", "", "empty title"),
    ("t" * 301, "", "title too long: 301 > 300 chars"),
    ("ok", "b" * 40_001, "body too long: 40001 > 40000 chars"),
    ("About trump", "nazis", "negative keyword: trump, nazis"),
    ("Daily thread", "", "repeats a recent title (similarity 1.00)"),
])
def test_submission_reasons(title, body, reason):
    assert check_submission(title, body, KeywordMatcher(["nazi*", "trump"]), ["daily  thread"]) == reason


def test_submission_limits_are_inclusive():
    assert REDDIT_LIMITS == RedditLimits(comment=10_000, title=300, self_post_body=40_000)
    assert check_submission("t" * 300, "b" * 40_000, NOTHING) is None
    assert check_submission("t", "", NOTHING) is None


# --- the ASCII shortcut answers exactly as the full regex -----------------------------------

SHORTCUT_PATTERNS = list(DEFAULT_NEGATIVE_KEYWORDS) + ["don't", "spoon*"]
PIECES = st.sampled_from(["nazi", "Nazis", "rape", "grape", "therapist", "kill yourself", "kill-yourself",
                          "KYS", "self harm", "don’t", "dont", "spoons", "ｎａｚｉ", "trumpet", " ", "-",
                          "_", "'", ".", "\n", "İ", "K", "ſ"])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES | st.text(max_size=4), max_size=8).map("".join))
def test_the_ascii_shortcut_answers_exactly_as_the_full_regex(text):
    with_shortcut = KeywordMatcher(SHORTCUT_PATTERNS)
    # One non-ASCII pattern turns the shortcut off; it can never match these texts.
    without = KeywordMatcher(SHORTCUT_PATTERNS + ["zzqüxzz"])
    assert with_shortcut.matches(text) == without.matches(text)
