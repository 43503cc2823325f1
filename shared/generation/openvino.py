"""The OpenVINO backend of shared.generation: GPT-2 converted once, int8 weights, on the CPU.

Features:

- ``converted(model_dir, "int8")`` returns the model converted for OpenVINO GenAI, cached
  beside it in ``<model_dir>/.ov-int8/`` (or under ``~/.cache/ssi-bot/openvino/`` when the
  model directory is read-only). A conversion exports the model with optimum-intel
  (a stateful IR: the KV cache lives inside the model), compresses its weights with NNCF
  (int8: per output channel, asymmetric; int4: group-wise, embeddings kept int8), saves the
  tokenizer as tokenizer.json and writes last a file recording what it was made from.
- The cache (current when its source is unchanged, converted once under a lock, a note left
  when a model cannot be converted) is shared.generation.conversion's, as for CTranslate2.
- Converting imports torch, transformers, optimum-intel and NNCF (seconds, about 1 GB, once).
  A process that has not imported torch converts in a child
  (``python -m shared.generation.openvino MODEL_DIR int8``): at run time the backend needs only
  openvino, openvino-genai, tokenizers, numpy and the converted files, so a
  bot's process (and image) needs no torch at all.
- ``OpenVINOModel`` generates with the same contract as the other backends: replies cut right
  after the first ``<|`` (also when ``<`` and ``|`` are two tokens), eos shown as
  ``<|endoftext|>``, the same sampling settings (repetition penalty over prompt and reply,
  then top-k, temperature and top-p within the top k, as transformers orders them), best-of-N,
  input order and the context bound.

Usage::

    from shared.generation import load
    model = load("models/my-bot", backend="openvino")            # int8 on the CPU

    python -m shared.generation.openvino models/my-bot int8       # convert ahead of time (or int4, fp32)

How a batch runs, and why:

- GenAI's ``ContinuousBatchingPipeline`` takes one request per prompt with its own settings:
  no padding, each row's own reply limit (the context bound), and a finished row leaves the
  batch at once. A prompt's ``n`` candidates are one request with ``num_return_sequences``:
  the prompt is computed once and its KV cache shared by the candidates.
- The stop rule, per token: the engine ends a row at eos and at a token that contains ``<|``
  (GenAI's stop token ids: the usual ending), and after each engine step the new tokens are
  read in Python, where a ``|`` right after a ``<`` ends the row too (a ``<`` ending the
  prompt does not count, as on the other backends). GenAI's own multi-token rule, stop
  strings, decodes every row's last tokens at every step, which costs a large share of a
  batch's time (docs/generation.md). The engine can only stop a whole request, so when one
  candidate of a prompt closes that way, the request is stopped and its open candidates go
  on as requests of their own (``_run``). The returned ids are checked again with the
  model's StopFlags, so a reply is cut at the rule whatever the engine did.
- Randomness: each request gets its own seed, drawn from the call's seed (reproducible on
  this backend) or from the system (GenAI's default seed is fixed: unseeded calls would
  otherwise repeat themselves).
- Embedding rows beyond the tokenizer (a 124M model with a smaller BPE) are cut from the
  logits at conversion, so they are never generated.

Where it differs from the transformers backend:

- "int8" means int8 weights (one scale per output channel), f32 activations quantized to
  int8 on the fly for the matrix products (``PRECISION_PROPERTIES``) and a u8 KV cache;
  "int4" the same with int4 weights in groups; "fp32" computes in f32 throughout. The
  quality guard (tests/test_backends.py, ``python -m jobs.bench --quality``) keeps int8's
  perplexity within 1% of transformers fp32.
- The tuning (``PROPERTIES``, ``SCHEDULER``) and what bounds its speed are in
  docs/generation.md; the numbers are the README's Performance table.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import random
import shutil
import sys
from pathlib import Path

from shared.errors import ModelError, first_line
from shared.files import replace_directory
from shared.generation.conversion import Cache, version
from shared.generation.model import GenerationStats, Model, Sampling, StopFlags

log = logging.getLogger(__name__)

PRECISIONS = ("int8", "int4", "fp32")
CANNOT_CONVERT = "cannot load the model (converting it for OpenVINO)"
# the packages whose versions decide whether a conversion fails or what it writes
CONVERTER_PACKAGES = ("openvino", "optimum-intel", "nncf", "transformers", "torch")
CACHE = Cache("openvino", "OpenVINO", prefix=".ov-", meta_file="ssi-bot-openvino.json", runtime="openvino",
              converters=CONVERTER_PACKAGES, format=1, cannot_convert=CANNOT_CONVERT)
CACHE_PREFIX, META_FILE = CACHE.prefix, CACHE.meta_file
# int4 weights: groups of this many input channels share a scale (NNCF's default for LLMs)
INT4_GROUP_SIZE = 128

# --- the tuning (docs/generation.md says what each knob did in jobs.bench) -------------------
# CPU plugin properties for every precision; the thread count is the cores this process may
# use. ``python -m jobs.bench --openvino KEY=VALUE`` measures another value.
PROPERTIES = {
    # the KV cache in u8 (per-token scales): half of f16's bytes to hold and to read each step
    "KV_CACHE_PRECISION": "u8",
    # activations in f32 even where the CPU has bf16 (AMX): its int8-weight kernels for a
    # few rows (every decode step) are faster in f32; bf16 wins only at large batches
    "INFERENCE_PRECISION_HINT": "f32",
}
# ... and per precision, over PROPERTIES. int8: activations quantized to int8 on the fly in
# groups of 256 channels (the plugin's default is 32) so the int8 x int8 kernels run with
# fewer scales; int4's kernels want the default. fp32: exact, nothing quantized.
PRECISION_PROPERTIES = {
    "int8": {"DYNAMIC_QUANTIZATION_GROUP_SIZE": 256},
    "int4": {},
    "fp32": {"KV_CACHE_PRECISION": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0},
}
# GenAI's SchedulerConfig fields: KV-cache blocks allocated as rows need them (cache_size 0),
# prompts computed in chunks of at most max_num_batched_tokens tokens per step, no prefix cache
# (a bot's prompts rarely share a prefix, and cached blocks would only hold memory).
SCHEDULER = {
    "cache_size": 0,
    "max_num_batched_tokens": 256,
    "enable_prefix_caching": False,
}


# --- conversion and its cache ----------------------------------------------------------------

def converted(model_dir: Path, precision: str = "int8", shown: str = "") -> Path:
    """The OpenVINO conversion of ``model_dir`` (a transformers GPT-2 directory), converted
    now when no cache is current; ``ModelError`` when it cannot be (shared.generation.conversion)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    return CACHE.converted(Path(model_dir), precision, shown or str(model_dir), convert)


