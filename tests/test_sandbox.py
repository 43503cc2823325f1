"""The local reddit sandbox, exercised through real PRAW over real HTTP (nothing mocked).

Each test gets a fresh in-memory sandbox on a free port (the ``sandbox`` fixture in
conftest.py) and talks to it as reddit's users would: PRAW clients for humans and
bots, plain ``requests`` where a test needs the raw HTTP answer.
"""

import itertools
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import praw
import praw.exceptions
import praw.models
import prawcore.exceptions
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.sandbox import RemoteSandbox, Sandbox, SandboxError

REPO = Path(__file__).resolve().parents[1]


def token(sandbox, username, password="pw", client_id="raw-client"):
    """A bearer token from the password grant, as PRAW would get it."""
    answer = requests.post(f"{sandbox.url}/api/v1/access_token", auth=(client_id, "secret"),
                           data={"grant_type": "password", "username": username, "password": password})
    return answer.json()["access_token"]


def get(sandbox, path, bearer, **params):
    return requests.get(f"{sandbox.url}{path}", params={"raw_json": 1, **params},
                        headers={"Authorization": f"bearer {bearer}"})


@pytest.fixture
def alice(sandbox):
    return sandbox.reddit("alice")


@pytest.fixture
def bot(sandbox):
    return sandbox.reddit("bot1")


@pytest.fixture
def post(alice):
    return alice.subreddit("test").submit("A question for bots", selftext="What do you think?")


# --- accounts and tokens ---------------------------------------------------------------

def test_first_login_creates_the_account_and_me_names_it(alice):
    me = alice.user.me()
    assert me.name == "alice"
    assert re.fullmatch(r"[0-9a-z]+", me.id)


def test_wrong_password_raises_oauth_invalid_grant(sandbox, alice):
    alice.user.me()  # creates alice with password "pw"
    intruder = sandbox.reddit("alice", password="wrong")
    with pytest.raises(prawcore.exceptions.OAuthException) as caught:
        intruder.user.me()
    assert caught.value.error == "invalid_grant"


def test_wrong_password_is_http_200_with_error_like_reddit(sandbox, alice):
    alice.user.me()
    answer = requests.post(f"{sandbox.url}/api/v1/access_token", auth=("c", "s"),
                           data={"grant_type": "password", "username": "alice", "password": "nope"})
    assert (answer.status_code, answer.json()) == (200, {"error": "invalid_grant"})


def test_bad_token_gets_401_with_www_authenticate(sandbox):
    answer = get(sandbox, "/api/v1/me", "not-a-token")
    assert answer.status_code == 401
    assert answer.json() == {"message": "Unauthorized", "error": 401}
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_praw_logs_in_again_after_tokens_are_revoked(sandbox, alice):
    alice.user.me()
    assert sandbox.revoke_tokens("alice") == 1
    # prawcore answers the 401 by fetching a new token and retrying, invisibly.
    assert [s.title for s in alice.subreddit("test").new()] == []
    assert alice.user.me().name == "alice"


def test_read_only_client_reads_but_cannot_post(sandbox, post):
    reader = sandbox.reddit()  # client_credentials grant
    assert reader.read_only
    assert [s.id for s in reader.subreddit("test").new()] == [post.id]
    answer = requests.post(f"{sandbox.url}/api/comment", data={"thing_id": post.fullname, "text": "x"},
                           headers={"Authorization": f"bearer {reader._core._authorizer.access_token}"})
    assert answer.json()["json"]["errors"][0][0] == "USER_REQUIRED"


# --- submitting ------------------------------------------------------------------------

def test_self_post_keeps_flair_nsfw_and_text(sandbox, alice):
    sandbox.add_link_flair("test", "flair-uuid-1", "Discussion")
    post = alice.subreddit("test").submit("Title here", selftext="Body here", flair_id="flair-uuid-1",
                                          nsfw=True)
    fresh = sandbox.reddit("reader").submission(post.id)
    assert (fresh.title, fresh.selftext, fresh.is_self) == ("Title here", "Body here", True)
    assert (fresh.link_flair_template_id, fresh.link_flair_text) == ("flair-uuid-1", "Discussion")
    assert fresh.over_18 is True
    assert fresh.author.name == "alice"
    assert fresh.permalink == f"/r/test/comments/{post.id}/title_here/"
    assert fresh.url == "https://www.reddit.com" + fresh.permalink


