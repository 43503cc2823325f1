"""The CTranslate2 backend of shared.generation: GPT-2 converted once, int8 on the CPU.

Features:

- ``converted(model_dir, "int8")`` returns the model converted for CTranslate2, cached
  beside it in ``<model_dir>/.ct2-int8/`` (or under ``~/.cache/ssi-bot/ct2/`` when the model
  directory is read-only), through shared.generation.conversion's cache (current while the
  source is unchanged, converted once under a lock, never half a model), as for OpenVINO.
- Converting imports torch and transformers (about 5 s and 1 GB for 124M, once). A process
  that has not imported torch runs it in a child (``python -m shared.generation.ct2 MODEL_DIR int8``)
  so that the bot's own process never loads torch: at run time the backend needs only
  ctranslate2, tokenizers and the converted files (130 MB of int8 weights for 124M).
- ``CTranslate2Model`` generates with the same contract as the transformers backend:
  replies cut right after the first ``<|`` (also when ``<`` and ``|`` are two tokens),
  eos shown as ``<|endoftext|>``, the same sampling settings, best-of-N as ``n`` rows per
  prompt, input order, the context limit. The stop rule runs in CTranslate2's per-token
  callback, which ends a row the step it closes.

Usage::

    from shared.generation import load
    model = load("models/my-bot", backend="ctranslate2")        # int8 on the CPU

    python -m shared.generation.ct2 models/my-bot int8                      # convert ahead of time

Where it differs from the transformers backend, and why:

- Repetition penalty: CTranslate2 penalises the tokens generated so far and the prompt's
  last token, not the rest of the prompt (transformers penalises the whole prompt). With
  the product's 1.008 that is a 0.8% logit difference on prompt tokens only.
- Randomness: sampling draws from CTranslate2's own generator, so a seed reproduces a
  call on this backend, not the transformers backend's replies. That generator lives in
  the worker thread and is seeded once, at its first draw, so a seeded call runs on a
  fresh ``ctranslate2.Generator`` (reloading the converted model: a fraction of a second);
  unseeded calls use the resident one. Seeds are for tests and benchmarks.
- Prompts of different lengths: CTranslate2 runs a batch's prompts together only up to
  the shortest one, then feeds the rest of each longer prompt one token per decode step,
  each step costing the whole batch. ``length_groups`` therefore splits a batch whose
  prompt lengths differ widely into calls of similar lengths, by a small cost model.
- int8 here means int8 weights with float32 activations and KV cache (CTranslate2's
  ``int8_float32``; ``int8_float16`` on a GPU). The quality guard (tests/test_backends.py,
  ``python -m jobs.bench --quality``) keeps its perplexity within 2% of fp32.

What bounds its speed and memory (profiles of ``python -m jobs.bench`` rows) is written up
in docs/generation.md; the numbers are the README's Performance table.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import random
import shutil
import sys
import weakref
from pathlib import Path

from shared.errors import ModelError, first_line
from shared.files import replace_directory
from shared.generation.conversion import Cache
from shared.generation.model import GenerationStats, Model, Sampling

log = logging.getLogger(__name__)

CANNOT_CONVERT = "cannot load the model (converting it for CTranslate2)"
CACHE = Cache("ct2", "CTranslate2", prefix=".ct2-", meta_file="ssi-bot-ct2.json", runtime="ctranslate2",
              converters=("ctranslate2", "transformers", "torch"), format=1, cannot_convert=CANNOT_CONVERT)
CACHE_PREFIX, META_FILE = CACHE.prefix, CACHE.meta_file
COMPUTE = {
    ("cpu", "int8"): ("int8", "int8"),
    ("cpu", "fp32"): ("float32", "float32"),
    ("cuda", "int8"): ("int8_float16", "int8_float16"),
    ("cuda", "fp16"): ("float16", "float16"),
    ("cuda", "bf16"): ("bfloat16", "bfloat16"),
    ("cuda", "fp32"): ("float32", "float32"),
}
PLACEHOLDER = "<ssi-bot-unused-{}>"  # vocabulary rows the tokenizer does not have

# The cost model of length_groups, in milliseconds, measured with GPT-2 124M int8 on the
# 2-core dev machine (the ratios matter, not the values): a decode step costs a fixed
# part (reading the weights) plus a part per row (its KV cache and activations); a prompt
# token in the prompt pass costs far less than a step.
STEP_FIXED_MS = 8.0
STEP_PER_ROW_MS = 2.5
PROMPT_TOKEN_MS = 0.35
# Rows per call: CTranslate2 copies the whole KV cache at every step, and past 16 rows of
# 264 tokens that copy outgrows what the CPU's caches absorb: in jobs.bench, 32 rows in one
# call made fewer tokens per second than 16 and needed far more memory.
MAX_ROWS_PER_CALL = 16


# --- conversion and its cache ----------------------------------------------------------

def converted(model_dir: Path, quantization: str = "int8", shown: str = "") -> Path:
    """The CTranslate2 conversion of ``model_dir`` (a transformers GPT-2 directory), converted
    now when no cache is current; ``ModelError`` when it cannot be (shared.generation.conversion)."""
    return CACHE.converted(Path(model_dir), quantization, shown or str(model_dir), convert)


def source_fingerprint(model_dir: Path, quantization: str) -> str:
    return CACHE.fingerprint(model_dir, quantization)


def convert(model_dir: Path, target: Path, quantization: str, fingerprint: str) -> None:
    """Convert ``model_dir`` into ``target`` now, in this process (imports torch)."""
    from ctranslate2.converters import TransformersConverter
    from ctranslate2.converters import transformers as ct2_transformers
    from transformers import AutoConfig, GPT2TokenizerFast

    tokenizer = GPT2TokenizerFast.from_pretrained(model_dir, local_files_only=True)
    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    placeholders = [PLACEHOLDER.format(i) for i in range(max(0, config.vocab_size - len(tokenizer)))]
    if len(tokenizer) > config.vocab_size:
        raise ModelError(f"{model_dir}: the tokenizer has {len(tokenizer)} entries but the model only "
                         f"{config.vocab_size} — tokenizer and weights do not belong together")

    class GPT2Loader(ct2_transformers.GPT2Loader):
        # a vocabulary shorter than the embedding (a 124M model with a smaller BPE) would
        # not convert: name the extra rows, and generation never picks them
        def get_vocabulary(self, model, tokenizer):
            return super().get_vocabulary(model, tokenizer) + placeholders

    temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    loaders = ct2_transformers._MODEL_LOADERS
    original = loaders["GPT2Config"]
    loaders["GPT2Config"] = GPT2Loader()
    try:
        TransformersConverter(str(model_dir)).convert(str(temporary), quantization=quantization, force=True)
    except Exception as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        raise ModelError(f"{model_dir}: {CANNOT_CONVERT}: {first_line(exc)}") from exc
    finally:
        loaders["GPT2Config"] = original
    # the exact tokenizer transformers uses (added tokens included), readable without transformers
    tokenizer.backend_tokenizer.save(str(temporary / "tokenizer.json"))
    eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else config.eos_token_id
    meta = {"fingerprint": fingerprint, "content": CACHE.content_digest(model_dir, quantization),
            "source": str(model_dir.resolve()), "quantization": quantization,
            "n_positions": config.n_positions, "eos_id": eos_id, "placeholders": placeholders}
    (temporary / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    replace_directory(temporary, target)


# --- the model -------------------------------------------------------------------------

_live_models: "weakref.WeakSet[CTranslate2Model]" = weakref.WeakSet()


@atexit.register
def _release_generators() -> None:
    """Destroy every Generator before the interpreter tears down: one still alive at that
    point can abort the process ("terminate called without an active exception")."""
    for model in list(_live_models):
        model.generator = None


def load(directory: Path, shown: str, precision: str, device: str) -> "CTranslate2Model":
    """A CTranslate2Model for a checked model directory (``generation.load`` calls this)."""
    quantization, compute_type = COMPUTE[(device, precision)]
    return CTranslate2Model(directory, converted(directory, quantization, shown), precision, device,
                            compute_type, shown)


class CTranslate2Model(Model):
    """A GPT-2 run by CTranslate2 (see the module docstring); ``generator`` is its
    ``ctranslate2.Generator``, ``converted_dir`` the converted model it loaded."""

    backend = "ctranslate2"

    def __init__(self, path: Path, converted_dir: Path, precision: str, device: str, compute_type: str,
                 shown: str = ""):
        from tokenizers import Tokenizer

        self.converted_dir = converted_dir
        self._compute_type = compute_type
        # one thread per core the process may use: more only fight over memory bandwidth
        self._threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        try:
            meta = json.loads((converted_dir / META_FILE).read_text(encoding="utf-8"))
            self._tokens = json.loads((converted_dir / "vocabulary.json").read_text(encoding="utf-8"))
            text_tokenizer = Tokenizer.from_file(str(converted_dir / "tokenizer.json"))
            self.generator = self._new_generator(device)
        except Exception as exc:
            raise ModelError(f"{shown or path}: cannot load the CTranslate2 conversion in {converted_dir}: "
                             f"{first_line(exc)}") from exc
        self._suppressed = [[token] for token in meta["placeholders"]] or None
        _live_models.add(self)
        super().__init__(path, text_tokenizer, n_positions=meta["n_positions"], eos_id=meta["eos_id"],
                         vocab_size=len(self._tokens), precision=precision, device=device)

    def _new_generator(self, device=None):
        import ctranslate2

        return ctranslate2.Generator(str(self.converted_dir), device=device or self.device,
                                     compute_type=self._compute_type, intra_threads=self._threads,
                                     inter_threads=1)

    def loss(self, texts: list[str], batch_size: int = 2) -> list[float]:
        """See ``Model.loss``; CTranslate2 scores the tokens with its own log-softmax."""
        losses = []
        with self._lock:
            for first in range(0, len(texts), batch_size):
                chunk = [self.encode(t)[:self.n_positions] for t in texts[first:first + batch_size]]
                scored = [ids for ids in chunk if len(ids) >= 2]
                results = iter(self.generator.score_batch([self._token_strings(ids) for ids in scored],
                                                          max_input_length=0) if scored else [])
                for ids in chunk:
                    if len(ids) < 2:
                        losses.append(float("nan"))
                        continue
                    log_probs = next(results).log_probs
                    losses.append(-sum(log_probs) / len(log_probs))
        return losses

    def _token_strings(self, ids: list[int]) -> list[str]:
        return [self._tokens[i] for i in ids]

    @contextlib.contextmanager
    def _call(self, sampling: Sampling):
        if sampling.seed is None:
            yield self.generator
            return
        import ctranslate2

        # the worker thread's random generator is seeded at its first draw, from the
        # global seed: a new Generator (new thread) after set_random_seed starts from the seed
        ctranslate2.set_random_seed(sampling.seed)
        generator = self._new_generator()
        try:
            yield generator
        finally:
            del generator
            # threads started later (other models) must not inherit this seed
            ctranslate2.set_random_seed(random.SystemRandom().randrange(2 ** 32))

    def _generate_batch(self, rows, sampling, generator, stats) -> list[str]:
        budget = min(sampling.max_new_tokens, self.n_positions // 2)
        texts: list[str] = []
        for start, end in length_groups([len(ids) for ids in rows], budget):
            texts += self._generate_group(rows[start:end], sampling, generator, stats)
        return texts

    def _generate_group(self, rows, sampling, generator, stats: GenerationStats) -> list[str]:
        """One generate_batch call: the reply text of each row, in row order."""
        shortest = min(len(ids) for ids in rows)
        # CTranslate2 reports each longer prompt's remaining tokens through the callback
        # as if generated: the first prefix[b] steps of row b are still its prompt
        prefix = [len(ids) - shortest for ids in rows]
        limits = [self._reply_limit(len(ids), sampling) for ids in rows]
        generated: list[list[int]] = [[] for _ in rows]
        ended_by_eos = [False] * len(rows)
        after_lt = [False] * len(rows)          # the row's previous token ended with "<"
        contains_marker, ends_lt, starts_bar = self._flags.contains_marker, self._flags.ends_lt, self._flags.starts_bar
        eos, last_step = self.eos_id, [0]

        def on_token(step) -> bool:
            """Called by CTranslate2 for each row's token; True ends that row."""
            row, token = step.batch_id, step.token_id
            last_step[0] = max(last_step[0], step.step)
            if step.step < prefix[row]:
                return False
            out = generated[row]
            out.append(token)
            if token == eos:
                ended_by_eos[row] = True
                stats.eos_rows += 1
                return True
            if contains_marker[token] or (after_lt[row] and starts_bar[token]):
                stats.closed_rows += 1
                return True
            if len(out) >= limits[row]:
                stats.cut_rows += 1
                return True
            after_lt[row] = ends_lt[token]
            return False

        greedy = sampling.temperature <= 0
        generator.generate_batch(
            [self._token_strings(ids) for ids in rows],
            max_length=max(p + limit for p, limit in zip(prefix, limits)),
            include_prompt_in_result=False,
            end_token=[],  # every stop is the callback's: eos, the marker, the row's limit
            callback=on_token,
            sampling_topk=1 if greedy else max(0, sampling.top_k),
            sampling_topp=1.0 if greedy else sampling.top_p,
            sampling_temperature=1.0 if greedy else sampling.temperature,
            repetition_penalty=sampling.repetition_penalty,
            suppress_sequences=self._suppressed,
        )
        produced = sum(len(out) for out in generated)
        stats.new_tokens += produced
        stats.backend_calls += 1
        stats.padded_prompt_tokens += len(rows) * shortest
        stats.forward_calls += 1 + last_step[0]
        stats.decode_rows += produced + sum(prefix) - len(rows)
        return [self._reply_text(out, eos_end) for out, eos_end in zip(generated, ended_by_eos)]


