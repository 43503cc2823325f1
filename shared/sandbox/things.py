"""Reddit-shaped JSON: the full field sets reddit sends, and builders that fill them in.

The templates below list every field of reddit's real objects (taken from the recorded
responses in tests/data/reddit_api, which tests/test_sandbox_fidelity.py compares
against), with the value reddit sends for a fresh, unmoderated thing. Builders copy a
template and fill in what the sandbox knows; they are pure (store rows in, dicts out)::

    comment_json(row, link=link_row, sub=sub_row, account=account_row, view="tree", depth=1)
    listing([thing_json, ...], after="t3_x", before=None)

A comment (t1) has three views, as on reddit: ``info`` (/api/info, /api/comment
answers), ``tree`` (inside /comments/ID: adds ``depth`` and ``replies``) and ``listing``
(/r/SUB/comments and /user/NAME/comments: adds the ``link_*`` fields of its submission).
The sandbox adds a few fields that modern reddit sends but the (2016-2017) recordings
lack: see ``ADDED`` — the fidelity test holds the sandbox to exactly these keys.
"""

import copy
import html
import json
import re
from urllib.parse import urlsplit

REDDIT = "https://www.reddit.com"

# Fields modern reddit sends that the recorded t1/t3 objects (2016-2017) predate, with
# the Python types their JSON values take (None: null, e.g. no flair, deleted author).
ADDED = {
    "t1": {"permalink": (str,), "author_fullname": (str, type(None)), "locked": (bool,)},
    "t3": {"author_fullname": (str, type(None)), "link_flair_template_id": (str, type(None))},
}

COMMENT = {
    "approved_at_utc": None, "approved_by": None, "archived": False, "author": "",
    "author_flair_css_class": None, "author_flair_text": None, "banned_at_utc": None,
    "banned_by": None, "body": "", "body_html": "", "can_gild": True, "can_mod_post": False,
    "collapsed": False, "collapsed_reason": None, "controversiality": 0, "created": 0.0,
    "created_utc": 0.0, "distinguished": None, "downs": 0, "edited": False, "gilded": 0,
    "id": "", "is_submitter": False, "likes": None, "link_id": "", "mod_reports": [],
    "name": "", "num_reports": None, "parent_id": "", "removal_reason": None, "replies": "",
    "report_reasons": None, "saved": False, "score": 1, "score_hidden": False,
    "stickied": False, "subreddit": "", "subreddit_id": "", "subreddit_name_prefixed": "",
    "subreddit_type": "public", "ups": 1, "user_reports": [],
    # ADDED (modern reddit):
    "permalink": "", "author_fullname": "", "locked": False,
}
COMMENT_TREE = {"depth": 0}
COMMENT_LISTING = {
    "link_author": "", "link_permalink": "", "link_title": "", "link_url": "",
    "num_comments": 0, "over_18": False, "quarantine": False,
}

SUBMISSION = {
    "approved_at_utc": None, "approved_by": None, "archived": False, "author": "",
    "author_flair_css_class": None, "author_flair_text": None, "banned_at_utc": None,
    "banned_by": None, "brand_safe": True, "can_gild": True, "can_mod_post": False,
    "clicked": False, "contest_mode": False, "created": 0.0, "created_utc": 0.0,
    "distinguished": None, "domain": "", "downs": 0, "edited": False, "from": None,
    "from_id": None, "from_kind": None, "gilded": 0, "hidden": False, "hide_score": False,
    "id": "", "is_self": True, "is_video": False, "likes": None, "link_flair_css_class": None,
    "link_flair_text": None, "locked": False, "media": None, "media_embed": {},
    "mod_reports": [], "name": "", "num_comments": 0, "num_reports": None, "over_18": False,
    "permalink": "", "quarantine": False, "removal_reason": None, "report_reasons": None,
    "saved": False, "score": 1, "secure_media": None, "secure_media_embed": {},
    "selftext": "", "selftext_html": None, "spoiler": False, "stickied": False,
    "subreddit": "", "subreddit_id": "", "subreddit_name_prefixed": "",
    "subreddit_type": "public", "suggested_sort": None, "thumbnail": "self",
    "thumbnail_height": None, "thumbnail_width": None, "title": "", "ups": 1,
    "upvote_ratio": 1.0, "url": "", "user_reports": [], "view_count": None, "visited": False,
    # ADDED (modern reddit):
    "author_fullname": "", "link_flair_template_id": None,
}

