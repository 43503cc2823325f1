"""The PyTorch backend: GPT-2 through transformers, fp32 or bf16 on the CPU, any precision on a GPU.

How a batch is generated, and why (the module docstring of ``shared.generation`` says
when "auto" picks this backend):

- rows are left-padded so every row's next token sits in the last column; the attention
  mask hides the padding and position ids count only real tokens, so a padded row
  generates exactly what it would alone;
- the KV cache is preallocated for the longest row, because transformers' DynamicCache
  copies itself at every step;
- a row that has produced its stop marker, eos or its token budget is dropped from the
  batch and from the cache at once, so no compute is spent past the end of a reply;
- sampling uses transformers' own logits processors (repetition penalty, temperature,
  top-k, top-p), as ``model.generate`` would, except that top-p and the draw only see
  the top-k candidates (the rest have probability 0);
- transformers' GPT-2 GELU is swapped for torch's fused one (``_fuse_gelu``).
"""

from __future__ import annotations

import functools
from pathlib import Path

from shared.errors import ModelError, first_line
from shared.generation.model import GenerationStats, Model, Sampling, StopFlags


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


def load(path: Path, shown: str, precision: str, device: str) -> TransformersModel:
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
