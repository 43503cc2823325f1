"""jobs.export and shared/training/export.py: filters, chains, the split, and samples that parse back into the DB's threads."""

import json
from pathlib import Path

import pytest

from jobs import download, export
from shared.training.export import (
    BOT, DELETED, EMPTY, LOW_SCORE, NEGATIVE, NSFW, SHORT_TITLE, URL_ONLY, Rules, all_chains,
    best_chain, comment_problem, eval_groups, is_url_only, known_bots, post_problem, thread_of,
)
from shared.training import corpus
from shared.training import export as export_logic
from shared.filters import DEFAULT_NEGATIVE_KEYWORDS, KeywordMatcher
from shared.records import normalise
from shared.tagging import LEGACY, REPLY_SENSE, parse_sample, recorded_thread, split_samples
from tests.botworld import assert_one_clear_error, run_job
from tests.archive_servers import REALDATA

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path, **training):
    tmp_path.mkdir(parents=True, exist_ok=True)
    training.setdefault("db", str(tmp_path / "training.db"))
    training.setdefault("data_dir", str(tmp_path / "data"))
    lines = [f"db: {tmp_path / 'state.db'}", "training:"] + [f"  {k}: {json.dumps(v)}" for k, v in training.items()]
    path = tmp_path / "ssi-bot.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def real_db(tmp_path_factory):
    """A training DB holding every real line (r/science, r/funny, r/anime)."""
    tmp = tmp_path_factory.mktemp("real")
    config = write_config(tmp)
    files = [str(p) for p in sorted(REALDATA.glob("*.ndjson"))]
    assert download.main(["--config", str(config), "dump", *files, "--no-progress"]) == 0
    return tmp / "training.db"


def run_export(config, *args):
    return export.main(["--config", str(config), *args])


def db_rows(db_path):
    """(posts by id, comments by id) as dicts, straight from the DB."""
    corpus.open(db_path)
    try:
        posts = {p["id"]: p for p in corpus.CorpusPost.select().dicts()}
        comments = {c["id"]: c for c in corpus.CorpusComment.select().dicts()}
    finally:
        corpus.close()
    return posts, comments


# --- samples parse back into the threads of the DB --------------------------------------------

def _check_samples_are_real_threads(lines, posts, comments, rules, dialect, best_only):
    """Each line parses, and is a post of the DB followed by a real parent-to-child chain of it."""
    children = {}
    for c in comments.values():
        children.setdefault(c["parent_id"], []).append(c)
    used_posts = set()
    for line in lines:
        parsed = parse_sample(line, dialect)
        # Find the post and walk its tree along the parsed comments.
        matches = []
        for post in posts.values():
            chain, parent = [], f"t3_{post['id']}"
            for depth, wanted in enumerate(parsed.comments):
                # c as the sample holds it here: named, unless it is the sample's last comment
                # (a second copy of c stands in for the comments after it)
                copies = 1 if depth == len(parsed.comments) - 1 else 2
                step = [c for c in children.get(parent, ())
                        if recorded_thread(thread_of(post, chain + [c] * copies), dialect).comments[depth] == wanted]
                if not step:
                    break
                chain.append(step[0])
                parent = f"t1_{step[0]['id']}"
            else:
                if recorded_thread(thread_of(post, chain), dialect) == parsed:
                    matches.append((post, chain))
        # A link posted twice gives the same sample: take an acceptable post not matched yet
        # (with all chains, a post gives several samples).
        matches = [(p, ch) for p, ch in matches if post_problem(p, rules) is None
                   and (p["id"] not in used_posts or not best_only)]
        assert matches, f"no acceptable thread of the DB gives {line[:120]!r}"
        post, chain = matches[0]
        assert all(comment_problem(c, rules) is None for c in chain)
        if best_only:
            # Each comment is the best-scored acceptable reply of its parent.
            parent = f"t3_{post['id']}"
            for c in chain:
                acceptable = [k for k in children.get(parent, ()) if comment_problem(k, rules) is None]
                assert c["score"] == max(k["score"] for k in acceptable)
                parent = f"t1_{c['id']}"
        used_posts.add(post["id"])
    return used_posts


