"""Images for the bot's image posts, found through an image search API: never scraping.

The original bot scraped Bing's result pages for the generated title (against Bing's
terms) or ran VQGAN. ssi-bot asks an API meant for it: Openverse (https://openverse.org,
openly licensed images, no key needed) by default, behind ``ImageSearch`` so that
another source is one class more.

Usage::

    from shared.bot import images
    search = images.searcher(bot.images)                  # config.Images
    found = images.find(search, "My cat sits on my head", bot.images.search_prefix, 10)
    for image in found:                                   # most relevant first
        print(image.url, image.license, image.landing_url)

``find`` raises ``SearchFailed`` (one line) when the API cannot be asked (network, HTTP
error, an answer that is not Openverse's); an empty list means nothing was found.

The Openverse answer relied on (``GET {url}/v1/images/?q=...&page_size=N``, the API's
documented ``Image`` schema; written from its OpenAPI description, api.openverse.org/v1/,
as known without network access here, and served by tests/openverse_server.py)::

    {"result_count": 240, "page_count": 12, "page_size": 20, "page": 1,
     "results": [{"id": "…", "title": "Tabby cat", "url": "https://…/cat.jpg",
                  "foreign_landing_url": "https://www.flickr.com/photos/…",
                  "creator": "…", "license": "by", "license_version": "2.0",
                  "license_url": "https://creativecommons.org/licenses/by/2.0/",
                  "provider": "flickr", "source": "flickr", "filetype": "jpg",
                  "mature": false, "width": 1024, "height": 683, "attribution": "…"}, …],
     "warnings": []}

Only ``results[].url`` is needed; ``title``, ``foreign_landing_url``, ``license``,
``license_version``, ``creator`` and ``source`` are kept for the log. Mature results are
excluded (``mature=false``, also the API's default).
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import Optional

import requests

from shared.errors import TransientError

# Words a search is better without (the original kept nouns, verbs and adverbs with NLTK,
# zacc/ssi-bot generators/scraper/image_scraper.py:67-100; a stop list needs no model data).
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she should
so some such than that the their theirs them themselves then there these they this those through to
too under until up very was we were what when where which while who whom why will with would you
your yours yourself yourselves im ive dont isnt wasnt cant wont get got make made really one
""".split())
MAX_KEYWORDS = 4        # the title's words in the most specific query
OPENVERSE_PAGE_SIZE = 20  # the most an anonymous client may ask per page
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")


class SearchFailed(TransientError):
    """The image search could not be asked, or did not answer as it should."""


@dataclass(frozen=True)
class Image:
    url: str                              # the image file: what the post links to
    title: str = ""
    landing_url: Optional[str] = None     # the page the image comes from
    license: str = ""                     # e.g. "CC BY 2.0", "CC0"
    creator: Optional[str] = None
    source: str = ""                      # e.g. "openverse/flickr"


class ImageSearch(abc.ABC):
    """An image search: ``search(query, count)`` gives at most ``count`` images, best first."""

    name = ""

    @abc.abstractmethod
    def search(self, query: str, count: int) -> list[Image]:
        """Images for ``query``; raises SearchFailed when the search cannot be made."""


class OpenverseSearch(ImageSearch):
    """Openverse's image search (https://api.openverse.org/v1/images/): openly licensed
    images, anonymous access (a few requests a minute is far below its limits)."""

    name = "openverse"

    def __init__(self, base_url: str = "https://api.openverse.org", timeout: float = 20.0, session=None,
                 user_agent: str = "ssi-bot (GPT-2 bot framework; image posts)"):
        self.endpoint = base_url.rstrip("/") + "/v1/images/"
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", user_agent)

    def search(self, query: str, count: int) -> list[Image]:
        params = {"q": query, "page_size": min(max(count, 1), OPENVERSE_PAGE_SIZE), "mature": "false"}
        try:
            answer = self.session.get(self.endpoint, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SearchFailed(f"openverse: {type(exc).__name__} asking {self.endpoint}") from None
        if answer.status_code != 200:
            raise SearchFailed(f"openverse: HTTP {answer.status_code} for {query!r}: {answer.text[:120]!r}")
        try:
            results = answer.json()["results"]
            if not isinstance(results, list):
                raise TypeError("results is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise SearchFailed(f"openverse: not a search answer from {self.endpoint} ({exc})") from None
        found = []
        for result in results:
            if not isinstance(result, dict) or not _is_http(result.get("url")) or result.get("mature"):
                continue
            license_name = " ".join(p for p in (_license(result.get("license")), result.get("license_version")) if p)
            found.append(Image(url=result["url"], title=result.get("title") or "",
                               landing_url=result.get("foreign_landing_url"), license=license_name,
                               creator=result.get("creator"), source=f"openverse/{result.get('source') or '?'}"))
        return found[:count]


def _is_http(url) -> bool:
    return isinstance(url, str) and url.startswith(("https://", "http://"))


def _license(code) -> str:
    code = (code or "").strip()
    if code.lower() in ("cc0", "pdm"):
        return code.upper()
    return f"CC {code.upper()}" if code else ""


SOURCES = {"openverse": lambda settings: OpenverseSearch(settings.openverse_url)}


def searcher(settings) -> ImageSearch:
    """The ImageSearch a bot's ``images`` settings (config.Images) name."""
    return SOURCES[settings.source](settings)


def keywords(title: str) -> list[str]:
    """The words of ``title`` worth searching for, in order: no stop words, numbers or
    one- and two-letter words, each once."""
    words = []
    for word in _WORD.findall(title or ""):
        plain = word.replace("’", "'")
        key = plain.lower().replace("'", "")
        if len(key) <= 2 or key.isdigit() or key in STOP_WORDS or key in (w.lower() for w in words):
            continue
        words.append(plain)
    return words


def queries(title: str, prefix: str = "") -> list[str]:
    """Searches to try for ``title``, most specific first: the prefix (as given) and the
    first ``MAX_KEYWORDS`` keywords, then fewer keywords; the prefix alone last."""
    prefix = " ".join((prefix or "").split())
    words = keywords(title)[:MAX_KEYWORDS]
    tried = []
    for n in range(len(words), 0, -1):
        tried.append(" ".join(([prefix] if prefix else []) + words[:n]))
    if prefix:
        tried.append(prefix)
    return list(dict.fromkeys(tried))


def find(search: ImageSearch, title: str, prefix: str, count: int) -> list[Image]:
    """Up to ``count`` distinct images for ``title``: the results of the most specific query
    that has any (one request when the first has). Raises SearchFailed when no search could
    be made; [] when the searches were answered with nothing."""
    failures, answered = [], False
    for query in queries(title, prefix):
        try:
            results = search.search(query, count)
        except SearchFailed as exc:
            failures.append(str(exc))
            continue
        answered = True
        if results:
            return list({image.url: image for image in results}.values())[:count]
    if not answered and failures:
        raise SearchFailed(failures[-1])
    return []