def test_unregistered_flair_id_shows_as_its_own_text(alice):
    post = alice.subreddit("test").submit("t", selftext="", flair_id="some-template")
    assert post.link_flair_text == "some-template"
    assert post.selftext == "" and post.selftext_html is None


def test_link_post_points_at_its_url(alice):
    post = alice.subreddit("links").submit("A link", url="https://example.org/page")
    assert (post.is_self, post.url, post.domain) == (False, "https://example.org/page", "example.org")


def test_link_resubmit_false_refuses_a_duplicate_url(alice):
    alice.subreddit("links").submit("A link", url="https://example.org/a")
    with pytest.raises(praw.exceptions.RedditAPIException) as caught:
        alice.subreddit("links").submit("Again", url="https://example.org/a", resubmit=False)
    assert caught.value.items[0].error_type == "ALREADY_SUB"


def test_first_submit_creates_the_subreddit(alice, bot):
    alice.subreddit("brandnew").submit("first", selftext="x")
    about = bot.subreddit("brandnew")
    assert about.display_name == "brandnew" and about.id


# --- comments and trees ----------------------------------------------------------------

def test_comment_tree_nests_replies_with_depth(sandbox, alice, bot, post):
    top = bot.submission(post.id).reply("top level")
    child = bot.comment(top.id).reply("child")
    alice.comment(child.id).reply("grandchild")
    tree = sandbox.reddit("reader").submission(post.id)
    assert tree.num_comments == 3
    [root] = tree.comments
    assert (root.body, root.depth, root.is_submitter) == ("top level", 0, False)
    [kid] = root.replies
    assert (kid.body, kid.depth) == ("child", 1)
    [grandkid] = kid.replies
    assert (grandkid.body, grandkid.depth, grandkid.is_submitter) == ("grandchild", 2, True)
    assert grandkid.permalink == f"/r/test/comments/{post.id}/a_question_for_bots/{grandkid.id}/"


def test_comment_parent_walks_up_to_the_submission(bot, post):
    top = post.reply("top")
    leaf = bot.comment(top.id).reply("leaf")
    lazy = bot.comment(leaf.id)  # as a bot meets a comment it did not load itself
    parent = lazy.parent()
    assert isinstance(parent, praw.models.Comment) and parent.body == "top"
    assert parent.parent() == post
    assert parent.parent().title == "A question for bots"


def test_comment_refresh_loads_its_replies_through_context(bot, post):
    top = post.reply("top")
    middle = bot.comment(top.id).reply("middle")
    bot.comment(middle.id).reply("bottom")
    refreshed = bot.comment(middle.id).refresh()
    assert refreshed.body == "middle"
    assert [r.body for r in refreshed.replies] == ["bottom"]


def test_context_returns_the_ancestor_chain_only(sandbox, bot, post):
    top = post.reply("top")
    post.reply("unrelated sibling")
    leaf = bot.comment(top.id).reply("leaf")
    bearer = token(sandbox, "reader")
    first, second = get(sandbox, f"/comments/{post.id}/_/{leaf.id}", bearer, context=8).json()
    assert first["data"]["children"][0]["data"]["id"] == post.id
    [root] = second["data"]["children"]
    assert root["data"]["id"] == top.id and root["data"]["depth"] == 0
    assert [c["data"]["id"] for c in root["data"]["replies"]["data"]["children"]] == [leaf.id]
    assert root["data"]["replies"]["data"]["children"][0]["data"]["replies"] == ""