def source_fingerprint(model_dir: Path, precision: str) -> str:
    return CACHE.fingerprint(model_dir, precision)


def convert(model_dir: Path, target: Path, precision: str, fingerprint: str) -> None:
    """Convert ``model_dir`` into ``target`` now, in this process (imports torch)."""
    try:
        import openvino as ov
        from optimum.exporters.openvino import main_export
        from optimum.intel import OVConfig
        from transformers import AutoConfig, GPT2TokenizerFast
    except ImportError as exc:
        raise ModelError(f"{model_dir}: {CANNOT_CONVERT}: {exc.name or exc} is not installed "
                         f"(pip install --no-deps optimum-intel==2.2.0; see pip.req)") from exc

    temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        tokenizer = GPT2TokenizerFast.from_pretrained(model_dir, local_files_only=True)
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
        if len(tokenizer) > config.vocab_size:
            raise ModelError(f"{model_dir}: the tokenizer has {len(tokenizer)} entries but the model only "
                             f"{config.vocab_size} — tokenizer and weights do not belong together")
        digest = CACHE.content_digest(model_dir, precision)
        main_export(str(model_dir), temporary, task="text-generation-with-past", local_files_only=True,
                    ov_config=OVConfig(dtype="fp32"), convert_tokenizer=False, stateful=True)
        xml = temporary / "openvino_model.xml"
        model = ov.Core().read_model(xml)
        model = _compress(model, precision, config.n_embd)
        if len(tokenizer) < config.vocab_size:
            _cut_logits(model, len(tokenizer))
        final = temporary / "openvino_model.final.xml"
        ov.save_model(model, final, compress_to_fp16=False)
        del model
        os.replace(final, xml)
        os.replace(final.with_suffix(".bin"), xml.with_suffix(".bin"))
        # the exact tokenizer transformers uses (added tokens included), readable by `tokenizers`
        # alone; GenAI gets token ids, so it needs no tokenizer of its own (openvino_tokenizers)
        tokenizer.backend_tokenizer.save(str(temporary / "tokenizer.json"))
    except ModelError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    except Exception as exc:  # a model the exporter cannot handle fails in many ways: all mean "cannot convert"
        shutil.rmtree(temporary, ignore_errors=True)
        raise ModelError(f"{model_dir}: {CANNOT_CONVERT}: {first_line(exc)}") from exc
    eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else config.eos_token_id
    meta = {"fingerprint": fingerprint, "content": digest, "source": str(model_dir.resolve()),
            "precision": precision, "n_positions": config.n_positions, "eos_id": eos_id,
            "vocab_size": config.vocab_size, "tokenizer_size": len(tokenizer),
            "converted_with": {p: version(p) for p in CONVERTER_PACKAGES}}
    (temporary / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    replace_directory(temporary, target)


def _compress(model, precision: str, hidden: int):
    """int8: per output channel (one scale and zero point per row); int4: groups of
    INT4_GROUP_SIZE input channels (fewer where the layer is narrower), embeddings and the
    output layer in int8, as NNCF does by default; fp32: untouched."""
    if precision == "fp32":
        return model
    import nncf

    if precision == "int8":
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    from nncf.quantization.advanced_parameters import AdvancedCompressionParameters, GroupSizeFallbackMode

    group = next(g for g in (INT4_GROUP_SIZE, 64, 32, 16) if hidden % g == 0 or g == 16)
    return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT4_ASYM, group_size=group, ratio=1.0,
                                 advanced_parameters=AdvancedCompressionParameters(
                                     group_size_fallback_mode=GroupSizeFallbackMode.ADJUST))