# Inbox items (t1 replies/mentions and t4 messages) share one shape (inbox_unread*.json).
INBOX_ITEM = {
    "associated_awarding_id": None, "author": "", "author_fullname": "", "body": "",
    "body_html": "", "context": "", "created": 0.0, "created_utc": 0.0, "dest": "",
    "distinguished": None, "first_message": None, "first_message_name": None, "id": "",
    "likes": None, "name": "", "new": True, "num_comments": None, "parent_id": None,
    "replies": "", "score": 0, "subject": "", "subreddit": None,
    "subreddit_name_prefixed": None, "type": "unknown", "was_comment": False,
}
INBOX_SUBJECTS = {"post_reply": "post reply", "comment_reply": "comment reply",
                  "username_mention": "username mention"}

PROFILE_SUBREDDIT = {
    "accept_followers": True, "banner_img": "", "banner_size": None, "coins": 0,
    "community_icon": None, "default_set": True, "description": "",
    "disable_contributor_requests": False, "display_name": "", "display_name_prefixed": "",
    "free_form_reports": True, "header_img": None, "header_size": None, "icon_color": "",
    "icon_img": "", "icon_size": [256, 256], "is_default_banner": True,
    "is_default_icon": True, "key_color": "", "link_flair_enabled": False,
    "link_flair_position": "", "name": "", "over_18": False, "previous_names": [],
    "primary_color": "", "public_description": "", "quarantine": False,
    "restrict_commenting": False, "restrict_posting": True, "show_media": True,
    "submit_link_label": "", "submit_text_label": "", "subreddit_type": "user",
    "subscribers": 0, "title": "", "url": "", "user_is_banned": False,
    "user_is_contributor": False, "user_is_moderator": True, "user_is_muted": False,
    "user_is_subscriber": False,
}

ME = {
    "accept_followers": True, "awardee_karma": 0, "awarder_karma": 0, "can_create_subreddit": True,
    "can_edit_name": False, "coins": 0, "comment_karma": 0, "created": 0.0, "created_utc": 0.0,
    "features": {}, "force_password_reset": False, "gold_creddits": 0, "gold_expiration": None,
    "has_android_subscription": False, "has_external_account": False, "has_gold_subscription": False,
    "has_ios_subscription": False, "has_mail": False, "has_mod_mail": False,
    "has_paypal_subscription": False, "has_stripe_subscription": False, "has_subscribed": False,
    "has_subscribed_to_premium": False, "has_verified_email": True, "has_visited_new_profile": False,
    "hide_from_robots": False, "icon_img": "", "id": "", "in_beta": False, "in_chat": False,
    "in_redesign_beta": False, "inbox_count": 0, "is_employee": False, "is_gold": False,
    "is_mod": False, "is_sponsor": False, "is_suspended": False, "link_karma": 0,
    "linked_identities": [], "name": "", "new_modmail_exists": False, "num_friends": 0,
    "oauth_client_id": "", "over_18": False, "password_set": True, "pref_autoplay": False,
    "pref_clickgadget": 5, "pref_geopopular": "GLOBAL", "pref_nightmode": False,
    "pref_no_profanity": True, "pref_show_presence": False, "pref_show_snoovatar": False,
    "pref_show_trending": False, "pref_show_twitter": False, "pref_top_karma_subreddits": False,
    "pref_video_autoplay": False, "seen_give_award_tooltip": False, "seen_layout_switch": True,
    "seen_premium_adblock_modal": False, "seen_redesign_modal": True,
    "seen_subreddit_chat_ftux": False, "snoovatar_img": "", "snoovatar_size": None,
    "subreddit": PROFILE_SUBREDDIT, "suspension_expiration_utc": None, "total_karma": 0,
    "verified": True,
}


def _fresh(template):
    return copy.deepcopy(template)


def md_html(text):
    """Reddit's body_html for plain text: one <p> per paragraph, in the SC_OFF wrapper."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()] or [""]
    inner = "".join(f"<p>{html.escape(p, quote=False)}</p>\n" for p in paragraphs)
    return f'<!-- SC_OFF --><div class="md">{inner}</div><!-- SC_ON -->'


def slug(title):
    """Reddit's URL slug: lower-case words joined by '_', cut near 50 characters."""
    words = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    return words[:50].rstrip("_") or "_"


