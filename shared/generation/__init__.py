"""Loading GPT-2 models and generating replies in batches, on the CPU or a GPU.

Features:

- ``load(path)`` reads a model directory as transformers or simpletransformers save it
  (config.json; model.safetensors or pytorch_model.bin; vocab.json + merges.txt and/or
  tokenizer.json), or a run folder holding ``best_model/``. Each model is loaded once per
  process (per backend, precision and device) and shared by every bot that names it.
  Broken directories raise ``ModelError`` with one line naming the path and the missing
  piece. Nothing touches the network.
- One ``Model`` interface (``model.py``), one module per backend: ``pytorch.py``
  (transformers on PyTorch: fp32, bf16, a GPU), ``openvino.py`` (OpenVINO GenAI: the model
  converted once to int8 or int4 weights and cached beside it) and ``ct2.py`` (CTranslate2:
  converted once to int8). ``load(path, backend="auto", precision="auto", device="auto")``
  takes the config's ``generation`` keys; ``choose`` says what "auto" becomes on this machine.
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

- On a CPU, OpenVINO int8 when openvino-genai is installed and the model converts: the
  fastest at every batch size measured, a process without torch, and continuous batching
  (a finished reply leaves the batch at once). A model that OpenVINO cannot convert falls
  back to the next choice with one log line saying why.
- Then CTranslate2 int8 when ctranslate2 is installed: also torch-free, faster than
  transformers at small batches.
- Then transformers bf16 where the CPU computes bf16 natively (AMX or AVX512-BF16), fp32
  elsewhere. On a GPU: transformers bf16 (the CUDA path; OpenVINO runs on the CPU here).

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

torch, transformers, openvino and ctranslate2 are imported when a model is loaded, not when
this package is, so reading the config stays fast; an OpenVINO or CTranslate2 model never
imports torch (their conversions run in a child process).
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
BACKEND_MODULES = {"transformers": "pytorch", "ctranslate2": "ct2", "openvino": "openvino"}
BACKENDS = tuple(BACKEND_MODULES)
# what each backend can run, per device ("fp16" only where it is fast: a GPU)
PRECISIONS = {
    ("transformers", "cpu"): ("fp32", "bf16"),
    ("transformers", "cuda"): ("fp32", "bf16", "fp16"),
    ("ctranslate2", "cpu"): ("int8", "fp32"),
    ("ctranslate2", "cuda"): ("int8", "fp32", "bf16", "fp16"),
    ("openvino", "cpu"): ("int8", "int4", "fp32"),
}
ALL_PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int4")
# the packages a backend needs at run time (conversion needs more: see its module)
RUNTIME_PACKAGES = {"ctranslate2": ("ctranslate2",), "openvino": ("openvino_genai",)}


# --- choosing a backend ----------------------------------------------------------------

def choose(backend: str = "auto", precision: str = "auto", device: str = "auto") -> tuple[str, str, str]:
    """The (backend, precision, device) that ``load`` tries first for these config values.

    "auto" resolves as the module docstring says: a GPU when one is visible (transformers
    bf16); on a CPU, OpenVINO int8 when openvino-genai is installed, else CTranslate2 int8
    when ctranslate2 is, else transformers bf16 where the CPU has native bf16, else fp32.
    A precision alone picks the backend that runs it (int8: OpenVINO, else CTranslate2;
    int4: OpenVINO; fp32, bf16 and fp16: transformers). ``load`` falls back from OpenVINO
    to the next choice (``fallback``) when "auto" chose it and the model does not convert.
    Raises ``ConfigError`` for a combination no backend runs here.
    """
    if backend not in ("auto",) + BACKENDS:
        raise ConfigError(f"generation.backend: expected auto, {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}, "
                          f"got {backend!r}")
    if precision not in ("auto",) + ALL_PRECISIONS:
        raise ConfigError(f"generation.precision: expected auto, {', '.join(ALL_PRECISIONS[:-1])} or "
                          f"{ALL_PRECISIONS[-1]}, got {precision!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"generation.device: expected auto, cpu or cuda, got {device!r}")
    if device == "auto":
        device = "cuda" if _gpu_visible() else "cpu"
    if backend == "auto":
        backend = _backend_for(precision, device)
    missing = [p for p in RUNTIME_PACKAGES.get(backend, ()) if not _installed(p)]
    if missing:
        pip = {"ctranslate2": "ctranslate2", "openvino_genai": "openvino-genai"}
        raise ConfigError(f"generation.backend {backend}: the {', '.join(pip[p] for p in missing)} package is not "
                          f"installed (pip install {' '.join(pip[p] for p in missing)}), or choose backend "
                          f"transformers")
    if backend == "openvino" and device != "cpu":
        raise ConfigError("generation.backend openvino runs on the CPU: set generation.device to cpu, "
                          "or choose backend transformers for the GPU")
    if precision == "auto":
        precision = {"ctranslate2": "int8", "openvino": "int8"}.get(
            backend, "bf16" if device == "cuda" or _cpu_has_bf16() else "fp32")
    supported = PRECISIONS[(backend, device)]
    if precision not in supported:
        raise ConfigError(f"generation.precision {precision}: backend {backend} on {device} runs "
                          f"{', '.join(supported)}")
    return backend, precision, device


def fallback(precision: str = "auto", device: str = "cpu") -> tuple[str, str, str]:
    """What "auto" means when OpenVINO cannot run the model: the present order without it."""
    backend = _backend_for(precision, device, without=("openvino",))
    return choose(backend, precision if precision != "int4" else "auto", device)


def _backend_for(precision: str, device: str, without: tuple = ()) -> str:
    """The backend "auto" means for this precision on this kind of device (the module
    docstring gives the measurements behind the order)."""
    order = [b for b in ("openvino", "ctranslate2") if b not in without and device == "cpu"
             and all(_installed(p) for p in RUNTIME_PACKAGES[b])]
    if precision == "auto":
        return order[0] if order else "transformers"
    if precision == "int4":
        return "openvino"
    if precision == "int8":
        return order[0] if order else "ctranslate2"
    return "transformers"


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
    device is another model. When "auto" chose OpenVINO and the model does not convert, the
    next choice loads it, with one log line saying why. Raises ``ModelError`` naming the
    path and what is missing, ``ConfigError`` for settings no backend runs here.
    """
    directory, shown = _model_directory(Path(model_dir), str(model_dir))
    chosen = choose(backend, precision, device)
    # one lock for all loads: loading is rare, and two bots naming one model must not load it twice
    with _models_lock:
        key = (directory.resolve(), *chosen)
        model = _models.get(key)
        if model is None:
            _check_model_type(directory, shown)
            try:
                model = _load(directory, shown, *chosen)
            except ModelError as exc:
                if backend != "auto" or chosen[0] != "openvino" or precision == "int4":
                    raise
                try:
                    instead = fallback(precision, chosen[2])
                except ConfigError:
                    raise exc from None
                log.warning("%s; using %s %s instead", exc, *instead[:2])
                model = _models.get((directory.resolve(), *instead)) or _load(directory, shown, *instead)
                _models[(directory.resolve(), *instead)] = model
            _models[key] = model
    return model


def _load(directory: Path, shown: str, backend: str, precision: str, device: str) -> Model:
    started = time.perf_counter()
    # each backend is imported only when a model needs it: torch, openvino and ctranslate2 are heavy
    module = importlib.import_module(f"shared.generation.{BACKEND_MODULES[backend]}")
    model = module.load(directory, shown, precision, device)
    model.model_args = _model_args(directory)
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
