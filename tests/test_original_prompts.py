"""Golden prompts: what the original ssi-bot (zacc/ssi-bot) gives an existing model, per dialect.

Each ORIGINAL string below is what the original's code produces for the thread, byte for
byte: ``get_text_generation_parameters`` (reddit_io/reddit_io.py:240-255), that is
``_collate_tagged_comment_history`` (reddit_io/logic_mixin.py:23-73: at most 6 items, oldest
first, ``prefix[-1450:]`` past 1500 characters), then ``remove_username_mentions_from_string``
(logic_mixin.py:75-81), then ``get_reply_tag`` (reddit_io/tagging_mixin.py:30-50), with
``tag_submission`` (tagging_mixin.py:72-105), ``tag_comment`` (:107-125) and ``tag_message``
(:127-140). They were produced by running those functions of the original at HEAD
bea3bc9 on stand-in praw objects with the same attributes, and the pickle-based ones agree
with the original's own tests (tests/test_object_tagging.py, tests/test_logic_mixin.py).
Python literals: ``\\n`` in them is one line break.

Where ssi-bot deliberately writes something else, the expected value is derived from the
ORIGINAL by one named change, and the reason sits next to it. The changes, per fact:

* ``ESCAPED`` (reply_sense only): a line break is written ``\\n``. The original's runtime put
  raw line breaks in reply_sense prompts, but the reply_sense models were trained by its
  exporter on ``repr(text)[1:-1]`` (model_finetuning/output_finetuning_data.py:90,120, since
  df2c989), and the original decoded their output with ``unicode_escape``
  (tagging_mixin.py:227-228): the models expect and write escaped line breaks. Legacy
  models were trained on raw text (the exporter before df2c989), so legacy stays raw,
  byte for byte.
* ``NO_SLASH_LEFT``: the original's mention strip ``u\\/NAME(?!\\|\\>)`` leaves the "/" of
  "/u/NAME" and eats "u/NAMEs" (logic_mixin.py:79). No model was trained on stripped text
  (training data keeps mentions), so nothing is lost by removing the whole mention
  (shared/filters.py's rule, the one mention rule of ssi-bot).
* ``SUBJECT_TAG``: the original writes a DM's subject as ``<|sot>`` (tagging_mixin.py:133,
  a missing "|"). No model was trained on DMs; ``<|sot|>`` is the title tag every model
  was trained on, and a tag that never closes would break the format's one invariant
  (every ``<|`` opens a tag that closes).
* The character cap never cuts inside a tag (test at the end): the original's
  ``prefix[-1450:]`` can start a prompt with "r|>"; ssi-bot drops whole items instead.

Everything else (tags, roles, the 6-item window, the post out of the window at depth 6+
with OP roles kept, poll options, link posts without URL, DM subject and roles, the
1500-character threshold, the reply tag) is the original's, byte for byte.
"""

import pytest

from shared.tagging import LEGACY, REPLY_SENSE, Comment, Conversation, Post, Thread, reply_prompt, render_items

BOT = "Astro_GPT2"
SUB = "SubSimGPT2Interactive"


def ESCAPED(original):
    return original.replace("\n", "\\n")


def NO_SLASH_LEFT(original):
    return original.replace("Try harder, /<|", "Try harder, <|")


def SUBJECT_TAG(original):
    return original.replace("<|sot>", "<|sot|>")


def thread(post, *authors_and_bodies):
    return Thread(post, tuple(Comment(a, b) for a, b in authors_and_bodies))


S1 = Post(SUB, "alice", "What is your favourite planet?", "Mine is Saturn.\n\nRings!")


# --- E1: a top-level comment on a self post ----------------------------------------------------

E1 = thread(S1, ("bob", "Jupiter, obviously."))
E1_ORIGINAL = {
    LEGACY: "<|soss|><|sot|>What is your favourite planet?<|eot|><|sost|>Mine is Saturn.\n\nRings!<|eost|>"
            "<|sor|>Jupiter, obviously.<|eor|><|sor|>",
    REPLY_SENSE: "<|soss r/SubSimGPT2Interactive|><|sot|>What is your favourite planet?<|eot|><|sost|>Mine is "
                 "Saturn.\n\nRings!<|eost|><|sor u/bob|>Jupiter, obviously.<|eor|><|sor|>",
}


