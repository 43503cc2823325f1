"""shared/records.py: one raw object of any era or source as a DB row, checked on the real lines."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.records import (
    COMMENT, COMMENT_COLUMNS, SUBMISSION, SUBMISSION_COLUMNS, RecordError, base36, flatten_tree,
    normalise, timestamp,
)
from tests.archive_servers import read_ndjson

REAL_FILES = {
    "pushshift_api_science_comments.ndjson": (1569, 0),
    "pushshift_api_2021_comments_by_ids.ndjson": (10, 0),
    "pushshift_api_science_submissions.ndjson": (0, 113),
    "pushshift_api_2022_science_submissions_sample.ndjson": (0, 50),
    "thread_3hahrw_reddit_api.ndjson": (536, 1),
}


def _columns_typed(row):
    columns = COMMENT_COLUMNS if row["kind"] == COMMENT else SUBMISSION_COLUMNS
    assert set(row) == set(columns) | {"kind"}
    assert isinstance(row["created_utc"], float) and isinstance(row["score"], int)
    assert row["id"].isalnum() and row["id"] == row["id"].lower()
    assert row["subreddit"] == row["subreddit_name"].lower()
    assert row["author"] is None or (row["author"] and row["author"] != "[deleted]")
    if row["kind"] == COMMENT:
        assert row["parent_id"][:3] in ("t1_", "t3_") and not row["link_id"].startswith("t3_")


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_every_real_line_normalises_to_a_typed_row(name):
    rows = [normalise(raw) for raw in read_ndjson(name)]
    comments = sum(r["kind"] == COMMENT for r in rows)
    assert (comments, len(rows) - comments) == REAL_FILES[name]
    for row in rows:
        _columns_typed(row)


def test_2022_api_integer_parents_become_comment_fullnames_that_resolve():
    raws = read_ndjson("pushshift_api_science_comments.ndjson")
    rows = [normalise(raw) for raw in raws]
    ids = {r["id"] for r in rows}
    integer = [(raw, row) for raw, row in zip(raws, rows) if isinstance(raw["parent_id"], int)]
    assert len(integer) == 1145
    for raw, row in integer:
        assert row["parent_id"] == "t1_" + base36(raw["parent_id"])
        assert int(row["parent_id"][3:], 36) == raw["parent_id"]
    # The README counts 268 integer parents that point at a comment of the same file.
    assert sum(row["parent_id"][3:] in ids for _raw, row in integer) == 268


def test_2022_api_null_parent_is_the_post():
    raws = read_ndjson("pushshift_api_science_comments.ndjson")
    top = [normalise(raw) for raw in raws if raw["parent_id"] is None]
    assert len(top) == 424
    assert all(row["parent_id"] == "t3_" + row["link_id"] for row in top)


def test_every_parent_of_the_recorded_thread_resolves_inside_it():
    rows = [normalise(raw) for raw in read_ndjson("thread_3hahrw_reddit_api.ndjson")]
    post, comments = rows[0], rows[1:]
    fullnames = {f"t3_{post['id']}"} | {f"t1_{c['id']}" for c in comments}
    assert all(c["parent_id"] in fullnames and c["link_id"] == post["id"] for c in comments)
    assert isinstance(post["created_utc"], float) and post["is_self"] is False


def test_removed_and_deleted_counts_match_the_recorded_data():
    rows = [normalise(raw) for raw in read_ndjson("pushshift_api_science_comments.ndjson")]
    assert sum(r["removed"] for r in rows) == 282
    assert sum(r["deleted"] for r in rows) == 39
    submissions = [normalise(raw) for raw in read_ndjson("pushshift_api_2022_science_submissions_sample.ndjson")]
    assert sum(s["removed"] for s in submissions) == 16       # removed_by_category moderator (12), reddit (4)


# --- era quirks, one by one -----------------------------------------------------------------------

def comment(**fields):
    raw = {"id": "c0abc", "author": "alice", "body": "hi", "created_utc": 1134365188, "link_id": "t3_x1",
           "parent_id": "t3_x1", "subreddit": "reddit.com", "score": 3}
    raw.update(fields)
    return {k: v for k, v in raw.items() if v is not DROP}


def submission(**fields):
    raw = {"id": "x1", "author": "bob", "title": "A title", "selftext": "", "created_utc": 1119552233,
           "subreddit": "reddit.com", "score": 10, "url": "http://example.com/", "is_self": False,
           "over_18": False}
    raw.update(fields)
    return {k: v for k, v in raw.items() if v is not DROP}


DROP = object()


@pytest.mark.parametrize("value, expected", [
    (1134365188, 1134365188.0),              # 2005-2007, 2019-2020 dumps
    ("1252200000", 1252200000.0),            # 2009-09, 2012-09, 2014-09 dumps
    (1706745600.0, 1706745600.0),            # 2024-02 dumps, reddit's API
    ("1706745600.5", 1706745600.5),
    (1706745600123, 1706745600.123),         # milliseconds
])
def test_created_utc_of_every_era_is_a_float(value, expected):
    assert normalise(comment(created_utc=value))["created_utc"] == pytest.approx(expected)


@pytest.mark.parametrize("value", [None, "", "yesterday", True, [], float("nan")])
def test_unusable_created_utc_is_a_record_error(value):
    with pytest.raises(RecordError, match="created_utc"):
        normalise(comment(created_utc=value))


def test_parent_and_link_forms():
    assert normalise(comment(parent_id="t1_c0abb"))["parent_id"] == "t1_c0abb"
    assert normalise(comment(parent_id="T3_X1"))["parent_id"] == "t3_x1"
    assert normalise(comment(parent_id=int("c0abb", 36)))["parent_id"] == "t1_c0abb"
    assert normalise(comment(parent_id=None, nest_level=1))["parent_id"] == "t3_x1"
    assert normalise(comment(parent_id=DROP))["parent_id"] == "t3_x1"
    assert normalise(comment(parent_id="c0abb"))["parent_id"] == "t1_c0abb"     # bare id: a comment
    assert normalise(comment(parent_id="x1"))["parent_id"] == "t3_x1"           # ... unless it is the post
    assert normalise(comment(link_id=int("x1", 36)))["link_id"] == "x1"
    with pytest.raises(RecordError, match="link_id"):
        normalise(comment(link_id=DROP))
    with pytest.raises(RecordError, match="parent_id"):
        normalise(comment(parent_id="t1_not an id"))


def test_retrieval_fields_and_meta_of_any_era_are_ignored():
    plain = normalise(comment())
    for extra in ({"retrieved_on": 1473738411}, {"retrieved_utc": 1612483333, "updated_utc": 1668702670,
                                                 "utc_datetime_str": "2020-09-14 15:09:10"},
                  {"retrieved_on": 1706800000, "_meta": {"retrieved_2nd_on": 1706900000,
                                                         "was_deleted_later": True, "note": "initially_unavailable"}},
                  {"body_html": "<p>hi</p>", "replies": "", "depth": 0}):
        assert normalise(comment(**extra)) == plain


def test_2005_submission_without_is_self_is_judged_by_domain_or_text():
    assert normalise(submission(is_self=DROP, domain="self.reddit.com"))["is_self"] is True
    assert normalise(submission(is_self=DROP, domain="example.com"))["is_self"] is False
    assert normalise(submission(is_self=DROP, selftext="words"))["is_self"] is True
    assert normalise(submission(over_18=DROP))["over_18"] is False
    assert normalise(submission(over_18="true"))["over_18"] is True


@pytest.mark.parametrize("fields, deleted, removed", [
    ({"selftext": "[deleted]"}, True, False),
    ({"title": "[deleted by user]"}, True, False),
    ({"removed_by_category": "deleted"}, True, False),
    ({"removed_by_category": "author"}, True, False),
    ({"selftext": "[removed]"}, False, True),
    ({"removed_by_category": "moderator"}, False, True),
    ({"removed_by_category": "reddit"}, False, True),
    ({"removed_by_category": "automod_filtered"}, False, True),
    ({"banned_by": "a_mod"}, False, True),
    ({"removed_by_category": None, "banned_by": None}, False, False),
])
def test_deleted_and_removed_markers(fields, deleted, removed):
    row = normalise(submission(**fields))
    assert (row["deleted"], row["removed"]) == (deleted, removed)


def test_removed_by_reddit_body_and_deleted_author():
    row = normalise(comment(body="[ Removed by Reddit ]", author="[deleted]"))
    assert row["removed"] and row["author"] is None
    assert normalise(comment(author=None))["author"] is None
    assert normalise(comment(author=DROP))["author"] is None


def test_ids_come_bare_from_id_or_name():
    assert normalise(comment(id="t1_C0ABC"))["id"] == "c0abc"
    assert normalise(comment(id=DROP, name="t1_c0abd"))["id"] == "c0abd"
    with pytest.raises(RecordError, match="no id"):
        normalise(comment(id=DROP))
    with pytest.raises(RecordError, match="id"):
        normalise(comment(id="not-an-id"))


def test_subreddit_sources_and_case():
    row = normalise(comment(subreddit="SubSimGPT2Interactive"))
    assert (row["subreddit"], row["subreddit_name"]) == ("subsimgpt2interactive", "SubSimGPT2Interactive")
    assert normalise(comment(subreddit="r/science"))["subreddit"] == "science"
    assert normalise(comment(subreddit=DROP, permalink="/r/Funny/comments/x1/t/c0abc/"))["subreddit_name"] == "Funny"
    assert normalise(comment(subreddit=DROP, subreddit_name_prefixed="r/anime"))["subreddit"] == "anime"
    with pytest.raises(RecordError, match="subreddit"):
        normalise(comment(subreddit=DROP))


def test_score_falls_back_to_ups_minus_downs():
    assert normalise(comment(score=DROP, ups=10, downs=3))["score"] == 7
    assert normalise(comment(score="12"))["score"] == 12
    assert normalise(comment(score=DROP))["score"] == 0


def test_text_is_unescaped_and_storable():
    assert normalise(comment(body="&gt; quoted &amp; more"))["body"] == "> quoted & more"
    lone = json.loads('"half \\ud83d emoji"')
    assert normalise(comment(body=lone))["body"] == "half \ufffd emoji"
    pair = json.loads('"\\ud83d\\ude00"')
    assert normalise(comment(body=pair))["body"] == "\U0001F600"
    assert normalise(comment(body=None))["body"] == ""


def test_wrapped_objects_and_more_placeholders():
    assert normalise({"kind": "t1", "data": comment()})["kind"] == COMMENT
    assert normalise({"kind": "t3", "data": submission()})["kind"] == SUBMISSION
    assert normalise({"kind": "more", "data": {"count": 2, "children": ["a", "b"]}}) is None
    with pytest.raises(RecordError, match="neither"):
        normalise({"id": "abc", "created_utc": 1})
    with pytest.raises(RecordError, match="expected an object"):
        normalise(["not", "an", "object"])


def test_kind_hint_decides_only_when_fields_cannot():
    assert normalise(comment(), "submission")["kind"] == COMMENT
    bare = {"id": "abc", "created_utc": 1, "subreddit": "x", "link_id": "t3_q"}
    assert normalise(bare, "comment")["kind"] == COMMENT


def test_flatten_tree_walks_listings_and_collects_more():
    tree = [{"kind": "t1", "data": dict(comment(id="a1"), replies={"kind": "Listing", "data": {"children": [
        {"kind": "t1", "data": dict(comment(id="a2", parent_id="t1_a1"), replies="")},
        {"kind": "more", "data": {"count": 2, "children": ["a3", "a4"]}}]}})},
        dict(comment(id="b1"), replies=[comment(id="b2", parent_id="t1_b1")])]
    comments, more = flatten_tree(tree)
    assert [c["id"] for c in comments] == ["a1", "a2", "b1", "b2"]
    assert more == ["a3", "a4"]
    assert all("replies" not in c for c in comments)


def test_base36_round_trips():
    for text in ("0", "z", "g58knth", "3hahrw"):
        assert base36(int(text, 36)) == text
    assert timestamp("1600000000") == 1600000000.0


# --- robustness: any mangling of a real line gives a row or a RecordError ------------------------

REAL_LINES = read_ndjson("pushshift_api_science_comments.ndjson")[:20] + read_ndjson(
    "pushshift_api_science_submissions.ndjson")[:5]
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3),
                           max_leaves=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(REAL_LINES) - 1),
       field=st.sampled_from(["id", "created_utc", "parent_id", "link_id", "author", "body", "title",
                              "selftext", "subreddit", "score", "is_self", "over_18", "removed_by_category",
                              "name", "banned_by", "url"]),
       value=JSON_VALUES, drop=st.booleans())
def test_a_mangled_real_line_gives_a_typed_row_or_a_record_error(index, field, value, drop):
    raw = dict(REAL_LINES[index])
    if drop:
        raw.pop(field, None)
    else:
        raw[field] = value
    try:
        row = normalise(raw)
    except RecordError:
        return
    _columns_typed(row)