def submission_permalink(link):
    return f"/r/{link['subreddit']}/comments/{link['id']}/{slug(link['title'])}/"


def comment_permalink(comment, link):
    return f"{submission_permalink(link)}{comment['id']}/"


def listing(children, after=None, before=None):
    return {"kind": "Listing", "data": {
        "after": after, "dist": len(children), "modhash": None, "geo_filter": "",
        "children": children, "before": before}}


def shown_author(row):
    return "[deleted]" if row["deleted"] else row["author"]


def shown_body(row):
    if row["deleted"]:
        return "[deleted]"
    if row["removed"]:
        return "[removed]"
    return row["body"]


def _subreddit_fields(sub):
    return {"subreddit": sub["name"], "subreddit_id": f"t5_{sub['id']}",
            "subreddit_name_prefixed": f"r/{sub['name']}"}


def _author_fields(row, account):
    """author / author_fullname; a deleted thing no longer names its author."""
    deleted = row["deleted"] or account is None
    return {"author": shown_author(row), "author_fullname": None if deleted else f"t2_{account['id']}"}


def comment_json(row, *, link, sub, account, flair=None, view="info", archived=False,
                 depth=0, replies=None, num_comments=0):
    """A t1 ``{"kind": "t1", "data": {...}}``; ``view`` is info, tree or listing."""
    data = _fresh(COMMENT)
    body = shown_body(row)
    data.update(_subreddit_fields(sub), **_author_fields(row, account))
    data.update({
        "archived": archived, "author_flair_text": None if row["deleted"] else flair,
        "body": body, "body_html": md_html(body), "created": row["created_utc"],
        "created_utc": row["created_utc"], "edited": row["edited"] or False, "id": row["id"],
        "is_submitter": not row["deleted"] and row["author"].lower() == link["author"].lower(),
        "link_id": row["link_id"], "name": f"t1_{row['id']}", "parent_id": row["parent_id"],
        "permalink": comment_permalink(row, link), "locked": bool(row["locked"]),
    })
    if view == "tree":
        data["depth"] = depth
        data["replies"] = replies or ""
    elif view == "listing":
        data.update(_fresh(COMMENT_LISTING))
        data.update({
            "link_author": shown_author(link), "link_permalink": REDDIT + submission_permalink(link),
            "link_title": link["title"], "link_url": submission_url(link),
            "num_comments": num_comments, "over_18": bool(link["over_18"]),
        })
    return {"kind": "t1", "data": data}


def submission_url(link):
    return link["url"] if not link["is_self"] else REDDIT + submission_permalink(link)


def submission_json(row, *, sub, account, flair=None, link_flair_text=None, archived=False,
                    num_comments=0):
    data = _fresh(SUBMISSION)
    selftext = shown_body(row) if (row["body"] or row["deleted"] or row["removed"]) else ""
    domain = f"self.{sub['name']}" if row["is_self"] else urlsplit(row["url"]).netloc.removeprefix("www.")
    data.update(_subreddit_fields(sub), **_author_fields(row, account))
    data.update({
        "archived": archived, "author_flair_text": None if row["deleted"] else flair,
        "created": row["created_utc"], "created_utc": row["created_utc"], "domain": domain,
        "edited": row["edited"] or False, "id": row["id"], "is_self": bool(row["is_self"]),
        "link_flair_template_id": row["flair_id"], "link_flair_text": link_flair_text,
        "locked": bool(row["locked"]), "name": f"t3_{row['id']}", "num_comments": num_comments,
        "over_18": bool(row["over_18"]), "permalink": submission_permalink(row),
        "selftext": selftext, "selftext_html": md_html(selftext) if selftext else None,
        "spoiler": bool(row["spoiler"]), "thumbnail": "self" if row["is_self"] else "default",
        "title": row["title"], "url": submission_url(row),
    })
    if row.get("poll_options"):
        data["poll_data"] = poll_json(row)
    return {"kind": "t3", "data": data}