def test_top_level_comment():
    assert reply_prompt(E1, BOT, LEGACY) == E1_ORIGINAL[LEGACY]
    assert reply_prompt(E1, BOT, REPLY_SENSE) == ESCAPED(E1_ORIGINAL[REPLY_SENSE])


# --- E2: depth 3, replying to a reply to the bot, which is mentioned -------------------------

E2 = thread(S1, ("bob", "Jupiter, obviously."), (BOT, "Saturn has better rings, u/bob."),
            ("bob", "But Jupiter has more moons, u/Astro_GPT2!"))
E2_ORIGINAL = {
    LEGACY: "<|soss|><|sot|>What is your favourite planet?<|eot|><|sost|>Mine is Saturn.\n\nRings!<|eost|>"
            "<|sor|>Jupiter, obviously.<|eor|><|sor|>Saturn has better rings, u/bob.<|eor|>"
            "<|sor|>But Jupiter has more moons, !<|eor|><|sor|>",
    # tagging_mixin.py:113-117: bob's grandparent is bob's -> own chain; :44-47: the parent is the
    # bot's -> <|soocr|>; the bot's name stays in its tag (the strip's (?!\|\>) lookahead).
    REPLY_SENSE: "<|soss r/SubSimGPT2Interactive|><|sot|>What is your favourite planet?<|eot|><|sost|>Mine is "
                 "Saturn.\n\nRings!<|eost|><|sor u/bob|>Jupiter, obviously.<|eor|><|sor u/Astro_GPT2|>Saturn "
                 "has better rings, u/bob.<|eor|><|soocr u/bob|>But Jupiter has more moons, !<|eoocr|><|soocr|>",
}


def test_depth_3_reply_to_the_bot():
    assert reply_prompt(E2, BOT, LEGACY) == E2_ORIGINAL[LEGACY]
    assert reply_prompt(E2, BOT, REPLY_SENSE) == ESCAPED(E2_ORIGINAL[REPLY_SENSE])


# --- E3: depth 9, the post out of the window ---------------------------------------------------

E3_AUTHORS = ["bob", "carol", "bob", BOT, "bob", "carol", "dave", "carol", "bob"]
E3 = thread(S1, *[(a, f"c{i} text") for i, a in enumerate(E3_AUTHORS, 1)])
E3_ORIGINAL = {
    # logic_mixin.py:38: the walk stops after 6 items, before c3..c1 and the post: no post tag.
    LEGACY: "<|sor|>c4 text<|eor|><|sor|>c5 text<|eor|><|sor|>c6 text<|eor|><|sor|>c7 text<|eor|>"
            "<|sor|>c8 text<|eor|><|sor|>c9 text<|eor|><|sor|>",
    # Roles still look at the whole thread: c5's grandparent c3 (out of the window) is bob's.
    REPLY_SENSE: "<|sor u/Astro_GPT2|>c4 text<|eor|><|soocr u/bob|>c5 text<|eoocr|><|sor u/carol|>c6 text<|eor|>"
                 "<|sor u/dave|>c7 text<|eor|><|soocr u/carol|>c8 text<|eoocr|><|sor u/bob|>c9 text<|eor|><|sor|>",
}


def test_depth_9_with_the_post_out_of_the_window():
    for dialect in (LEGACY, REPLY_SENSE):
        assert reply_prompt(E3, BOT, dialect) == E3_ORIGINAL[dialect]


def test_deep_in_the_bots_own_post_op_roles_survive_the_window():
    # Same chain in a post by the bot: tagging_mixin.py:110-111 tags the bot's c4 soopr and
    # :40-43 makes the reply <|soopr|>, though the post itself is not shown.
    own = Thread(Post(SUB, BOT, S1.title, S1.body), E3.comments)
    assert reply_prompt(own, BOT, REPLY_SENSE) == (
        "<|soopr u/Astro_GPT2|>c4 text<|eoopr|><|soocr u/bob|>c5 text<|eoocr|><|sor u/carol|>c6 text<|eor|>"
        "<|sor u/dave|>c7 text<|eor|><|soocr u/carol|>c8 text<|eoocr|><|sor u/bob|>c9 text<|eor|><|soopr|>")
    assert reply_prompt(own, BOT, LEGACY) == E3_ORIGINAL[LEGACY]


# --- E4: a poll -------------------------------------------------------------------------------------