def test_paths_accept_trailing_slash_subreddit_prefix_and_json_suffix(sandbox, post):
    bearer = token(sandbox, "reader")
    for path in (f"/comments/{post.id}", f"/comments/{post.id}/", f"/comments/{post.id}.json",
                 f"/r/test/comments/{post.id}/a_question_for_bots/"):
        answer = get(sandbox, path, bearer)
        assert answer.status_code == 200, path
        assert answer.json()[0]["data"]["children"][0]["data"]["id"] == post.id


def test_deleted_comment_shows_deleted_and_replying_gets_deleted_comment(sandbox, alice, bot, post):
    comment = alice.submission(post.id).reply("soon gone")
    sandbox.delete(comment.fullname)
    shown = next(bot.info(fullnames=[comment.fullname]))
    assert (shown.author, shown.body) == (None, "[deleted]")  # PRAW maps "[deleted]" to None
    with pytest.raises(praw.exceptions.RedditAPIException) as caught:
        bot.comment(comment.id).reply("too late")
    item = caught.value.items[0]
    assert (item.error_type, item.field) == ("DELETED_COMMENT", "parent")


def test_author_deletes_own_comment_with_api_del(sandbox, alice, post):
    comment = post.reply("oops")
    alice.comment(comment.id).delete()
    assert sandbox.thing(comment.fullname)["body"] == "[deleted]"
    assert sandbox.thing(comment.fullname)["author"] == "[deleted]"


def test_deleted_leaf_comment_vanishes_from_the_tree(sandbox, alice, post):
    keep = post.reply("kept")
    gone = post.reply("gone")
    sandbox.delete(gone.fullname)
    assert [c.id for c in sandbox.reddit("reader").submission(post.id).comments] == [keep.id]


def test_removed_comment_shows_removed_body_and_keeps_author(sandbox, alice, bot, post):
    comment = bot.submission(post.id).reply("spam")
    sandbox.remove(comment.fullname)
    shown = next(alice.info(fullnames=[comment.fullname]))
    assert (shown.author.name, shown.body) == ("bot1", "[removed]")
    assert comment.id not in [c.id for c in alice.subreddit("test").comments()]


def test_locked_submission_answers_403_to_comments(sandbox, bot, post):
    sandbox.lock(post.fullname)
    assert bot.submission(post.id).locked is True
    with pytest.raises(prawcore.exceptions.Forbidden):
        bot.submission(post.id).reply("hello?")


def test_locked_comment_answers_403_to_replies(sandbox, alice, bot, post):
    comment = post.reply("locked one")
    sandbox.lock(comment.fullname)
    with pytest.raises(prawcore.exceptions.Forbidden):
        bot.comment(comment.id).reply("hello?")
    assert bot.submission(post.id).reply("still open").body == "still open"


def test_banned_user_gets_403_commenting_and_submitting(sandbox, bot, post):
    sandbox.ban("test", "bot1")
    with pytest.raises(prawcore.exceptions.Forbidden):
        bot.submission(post.id).reply("hi")
    with pytest.raises(prawcore.exceptions.Forbidden):
        bot.subreddit("test").submit("t", selftext="x")
    assert bot.subreddit("elsewhere").submit("t", selftext="x").title == "t"
    sandbox.unban("test", "bot1")
    assert bot.submission(post.id).reply("back").body == "back"


def test_archived_submission_refuses_replies_with_too_old(sandbox, bot, post):
    sandbox.set_created(post.fullname, time.time() - 200 * 86400)
    fresh = bot.submission(post.id)
    assert fresh.archived is True
    with pytest.raises(praw.exceptions.RedditAPIException) as caught:
        fresh.reply("late")
    assert caught.value.items[0].error_type == "TOO_OLD"


def test_author_flair_set_by_admin_shows_on_comments(sandbox, bot, post):
    sandbox.set_user_flair("test", "bot1", "Verified GPT-2 Bot")
    comment = bot.submission(post.id).reply("beep")
    assert comment.author_flair_text == "Verified GPT-2 Bot"
    assert next(sandbox.reddit("reader").info(fullnames=[comment.fullname])).author_flair_text == \
        "Verified GPT-2 Bot"


