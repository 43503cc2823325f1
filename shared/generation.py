"""Loading GPT-2 models and generating replies in batches, on the CPU or a GPU.

Features:

- ``load(path)`` reads a model directory as transformers or simpletransformers save it
  (config.json; model.safetensors or pytorch_model.bin; vocab.json + merges.txt and/or
  tokenizer.json), or a run folder holding ``best_model/``. Each model is loaded once per
  process (per backend, precision and device) and shared by every bot that names it.
  Broken directories raise ``ModelError`` with one line naming the path and the missing
  piece. Nothing touches the network.
- Two backends behind one ``Model``: ``transformers`` (PyTorch; fp32, bf16, a GPU) and
  ``ctranslate2`` (shared/ct2.py: the model converted once to int8 and cached beside it).
  ``load(path, backend="auto", precision="auto", device="auto")`` takes the config's
  ``generation`` keys; ``choose`` says what "auto" becomes on this machine, and why.
- ``Model.generate(prompts, sampling, n)`` returns ``n`` continuations per prompt, in input
  order, whatever the backend. Each continuation is cut right after the first ``<|`` it
  produces (the opening of a closing tag such as ``<|eor|>``), or after ``<|endoftext|>``;
  the marker is kept so the caller can tell a closed reply from one that ran out of tokens.
- ``Model.loss(texts)`` gives each text's mean next-token loss (exp() = perplexity), and
  ``Model.last_stats`` what the last ``generate`` cost: tokens, forward passes, rows, seconds.

Usage::

    from shared.generation import Sampling, load

    model = load("models/my-bot")                  # or a run folder with best_model/
    prompts = ["<|soss r/test|><|sot|>Hi<|eot|><|sost|>Hello<|eost|><|sor|>"]
    [[a, b]] = model.generate(prompts, Sampling(temperature=0.8, seed=1), n=2)
    closed = a.endswith("<|")                      # False when it ran out of tokens
    print(model.backend, model.precision, model.last_stats.tokens_per_second)

What "auto" picks (``choose``), and why: a static rule backed by ``python -m jobs.bench``
(GPT-2 124M, 200-token prompts, 64-token replies, the 2-core dev machine, idle):

- On a CPU, CTranslate2 int8 when ctranslate2 is installed. It is the fastest at small
  batches (batch 1: 0.93 s per reply, transformers 1.8 s; batch 4: level with bf16), the
  only choice that keeps the bot's process small (330 MiB at batch 1, 540 MiB at 8; with
  torch 1.0-1.3 GiB) and starts fast (first reply 1.4 s after process start, against 5.8 s),
  and the one that holds up on a shared CPU: with another process busy on one of the two
  cores it slowed 1.3-1.9x where torch's threads stalled (6-25x).
- transformers bf16 is faster from batch 8 up on an idle machine (209 against 166 tok/s at
  batch 8, 298 against 226 at 16, 443 against 226 at 32): choose ``backend: transformers,
  precision: bf16`` for large batches on a dedicated machine with memory to spare.
- Without ctranslate2: transformers bf16 where the CPU computes bf16 natively (AMX or
  AVX512-BF16), fp32 elsewhere. On a GPU: transformers bf16 (not measured: no GPU here).

How a batch is generated, and why (this is where the bot spends its time):

- Prompts are sorted by length before batching to keep the padding small; the ``n``
  candidates of a prompt share a batch. ``batch_size`` counts rows (prompts x n).
- transformers: rows are left-padded so every row's next token sits in the last column;
  the attention mask hides the padding and position ids count only real tokens, so a
  padded row generates exactly what it would alone. The KV cache is preallocated for the
  longest row, because transformers' DynamicCache copies itself at every step. A row that
  has produced its stop marker, eos or its token budget is dropped from the batch and from
  the cache at once, so no compute is spent past the end of a reply.
- The stop marker is found per token, not by decoding: each vocabulary entry is flagged
  once as "contains ``<|``", "ends with ``<``" and "starts with ``|``", so a ``<`` and a
  ``|`` in two consecutive tokens stop the row too (both backends).
- Sampling uses transformers' own logits processors (repetition penalty, temperature,
  top-k, top-p), as ``model.generate`` would, except that top-p and the draw only see
  the top-k candidates (the rest have probability 0). Temperature 0 means greedy.
  CTranslate2 applies the same settings in C++ (see shared/ct2.py for the differences).
- Prompt plus reply never exceed the model's context (``n_positions``): a prompt longer
  than the context minus the reply budget (max_new_tokens, at most half the context)
  loses its oldest tokens, with a warning.

CPU generation is memory-bandwidth bound at batch 1; batching is what makes it cheap
(see docs FACTS.md, "CPU generation", and ``python -m jobs.bench`` for this machine).
transformers' GPT-2 GELU is swapped for torch's fused one (``_fuse_gelu``).
Calls on one model are serialised: two bots generating at once on the same cores would
only slow each other down.

torch, transformers and ctranslate2 are imported when a model is loaded, not when this
module is, so reading the config stays fast; a CTranslate2 model never imports torch.
"""

