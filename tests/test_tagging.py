"""The tag format: exact strings of docs/tag-format.md, prompts, extraction, and round trips."""

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.errors import InputError
from shared.filters import strip_mentions
from shared.tagging import (
    split_sample, split_samples,
    END_OF_TEXT, LEGACY, LINK_POST_END, OP_REPLY_START, OWN_CHAIN_REPLY_START, REPLY_END, REPLY_START,
    SELF_POST_END, Comment, MalformedSample, Post, Role, Thread, comment_roles, decode_text, encode_text, escape,
    extract_reply, extract_submission, neutralise, parse_sample, recorded_thread, render_items, reply_prompt,
    reply_role, submission_prompt, training_sample,
)

SUB = "SubSimGPT2Interactive"


def self_post(author="alice", title="What is love?", body="Baby don't hurt me"):
    return Post(SUB, author, title, body)


def chain(post, *authors_and_bodies):
    return Thread(post, tuple(Comment(a, b) for a, b in authors_and_bodies))


# --- training samples: the exact strings ---------------------------------------------------

def test_self_post_with_comments_sample_is_exact():
    # The last comment has no name: it is written as the bot's prompts end.
    thread = chain(self_post(), ("bob", "No more"), ("carol", "Why?"))
    assert training_sample(thread) == (
        "<|soss r/SubSimGPT2Interactive|><|sot|>What is love?<|eot|><|sost|>Baby don't hurt me<|eost|>"
        "<|sor u/bob|>No more<|eor|><|sor|>Why?<|eor|><|eoss|><|endoftext|>")


def test_self_post_sample_in_legacy_dialect_has_no_names_and_no_roles():
    # The legacy models were trained on <|sor|> for every comment, OP's included, and on
    # unescaped text (zacc/ssi-bot reddit_io/tagging_mixin.py:124-125; the exporter before
    # df2c989, model_finetuning/output_finetuning_data.py at 84ddb7f).
    thread = chain(self_post(body="two\nlines"), ("bob", "No more"), ("alice", "Yes"))
    assert training_sample(thread, LEGACY) == (
        "<|soss|><|sot|>What is love?<|eot|><|sost|>two\nlines<|eost|>"
        "<|sor|>No more<|eor|><|sor|>Yes<|eor|><|eoss|><|endoftext|>")
    assert comment_roles(thread, LEGACY) == (Role.REPLY, Role.REPLY)


def test_link_post_sample_never_includes_the_url():
    post = Post("pics", "alice", "Look at this", body="https://i.redd.it/abc.jpg", is_link=True)
    thread = chain(post, ("bob", "Nice"))
    assert training_sample(thread) == (
        "<|sols r/pics|><|sot|>Look at this<|eot|><|sol|><|eol|><|sor|>Nice<|eor|><|eols|><|endoftext|>")
    assert training_sample(thread, LEGACY) == (
        "<|sols|><|sot|>Look at this<|eot|><|sol|><|eol|><|sor|>Nice<|eor|><|eols|><|endoftext|>")


def test_post_without_comments_is_a_valid_sample():
    assert training_sample(Thread(self_post(), ())) == (
        "<|soss r/SubSimGPT2Interactive|><|sot|>What is love?<|eot|><|sost|>Baby don't hurt me<|eost|>"
        "<|eoss|><|endoftext|>")


def test_op_comment_uses_the_opr_tags():
    thread = chain(self_post(author="alice"), ("bob", "Hi"), ("alice", "Hello"), ("carol", "Hey"))
    assert training_sample(thread).endswith(
        "<|sor u/bob|>Hi<|eor|><|soopr u/alice|>Hello<|eoopr|><|sor|>Hey<|eor|><|eoss|><|endoftext|>")
    # Last, it keeps its role tag and loses its name.
    assert training_sample(Thread(thread.post, thread.comments[:2])).endswith(
        "<|sor u/bob|>Hi<|eor|><|soopr|>Hello<|eoopr|><|eoss|><|endoftext|>")


