"""The errors ssi-bot explains in one line.

Every CLI and ``run.py`` turn these into a single log line and an exit code:
``ConfigError`` and ``InputError`` exit with 2 (the operator must fix something),
anything else that escapes a job exits with 1 (a bug, or a failure we did not
foresee). Reddit failures are classified by *what to do next*, not by HTTP
status, so the post job can act on them without knowing PRAW::

    SsiBotError
    ├── ConfigError        ssi-bot.yaml or praw.ini is wrong
    ├── InputError         a data file, model directory or argument is wrong
    │   └── ModelError     a model directory is missing or broken
    └── RedditError
        ├── TransientError 5xx, timeouts, connection resets: retry with backoff
        ├── RateLimited    reddit said "take a break": retry after .seconds
        └── PermanentError deleted, removed, locked, banned: give up, keep .reason
"""


class SsiBotError(Exception):
    """Base of every error that ssi-bot can explain in one line."""


class ConfigError(SsiBotError):
    """ssi-bot.yaml or praw.ini is wrong. ``problems`` holds one line per problem."""

    def __init__(self, problems):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class InputError(SsiBotError):
    """A data file, a directory or a command-line argument is wrong."""


class ModelError(InputError):
    """A model directory is missing or cannot be loaded."""


class RedditError(SsiBotError):
    """A reddit API call failed."""


class TransientError(RedditError):
    """Worth retrying soon: a 5xx, a timeout, a dropped connection, a 429."""


class RateLimited(RedditError):
    """Reddit asked us to wait ``seconds`` before posting again."""

    def __init__(self, seconds, message=""):
        self.seconds = float(seconds)
        super().__init__(message or f"rate limited for {self.seconds:.0f}s")


class PermanentError(RedditError):
    """Retrying cannot help: the target is gone, locked, or we are banned."""

    def __init__(self, reason, message=""):
        self.reason = reason
        super().__init__(message or reason)


def first_line(exc: BaseException) -> str:
    """An exception's message on one line (its type's name when it has none).

    Libraries raise multi-line messages (tracebacks of child processes, pandas tables);
    ssi-bot's errors quote only their first line.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
