"""What every generation backend is: the ``Model`` interface, sampling settings and statistics.

A backend (``pytorch.py``, ``ct2.py``, ``openvino.py``) subclasses ``Model`` and provides ``_call``,
``_generate_batch`` and ``loss``; everything else here is shared: batching in input
order with best-of-N rows, prompt truncation to the context, the per-token stop rule's
flags, and turning a row's token ids into reply text cut after the first ``<|``.
Backends import this module and nothing of each other.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from shared.tagging import END_OF_TEXT, TAG_OPEN

log = logging.getLogger("shared.generation")

STOP_MARKER = TAG_OPEN      # a reply ends at the first tag it opens
ENDOFTEXT = END_OF_TEXT


@dataclass(frozen=True)
class Sampling:
    """How continuations are sampled. The defaults are the product's: a bot's ``sampling``
    keys in ssi-bot.yaml (shared.config.BotSampling) default to them.

    ``temperature`` 0 means greedy (always the likeliest token); ``top_k`` 0 and
    ``top_p`` 1 switch those filters off; ``repetition_penalty`` 1 is off. ``seed`` makes
    a call reproducible (same prompts, same batch size, same backend, same output).
    """

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    repetition_penalty: float = 1.008
    # The original bot asked for 1024 new tokens (zacc/ssi-bot generators/text/__init__.py:2);
    # every backend bounds a reply by the model's context as well (Model._reply_limit).
    max_new_tokens: int = 1024
    seed: Optional[int] = None

    @classmethod
    def from_settings(cls, settings, seed: Optional[int] = None, model_args: Optional[dict] = None) -> "Sampling":
        """A Sampling from any object with the same attribute names (e.g. a bot's config).

        A setting that is None takes the model's own value from ``model_args`` (its
        model_args.json, ``Model.model_args``), else the default. The original bot honoured
        two keys of that file: simpletransformers passes ``top_p`` and ``do_sample`` to
        ``model.generate`` and the bot's job arguments never set them
        (zacc/ssi-bot generators/text/model_text_generator.py:119-123); it set
        ``max_length`` itself, so the file's ``max_length`` never counted. ``do_sample``
        false means greedy, whatever the temperature, as there.
        """
        model_args = model_args or {}
        names = ("temperature", "top_k", "top_p", "repetition_penalty", "max_new_tokens")
        values = {name: getattr(settings, name) for name in names}
        if values["top_p"] is None:
            top_p = model_args.get("top_p")
            values["top_p"] = float(top_p) if isinstance(top_p, (int, float)) and 0 < top_p <= 1 else cls.top_p
        if model_args.get("do_sample") is False:
            values["temperature"] = 0.0
        return cls(**{k: v for k, v in values.items() if v is not None}, seed=seed)


@dataclass
class GenerationStats:
    """What one ``generate`` call cost; ``Model.last_stats`` holds the latest.

    ``decode_rows`` counts the rows fed through single-token forward passes: with finished
    rows dropped it is exactly ``new_tokens - rows`` (each row's first token comes from
    the prompt pass), where keeping them would cost rows x longest reply. CTranslate2 also
    feeds the part of a prompt longer than the batch's shortest one token per step: those
    count as decode rows too, which is why it splits such batches (``backend_calls``).
    """

    prompts: int = 0
    rows: int = 0                   # prompts x n
    batches: int = 0                # groups of at most batch_size rows
    backend_calls: int = 0          # generation calls into the backend (>= batches)
    prompt_tokens: int = 0          # real prompt tokens, after truncation
    padded_prompt_tokens: int = 0   # what the prompt passes computed, padding included
    truncated_prompts: int = 0
    new_tokens: int = 0             # tokens generated, over all rows
    forward_calls: int = 0          # prompt passes + decode steps
    decode_rows: int = 0
    closed_rows: int = 0            # stopped at <|
    eos_rows: int = 0               # stopped at <|endoftext|>
    cut_rows: int = 0               # ran out of tokens (max_new_tokens or the context)
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of wall time, prompt processing included."""
        return self.new_tokens / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class StopFlags:
    """Per vocabulary id: contains "<|", ends with "<", starts with "|" (lists of bools)."""

    contains_marker: list
    ends_lt: list
    starts_bar: list

    @classmethod
    def of(cls, text_tokenizer, vocab_size: int) -> "StopFlags":
        """Flags for every id below ``vocab_size``; ids the tokenizer lacks never stop a row."""
        size = text_tokenizer.get_vocab_size(with_added_tokens=True)
        texts = text_tokenizer.decode_batch([[i] for i in range(size)], skip_special_tokens=False)
        texts += [""] * (vocab_size - len(texts))
        return cls([STOP_MARKER in t for t in texts], [t.endswith("<") for t in texts],
                   [t.startswith("|") for t in texts])

    @classmethod
    def never(cls, vocab_size: int) -> "StopFlags":
        """Flags that stop no row: every reply runs to its budget (eos still ends it).
        The benchmark measures fixed work with them (``Model.set_stop_flags``)."""
        return cls([False] * vocab_size, [False] * vocab_size, [False] * vocab_size)