def test_exported_samples_parse_back_into_the_same_threads(real_db, tmp_path):
    config = write_config(tmp_path, db=str(real_db))
    assert run_export(config, "--subreddit", "funny", "--out", str(tmp_path / "out")) == 0
    lines = (tmp_path / "out" / "train.txt").read_text(encoding="utf-8").splitlines()
    lines += (tmp_path / "out" / "eval.txt").read_text(encoding="utf-8").splitlines()
    posts, comments = db_rows(real_db)
    posts = {k: p for k, p in posts.items() if p["subreddit"] == "funny"}
    from shared.config import Training
    rules = Rules.from_config(Training())
    assert len(lines) == 1
    used = _check_samples_are_real_threads(lines, posts, comments, rules, REPLY_SENSE, best_only=True)
    assert used == {"3hahrw"}
    assert len(parse_sample(lines[0]).comments) == 9      # the thread is 9 deep; max_comments is 10


def test_every_science_sample_is_a_real_chain_in_both_dialects(real_db, tmp_path):
    posts, comments = db_rows(real_db)
    posts = {k: p for k, p in posts.items() if p["subreddit"] == "science"}
    from shared.config import Training
    rules = Rules.from_config(Training())
    for dialect, chains in ((REPLY_SENSE, []), (LEGACY, ["--all-chains"])):
        out = tmp_path / dialect
        config = write_config(tmp_path, db=str(real_db))
        assert run_export(config, "--subreddit", "science", "--out", str(out), "--dialect", dialect, *chains) == 0
        # a legacy sample keeps its line breaks: samples end at <|endoftext|>
        lines = split_samples((out / "train.txt").read_bytes().decode("utf-8"))
        lines += split_samples((out / "eval.txt").read_bytes().decode("utf-8"))
        used = _check_samples_are_real_threads(lines, posts, comments, rules, dialect, best_only=not chains)
        assert used == {p["id"] for p in posts.values() if post_problem(p, rules) is None}
        if not chains:
            assert len(lines) == len(used)          # one sample per post


def test_export_is_deterministic_and_the_seed_moves_the_split(real_db, tmp_path):
    config = write_config(tmp_path, db=str(real_db))
    outputs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert run_export(config, "--subreddit", "science", "--out", str(tmp_path / name), "--seed", seed) == 0
        outputs[name] = ((tmp_path / name / "train.txt").read_bytes(), (tmp_path / name / "eval.txt").read_bytes())
    assert outputs["a"] == outputs["b"]
    assert outputs["a"][1] != outputs["c"][1]
    train, evaluation = (part.decode().splitlines() for part in outputs["a"])
    assert len(evaluation) == (len(train) + len(evaluation)) // 10 and not set(train) & set(evaluation)


def test_summary_reports_samples_mb_reasons_and_warns_under_6_mb(real_db, tmp_path, capsys):
    config = write_config(tmp_path, db=str(real_db))
    assert run_export(config, "--subreddit", "science", "--out", str(tmp_path / "out")) == 0
    captured = capsys.readouterr()
    assert "samples: 139 (train.txt 126, eval.txt 13)" in captured.out
    assert " MB (train " in captured.out
    # posts; the two about Trump are left out by the built-in negative keywords
    assert "left out: deleted or removed 22, negative keyword 2" in captured.out
    # comments: 282 removed + 39 deleted + 4, less the 19 in the two posts about Trump
    assert "deleted or removed 306" in captured.out
    assert "GPT-2 124M wants 6-10 MB" in captured.err


# --- filters -------------------------------------------------------------------------------------

def post(id="p1", author="alice", title="Why is the sky blue today", selftext="", **fields):
    row = {"id": id, "subreddit": "test", "subreddit_name": "Test", "author": author, "title": title,
           "selftext": selftext, "url": None, "is_self": True, "over_18": False, "score": 10,
           "created_utc": 1.0e9, "deleted": False, "removed": False}
    row.update(fields)
    return row


