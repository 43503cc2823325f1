"""Where snapshots are kept: one small object-store interface, two clients.

A storage holds immutable objects under string keys (``snapshots/000000000042.db.zst``),
each with a few string metadata values. Four operations, nothing else::

    storage.put_if_absent(key, data, metadata)   # raises Conflict if the key exists
    storage.get(key)                             # -> Blob(data, metadata); raises NotFound
    storage.list(prefix)                         # -> [ObjectInfo(key, size, modified)], sorted by key
    storage.delete(key)                          # no error if already gone

``put_if_absent`` is the one that matters: it is the only write, and it never
replaces an object, so whatever decides which key to write (shared/state/replica.py)
can rely on "exactly one writer wins each key".

Clients:
  S3Storage     any S3-compatible store through boto3; the conditional write is
                ``PutObject`` with ``If-None-Match: *`` (AWS, MinIO, R2, moto).
  LocalStorage  a directory (tests, a NAS mount); the conditional write is
                ``os.link`` of a fully written temp file, which fails with
                EEXIST, so an object appears whole or not at all and never twice.

Usage::

    from shared.state.storage import S3Storage, LocalStorage, Conflict
    storage = S3Storage("my-bucket", prefix="ssi-bot/", endpoint_url="http://127.0.0.1:9000")
    storage.put_if_absent("snapshots/000000000001.db.zst", data, {"sha256": "..."})

Access problems (no such bucket, credentials missing or refused, endpoint
unreachable) raise ``ConfigError`` with one line that names the bucket or the
endpoint and what to fix: the operator has to act, retrying cannot help.
"""

from __future__ import annotations

import json
import os
import tempfile
import typing
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigError, SsiBotError
from shared.files import fsync


class StorageError(SsiBotError):
    """A storage operation failed for a reason other than the ones below."""


class Conflict(StorageError):
    """``put_if_absent``: the key already exists (another writer took it first)."""


class NotFound(StorageError):
    """``get``: no object under that key."""


@dataclass
class Blob:
    data: bytes
    metadata: dict


@dataclass
class ObjectInfo:
    key: str              # relative to the storage's prefix
    size: int             # bytes stored (compressed)
    modified: float       # unix time


class Storage(typing.Protocol):
    """The interface shared/state/replica.py talks to. Keys are relative to the storage's root."""

    def put_if_absent(self, key: str, data: bytes, metadata: dict) -> None: ...
    def get(self, key: str) -> Blob: ...
    def list(self, prefix: str = "") -> list[ObjectInfo]: ...
    def delete(self, key: str) -> None: ...
    def describe(self, key: str = "") -> str: ...


# --------------------------------------------------------------------------- S3

# Answers to a conditional PutObject when the key exists (412) or when another
# conditional write to the same key is in flight (409, AWS only).
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken",
                     "InvalidToken", "403"}
_REGION_CODES = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}


def as_folder(prefix):
    """A key prefix as a folder: ``"bots/a"``, ``"bots/a/"`` and ``"/bots/a"`` are all ``"bots/a/"``; ``""`` stays."""
    inner = (prefix or "").strip("/")
    return f"{inner}/" if inner else ""


