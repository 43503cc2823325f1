"""jobs.generate: prompts from the cached thread, best-of-N in shared batches, validation, give-up,
and the safety checks on every candidate (negative keywords, repetition, toxicity)."""

import pytest

from jobs import decide, fetch, generate
from shared.state import db
from shared import generation
from tests.botworld import BOT, load, write_config


@pytest.fixture
def world(sandbox, tmp_path, rigged_model_dir):
    # A tiny random model that closes its replies after a few tokens.
    model = rigged_model_dir(["<|"], strength=2.0)
    config = load(write_config(tmp_path, sandbox.url, model=model,
                               bots=[{"name": BOT, "subreddits": ["test"], "reply": {"base": 1.0}}]))
    sandbox.create_account(BOT)
    yield config
    db.close()


def pipeline(config):
    fetch.run(config, config.bots)
    decide.run(config, config.bots, seed=0)
    generate.run(config, config.bots)


def test_reply_tags_follow_who_wrote_the_thread(sandbox, world):
    human_post = sandbox.submit("alice", "test", "A human post", selftext="x")
    top = sandbox.comment("bob", human_post["name"], "a top-level comment")
    bot_post = sandbox.submit(BOT, "test", "The bot's post", selftext="y")
    in_bot_post = sandbox.comment("carol", bot_post["name"], "commenting on the bot's post")
    # The bot's comment goes in another post: commenting answers a post.
    other_post = sandbox.submit("alice", "test", "Another post", selftext="z")
    bot_comment = sandbox.comment(BOT, other_post["name"], "the bot's comment")
    under_bot = sandbox.comment("dave", bot_comment["name"], "answering the bot")
    below_that = sandbox.comment("erin", under_bot["name"], "two levels under the bot")
    pipeline(world)
    prompts = {i.key: i.prompt for i in db.Item.select()}
    assert prompts[top["name"]].endswith("<|sor u/bob|>a top-level comment<|eor|><|sor|>")
    assert prompts[in_bot_post["name"]].endswith("<|soopr|>")
    # The bot's answer to dave would sit two levels under its own comment.
    assert prompts[under_bot["name"]].endswith("<|soocr|>")
    assert other_post["name"] not in prompts or prompts[other_post["name"]] is None
    assert prompts[below_that["name"]].endswith("<|sor|>")
    assert prompts[human_post["name"]] == (
        "<|soss r/test|><|sot|>A human post<|eot|><|sost|>x<|eost|><|sor|>")


def test_every_queued_item_gets_text_or_a_reason(sandbox, world):
    post = sandbox.submit("alice", "test", "hello", selftext="x")
    for i in range(5):
        sandbox.comment(f"user{i}", post["name"], f"comment {i}")
    pipeline(world)
    items = list(db.Item.select())
    assert len(items) == 6 and not [i for i in items if i.state == db.QUEUED]
    for item in items:
        if item.state == db.GENERATED:
            assert item.text and "<|" not in item.text
            accepted = [c for c in item.candidates if c.accepted]
            assert len(accepted) == 1 and accepted[0].raw.endswith(("<|", "<|endoftext|>"))
        else:
            assert item.state == db.FAILED and item.reason.startswith("no acceptable text after 3 rounds")
    assert sum(i.state == db.GENERATED for i in items) >= 4


def test_best_of_n_candidates_share_one_batch(sandbox, world):
    world.bots[0].sampling.candidates = 3
    post = sandbox.submit("alice", "test", "hello", selftext="x")
    for i in range(3):
        sandbox.comment(f"user{i}", post["name"], f"comment {i}")
    pipeline(world)
    stats = generation.load(world.bots[0].model).last_stats
    first_round = [c for c in db.Candidate.select().order_by(db.Candidate.id)][:12]
    assert len(first_round) == 12 and stats.rows <= 12
    assert stats.batches == 1 or stats.rows < 12   # later rounds only for items still without text


def test_unclosed_replies_are_rejected_and_the_item_fails_after_its_attempts(sandbox, world, rigged_model_dir):
    never_closes = rigged_model_dir(["a"], strength=8.0)
    world.bots[0].model = str(never_closes)
    world.bots[0].sampling.max_new_tokens = 8
    world.bots[0].sampling.attempts = 2
    sandbox.submit("alice", "test", "hello", selftext="x")
    pipeline(world)
    (item,) = db.Item.select()
    assert item.state == db.FAILED and item.gen_attempts == 2
    assert item.reason == "no acceptable text after 2 rounds (unclosed)"
    assert item.candidates.count() == 4 and not any(c.accepted for c in item.candidates)