def test_edit_updates_body_and_edited_time(alice, post):
    comment = post.reply("first version")
    comment.edit("second version")
    fresh = next(alice.info(fullnames=[comment.fullname]))
    assert fresh.body == "second version"
    assert isinstance(fresh.edited, float)


# --- listings --------------------------------------------------------------------------

def test_new_is_newest_first_and_pages_with_after(sandbox, alice, caplog):
    titles = [f"post {i}" for i in range(7)]
    for title in titles:
        alice.subreddit("paging").submit(title, selftext="x")
    caplog.set_level("INFO", logger="shared.sandbox")
    listed = [s.title for s in alice.subreddit("paging").new(limit=None, request_limit=3)]
    assert listed == titles[::-1]
    pages = [r for r in caplog.messages if r.startswith("GET /r/paging/new")]
    assert len(pages) == 3  # 3 + 3 + 1


def test_listing_limit_is_capped_at_100(sandbox):
    for i in range(105):
        sandbox.submit("alice", "big", f"post {i}")
    bearer = token(sandbox, "reader")
    page = get(sandbox, "/r/big/new", bearer, limit=1000).json()["data"]
    assert page["dist"] == 100 and page["after"] == page["children"][-1]["data"]["name"]
    rest = get(sandbox, "/r/big/new", bearer, limit=100, after=page["after"]).json()["data"]
    assert [c["data"]["title"] for c in rest["children"]] == [f"post {i}" for i in range(4, -1, -1)]
    assert rest["after"] is None and rest["before"] == rest["children"][0]["data"]["name"]


def test_before_returns_only_newer_items_newest_first(sandbox):
    old = sandbox.submit("alice", "poll", "old")
    new1 = sandbox.submit("alice", "poll", "new1")
    new2 = sandbox.submit("alice", "poll", "new2")
    bearer = token(sandbox, "reader")
    page = get(sandbox, "/r/poll/new", bearer, before=old["name"], limit=100).json()["data"]
    assert [c["data"]["name"] for c in page["children"]] == [new2["name"], new1["name"]]
    assert (page["after"], page["before"]) == (None, None)
    newest = get(sandbox, "/r/poll/new", bearer, before=new2["name"]).json()["data"]
    assert newest["children"] == []


def test_paging_with_after_or_before_visits_every_post_once_in_order(sandbox):
    bearer = token(sandbox, "reader")
    subreddits = itertools.count()
    now = int(time.time())

    @settings(max_examples=30, deadline=None, database=None)
    @given(ages=st.lists(st.integers(0, 3), max_size=20), page=st.integers(1, 7))
    def check(ages, page):
        # Several posts share a second (ties break by creation order), some move back in time.
        sub = f"paging{next(subreddits)}"
        names = [sandbox.submit("alice", sub, f"p{i}")["name"] for i in range(len(ages))]
        for name, age in zip(names, ages):
            sandbox.set_created(name, now - age)
        newest_first = [n for _, _, n in sorted(zip(ages, range(len(names)), names),
                                                key=lambda t: (-t[0], t[1]), reverse=True)]
        seen, after = [], None
        while True:
            data = get(sandbox, f"/r/{sub}/new", bearer, limit=page, **({"after": after} if after else {})).json()
            seen += [c["data"]["name"] for c in data["data"]["children"]]
            after = data["data"]["after"]
            if after is None:
                break
        assert seen == newest_first
        if newest_first:  # and back up from the oldest with before, as a stream polls
            seen, before = [], newest_first[-1]
            while before:
                data = get(sandbox, f"/r/{sub}/new", bearer, limit=page, before=before).json()["data"]
                seen = [c["data"]["name"] for c in data["children"]] + seen
                before = data["before"]
            assert seen == newest_first[:-1]

    check()