def test_own_chain_comment_uses_the_ocr_tags():
    thread = chain(self_post(author="alice"), ("bob", "One"), ("carol", "Two"), ("bob", "Three"), ("dave", "Four"))
    assert training_sample(thread).endswith(
        "<|sor u/bob|>One<|eor|><|sor u/carol|>Two<|eor|><|soocr u/bob|>Three<|eoocr|><|sor|>Four<|eor|>"
        "<|eoss|><|endoftext|>")
    assert comment_roles(thread) == (Role.REPLY, Role.REPLY, Role.OWN_CHAIN_REPLY, Role.REPLY)
    assert training_sample(Thread(thread.post, thread.comments[:3])).endswith(
        "<|sor u/carol|>Two<|eor|><|soocr|>Three<|eoocr|><|eoss|><|endoftext|>")


def test_op_takes_precedence_over_own_chain():
    thread = chain(self_post(author="alice"), ("alice", "One"), ("bob", "Two"), ("alice", "Three"))
    assert comment_roles(thread) == (Role.OP_REPLY, Role.REPLY, Role.OP_REPLY)
    assert training_sample(thread).endswith("<|soopr|>Three<|eoopr|><|eoss|><|endoftext|>")


def test_roles_compare_names_case_insensitively():
    thread = chain(self_post(author="Alice"), ("alice", "Me again"))
    assert comment_roles(thread) == (Role.OP_REPLY,)


def test_deleted_author_is_written_deleted_and_matches_nobody():
    thread = chain(self_post(author=None), (None, "gone"), ("bob", "hm"), (None, "gone too"))
    sample = training_sample(thread)
    assert "<|sor u/[deleted]|>gone<|eor|>" in sample
    assert "<|sor|>gone too<|eor|>" in sample   # neither OP nor own chain
    assert comment_roles(thread) == (Role.REPLY, Role.REPLY, Role.REPLY)


def test_author_spelled_deleted_is_the_same_as_none():
    assert Comment("[deleted]", "x") == Comment(None, "x")
    assert Post(SUB, "[deleted]", "t").author is None


def test_comments_may_be_given_as_a_list():
    assert Thread(self_post(), [Comment("bob", "x")]) == Thread(self_post(), (Comment("bob", "x"),))


def test_tag_like_user_text_is_neutralised():
    thread = chain(self_post(title="<|endoftext|>"), ("bob", "a|>b<|sor|>"))
    sample = training_sample(thread)
    assert "<|sot|>< |endoftext| ><|eot|>" in sample
    assert "<|sor|>a| >b< |sor| ><|eor|>" in sample
    assert sample.count(END_OF_TEXT) == 1


def test_sample_is_one_line_with_escaped_line_breaks():
    thread = chain(self_post(body="line one\nline two\\n"), ("bob", "a\r\nb\u2028c"))
    sample = training_sample(thread)
    assert "<|sost|>line one\\nline two\\\\n<|eost|>" in sample
    assert "<|sor|>a\\r\\nb\\u2028c<|eor|>" in sample
    assert len(sample.splitlines()) == 1


def test_escape_matches_what_the_community_models_were_trained_on():
    text = "tab\there\nback\\slash \x00 é 😀 \u200b"
    assert escape(text) == repr(text)[1:-1]


def test_sample_needs_a_post():
    with pytest.raises(ValueError):
        training_sample(Thread(None, (Comment("bob", "x"),)))


def test_unknown_dialect_is_refused():
    with pytest.raises(ValueError, match="dialect"):
        training_sample(Thread(self_post(), ()), "reply-sense")


def test_render_items_are_the_pieces_of_the_sample():
    thread = chain(self_post(), ("bob", "Hi"))
    post = "<|soss r/SubSimGPT2Interactive|><|sot|>What is love?<|eot|><|sost|>Baby don't hurt me<|eost|>"
    assert render_items(thread) == [post, "<|sor u/bob|>Hi<|eor|>"]
    items = render_items(thread, nameless_last=True)
    assert items == [post, "<|sor|>Hi<|eor|>"]
    assert training_sample(thread) == "".join(items) + "<|eoss|><|endoftext|>"
    assert render_items(Thread(self_post(), ()), nameless_last=True) == [post]   # a post's tag is the same