def _cut_logits(model, size: int) -> None:
    """Keep the first ``size`` logits: rows the tokenizer cannot decode are never generated."""
    import numpy as np
    from openvino import opset13 as ops

    result = model.outputs[0].get_node()
    logits = result.input_value(0)
    kept = ops.slice(logits, np.array([0], np.int64), np.array([size], np.int64), np.array([1], np.int64),
                     np.array([2], np.int64))
    names = logits.get_tensor().get_names()
    logits.get_tensor().set_names(set())
    kept.output(0).get_tensor().set_names(names)
    result.input(0).replace_source_output(kept.output(0))
    model.validate_nodes_and_infer_types()


# --- the model ---------------------------------------------------------------------------------

def load(directory: Path, shown: str, precision: str, device: str) -> "OpenVINOModel":
    """An OpenVINOModel for a checked model directory (``generation.load`` calls this)."""
    if device != "cpu":
        raise ModelError(f"{shown}: the OpenVINO backend runs on the CPU only")
    return OpenVINOModel(directory, converted(directory, precision, shown), precision, shown)


class OpenVINOModel(Model):
    """A GPT-2 run by OpenVINO GenAI (see the module docstring); ``pipeline`` is its
    ``ContinuousBatchingPipeline``, ``converted_dir`` the converted model it loaded."""

    backend = "openvino"

    def __init__(self, path: Path, converted_dir: Path, precision: str, shown: str = ""):
        from tokenizers import Tokenizer

        self.converted_dir = converted_dir
        self._threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.properties = {"INFERENCE_NUM_THREADS": self._threads, **PROPERTIES, **PRECISION_PROPERTIES[precision]}
        self._scorer = None
        self._request_ids = itertools.count()
        try:
            import openvino_genai

            meta = CACHE.meta(converted_dir)
            text_tokenizer = Tokenizer.from_file(str(converted_dir / "tokenizer.json"))
            self.pipeline = openvino_genai.ContinuousBatchingPipeline(
                str(converted_dir), scheduler_config(), "CPU", self.properties)
        except Exception as exc:
            raise ModelError(f"{shown or path}: cannot load the OpenVINO conversion in {converted_dir}: "
                             f"{first_line(exc)}") from exc
        super().__init__(path, text_tokenizer, n_positions=meta["n_positions"], eos_id=meta["eos_id"],
                         vocab_size=meta["vocab_size"], precision=precision, device="cpu")
        self._release_file_weights()

    def set_stop_flags(self, flags: StopFlags) -> None:
        """The engine stops a row at eos and at a token containing ``<|``; the split
        ``<`` + ``|`` is watched in ``_run`` (see the module docstring)."""
        super().set_stop_flags(flags)
        self._stop_ids = {i for i, hit in enumerate(flags.contains_marker) if hit and i < self._vocab_in_use}
        self._splits = any(flags.ends_lt) and any(flags.starts_bar)

    def _release_file_weights(self) -> None:
        """Drop this process's pages of the converted weights once the CPU plugin has made
        its own copy of them.

        OpenVINO maps openvino_model.bin and, at the first inference, repacks every matrix
        into its kernels' layout in memory of its own; the mapped file is hardly read after
        that but its pages stay in the process (a second copy of the weights in its RSS).
        One token is generated now to trigger the repacking, then the read-only mapping is
        released with madvise(MADV_DONTNEED): a page read again later comes back from the
        page cache. Linux only; elsewhere, or if anything is unexpected, nothing is done.
        """
        if not sys.platform.startswith("linux"):
            return
        import ctypes

        import numpy as np
        import openvino as ov
        import openvino_genai

        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = 1
        self.pipeline.generate([ov.Tensor(np.array([[self.eos_id or 0]], dtype=np.int64))], [config])
        weights = str((self.converted_dir / "openvino_model.bin").resolve())
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            with open("/proc/self/maps", encoding="utf-8") as maps:
                regions = [line.split() for line in maps if line.rstrip().endswith(weights)]
        except (OSError, AttributeError) as exc:
            log.debug("%s: weights kept mapped (%s)", self.path, exc)
            return
        for region in regions:
            if not region[1].startswith("r--"):  # read-only: none of its pages can hold a change
                continue
            start, end = (int(x, 16) for x in region[0].split("-"))
            if libc.madvise(start, end - start, 4) != 0:  # MADV_DONTNEED
                log.debug("%s: madvise failed (errno %d)", self.path, ctypes.get_errno())

    # --- generation ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _call(self, sampling: Sampling):
        # GenAI seeds each request's generator with its rng_seed, and the default is a fixed
        # number: an unseeded call draws fresh seeds, a seeded one derives them from its seed
        yield random.Random(sampling.seed) if sampling.seed is not None else random.SystemRandom()

    def _generate_batch(self, rows, sampling, seeds, stats) -> list[str]:
        # equal neighbours are one prompt's candidates: one request, num_return_sequences
        requests: list[tuple[list[int], int]] = []
        for ids in rows:
            if requests and requests[-1][0] is ids:
                requests[-1] = (ids, requests[-1][1] + 1)
            else:
                requests.append((ids, 1))
        greedy = sampling.temperature <= 0
        try:
            replies = self._run(requests, sampling, seeds, stats, greedy)
        except Exception as exc:  # the engine's errors are C++ exceptions with long texts
            raise RuntimeError(f"{self.path}: OpenVINO generation failed: {first_line(exc)}") from exc
        texts: list[str] = []
        for (_, count), tokens in zip(requests, replies):
            for row in (tokens * count if greedy else tokens):  # greedy candidates are one reply
                texts.append(self._finish_row(row, stats))
                stats.new_tokens += len(row)
        stats.backend_calls += 1
        return texts

    def _run(self, requests, sampling, seeds, stats, greedy) -> list[list[list[int]]]:
        """Every row to its end, step by step: each request's rows' token ids.

        One engine request per prompt, its candidates as ``num_return_sequences``. The engine
        ends a row at eos and at a token containing ``<|`` (the usual ending); after each
        step the new tokens are read, and a ``|`` right after a ``<`` ends the row too. The
        engine stops a request, not one of its rows: when a row of a request whose other
        rows still run closes that way, the request is stopped and each unfinished row goes
        on as a request of its own, its tokens so far appended to the prompt (one prompt
        pass more, for a rare event: a model trained on tags writes ``<|`` as one token).
        """
        import numpy as np
        import openvino as ov
        import openvino_genai

        running, ignored = openvino_genai.GenerationStatus.RUNNING, openvino_genai.GenerationStatus.IGNORED
        not_finished = openvino_genai.GenerationFinishReason.NONE
        ends_lt, starts_bar, watch = self._flags.ends_lt, self._flags.starts_bar, self._splits
        replies = [[[] for _ in range(1 if greedy else count)] for _, count in requests]
        # an engine request: its handle, the rows it feeds (request, row), its engine sequence ids -> row slot
        live: list[dict] = []

        def submit(prompt, rows, seed):
            limit = self._reply_limit(len(prompt), sampling)
            config = self._config(sampling, limit, len(rows), seed)
            handle = self.pipeline.add_request(next(self._request_ids), ov.Tensor(np.array([prompt], dtype=np.int64)),
                                               config)
            live.append({"handle": handle, "rows": rows, "prompt": prompt, "slots": {}, "ended": set()})
            stats.padded_prompt_tokens += len(prompt)  # no padding; a prompt's candidates share its pass

        for r, (ids, _) in enumerate(requests):
            submit(ids, [(r, k) for k in range(len(replies[r]))], seeds.randrange(1, 2 ** 31))
        active = list(live)
        try:
            while active:
                self.pipeline.step()
                stats.forward_calls += 1
                for request in list(active):
                    handle, split = request["handle"], False
                    if handle.can_read():
                        for sequence, output in sorted(handle.read().items()):
                            slot = request["slots"].setdefault(sequence, len(request["slots"]))
                            tokens = replies[request["rows"][slot][0]][request["rows"][slot][1]]
                            for token in output.generated_ids:
                                if sequence in request["ended"]:
                                    break
                                if watch and tokens and ends_lt[tokens[-1]] and starts_bar[token]:
                                    request["ended"].add(sequence)
                                    split = True
                                tokens.append(token)
                                stats.decode_rows += 1
                            if output.finish_reason != not_finished:
                                request["ended"].add(sequence)
                    status = handle.get_status()
                    if status == ignored:
                        raise RuntimeError("the engine dropped a request (out of KV-cache memory)")
                    if status == running and split and len(request["ended"]) < len(request["rows"]):
                        handle.stop()      # its open rows go on alone
                        ended_slots = {request["slots"][sequence] for sequence in request["ended"]}
                        for slot, (r, k) in enumerate(request["rows"]):
                            if slot not in ended_slots:
                                submit(requests[r][0] + replies[r][k], [(r, k)], seeds.randrange(1, 2 ** 31))
                                active.append(live[-1])
                        active.remove(request)
                    elif status == running and len(request["ended"]) >= len(request["rows"]):
                        handle.stop()
                    elif status != running:
                        active.remove(request)
        except BaseException:
            for request in live:   # nothing of this call may run on in the next call's steps
                request["handle"].cancel()
            while self.pipeline.has_non_finished_requests():
                self.pipeline.step()
            raise
        stats.decode_rows -= sum(len(r["slots"]) for r in live)  # each sequence's first token: its prompt pass
        return replies

    def _finish_row(self, tokens: list[int], stats: GenerationStats) -> str:
        """One row's reply text, the stop rule applied to its ids; counts how it ended."""
        flags = self._flags
        after_lt = False
        for position, token in enumerate(tokens):
            if token == self.eos_id:
                stats.eos_rows += 1
                return self._reply_text(tokens[:position + 1], True)
            if flags.contains_marker[token] or (after_lt and flags.starts_bar[token]):
                stats.closed_rows += 1
                return self._reply_text(tokens[:position + 1], False)
            after_lt = flags.ends_lt[token]
        stats.cut_rows += 1
        return self._reply_text(tokens, False)

    def _config(self, sampling: Sampling, limit: int, count: int, seed: int):
        import openvino_genai

        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = limit
        config.eos_token_id = self.eos_id
        config.stop_token_ids = self._stop_ids | {self.eos_id}
        config.repetition_penalty = sampling.repetition_penalty
        if sampling.temperature > 0:
            config.do_sample = True
            config.temperature = sampling.temperature
            if sampling.top_k > 0:
                config.top_k = sampling.top_k
            config.top_p = sampling.top_p
            config.num_return_sequences = count
            config.rng_seed = seed
        return config

    # --- loss ---------------------------------------------------------------------------

    def loss(self, texts: list[str], batch_size: int = 2) -> list[float]:
        """See ``Model.loss``. The converted model is compiled a second time, once, for this:
        it returns the logits of every position, where generation keeps only the last."""
        import numpy as np

        losses = []
        with self._lock:
            request = self._score_request()
            for first in range(0, len(texts), batch_size):
                chunk = [self.encode(t)[:self.n_positions] for t in texts[first:first + batch_size]]
                scored = [ids for ids in chunk if len(ids) >= 2]
                results = iter(self._score(request, scored) if scored else [])
                losses.extend(next(results) if len(ids) >= 2 else float("nan") for ids in chunk)
        return losses

    def _score_request(self):
        if self._scorer is None:
            import openvino as ov

            core = ov.Core()
            compiled = core.compile_model(str(self.converted_dir / "openvino_model.xml"), "CPU",
                                          {k: v for k, v in self.properties.items() if k != "KV_CACHE_PRECISION"})
            self._scorer = compiled.create_infer_request()
        return self._scorer

    @staticmethod
    def _score(request, rows: list[list[int]]) -> list[float]:
        """Mean next-token loss of each row, right-padded into one forward pass."""
        import numpy as np

        width = max(len(ids) for ids in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for row, row_ids in enumerate(rows):
            ids[row, :len(row_ids)] = row_ids
            mask[row, :len(row_ids)] = 1
        request.reset_state()
        request.infer({"input_ids": ids, "attention_mask": mask,
                       "position_ids": np.tile(np.arange(width, dtype=np.int64), (len(rows), 1)),
                       "beam_idx": np.arange(len(rows), dtype=np.int32)})
        logits = request.get_tensor("logits").data[:, :-1].astype(np.float64)
        top = logits.max(axis=-1, keepdims=True)
        log_z = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1))
        target = np.take_along_axis(logits, ids[:, 1:, None], axis=-1)[..., 0]
        counted = mask[:, 1:].astype(np.float64)
        return [float(v) for v in ((log_z - target) * counted).sum(axis=1) / counted.sum(axis=1)]