def test_multi_subreddit_comments_merge_newest_first(sandbox, alice):
    one = alice.subreddit("one").submit("p1", selftext="x")
    two = alice.subreddit("two").submit("p2", selftext="x")
    three = alice.subreddit("three").submit("p3", selftext="x")
    c1 = one.reply("in one")
    c2 = two.reply("in two")
    three.reply("in three")
    c4 = one.reply("in one again")
    listed = list(sandbox.reddit("reader").subreddit("one+two").comments())
    assert [c.id for c in listed] == [c4.id, c2.id, c1.id]
    assert listed[0].link_title == "p1" and listed[0].subreddit.display_name == "one"


def test_subreddit_stream_polls_with_before_and_yields_only_new_comments(sandbox, alice, post):
    first = post.reply("already there")
    stream = sandbox.reddit("bot1").subreddit("test").stream.comments(pause_after=0)
    seen = []
    for comment in stream:
        if comment is None:
            break
        seen.append(comment.id)
    assert seen == [first.id]
    later = [post.reply(f"new {i}") for i in range(2)]
    for comment in stream:
        if comment is None:
            break
        seen.append(comment.id)
    assert seen == [first.id] + [c.id for c in later]


def test_info_batches_over_100_fullnames_and_omits_unknown_ids(sandbox, caplog):
    post = sandbox.submit("alice", "test", "many comments")
    names = [sandbox.comment("bob", post["name"], f"comment {i}")["name"] for i in range(130)]
    caplog.set_level("INFO", logger="shared.sandbox")
    asked = [post["name"], "t1_zzzzzz"] + names
    found = list(sandbox.reddit("reader").info(fullnames=asked))
    assert [thing.fullname for thing in found] == [post["name"]] + names
    assert isinstance(found[0], praw.models.Submission) and found[1].body == "comment 0"
    assert len([m for m in caplog.messages if m.startswith("GET /api/info")]) == 2


def test_redditor_comment_and_submission_listings(sandbox, alice, post):
    other = alice.subreddit("test").submit("second post", selftext="x")
    bot = sandbox.reddit("bot1")
    c1 = bot.submission(post.id).reply("one")
    c2 = bot.submission(other.id).reply("two")
    reader = sandbox.reddit("reader")
    assert [c.id for c in reader.redditor("bot1").comments.new()] == [c2.id, c1.id]
    assert [s.id for s in reader.redditor("alice").submissions.new()] == [other.id, post.id]
    assert reader.redditor("alice").id == alice.user.me().id


# --- inbox -----------------------------------------------------------------------------

def test_mentions_and_replies_reach_unread_and_mark_read_clears_them(sandbox, alice, bot, post):
    mention = alice.submission(post.id).reply("what does u/bot1 think?")
    answer = bot.comment(mention.id).reply("beep boop")
    reply = alice.comment(answer.id).reply("thanks")
    unread = list(bot.inbox.unread())
    assert [(i.id, i.type, i.subject) for i in unread] == [
        (reply.id, "comment_reply", "comment reply"), (mention.id, "username_mention", "username mention")]
    assert all(isinstance(i, praw.models.Comment) and i.new for i in unread)
    assert unread[0].context == f"{reply.permalink}?context=3"
    assert unread[1].parent() == post and unread[1].submission.title == "A question for bots"
    assert [i.type for i in alice.inbox.unread()] == ["comment_reply"]  # not her own mention
    bot.inbox.mark_read(unread)
    assert list(bot.inbox.unread()) == []
    assert [i.new for i in bot.inbox.all()] == [False, False]


def test_reply_that_mentions_the_parent_author_is_only_a_reply(sandbox, alice, bot, post):
    answer = bot.submission(post.id).reply("bot speaking")
    alice.comment(answer.id).reply("hey u/BOT1, and /u/carol too")
    assert [i["type"] for i in sandbox.inbox("bot1")] == ["comment_reply"]
    assert [i["type"] for i in sandbox.inbox("carol")] == ["username_mention"]


def test_nobody_is_notified_of_their_own_comment(sandbox, alice, post):
    own = post.reply("talking to myself, u/alice")
    alice.comment(own.id).reply("still me")
    assert sandbox.inbox("alice") == []


def test_mention_in_a_word_is_not_a_mention(sandbox, post):
    post.reply("see reddit.com/u/bot1 or emu/bot1 and xu/bot1")
    assert sandbox.inbox("bot1") == []