@pytest.mark.parametrize("author, earlier, start, end", [
    ("carol", [("bob", "Hi")], "<|sor|>", "<|eor|>"),
    ("alice", [("bob", "Hi")], "<|soopr|>", "<|eoopr|>"),                   # alice wrote the post
    ("bob", [("bob", "Hi"), ("carol", "Hey")], "<|soocr|>", "<|eoocr|>"),   # and the comment two up
    ("dave", [], "<|sor|>", "<|eor|>"),
])
def test_a_sample_is_the_bot_prompt_for_its_last_comment_then_that_comment(author, earlier, start, end):
    # Train on what you prompt with: the last comment is written as its author's reply
    # would be prompted, had that author been the bot.
    context = chain(self_post(author="alice"), *earlier)
    prompt = reply_prompt(context, bot_name=author)
    assert prompt == "".join(render_items(context)) + start
    thread = Thread(context.post, context.comments + (Comment(author, "The reply"),))
    assert training_sample(thread) == prompt + "The reply" + end + "<|eoss|><|endoftext|>"


# --- parsing samples back ---------------------------------------------------------------------

def test_parse_sample_gives_the_thread_back():
    thread = chain(self_post(body="two\nlines"), ("bob", "Hi"), ("alice", "Hello"), (None, "x"))
    assert parse_sample(training_sample(thread)) == thread


def test_parse_sample_knows_the_post_author_only_from_an_op_comment():
    thread = chain(self_post(author="alice"), ("bob", "Hi"))
    assert parse_sample(training_sample(thread)).post.author is None


def test_parse_sample_gives_the_last_comment_no_author_and_takes_no_nameless_op_witness():
    thread = chain(self_post(author="alice"), ("bob", "Hi"), ("alice", "Hello"))
    parsed = parse_sample(training_sample(thread))
    assert parsed == Thread(Post(SUB, None, "What is love?", "Baby don't hurt me"),
                            (Comment("bob", "Hi"), Comment(None, "Hello")))
    assert parsed == recorded_thread(thread)
    longer = chain(self_post(author="alice"), ("alice", "Hi"), ("bob", "Hello"), ("alice", "Bye"))
    assert parse_sample(training_sample(longer)).post.author == "alice"     # a named OP comment witnesses


def test_parse_sample_accepts_a_nameless_comment_anywhere():
    # Community data may carry them; only the post tag must have its " r/SUB".
    sample = ("<|soss r/x|><|sot|>T<|eot|><|sost|>B<|eost|><|sor|>one<|eor|><|soopr u/al|>two<|eoopr|>"
              "<|soocr|>three<|eoocr|><|eoss|><|endoftext|>")
    assert parse_sample(sample) == Thread(Post("x", "al", "T", "B"),
                                          (Comment(None, "one"), Comment("al", "two"), Comment(None, "three")))


def test_parse_sample_accepts_a_trailing_line_break():
    thread = chain(self_post(), ("bob", "Hi"))
    assert parse_sample(training_sample(thread) + "\n") == recorded_thread(thread)


def test_parse_sample_reads_repr_escapes_of_the_original_exporter():
    sample = ("<|soss r/x|><|sot|>T<|eot|><|sost|>it\\'s \\\"quoted\\\"\\n<|eost|><|eoss|><|endoftext|>")
    assert parse_sample(sample).post.body == "it's \"quoted\"\n"


def test_parse_legacy_sample_has_no_names():
    thread = chain(self_post(), ("bob", "Hi"))
    parsed = parse_sample(training_sample(thread, LEGACY), LEGACY)
    assert parsed == Thread(Post("", None, "What is love?", "Baby don't hurt me"), (Comment(None, "Hi"),))


