"""The reply probability, as pure logic: worked examples, zeros, caps, mentions, questions, depth."""

import pytest

from shared.config import parse_config
from shared.bot.decide import Situation, cap_reached, is_question, looks_like_bot, reply_probability

BOT = "TestBot-GPT2"


def bot_config(**overrides):
    return parse_config({"bots": [{"name": BOT, "model": "m", **overrides}]}).bots[0]


def situation(**fields):
    defaults = dict(bot=BOT, kind="comment", source="listing", author="alice", text="nice weather",
                    post_age_hours=0.0, depth=1, post_author="bob", parent_author="bob")
    defaults.update(fields)
    return Situation(**defaults)


def p(**fields):
    bot = fields.pop("bot_config", None) or bot_config()
    return reply_probability(situation(**fields), bot)[0]


def test_worked_examples_of_product_md():
    assert p() == pytest.approx(0.20)                                          # fresh human top-level comment
    assert p(kind="submission", depth=None, text="A title\nbody") == pytest.approx(0.30)
    assert p(kind="submission", depth=None, text="What is this?\n") == pytest.approx(0.70)


def test_reasons_explain_the_sum():
    _, reasons = reply_probability(situation(kind="submission", depth=None, text="why?"), bot_config())
    assert reasons == ["base -0.10", "human author +0.30", "new post +0.10", "question +0.40", "age 0.0h x1.00"]


def test_depth_bot_authors_and_age_lower_the_probability():
    assert p(depth=3) == pytest.approx(0.10)                                   # top level is depth 1
    assert p(author="chatty-gpt2") == pytest.approx(0.0)                       # -0.1 - 0.1 -> 0
    assert p(author="carol", author_flair="Verified GPT-2 Bot") == pytest.approx(0.0)
    assert p(post_age_hours=12) == pytest.approx(0.10)
    assert p(post_age_hours=30) == 0.0


def test_question_only_counts_on_posts_and_replies_to_the_bot():
    assert p(text="how are you?") == pytest.approx(0.20)                      # plain comment: no bonus
    assert p(text="how are you?", depth=2, parent_author=BOT) == pytest.approx(0.85)  # 0.2-0.05+0.4+0.3
    assert p(text="fine", depth=2, parent_author=BOT.lower()) == pytest.approx(0.45)


@pytest.mark.parametrize("text, question", [
    ("Why?", True), ("what now", True), ("How so", True), ("when", True),
    ("you rock", True), ("Thank you", True), ("your cat is cute", True), ("you're right", True),
    ("you’re right", True), ("it's yours", True), ("see u there", True), ("ur funny", True),
    ("Nice post", False), ("a young cat", False), ("show me", False), ("somewhat", False),
    ("whatever", False), ("ask u/someone", False), ("ask /u/someone", False), ("youtube", False),
    ("Yours truly", True), ("", False),
])
def test_question_is_a_mark_or_a_whole_word_not_a_substring(text, question):
    # The original matched ' you' inside ' your'/' young' and 'how' inside 'show'
    # (zacc/ssi-bot reddit_io/logic_mixin.py:182): here only whole words count.
    assert is_question(text) is question


def test_own_post_positive_keyword_and_cap_at_one():
    assert p(post_author=BOT) == pytest.approx(0.70)
    bot = bot_config(positive_keywords=["weather"])
    assert p(bot_config=bot) == pytest.approx(0.70)
    assert p(bot_config=bot, post_author=BOT, depth=2, parent_author=BOT, text="weather, you?") == 1.0


def test_a_bot_author_lowers_the_sum_where_it_shows():
    # A bot's top-level comment in the bot's own post: -0.1 - 0.1 + 0.3 (its parent is the
    # bot's post) + 0.5; a human's would be 1.0 (capped), a flipped sign 0.8.
    assert p(author="chatty-gpt2", post_author=BOT, parent_author=BOT) == pytest.approx(0.60)
    assert p(author="alice", post_author=BOT, parent_author=BOT) == 1.0