E4 = Thread(Post(SUB, "alice", "Best inner planet?", "Vote below.\n\n[View Poll](https://www.reddit.com/poll/abc123)",
                 poll_options=("Mercury", "Venus")), ())
E4_ORIGINAL = {
    # tagging_mixin.py:91-96: each option appended to the selftext as " - OPTION".
    LEGACY: "<|soss|><|sot|>Best inner planet?<|eot|><|sost|>Vote below.\n\n[View Poll](https://www.reddit.com/poll/"
            "abc123) - Mercury - Venus<|eost|><|sor|>",
    REPLY_SENSE: "<|soss r/SubSimGPT2Interactive|><|sot|>Best inner planet?<|eot|><|sost|>Vote below.\n\n[View Poll]"
                 "(https://www.reddit.com/poll/abc123) - Mercury - Venus<|eost|><|sor|>",
}


def test_poll_options_follow_the_body():
    assert reply_prompt(E4, BOT, LEGACY) == E4_ORIGINAL[LEGACY]
    assert reply_prompt(E4, BOT, REPLY_SENSE) == ESCAPED(E4_ORIGINAL[REPLY_SENSE])


# --- E5: a link post ----------------------------------------------------------------------------

S3 = Post(SUB, "erin", "Look at this nebula", "https://example.org/nebula.jpg", is_link=True)
E5 = thread(S3, ("frank", "Wow, how far away is it?"))
E5_ORIGINAL = {
    # tagging_mixin.py:103: never the URL.
    LEGACY: "<|sols|><|sot|>Look at this nebula<|eot|><|sol|><|eol|><|sor|>Wow, how far away is it?<|eor|><|sor|>",
    REPLY_SENSE: "<|sols r/SubSimGPT2Interactive|><|sot|>Look at this nebula<|eot|><|sol|><|eol|>"
                 "<|sor u/frank|>Wow, how far away is it?<|eor|><|sor|>",
}
E5B_ORIGINAL = {
    LEGACY: "<|sols|><|sot|>Look at this nebula<|eot|><|sol|><|eol|><|sor|>",
    REPLY_SENSE: "<|sols r/SubSimGPT2Interactive|><|sot|>Look at this nebula<|eot|><|sol|><|eol|><|sor|>",
}


def test_link_post_comment_and_the_link_post_itself():
    for dialect in (LEGACY, REPLY_SENSE):
        assert reply_prompt(E5, BOT, dialect) == E5_ORIGINAL[dialect]
        assert reply_prompt(Thread(S3, ()), BOT, dialect) == E5B_ORIGINAL[dialect]


# --- E6: a DM conversation ------------------------------------------------------------------------

E6 = Conversation("Question", (Comment("gina", "Hi Astro, are you a bot?"), Comment(BOT, "I am a humble robot."),
                               Comment("gina", "Cool! What's your favourite star?")))
E6_ORIGINAL = {
    # logic_mixin.py:56-62 walks parent_id up; tagging_mixin.py:130-138: the subject with the
    # first message, every message the same tag, the bot's own included; the reply tag is
    # <|sor|> in both dialects (a Message is not a praw Comment, :37-38).
    LEGACY: "<|sot>Question<|eot|><|sor|>Hi Astro, are you a bot?<|eor|><|sor|>I am a humble robot.<|eor|>"
            "<|sor|>Cool! What's your favourite star?<|eor|><|sor|>",
    REPLY_SENSE: "<|sot>Question<|eot|><|soocr|>Hi Astro, are you a bot?<|eoocr|><|soocr|>I am a humble robot."
                 "<|eoocr|><|soocr|>Cool! What's your favourite star?<|eoocr|><|sor|>",
}
E6B_ORIGINAL = {
    LEGACY: "<|sot>Question<|eot|><|sor|>Hi Astro, are you a bot?<|eor|><|sor|>",
    REPLY_SENSE: "<|sot>Question<|eot|><|soocr|>Hi Astro, are you a bot?<|eoocr|><|sor|>",
}


def test_dm_conversation_with_subject_and_the_bots_own_message():
    for dialect in (LEGACY, REPLY_SENSE):
        assert reply_prompt(E6, BOT, dialect) == SUBJECT_TAG(E6_ORIGINAL[dialect])
        first = Conversation("Question", E6.messages[:1])
        assert reply_prompt(first, BOT, dialect) == SUBJECT_TAG(E6B_ORIGINAL[dialect])