def test_inbox_listings_filter_by_kind(sandbox, alice, bot, post):
    answer = bot.submission(post.id).reply("bot reply")
    alice.comment(answer.id).reply("reply to bot")
    alice.submission(post.id).reply("hi u/bot1")
    assert [i.type for i in bot.inbox.comment_replies()] == ["comment_reply"]
    assert [i.type for i in bot.inbox.mentions()] == ["username_mention"]
    assert [i.type for i in alice.inbox.submission_replies()] == ["post_reply"]


def test_read_all_messages_empties_unread(sandbox, alice, bot, post):
    alice.submission(post.id).reply("u/bot1 one")
    alice.submission(post.id).reply("u/bot1 two")
    bot.inbox.mark_all_read()
    assert list(bot.inbox.unread()) == []


def test_private_messages_and_replies_are_t4(sandbox, alice, bot):
    bot.user.me()
    alice.redditor("bot1").message(subject="hello", message="are you a bot?")
    [message] = list(bot.inbox.unread())
    assert isinstance(message, praw.models.Message)
    assert (message.subject, message.body, message.author.name) == ("hello", "are you a bot?", "alice")
    reply = message.reply("yes")
    assert isinstance(reply, praw.models.Message) and reply.subject == "re: hello"
    [answer] = list(alice.inbox.unread())
    assert answer.body == "yes" and answer.first_message_name == message.fullname


def test_mention_of_an_account_that_logs_in_later_is_waiting(sandbox, post):
    post.reply("paging u/latecomer")
    assert [i.type for i in sandbox.reddit("latecomer").inbox.unread()] == ["username_mention"]


# --- faults ----------------------------------------------------------------------------

@pytest.mark.parametrize("settings", [
    {"seconds": 51},
    {"message": "Looks like you've been doing that a lot. Take a break for 4 minutes before trying again."},
    {"message": "you are doing that too much. try again in 4 minutes."},
])
def test_ratelimit_fault_raises_reddit_api_exception(sandbox, bot, post, settings):
    sandbox.faults.add("ratelimit", path="/api/comment", **settings)
    with pytest.raises(praw.exceptions.RedditAPIException) as caught:
        bot.submission(post.id).reply("too fast")
    assert caught.value.items[0].error_type == "RATELIMIT"
    assert sandbox.comments_by("bot1") == []  # reddit did not store it
    assert bot.submission(post.id).reply("later").body == "later"  # the fault expired


def test_praw_sleeps_through_a_short_ratelimit_by_itself(sandbox, bot, post):
    # PRAW retries RATELIMITs up to its ratelimit_seconds (default 5) after sleeping.
    fault = sandbox.faults.add("ratelimit", path="/api/comment",
                               message="Take a break for 500 milliseconds before trying again.")
    started = time.monotonic()
    comment = bot.submission(post.id).reply("patient")
    assert comment.body == "patient" and fault.fired == 1
    assert time.monotonic() - started >= 1  # PRAW sleeps seconds + 1
    assert len(sandbox.comments_by("bot1")) == 1


@pytest.mark.parametrize("error", ["THREAD_LOCKED", "DELETED_COMMENT", "TOO_OLD",
                                   ("THREAD_LOCKED", "Kommentare sind gesperrt.", "parent")])
def test_form_error_faults_surface_as_their_error_type(sandbox, bot, post, error):
    sandbox.faults.add("form_error", path="/api/comment", error=error)
    with pytest.raises(praw.exceptions.RedditAPIException) as caught:
        bot.submission(post.id).reply("hi")
    code = error if isinstance(error, str) else error[0]
    assert (caught.value.items[0].error_type, caught.value.items[0].field) == (code, "parent")


@pytest.mark.parametrize(("status", "exception"), [
    (403, prawcore.exceptions.Forbidden), (404, prawcore.exceptions.NotFound)])
