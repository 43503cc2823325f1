"""Reading reddit dump files line by line: ``.zst`` (long window), ``.ndjson``, ``.json``.

The per-subreddit dumps (``{sub}_submissions.zst``, ``{sub}_comments.zst``)
and the monthly ones (``RS_YYYY-MM.zst``, ``RC_YYYY-MM.zst``) hold one JSON
object per line in a zstandard stream written with ``--long=31``: a default
decompressor refuses them ("Frame requires too much memory"), so this one
allows a 2 GiB window. Files run to tens of GB, so they are streamed in 1 MB
chunks and never held whole; memory stays flat whatever the size.

Usage::

    from shared.training.dumps import DumpReader, check_dump

    check_dump(path)                     # InputError now for a missing, empty or non-zstd file
    reader = DumpReader(path, start=offset, start_line=n)   # resume after line n
    for line in reader:
        if line.error:
            print(line.number, line.error)    # malformed: counted in reader.malformed
        for obj in line.objects:
            ...                                # dicts
        offset, n = line.end, line.number      # where to resume after this line

A line may hold one object (the dumps), a saved API answer (``{"data":
[...]}``, each item an object), or nothing (blank). A line that is not JSON,
or JSON that is not an object, is malformed: it comes with ``error`` set and
no objects, and reading goes on. A ``.json`` file that is one JSON array
(``[{...}, {...}]``) is read whole when under 256 MB; its positions count items.

Positions are byte offsets in the decompressed stream. A plain file resumes
with a seek; a ``.zst`` stream cannot seek, so resuming decompresses and
discards up to the offset (fast: no JSON is parsed on the way).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from shared.errors import InputError

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_WINDOW_SIZE = 2 ** 31          # the dumps are written with zstd --long=31
CHUNK = 1 << 20
MAX_LINE = 256 << 20               # a longer "line" is garbage: skipped as malformed
MAX_ARRAY_FILE = 256 << 20         # a JSON-array file is parsed whole, so it must be small

DUMP_SUFFIXES = (".zst", ".ndjson", ".jsonl", ".json")


@dataclass
class DumpLine:
    """One line of a dump: its 1-based number, the position after it, its objects or its error."""

    number: int
    end: int
    objects: list = field(default_factory=list)
    error: str | None = None


_SUBMISSIONS_NAME = re.compile(r"^RS_|_submissions(\.|$)", re.IGNORECASE)
_COMMENTS_NAME = re.compile(r"^RC_|_comments(\.|$)", re.IGNORECASE)


def kind_hint(path) -> str | None:
    """"submission" or "comment" when the file name says so (RS_/RC_, NAME_submissions/NAME_comments)."""
    name = Path(path).name
    if _SUBMISSIONS_NAME.search(name):
        return "submission"
    if _COMMENTS_NAME.search(name):
        return "comment"
    return None


def _is_zstd_name(path: Path) -> bool:
    return path.suffix.lower() == ".zst"


def check_dump(path) -> str:
    """The format of ``path``, "zstd", "ndjson" or "array"; InputError when it cannot be read.

    Reads only the first bytes: a bad file is refused before anything is imported.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (check the path; dumps are named like "
                         "science_comments.zst or RC_2023-01.zst)")
    if path.is_dir():
        raise InputError(f"{path}: is a directory (pass the dump files, or use a shell glob like {path}/*.zst)")
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    if not head:
        raise InputError(f"{path}: the file is empty (re-download it)")
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if _is_zstd_name(path):
        raise InputError(f"{path}: not a zstandard file (it starts with {head[:8]!r}); re-download it, "
                         "or rename it to .ndjson if it is plain JSON lines")
    if head.lstrip()[:1] == b"[":
        return "array"
    if head.lstrip()[:1] != b"{":
        raise InputError(f"{path}: neither zstandard nor JSON lines (it starts with {head[:8]!r}); "
                         "pass .zst dumps or NDJSON files")
    return "ndjson"


def parse_line(text: bytes) -> tuple[list, str | None]:
    """(objects, error) of one line."""
    if not text.strip():
        return [], None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return [], f"not JSON ({str(exc)[:80]})"
    if isinstance(value, dict):
        data = value.get("data")
        if isinstance(data, list) and "id" not in value:     # a saved API answer
            value = data
        else:
            return [value], None
    if isinstance(value, list):
        objects = [v for v in value if isinstance(v, dict)]
        if len(objects) != len(value):
            return [], "a JSON array holding non-objects"
        return objects, None
    return [], f"a JSON {type(value).__name__}, expected an object"