class S3Storage:
    """Objects under ``s3://bucket/prefix/`` through boto3.

    The prefix is a folder, with or without its trailing slash. ``endpoint_url``
    points at any S3-compatible store; empty means AWS. Each instance makes its
    own boto3 session, so threads may each hold one.
    """

    def __init__(self, bucket, prefix="", region=None, endpoint_url=None, client=None):
        self.bucket = bucket
        self.prefix = as_folder(prefix)
        # Releases before the prefix was a folder wrote "bots/asnapshots/..." for "bots/a".
        self._legacy_prefix = prefix if prefix and not prefix.endswith("/") else None
        self.region = region
        self.endpoint_url = endpoint_url
        self._client = client

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            # Few, quick retries: an unreachable endpoint should be one clear line
            # in seconds, not a minute of silent backoff.
            config = Config(connect_timeout=5, read_timeout=60,
                            retries={"max_attempts": 3, "mode": "standard"})
            self._client = boto3.session.Session().client(
                "s3", region_name=self.region or None, endpoint_url=self.endpoint_url or None, config=config)
        return self._client

    def describe(self, key=""):
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{key}{where}"

    def put_if_absent(self, key, data, metadata):
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data,
                                   Metadata={k: str(v) for k, v in metadata.items()}, IfNoneMatch="*")
        except Exception as exc:  # noqa: BLE001 - translated below
            if _code(exc) in _CONFLICT_CODES:
                raise Conflict(f"{self.describe(key)}: already exists") from None
            self._raise(exc, key)

    def get(self, key):
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            return Blob(answer["Body"].read(), dict(answer.get("Metadata") or {}))
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in ("NoSuchKey", "404"):
                raise NotFound(f"{self.describe(key)}: no such object") from None
            self._raise(exc, key)

    def list(self, prefix=""):
        found = self._list(self.prefix, prefix)
        if not found and self._legacy_prefix and self._list(self._legacy_prefix, prefix):
            old, new = f"s3://{self.bucket}/{self._legacy_prefix}{prefix}", f"s3://{self.bucket}/{self.prefix}{prefix}"
            raise ConfigError(f"snapshots.prefix {self._legacy_prefix!r}: an older release stored the snapshots at "
                              f"{old}, without the slash; move them to {new} "
                              f"(aws s3 mv {old} {new} --recursive)")
        return found

    def _list(self, base, prefix):
        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base + prefix)
            for page in pages:
                for entry in page.get("Contents", []):
                    found.append(ObjectInfo(entry["Key"][len(base):], entry["Size"], entry["LastModified"].timestamp()))
        except Exception as exc:  # noqa: BLE001
            self._raise(exc, prefix)
        return sorted(found, key=lambda o: o.key)

    def delete(self, key):
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in ("NoSuchKey", "404"):
                return
            self._raise(exc, key)

    def _raise(self, exc, key):
        """Turn a boto3/botocore failure into one line the operator can act on."""
        from botocore import exceptions as bx

        code = _code(exc)
        where = self.describe()
        if code == "NoSuchBucket":
            at = f" at {self.endpoint_url}" if self.endpoint_url else ""
            raise ConfigError(f"s3.bucket: no bucket {self.bucket!r}{at} (create it, or fix s3.bucket "
                              "/ s3.endpoint_url in ssi-bot.yaml)") from None
        if code in _REGION_CODES:
            raise ConfigError(f"{where}: the bucket is in another region ({code}); set s3.region to "
                              "the bucket's region") from None
        if code in _CREDENTIAL_CODES:
            raise ConfigError(f"{where}: credentials refused ({code}); set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to a key allowed to read and write "
                              "this bucket") from None
        if isinstance(exc, bx.NoCredentialsError):
            raise ConfigError(f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE") from None
        if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
            raise ConfigError(f"{where}: cannot reach the endpoint ({exc}); check s3.endpoint_url "
                              "and the network") from None
        if isinstance(exc, bx.NoRegionError):
            raise ConfigError(f"{where}: no region; set s3.region or AWS_DEFAULT_REGION") from None
        if isinstance(exc, (bx.ClientError, bx.BotoCoreError)):
            raise StorageError(f"{self.describe(key)}: {exc}") from None
        raise exc


def _code(exc):
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


# --------------------------------------------------------------------------- a local directory

class LocalStorage:
    """Objects as files under ``root``; metadata is a JSON header line in the file itself,
    so data and metadata appear together."""

    def __init__(self, root):
        self.root = Path(root)

    def describe(self, key=""):
        return f"{self.root}/{key}"

    def _path(self, key):
        if key.startswith("/") or ".." in Path(key).parts:
            raise StorageError(f"{key!r}: not a key inside {self.root}")
        return self.root / key

    def put_if_absent(self, key, data, metadata):
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{self.root}: cannot create the snapshot directory ({exc.strerror})") from None
        header = json.dumps({k: str(v) for k, v in metadata.items()}, sort_keys=True).encode() + b"\n"
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".put-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(header)
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temp, path)   # atomic, and fails if the key exists: put-if-absent
            except FileExistsError:
                raise Conflict(f"{path} already exists") from None
            fsync(path.parent)
        finally:
            os.unlink(temp)

    def get(self, key):
        path = self._path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{path}: no such object") from None
        header, _, data = raw.partition(b"\n")
        try:
            metadata = json.loads(header)
        except ValueError:
            metadata = {}
        return Blob(data, metadata)

    def list(self, prefix=""):
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.rglob("*"):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and not path.name.startswith(".put-") and key.startswith(prefix):
                stat = path.stat()
                found.append(ObjectInfo(key, stat.st_size, stat.st_mtime))
        return sorted(found, key=lambda o: o.key)

    def delete(self, key):
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
