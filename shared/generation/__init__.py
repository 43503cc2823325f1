"""Loading GPT-2 models and generating replies in batches, on the CPU or a GPU.

Features:

- ``load(path)`` reads a model directory as transformers or simpletransformers save it
  (config.json; model.safetensors or pytorch_model.bin; vocab.json + merges.txt and/or
  tokenizer.json), or a run folder holding ``best_model/``. Each model is loaded once per
  process (per backend, precision and device) and shared by every bot that names it.
  Broken directories raise ``ModelError`` with one line naming the path and the missing
  piece. Nothing touches the network.
- One ``Model`` interface (``model.py``), one module per backend: ``pytorch.py``
  (transformers on PyTorch: fp32, bf16, a GPU) and ``ct2.py`` (CTranslate2: the model
  converted once to int8 and cached beside it). ``load(path, backend="auto",
  precision="auto", device="auto")`` takes the config's ``generation`` keys; ``choose``
  says what "auto" becomes on this machine.
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

What "auto" picks (``choose``), and why (the measurements are the README's Performance
table, made by ``python -m jobs.bench``):

- On a CPU, CTranslate2 int8 when ctranslate2 is installed: the fastest at small batches,
  the smallest process (no torch), the fastest start, and the one that holds up when
  another process competes for the cores.
- transformers bf16 overtakes it from batch 8 up on an idle machine with native bf16:
  choose ``backend: transformers, precision: bf16`` for large batches on a dedicated
  machine with memory to spare.
- Without ctranslate2: transformers bf16 where the CPU computes bf16 natively (AMX or
  AVX512-BF16), fp32 elsewhere. On a GPU: transformers bf16.

What every backend does the same way (docs/generation.md has the details):

- Prompts are sorted by length before batching to keep the padding small; the ``n``
  candidates of a prompt share a batch. ``batch_size`` counts rows (prompts x n).
- The stop marker is found per token, not by decoding: each vocabulary entry is flagged
  once as "contains ``<|``", "ends with ``<``" and "starts with ``|``", so a ``<`` and a
  ``|`` in two consecutive tokens stop the row too.
- The same sampling settings (repetition penalty, temperature, top-k, top-p; temperature
  0 is greedy) and the same context bound: a prompt longer than the context minus the
  reply budget (max_new_tokens, at most half the context) loses its oldest tokens, with
  a warning.
- Calls on one model are serialised: two bots generating at once on the same cores would
  only slow each other down.

torch, transformers and ctranslate2 are imported when a model is loaded, not when this
package is, so reading the config stays fast; a CTranslate2 model never imports torch.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import threading
import time
from pathlib import Path

from shared.errors import ConfigError, ModelError
from shared.generation.model import ENDOFTEXT, STOP_MARKER, GenerationStats, Model, Sampling, StopFlags

__all__ = ["ENDOFTEXT", "STOP_MARKER", "GenerationStats", "Model", "Sampling", "StopFlags",
           "choose", "load", "model_directory"]

log = logging.getLogger(__name__)

EXPECTED_LAYOUT = (
    "expected a GPT-2 model directory saved by transformers or simpletransformers "
    "(config.json, model.safetensors or pytorch_model.bin, vocab.json + merges.txt or tokenizer.json)"
)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin",
                 "model.safetensors.index.json", "pytorch_model.bin.index.json")

# config name -> the module of shared.generation that runs it
BACKEND_MODULES = {"transformers": "pytorch", "ctranslate2": "ct2"}
BACKENDS = tuple(BACKEND_MODULES)
# what each backend can run, per device ("fp16" only where it is fast: a GPU)
PRECISIONS = {
    ("transformers", "cpu"): ("fp32", "bf16"),
    ("transformers", "cuda"): ("fp32", "bf16", "fp16"),
    ("ctranslate2", "cpu"): ("int8", "fp32"),
    ("ctranslate2", "cuda"): ("int8", "fp32", "bf16", "fp16"),
}


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
def cpu_info() -> dict:
    """The CPU's model name and feature flags, from /proc/cpuinfo (empty where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {"model": "", "flags": frozenset()}
    field = lambda name: next((line.split(":", 1)[1] for line in lines if line.startswith(name)), "")  # noqa: E731
    return {"model": field("model name").strip(), "flags": frozenset(field("flags").split())}


def _cpu_has_bf16() -> bool:
    """The CPU computes bf16 natively (AMX or AVX512-BF16); elsewhere bf16 is emulated and slow."""
    flags = cpu_info()["flags"]
    return "amx_bf16" in flags or "avx512_bf16" in flags


# --- loading ---------------------------------------------------------------------------

_models: dict = {}
_models_lock = threading.Lock()


def load(model_dir, *, backend: str = "auto", precision: str = "auto", device: str = "auto") -> Model:
    """The model in ``model_dir`` (or in its ``best_model/``), loaded once per process.

    ``backend``, ``precision`` and ``device`` are the config's ``generation`` keys ("auto"
    by default: see ``choose``). The same directory in another backend, precision or
    device is another model. Raises ``ModelError`` naming the path and what is missing,
    ``ConfigError`` for settings no backend runs here.
    """
    directory, shown = _model_directory(Path(model_dir), str(model_dir))
    backend, precision, device = choose(backend, precision, device)
    key = (directory.resolve(), backend, precision, device)
    # one lock for all loads: loading is rare, and two bots naming one model must not load it twice
    with _models_lock:
        model = _models.get(key)
        if model is None:
            _check_model_type(directory, shown)
            started = time.perf_counter()
            # each backend is imported only when a model needs it: torch and ctranslate2 are heavy
            module = importlib.import_module(f"shared.generation.{BACKEND_MODULES[backend]}")
            model = module.load(directory, shown, precision, device)
            model.model_args = _model_args(directory)
            _models[key] = model
            log.info("loaded %s (%s %s on %s, context %d) in %.1fs", shown, backend, precision, device,
                     model.n_positions, time.perf_counter() - started)
    return model


def _model_args(directory: Path) -> dict:
    """The model's model_args.json (what simpletransformers saved with it), or {}.

    Only generation settings are read from it (``Sampling.from_settings``); an unreadable
    file is logged and ignored, as simpletransformers' own loader would not get past it
    either and the weights are what matter.
    """
    path = directory / "model_args.json"
    if not path.is_file():
        return {}
    try:
        args = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: model_args.json is unreadable (%s); using the bot's sampling settings", path, exc)
        return {}
    if not isinstance(args, dict):
        return {}
    honoured = {k: args[k] for k in ("top_p", "do_sample") if k in args}
    if honoured:
        log.info("%s: model_args.json sets %s (used where the bot's sampling leaves them open)", path,
                 ", ".join(f"{k}={v}" for k, v in honoured.items()))
    return args


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