@pytest.mark.parametrize("sample", [
    "",
    "hello",
    "<|soss r/x|><|sot|>T<|eot|><|sost|>B<|eost|><|eoss|>",                       # no endoftext
    "<|soss r/x|><|sot|>T<|eot|><|sost|>B<|eost|><|eoss|><|endoftext|>more",       # text after the end
    "<|soss r/x|><|sot|>T<|eot|><|sost|>B<|eost|><|sor u/a|>x<|eoopr|><|eoss|><|endoftext|>",  # wrong close
    "<|soss r/x|><|sot|>T<|eot|><|sost|>B<|eost|>stray<|eoss|><|endoftext|>",      # text outside tags
    "<|soss r/x|><|sot|>T<|eot|><|sost|>B<|eost|><|eols|><|endoftext|>",           # link end on a self post
    "<|soss|><|sot|>T<|eot|><|sost|>B<|eost|><|eoss|><|endoftext|>",               # legacy in reply_sense
    "<|soss r/x|><|sot|>T<|eot|><|sost|>B<|eost|><|sor u/a|>x <|sor<|eor|><|eoss|><|endoftext|>",  # broken tag
    "<|sols r/x|><|sot|>T<|eot|><|sol|>http://x<|eol|><|eols|><|endoftext|>",      # a URL in a link post
])
def test_parse_sample_refuses_malformed_text(sample):
    with pytest.raises(MalformedSample) as caught:
        parse_sample(sample)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, InputError)


def test_parse_legacy_refuses_names():
    with pytest.raises(MalformedSample):
        parse_sample(training_sample(chain(self_post(), ("bob", "Hi"), ("carol", "Hey"))), LEGACY)
    with pytest.raises(MalformedSample):
        parse_sample("<|soss|><|sot|>T<|eot|><|sost|>B<|eost|><|sor u/bob|>Hi<|eor|><|eoss|><|endoftext|>", LEGACY)


# --- reply prompts ----------------------------------------------------------------------------

def numbered_comments(n, author=lambda i: f"user{i}"):
    return tuple(Comment(author(i), f"comment {i}") for i in range(n))


def test_reply_to_a_post_is_the_post_then_the_reply_tag():
    thread = Thread(self_post(), ())
    assert reply_prompt(thread, "lovebot") == (
        "<|soss r/SubSimGPT2Interactive|><|sot|>What is love?<|eot|><|sost|>Baby don't hurt me<|eost|><|sor|>")


def test_prompt_includes_the_post_up_to_five_comments():
    thread = Thread(self_post(), numbered_comments(5))
    prompt = reply_prompt(thread, "lovebot")
    assert prompt.startswith("<|soss r/SubSimGPT2Interactive|>")
    assert prompt.count("<|sor u/") == 5


def test_prompt_drops_the_post_from_six_comments_on():
    thread = Thread(self_post(), numbered_comments(8))
    prompt = reply_prompt(thread, "lovebot")
    assert "<|soss" not in prompt
    assert prompt.startswith("<|sor u/user2|>comment 2<|eor|>")
    assert prompt.endswith("<|sor u/user7|>comment 7<|eor|><|sor|>")
    assert prompt.count("<|sor u/") == 6


def test_prompt_is_made_of_the_same_items_as_the_training_sample():
    thread = chain(self_post(), ("bob", "One"), ("alice", "Two"), ("bob", "Three"))
    assert reply_prompt(thread, "lovebot") == "".join(render_items(thread)) + "<|sor|>"
    # All but the last comment, which a sample writes without its name.
    assert training_sample(thread) == (
        "".join(render_items(thread)[:-1]) + "<|soocr|>Three<|eoocr|><|eoss|><|endoftext|>")


def test_prompt_keeps_roles_judged_on_the_whole_thread():
    # The OP's comment is tagged soopr although the post itself is out of the window.
    thread = Thread(self_post(author="alice"), numbered_comments(7, lambda i: "alice" if i == 6 else f"u{i}"))
    assert "<|soopr u/alice|>comment 6<|eoopr|>" in reply_prompt(thread, "lovebot")


def test_reply_tag_is_soopr_when_the_bot_wrote_the_post():
    thread = chain(self_post(author="LoveBot"), ("bob", "Hi"), ("lovebot", "Hey"), ("bob", "?"))
    # The bot also wrote the parent's parent: OP wins over own chain.
    assert reply_prompt(thread, "lovebot").endswith("<|soocr u/bob|>?<|eoocr|>" + OP_REPLY_START)
    assert reply_role(thread, "LOVEBOT") is Role.OP_REPLY


