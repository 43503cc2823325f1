"""jobs.rehearse: the prompt, candidates and decision for one thread, read-only, against the sandbox."""

import json
import logging

import pytest

from jobs import decide, fetch, generate, rehearse
from shared.bot import reddit
from shared.state import db
from tests.botworld import BOT, assert_one_clear_error, load, run_job, write_config


@pytest.fixture
def world(sandbox, tmp_path, rigged_model_dir):
    model = rigged_model_dir(["<|"], strength=2.0)
    path = write_config(tmp_path, sandbox.url, model=model, bots=[{"name": BOT, "subreddits": ["test"]}])
    sandbox.create_account(BOT)
    return path


def a_thread(sandbox):
    post = sandbox.submit("alice", "test", "What is love?", selftext="Baby don't hurt me")
    top = sandbox.comment("bob", post["name"], "No more")
    mine = sandbox.comment(BOT, top["name"], "Don't hurt me")
    last = sandbox.comment("carol", mine["name"], "Why would you say that?")
    return post, last


class Requests(logging.Handler):
    """Every request the sandbox answers, as "METHOD /path STATUS"."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def requests_seen():
    handler = Requests()
    logger = logging.getLogger("shared.sandbox")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_rehearse_a_thread_is_read_only_and_shows_prompt_candidates_and_the_decision(
        sandbox, world, requests_seen):
    post, last = a_thread(sandbox)
    inbox_before = sandbox.inbox(BOT)
    url = sandbox.url + post["permalink"] + last["id"] + "/"
    done = run_job("rehearse", world, "--bot", BOT, "--thread", url, "-n", "3", "--seed", "1")
    assert done.returncode == 0, done.stderr
    out = done.stdout

    # Read-only: reddit saw nothing but reads, the bot wrote nothing, its inbox is as it was,
    # and no state DB was opened.
    writes = [line for line in requests_seen if not line.startswith("GET ") and "/api/v1/access_token" not in line]
    assert writes == [] and any(line.startswith("GET /api/info") for line in requests_seen)
    assert [c["body"] for c in sandbox.comments_by(BOT)] == ["Don't hurt me"]
    assert sandbox.inbox(BOT) == inbox_before
    assert not (world.parent / "state.db").exists()

    # The prompt is the one jobs.generate writes for the same item, and the probability decide's.
    config = load(world)
    try:
        fetch.run(config, config.bots)
        decide.run(config, config.bots, seed=0)
        generate.run(config, config.bots)
        item = db.Item.get(key=last["name"])
        assert f"  {item.prompt}\n" in out
        assert item.prompt.endswith("<|sor u/carol|>Why would you say that?<|eor|><|soocr|>")
        decision = item.decisions.get()
        assert f"reply probability {decision.probability:.2f}: " + "; ".join(decision.reasons) in out
    finally:
        db.close()
    assert "3 candidates (temperature 0.8, top_k 40, top_p 0.95" in out and ", seed 1)" in out
    assert out.count("     raw: ") == 3


def test_the_rehearsal_is_what_rehearse_returns_and_verdicts_are_generates(sandbox, world, rigged_model_dir):
    from shared.config import load_config

    config = load_config(world)
    bot = config.bots[0]
    post, last = a_thread(sandbox)
    target = rehearse.target_from_reddit(reddit.connect(bot, config, read_only=True), last["name"])
    assert [t.fullname for t in target.chain][0] == post["name"] and target.chain[-1].depth == 2

    # A model that writes "a" and "<|" alike, a bot that must never say words starting with "a".
    target = rehearse.target_from_data({"post": {"subreddit": "test", "author": "alice", "title": "What",
                                                 "body": "x"}})
    bot.model = str(rigged_model_dir(["a", "<|"], strength=6.0))
    bot.negative_keywords = ["a*"]
    result = rehearse.rehearse(config, bot, target, n=6, seed=3)
    assert len(result.candidates) == 6
    check = generate.CandidateCheck(bot, thread_texts=generate.reply_context(bot, target.chain)[1])
    for candidate in result.candidates:
        assert candidate.verdict == (check(candidate.raw)[1] or "ok")
    assert any(c.verdict.startswith("negative keyword: a") for c in result.candidates), result.candidates
    assert result.prompt == generate.reply_context(bot, target.chain)[0]
    assert json.loads(json.dumps(result.to_json()))["candidates"][0]["raw"] == result.candidates[0].raw


def test_a_read_only_client_cannot_write(sandbox, world):
    from shared.config import load_config

    config = load_config(world)
    client = reddit.connect(config.bots[0], config, read_only=True)
    assert client.user.me().name == BOT   # logging in and reading work
    with pytest.raises(reddit.ReadOnlyViolation, match="refused POST .*/api/submit"):
        client.subreddit("test").submit("nope", selftext="x")
    assert sandbox.submissions_by(BOT) == []


def test_rehearse_text_and_a_hand_written_conversation(world, tmp_path):
    done = run_job("rehearse", world, "--bot", BOT, "--text", "Is anyone here?\nHello u/TestBot-GPT2",
                   "--seed", "2", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["prompt"] == "<|soss r/test|><|sot|>Is anyone here?<|eot|><|sost|>Hello <|eost|><|sor|>"
    assert result["probability"] == 1.0 and result["reasons"] == ["mention"]
    assert len(result["candidates"]) == 2   # the bot's sampling.candidates

    conversation = tmp_path / "dm.json"
    conversation.write_text(json.dumps({"subject": "Question", "messages": [
        {"author": "gina", "body": "Are you a bot?"}, {"author": BOT, "body": "I am."},
        {"author": "gina", "body": "Prove it"}]}))
    done = run_job("rehearse", world, "--bot", BOT, "--file", str(conversation), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["prompt"] == ("<|sot|>Question<|eot|><|soocr|>Are you a bot?<|eoocr|><|soocr|>I am.<|eoocr|>"
                                "<|soocr|>Prove it<|eoocr|><|sor|>")
    assert result["reasons"] == ["private message"]


def test_a_hand_written_thread_gets_decides_rules(tmp_path, world):
    thread = tmp_path / "thread.json"
    thread.write_text(json.dumps({
        "post": {"subreddit": "test", "author": "alice", "title": "Polls!", "body": "Vote.",
                 "poll_options": ["Yes", "No"], "age_hours": 12},
        "comments": [{"author": "bob", "body": "Why?"}, {"author": "Some-Bot", "body": "Because."}]}))
    done = run_job("rehearse", world, "--bot", BOT, "--file", str(thread), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["prompt"].startswith("<|soss r/test|><|sot|>Polls!<|eot|><|sost|>Vote. - Yes - No<|eost|>")
    assert result["reasons"] == ["base -0.10", "depth 2 -0.05", "bot author -0.10", "age 12.0h x0.50"]
    assert result["probability"] == 0.0


@pytest.mark.parametrize("args, words", [
    (["--file", "nowhere.json"], ["--file", "nowhere.json", "cannot read"]),
    (["--thread", "https://example.org/not/reddit"], ["--thread", "not a reddit post"]),
    (["--text", "  "], ["--text", "empty"]),
])
def test_bad_input_is_one_clear_line(world, args, words):
    assert_one_clear_error(run_job("rehearse", world, "--bot", BOT, *args), *words)


def test_a_bad_thread_file_names_the_key(world, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"post": {"subreddit": "test", "author": "alice", "title": ""}}))
    assert_one_clear_error(run_job("rehearse", world, "--bot", BOT, "--file", str(bad)), "post.title")


@pytest.mark.parametrize("value, fullname", [
    ("https://www.reddit.com/r/SubSimGPT2Interactive/comments/shfl4g/poll_for_usalouvas_bots/", "t3_shfl4g"),
    ("https://old.reddit.com/r/test/comments/shfl4g/poll/hv2dxaz/?context=3", "t1_hv2dxaz"),
    ("http://127.0.0.1:8765/r/test/comments/100004/x/100009/", "t1_100009"),
    ("https://redd.it/shfl4g", "t3_shfl4g"),
    ("t1_HV2DXAZ", "t1_hv2dxaz"), ("t4_1amxpj5", "t4_1amxpj5"), ("shfl4g", "t3_shfl4g"),
])
def test_thread_urls_and_ids(value, fullname):
    assert rehearse.fullname_of(value) == fullname


def test_rehearse_has_help():
    done = run_job("rehearse", "unused.yaml", "--help")
    assert done.returncode == 0 and "--thread URL_OR_ID" in done.stdout and "read-only" in done.stdout.lower()


def test_prompts_of_rehearse_and_generate_come_from_one_function():
    # No second copy: rehearse imports generate's prompt and check.
    assert rehearse.reply_context is generate.reply_context and rehearse.CandidateCheck is generate.CandidateCheck


def test_rehearse_a_private_message_reads_its_conversation(sandbox, world):
    first = sandbox.message("gina", BOT, "Question", "Are you a bot?")
    mine = sandbox.reply_message(BOT, first["name"], "I am.")
    last = sandbox.reply_message("gina", mine["name"], "Prove it")
    unread_before = sandbox.inbox(BOT, unread_only=True)
    done = run_job("rehearse", world, "--bot", BOT, "--thread", last["name"], "-n", "1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["prompt"] == ("<|sot|>Question<|eot|><|soocr|>Are you a bot?<|eoocr|><|soocr|>I am.<|eoocr|>"
                                "<|soocr|>Prove it<|eoocr|><|sor|>")
    assert result["reasons"] == ["private message"]
    assert sandbox.inbox(BOT, unread_only=True) == unread_before, "nothing marked read"


def test_rehearse_shows_the_toxicity_verdicts_generate_and_decide_would_give(tmp_path, world, word_model_dir):
    config = load(world)
    (bot,) = config.bots
    bot.model = str(word_model_dir(("idiot", "stupid")))
    bot.sampling.top_k, bot.sampling.max_new_tokens = 3, 6
    target = rehearse.target_from_data({"post": {"subreddit": "test", "author": "alice", "title": "Hello",
                                                 "body": "you worthless piece of shit"}})
    result = rehearse.rehearse(config, bot, target, n=8, seed=1)
    assert result.probability == 0 and result.reasons == ["toxic: profanity 1.00 >= 0.80"]
    assert any(c.verdict == "toxic: profanity 1.00 >= 0.80" for c in result.candidates), result.candidates