def test_http_error_faults_raise_prawcore_exceptions(sandbox, bot, post, status, exception):
    sandbox.faults.add("http", status=status, method="POST", path="/api/comment")
    with pytest.raises(exception) as caught:
        bot.submission(post.id).reply("hi")
    assert caught.value.response.json()["error"] == status


def test_429_fault_raises_too_many_requests_with_retry_after(sandbox, bot):
    sandbox.faults.add("http", status=429, path="/api/v1/me", retry_after=7)
    with pytest.raises(prawcore.exceptions.TooManyRequests) as caught:
        bot.user.me()
    assert caught.value.response.headers["retry-after"] == "7"
    assert "whoa there, pardner!" in caught.value.response.text
    assert caught.value.retry_after == "7"


def test_5xx_fault_raises_server_error_after_prawcore_retries(sandbox, bot):
    bot.user.me()
    fault = sandbox.faults.add("http", status=503, path="/r/test/new", times=None)
    with pytest.raises(prawcore.exceptions.ServerError):
        list(bot.subreddit("test").new())
    assert fault.fired == 3  # prawcore tries 3 times in all


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520, 522])
def test_5xx_faults_answer_empty_bodies_without_ratelimit_headers(sandbox, status):
    bearer = token(sandbox, "reader")
    sandbox.faults.add("http", status=status)
    answer = get(sandbox, "/r/test/new", bearer)
    assert (answer.status_code, answer.content) == (status, b"")
    assert "x-ratelimit-remaining" not in answer.headers
    assert get(sandbox, "/r/test/new", bearer).status_code == 200


def test_fault_hits_only_its_user_and_path(sandbox, alice, bot, post):
    sandbox.faults.add("http", status=403, path="/r/test", user="bot1", times=None)
    assert [s.id for s in alice.subreddit("test").new()] == [post.id]
    assert list(bot.subreddit("testing").new()) == []  # /r/testing is not under /r/test
    with pytest.raises(prawcore.exceptions.Forbidden):
        list(bot.subreddit("test").new())
    assert sandbox.faults.clear() == 1
    assert [s.id for s in bot.subreddit("test").new()] == [post.id]


def test_unknown_fault_settings_are_refused(sandbox):
    with pytest.raises(ValueError):
        sandbox.faults.add("ratelimit", status=500)
    with pytest.raises(ValueError):
        sandbox.faults.add("explode")


def test_accept_then_hang_stores_the_comment_before_answering(sandbox, post):
    sandbox.faults.add("accept_then_hang", path="/api/comment", delay=10)
    bearer = token(sandbox, "bot1")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{sandbox.url}/api/comment", data={"thing_id": post.fullname, "text": "in flight"},
                      headers={"Authorization": f"bearer {bearer}"}, timeout=0.5)
    # The client never heard back, but reddit has the comment and shows it to everyone.
    assert [c.body for c in sandbox.reddit("reader").subreddit("test").comments()] == ["in flight"]


def test_accept_then_drop_makes_prawcore_retry_and_post_twice(sandbox, bot, post):
    # prawcore retries a POST whose connection dropped: reddit ends up with two comments.
    fault = sandbox.faults.add("accept_then_hang", path="/api/comment", drop=True)
    comment = bot.submission(post.id).reply("said twice")
    assert comment.body == "said twice" and fault.fired == 1
    assert [c["body"] for c in sandbox.comments_by("bot1")] == ["said twice", "said twice"]


def test_admin_api_over_http_drives_faults_and_moderation(sandbox, bot, post):
    remote = RemoteSandbox(sandbox.url)
    assert remote.healthy()
    added = remote.faults.add("ratelimit", path="/api/comment", seconds=30)
    assert added["kind"] == "ratelimit" and len(remote.faults.pending()) == 1
    with pytest.raises(praw.exceptions.RedditAPIException):
        bot.submission(post.id).reply("no")
    remote.lock(post.fullname)
    with pytest.raises(prawcore.exceptions.Forbidden):
        bot.submission(post.id).reply("no")
    remote.unlock(fullname=post.fullname)
    seeded = remote.comment("carol", post.fullname, "seeded over http")
    assert [c["id"] for c in remote.comments_by("carol")] == [seeded["id"]]
    with pytest.raises(SandboxError) as caught:
        remote.lock("t1_nothere")
    assert caught.value.status == 404