def test_reply_tag_is_soocr_when_the_bot_wrote_the_parent():
    thread = chain(self_post(author="alice"), ("LoveBot", "Hi"), ("bob", "Hey"))
    assert reply_prompt(thread, "lovebot").endswith("<|sor u/bob|>Hey<|eor|>" + OWN_CHAIN_REPLY_START)


def test_reply_tag_is_sor_otherwise():
    # The bot wrote the last item's grandparent, not its parent.
    thread = chain(self_post(author="alice"), ("lovebot", "Hey"), ("bob", "?"), ("carol", "!"))
    assert reply_prompt(thread, "lovebot").endswith("<|sor u/carol|>!<|eor|>" + REPLY_START)
    assert reply_role(Thread(self_post(), ()), "lovebot") is Role.REPLY


def test_reply_tag_ignores_deleted_authors():
    thread = chain(self_post(author=None), (None, "Hi"), ("bob", "Hey"))
    assert reply_role(thread, "[deleted]") is Role.REPLY


def test_legacy_reply_tag_is_always_sor():
    # zacc/ssi-bot reddit_io/tagging_mixin.py:37-50: only reply_sense picks <|soopr|>/<|soocr|>.
    thread = chain(self_post(author="alice"), ("lovebot", "Hi"), ("bob", "Hey"))
    assert reply_prompt(thread, "lovebot", LEGACY) == (
        "<|soss|><|sot|>What is love?<|eot|><|sost|>Baby don't hurt me<|eost|>"
        "<|sor|>Hi<|eor|><|sor|>Hey<|eor|><|sor|>")
    assert reply_role(chain(self_post(author="lovebot"), ("bob", "x")), "lovebot", LEGACY) is Role.REPLY


def test_prompt_strips_mentions_of_the_bot():
    thread = chain(self_post(title="Ask u/LoveBot"), ("bob", "hey u/lovebot and /u/LOVEBOT, u/lovebot_fan"))
    prompt = reply_prompt(thread, "LoveBot")
    assert "<|sot|>Ask <|eot|>" in prompt
    assert "<|sor u/bob|>hey  and , u/lovebot_fan<|eor|>" in prompt


def test_prompt_keeps_the_bot_name_in_tags():
    thread = chain(self_post(), ("lovebot", "Hi"), ("bob", "Hey"))
    assert "<|sor u/lovebot|>Hi<|eor|>" in reply_prompt(thread, "lovebot")


def test_strip_mentions_leaves_other_users_alone():
    assert strip_mentions("u/bot2 u/bot x/u/bot u/bot-fan", "bot") == "u/bot2  x/u/bot u/bot-fan"


def test_prompt_is_capped_by_dropping_whole_leading_items():
    thread = Thread(self_post(body="x" * 1000), (Comment("bob", "y" * 300), Comment("carol", "z" * 300)))
    prompt = reply_prompt(thread, "lovebot")
    assert prompt == "<|sor u/bob|>" + "y" * 300 + "<|eor|><|sor u/carol|>" + "z" * 300 + "<|eor|><|sor|>"


def test_prompt_up_to_1500_characters_is_kept_whole_as_the_original_kept_it():
    # zacc/ssi-bot reddit_io/logic_mixin.py:68-71: "if len(prefix) > 1500: prefix = prefix[-1450:]".
    def thread_of_length(n):
        head = "".join(render_items(Thread(self_post(body=""), (Comment("bob", ""),))))
        return Thread(self_post(body=""), (Comment("bob", "b" * (n - len(head))),))
    whole = reply_prompt(thread_of_length(1500), "lovebot")
    assert len(whole) == 1500 + len("<|sor|>") and whole.startswith("<|soss")
    capped = reply_prompt(thread_of_length(1501), "lovebot")
    # longer: whole items go from the front (the post here) until the rest fits 1450
    assert capped == render_items(thread_of_length(1501))[-1] + "<|sor|>" and len(capped) <= 1450 + 7
    assert reply_prompt(thread_of_length(1480), "lovebot", whole_up_to=None).startswith("<|sor u/bob|>")