from __future__ import annotations

import abc
import functools
import importlib.util
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from shared.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

STOP_MARKER = "<|"
ENDOFTEXT = "<|endoftext|>"

EXPECTED_LAYOUT = (
    "expected a GPT-2 model directory saved by transformers or simpletransformers "
    "(config.json, model.safetensors or pytorch_model.bin, vocab.json + merges.txt or tokenizer.json)"
)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin",
                 "model.safetensors.index.json", "pytorch_model.bin.index.json")

BACKENDS = ("transformers", "ctranslate2")
# what each backend can run, per device ("fp16" only where it is fast: a GPU)
PRECISIONS = {
    ("transformers", "cpu"): ("fp32", "bf16"),
    ("transformers", "cuda"): ("fp32", "bf16", "fp16"),
    ("ctranslate2", "cpu"): ("int8", "fp32"),
    ("ctranslate2", "cuda"): ("int8", "fp32", "bf16", "fp16"),
}


@dataclass(frozen=True)
class Sampling:
    """How continuations are sampled. The defaults are the product's (see shared.config).

    ``temperature`` 0 means greedy (always the likeliest token); ``top_k`` 0 and
    ``top_p`` 1 switch those filters off; ``repetition_penalty`` 1 is off. ``seed`` makes
    a call reproducible (same prompts, same batch size, same backend, same output).
    """

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    repetition_penalty: float = 1.008
    max_new_tokens: int = 256
    seed: Optional[int] = None

    @classmethod
    def from_settings(cls, settings, seed: Optional[int] = None) -> "Sampling":
        """A Sampling from any object with the same attribute names (e.g. a bot's config)."""
        names = ("temperature", "top_k", "top_p", "repetition_penalty", "max_new_tokens")
        return cls(**{name: getattr(settings, name) for name in names}, seed=seed)


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