class Model(abc.ABC):
    """A loaded GPT-2 model and its tokenizer, whatever the backend; get one with ``load``.

    ``path``, ``backend``, ``precision`` ("fp32", "bf16", "fp16" or "int8"), ``device``
    ("cpu" or "cuda"), ``n_positions`` (the context), ``vocab_size``, ``eos_id`` and
    ``last_stats`` are the same on every backend; ``encode``/``decode`` use the model's own tokenizer.
    """

    backend = ""
    # The directory's model_args.json (simpletransformers' settings), {} when there is none:
    # Sampling.from_settings takes the generation keys the original bot honoured from it.
    model_args: dict = {}

    def __init__(self, path: Path, text_tokenizer, *, n_positions: int, eos_id: int, vocab_size: int,
                 precision: str, device: str):
        self.path = path
        self.precision = precision
        self.device = device
        self.n_positions = int(n_positions)
        self.vocab_size = int(vocab_size)
        self.eos_id = eos_id
        self.last_stats: Optional[GenerationStats] = None
        self._text_tokenizer = text_tokenizer  # a tokenizers.Tokenizer: fast and torch-free
        self.eos_text = self.decode([eos_id]) if eos_id is not None else ENDOFTEXT
        self._lock = threading.Lock()
        self._vocab_in_use = text_tokenizer.get_vocab_size(with_added_tokens=True)
        self.set_stop_flags(StopFlags.of(text_tokenizer, vocab_size))

    def __repr__(self):
        return (f"<{type(self).__name__} {self.path} {self.backend} {self.precision} on {self.device}, "
                f"n_positions={self.n_positions}>")

    def set_stop_flags(self, flags: StopFlags) -> None:
        """Replace the stop rule's per-token flags (``StopFlags.never`` for benchmarks)."""
        self._flags = flags

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text`` (no special tokens added, no truncation)."""
        return self._text_tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        """The text of ``ids``, special tokens included, spaces untouched."""
        return self._text_tokenizer.decode(list(ids), skip_special_tokens=False)

    def generate(self, prompts: list[str], sampling: Optional[Sampling] = None, n: int = 1,
                 batch_size: int = 16, progress: bool = False) -> list[list[str]]:
        """``n`` continuations for each prompt, in input order.

        Each continuation is the generated text only, up to and including the first
        ``<|`` (or ``<|endoftext|>``); a row that never closes returns what it produced.
        ``batch_size`` counts rows, so a batch holds ``batch_size // n`` prompts (at least
        one: a prompt's candidates always share a batch). ``progress`` logs each batch.
        """
        sampling = sampling or Sampling()
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        if sampling.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, not {sampling.max_new_tokens}")
        with self._lock, self._call(sampling) as call:
            started = time.perf_counter()
            stats = GenerationStats(prompts=len(prompts), rows=len(prompts) * n)
            encoded = [self._encode(prompt, sampling, stats) for prompt in prompts]
            # longest first: similar lengths share a batch, and the biggest batch fails first
            order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]), reverse=True)
            per_batch = max(1, batch_size // n)
            results: list[list[str]] = [[] for _ in prompts]
            for first in range(0, len(order), per_batch):
                items = order[first:first + per_batch]
                rows = [encoded[i] for i in items for _ in range(n)]
                texts = self._generate_batch(rows, sampling, call, stats)
                for k, i in enumerate(items):
                    results[i] = texts[k * n:(k + 1) * n]
                stats.batches += 1
                if progress:
                    log.info("generated batch %d/%d (%d rows)", stats.batches,
                             -(-len(order) // per_batch), len(rows))
            stats.seconds = time.perf_counter() - started
            self.last_stats = stats
        return results

    @abc.abstractmethod
    def loss(self, texts: list[str], batch_size: int = 2) -> list[float]:
        """Mean next-token cross-entropy (nats per token) of each text; exp() of it is perplexity.

        Texts longer than the context keep their first ``n_positions`` tokens; a text of
        fewer than two tokens has no next token to predict and gets NaN.
        """

    # --- what a backend provides -------------------------------------------------------

    @abc.abstractmethod
    def _call(self, sampling: Sampling):
        """A context manager around one ``generate`` call; what it yields reaches
        ``_generate_batch`` (the seeded random state, for example)."""

    @abc.abstractmethod
    def _generate_batch(self, rows: list[list[int]], sampling: Sampling, call, stats: GenerationStats) -> list[str]:
        """The reply text of each row (token ids, longest first), in row order."""

    # --- shared by the backends ----------------------------------------------------------

    def _encode(self, prompt: str, sampling: Sampling, stats: GenerationStats) -> list[int]:
        """Token ids of ``prompt``, left-truncated so the reply budget fits the context."""
        ids = self.encode(prompt) or [self.eos_id]  # an empty prompt starts a new document
        # the reply budget is max_new_tokens, but a prompt always keeps half the context
        budget = min(sampling.max_new_tokens, self.n_positions // 2)
        room = self.n_positions - budget
        if len(ids) > room:
            log.warning("%s: prompt of %d tokens cut to its last %d (context %d, reply budget %d)",
                        self.path, len(ids), room, self.n_positions, budget)
            ids = ids[-room:]
            stats.truncated_prompts += 1
        stats.prompt_tokens += len(ids)
        return ids

    def _reply_limit(self, prompt_length: int, sampling: Sampling) -> int:
        """How many tokens a row may generate: max_new_tokens, within the context."""
        return min(sampling.max_new_tokens, self.n_positions - prompt_length)

    def _reply_text(self, ids: list[int], ended_by_eos: bool) -> str:
        """The decoded reply, cut right after its first "<|"; eos shows as <|endoftext|>."""
        if ended_by_eos:
            ids = ids[:-1]
        text = self.decode(ids)
        cut = text.find(STOP_MARKER)
        if cut >= 0:
            return text[:cut + len(STOP_MARKER)]
        return text + self.eos_text if ended_by_eos else text