def poll_json(row):
    """``poll_data`` of a poll post. No recording holds one: the fields are those PRAW's
    PollData documents (options with text and id, total_vote_count, voting_end_timestamp
    in milliseconds, user_selection), the rest null as reddit sends them outside predictions."""
    options = json.loads(row["poll_options"])
    return {
        "prediction_status": None, "total_stake_amount": None,
        "voting_end_timestamp": int((row["created_utc"] + 3 * 86400) * 1000),
        "options": [{"text": text, "id": str(10_000_000 + i)} for i, text in enumerate(options)],
        "vote_updates_remained": None, "is_prediction": False, "resolved_option_id": None,
        "user_won_amount": None, "user_selection": None, "total_vote_count": 0, "tournament_id": None,
    }


def inbox_comment_json(row, *, link, sub, account, owner, item_type, new, num_comments=0):
    """A comment as it appears in ``owner``'s inbox (kind t1, ``was_comment`` true)."""
    data = _fresh(INBOX_ITEM)
    body = shown_body(row)
    data.update(_subreddit_fields(sub), **_author_fields(row, account))
    data.update({
        "body": body, "body_html": md_html(body),
        "context": f"{comment_permalink(row, link)}?context=3", "created": row["created_utc"],
        "created_utc": row["created_utc"], "dest": owner, "id": row["id"],
        "link_title": link["title"], "name": f"t1_{row['id']}", "new": bool(new),
        "num_comments": num_comments, "parent_id": row["parent_id"], "score": 1,
        "subject": INBOX_SUBJECTS.get(item_type, item_type), "type": item_type,
        "was_comment": True,
    })
    del data["subreddit_id"]  # inbox items carry the name, not the id
    return {"kind": "t1", "data": data}


def message_json(row, *, account, new):
    """A private message (t4); ``first_message`` is the thread root's id as a number."""
    data = _fresh(INBOX_ITEM)
    root = row["first_message"]
    data.update(_author_fields(row, account))
    data.update({
        "body": shown_body(row), "body_html": md_html(shown_body(row)),
        "created": row["created_utc"], "created_utc": row["created_utc"], "dest": row["dest"],
        "first_message": int(root, 36) if root else None,
        "first_message_name": f"t4_{root}" if root else None, "id": row["id"],
        "name": f"t4_{row['id']}", "new": bool(new), "parent_id": row["parent_id"],
        "subject": row["subject"],
    })
    return {"kind": "t4", "data": data}


def profile_subreddit(account):
    data = _fresh(PROFILE_SUBREDDIT)
    data.update({"display_name": f"u_{account['name']}", "display_name_prefixed": f"u/{account['name']}",
                 "name": f"t5_{account['id']}", "url": f"/user/{account['name']}/"})
    return data


def me_json(account, *, client_id, inbox_count):
    data = _fresh(ME)
    data.update({
        "created": account["created_utc"], "created_utc": account["created_utc"],
        "has_mail": inbox_count > 0, "id": account["id"], "inbox_count": inbox_count,
        "name": account["name"], "oauth_client_id": client_id,
        "subreddit": profile_subreddit(account),
    })
    return data


def redditor_json(account, *, link_karma=0, comment_karma=0):
    """``/user/NAME/about``: the public part of an account (kind t2)."""
    return {"kind": "t2", "data": {
        "accept_followers": True, "awardee_karma": 0, "awarder_karma": 0,
        "comment_karma": comment_karma, "created": account["created_utc"],
        "created_utc": account["created_utc"], "has_verified_email": True,
        "hide_from_robots": False, "icon_img": "", "id": account["id"], "is_employee": False,
        "is_friend": False, "is_gold": False, "is_mod": False, "is_suspended": False,
        "link_karma": link_karma, "name": account["name"], "pref_show_snoovatar": False,
        "snoovatar_img": "", "subreddit": profile_subreddit(account),
        "total_karma": link_karma + comment_karma, "verified": True}}


def subreddit_json(sub, *, banned=False):
    """``/r/SUB/about`` (kind t5)."""
    return {"kind": "t5", "data": {
        "created": sub["created_utc"], "created_utc": sub["created_utc"],
        "display_name": sub["name"], "display_name_prefixed": f"r/{sub['name']}",
        "id": sub["id"], "name": f"t5_{sub['id']}", "over18": False, "public_description": "",
        "quarantine": False, "subreddit_type": "public", "subscribers": 1, "title": sub["name"],
        "url": f"/r/{sub['name']}/", "user_is_banned": banned, "user_is_moderator": False}}