def test_dm_window_is_the_last_6_messages_and_the_subject_goes_with_the_first():
    # logic_mixin.py:35-64: 6 messages at most; the subject only if the first one is reached.
    messages = tuple(Comment("gina" if i % 2 else BOT, f"m{i}") for i in range(8))
    prompt = reply_prompt(Conversation("Hello u/Astro_GPT2", messages), BOT, LEGACY)
    assert prompt == "".join(f"<|sor|>m{i}<|eor|>" for i in range(2, 8)) + "<|sor|>"
    short = reply_prompt(Conversation("Hello u/Astro_GPT2", messages[:2]), BOT, LEGACY)
    assert short == "<|sot|>Hello <|eot|><|sor|>m0<|eor|><|sor|>m1<|eor|><|sor|>"   # mention stripped


def test_original_test_object_tagging_message_golden():
    # tests/test_object_tagging.py:183-198 (inbox_message.pkl: subject PRAW, body "First message."),
    # tag_message alone, before the reply tag.
    legacy, reply_sense = ("<|sot>PRAW<|eot|><|sor|>First message.<|eor|>",
                           "<|sot>PRAW<|eot|><|soocr|>First message.<|eoocr|>")
    message = Conversation("PRAW", (Comment("tateisukannanirase", "First message."),))
    assert reply_prompt(message, "abstract_void_bot", LEGACY) == SUBJECT_TAG(legacy) + "<|sor|>"
    assert reply_prompt(message, "abstract_void_bot", REPLY_SENSE) == SUBJECT_TAG(reply_sense) + "<|sor|>"


# --- E7: the bot's own post, mentioned as /u/name -----------------------------------------------------

S4 = Post(SUB, BOT, "I am a bot, ask me anything", "Go on.")
E7 = thread(S4, ("ivy", "Are you sentient?"), (BOT, "No, but I try."), ("ivy", "Try harder, /u/astro_gpt2"))
E7_ORIGINAL = {
    LEGACY: "<|soss|><|sot|>I am a bot, ask me anything<|eot|><|sost|>Go on.<|eost|><|sor|>Are you sentient?<|eor|>"
            "<|sor|>No, but I try.<|eor|><|sor|>Try harder, /<|eor|><|sor|>",
    # tagging_mixin.py:40-43: the post is the bot's, so <|soopr|> before the parent rule.
    REPLY_SENSE: "<|soss r/SubSimGPT2Interactive|><|sot|>I am a bot, ask me anything<|eot|><|sost|>Go on.<|eost|>"
                 "<|sor u/ivy|>Are you sentient?<|eor|><|soopr u/Astro_GPT2|>No, but I try.<|eoopr|>"
                 "<|soocr u/ivy|>Try harder, /<|eoocr|><|soopr|>",
}


def test_bots_own_post():
    for dialect in (LEGACY, REPLY_SENSE):
        assert reply_prompt(E7, BOT, dialect) == NO_SLASH_LEFT(E7_ORIGINAL[dialect])
        top = Thread(S4, E7.comments[:1])
        assert reply_prompt(top, BOT, dialect).endswith("Are you sentient?" + {
            LEGACY: "<|eor|><|sor|>", REPLY_SENSE: "<|eor|><|soopr|>"}[dialect])


# --- real threads: the original's pickles (tests/pickles/submission_poll.pkl) ------------------------

POLL_BODY = ("Hello, these 4 bots have been running for a while now. I am interested to know about which ones you "
             "like and want to stay and which one is OK to replace eventually.\n\n&#x200B;\n\nWhich of these bots "
             "do you prefer?\n\n[View Poll](https://www.reddit.com/poll/shfl4g)")
POLL = Post(SUB, "Salouva", "Poll for u/Salouva's bots. Which would you like to stay?", POLL_BODY,
            poll_options=("Critical-Jossi", "Conspiracy", "Civbot", "Yskbot"))