def test_seeding_refused_by_reddit_rules_raises_sandbox_error(sandbox):
    post = sandbox.submit("alice", "test", "t")
    sandbox.lock(post["name"])
    with pytest.raises(SandboxError) as caught:
        sandbox.comment("bob", post["name"], "x")
    assert caught.value.status == 403


# --- rate-limit headers ----------------------------------------------------------------

def test_every_answer_carries_ratelimit_headers_per_client(sandbox):
    bearer = token(sandbox, "alice", client_id="app-a")
    other = token(sandbox, "bob", client_id="app-b")
    first, second = get(sandbox, "/api/v1/me", bearer), get(sandbox, "/r/x/new", bearer)
    assert int(second.headers["x-ratelimit-used"]) == int(first.headers["x-ratelimit-used"]) + 1
    assert re.fullmatch(r"\d+\.0", second.headers["x-ratelimit-remaining"])
    assert 0 <= int(second.headers["x-ratelimit-reset"]) <= 600
    # Another client id has its own budget; errors are counted and labelled too.
    assert int(get(sandbox, "/api/v1/me", other).headers["x-ratelimit-used"]) < \
        int(second.headers["x-ratelimit-used"])
    assert "x-ratelimit-used" in get(sandbox, "/user/nobody/about", bearer).headers


def test_over_budget_client_gets_429():
    with Sandbox(ratelimit_budget=3) as sandbox:
        bearer = token(sandbox, "alice")  # the token request counts too
        answers = [get(sandbox, "/api/v1/me", bearer) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[1].headers["x-ratelimit-remaining"] == "0.0"


# --- state, concurrency, command line --------------------------------------------------

def test_state_survives_a_restart_with_a_file_db(tmp_path):
    db = tmp_path / "sandbox.db"
    with Sandbox(db) as first:
        post = first.reddit("alice").subreddit("test").submit("kept", selftext="x")
        first.reddit("bot1").submission(post.id).reply("hello u/alice")
        bearer = token(first, "alice")
    with Sandbox(db) as second:
        alice = second.reddit("alice")
        assert [s.title for s in alice.subreddit("test").new()] == ["kept"]
        assert [c.body for c in alice.submission(post.id).comments] == ["hello u/alice"]
        assert [i.type for i in alice.inbox.unread()] == ["post_reply"]
        assert get(second, "/api/v1/me", bearer).json()["name"] == "alice"  # tokens persist
        with pytest.raises(prawcore.exceptions.OAuthException):
            second.reddit("alice", password="other").user.me()
        new = alice.subreddit("test").submit("after restart", selftext="x")
        assert new.id != post.id


def test_concurrent_clients_do_not_lose_writes(sandbox, post):
    errors = []

    def chat(name):
        try:
            client = sandbox.reddit(name)
            for i in range(8):
                client.submission(post.id).reply(f"{name} {i}")
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=chat, args=(f"user{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    comments = list(sandbox.reddit("reader").subreddit("test").comments(limit=None))
    assert len(comments) == 32 and len({c.id for c in comments}) == 32


def test_cli_prints_its_url_and_logs_each_request(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.sandbox", "--port", "0", "--db", str(tmp_path / "cli.db")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        remote = RemoteSandbox(url)
        post = remote.submit("alice", "cli", "over the cli")
        reddit = remote.reddit("bob")
        assert [s.id for s in reddit.subreddit("cli").new()] == [post["id"]]
    finally:
        process.terminate()
        _, log = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "POST /api/v1/access_token 200" in log
    assert "GET /r/cli/new 200" in log


def test_cli_help_names_the_options():
    answer = subprocess.run([sys.executable, "-m", "shared.sandbox", "--help"], cwd=REPO,
                            capture_output=True, text=True, check=True)
    for option in ("--port", "--db", "--host"):
        assert option in answer.stdout
