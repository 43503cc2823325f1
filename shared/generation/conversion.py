"""A model converted for a backend and cached beside it: where it lives, whether it is current,
and converting it once.

CTranslate2 and OpenVINO both generate from a converted copy of a transformers GPT-2
directory. What they share is here; what a conversion writes is each backend's own
``convert(model_dir, target, variant, fingerprint)``.

- The copy lives in ``<model_dir>/<prefix><variant>`` (``.ct2-int8``, ``.ov-int8``), or, when
  the model directory is read-only, in the user's cache (``~/.cache/ssi-bot/<backend>/``). A
  read-only folder (an image, a read-only mount) may still hold a copy made at build time: it
  is looked for first.
- It is current when its source files have the names, sizes and modification times it
  recorded (the fingerprint, cheap), or, failing that (a copy that reset the times, a Docker
  layer), the same contents (a digest, read only when the times differ; the new times are
  then recorded). Anything else (a finetune rewrote the weights, another runtime version)
  converts again.
- A conversion writes a temporary directory, its metadata file last, renamed into place under
  a lock: two processes never convert one model at once, and none sees half a model.
- Converting imports torch (seconds, about 1 GB, once): a process that has not imported it
  converts in a child (``python -m shared.generation.<backend> MODEL_DIR VARIANT --in-process``),
  so a bot's process never loads torch.
- A model that cannot be converted leaves a note with the reason beside the cache, so the next
  process falls back at once instead of trying again, until the model or a converting
  package changes.

Usage::

    CACHE = Cache("openvino", "OpenVINO", prefix=".ov-", meta_file="ssi-bot-openvino.json",
                  runtime="openvino", converters=("optimum-intel", "torch"), format=1,
                  cannot_convert="cannot load the model (converting it for OpenVINO)")
    target = CACHE.converted(model_dir, "int8", "bot X", convert)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock

from shared.errors import ModelError

log = logging.getLogger(__name__)

# the files a conversion reads: any change to one of them means converting again
SOURCE_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json", "tokenizer.json", "vocab.json", "merges.txt",
                "added_tokens.json", "special_tokens_map.json", "tokenizer_config.json")
ROOT = Path(__file__).resolve().parents[2]   # where `python -m shared.generation.<backend>` runs


@dataclass(frozen=True)
class Cache:
    """One backend's cache of converted models."""

    backend: str            # the module under shared.generation, and the user cache's folder
    title: str              # the backend as messages name it
    prefix: str             # of the folder beside the model: ".ct2-", ".ov-"
    meta_file: str          # written last: a folder without it is incomplete
    runtime: str            # the package whose version the converted files depend on
    converters: tuple       # the packages whose change gives a failed conversion another try
    format: int             # the conversion recipe: a change to what convert() writes bumps it
    cannot_convert: str     # how a failed conversion's reason starts

    def dirs(self, model_dir: Path, variant: str) -> list[Path]:
        """Where the conversion may live: beside the model, then in the user's cache."""
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssi-bot" / self.backend
        digest = hashlib.sha256(str(Path(model_dir).resolve()).encode()).hexdigest()[:16]
        name = f"{self.prefix}{variant}"
        return [Path(model_dir) / name, base / f"{Path(model_dir).name}-{digest}" / name]

    def target(self, model_dir: Path, variant: str) -> Path:
        """Where a conversion made now goes: beside the model when its folder is writable."""
        dirs = self.dirs(model_dir, variant)
        return dirs[0] if os.access(model_dir, os.W_OK) else dirs[-1]

    def fingerprint(self, model_dir: Path, variant: str) -> str:
        """A digest of what a conversion depends on, cheap to compute: the source files' names,
        sizes and modification times, the variant, the recipe and the runtime's version."""
        parts = [variant, str(self.format), version(self.runtime)]
        for name in SOURCE_FILES:
            path = Path(model_dir) / name
            if path.is_file():
                stat = path.stat()
                parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def content_digest(self, model_dir: Path, variant: str) -> str:
        """A digest of the source files' contents (reads them all: about a second for 124M)."""
        digest = hashlib.blake2b(f"{variant}\n{self.format}\n{version(self.runtime)}".encode())
        for name in SOURCE_FILES:
            path = Path(model_dir) / name
            if path.is_file():
                digest.update(f"\n{name}:{path.stat().st_size}\n".encode())
                with open(path, "rb") as handle:
                    while chunk := handle.read(1 << 22):
                        digest.update(chunk)
        return digest.hexdigest()

    def meta(self, target: Path) -> dict:
        """What a complete conversion recorded about itself ({} for none or an incomplete one)."""
        return read_json(Path(target) / self.meta_file)

    def converted(self, model_dir: Path, variant: str, shown: str,
                  convert: Callable[[Path, Path, str, str], None]) -> Path:
        """The current conversion of ``model_dir``, converting it when there is none.

        ``convert(model_dir, target, variant, fingerprint)`` converts in this process (torch
        already imported); otherwise a child does. Raises ``ModelError`` when the conversion
        fails, now or before with the same source and packages.
        """
        model_dir = Path(model_dir)
        fingerprint = self.fingerprint(model_dir, variant)
        candidates = self.dirs(model_dir, variant)
        for target in candidates:
            if self.meta(target).get("fingerprint") == fingerprint:
                return target
        for target in candidates:   # the times differ: a copy whose contents still match is current
            recorded = self.meta(target).get("content")
            if recorded and recorded == self.content_digest(model_dir, variant):
                self._record_fingerprint(target, fingerprint)
                return target
        target = self.target(model_dir, variant)
        target.parent.mkdir(parents=True, exist_ok=True)
        failed = target.with_name(target.name + ".failed")
        with FileLock(target.with_name(target.name + ".lock")):
            if self.meta(target).get("fingerprint") == fingerprint:  # another process converted it meanwhile
                return target
            if read_json(failed).get("fingerprint") == self._failure_key(fingerprint):
                raise ModelError(f"{shown}: {read_json(failed)['reason']}")
            log.info("%s: converting for %s (%s) into %s", shown, self.title, variant, target)
            try:
                if "torch" in sys.modules:
                    convert(model_dir, target, variant, fingerprint)
                else:
                    self._convert_in_child(model_dir, variant, shown)
            except ModelError as exc:
                reason = str(exc).removeprefix(f"{shown}: ").removeprefix(f"{model_dir}: ")
                failed.write_text(json.dumps({"fingerprint": self._failure_key(fingerprint), "reason": reason}),
                                  encoding="utf-8")
                raise ModelError(f"{shown}: {reason}") from exc
            failed.unlink(missing_ok=True)
        if self.meta(target).get("fingerprint") != fingerprint:
            raise ModelError(f"{shown}: the {self.title} conversion in {target} does not match its source; "
                             f"is the model being rewritten?")
        return target

    def _convert_in_child(self, model_dir: Path, variant: str, shown: str) -> None:
        done = subprocess.run([sys.executable, "-m", f"shared.generation.{self.backend}", str(model_dir), variant,
                               "--in-process"], capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            reason = reason.removeprefix(f"{model_dir}: ")  # the child's ModelError says "<model_dir>: <problem>"
            raise ModelError(f"{shown}: {reason if reason.startswith(self.cannot_convert) else f'{self.cannot_convert}: {reason}'}")

    def _failure_key(self, fingerprint: str) -> str:
        """A failed conversion is tried again when the source or a converting package changes."""
        return hashlib.sha256(" ".join([fingerprint] + [version(p) for p in self.converters]).encode()).hexdigest()

    def _record_fingerprint(self, target: Path, fingerprint: str) -> None:
        """Record the source's new times, so the next load skips reading its contents."""
        if not os.access(target, os.W_OK):
            return
        meta = self.meta(target)
        meta["fingerprint"] = fingerprint
        temporary = target / f"{self.meta_file}.tmp-{os.getpid()}"
        temporary.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.replace(temporary, target / self.meta_file)


def version(package: str) -> str:
    """An installed package's version, or "none"."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