def length_groups(lengths: list[int], reply_budget: int) -> list[tuple[int, int]]:
    """Split rows sorted longest first into contiguous (start, end) groups, one call each.

    In one call every row waits for the longest prompt: the tokens beyond the shortest
    prompt are fed one decode step at a time, each step costing the whole group. The split
    minimises the estimated cost (STEP_*_MS, PROMPT_TOKEN_MS) over all contiguous splits of
    at most MAX_ROWS_PER_CALL rows: similar lengths share a group, and equal lengths (a
    prompt's candidates) only part where a group is full.
    """
    count = len(lengths)

    def cost(start, end):
        rows = end - start
        steps = lengths[start] - lengths[end - 1] + reply_budget
        return rows * lengths[end - 1] * PROMPT_TOKEN_MS + steps * (STEP_FIXED_MS + rows * STEP_PER_ROW_MS)

    best = [0.0] + [float("inf")] * count      # best[i]: the cheapest split of rows[:i]
    cut = [0] * (count + 1)
    for end in range(1, count + 1):
        for start in range(max(0, end - MAX_ROWS_PER_CALL), end):
            total = best[start] + cost(start, end)
            if total < best[end]:
                best[end], cut[end] = total, start
    groups, end = [], count
    while end > 0:
        groups.append((cut[end], end))
        end = cut[end]
    return groups[::-1]


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m shared.generation.ct2",
                                     description="Convert a GPT-2 model directory for CTranslate2 "
                                                 "(cached beside it; does nothing when up to date).")
    parser.add_argument("model_dir", help="a transformers or simpletransformers GPT-2 directory")
    parser.add_argument("quantization", nargs="?", default="int8",
                        help="int8 (default), float32, int8_float16, float16 or bfloat16")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model_dir = Path(args.model_dir)
    try:
        if args.in_process:  # the child of converted(): its caller holds the lock
            import torch  # noqa: F401  (converting imports it anyway)

            convert(model_dir, CACHE.target(model_dir, args.quantization), args.quantization,
                    source_fingerprint(model_dir, args.quantization))
        else:
            print(converted(model_dir, args.quantization))
    except ModelError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