def _zstd_chunks(handle):
    """The decompressed bytes of a zstd file, frame after frame, in pieces of about CHUNK.

    A frame that the file ends in the middle of (a download cut short) raises
    ZstdError: a stream reader would just stop there, silently.
    """
    decompressor = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_SIZE)
    frame, in_frame = decompressor.decompressobj(), False
    # Small input pieces keep each output piece small: JSON compresses about 10:1.
    while data := handle.read(CHUNK // 8):
        while data:
            in_frame = True
            out = frame.decompress(data)
            if out:
                yield out
            if frame.eof:
                data, in_frame = frame.unused_data, False
                frame = decompressor.decompressobj()
            else:
                data = b""
    if in_frame:
        raise zstandard.ZstdError("the file ends in the middle of a frame")


def _skip_bytes(chunks, count):
    """``chunks`` without their first ``count`` bytes (a resumed stream cannot seek)."""
    for chunk in chunks:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:]
        count = 0
    if count:
        raise InputError("the file is shorter than the saved position (it changed?): run with --restart")


class DumpReader:
    """The lines of one dump file from ``start`` (a position) after line ``start_line``.

    ``malformed`` counts the malformed lines read; ``compressed_position()``
    is how far into the file (as stored on disk) reading got, for progress bars.
    """

    def __init__(self, path, start: int = 0, start_line: int = 0):
        self.path = Path(path)
        self.format = check_dump(self.path)
        self.start, self.start_line = int(start), int(start_line)
        self.size = self.path.stat().st_size
        self.malformed = 0
        self._handle = None

    def compressed_position(self) -> int:
        if self._handle is None or self._handle.closed:
            return self.size if self._handle is not None else 0
        return self._handle.tell()

    def __iter__(self):
        if self.format == "array":
            yield from self._array()
            return
        self._number = self.start_line
        with self.path.open("rb") as handle:
            self._handle = handle
            if self.format == "zstd":
                chunks = _skip_bytes(_zstd_chunks(handle), self.start)
            else:
                handle.seek(self.start)
                chunks = iter(lambda: handle.read(CHUNK), b"")
            try:
                yield from self._lines(chunks)
            except zstandard.ZstdError as exc:
                raise InputError(f"{self.path}: corrupt or truncated zstandard data after line "
                                 f"{self._number} ({exc}); the lines before it are imported: "
                                 "re-download the file and run again to finish") from None

    def _lines(self, chunks):
        position = self.start
        pending = b""
        oversized = False
        for chunk in chunks:
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            for text in lines:
                position += len(text) + 1
                self._number += 1
                if oversized:
                    oversized = False
                    yield self._bad(position, f"longer than {MAX_LINE >> 20} MB")
                    continue
                objects, error = parse_line(text)
                yield self._bad(position, error) if error else DumpLine(self._number, position, objects)
            if len(pending) > MAX_LINE:
                # Keep counting bytes, drop the text: this line is reported malformed at its end.
                position += len(pending)
                pending, oversized = b"", True
        if pending or oversized:
            position += len(pending)
            self._number += 1
            if oversized:
                yield self._bad(position, f"longer than {MAX_LINE >> 20} MB")
            else:
                objects, error = parse_line(pending)
                yield self._bad(position, error) if error else DumpLine(self._number, position, objects)

    def _bad(self, position, error):
        self.malformed += 1
        return DumpLine(self._number, position, [], error)

    def _array(self):
        if self.size > MAX_ARRAY_FILE:
            raise InputError(f"{self.path}: one JSON array of {self.size >> 20} MB is too big to read "
                             "whole; convert it to JSON lines first (jq -c '.[]' FILE > FILE.ndjson)")
        self._number = 0
        try:
            with self.path.open("rb") as handle:
                items = json.load(handle)
        except (ValueError, RecursionError) as exc:
            raise InputError(f"{self.path}: not valid JSON ({str(exc)[:80]})") from None
        for number, item in enumerate(items, start=1):
            if number <= self.start:
                continue
            self._number = number
            if isinstance(item, dict):
                yield DumpLine(number, number, [item])
            else:
                yield self._bad(number, f"item {number} is a JSON {type(item).__name__}, expected an object")