def comment(id, parent, author="bob", body="a reply", score=1, link="p1", **fields):
    row = {"id": id, "subreddit": "test", "subreddit_name": "Test", "author": author, "body": body,
           "score": score, "created_utc": 1.0e9 + int(id, 36), "parent_id": parent, "link_id": link,
           "deleted": False, "removed": False}
    row.update(fields)
    return row


RULES = Rules(frozenset({"automoderator", "somebot"}), KeywordMatcher(DEFAULT_NEGATIVE_KEYWORDS + ("spoon*",)),
              include_nsfw=False, min_score=0, min_title_words=3)


@pytest.mark.parametrize("fields, reason", [
    ({}, None),
    ({"deleted": True}, DELETED),
    ({"removed": True}, DELETED),
    ({"author": None}, DELETED),
    ({"selftext": "[removed]"}, DELETED),
    ({"author": "AutoModerator"}, BOT),
    ({"title": "   "}, EMPTY),
    ({"title": "Spoons are the enemy of all"}, NEGATIVE),
    ({"selftext": "a nazi marched"}, NEGATIVE),
    ({"over_18": True}, NSFW),
    ({"score": -1}, LOW_SCORE),
    ({"title": "Two words"}, SHORT_TITLE),
])
def test_post_filters(fields, reason):
    assert post_problem(post(**fields), RULES) == reason


@pytest.mark.parametrize("fields, reason", [
    ({}, None),
    ({"body": "[deleted]"}, DELETED),
    ({"body": "[removed]"}, DELETED),
    ({"author": None}, DELETED),
    ({"removed": True}, DELETED),
    ({"author": "SOMEBOT"}, BOT),
    ({"body": " "}, EMPTY),
    ({"body": "https://example.com/x"}, URL_ONLY),
    ({"body": "[look](https://example.com/x)"}, URL_ONLY),
    ({"body": "see https://example.com/x it is good"}, None),
    ({"body": "i like spoons"}, NEGATIVE),
    ({"body": "a trumpet and a grape"}, None),
    ({"score": -5}, LOW_SCORE),
])
def test_comment_filters(fields, reason):
    assert comment_problem(comment("c1", "t3_p1", **fields), RULES) == reason


def test_url_only_recognises_bare_angled_and_markdown_links():
    assert is_url_only("http://a.b/c  https://d.e/f")
    assert is_url_only("<https://a.b>") and is_url_only("www.example.com/page")
    assert not is_url_only("check this: https://a.b")


def test_known_bots_ship_with_the_product_and_config_adds_more():
    bots = known_bots()
    assert len(bots) == 135 and {"automoderator", "profanitycounter"} <= {b.lower() for b in bots}
    from shared.config import Training
    rules = Rules.from_config(Training(bot_authors=["MyOtherBot"]))
    assert "myotherbot" in rules.bot_authors and "remindmebot" in rules.bot_authors
    assert post_problem(post(author="RemindMeBot"), rules) == BOT


# --- chains ---------------------------------------------------------------------------------------

def tree():
    """p1 -> a (5) -> c (1); p1 -> b (9) -> d (2) -> e (0); b -> f (7, by a bot)."""
    comments = [comment("a", "t3_p1", score=5), comment("b", "t3_p1", score=9),
                comment("c", "t1_a", score=1), comment("d", "t1_b", score=2),
                comment("e", "t1_d", score=0), comment("f", "t1_b", score=7, author="somebot")]
    children = {}
    for c in comments:
        if comment_problem(c, RULES) is None:
            children.setdefault(c["parent_id"], []).append(c)
    return children


def test_best_chain_takes_the_best_acceptable_child_at_each_level():
    assert [c["id"] for c in best_chain("p1", tree(), 10)] == ["b", "d", "e"]     # f is a bot's
    assert [c["id"] for c in best_chain("p1", tree(), 2)] == ["b", "d"]
    assert best_chain("p1", tree(), 0) == []
    assert best_chain("p2", tree(), 10) == []                                     # post-only sample


def test_all_chains_gives_every_root_to_leaf_chain_best_first():
    assert [[c["id"] for c in ch] for ch in all_chains("p1", tree(), 10)] == [["b", "d", "e"], ["a", "c"]]
    assert [[c["id"] for c in ch] for ch in all_chains("p1", tree(), 1)] == [["b"], ["a"]]
    assert [[c["id"] for c in ch] for ch in all_chains("p1", tree(), 10, cap=1)] == [["b", "d", "e"]]
    assert all_chains("p2", tree(), 10) == [[]]


