"""The sandbox answers with reddit's shapes: same keys, same JSON types as real recordings.

For each endpoint the sandbox serves, the recorded real responses of that endpoint
(tests/data/reddit_api, copied from PRAW's cassettes) are compared with the
sandbox's answer in a similar situation, recursively: Listings, their children
(t1, t3, inbox t1, t4), comment trees, form envelopes, token answers, /api/v1/me.

Rules (``problems()``):
* every key of the recorded object is in the sandbox's, unless listed in ``OMITTED``;
* every key of the sandbox's object appears in some recording of that kind of object
  (reddit's field set grew over the years, so the union of the recordings counts),
  or is one of the modern fields in ``shared.sandbox.things.ADDED`` — which must then
  be present, with their declared types;
* types match, with int/float both "number"; ``null`` is fine where reddit sent null
  for that key in some recording, and anything is fine where reddit only ever sent null.
"""

import json
import time
from pathlib import Path

import pytest
import requests

from shared.sandbox import Sandbox
from shared.sandbox.things import ADDED

REALDATA = Path(__file__).resolve().parent / "data" / "reddit_api"

# Keys the sandbox leaves out on purpose.
OMITTED = {
    # Reddit adds these only to link posts whose page it scraped for a preview image;
    # the sandbox fetches nothing from the internet.
    "t3": {"post_hint", "preview"},
}
# Keys of plain (non-thing) objects that the sandbox adds to old recordings' field sets.
PLAIN_ADDED = {
    "drafts_count",  # /api/submit answers it since ~2019; the 2016 recordings predate it
}
# Keys that may be null where the recordings only show a value.
NULLABLE = {
    # Reddit stops naming the account of a deleted comment; no recording shows a deleted
    # comment in an inbox, where the sandbox sends null for it.
    "author_fullname",
}
# Values whose content depends on the account or on media the sandbox never has.
NO_RECURSE = {"features", "media", "media_embed", "secure_media", "secure_media_embed"}


def recorded(name, path_part=None, status=None):
    """Recorded interactions of one file, optionally filtered by path and status."""
    interactions = json.loads((REALDATA / name).read_text())["interactions"]
    return [i for i in interactions
            if (path_part is None or path_part in i["request"]["path"])
            and (status is None or i["response"]["status"] == status)]