LONG_REPLY = (
    'That is, the bot you used. The bots you used to see are the ones you actually use to'
    " live, so you'll be able to get to the bots you just used to live. The bots you used to"
    ' live, usually the ones you used to live, can be used to have the bots you want to live,'
    ' but the bots you need to live, can also be used to have the bots you need to live, but'
    " the bots you're supposed to have live, can be used to have the bots you need to live,"
    " but the bots you're supposed to have live, can be used to have the bots you're supposed"
    " to have live, but the bots you're supposed to have live, are supposed to have the bots"
    " you need to live, so you'll be able to get to the bots you need to live, but the bots"
    " you're supposed to be living, can be used to have the bots you're supposed to be"
    " living, but the bots you're supposed to have live, can also be used to have the bots"
    " you're supposed to be living, and the bots you're supposed to be living, are supposed"
    " to have the bots you're supposed to be living, can also be used to have the bots you're"
    " supposed to be living, but the bots you're supposed to be living, can also be used"
)
POLL_CHAIN = (  # hv2bw60 -> hv2cca5 -> hv2dxaz -> hv2e8zz -> hv2zeip -> hv31ofu
    Comment("Den_Hviide", "u/Conspiracy_GPT2 is my fav of the four for sure!"),
    Comment("Conspiracy_GPT2", "I feel that all four are OK"),
    Comment("Den_Hviide", "Sure, but you're the best."),
    Comment("TerryEngland-GPT2", "I'm not an expert bot, but what's the best bot I've ever seen?"),
    Comment("nightkat143", "What is the best bot you've seen?"),
    Comment("BotWorldProblems", LONG_REPLY),
)
POLL_POST_ORIGINAL = {
    LEGACY: "<|soss|><|sot|>Poll for u/Salouva's bots. Which would you like to stay?<|eot|><|sost|>" + POLL_BODY
            + " - Critical-Jossi - Conspiracy - Civbot - Yskbot<|eost|>",
    REPLY_SENSE: "<|soss r/SubSimGPT2Interactive|><|sot|>Poll for u/Salouva's bots. Which would you like to stay?"
                 "<|eot|><|sost|>" + POLL_BODY + " - Critical-Jossi - Conspiracy - Civbot - Yskbot<|eost|>",
}


def test_original_pickle_poll_submission_reply():
    for dialect in (LEGACY, REPLY_SENSE):
        ours = reply_prompt(Thread(POLL, ()), "Conspiracy_GPT2", dialect)
        expected = POLL_POST_ORIGINAL[dialect] + "<|sor|>"
        assert len(expected) == {LEGACY: 408, REPLY_SENSE: 432}[dialect]
        assert ours == (expected if dialect == LEGACY else ESCAPED(expected))


def test_original_pickle_hv2dxaz_as_conspiracy_gpt2():
    # The original's test_logic_mixin.py:23-49 pins the collation; the full prompt adds the strip
    # (u/Conspiracy_GPT2 out of the first body, its leading space kept) and the reply tag
    # (the parent is the bot's: <|soocr|>).
    legacy = (POLL_POST_ORIGINAL[LEGACY] + "<|sor|> is my fav of the four for sure!<|eor|><|sor|>I feel that all "
              "four are OK<|eor|><|sor|>Sure, but you're the best.<|eor|><|sor|>")
    reply_sense = (POLL_POST_ORIGINAL[REPLY_SENSE] + "<|sor u/Den_Hviide|> is my fav of the four for sure!<|eor|>"
                   "<|sor u/Conspiracy_GPT2|>I feel that all four are OK<|eor|><|soocr u/Den_Hviide|>Sure, but "
                   "you're the best.<|eoocr|><|soocr|>")
    assert (len(legacy), len(reply_sense)) == (535, 609)
    assert reply_prompt(Thread(POLL, POLL_CHAIN[:3]), "Conspiracy_GPT2", LEGACY) == legacy
    assert reply_prompt(Thread(POLL, POLL_CHAIN[:3]), "Conspiracy_GPT2", REPLY_SENSE) == ESCAPED(reply_sense)