@pytest.mark.parametrize("fields, reason", [
    (dict(author=None, deleted=True), "deleted"),
    (dict(author=BOT.upper()), "the bot's own item"),
    (dict(author="AutoModerator"), "excluded author AutoModerator"),
    (dict(text="they said kill yourself"), "negative keyword: kill yourself"),
    (dict(link_flair="Announcement"), "announcement flair"),
    (dict(removed=True), "removed"),
    (dict(locked=True), "locked"),
    (dict(depth=13), "depth 13 > 12"),
    (dict(toxic="toxic: profanity 1.00 >= 0.80"), "toxic: profanity 1.00 >= 0.80"),
])
def test_hard_zeros_win_over_everything(fields, reason):
    p_, reasons = reply_probability(situation(source="mention", **fields), bot_config())
    assert (p_, reasons) == (0.0, [reason])


def test_no_false_positive_keywords():
    assert p(text="I play the trumpet, rapid and grape") == pytest.approx(0.20)


def test_twelve_levels_are_answered_and_the_thirteenth_is_not():
    # The original counted depth from 1 and refused beyond 12 (reddit_io.py:597-622, logic_mixin.py:153-155).
    assert p(depth=1) == pytest.approx(0.20)
    assert p(depth=12, post_author=BOT) == pytest.approx(0.15)             # -0.1 - 0.55 + 0.3 + 0.5
    assert reply_probability(situation(depth=13, post_author=BOT), bot_config()) == (0.0, ["depth 13 > 12"])


def test_mentions_get_one_until_the_guard_depth_then_decay_with_depth_and_age():
    assert p(source="mention", depth=3, author="a-gpt2") == 1.0
    assert p(source="listing", text=f"hey u/{BOT.lower()} look") == 1.0
    assert p(source="mention", depth=4) == 1.0
    assert p(source="mention", depth=6) == pytest.approx(0.5)
    assert p(source="mention", depth=6, post_age_hours=12) == pytest.approx(0.25)
    assert p(source="mention", depth=8) == 0.0


def test_a_toxic_mention_gets_zero():
    assert reply_probability(situation(source="mention", toxic="toxic: profanity 0.99 >= 0.80"), bot_config()) == (
        0.0, ["toxic: profanity 0.99 >= 0.80"])


def test_someone_elses_name_is_no_mention_and_the_bare_name_adds_its_weight():
    assert p(text=f"hey u/{BOT}-fan look") == pytest.approx(0.20)             # another account
    assert p(text=f"hey u/{BOT}_2 look") == pytest.approx(0.20)
    assert p(text=f"I think {BOT} is funny") == pytest.approx(0.50)           # bare name +0.3
    assert p(text=f"I think {BOT} is funny", bot_config=bot_config(reply={"bare_name": 0})) == pytest.approx(0.20)
    _, reasons = reply_probability(situation(text=f"{BOT} again"), bot_config())
    assert "names the bot +0.30" in reasons


def test_the_mention_and_message_probability_is_a_setting():
    bot = bot_config(reply={"mention_or_message": 0.5})
    assert p(source="mention", bot_config=bot) == 0.5
    assert p(kind="message", source="message", depth=None, bot_config=bot) == 0.5
    assert p(source="mention", depth=6, bot_config=bot) == pytest.approx(0.25)


def test_private_messages_get_one():
    assert p(kind="message", source="message", depth=None, post_age_hours=100) == 1.0


def test_bot_detection():
    assert looks_like_bot("SomeSSI", None) and looks_like_bot("x_bot", None) and looks_like_bot("y-GPT2", None)
    assert looks_like_bot("human", "Verified GPT-2 Bot ✓")
    assert not looks_like_bot("robotics_fan", None) and not looks_like_bot("human", None)


def test_caps_name_the_first_one_reached():
    caps = bot_config(caps={"per_hour": 2, "per_thread": 1}).caps
    assert cap_reached({"per_hour": 1, "per_day": 1}, caps) is None
    assert cap_reached({"per_hour": 2, "per_day": 2}, caps) == "cap per_hour reached (2/2)"
    assert cap_reached({"per_hour": 0, "per_day": 0, "per_thread": 1}, caps) == "cap per_thread reached (1/1)"