def type_of(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"  # reddit itself mixes 1 and 1.0 (created, edited, scores)
    return {str: "str", list: "list", dict: "dict"}[type(value)]


def is_thing(value):
    return isinstance(value, dict) and set(value) == {"kind", "data"} and isinstance(value["data"], dict)


def context_of(thing):
    """t1 and t4 in an inbox carry inbox fields: a shape of their own."""
    kind = thing["kind"]
    return f"{kind}/inbox" if kind in ("t1", "t4") and "was_comment" in thing["data"] else kind


def collect_known():
    """{context: {key: {json types}}} over every thing in every recording."""
    known = {}

    def walk(value):
        if is_thing(value):
            fields = known.setdefault(context_of(value), {})
            for key, item in value["data"].items():
                fields.setdefault(key, set()).add(type_of(item))
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for path in REALDATA.glob("*.json"):
        for interaction in json.loads(path.read_text()).get("interactions", []):
            walk(interaction["response"].get("body"))
    return known


KNOWN = collect_known()


def compatible(sandbox_type, allowed):
    return sandbox_type in allowed or allowed <= {"null"}


def problems(mine, real, where="$", known_plain=None):
    """Differences in keys and types between the sandbox's ``mine`` and reddit's ``real``."""
    if is_thing(mine) and is_thing(real):
        context = context_of(real)
        if context_of(mine) != context:
            return [f"{where}: kind {context_of(mine)}, reddit sends {context}"]
        return compare_fields(mine["data"], real["data"], f"{where}<{context}>", KNOWN[context],
                              ADDED.get(context, {}), OMITTED.get(context, set()))
    if isinstance(mine, dict) and isinstance(real, dict):
        known = known_plain or {key: {type_of(value)} for key, value in real.items()}
        added = {key: (object,) for key in PLAIN_ADDED}
        return compare_fields(mine, real, where, known, added, set(), required_added=False)
    if isinstance(mine, list) and isinstance(real, list):
        if where.endswith(".children"):
            return compare_children(mine, real, where)
        found = []
        for index, (a, b) in enumerate(zip(mine, real)):
            found += problems(a, b, f"{where}[{index}]")
        return found
    if not compatible(type_of(mine), {type_of(real)}):
        return [f"{where}: {type_of(mine)}, reddit sends {type_of(real)}"]
    return []


def compare_fields(mine, real, where, known, added, omitted, required_added=True):
    found = [f"{where}: missing {key!r}" for key in sorted(set(real) - set(mine) - omitted)]
    found += [f"{where}: unknown key {key!r}" for key in sorted(set(mine) - set(known) - set(added))]
    for key, types in added.items():
        if key in known:
            continue
        if key not in mine:
            if required_added:
                found.append(f"{where}: missing modern key {key!r}")
        elif not isinstance(mine[key], types):
            found.append(f"{where}.{key}: {type(mine[key]).__name__}, expected {types}")
    for key in sorted(set(mine) & set(known)):
        allowed = set(known[key]) | ({type_of(real[key])} if key in real else set())
        if key in NULLABLE:
            allowed.add("null")
        if not compatible(type_of(mine[key]), allowed):
            found.append(f"{where}.{key}: {type_of(mine[key])}, reddit sends {sorted(allowed)}")
        elif key in real and key not in NO_RECURSE and mine[key] not in (None, "") \
                and isinstance(mine[key], (dict, list)) and isinstance(real[key], (dict, list)):
            found += problems(mine[key], real[key], f"{where}.{key}")
    return found


def compare_children(mine, real, where):
    """Each child of the sandbox's listing against a recorded child of the same kind."""
    by_context = {}
    for child in real:
        by_context.setdefault(context_of(child), child)
    found = []
    for index, child in enumerate(mine):
        match = by_context.get(context_of(child))
        if match is not None:
            found += problems(child, match, f"{where}[{index}]")
        elif context_of(child) in KNOWN:  # no such child in this recording: the union rules
            found += compare_fields(child["data"], {}, f"{where}[{index}]", KNOWN[context_of(child)],
                                    ADDED.get(context_of(child), {}), set())
        else:
            found.append(f"{where}[{index}]: reddit never sent a {context_of(child)}")
    return found


def assert_same_shape(mine, interactions, known_plain=None):
    assert interactions, "no recording to compare with"
    for interaction in interactions:
        found = problems(mine, interaction["response"]["body"], known_plain=known_plain)
        assert found == [], f"against {interaction['source']['path']}:\n" + "\n".join(found)


def kinds_in(listing):
    return {context_of(child) for child in listing["data"]["children"]}


# --- one sandbox with a bit of everything, read over raw HTTP --------------------------

class World:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.url = sandbox.url
        self.tokens = {}

    def token_answer(self, username, grant="password", password="pw"):
        data = {"grant_type": grant}
        if grant == "password":
            data.update(username=username, password=password)
        return requests.post(f"{self.url}/api/v1/access_token", auth=(f"app-{username}", "secret"),
                             data=data)

    def login(self, username):
        self.tokens[username] = self.token_answer(username).json()["access_token"]

    def call(self, method, path, user, data=None, **params):
        headers = {"Authorization": f"bearer {self.tokens.get(user, 'bad-token')}"}
        return requests.request(method, f"{self.url}{path}", params={"raw_json": 1, **params},
                                data=data, headers=headers)

    def get(self, path, user="reader", **params):
        answer = self.call("GET", path, user, **params)
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        return answer.json()

    def post(self, path, user, **data):
        return self.call("POST", path, user, data={"api_type": "json", **data})


@pytest.fixture(scope="module")
def world():
    with Sandbox() as sandbox:
        w = World(sandbox)
        for name in ("alice", "bob", "carol", "reader"):
            w.login(name)
        sandbox.set_user_flair("test", "bob", "Verified GPT-2 Bot")
        w.submit_answer = w.post("/api/submit", "alice", sr="test", kind="self", title="A self post",
                                 text="Some text", flair_id="flair-1").json()
        w.link_answer = w.post("/api/submit", "alice", sr="test", kind="link", title="A link",
                               url="https://example.org/x").json()
        w.post_name = w.submit_answer["json"]["data"]["name"]
        w.post_reply_answer = w.post("/api/comment", "bob", thing_id=w.post_name,
                                     text="Top level, hi u/carol").json()
        w.top = w.post_reply_answer["json"]["data"]["things"][0]["data"]
        w.comment_reply_answer = w.post("/api/comment", "alice", thing_id=w.top["name"], text="A reply").json()
        w.reply = w.comment_reply_answer["json"]["data"]["things"][0]["data"]
        w.post("/api/comment", "bob", thing_id=w.reply["name"], text="Deeper")
        w.post("/api/compose", "carol", to="alice", subject="hello", text="a message")
        message = w.get("/message/unread", "alice")["data"]["children"][0]["data"]
        w.message_reply_answer = w.post("/api/comment", "alice", thing_id=message["name"], text="answer").json()
        removed = w.post("/api/comment", "carol", thing_id=w.post_name, text="to be removed").json()
        w.removed_name = removed["json"]["data"]["things"][0]["data"]["name"]
        sandbox.remove(w.removed_name)
        deleted = w.post("/api/comment", "carol", thing_id=w.post_name, text="to be deleted").json()
        w.deleted_name = deleted["json"]["data"]["things"][0]["data"]["name"]
        sandbox.delete(w.deleted_name)
        yield w


# --- OAuth and identity ----------------------------------------------------------------

def test_password_grant_answer_matches_reddit(world):
    answer = world.token_answer("dave")
    assert answer.status_code == 200
    assert_same_shape(answer.json(), recorded("oauth_token_password_grant_ok.json"))


def test_client_credentials_answer_matches_reddit(world):
    answer = world.token_answer("app", grant="client_credentials")
    assert_same_shape(answer.json(), recorded("oauth_token_client_credentials_ok.json"))


def test_invalid_grant_answer_is_reddits(world):
    answer = world.token_answer("alice", password="wrong")
    [real] = recorded("oauth_token_invalid_grant.json")
    assert (answer.status_code, answer.json()) == (real["response"]["status"], real["response"]["body"])


def test_me_matches_modern_and_2016_field_sets(world):
    reals = recorded("me_ok.json") + recorded("me_ok_minimal_2016.json", "/api/v1/me")
    known = {}
    for real in reals:  # /api/v1/me grew over the years: any recorded key may be sent
        for key, value in real["response"]["body"].items():
            known.setdefault(key, set()).add(type_of(value))
    assert_same_shape(world.get("/api/v1/me", "alice"), reals, known_plain=known)


def test_bad_token_answer_matches_reddit(world):
    answer = world.call("GET", "/api/v1/me", "nobody")
    [real] = recorded("me_401_invalid_token.json")
    assert answer.status_code == 401 and answer.json() == real["response"]["body"]
    assert answer.headers["www-authenticate"] == real["response"]["headers"]["www-authenticate"]


# --- listings --------------------------------------------------------------------------

def test_subreddit_new_matches_reddit(world):
    mine = world.get("/r/test/new", limit=100)
    assert kinds_in(mine) == {"t3"}
    assert_same_shape(mine, recorded("subreddit_new_listing.json") + recorded("subreddit_new_listing_before.json"))


def test_front_page_listing_matches_reddit(world):
    front_pages = [i for i in recorded("retry_after_401_expired_token.json", status=200)
                   if i["request"]["path"] == "/"]
    assert_same_shape(world.get("/", limit=2), front_pages)


def test_subreddit_comments_matches_reddit(world):
    mine = world.get("/r/test/comments", limit=100)
    assert kinds_in(mine) == {"t1"}
    assert_same_shape(mine, recorded("subreddit_comments_listing.json"))


def test_user_comments_matches_reddit(world):
    mine = world.get("/user/bob/comments", sort="new")
    assert kinds_in(mine) == {"t1"}
    assert_same_shape(mine, recorded("user_comments_listing.json"))


def test_user_submissions_match_reddits_t3(world):
    mine = world.get("/user/alice/submitted", sort="new")
    assert kinds_in(mine) == {"t3"}
    assert_same_shape(mine, recorded("subreddit_new_listing.json"))


# --- comment trees ---------------------------------------------------------------------

def test_submission_with_comments_matches_reddit(world):
    post_id = world.post_name[3:]
    mine = world.get(f"/comments/{post_id}", limit=2048, sort="confidence")
    assert [kinds_in(listing) for listing in mine] == [{"t3"}, {"t1"}]
    assert mine[1]["data"]["children"][0]["data"]["replies"]["kind"] == "Listing"
    assert_same_shape(mine, recorded("submission_with_comments_small.json")
                      + recorded("submission_with_comments_and_more.json")
                      + recorded("submission_with_comments_large_thread.json"))


def test_comment_context_matches_reddit(world):
    post_id = world.post_name[3:]
    mine = world.get(f"/comments/{post_id}/_/{world.reply['id']}", context=100)
    assert_same_shape(mine, recorded("comment_context_permalink.json") + recorded("comment_continue_thread.json"))


def test_deleted_comment_permalink_is_an_empty_tree_like_reddit(world):
    post_id = world.post_name[3:]
    mine = world.get(f"/comments/{post_id}/_/{world.deleted_name[3:]}", context=100)
    [_, real] = recorded("api_info_deleted_comment.json")
    assert mine[1]["data"]["children"] == real["response"]["body"][1]["data"]["children"] == []
    assert_same_shape(mine, [real])


# --- /api/info -------------------------------------------------------------------------

def test_info_comment_matches_reddit(world):
    mine = world.get("/api/info", id=world.top["name"])
    assert_same_shape(mine, recorded("api_info_comment.json"))


def test_info_removed_and_deleted_comments_match_reddit(world):
    removed = world.get("/api/info", id=world.removed_name)
    deleted = world.get("/api/info", id=world.deleted_name)
    assert removed["data"]["children"][0]["data"]["body"] == "[removed]"
    assert deleted["data"]["children"][0]["data"]["author"] == "[deleted]"
    assert_same_shape(removed, recorded("api_info_removed_comment.json"))
    assert_same_shape(deleted, recorded("api_info_deleted_comment.json", "/api/info"))


def test_info_unknown_id_is_an_empty_listing_like_reddit(world):
    mine = world.get("/api/info", id="t1_0")
    assert mine["data"]["children"] == []
    assert_same_shape(mine, recorded("api_info_unknown_id_empty.json"))


# --- inbox -----------------------------------------------------------------------------

def test_inbox_unread_with_replies_and_messages_matches_reddit(world):
    mine = world.get("/message/unread", "alice", mark="False", limit=10)
    assert kinds_in(mine) == {"t1/inbox", "t4/inbox"}
    assert_same_shape(mine, recorded("inbox_unread.json") + recorded("inbox_unread_mixed.json"))


def test_inbox_mentions_and_comment_replies_match_reddit(world):
    mentions = world.get("/message/mentions", "carol", limit=16)
    replies = world.get("/message/comments", "bob", limit=100)
    assert [c["data"]["type"] for c in mentions["data"]["children"]] == ["username_mention"]
    assert [c["data"]["type"] for c in replies["data"]["children"]] == ["comment_reply"]
    assert_same_shape(mentions, recorded("inbox_mentions.json"))
    assert_same_shape(replies, recorded("inbox_comment_replies.json"))


def test_empty_inbox_matches_reddit(world):
    world.login("nobody_writes_to_me")
    assert_same_shape(world.get("/message/unread", "nobody_writes_to_me"), recorded("inbox_unread_empty.json"))


def test_read_message_answers_match_reddit(world):
    [read] = recorded("inbox_read_message_ok.json")
    [read_all] = recorded("inbox_read_all_messages_202.json")
    mine = world.post("/api/read_message", "carol", id="t1_0")
    assert (mine.status_code, mine.json()) == (read["response"]["status"], read["response"]["body"])
    mine = world.post("/api/read_all_messages", "carol")
    assert (mine.status_code, mine.json()) == (read_all["response"]["status"], read_all["response"]["body"])


# --- writing ---------------------------------------------------------------------------

def test_comment_answers_match_reddit(world):
    assert_same_shape(world.comment_reply_answer, recorded("comment_reply_ok.json"))
    assert_same_shape(world.post_reply_answer, recorded("submission_reply_ok.json"))
    assert_same_shape(world.message_reply_answer, recorded("message_reply_ok.json"))


def test_submit_answers_match_reddit(world):
    assert_same_shape(world.submit_answer, recorded("submit_selfpost_ok.json"))
    assert_same_shape(world.link_answer, recorded("submit_link_ok.json"))


def test_delete_answer_matches_reddit(world):
    comment = world.post("/api/comment", "bob", thing_id=world.post_name, text="x").json()
    answer = world.post("/api/del", "bob", id=comment["json"]["data"]["things"][0]["data"]["name"])
    [real] = recorded("delete_comment_ok.json")
    assert (answer.status_code, answer.json()) == (real["response"]["status"], real["response"]["body"])


def test_user_required_envelope_matches_reddit(world):
    world.tokens["app"] = world.token_answer("app", grant="client_credentials").json()["access_token"]
    answer = world.post("/api/comment", "app", thing_id=world.post_name, text="x")
    assert answer.status_code == 200
    assert_same_shape(answer.json(), recorded("api_error_user_required_in_200.json"))
    assert answer.json()["json"]["errors"][0][0] == "USER_REQUIRED"


# --- errors and headers ----------------------------------------------------------------

def test_forbidden_answer_matches_reddit(world):
    world.sandbox.lock(world.top["name"])
    try:
        answer = world.post("/api/comment", "carol", thing_id=world.top["name"], text="x")
    finally:
        world.sandbox.unlock(world.top["name"])
    modern = [r for r in recorded("forbidden_403.json") if "message" in r["response"]["body"]]
    assert answer.status_code == 403
    assert answer.json() == modern[0]["response"]["body"]


def test_not_found_answer_matches_reddit(world):
    answer = world.call("GET", "/comments/zzzzzz", "reader")
    real = [r["response"]["body"] for r in recorded("not_found_404.json") if "error" in r["response"]["body"]]
    assert answer.status_code == 404 and answer.json() == real[0]


def test_429_fault_answer_matches_reddit(world):
    [_, real] = recorded("me_429_with_retry_after.json")
    world.sandbox.faults.add("http", status=429, path="/api/v1/me", retry_after=4)
    answer = world.call("GET", "/api/v1/me", "reader")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == real["response"]["headers"]["retry-after"]
    assert answer.headers["content-type"] == real["response"]["headers"]["content-type"]
    assert "whoa there, pardner!" in answer.text and "whoa there, pardner!" in real["response"]["body"]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520, 522])