def test_two_bots_sharing_a_model_share_its_batches(sandbox, tmp_path, rigged_model_dir):
    model = rigged_model_dir(["<|"], strength=2.0)
    bots = [{"name": name, "subreddits": ["test"], "reply": {"base": 1.0}} for name in ("BotA-GPT2", "BotB-GPT2")]
    config = load(write_config(tmp_path, sandbox.url, model=model, bots=bots))
    try:
        post = sandbox.submit("alice", "test", "hello", selftext="x")
        sandbox.comment("bob", post["name"], "hi")
        fetch.run(config, config.bots)
        decide.run(config, config.bots, seed=0)
        generate.run(config, config.bots)
        assert db.Item.select().where(db.Item.state == db.QUEUED).count() == 0
        first = db.Candidate.select().order_by(db.Candidate.id).limit(8)
        assert {c.item.bot for c in first} == {"BotA-GPT2", "BotB-GPT2"}
    finally:
        db.close()


def test_a_missing_model_is_one_clear_error(sandbox, world, tmp_path):
    world.bots[0].model = str(tmp_path / "no-such-model")
    sandbox.submit("alice", "test", "hello", selftext="x")
    fetch.run(world, world.bots)
    decide.run(world, world.bots, seed=0)
    from shared.errors import ModelError
    with pytest.raises(ModelError, match="no-such-model"):
        generate.run(world, world.bots)
    assert db.Item.get().state == db.QUEUED, "nothing is lost: the item waits for a model"


# --- the checks inside the job, with a model that can only say a few words ------------------------

def only_the_deepest(config, sandbox, texts):
    """A human thread whose post and comments say ``texts`` (title, body, comments...); fetched
    and decided, with only its deepest comment queued. Returns that item."""
    post = sandbox.submit("alice", "test", texts[0], selftext=texts[1])
    parent = post["name"]
    for i, text in enumerate(texts[2:]):
        parent = sandbox.comment(f"user{i}", parent, text)["name"]
    fetch.run(config, config.bots)
    db.Item.update(state=db.SKIPPED).where(db.Item.key != parent).execute()
    decide.run(config, config.bots, seed=0)
    item = db.Item.get(key=parent)
    assert item.state == db.QUEUED, item.reason
    return item


def speaking(config, model, words, **bot):
    (settings,) = config.bots
    settings.model = str(model)
    settings.sampling.top_k, settings.sampling.max_new_tokens = len(words) + 1, 6
    settings.sampling.candidates, settings.sampling.attempts = 4, 3
    for name, value in bot.items():
        setattr(settings, name, value)


def reasons_of(item):
    return [c.reason for c in db.Item.get_by_id(item.id).candidates]


def test_toxic_candidates_are_rejected_with_the_classifiers_reason(sandbox, world, word_model_dir):
    speaking(world, word_model_dir(("idiot", "stupid")), ("idiot", "stupid"))
    item = only_the_deepest(world, sandbox, ["A friendly thread", "hi all", "nice to meet you"])
    generate.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.FAILED and not any(c.accepted for c in item.candidates)
    reasons = reasons_of(item)
    assert set(reasons) <= {"empty", "unclosed", "toxic: profanity 1.00 >= 0.80"}
    assert "toxic: profanity 1.00 >= 0.80" in reasons and "toxic: profanity" in item.reason


def test_generated_toxicity_can_be_switched_off(sandbox, world, word_model_dir):
    speaking(world, word_model_dir(("idiot", "stupid")), ("idiot", "stupid"))
    world.bots[0].toxicity.generated = False
    item = only_the_deepest(world, sandbox, ["A friendly thread", "hi all", "nice to meet you"])
    generate.run(world, world.bots)
    assert db.Item.get_by_id(item.id).state == db.GENERATED