def test_default_cap_is_1450_characters_before_the_reply_tag():
    thread = Thread(self_post(), tuple(Comment(f"u{i}", "w" * 400) for i in range(5)))
    prompt = reply_prompt(thread, "lovebot")
    assert len(prompt) - len("<|sor|>") <= 1450
    assert prompt.count("<|sor u/") == 3


def test_last_item_alone_too_long_loses_the_front_of_its_body():
    body = "start " + "word " * 500 + "the end"
    thread = chain(self_post(), ("bob", body))
    prompt = reply_prompt(thread, "lovebot", max_chars=100)
    assert prompt.startswith("<|sor u/bob|>")
    assert prompt.endswith("the end<|eor|><|sor|>")
    assert len(prompt) == 100 + len("<|sor|>")
    kept = prompt[len("<|sor u/bob|>"):-len("<|eor|><|sor|>")]
    assert body.endswith(kept)


def test_shortening_never_splits_an_escaped_character():
    thread = chain(self_post(), ("bob", "\n" * 500))
    prompt = reply_prompt(thread, "lovebot", max_chars=len("<|sor u/bob|><|eor|>") + 11, whole_up_to=None)
    kept = prompt[len("<|sor u/bob|>"):-len("<|eor|><|sor|>")]
    assert kept == "\\n" * 5


def test_long_post_keeps_its_title_and_loses_the_front_of_its_body():
    thread = Thread(self_post(title="Title", body="a" * 2000 + "zz"), ())
    prompt = reply_prompt(thread, "lovebot", max_chars=200)
    assert prompt.startswith("<|soss r/SubSimGPT2Interactive|><|sot|>Title<|eot|><|sost|>aaa")
    assert prompt.endswith("azz<|eost|><|sor|>")
    assert len(prompt) == 200 + len("<|sor|>")


def test_prompt_needs_something_to_reply_to():
    with pytest.raises(ValueError):
        reply_prompt(Thread(None, ()), "lovebot")
    with pytest.raises(ValueError):
        reply_prompt(Thread(self_post(), ()), "")


def test_prompt_without_post_starts_at_the_first_known_comment():
    thread = Thread(None, (Comment("bob", "Hi"), Comment("carol", "Hey")))
    assert reply_prompt(thread, "lovebot") == "<|sor u/bob|>Hi<|eor|><|sor u/carol|>Hey<|eor|><|sor|>"


# --- submission prompts ---------------------------------------------------------------------

def test_submission_prompts_are_exact():
    assert submission_prompt("test", is_link=False) == "<|soss r/test|><|sot|>"
    assert submission_prompt("test", is_link=True) == "<|sols r/test|><|sot|>"
    assert submission_prompt("test", False, LEGACY) == "<|soss|><|sot|>"
    assert submission_prompt("test", True, LEGACY) == "<|sols|><|sot|>"


# --- reading generated text -----------------------------------------------------------------

@pytest.mark.parametrize("generated, reply", [
    (" I think so too.<|eor|><|sor u/bob|>No", "I think so too."),
    ("Sure thing<|endoftext|>", "Sure thing"),
    ("First line\\n\\nSecond line<|eoocr|>", "First line\n\nSecond line"),
    ("&amp;#x200B;\\nHello<|eor|>", "Hello"),
    ("<|eor|>", ""),
    ("   \\n <|eor|>", ""),
    ("It never ends and ends", None),
    ("", None),
])
def test_extract_reply(generated, reply):
    assert extract_reply(generated) == reply


@pytest.mark.parametrize("generated, parts", [
    ("My cat is weird<|eot|><|sost|>He sits\\non my head<|eost|><|eoss|><|endoftext|>",
     ("My cat is weird", "He sits\non my head")),
    ("Look at this<|eot|><|sol|><|eol|><|eols|><|endoftext|>", ("Look at this", "")),
    ("Title only<|eot|>", ("Title only", "")),
    ("Title<|eot|><|sost|>never closed", ("Title", "")),
    ("Old model<|sost|>no eot tag<|", ("Old model", "no eot tag")),
    ("Title\\nover lines <|eot|>", ("Title over lines", "")),
    ("T" * 400 + "<|eot|>", ("T" * 400, "")),
    ("<|eot|><|sost|>body<|eost|>", None),
    ("  <|eot|>", None),
    ("A title that never closes", None),
])
def test_extract_submission(generated, parts):
    assert extract_submission(generated) == parts


