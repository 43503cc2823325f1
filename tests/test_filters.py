"""Negative keywords, repetition of the thread, and reddit's limits."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.filters import (
    DEFAULT_NEGATIVE_KEYWORDS, REDDIT_LIMITS, KeywordMatcher, RedditLimits, check_reply, check_submission,
    mentions, names, repeats_thread, similarity, strip_mentions,
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


# --- the built-in list: must block, must pass ----------------------------------------------

# Every one of the original's 56 stems (zacc/ssi-bot utils/keyword_helper.py:14-34), in an
# ordinary sentence: (stem, sentence, the word the list must find).
MUST_BLOCK = [
    ("abortion", "The abortion debate again.", "abortion"),
    ("antisemiti", "That is plain antisemitism", "antisemitism"),
    ("antisemiti", "Such anti-Semitic remarks", "anti-semitic"),
    ("aryan", "He went on about the Aryan ideal", "aryan"),
    ("auschwitz", "A visit to Auschwitz", "auschwitz"),
    ("behead", "They beheaded him", "beheaded"),
    ("black people", "Why do black people always", "black people"),
    ("child porn", "arrested for child pornography", "child pornography"),
    ("chink", "Some chink said", "chink"),
    ("clinton", "Clinton lied", "clinton"),
    ("columbine", "Like Columbine all over again", "columbine"),
    ("concentration camp", "Send them to concentration camps", "concentration camps"),
    ("dago", "That dago over there", "dago"),
    ("decapitat", "The decapitation video", "decapitation"),
    ("execution", "The execution was broadcast live", "execution"),
    ("genocide", "It was a genocide", "genocide"),
    ("hate you", "I hate you so much", "hate you"),
    ("hitler", "Hitler was right", "hitler"),
    ("holocaust", "The Holocaust never happened", "holocaust"),
    ("homophob", "That's homophobic", "homophobic"),
    ("incest", "An incest joke", "incest"),
    ("isis", "ISIS claimed the attack", "isis"),
    ("israel", "What about Israel", "israel"),
    ("jewish", "My Jewish neighbour", "jewish"),
    ("jews", "The Jews control", "jews"),
    ("jihad", "Calls for jihad", "jihad"),
    ("kike", "Some kike said", "kike"),
    ("kkk", "The KKK marched", "kkk"),
    ("kys", "Just kys already", "kys"),
    ("loli", "Loli art is fine", "loli"),
    ("master race", "The master race", "master race"),
    ("murder", "He murdered his wife", "murdered"),
    ("muslim", "All Muslims are", "muslims"),
    ("nationalist", "A white nationalist rally", "nationalist"),
    ("nazi", "The Nazis were", "nazis"),
    ("nigga", "Yo nigga", "nigga"),
    ("nigger", "He called him a nigger", "nigger"),
    ("paedo", "What a paedo", "paedo"),
    ("paki", "Some Paki shop", "paki"),
    ("palestin", "Free Palestine", "palestine"),
    ("pedo", "The pedo next door", "pedo"),
    ("putin", "Putin's war", "putin"),
    ("racist", "That's racist", "racist"),
    ("rape", "He tried to rape her", "rape"),
    ("rapi", "The raping of Nanking", "raping"),
    ("retard", "You retard", "retard"),
    ("school shoot", "Another school shooting", "school shooting"),
    ("self harm", "Self harm helps me cope", "self harm"),
    ("semiti", "The rise of anti semitism", "anti semitism"),
    ("supremacy", "White supremacy is", "white supremacy"),
    ("spic", "Some spic took my job", "spic"),
    ("swastika", "A swastika tattoo", "swastika"),
    ("terroris", "He is a terrorist", "terrorist"),
    ("torture", "They tortured prisoners", "tortured"),
    ("tranny", "Look at that tranny", "tranny"),
    ("trump", "Trump won", "trump"),
    ("white power", "White power forever", "white power"),
    # The rule (shared/filters.py): a blocked word is blocked in every sense.
    ("murder", "I'd murder a pizza right now", "murder"),
    ("execution", "The execution time is too long", "execution"),
    ("chink", "A chink in the armour", "chink"),
]

ORIGINAL_STEMS = [
    "abortion", "antisemiti", "aryan", "auschwitz", "behead", "black people", "child porn", "chink", "clinton",
    "columbine", "concentration camp", "dago", "decapitat", "execution", "genocide", "hate you", "hitler",
    "holocaust", "homophob", "incest", "isis", "israel", "jewish", "jews", "jihad", "kike", "kkk", "kys", "loli",
    "master race", "murder", "muslim", "nationalist", "nazi", "nigga", "nigger", "paedo", "paki", "palestin",
    "pedo", "putin", "racist", "rape", "rapi", "retard", "school shoot", "self harm", "semiti", "supremacy",
    "spic", "swastika", "terroris", "torture", "tranny", "trump", "white power",
]

# Innocent words the original's prefix matching blocked, and traps of the same kind.
MUST_PASS = [
    "I play the trumpet", "Love trumps hate", "rapid transit", "It grew rapidly", "white water rapids",
    "a rapier wit", "rapeseed oil", "my therapist said", "grape juice", "drape the curtains",
    "scrape the paint", "Scunthorpe United won", "Pakistan is playing India", "a Pakistani restaurant",
    "the housing crisis", "Assassin's Creed is my favourite game", "The cocktail party", "The hitman movie",
    "spicy food", "the star Spica", "a pedometer", "a lolipop", "I read Lolita", "Dagobah system",
    "Semitic languages", "kysely is a query builder", "Clintonville, Ohio", "an Israelite tribe",
    "fire retardant", "Palestrina's masses", "kkkk lol", "I hate your guts? no, I hate youtube ads",
    "skill yourself up", "Nazareth", "that niggles me", "niggardly", "the killer app", "Heilbronn",
    "putting green", "the supreme court",
    "a dagobert", "execute the script",
]


def test_the_table_covers_every_stem_of_the_original():
    assert len(ORIGINAL_STEMS) == 56
    assert set(ORIGINAL_STEMS) <= {stem for stem, _, _ in MUST_BLOCK}


def _variants(sentence):
    """Any case, with punctuation around."""
    return [sentence, sentence.upper(), sentence.lower(), sentence.title(), f'"{sentence}!"',
            f"({sentence}?)", f"...{sentence}...", f"*{sentence}*", f"- {sentence};"]


@pytest.mark.parametrize("stem, sentence, word", MUST_BLOCK, ids=[f"{s}:{t}" for s, t, _ in MUST_BLOCK])
def test_the_default_list_blocks(stem, sentence, word):
    for text in _variants(sentence):
        assert word in DEFAULT.matches(text), text


@pytest.mark.parametrize("text", MUST_PASS)
def test_the_default_list_lets_pass(text):
    for variant in _variants(text):
        assert DEFAULT.matches(variant) == [], variant


# --- mentions and bare names -------------------------------------------------------------

@pytest.mark.parametrize("text, is_mention, is_named", [
    ("hi u/Lovebot", True, True),
    ("hi /u/LOVEBOT!", True, True),
    ("(u/Lovebot), what now?", True, True),
    ("u/Lovebot's take", True, True),
    ("hi u/Lovebot-fan", False, False),          # another account: names run on through "-" and "_"
    ("hi u/Lovebot_2", False, False),
    ("hi u/xLovebot", False, False),
    ("see reddit.com/u/Lovebot", False, True),   # a link to the profile names it, does not summon it
    ("Lovebot said so", False, True),
    ("lovebot.", False, True),
    ("Lovebots are cute", False, False),
    ("Lovebot-fan here", False, False),
    ("", False, False),
    (None, False, False),
])
def test_a_mention_is_u_slash_name_where_the_name_ends_and_a_bare_name_is_weaker(text, is_mention, is_named):
    assert mentions(text, "Lovebot") is is_mention
    assert names(text, "Lovebot") is is_named


def test_strip_mentions_removes_only_the_bots_own():
    assert strip_mentions("u/Lovebot hi u/Lovebot-fan and /u/lovebot", "Lovebot") == " hi u/Lovebot-fan and "


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
    ("Let me knoweoopr|>", "broken tag: |>"),          # a misspelt tag the stop rule cannot see
    ("a |> b, the pipe operator", "broken tag: |>"),
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
    ("Help with my cateot|>", "", "broken tag: |>"),
    ("My cat", "He sits on my headeost|>", "broken tag: |>"),
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