def test_original_pickle_hv31ofu_1498_characters_stay_whole():
    # Depth 6: the post falls out. The reply_sense collation is 1498 characters, 2 under the
    # original's cut (tests/test_logic_mixin.py:51-56 pins < 1500): nothing is cut.
    legacy = ("<|sor|> is my fav of the four for sure!<|eor|><|sor|>I feel that all four are OK<|eor|><|sor|>Sure, "
              "but you're the best.<|eor|><|sor|>I'm not an expert bot, but what's the best bot I've ever seen?<|eor|>"
              "<|sor|>What is the best bot you've seen?<|eor|><|sor|>" + LONG_REPLY + "<|eor|><|sor|>")
    reply_sense = ("<|sor u/Den_Hviide|> is my fav of the four for sure!<|eor|><|sor u/Conspiracy_GPT2|>I feel that "
                   "all four are OK<|eor|><|soocr u/Den_Hviide|>Sure, but you're the best.<|eoocr|>"
                   "<|sor u/TerryEngland-GPT2|>I'm not an expert bot, but what's the best bot I've ever seen?<|eor|>"
                   "<|sor u/nightkat143|>What is the best bot you've seen?<|eor|><|sor u/BotWorldProblems|>"
                   + LONG_REPLY + "<|eor|><|sor|>")
    assert (len(legacy), len(reply_sense)) == (1387, 1488)
    for dialect, expected in ((LEGACY, legacy), (REPLY_SENSE, reply_sense)):
        assert reply_prompt(Thread(POLL, POLL_CHAIN), "Conspiracy_GPT2", dialect) == expected


def test_original_test_object_tagging_post_goldens():
    # tests/test_object_tagging.py:16-26 (submission_link.pkl) and :37-59 (the poll).
    link = Post(SUB, "SportsFan-Bot", 'You can still have your "best player" in the league.', is_link=True)
    assert render_items(Thread(link, ()), LEGACY) == [
        '<|sols|><|sot|>You can still have your "best player" in the league.<|eot|><|sol|><|eol|>']
    assert render_items(Thread(link, ()), REPLY_SENSE) == [
        '<|sols r/SubSimGPT2Interactive|><|sot|>You can still have your "best player" in the league.<|eot|>'
        '<|sol|><|eol|>']
    assert render_items(Thread(POLL, ()), LEGACY) == [POLL_POST_ORIGINAL[LEGACY]]


# --- the cap: never inside a tag ---------------------------------------------------------------------

@pytest.mark.parametrize("dialect, original_start", [(LEGACY, "r|>"), (REPLY_SENSE, "b|>")])
def test_a_long_thread_is_cut_between_tags_not_inside_one(dialect, original_start):
    # E8: post "Title"/"Body" and a 1440-character comment: 1501 (legacy) and 1531 (reply_sense)
    # characters, so the original keeps prefix[-1450:], which starts inside <|sor|> (legacy "r|>")
    # or inside <|sor u/bob|> ("b|>"). ssi-bot drops the post, and the comment, alone still over
    # 1450, keeps its tags whole and loses the front of its text.
    long = Thread(Post(SUB, "alice", "Title", "Body"), (Comment("bob", "b" * 1440),))
    original = original_start + "b" * 1440 + "<|eor|><|sor|>"
    assert len(original) == 1457
    ours = reply_prompt(long, BOT, dialect)
    tag = {LEGACY: "<|sor|>", REPLY_SENSE: "<|sor u/bob|>"}[dialect]
    assert ours == tag + "b" * (1450 - len(tag) - len("<|eor|>")) + "<|eor|><|sor|>"


# --- reading the reply (zacc/ssi-bot reddit_io/tagging_mixin.py:142-173) ------------------------------

@pytest.mark.parametrize("dialect, continuation, reply", [
    (REPLY_SENSE, "Hello there<|eor|><|sor|>more", "Hello there"),             # the first "<|" of any tag
    (REPLY_SENSE, "Line one\\n\\nLine two<|eor|>", "Line one\n\nLine two"),    # escapes decoded (:227-228)
    # A model that ran out of tokens: the original cut at the last "\\n" (:146-150), else at
    # the first "!!!!" (:152-155). ssi-bot looks in the continuation only: the original's
    # rfind over prompt + continuation could land in the prompt and post nothing.
    (REPLY_SENSE, "Para one\\nPara two no end", "Para one"),
    (REPLY_SENSE, "shout!!!! more", "shout"),
    (REPLY_SENSE, "no end at all", None),
    (LEGACY, "Para one\nPara two no end", "Para one"),                          # legacy: raw line breaks
    (LEGACY, "a \\n stays\nb", "a \\n stays"),                                  # ... and nothing to decode
    (REPLY_SENSE, "<|eor|>", ""),   # the original posts nothing (:165-169); "" is rejected as "empty"
])
def test_reply_extraction_and_the_unclosed_fallbacks(dialect, continuation, reply):
    from shared.tagging import extract_reply

    assert extract_reply(continuation, dialect) == reply