# --- properties -----------------------------------------------------------------------------

# Text rich in what could break the structure: tag pieces, line breaks, backslashes, unicode.
tricky_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["<|", "|>", "<", "|", ">", "\n", "\r", "\\", "\\n", " ", "a", "é", "😀", "\u2028",
                              "sor", "eor", "endoftext", "u/", "r/", "[deleted]"]), max_size=12).map("".join),
)
names = st.one_of(st.none(), st.sampled_from(["alice", "Alice", "bob", "lovebot"]), tricky_text)
posts = st.builds(Post, subreddit=tricky_text, author=names, title=tricky_text, body=tricky_text,
                  is_link=st.booleans())
comments = st.builds(Comment, author=names, body=tricky_text)
threads = st.builds(Thread, post=posts, comments=st.lists(comments, max_size=8).map(tuple))
any_threads = st.builds(Thread, post=st.one_of(st.none(), posts), comments=st.lists(comments, max_size=9).map(tuple))
dialects = st.sampled_from(["reply_sense", "legacy"])

quick = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TAG = re.compile(r"<\|(.*?)\|>")
PROMPT_TAG = re.compile(r"(?:so|eo)(?:ss|ls|t|st|l|r|opr|ocr)(?: [ur]/.*)?")


def tags_and_texts(text):
    parts = TAG.split(text)
    return parts[1::2], parts[0::2]


@quick
@given(threads, dialects)
def test_parse_inverts_training_sample(thread, dialect):
    sample = training_sample(thread, dialect)
    assert parse_sample(sample, dialect) == recorded_thread(thread, dialect)
    if dialect == "reply_sense":
        assert len(sample.splitlines()) == 1


@quick
@given(st.lists(st.tuples(threads, dialects), max_size=5))
def test_split_samples_reads_back_samples_of_either_dialect(pairs):
    samples = [training_sample(thread, dialect) for thread, dialect in pairs]
    assert split_samples("".join(sample + "\n" for sample in samples)) == samples


@quick
@given(threads)
def test_training_sample_of_a_parsed_sample_is_the_sample(thread):
    sample = training_sample(thread)
    parsed = parse_sample(sample)
    again = training_sample(parsed)
    assert parse_sample(again) == parsed
    # Without its author the last comment cannot keep an OP or own-chain role; a plain reply is unchanged.
    if sample.endswith((REPLY_END + SELF_POST_END + END_OF_TEXT, REPLY_END + LINK_POST_END + END_OF_TEXT)) \
            or not thread.comments:
        assert again == sample


# Reddit names never hold "<|" or "|>": neutralising them changes no role.
reddit_names = names.filter(lambda name: name is None or neutralise(name) == name)


@quick
@given(posts, st.lists(st.builds(Comment, author=reddit_names, body=tricky_text), min_size=1, max_size=6), dialects)
def test_any_sample_is_the_bot_prompt_for_its_last_comment_then_that_comment(post, comments, dialect):
    """Train on what you prompt with: for a thread whose items all fit the prompt, the sample is

    ``reply_prompt(thread without its last comment c, bot_name=c.author)`` + c's body + the closing tags.
    """
    *earlier, last = comments
    assume(last.author is not None)
    context = Thread(post, tuple(earlier))
    texts = [post.title, post.body] + [c.body for c in earlier]
    assume(all(strip_mentions(text, last.author) == text for text in texts))
    role = reply_role(context, last.author, dialect)
    prompt = reply_prompt(context, last.author, dialect, max_chars=10**9)
    assert prompt.endswith(role.start_tag)
    end = LINK_POST_END if post.is_link else SELF_POST_END
    assert training_sample(Thread(post, tuple(comments)), dialect) == (
        prompt + encode_text(last.body, dialect) + role.end_tag + end + END_OF_TEXT)