def test_5xx_fault_answers_match_reddit(world, status):
    real = recorded(f"server_error_{status}_retries.json")[0]["response"]
    world.sandbox.faults.add("http", status=status, path="/r/test/new")
    answer = world.call("GET", "/r/test/new", "reader")
    assert (answer.status_code, answer.text) == (real["status"], real["body"])
    assert ("x-ratelimit-used" in answer.headers) == ("x-ratelimit-used" in real["headers"])


def test_ratelimit_form_error_matches_the_observed_envelope(world):
    observed = json.loads((REALDATA / "error_envelopes_observed_in_the_wild.json").read_text())
    real = next(e["envelope"] for e in observed["entries"] if e["code"] == "RATELIMIT" and "51" in e["message"])
    world.sandbox.faults.add("ratelimit", path="/api/comment", seconds=51)
    answer = world.post("/api/comment", "bob", thing_id=world.post_name, text="x")
    assert (answer.status_code, answer.json()) == (200, real)


def test_ratelimit_headers_have_reddits_formats(world):
    rows = json.loads((REALDATA / "ratelimit_header_sequences.json").read_text())
    sample = next(row for sequence in rows["sequences"] for row in sequence["rows"]
                  if row.get("host") == "oauth.reddit.com" and row.get("x-ratelimit-remaining"))
    headers = world.call("GET", "/api/v1/me", "alice").headers
    for name in ("x-ratelimit-used", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert shape(headers[name]) == shape(sample[name]), name


def shape(value):
    """'599.0' -> '9.9', '12' -> '9': the digit pattern of a header value."""
    import re

    return re.sub(r"\d+", "9", value)


# --- the comparison itself must catch real changes -------------------------------------

def test_checker_catches_a_dropped_key_and_a_changed_type(world):
    real = recorded("subreddit_comments_listing.json", status=200)[:1]
    mine = world.get("/r/test/comments", limit=100)
    assert_same_shape(mine, real)
    dropped = json.loads(json.dumps(mine))
    del dropped["data"]["children"][0]["data"]["permalink"]
    assert any("permalink" in p for p in problems(dropped, real[0]["response"]["body"]))
    retyped = json.loads(json.dumps(mine))
    retyped["data"]["children"][0]["data"]["score"] = "1"
    assert any(".score" in p for p in problems(retyped, real[0]["response"]["body"]))
    invented = json.loads(json.dumps(mine))
    invented["data"]["children"][0]["data"]["made_up"] = 1
    assert any("made_up" in p for p in problems(invented, real[0]["response"]["body"]))
    post = world.get("/r/test/new")
    missing_t3 = json.loads(json.dumps(post))
    del missing_t3["data"]["children"][0]["data"]["permalink"]
    assert any("permalink" in p for p in problems(missing_t3, recorded("subreddit_new_listing.json")[0]
                                                   ["response"]["body"]))


def test_world_was_built_recently(world):
    # created_utc is a float epoch in whole seconds, like reddit's.
    created = world.get("/api/info", id=world.post_name)["data"]["children"][0]["data"]["created_utc"]
    assert isinstance(created, float) and created == int(created) and abs(created - time.time()) < 600


def test_message_conversation_matches_reddit(world):
    # As PRAW's inbox.message(ID) reads it: the first message, every later one in its replies.
    sent = world.get("/message/sent", "alice")["data"]["children"][0]["data"]   # alice's answer to carol
    mine = world.get(f"/message/messages/{sent['id']}", "carol")
    [root] = mine["data"]["children"]
    assert root["data"]["parent_id"] is None and root["data"]["subject"] == "hello"
    assert [r["data"]["name"] for r in root["data"]["replies"]["data"]["children"]] == [sent["name"]]
    assert_same_shape(mine, recorded("message_conversation.json", "/message/messages/30rugdg"))
    # whichever message is asked for, the answer is the whole conversation
    by_root = world.get(f"/message/messages/{root['data']['id']}", "carol")
    assert by_root == mine
    assert world.call("GET", f"/message/messages/{sent['id']}", "bob").status_code == 403, "not bob's conversation"


def test_a_banned_domain_is_refused_with_reddits_form_error_envelope(world):
    # No recording holds a DOMAIN_BANNED; the envelope is the observed one (HTTP 200, one
    # [code, message, field] triple), the triple from reddit's source: r2/r2/lib/errors.py
    # ("%(domain)s is not allowed on reddit: %(reason)s"), field "url" (r2/r2/controllers/api.py).
    observed = json.loads((REALDATA / "error_envelopes_observed_in_the_wild.json").read_text())
    envelope = next(e["envelope"] for e in observed["entries"] if e["code"] == "THREAD_LOCKED")
    world.sandbox.ban_domain("banned.example", "spam")
    try:
        answer = world.post("/api/submit", "alice", sr="test", kind="link", title="x",
                            url="https://img.banned.example/cat.jpg")
        allowed = world.post("/api/submit", "alice", sr="test", kind="link", title="x",
                             url="https://notbanned.example/cat.jpg")
    finally:
        world.sandbox.unban_domain("banned.example")
    assert answer.status_code == 200 and problems(answer.json(), envelope) == []
    assert answer.json()["json"]["errors"] == [
        ["DOMAIN_BANNED", "banned.example is not allowed on reddit: spam", "url"]]
    assert allowed.json()["json"]["errors"] == []
    world.sandbox.faults.add("form_error", path="/api/submit", error="DOMAIN_BANNED")
    faulted = world.post("/api/submit", "alice", sr="test", kind="link", title="x", url="https://a.example/")
    assert [e[0] for e in faulted.json()["json"]["errors"]] == ["DOMAIN_BANNED"]