def test_a_left_out_comment_takes_its_replies_with_it(tmp_path):
    db = tmp_path / "training.db"
    corpus.open(db)
    rows = [dict(post(), kind="submission"),
            dict(comment("a", "t3_p1", body="[removed]", score=50), kind="comment"),
            dict(comment("b", "t1_a", body="the best reply", score=99), kind="comment"),
            dict(comment("c", "t3_p1", body="plain", score=1), kind="comment")]
    corpus.store(rows)
    corpus.close()
    config = write_config(tmp_path)
    assert run_export(config, "--subreddit", "test") == 0
    sample = (tmp_path / "data" / "train.txt").read_text().strip()
    assert parse_sample(sample).comments[0].body == "plain" and "the best reply" not in sample


def test_eval_is_ten_percent_capped_at_3000_and_keeps_a_post_together():
    assert len(eval_groups([1] * 1000, seed=0)) == 100
    assert len(eval_groups([1] * 100_000, seed=0)) == 3000
    assert eval_groups([1] * 1000, seed=0) == eval_groups([1] * 1000, seed=0)
    assert eval_groups([1] * 1000, seed=0) != eval_groups([1] * 1000, seed=1)
    assert len(eval_groups([1, 1], seed=0)) == 1 and eval_groups([1], seed=0) == set()
    assert eval_groups([5], seed=0) == set()                # never everything in eval
    sizes = [3] * 400                                        # all-chains: 1200 samples in groups of 3
    assert sum(sizes[g] for g in eval_groups(sizes, seed=0)) == 120


# --- bad input: one line, exit 2, nothing written ------------------------------------------------

def test_an_unknown_subreddit_is_one_line_exit_2_and_writes_nothing(real_db, tmp_path):
    result = run_job("export", write_config(tmp_path, db=str(real_db)), "--subreddit", "sciense", "--out", str(tmp_path / "out"))
    assert_one_clear_error(result, "r/sciense", "r/science (163 posts)", "jobs.download")
    assert not (tmp_path / "out").exists()


def test_a_missing_training_db_is_one_line_exit_2(tmp_path):
    result = run_job("export", write_config(tmp_path), "--subreddit", "science")
    assert_one_clear_error(result, "no training DB", "jobs.download")
    assert not (tmp_path / "training.db").exists()


def test_nothing_to_train_on_is_exit_2_and_writes_no_file(tmp_path):
    db = tmp_path / "training.db"
    corpus.open(db)
    corpus.store([dict(post(author="AutoModerator"), kind="submission")])
    corpus.close()
    assert run_export(write_config(tmp_path), "--subreddit", "test") == 2
    assert list((tmp_path / "data").iterdir()) == []


def test_a_failure_midway_leaves_the_previous_files_and_no_temporary_ones(real_db, tmp_path, monkeypatch):
    config = write_config(tmp_path, db=str(real_db))
    out = tmp_path / "out"
    assert run_export(config, "--subreddit", "science", "--out", str(out)) == 0
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir())
    calls = []

    def failing(thread, dialect=REPLY_SENSE):
        calls.append(1)
        if len(calls) > 50:
            raise RuntimeError("disk full")
        return "x"

    monkeypatch.setattr(export_logic, "training_sample", failing)
    assert run_export(config, "--subreddit", "science", "--out", str(out), "--seed", "9") == 1
    assert sorted((p.name, p.read_bytes()) for p in out.iterdir()) == before


def test_real_rows_round_trip_through_normalise_and_the_db(real_db):
    """What export reads is what normalise made of the real lines (no column lost on the way)."""
    posts, comments = db_rows(real_db)
    for raw in (json.loads(line) for line in (REALDATA / "thread_3hahrw_reddit_api.ndjson").open()):
        row = normalise(raw)
        stored = (posts if row["kind"] == "submission" else comments)[row["id"]]
        assert {k: stored[k] for k in stored} == {k: row[k] for k in stored}