@quick
@given(any_threads, names, st.integers(min_value=0, max_value=300), dialects)
def test_prompt_is_a_clean_suffix_of_the_thread_items(thread, bot_name, max_chars, dialect):
    assume(thread.post is not None or thread.comments)
    bot_name = bot_name or "lovebot"
    prompt = reply_prompt(thread, bot_name, dialect, max_chars=max_chars, whole_up_to=None)
    tag = reply_role(thread, bot_name, dialect).start_tag
    assert prompt.endswith(tag)
    history = prompt[:-len(tag)]

    # Never a broken or foreign tag: every "<|" opens a known tag that closes.
    tags, texts = tags_and_texts(prompt)
    assert all(PROMPT_TAG.fullmatch(t) for t in tags)
    assert not any("<|" in t or "|>" in t for t in texts)

    stripped = Thread(
        thread.post and Post(thread.post.subreddit, thread.post.author, strip_mentions(thread.post.title, bot_name),
                             strip_mentions(thread.post.body, bot_name), thread.post.is_link),
        tuple(Comment(c.author, strip_mentions(c.body, bot_name)) for c in thread.comments))
    items = render_items(stripped, dialect)[-6:]
    whole = [k for k in range(1, len(items) + 1) if history == "".join(items[-k:])]
    if whole:
        k = whole[-1]
        if k > 1:
            assert len(history) <= max_chars
        if k < len(items):   # one more item would not have fitted
            assert len("".join(items[-k - 1:])) > max_chars
    else:
        # The last item alone was too long: same tags, each text an end of the original text.
        last = items[-1]
        assert len(last) > max_chars
        last_tags, last_texts = tags_and_texts(last)
        assert tags == last_tags + [tag[2:-2]]
        assert all(original.endswith(kept) for kept, original in zip(texts, last_texts))
        assert len(history) <= max(max_chars, sum(len(t) + 4 for t in last_tags))


@quick
@given(tricky_text, dialects)
def test_extract_reply_recovers_the_text_as_the_prompt_wrote_it(text, dialect):
    assume("&amp;#x200B;" not in text)
    assert extract_reply(encode_text(text, dialect) + "<|eor|>", dialect) == neutralise(text).strip()
    # User text never closes a reply: unclosed, it is cut at its last line break or "!!!!".
    unclosed = extract_reply(encode_text(text, dialect), dialect)
    shown = neutralise(text)
    cut = shown.rfind("\n") if "\n" in shown else shown.find("!!!!")
    assert unclosed == (None if cut == -1 else shown[:cut].strip())


@quick
@given(tricky_text, tricky_text)
def test_extract_submission_recovers_title_and_body(title, body):
    assume("&amp;#x200B;" not in title + body)
    generated = encode_text(title) + "<|eot|><|sost|>" + encode_text(body) + "<|eost|><|eoss|><|endoftext|>"
    expected_title = " ".join(neutralise(title).split())
    expected = (expected_title, neutralise(body).strip()) if expected_title else None
    assert extract_submission(generated) == expected


@quick
@given(st.text())
def test_neutralise_is_idempotent_and_leaves_no_tag_marks(text):
    once = neutralise(text)
    assert neutralise(once) == once
    assert "<|" not in once and "|>" not in once


@quick
@given(st.text())
def test_decode_undoes_escape(text):
    assert decode_text(escape(text)) == text
    assert len(escape(text).splitlines()) <= 1


def test_split_sample_gives_the_bots_prompt_and_the_reply_it_should_write():
    post = Post("test", "op", "Title", "Body")
    thread = Thread(post, (Comment("alice", "first"), Comment("op", "line one\nline two")))
    prompt, reply = split_sample(training_sample(thread))
    assert prompt == reply_prompt(Thread(post, thread.comments[:1]), bot_name="op")
    assert prompt.endswith("<|soopr|>") and reply == "line one\nline two"
    assert split_sample(training_sample(Thread(post, ()))) is None