class TransformersModel(Model):
    """A GPT-2 run by PyTorch through transformers: fp32 or bf16 on the CPU, any on a GPU.

    ``hf_model`` is the GPT2LMHeadModel and ``tokenizer`` its GPT2TokenizerFast.
    """

    backend = "transformers"

    def __init__(self, path: Path, hf_model, tokenizer, precision: str, device: str):
        self.hf_model = hf_model
        self.tokenizer = tokenizer
        eos_id = tokenizer.eos_token_id
        if eos_id is None:
            eos_id = hf_model.config.eos_token_id
        super().__init__(path, tokenizer.backend_tokenizer, n_positions=hf_model.config.n_positions,
                         eos_id=eos_id, vocab_size=hf_model.config.vocab_size, precision=precision, device=device)

    def set_stop_flags(self, flags: StopFlags) -> None:
        import torch

        super().set_stop_flags(flags)
        self._contains_marker, self._ends_lt, self._starts_bar = (
            torch.tensor(column, dtype=torch.bool, device=self.device)
            for column in (flags.contains_marker, flags.ends_lt, flags.starts_bar))

    def loss(self, texts: list[str], batch_size: int = 2) -> list[float]:
        """See ``Model.loss``. Every position's logits are kept, so memory grows as
        batch_size x tokens x vocab (400 MB for two 1024-token texts with GPT-2's vocab)."""
        import torch

        losses = []
        with self._lock, torch.inference_mode():
            for first in range(0, len(texts), batch_size):
                chunk = [self.encode(t)[:self.n_positions] for t in texts[first:first + batch_size]]
                width = max(len(ids) for ids in chunk) if chunk else 0
                if width < 2:
                    losses.extend(float("nan") for _ in chunk)
                    continue
                ids = torch.full((len(chunk), width), self.eos_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, row_ids in enumerate(chunk):
                    ids[row, :len(row_ids)] = torch.tensor(row_ids)
                    mask[row, :len(row_ids)] = 1
                ids, mask = ids.to(self.device), mask.to(self.device)
                logits = self.hf_model(input_ids=ids, attention_mask=mask).logits.float()
                token_loss = torch.nn.functional.cross_entropy(
                    logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
                counted = mask[:, 1:].float()
                per_text = (token_loss * counted).sum(1) / counted.sum(1)
                losses.extend(per_text.tolist())
        return losses

    def _call(self, sampling: Sampling):
        return _TorchCall(self, sampling)

    def _generate_batch(self, rows, sampling, call, stats) -> list[str]:
        """Generate every row of one batch until each has stopped; the texts, row order."""
        import torch

        processors, generator = call
        device = self.device
        count = len(rows)
        lengths = torch.tensor([len(ids) for ids in rows], device=device)
        width = int(lengths.max())
        input_ids = torch.full((count, width), self.eos_id, dtype=torch.long)
        mask = torch.zeros((count, width), dtype=torch.long)
        for row, ids in enumerate(rows):
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            mask[row, width - len(ids):] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        # positions count real tokens only, so a padded row sees what it would see alone
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        # the repetition penalty looks at every id it is given: fill the padding with a
        # token the row already has, so the pad id (eos) is not penalised in padded rows
        first_real = input_ids[torch.arange(count, device=device), width - lengths]
        history = torch.where(mask.bool(), input_ids, first_real[:, None])
        # each row may grow to the context; max_new_tokens bounds it too
        limits = (self.n_positions - lengths).clamp(max=sampling.max_new_tokens)

        # room for the longest row: rows never outgrow the buffer, so no step copies the cache
        cache = _preallocated_cache(self.hf_model.config.n_layer, width + int(limits.max()))
        logits = self._forward(input_ids, mask, positions, cache, stats)
        stats.padded_prompt_tokens += count * width
        stats.backend_calls += 1
        next_position = positions[:, -1] + 1
        active = torch.arange(count, device=device)          # batch row -> original row
        produced = torch.zeros(count, dtype=torch.long, device=device)
        after_lt = torch.zeros(count, dtype=torch.bool, device=device)  # previous token ended with "<"
        generated: list[list[int]] = [[] for _ in range(count)]
        ended_by_eos = [False] * count

        while True:
            tokens = self._pick(history, logits, processors, sampling, generator)
            for row, token in zip(active.tolist(), tokens.tolist()):
                generated[row].append(token)
            produced += 1
            stats.new_tokens += len(tokens)
            is_eos = tokens == self.eos_id
            closed = self._contains_marker[tokens] | (after_lt & self._starts_bar[tokens]) | is_eos
            finished = closed | (produced >= limits)
            stats.eos_rows += int(is_eos.sum())
            stats.closed_rows += int((closed & ~is_eos).sum())
            stats.cut_rows += int((finished & ~closed).sum())
            for row in active[is_eos].tolist():
                ended_by_eos[row] = True
            if bool(finished.all()):
                break
            if bool(finished.any()):
                # drop finished rows from the batch and the cache: no work past a reply's end
                keep = (~finished).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                active, tokens, mask, history = active[keep], tokens[keep], mask[keep], history[keep]
                produced, limits, next_position = produced[keep], limits[keep], next_position[keep]
            after_lt = self._ends_lt[tokens]
            history = torch.cat([history, tokens[:, None]], dim=1)
            mask = torch.cat([mask, mask.new_ones((len(tokens), 1))], dim=1)
            logits = self._forward(tokens[:, None], mask, next_position[:, None], cache, stats)
            stats.decode_rows += len(tokens)
            next_position += 1

        return [self._reply_text(ids, eos) for ids, eos in zip(generated, ended_by_eos)]

    def _forward(self, input_ids, mask, positions, cache, stats):
        """One forward pass; the float32 logits of each row's last position."""
        out = self.hf_model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                            past_key_values=cache, use_cache=True,
                            logits_to_keep=1)  # the full-width logits of a prompt are huge
        stats.forward_calls += 1
        logits = out.logits[:, -1, :].float()
        if logits.shape[-1] > self._vocab_in_use:
            # embedding rows the tokenizer cannot decode (a padded vocab) are never picked
            logits[:, self._vocab_in_use:] = float("-inf")
        return logits

    @staticmethod
    def _pick(history, logits, processors, sampling, generator):
        """The next token of each row: greedy, or sampled after transformers' processors."""
        import torch

        full_vocab, top_p = processors
        scores = full_vocab(history, logits)
        if sampling.temperature <= 0:
            return scores.argmax(-1)
        candidates = None
        if sampling.top_k > 0:
            # top-k left k finite scores per row: sample among those k alone. Top-p sorts the
            # whole vocabulary and the softmax spans it too: at batch 16 that cost 40% of the
            # 124M model's own step, for tokens whose probability is exactly 0
            scores, candidates = scores.topk(min(sampling.top_k, scores.shape[-1]), dim=-1)
        if top_p is not None:
            scores = top_p(history, scores)
        choice = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)
        return (choice if candidates is None else candidates.gather(1, choice)).squeeze(1)