def scheduler_config():
    """GenAI's scheduler for this backend, from SCHEDULER."""
    import openvino_genai

    config = openvino_genai.SchedulerConfig()
    for key, value in SCHEDULER.items():
        setattr(config, key, value)
    return config


def model_dirs_under(folder: Path) -> list[Path]:
    """Every model directory (config.json beside weights) under ``folder``, skipping hidden
    folders (conversions, caches) and training checkpoints."""
    found = []
    for config in sorted(Path(folder).rglob("config.json")):
        parts = config.relative_to(folder).parts[:-1]
        if any(part.startswith(".") or part.startswith("checkpoint-") for part in parts):
            continue
        if any((config.parent / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
            found.append(config.parent)
    return found


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m shared.generation.openvino",
                                     description="Convert a GPT-2 model directory for OpenVINO (cached beside "
                                                 "it; does nothing when up to date) and print where it is.")
    parser.add_argument("model_dir", help="a transformers or simpletransformers GPT-2 directory")
    parser.add_argument("precision", nargs="?", default="int8", choices=PRECISIONS,
                        help="weights: int8 (default), int4 or fp32")
    parser.add_argument("--all", action="store_true",
                        help="convert every model directory under MODEL_DIR (an image's models/ at build time)")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model_dir = Path(args.model_dir)
    try:
        if args.in_process:  # the child of converted(): its caller holds the lock
            target = CACHE.target(model_dir, args.precision)
            convert(model_dir, target, args.precision, source_fingerprint(model_dir, args.precision))
        elif args.all:
            if not model_dir.is_dir():
                raise ModelError(f"{model_dir}: no such directory")
            for directory in model_dirs_under(model_dir):
                print(converted(directory, args.precision))
        else:
            if not (model_dir / "config.json").is_file():
                raise ModelError(f"{model_dir}: no config.json — not a GPT-2 model directory")
            print(converted(model_dir, args.precision))
    except ModelError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
