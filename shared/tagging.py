"""The tag format of training samples and prompts, and nothing else.

ssi-bot's models read and write reddit threads as plain text with tags, the
format of the community models of r/SubSimGPT2Interactive. This module turns
a thread (plain data: ``Post``, ``Comment``, ``Thread``) into a training
sample or a reply prompt, parses samples back, and pulls the reply or the new
post out of what a model generated. Training samples and prompts are written
by the same function (``render_items``), so they can never drift apart. Pure:
no I/O, no clock, no reddit.

Usage::

    from shared.tagging import Comment, Post, Thread, extract_reply, reply_prompt, training_sample

    post = Post("SubSimGPT2Interactive", "alice", "What is love?", "Baby don't hurt me")
    thread = Thread(post, (Comment("bob", "No more"), Comment("alice", "Why?")))

    training_sample(thread)
    # '<|soss r/SubSimGPT2Interactive|><|sot|>What is love?<|eot|><|sost|>Baby don't hurt me'
    # '<|eost|><|sor u/bob|>No more<|eor|><|soopr|>Why?<|eoopr|><|eoss|><|endoftext|>'  (one line)

    prompt = reply_prompt(thread, bot_name="lovebot-ssi")
    # '<|soss r/...|>...<|sor u/bob|>No more<|eor|><|soopr u/alice|>Why?<|eoopr|><|sor|>'
    reply = extract_reply(continuation)   # the text after the prompt; None if never closed

The format (dialect ``"reply_sense"``, the default)::

    self post   <|soss r/SUB|><|sot|>TITLE<|eot|><|sost|>BODY<|eost|>
    link post   <|sols r/SUB|><|sot|>TITLE<|eot|><|sol|><|eol|>        (never the URL)
    comment     <|sor u/AUTHOR|>BODY<|eor|>
    by OP       <|soopr u/AUTHOR|>BODY<|eoopr|>     author wrote the post
    own chain   <|soocr u/AUTHOR|>BODY<|eoocr|>     author wrote the comment two levels up
    last one    <|sor|>BODY<|eor|>  (or <|soopr|>, <|soocr|>)   a sample's last comment: no name
    sample end  <|eoss|> (self post) or <|eols|> (link post), then <|endoftext|>

OP takes precedence over own chain; a deleted author (``None``) is written
``[deleted]`` and never matches anyone. The last comment of a training sample
keeps its role tag but not its name: a reply prompt ends with the nameless
tag of the bot's role, so that is the form the model must learn to answer
(the original ssi-bot's exporter wrote it so, and the community models
learned from it). Prompts write every comment they show with its name. A
post's author is never written: only its comments' roles reveal it. A poll's
options follow its body, `` - OPTION`` each.

The ``"legacy"`` dialect is what the original bot's legacy models were trained
on and prompted with: no `` r/SUB`` or `` u/AUTHOR`` parts, no roles (every
comment ``<|sor|>...<|eor|>``, every reply tag ``<|sor|>``), and texts not
escaped (raw line breaks).

A private conversation (``Conversation``) is prompted as the original bot did:
the subject as a title, then each message (the bot's own included) as
``<|soocr|>BODY<|eoocr|>`` (legacy ``<|sor|>...<|eor|>``), then ``<|sor|>``::

    <|sot|>SUBJECT<|eot|><|soocr|>Hi, are you a bot?<|eoocr|><|soocr|>I am.<|eoocr|><|sor|>

tests/test_original_prompts.py holds the original's prompts for fixed threads
in both dialects, and says where and why ssi-bot differs.

How user text is written inside the tags (titles, bodies, names, subreddits):

1. ``neutralise``: ``<|`` becomes ``< |`` and ``|>`` becomes ``| >``. A tag
   always starts with ``<|`` and ends with ``|>``, so after this no user text
   can open, close or fake a tag (``<|endoftext|>`` included), and a model
   never sees tag-like text it could take for structure. The rule is
   idempotent and the text still reads the same to a human.
2. ``escape`` (reply_sense only): a backslash becomes ``\\\\``, a line break ``\\n``,
   and every other character Python's ``repr`` escapes (``\\r``, ``\\t``, control
   characters, unicode line separators) is escaped the way ``repr`` does it. A
   sample then fits on one line (the training files hold one sample per line),
   and this is the encoding the reply_sense community models were trained on
   (``repr(body)[1:-1]``), so they write ``\\n`` for a line break.
   ``extract_reply`` and ``extract_submission`` undo it, so what gets posted has
   real line breaks. Legacy texts keep their line breaks: a legacy sample may
   span lines and ends at its ``<|endoftext|>`` (``split_samples``).

``encode_text`` does both (legacy: step 1); ``decode_text`` undoes step 2 (step 1
cannot be undone, by design). Hence ``parse_sample(training_sample(t)) ==
recorded_thread(t)``: the thread with its texts neutralised, and what a
sample cannot hold left out (see ``recorded_thread``), such as the last
comment's author.

``parse_sample`` raises ``MalformedSample`` (a ``ValueError`` and an
``InputError``) on text that is not a sample.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum

from shared.errors import InputError
from shared.filters import strip_mentions

# --- the tags: every other module imports them from here ------------------------------

REPLY_SENSE = "reply_sense"
LEGACY = "legacy"
DIALECTS = (REPLY_SENSE, LEGACY)

TAG_OPEN = "<|"   # every tag starts so; the model's reply ends at the first one
TAG_CLOSE = "|>"

SELF_POST_START = "<|soss|>"   # reply_sense: "<|soss r/SUB|>"
LINK_POST_START = "<|sols|>"   # reply_sense: "<|sols r/SUB|>"
TITLE_START = "<|sot|>"
TITLE_END = "<|eot|>"
SELF_TEXT_START = "<|sost|>"
SELF_TEXT_END = "<|eost|>"
LINK_START = "<|sol|>"
LINK_END = "<|eol|>"
SELF_POST_END = "<|eoss|>"
LINK_POST_END = "<|eols|>"
END_OF_TEXT = "<|endoftext|>"

REPLY_START = "<|sor|>"                 # reply_sense: "<|sor u/AUTHOR|>"
REPLY_END = "<|eor|>"
OP_REPLY_START = "<|soopr|>"
OP_REPLY_END = "<|eoopr|>"
OWN_CHAIN_REPLY_START = "<|soocr|>"
OWN_CHAIN_REPLY_END = "<|eoocr|>"

DELETED_AUTHOR = "[deleted]"

PROMPT_MAX_ITEMS = 6        # the post and comments a prompt shows, at most
# The original bot kept a prompt of up to 1500 characters whole and cut a longer one to
# its last 1450 (zacc/ssi-bot reddit_io/logic_mixin.py:68-71); GPT-2 sees 1024 tokens,
# and this leaves room for the reply.
PROMPT_WHOLE_CHARS = 1500
PROMPT_MAX_CHARS = 1450


class Role(Enum):
    """How a comment relates to the thread, as its tag says."""

    REPLY = "r"
    OP_REPLY = "opr"            # the post's author (OP) wrote it
    OWN_CHAIN_REPLY = "ocr"     # its author also wrote the comment two levels up

    @property
    def start_tag(self) -> str:
        """The nameless opening tag, e.g. ``<|soopr|>``."""
        return _ROLE_TAGS[self][0]

    @property
    def end_tag(self) -> str:
        """The closing tag, e.g. ``<|eoopr|>``."""
        return _ROLE_TAGS[self][1]


_ROLE_TAGS = {
    Role.REPLY: (REPLY_START, REPLY_END),
    Role.OP_REPLY: (OP_REPLY_START, OP_REPLY_END),
    Role.OWN_CHAIN_REPLY: (OWN_CHAIN_REPLY_START, OWN_CHAIN_REPLY_END),
}


class MalformedSample(InputError, ValueError):
    """Text that ``parse_sample`` cannot read as a training sample."""


# --- the data ---------------------------------------------------------------------------

def _known_author(author: str | None) -> str | None:
    # Reddit writes a deleted account as "[deleted]"; one spelling keeps equality simple.
    return None if author in (None, "", DELETED_AUTHOR) else author


@dataclass(frozen=True)
class Post:
    """A submission. ``author`` None (or ``"[deleted]"``) means deleted.

    ``body`` is the self text; a link post's body is never written (nor its URL).
    """

    subreddit: str
    author: str | None
    title: str
    body: str = ""
    is_link: bool = False
    poll_options: tuple[str, ...] = ()   # a poll's options: written after the body, " - OPTION" each

    def __post_init__(self):
        object.__setattr__(self, "author", _known_author(self.author))
        object.__setattr__(self, "poll_options", tuple(self.poll_options))

    @property
    def text(self) -> str:
        """The body as prompts and samples write it: a poll's options follow on its last line
        (zacc/ssi-bot reddit_io/tagging_mixin.py:91-96)."""
        return self.body + "".join(f" - {option}" for option in self.poll_options)


@dataclass(frozen=True)
class Comment:
    """A comment. ``author`` None (or ``"[deleted]"``) means deleted."""

    author: str | None
    body: str

    def __post_init__(self):
        object.__setattr__(self, "author", _known_author(self.author))


@dataclass(frozen=True)
class Thread:
    """A comment's ancestry, oldest first: the post, then comments each replying to the one before.

    ``post`` is None when it is unknown or cut off; ``comments[0]`` is then not
    a top-level comment, and nobody in the thread can be recognised as OP.
    """

    post: Post | None
    comments: tuple[Comment, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "comments", tuple(self.comments))


@dataclass(frozen=True)
class Conversation:
    """Private messages, oldest first: the bot replies to the last one.

    ``subject`` is the conversation's subject (its first message's); None when the
    first message is unknown. Every message is a ``Comment`` (author, body); the bot's
    own messages are among them.
    """

    subject: str | None
    messages: tuple[Comment, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "messages", tuple(self.messages))


# --- user text inside tags --------------------------------------------------------------

def neutralise(text: str) -> str:
    """``text`` with ``<|`` written ``< |`` and ``|>`` written ``| >``: it can fake no tag.

    >>> neutralise("<|endoftext|>")
    '< |endoftext| >'
    """
    return text.replace(TAG_OPEN, "< |").replace(TAG_CLOSE, "| >")


_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Printable ASCII other than the backslash needs no escape: the fast, common case.
_MAY_NEED_ESCAPE = re.compile(r"[^\x20-\x5b\x5d-\x7e]")
_ESCAPE_SEQUENCE = re.compile(
    r"""\\(?:([\\'"])|([nrt])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))""")
# One escaped character: how a text may be cut without splitting an escape.
_ESCAPED_CHAR = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|.)|.", re.DOTALL)


def _escape_char(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """``text`` on one line: backslashes, line breaks and unprintables escaped as ``repr`` does.

    >>> escape("one\\ntwo")
    'one\\\\ntwo'
    """
    return _MAY_NEED_ESCAPE.sub(lambda m: _escape_char(m.group()), text)


def _unescape_sequence(match: re.Match) -> str:
    quote_or_backslash, letter, *hex_codes = match.groups()
    if quote_or_backslash:
        return quote_or_backslash
    if letter:
        return {"n": "\n", "r": "\r", "t": "\t"}[letter]
    code = int(next(h for h in hex_codes if h), 16)
    # A model may write an escape of no character at all: keep it as written.
    return chr(code) if code <= 0x10FFFF else match.group()


def decode_text(text: str, dialect: str = REPLY_SENSE) -> str:
    """Undo ``encode_text``'s escaping: ``\\n`` becomes a line break again, ``\\\\`` a backslash.

    Escapes it does not know (a model may invent them) stay as written. The legacy
    dialect escapes nothing, so nothing is undone.
    """
    if dialect == LEGACY:
        return text
    return _ESCAPE_SEQUENCE.sub(_unescape_sequence, text)


def encode_text(text: str, dialect: str = REPLY_SENSE) -> str:
    """``text`` as a sample or prompt holds it: ``escape(neutralise(text))``; legacy: ``neutralise(text)``."""
    return escape(neutralise(text)) if dialect == REPLY_SENSE else neutralise(text)


def _same_author(a: str | None, b: str | None) -> bool:
    # Reddit usernames are case-insensitive; a deleted author is nobody.
    return a is not None and b is not None and a.lower() == b.lower()


def _neutralised(thread: Thread) -> Thread:
    """The thread with every text neutralised, so roles are judged on what a sample shows."""
    def name(author):
        return None if author is None else neutralise(author)

    post = thread.post
    if post is not None:
        post = Post(neutralise(post.subreddit), name(post.author), neutralise(post.title),
                    "" if post.is_link else neutralise(post.text), post.is_link)
    return Thread(post, tuple(Comment(name(c.author), neutralise(c.body)) for c in thread.comments))


# --- roles --------------------------------------------------------------------------------

def comment_roles(thread: Thread, dialect: str = REPLY_SENSE) -> tuple[Role, ...]:
    """The role of each comment of ``thread``: OP over own chain over a plain reply.

    The legacy dialect knows no roles: every comment is a plain reply (zacc/ssi-bot
    reddit_io/tagging_mixin.py:124-125, the legacy models' training format).
    """
    if dialect == LEGACY:
        return (Role.REPLY,) * len(thread.comments)
    post_author = thread.post.author if thread.post else None
    roles = []
    for i, comment in enumerate(thread.comments):
        if _same_author(comment.author, post_author):
            roles.append(Role.OP_REPLY)
        # comments[i - 2] is two levels up; for i == 1 that is the post, judged above.
        elif i >= 2 and _same_author(comment.author, thread.comments[i - 2].author):
            roles.append(Role.OWN_CHAIN_REPLY)
        else:
            roles.append(Role.REPLY)
    return tuple(roles)


def reply_role(thread: Thread | Conversation, bot_name: str, dialect: str = REPLY_SENSE) -> Role:
    """The role of the bot's reply to the last item of ``thread`` (the training rule).

    Always a plain reply in the legacy dialect and in a private conversation
    (zacc/ssi-bot reddit_io/tagging_mixin.py:37-50: only a comment gets another tag).
    """
    if dialect == LEGACY or isinstance(thread, Conversation):
        return Role.REPLY
    if thread.post is not None and _same_author(thread.post.author, bot_name):
        return Role.OP_REPLY
    # The reply's grandparent is the parent of the item replied to: comments[-2].
    if len(thread.comments) >= 2 and _same_author(thread.comments[-2].author, bot_name):
        return Role.OWN_CHAIN_REPLY
    return Role.REPLY


# --- rendering ------------------------------------------------------------------------------
# An item renders to "segments": tags and encoded texts alternating, tags at both ends.
# Prompts shorten the texts to fit and never touch a tag.

def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown tag dialect {dialect!r}: use one of {', '.join(DIALECTS)}")


def _named(tag: str, kind: str, name: str, dialect: str) -> str:
    """``<|sor|>`` as ``<|sor u/NAME|>`` in reply_sense; unchanged in legacy."""
    if dialect == LEGACY:
        return tag
    return f"{tag[:-len(TAG_CLOSE)]} {kind}/{encode_text(name)}{TAG_CLOSE}"


def _post_opening(subreddit: str, is_link: bool, dialect: str) -> str:
    return _named(LINK_POST_START if is_link else SELF_POST_START, "r", subreddit, dialect)


def _post_segments(post: Post, dialect: str) -> tuple[str, ...]:
    opening = _post_opening(post.subreddit, post.is_link, dialect) + TITLE_START
    if post.is_link:
        return opening, encode_text(post.title, dialect), TITLE_END + LINK_START + LINK_END
    return (opening, encode_text(post.title, dialect), TITLE_END + SELF_TEXT_START,
            encode_text(post.text, dialect), SELF_TEXT_END)


def _comment_segments(comment: Comment, role: Role, dialect: str, named: bool = True) -> tuple[str, ...]:
    start = _named(role.start_tag, "u", comment.author or DELETED_AUTHOR, dialect) if named else role.start_tag
    return start, encode_text(comment.body, dialect), role.end_tag


def _item_segments(thread: Thread, dialect: str, nameless_last: bool = False) -> list[tuple[str, ...]]:
    """The segments of each item of ``thread``, oldest first: the one renderer.

    ``nameless_last``: the last comment's tag without its name (role still judged on the whole thread).
    """
    _check_dialect(dialect)
    thread = _neutralised(thread)
    items = [_post_segments(thread.post, dialect)] if thread.post else []
    last = len(thread.comments) - 1
    for i, (comment, role) in enumerate(zip(thread.comments, comment_roles(thread, dialect))):
        items.append(_comment_segments(comment, role, dialect, named=not (nameless_last and i == last)))
    return items


def _message_role(dialect: str) -> Role:
    # zacc/ssi-bot reddit_io/tagging_mixin.py:135-138: every message, the bot's own
    # included, is an own-chain reply in reply_sense and a plain reply in legacy; no names.
    return Role.OWN_CHAIN_REPLY if dialect == REPLY_SENSE else Role.REPLY


def _conversation_segments(conversation: Conversation, dialect: str) -> list[tuple[str, ...]]:
    """One item per message; the first carries the subject as a title (``<|sot|>...<|eot|>``)."""
    _check_dialect(dialect)
    role = _message_role(dialect)
    items = []
    for i, message in enumerate(conversation.messages):
        segments = (role.start_tag, encode_text(message.body, dialect), role.end_tag)
        if i == 0 and conversation.subject is not None:
            segments = (TITLE_START, encode_text(conversation.subject, dialect), TITLE_END + segments[0],
                        *segments[1:])
        items.append(segments)
    return items


def render_items(thread: Thread, dialect: str = REPLY_SENSE, *, nameless_last: bool = False) -> list[str]:
    """Each item of ``thread`` (post, then comments) as tagged text, oldest first.

    Training samples and prompts are both made of these strings. ``nameless_last``
    writes the last comment's tag without `` u/AUTHOR`` (``<|sor|>``), as training
    samples do; a post's tag is the same either way.
    """
    return ["".join(segments) for segments in _item_segments(thread, dialect, nameless_last)]


def render_comment(comment: Comment, role: Role, dialect: str = REPLY_SENSE) -> str:
    """One comment as tagged text in the given ``role`` (legacy: always a plain reply),
    whatever thread it came from.

    For text made up outside a thread (``shared.training.model_init``'s synthetic samples);
    a real thread's comments get their roles from ``render_items``.
    """
    _check_dialect(dialect)
    author = None if comment.author is None else neutralise(comment.author)
    role = Role.REPLY if dialect == LEGACY else role
    return "".join(_comment_segments(Comment(author, neutralise(comment.body)), role, dialect))


def training_sample(thread: Thread, dialect: str = REPLY_SENSE) -> str:
    """The whole thread as one training sample, closed and ended with ``<|endoftext|>``.

    The last comment is written without its author (``<|soopr|>...<|eoopr|>``):
    the sample then ends as the bot's prompt plus its reply would. A post without
    comments is a valid sample: it teaches the model new posts. A reply_sense sample
    is one line; a legacy one keeps its texts' line breaks, as the legacy models were
    trained (``split_samples`` reads both back). Raises ValueError when the thread has no post.
    """
    if thread.post is None:
        raise ValueError("a training sample starts with its post, and this thread has none")
    end = LINK_POST_END if thread.post.is_link else SELF_POST_END
    # A model trained only on named tags answers the nameless reply tag of its prompts
    # less often: on the demo model, 68/80 non-empty replies against 77/80 to named tags.
    return "".join(render_items(thread, dialect, nameless_last=True)) + end + END_OF_TEXT


_SAMPLE_END = re.compile(r"(?<=<\|endoftext\|>)\r?\n")


def split_samples(text: str) -> list[str]:
    """The samples of a training file's ``text``: each runs to its ``<|endoftext|>`` and the
    line break after it (a legacy sample may span lines; user text can never hold the
    marker). Text without the marker is read one sample per line. Empty ones are dropped.
    """
    samples = []
    for chunk in _SAMPLE_END.split(text):
        if chunk.endswith(END_OF_TEXT):
            if chunk.strip():
                samples.append(chunk.lstrip("\r\n"))
        else:
            samples += [line.rstrip("\r") for line in chunk.split("\n") if line.strip()]
    return samples


# --- prompts ----------------------------------------------------------------------------------

def _without_mentions(thread: Thread | Conversation, bot_name: str) -> Thread | Conversation:
    """Mentions stripped from every title, subject and body; names in tags stay."""
    # a model shown its own name learns to write it at people, which reads wrong
    def strip(text):
        return strip_mentions(text, bot_name)

    if isinstance(thread, Conversation):
        subject = None if thread.subject is None else strip(thread.subject)
        return Conversation(subject, tuple(replace(m, body=strip(m.body)) for m in thread.messages))
    post = thread.post
    if post is not None:
        post = replace(post, title=strip(post.title), body=strip(post.body),
                       poll_options=tuple(strip(o) for o in post.poll_options))
    return Thread(post, tuple(replace(c, body=strip(c.body)) for c in thread.comments))


def _keep_end(encoded: str, max_chars: int, dialect: str) -> str:
    """The longest end of ``encoded`` within ``max_chars`` that starts on a whole character."""
    if max_chars <= 0:
        return ""
    if len(encoded) <= max_chars:
        return encoded
    if dialect == LEGACY:   # nothing escaped: every character stands alone
        return encoded[len(encoded) - max_chars:]
    kept, length = [], 0
    for char in reversed(_ESCAPED_CHAR.findall(encoded)):
        if length + len(char) > max_chars:
            break
        kept.append(char)
        length += len(char)
    return "".join(reversed(kept))


def _shorten(segments: tuple[str, ...], max_chars: int, dialect: str) -> tuple[str, ...]:
    """Texts cut from their front until the item fits; tags kept whole.

    The last text goes first, so a long post keeps its title and loses the
    start of its body. When even the tags are too long, the tags are all that is left.
    """
    segments = list(segments)
    for i in reversed(range(1, len(segments), 2)):
        excess = sum(map(len, segments)) - max_chars
        if excess <= 0:
            break
        segments[i] = _keep_end(segments[i], len(segments[i]) - excess, dialect)
    return tuple(segments)


def reply_prompt(thread: Thread | Conversation, bot_name: str, dialect: str = REPLY_SENSE,
                 max_chars: int = PROMPT_MAX_CHARS, whole_up_to: int | None = PROMPT_WHOLE_CHARS) -> str:
    """The prompt for the bot's reply to the last item of ``thread`` (or of a private ``Conversation``).

    The last ``PROMPT_MAX_ITEMS`` items of [post, *comments] (the post only when
    there are at most 5 comments; the subject only when the first message is among
    the last 6), rendered as in training samples with ``u/BOT_NAME`` mentions removed
    from the texts, then the nameless reply tag (reply_sense: ``<|soopr|>`` if the bot
    wrote the post, ``<|soocr|>`` if it wrote the parent of the last item, else
    ``<|sor|>``; legacy and conversations: always ``<|sor|>``). Roles are judged on
    the whole thread, so pass it all: the post and every comment up to it.

    Length: items totalling at most ``whole_up_to`` characters are kept as they are;
    longer, whole items are dropped from the front until they fit ``max_chars``, and a
    last item that alone is too long keeps its tags and loses the front of its text
    (the reply tag comes on top). ``whole_up_to=None`` caps at ``max_chars`` alone.
    Raises ValueError on an empty thread or an empty ``bot_name``.
    """
    if not bot_name:
        raise ValueError("reply_prompt needs the bot's name")
    role = reply_role(thread, bot_name, dialect)
    if isinstance(thread, Conversation):
        if not thread.messages:
            raise ValueError("an empty conversation has nothing to reply to")
        items = _conversation_segments(_without_mentions(thread, bot_name), dialect)
    else:
        if thread.post is None and not thread.comments:
            raise ValueError("an empty thread has nothing to reply to")
        items = _item_segments(_without_mentions(thread, bot_name), dialect)
    items = items[-PROMPT_MAX_ITEMS:]

    def length(item):
        return sum(map(len, item))

    if sum(map(length, items)) > max(whole_up_to or 0, max_chars):
        while len(items) > 1 and sum(map(length, items)) > max_chars:
            items.pop(0)
        if length(items[0]) > max_chars:
            items[0] = _shorten(items[0], max_chars, dialect)
    return "".join("".join(item) for item in items) + role.start_tag


def submission_prompt(subreddit: str, is_link: bool, dialect: str = REPLY_SENSE) -> str:
    """The prompt for a new post: ``<|soss r/SUB|><|sot|>`` (``<|sols ...`` for a link post)."""
    _check_dialect(dialect)
    return _post_opening(subreddit, is_link, dialect) + TITLE_START


# --- reading what the model wrote -----------------------------------------------------------

# Reddit's zero-width space for an empty paragraph, double-escaped in the dumps;
# models copy it, and posted it shows as "&#x200B;".
_CRUFT = re.compile(r"&amp;#x200B;\n?")
# A model that never closes its reply (it ran out of tokens): the original bot cut it at
# its last line break, or at a run of "!!!!" (zacc/ssi-bot reddit_io/tagging_mixin.py:146-158).
_SHOUT = "!!!!"


def _clean(generated_text: str, dialect: str = REPLY_SENSE) -> str:
    return _CRUFT.sub("", decode_text(generated_text, dialect)).strip()


def _unclosed_end(generated: str, dialect: str) -> int:
    """Where an unclosed reply ends: its last line break, else its first "!!!!"; -1: nowhere."""
    if dialect == REPLY_SENSE:   # an escaped line break, not the "n" after an escaped backslash
        ends = [m.start() for m in _ESCAPED_CHAR.finditer(generated) if m.group() == "\\n"]
        end = ends[-1] if ends else -1
    else:
        end = generated.rfind("\n")
    return end if end != -1 else generated.find(_SHOUT)


def extract_reply(generated: str, dialect: str = REPLY_SENSE) -> str | None:
    """The reply in ``generated`` (only the text after the prompt): up to the first ``<|``.

    Decoded (``\\n`` becomes a line break), cruft removed, stripped; possibly "".
    A reply that never closes (no ``<|``: the model ran out of tokens) ends at its
    last line break, or before its first "!!!!", as the original bot cut it; None
    when it has neither: reject it.
    """
    end = generated.find(TAG_OPEN)
    if end == -1:
        end = _unclosed_end(generated, dialect)
        if end == -1:
            return None
    return _clean(generated[:end], dialect)


def split_sample(sample: str, dialect: str = REPLY_SENSE) -> tuple[str, str] | None:
    """``(prompt, reply)`` of a training sample: what the bot would be asked, and what it should say.

    The prompt runs through the last comment's opening tag, which is nameless,
    the form ``reply_prompt`` ends with; the reply is that comment's text, as
    ``extract_reply`` would give it. When the thread fits a prompt (at most 6
    items, ``PROMPT_MAX_CHARS``), the prompt is exactly ``reply_prompt``'s for
    the thread without its last comment. None for a post-only sample. Used to
    evaluate a model on held-out samples.
    """
    start, tag = max((sample.rfind(role.start_tag), role.start_tag) for role in Role)
    if start == -1:
        return None
    prompt_end = start + len(tag)
    return sample[:prompt_end], extract_reply(sample[prompt_end:], dialect) or ""


def extract_submission(generated: str, dialect: str = REPLY_SENSE) -> tuple[str, str] | None:
    """``(title, body)`` from the text generated after ``submission_prompt``.

    The title runs to the first ``<|`` (whitespace folded to single spaces: a
    title is one line). The body follows ``<|sost|>`` right after the title's
    ``<|eot|>`` and runs to the next ``<|``; it is "" for a link post or when
    absent or unclosed. None when the title is unclosed or empty. Length limits
    are for ``filters.check_submission``.
    """
    end = generated.find(TAG_OPEN)
    if end == -1:
        return None
    title = " ".join(_clean(generated[:end], dialect).split())
    if not title:
        return None
    rest = generated[end:].removeprefix(TITLE_END)
    body = ""
    if rest.startswith(SELF_TEXT_START):
        rest = rest[len(SELF_TEXT_START):]
        body_end = rest.find(TAG_OPEN)
        if body_end != -1:
            body = _clean(rest[:body_end], dialect)
    return title, body


# --- parsing samples back -------------------------------------------------------------------

def recorded_thread(thread: Thread, dialect: str = REPLY_SENSE) -> Thread:
    """What a training sample of ``thread`` holds: what ``parse_sample`` gives back.

    Texts and names neutralised; a link post's body dropped; the last comment's
    author None (its tag has no name); the post's author kept only as the author
    of its first named OP comment (a post tag has no name, so an OP comment
    before the last is the only witness). Legacy samples hold no names at all:
    the subreddit is "" and every author None.
    """
    _check_dialect(dialect)
    thread = _neutralised(thread)
    post, comments = thread.post, thread.comments
    if dialect == LEGACY:
        comments = tuple(Comment(None, c.body) for c in comments)
        if post is not None:
            post = replace(post, subreddit="", author=None)
        return Thread(post, comments)
    named = comments[:-1]
    if post is not None:
        roles = comment_roles(thread)   # on the whole thread, as the sample's tags show them
        witnesses = [c.author for c, role in zip(named, roles) if role is Role.OP_REPLY]
        post = replace(post, author=witnesses[0] if witnesses else None)
    if comments:
        comments = named + (Comment(None, comments[-1].body),)
    return Thread(post, comments)


_TAG = re.compile(r"<\|(.*?)\|>")
_COMMENT_TAGS = {role.start_tag[len(TAG_OPEN):-len(TAG_CLOSE)]: role for role in Role}


class _SampleReader:
    """Walks a sample's tags in order; ``texts[i]`` is the text after ``tags[i - 1]``."""

    def __init__(self, sample: str, dialect: str):
        self.dialect = dialect
        parts = _TAG.split(sample)
        self.texts, self.tags = parts[0::2], parts[1::2]
        for text in self.texts:
            if TAG_OPEN in text or TAG_CLOSE in text:
                raise MalformedSample(f"broken tag near {text[:40]!r}")
        self.position = 0   # index of the next tag

    def fail(self, expected: str):
        found = repr(f"<|{self.tags[self.position]}|>") if self.position < len(self.tags) else "the end"
        raise MalformedSample(f"expected {expected}, found {found} (tag {self.position + 1})")

    def peek(self) -> str | None:
        return self.tags[self.position] if self.position < len(self.tags) else None

    def gap(self) -> None:
        """Nothing may stand between the tag just read and the next one."""
        if self.texts[self.position]:
            raise MalformedSample(f"unexpected text {self.texts[self.position][:40]!r} "
                                  f"before tag {self.position + 1}")

    def tag(self, *expected: str) -> str:
        """Read the next tag, which must be one of ``expected`` (tag contents, without <| |>)."""
        self.gap()
        if self.peek() not in expected:
            self.fail(" or ".join(f"<|{e}|>" for e in expected))
        self.position += 1
        return self.tags[self.position - 1]

    def text(self) -> str:
        """The text after the tag just read, decoded."""
        text = self.texts[self.position]
        self.texts[self.position] = ""
        return decode_text(text, self.dialect)

    def end(self) -> None:
        self.gap()
        if self.position != len(self.tags):
            self.fail("the end of the sample")


def _split_name(tag: str, kind: str, dialect: str, optional: bool = False) -> tuple[str, str | None]:
    """``"sor u/bob"`` -> ``("sor", "bob")``; legacy tags carry no name.

    ``optional``: a tag without the name part is ``("sor", None)`` rather than an error.
    """
    if dialect == LEGACY:
        return tag, None
    label, separator, name = tag.partition(f" {kind}/")
    if not separator:
        if optional:
            return tag, None
        raise MalformedSample(f"<|{tag}|> lacks the ' {kind}/NAME' part of the {dialect} dialect")
    return label, decode_text(name)


def parse_sample(text: str, dialect: str = REPLY_SENSE) -> Thread:
    """The thread a training sample holds (``recorded_thread`` says what that is).

    A nameless comment tag (``<|sor|>``) gives ``author=None``. It is accepted
    for any comment, not only the last, as samples from other exporters may
    have it; written back by ``training_sample``, such a comment in the middle
    becomes ``<|sor u/[deleted]|>`` (no author, no role). A trailing line break is allowed. Raises
    ``MalformedSample`` on anything else that ``training_sample`` would not
    have written.
    """
    _check_dialect(dialect)
    reader = _SampleReader(text.removesuffix("\n"), dialect)
    reader.gap()
    if reader.peek() is None:
        reader.fail("a post tag")
    label, subreddit = _split_name(reader.peek(), "r", dialect)
    if label not in ("soss", "sols"):
        reader.fail("a post tag, <|soss...|> or <|sols...|>")
    reader.position += 1
    is_link = label == "sols"
    reader.tag("sot")
    title = reader.text()
    reader.tag("eot")
    body = ""
    if is_link:
        reader.tag("sol")
        reader.tag("eol")
    else:
        reader.tag("sost")
        body = reader.text()
        reader.tag("eost")

    comments, post_author = [], None
    while (tag := reader.peek()) and not tag.startswith(("eoss", "eols")):
        reader.gap()
        # A post tag needs its " r/SUB"; a comment's " u/AUTHOR" may be missing (the last never has it).
        label, author = _split_name(tag, "u", dialect, optional=True)
        role = _COMMENT_TAGS.get(label)
        if role is None:
            reader.fail("a comment tag or the end of the post")
        reader.position += 1
        author = _known_author(author)
        comments.append(Comment(author, reader.text()))
        reader.tag(role.end_tag[len(TAG_OPEN):-len(TAG_CLOSE)])
        if role is Role.OP_REPLY and post_author is None:
            post_author = author

    reader.tag("eols" if is_link else "eoss")
    reader.tag("endoftext")
    reader.end()
    post = Post(subreddit or "", post_author, title, body, is_link)
    return Thread(post, tuple(comments))