class _TorchCall:
    """One transformers ``generate`` call: inference mode, the processors, the seeded generator."""

    def __init__(self, model: TransformersModel, sampling: Sampling):
        self.model, self.sampling = model, sampling

    def __enter__(self):
        import torch

        self._mode = torch.inference_mode()
        self._mode.__enter__()
        generator = None
        if self.sampling.seed is not None:
            generator = torch.Generator(device=self.model.device).manual_seed(self.sampling.seed)
        return _processors(self.sampling), generator

    def __exit__(self, *exc):
        return self._mode.__exit__(*exc)


def _processors(sampling: Sampling):
    """transformers' own logits processors for ``sampling``, in model.generate's order.

    Returns (the processors applied to the full vocabulary, the top-p warper or None):
    top-p runs after ``_pick`` has narrowed the scores to the top-k candidates, which
    keeps its result and saves sorting the vocabulary.
    """
    from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                              TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

    full_vocab = LogitsProcessorList()
    if sampling.repetition_penalty != 1.0:
        full_vocab.append(RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty))
    if sampling.temperature <= 0:  # greedy needs no warpers
        return full_vocab, None
    if sampling.temperature != 1.0:
        full_vocab.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_k > 0:
        full_vocab.append(TopKLogitsWarper(sampling.top_k))
    top_p = TopPLogitsWarper(sampling.top_p) if sampling.top_p < 1.0 else None
    return full_vocab, top_p


def _preallocated_cache(n_layer: int, capacity: int):
    """A KV cache whose layers write into buffers of ``capacity`` positions.

    transformers' DynamicCache grows with ``torch.cat`` at every step, copying the whole
    cache each time: a fifth of a 124M decode step at batch 16 with 200-token prompts.
    """
    from transformers.cache_utils import Cache

    layer_class = _preallocated_layer_class()
    return Cache(layers=[layer_class(capacity) for _ in range(n_layer)])


@functools.cache
def _preallocated_layer_class():
    """The cache layer class; built on first use so that importing this module stays light."""
    from transformers.cache_utils import DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        """A DynamicLayer whose ``keys``/``values`` are views into a buffer filled in place.

        Only what our generation loop calls is supported: update and batch_select_indices.
        """

        def __init__(self, capacity: int):
            super().__init__()
            self.capacity = capacity
            self.length = 0

        def lazy_initialization(self, key_states):
            super().lazy_initialization(key_states)
            batch, heads, _, head_dim = key_states.shape
            self.key_buffer = key_states.new_empty((batch, heads, self.capacity, head_dim))
            self.value_buffer = key_states.new_empty((batch, heads, self.capacity, head_dim))

        def update(self, key_states, value_states, cache_kwargs=None):
            if not self.is_initialized:
                self.lazy_initialization(key_states)
            start, self.length = self.length, self.length + key_states.shape[-2]
            self.key_buffer[:, :, start:self.length] = key_states
            self.value_buffer[:, :, start:self.length] = value_states
            self._expose()
            return self.keys, self.values

        def batch_select_indices(self, indices):
            if self.is_initialized:
                self.key_buffer = self.key_buffer[indices]
                self.value_buffer = self.value_buffer[indices]
                self._expose()

        def _expose(self):
            self.keys = self.key_buffer[:, :, :self.length]
            self.values = self.value_buffer[:, :, :self.length]

    return PreallocatedLayer