def test_candidates_with_a_negative_keyword_are_rejected(sandbox, world, word_model_dir):
    speaking(world, word_model_dir(("idiot", "stupid")), ("idiot", "stupid"), negative_keywords=["idiot", "stupid"])
    world.bots[0].toxicity.generated = False
    item = only_the_deepest(world, sandbox, ["A friendly thread", "hi all", "nice to meet you"])
    generate.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.FAILED
    keyword = [r for r in reasons_of(item) if r.startswith("negative keyword: ")]
    assert keyword and set(reasons_of(item)) - set(keyword) <= {"empty", "unclosed"}


def test_candidates_that_repeat_the_thread_are_rejected(sandbox, world, word_model_dir):
    # Up to 5 "hello"s fit in 6 new tokens with the closing "<|"; the thread holds each count.
    speaking(world, word_model_dir(("hello",)), ("hello",))
    thread = [" ".join(["hello"] * n) for n in range(1, 7)]
    item = only_the_deepest(world, sandbox, thread)
    generate.run(world, world.bots)
    item = db.Item.get_by_id(item.id)
    assert item.state == db.FAILED
    repeats = [r for r in reasons_of(item) if r == "repeats the thread (similarity 1.00)"]
    assert repeats and set(reasons_of(item)) - set(repeats) <= {"empty", "unclosed"}


def test_a_private_message_is_prompted_with_its_whole_conversation(sandbox, world):
    # zacc/ssi-bot reddit_io/logic_mixin.py:56-62 walked a DM's parents: the subject and the
    # earlier messages, the bot's own included (tests/test_original_prompts.py has the format).
    world.bots[0].subreddits = []
    world.bots[0].inbox.messages = True
    first = sandbox.message("alice", BOT, "Question", "Hi, are you a bot?")
    answer = sandbox.reply_message(BOT, first["name"], "I am a humble robot.")
    again = sandbox.reply_message("alice", answer["name"], "Cool! What's your favourite star?")
    pipeline(world)
    items = {i.key: i for i in db.Item.select()}
    assert items[again["name"]].prompt == (
        "<|sot|>Question<|eot|><|soocr|>Hi, are you a bot?<|eoocr|><|soocr|>I am a humble robot.<|eoocr|>"
        "<|soocr|>Cool! What's your favourite star?<|eoocr|><|sor|>")
    # The conversation showed the bot had answered the first message: it is not answered again.
    assert items[first["name"]].state == db.POSTED and items[first["name"]].result == answer["name"]
    assert db.Thing.get_by_id(first["name"]).title == "Question"


def test_a_deep_comment_keeps_the_roles_of_a_post_out_of_the_window(sandbox, world):
    post = sandbox.submit("alice", "test", "Deep thread", selftext="x")
    parent, authors = post["name"], ["bob", "carol", "alice", "dave", "alice", "dave", "erin", "gina"]
    for i, author in enumerate(authors):
        parent = sandbox.comment(author, parent, f"level {i}")["name"]
    world.bots[0].reply.max_depth = 20
    pipeline(world)
    prompt = db.Item.get(key=parent).prompt
    # The post is out of the window, not out of the roles: alice wrote it (OP), and dave
    # also wrote level 5's grandparent (level 3, his own chain).
    assert "<|soss" not in prompt and "level 1" not in prompt
    assert prompt == ("<|soopr u/alice|>level 2<|eoopr|><|sor u/dave|>level 3<|eor|><|soopr u/alice|>level 4"
                      "<|eoopr|><|soocr u/dave|>level 5<|eoocr|><|sor u/erin|>level 6<|eor|><|sor u/gina|>level 7"
                      "<|eor|><|sor|>")
    own = sandbox.submit(BOT, "test", "The bot's deep thread", selftext="y")
    parent = own["name"]
    for i, author in enumerate(authors):
        parent = sandbox.comment(author, parent, f"own {i}")["name"]
    pipeline(world)
    assert db.Item.get(key=parent).prompt.endswith("<|sor u/gina|>own 7<|eor|><|soopr|>")


def test_a_poll_is_prompted_with_its_options(sandbox, world):
    sandbox.submit("alice", "test", "Best inner planet?", selftext="Vote below.",
                   poll_options=["Mercury", "Venus"])
    pipeline(world)
    assert db.Item.get().prompt == (
        "<|soss r/test|><|sot|>Best inner planet?<|eot|><|sost|>Vote below. - Mercury - Venus<|eost|><|sor|>")
    assert db.Thing.get().poll_options == ["Mercury", "Venus"]
