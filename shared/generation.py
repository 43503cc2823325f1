"""Loading GPT-2 models and generating replies in batches on the CPU (transformers backend).

Features:

- ``load(path)`` reads a model directory as transformers or simpletransformers save it
  (config.json; model.safetensors or pytorch_model.bin; vocab.json + merges.txt and/or
  tokenizer.json), or a run folder holding ``best_model/``. Each model is loaded once per
  process and shared by every bot that names it. Broken directories raise ``ModelError``
  with one line naming the path and the missing piece. Nothing touches the network.
- ``Model.generate(prompts, sampling, n)`` returns ``n`` continuations per prompt, in input
  order. Each continuation is cut right after the first ``<|`` it produces (the opening of
  a closing tag such as ``<|eor|>``), or after ``<|endoftext|>``; the marker is kept so the
  caller can tell a closed reply from one that ran out of tokens.
- ``Model.last_stats`` tells what the last call cost: tokens, forward passes, rows, seconds.

Usage::

    from shared.generation import Sampling, load

    model = load("models/my-bot")                  # or a run folder with best_model/
    prompts = ["<|soss r/test|><|sot|>Hi<|eot|><|sost|>Hello<|eost|><|sor|>"]
    [[a, b]] = model.generate(prompts, Sampling(temperature=0.8, seed=1), n=2)
    closed = a.endswith("<|")                      # False when it ran out of tokens
    print(model.last_stats.tokens_per_second)

How a batch is generated, and why (this is where the bot spends its time):

- Rows are left-padded so every row's next token sits in the last column; the attention
  mask hides the padding and position ids count only real tokens, so a padded row
  generates exactly what it would alone. Prompts are sorted by length before batching
  to keep the padding small; the ``n`` candidates of a prompt share a batch.
- The KV cache means each step feeds one token per row; it is preallocated for the
  longest row, because transformers' DynamicCache copies itself at every step. A row
  that has produced its stop marker, eos or its token budget is dropped from the batch
  and from the cache at once, so no compute is spent past the end of a reply.
- The stop marker is found per token, not by decoding: each vocabulary entry is flagged
  once as "contains ``<|``", "ends with ``<``" and "starts with ``|``", so a ``<`` and a
  ``|`` in two consecutive tokens stop the row too.
- Sampling uses transformers' own logits processors (repetition penalty, temperature,
  top-k, top-p), as ``model.generate`` would, except that top-p and the draw only see
  the top-k candidates (the rest have probability 0). Temperature 0 means greedy.
- Prompt plus reply never exceed the model's context (``n_positions``): a prompt longer
  than the context minus the reply budget (max_new_tokens, at most half the context)
  loses its oldest tokens, with a warning.

CPU generation is memory-bandwidth bound at batch 1; batching is what makes it cheap
(see docs FACTS.md, "CPU generation"). Measured on the 2-core dev machine, GPT-2 124M
(random weights), 200-token prompts, 64 new tokens, fp32: batch 1 about 2.3 s/reply (as
transformers' generate), batch 16 about 0.5 s/reply (generate: 0.7); bf16 at batch 16
0.25 s/reply.
Calls on one model are serialised: two bots generating at once on the same cores would
only slow each other down.

torch and transformers are imported when a model is loaded, not when this module is,
so reading the config stays fast.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from shared.errors import ModelError

log = logging.getLogger(__name__)

STOP_MARKER = "<|"
ENDOFTEXT = "<|endoftext|>"

EXPECTED_LAYOUT = (
    "expected a GPT-2 model directory saved by transformers or simpletransformers "
    "(config.json, model.safetensors or pytorch_model.bin, vocab.json + merges.txt or tokenizer.json)"
)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin",
                 "model.safetensors.index.json", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class Sampling:
    """How continuations are sampled. The defaults are the product's (see shared.config).

    ``temperature`` 0 means greedy (always the likeliest token); ``top_k`` 0 and
    ``top_p`` 1 switch those filters off; ``repetition_penalty`` 1 is off. ``seed`` makes
    a call reproducible (same prompts, same batch size, same output).
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
    the prompt pass), where keeping them would cost rows x longest reply.
    """

    prompts: int = 0
    rows: int = 0                   # prompts x n
    batches: int = 0
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


class Model:
    """A loaded GPT-2 model and its tokenizer; get one with ``load``."""

    def __init__(self, path: Path, hf_model, tokenizer):
        self.path = path
        self.hf_model = hf_model
        self.tokenizer = tokenizer
        self.n_positions = int(hf_model.config.n_positions)
        self.eos_id = tokenizer.eos_token_id
        if self.eos_id is None:
            self.eos_id = hf_model.config.eos_token_id
        self.eos_text = tokenizer.decode([self.eos_id]) if self.eos_id is not None else ENDOFTEXT
        self.last_stats: Optional[GenerationStats] = None
        self._lock = threading.Lock()
        self._vocab_in_use = len(tokenizer)
        self._contains_marker, self._ends_lt, self._starts_bar = _stop_flags(
            tokenizer, hf_model.config.vocab_size)

    def __repr__(self):
        return f"<Model {self.path} n_positions={self.n_positions} dtype={self.hf_model.dtype}>"

    def generate(self, prompts: list[str], sampling: Optional[Sampling] = None, n: int = 1,
                 batch_size: int = 16, progress: bool = False) -> list[list[str]]:
        """``n`` continuations for each prompt, in input order.

        Each continuation is the generated text only, up to and including the first
        ``<|`` (or ``<|endoftext|>``); a row that never closes returns what it produced.
        ``batch_size`` counts rows, so a batch holds ``batch_size // n`` prompts (at least
        one: a prompt's candidates always share a batch). ``progress`` logs each batch.
        """
        import torch

        sampling = sampling or Sampling()
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        if sampling.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, not {sampling.max_new_tokens}")
        with self._lock, torch.inference_mode():
            started = time.perf_counter()
            stats = GenerationStats(prompts=len(prompts), rows=len(prompts) * n)
            encoded = [self._encode(prompt, sampling, stats) for prompt in prompts]
            # longest first: similar lengths share a batch, and the biggest batch fails first
            order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]), reverse=True)
            per_batch = max(1, batch_size // n)
            processors = _processors(sampling)
            generator = torch.Generator().manual_seed(sampling.seed) if sampling.seed is not None else None
            results: list[list[str]] = [[] for _ in prompts]
            for first in range(0, len(order), per_batch):
                items = order[first:first + per_batch]
                rows = [encoded[i] for i in items for _ in range(n)]
                texts = self._generate_batch(rows, sampling, processors, generator, stats)
                for k, i in enumerate(items):
                    results[i] = texts[k * n:(k + 1) * n]
                stats.batches += 1
                if progress:
                    log.info("generated batch %d/%d (%d rows)", stats.batches,
                             -(-len(order) // per_batch), len(rows))
            stats.seconds = time.perf_counter() - started
            self.last_stats = stats
        return results

    def loss(self, texts: list[str], batch_size: int = 2) -> list[float]:
        """Mean next-token cross-entropy (nats per token) of each text; exp() of it is perplexity.

        Texts longer than the context keep their first ``n_positions`` tokens; a text of
        fewer than two tokens has no next token to predict and gets NaN. Every position's
        logits are kept, so memory grows as batch_size x tokens x vocab (400 MB for two
        1024-token texts with GPT-2's vocab).
        """
        import torch

        losses = []
        with self._lock, torch.inference_mode():
            for first in range(0, len(texts), batch_size):
                chunk = [self._token_ids(t)[:self.n_positions] for t in texts[first:first + batch_size]]
                width = max(len(ids) for ids in chunk) if chunk else 0
                if width < 2:
                    losses.extend(float("nan") for _ in chunk)
                    continue
                ids = torch.full((len(chunk), width), self.eos_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, row_ids in enumerate(chunk):
                    ids[row, :len(row_ids)] = torch.tensor(row_ids)
                    mask[row, :len(row_ids)] = 1
                logits = self.hf_model(input_ids=ids, attention_mask=mask).logits.float()
                token_loss = torch.nn.functional.cross_entropy(
                    logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
                counted = mask[:, 1:].float()
                per_text = (token_loss * counted).sum(1) / counted.sum(1)
                losses.extend(per_text.tolist())
        return losses

    def _token_ids(self, text: str) -> list[int]:
        # the backend tokenizer skips transformers' "longer than model_max_length" warning:
        # truncation is ours to do
        return self.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids

    def _encode(self, prompt: str, sampling: Sampling, stats: GenerationStats) -> list[int]:
        """Token ids of ``prompt``, left-truncated so the reply budget fits the context."""
        ids = self._token_ids(prompt) or [self.eos_id]  # an empty prompt starts a new document
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

    def _generate_batch(self, rows, sampling, processors, generator, stats) -> list[str]:
        """Generate every row of one batch until each has stopped; the texts, row order."""
        import torch

        count = len(rows)
        lengths = torch.tensor([len(ids) for ids in rows])
        width = int(lengths.max())
        input_ids = torch.full((count, width), self.eos_id, dtype=torch.long)
        mask = torch.zeros((count, width), dtype=torch.long)
        for row, ids in enumerate(rows):
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            mask[row, width - len(ids):] = 1
        # positions count real tokens only, so a padded row sees what it would see alone
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        # the repetition penalty looks at every id it is given: fill the padding with a
        # token the row already has, so the pad id (eos) is not penalised in padded rows
        first_real = input_ids[torch.arange(count), width - lengths]
        history = torch.where(mask.bool(), input_ids, first_real[:, None])
        # each row may grow to the context; max_new_tokens bounds it too
        limits = (self.n_positions - lengths).clamp(max=sampling.max_new_tokens)

        # room for the longest row: rows never outgrow the buffer, so no step copies the cache
        cache = _preallocated_cache(self.hf_model.config.n_layer, width + int(limits.max()))
        logits = self._forward(input_ids, mask, positions, cache, stats)
        stats.padded_prompt_tokens += count * width
        next_position = positions[:, -1] + 1
        active = torch.arange(count)                 # batch row -> original row
        produced = torch.zeros(count, dtype=torch.long)
        after_lt = torch.zeros(count, dtype=torch.bool)  # previous token ended with "<"
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

    def _reply_text(self, ids: list[int], ended_by_eos: bool) -> str:
        """The decoded reply, cut right after its first "<|"; eos shows as <|endoftext|>."""
        if ended_by_eos:
            ids = ids[:-1]
        text = self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        cut = text.find(STOP_MARKER)
        if cut >= 0:
            return text[:cut + len(STOP_MARKER)]
        return text + self.eos_text if ended_by_eos else text


def _stop_flags(tokenizer, vocab_size: int):
    """Per vocabulary entry: contains "<|", ends with "<", starts with "|" (bool tensors)."""
    import torch

    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))],
                                   skip_special_tokens=False, clean_up_tokenization_spaces=False)
    texts += [""] * (vocab_size - len(texts))  # ids the tokenizer lacks never stop a row

    def flag(test):
        return torch.tensor([test(text) for text in texts], dtype=torch.bool)

    return (flag(lambda text: STOP_MARKER in text), flag(lambda text: text.endswith("<")),
            flag(lambda text: text.startswith("|")))


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


# --- loading ---------------------------------------------------------------------------

_models: dict = {}
_models_lock = threading.Lock()


def load(model_dir, dtype=None) -> Model:
    """The model in ``model_dir`` (or in its ``best_model/``), loaded once per process.

    ``dtype`` is "fp32" (default), "bf16" or a torch dtype; the same directory in another
    dtype is another model. Raises ``ModelError`` naming the path and what is missing.
    """
    directory, shown = _model_directory(Path(model_dir), str(model_dir))
    dtype_name = _dtype_name(dtype)
    key = (directory.resolve(), dtype_name)
    # one lock for all loads: loading is rare, and two bots naming one model must not load it twice
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = _load_uncached(directory, shown, dtype_name)
    return model


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


def _dtype_name(dtype) -> str:
    names = {None: "float32", "fp32": "float32", "float32": "float32",
             "bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16"}
    if dtype in names:
        return names[dtype]
    name = str(dtype).removeprefix("torch.")
    if name in names.values():
        return name
    raise ValueError(f"dtype must be fp32, bf16 or a torch dtype, not {dtype!r}")


def _load_uncached(path: Path, shown: str, dtype_name: str) -> Model:
    import torch
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    try:
        model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as exc:
        raise ModelError(f"{shown}: config.json is unreadable ({exc}) — {EXPECTED_LAYOUT}") from exc
    if model_type != "gpt2":
        raise ModelError(f"{shown}: config.json says model_type {model_type!r}, not 'gpt2' — {EXPECTED_LAYOUT}")
    started = time.perf_counter()
    try:
        tokenizer = GPT2TokenizerFast.from_pretrained(path, local_files_only=True)
        hf_model = GPT2LMHeadModel.from_pretrained(path, local_files_only=True,
                                                   dtype=getattr(torch, dtype_name))
    except Exception as exc:  # a corrupt file can fail in many ways; all mean "broken model"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{shown}: cannot load the model: {reason}") from exc
    hf_model.eval()
    if len(tokenizer) > hf_model.config.vocab_size:
        raise ModelError(f"{shown}: the tokenizer has {len(tokenizer)} entries but the model only "
                         f"{hf_model.config.vocab_size} — tokenizer and weights do not belong together")
    model = Model(path, hf_model, tokenizer)
    log.info("loaded %s (%s, context %d) in %.1fs", shown, dtype_name, model.n_positions,
             time.perf_counter() - started)
    return model