# --- choosing a backend ----------------------------------------------------------------

def choose(backend: str = "auto", precision: str = "auto", device: str = "auto") -> tuple[str, str, str]:
    """The (backend, precision, device) that ``load`` runs for these config values.

    "auto" resolves as the module docstring says: a GPU when one is visible; on a CPU,
    CTranslate2 int8 when ctranslate2 is installed (fastest at small batches, the smallest
    process, the fastest start), else transformers bf16 where the CPU has native bf16, else fp32.
    A precision alone picks the backend that runs it (int8: ctranslate2; fp32, bf16 and
    fp16: transformers). Raises ``ConfigError`` for a combination no backend runs here.
    """
    if backend not in ("auto",) + BACKENDS:
        raise ConfigError(f"generation.backend: expected auto, transformers or ctranslate2, got {backend!r}")
    if precision not in ("auto", "fp32", "bf16", "fp16", "int8"):
        raise ConfigError(f"generation.precision: expected auto, fp32, bf16 or int8, got {precision!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"generation.device: expected auto, cpu or cuda, got {device!r}")
    if device == "auto":
        device = "cuda" if _gpu_visible() else "cpu"
    if backend == "auto":
        if precision == "int8":
            backend = "ctranslate2"
        elif precision != "auto":
            backend = "transformers"
        else:
            backend, precision = _fastest(device)
    if backend == "ctranslate2" and not _installed("ctranslate2"):
        raise ConfigError("generation.backend ctranslate2: the ctranslate2 package is not installed "
                          "(pip install ctranslate2), or choose backend transformers")
    if precision == "auto":
        precision = {"ctranslate2": "int8"}.get(backend, "bf16" if device == "cuda" or _cpu_has_bf16() else "fp32")
    supported = PRECISIONS[(backend, device)]
    if precision not in supported:
        raise ConfigError(f"generation.precision {precision}: backend {backend} on {device} runs "
                          f"{', '.join(supported)}")
    return backend, precision, device


def _fastest(device: str) -> tuple[str, str]:
    """The backend and precision "auto" means on this kind of device (the module docstring
    gives the measurements behind it)."""
    if device == "cpu" and _installed("ctranslate2"):
        return "ctranslate2", "int8"
    return "transformers", "bf16" if device == "cuda" or _cpu_has_bf16() else "fp32"


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


@functools.cache
def _gpu_visible() -> bool:
    """A CUDA GPU is usable; asks ctranslate2 when it is installed, which is cheaper than torch."""
    if _installed("ctranslate2"):
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    if _installed("torch"):
        import torch

        return torch.cuda.is_available()
    return False


@functools.cache
def _cpu_has_bf16() -> bool:
    """The CPU computes bf16 natively (AMX or AVX512-BF16); elsewhere bf16 is emulated and slow."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return "amx_bf16" in flags or "avx512_bf16" in flags


# --- loading ---------------------------------------------------------------------------

_models: dict = {}
_models_lock = threading.Lock()


def load(model_dir, dtype=None, *, backend: str = "auto", precision: str = "auto", device: str = "auto") -> Model:
    """The model in ``model_dir`` (or in its ``best_model/``), loaded once per process.

    ``backend``, ``precision`` and ``device`` are the config's ``generation`` keys ("auto"
    by default: see ``choose``). ``dtype`` ("fp32", "bf16" or a torch dtype) is the older
    way to ask for the transformers backend in that precision. The same directory in
    another backend, precision or device is another model. Raises ``ModelError`` naming
    the path and what is missing, ``ConfigError`` for settings no backend runs here.
    """
    directory, shown = _model_directory(Path(model_dir), str(model_dir))
    if dtype is not None:
        precision = _precision_of_dtype(dtype)
        backend = "transformers" if backend == "auto" else backend
    backend, precision, device = choose(backend, precision, device)
    key = (directory.resolve(), backend, precision, device)
    # one lock for all loads: loading is rare, and two bots naming one model must not load it twice
    with _models_lock:
        model = _models.get(key)
        if model is None:
            _check_model_type(directory, shown)
            started = time.perf_counter()
            if backend == "ctranslate2":
                from shared import ct2

                model = ct2.load(directory, shown, precision, device)
            else:
                model = _load_transformers(directory, shown, precision, device)
            _models[key] = model
            log.info("loaded %s (%s %s on %s, context %d) in %.1fs", shown, backend, precision, device,
                     model.n_positions, time.perf_counter() - started)
    return model


def model_directory(model_dir) -> Path:
    """The folder holding a GPT-2 model's files: ``model_dir`` or its ``best_model/``.

    Raises ``ModelError`` with one line naming the path and what is missing or wrong.
    """
    directory, shown = _model_directory(Path(model_dir), str(model_dir))
    _check_model_type(directory, shown)
    return directory


def _model_directory(path: Path, shown: str) -> tuple[Path, str]:
    """The directory holding the model files, and how to name it; ModelError if incomplete."""
    if not path.exists():
        raise ModelError(f"{shown}: no such directory — {EXPECTED_LAYOUT}")
    if not path.is_dir():
        raise ModelError(f"{shown}: not a directory — {EXPECTED_LAYOUT}")
    if not (path / "config.json").exists() and (path / "best_model").is_dir():
        # a simpletransformers run folder (SubSimGPT2Interactive's outputs/)
        path, shown = path / "best_model", f"{shown.rstrip('/')}/best_model"
    if not (path / "config.json").is_file():
        raise ModelError(f"{shown}: no config.json — {EXPECTED_LAYOUT}")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        raise ModelError(f"{shown}: no weights (model.safetensors or pytorch_model.bin) — {EXPECTED_LAYOUT}")
    has_vocab, has_merges = (path / "vocab.json").is_file(), (path / "merges.txt").is_file()
    if not (path / "tokenizer.json").is_file() and not (has_vocab and has_merges):
        missing = ("merges.txt (vocab.json alone is not a tokenizer)" if has_vocab
                   else "vocab.json (merges.txt alone is not a tokenizer)" if has_merges
                   else "tokenizer (vocab.json + merges.txt or tokenizer.json)")
        raise ModelError(f"{shown}: no {missing} — {EXPECTED_LAYOUT}")
    return path, shown


def _check_model_type(path: Path, shown: str) -> None:
    try:
        model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as exc:
        raise ModelError(f"{shown}: config.json is unreadable ({exc}) — {EXPECTED_LAYOUT}") from exc
    if model_type != "gpt2":
        raise ModelError(f"{shown}: config.json says model_type {model_type!r}, not 'gpt2' — {EXPECTED_LAYOUT}")


def _precision_of_dtype(dtype) -> str:
    names = {"fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16",
             "fp16": "fp16", "float16": "fp16"}
    name = str(dtype).removeprefix("torch.")
    if name in names:
        return names[name]
    raise ValueError(f"dtype must be fp32, bf16 or a torch dtype, not {dtype!r}")


def _load_transformers(path: Path, shown: str, precision: str, device: str) -> TransformersModel:
    import torch
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    try:
        tokenizer = GPT2TokenizerFast.from_pretrained(path, local_files_only=True)
        hf_model = GPT2LMHeadModel.from_pretrained(path, local_files_only=True, dtype=dtype)
    except Exception as exc:  # a corrupt file can fail in many ways; all mean "broken model"
        raise ModelError(f"{shown}: cannot load the model: {first_line(exc)}") from exc
    hf_model.to(device).eval()
    _fuse_gelu(hf_model)
    if len(tokenizer) > hf_model.config.vocab_size:
        raise ModelError(f"{shown}: the tokenizer has {len(tokenizer)} entries but the model only "
                         f"{hf_model.config.vocab_size} — tokenizer and weights do not belong together")
    return TransformersModel(path, hf_model, tokenizer, precision, device)


def _fuse_gelu(hf_model) -> None:
    """Run GPT-2's tanh GELU as one fused op instead of six element-wise passes.

    transformers' "gelu_new" is written out in Python (pow, mul, add, tanh...); torch's
    ``gelu(approximate="tanh")`` is the same function in one kernel (rounding aside):
    at batch 16 the six passes over the MLP's activations took a tenth of the step.
    """
    from transformers.activations import GELUTanh, NewGELUActivation

    for block in hf_model.transformer.h:
        if isinstance(block.mlp.act, NewGELUActivation):
            block.mlp.act = GELUTanh()


def first_line(exc: BaseException) -> str:
    """An exception's message on one line (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
