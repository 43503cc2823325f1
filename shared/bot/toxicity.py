"""Toxicity: a trained classifier's verdict on texts, the safety net behind the negative keywords.

The original ssi-bot ran Detoxify on every incoming item and every generated reply
(zacc/ssi-bot utils/toxicity_helper.py, reddit_io/logic_mixin.py:134-137,
generators/text/model_text_generator.py:92-95). Here two engines sit behind one interface:

- ``profanity-check`` (the default): alt-profanity-check, a linear SVM on TF-IDF that ships
  inside its wheel, so it works offline and costs microseconds per text in a batch. It
  scores each sentence and a text gets its highest score (one insult inside a long comment
  is otherwise diluted below any threshold); toxic at ``threshold`` (0.8) or more. It spots
  offensive words, not intent: slur-free threats and hate pass it, which is why it runs on
  top of the negative keywords, never instead of them.
- ``detoxify``: the original's models, from a checkpoint file on this machine (Detoxify
  downloads its weights from GitHub at first use, which an offline bot cannot do). Toxic
  when any label scores above its threshold (the original's values, ``toxicity.thresholds``).
  The checkpoint is a pickle: load only files from a source you trust.

Usage::

    from shared.bot import toxicity
    check = toxicity.checker(bot.toxicity, bot.name)    # the engine loads on first use
    check.reasons(["hello there", "you worthless idiot"])
    # [None, "toxic: profanity 1.00 >= 0.80"]

Guarantees: an engine is loaded once per process (per checkpoint) and shared by every bot
and thread that uses it (both engines only read their models); nothing is imported until a
checker is asked for, so ``--help`` and config checks stay fast. A missing or invalid
checkpoint is a ``ConfigError`` that names ``toxicity.checkpoint`` and the fix. An empty
text is never toxic and costs nothing. ``verdict`` is pure: scores in, a reason out.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigError, first_line

log = logging.getLogger("toxicity")

PROFANITY_LABEL = "profanity"
# Sentences for profanity-check: after . ! ? and at line breaks.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# Detoxify runs a transformer: texts per forward pass (padding grows with the longest).
DETOXIFY_BATCH = 16


def verdict(scores: dict, thresholds: tuple, inclusive: bool) -> str | None:
    """Why ``scores`` ({label: score}) are toxic under ``thresholds`` ((label, limit) pairs), or None.

    ``inclusive``: a score equal to its limit is toxic (profanity-check's rule) or not
    (the original's Detoxify rule, strictly above). The reason names the label that scored
    highest among those over their limit: ``"toxic: insult 0.93 > 0.40"``.
    """
    over = [(scores[label], label, limit) for label, limit in thresholds
            if label in scores and (scores[label] >= limit if inclusive else scores[label] > limit)]
    if not over:
        return None
    score, label, limit = max(over)
    return f"toxic: {label} {score:.2f} {'>=' if inclusive else '>'} {limit:.2f}"


@dataclass(frozen=True)
class Checker:
    """One bot's toxicity check: a shared engine and that bot's thresholds."""

    engine: object
    thresholds: tuple          # ((label, limit), ...)
    inclusive: bool

    def reasons(self, texts) -> list:
        """For each of ``texts``: None when it is fine, else why it is toxic. One engine call."""
        texts = [text or "" for text in texts]
        if not texts:
            return []
        return [verdict(scores, self.thresholds, self.inclusive) for scores in self.engine.scores(texts)]


def checker(settings, bot_name: str) -> Checker:
    """The check ``settings`` (a config.Toxicity) describe for bot ``bot_name``; loads its engine once."""
    if settings.engine == "detoxify":
        engine = _engine(("detoxify", settings.checkpoint), lambda: DetoxifyEngine(settings.checkpoint, bot_name))
        limits = dataclasses.asdict(settings.thresholds)
        thresholds = tuple((label, limits[label]) for label in engine.labels if label in limits)
        if not thresholds:
            raise ConfigError(f"bot {bot_name}: toxicity.checkpoint {settings.checkpoint}: its labels "
                              f"({', '.join(engine.labels)}) have no threshold in toxicity.thresholds")
        return Checker(engine, thresholds, inclusive=False)
    if settings.engine == "profanity-check":
        engine = _engine(("profanity-check",), ProfanityCheckEngine)
        return Checker(engine, ((PROFANITY_LABEL, settings.threshold),), inclusive=True)
    raise ConfigError(f"bot {bot_name}: toxicity.engine {settings.engine!r}: expected profanity-check or detoxify")


_ENGINES: dict = {}
_LOADING = threading.Lock()


def _engine(key, load):
    with _LOADING:
        if key not in _ENGINES:
            started = time.monotonic()
            _ENGINES[key] = load()
            log.info("loaded %s in %.1fs", " ".join(str(k) for k in key), time.monotonic() - started)
        return _ENGINES[key]


# --------------------------------------------------------------------------- profanity-check

def sentences(text: str) -> list[str]:
    """The sentences of ``text`` that hold anything but spaces."""
    return [part for part in (p.strip() for p in _SENTENCE_END.split(text)) if part]


class ProfanityCheckEngine:
    """alt-profanity-check: P(offensive) per sentence, the highest per text."""

    name = "profanity-check"
    labels = (PROFANITY_LABEL,)

    def __init__(self):
        # Imports scikit-learn and unpickles the model: a second or two and ~180 MB, paid
        # only by a process that checks something.
        from profanity_check import predict_prob

        self._predict_prob = predict_prob

    def scores(self, texts: list[str]) -> list[dict]:
        best = [0.0] * len(texts)
        parts, owners = [], []
        for index, text in enumerate(texts):
            for sentence in sentences(text):
                parts.append(sentence)
                owners.append(index)
        if parts:  # predict_prob refuses an empty batch; one call for all: the cost is per call
            for owner, probability in zip(owners, self._predict_prob(parts)):
                best[owner] = max(best[owner], float(probability))
        return [{PROFANITY_LABEL: score} for score in best]


# --------------------------------------------------------------------------- detoxify

class DetoxifyEngine:
    """Detoxify from a local checkpoint: {label: sigmoid score} per text."""

    name = "detoxify"

    def __init__(self, checkpoint, bot_name: str):
        path = Path(checkpoint)
        setting = f"bot {bot_name}: toxicity.checkpoint {path}"
        _check_checkpoint(path, setting)
        try:
            from detoxify import Detoxify
        except ImportError:
            raise ConfigError(f"{setting}: the detoxify package is not installed (pip install -r pip.req)") from None
        try:
            model = Detoxify(checkpoint=str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - any failure to load is the file's fault
            raise ConfigError(f"{setting}: Detoxify cannot load it ({type(exc).__name__}: {first_line(exc)})") from None
        heads = model.model.config.num_labels
        if len(model.class_names) > heads:
            raise ConfigError(f"{setting}: it names {len(model.class_names)} labels for a model with {heads} outputs")
        _bound_input_length(model)
        self._model = model
        self.labels = tuple(model.class_names)

    def scores(self, texts: list[str]) -> list[dict]:
        results = [dict.fromkeys(self.labels, 0.0) for _ in texts]
        todo = [i for i, text in enumerate(texts) if text.strip()]
        for start in range(0, len(todo), DETOXIFY_BATCH):
            chunk = todo[start:start + DETOXIFY_BATCH]
            predicted = self._model.predict([texts[i] for i in chunk])
            for label, values in predicted.items():
                # Detoxify returns a float per label for a single text (also a 1-item list)
                values = values if isinstance(values, list) else [values]
                for index, value in zip(chunk, values):
                    results[index][label] = float(value)
        return results


def _check_checkpoint(path: Path, setting: str) -> None:
    """ConfigError with the fix for a file Detoxify would fail on (or, worse, load wrongly)."""
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise ConfigError(f"{setting}: {what}; put a Detoxify checkpoint there (e.g. unbiased-albert-"
                          f"c8519128.ckpt from the detoxify releases) or set toxicity.engine: profanity-check")
    import torch

    try:
        # weights_only=False, as Detoxify loads it: the checkpoint holds its config as plain objects
        loaded = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - empty, truncated, not a torch file
        raise ConfigError(f"{setting}: not a Detoxify checkpoint ({type(exc).__name__}: {first_line(exc)})") from None
    try:
        args = loaded["config"]["arch"]["args"]
        loaded["config"]["dataset"]["args"]["classes"]
        keys = list(loaded["state_dict"])
    except (KeyError, TypeError, IndexError, RuntimeError):
        raise ConfigError(f"{setting}: not a Detoxify checkpoint (it needs config.arch.args, "
                          f"config.dataset.args.classes and state_dict)") from None
    local = args.get("model_type") if isinstance(args, dict) else None
    if not (isinstance(local, str) and Path(local).is_dir()):
        raise ConfigError(
            f"{setting}: its config.arch.args.model_type is {local!r}, not a folder on this machine; Detoxify would "
            f"download that model's config and tokenizer: put them in a folder and write its absolute path there "
            f"(README, Configuration)")
    if any(key.startswith("model.") for key in keys):
        raise ConfigError(f"{setting}: its state_dict keys start with 'model.' (a PyTorch Lightning checkpoint); "
                          f"strip the prefix first, or Detoxify would run with random weights")


def _bound_input_length(model) -> None:
    """Detoxify truncates with the tokenizer's model_max_length; a tokenizer saved without one
    would pass any length, and a text longer than the model's positions would crash it."""
    config, tokenizer = model.model.config, model.tokenizer
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return
    # RoBERTa-style models keep two position slots for the padding offset.
    limit = positions - 2 if config.model_type in ("roberta", "xlm-roberta", "camembert") else positions
    if tokenizer.model_max_length > limit:
        tokenizer.model_max_length = limit
