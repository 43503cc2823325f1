"""Finetuning GPT-2 with simpletransformers: the mechanics behind ``python -m jobs.finetune``.

    from shared.training.finetune import finetune
    summary = finetune(settings, Path("data/train.txt"), Path("data/eval.txt"), Path("models/mybot"))

``settings`` is a ``shared.config.Finetune``. What this module adds to simpletransformers'
``LanguageModelingModel`` (0.70), and why, is said where it happens: whole samples packed
into token blocks (``token_blocks``), complete-checkpoint detection and resuming,
``best_model`` replaced only by a better model and only by renames, the training
progress kept across resumes, and a few replies of the best model at the end.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import logging
import math
import os
import random
import re
import shutil
from pathlib import Path

from shared import generation, tagging
from shared.errors import InputError, ModelError, first_line
from shared.files import recover_directory, replace_directory

log = logging.getLogger("finetune")

BEST_MODEL = "best_model"
INITIAL_MODEL = "initial_model"     # the staged base model or the fresh --init one
PROGRESS_CSV = "training_progress_scores.csv"
WINDOW_STRIDE = 0.8                 # sliding windows overlap by 20 % (simpletransformers' default)
INIT_VOCAB = {"tiny": 8192, "124M": 50257}
INIT_POSITIONS = 1024               # GPT-2's context, whatever max_seq_length trains


def finetune(settings, train_file, eval_file, out, restart=False, samples=3, progress=True):
    """The job, once the settings are known; returns a summary dict (tests read it)."""
    # -- the data: one sample per line; checked before anything slow is imported ---------------
    train_lines = read_samples(train_file, "training")
    eval_lines = read_samples(eval_file, "eval")

    # -- where training starts: a checkpoint to resume, a base model, or a fresh model ---------
    recover_best_model(out)
    if restart:
        clear_run(out)
    checkpoint = latest_checkpoint(out)
    if checkpoint is not None:
        start, resumed_from = checkpoint, checkpoint_step(checkpoint)
        log.info("resuming from %s (step %d); --restart starts over", checkpoint, resumed_from)
    else:
        resumed_from = None
        if (out / BEST_MODEL).exists():
            raise InputError(f"{out} already holds a trained model ({BEST_MODEL}/) and no checkpoint to resume: "
                             "pass --restart to train it again from the start, or choose another --name")
        start = prepare_initial_model(settings, train_lines, out / INITIAL_MODEL)

    # -- the token blocks both datasets are made of (see token_blocks) ------------------------
    import torch
    from transformers import GPT2TokenizerFast

    tokenizer = GPT2TokenizerFast.from_pretrained(start, local_files_only=True)
    block_size = context_size(start, settings.max_seq_length)
    train_blocks = token_blocks(train_lines, tokenizer, block_size, settings.sliding_window, settings.seed)
    eval_blocks = token_blocks(eval_lines, tokenizer, block_size, settings.sliding_window, settings.seed)
    rows_per_step = settings.train_batch_size * settings.gradient_accumulation_steps
    steps_per_epoch = math.ceil(len(train_blocks) / settings.train_batch_size) // settings.gradient_accumulation_steps
    if steps_per_epoch == 0:
        raise InputError(f"{train_file}: {len(train_blocks)} blocks of {block_size} tokens, fewer than one "
                         f"optimizer step ({rows_per_step} = batch size x accumulation steps): "
                         "export more text or lower train_batch_size")
    total_steps = steps_per_epoch * settings.epochs
    eval_steps = min(settings.evaluate_during_training_steps, total_steps)
    # an epoch that ends on an evaluation step needs no second evaluation and checkpoint
    epoch_ends_apart = steps_per_epoch % eval_steps != 0
    log.info("%s: %d samples in %d blocks of %d tokens (%.0f%% padding); %d steps per epoch, %d in all",
             train_file, len(train_lines), len(train_blocks), block_size,
             100 * padding_share(train_blocks), steps_per_epoch, total_steps)

    # -- simpletransformers' arguments: the community's settings, plus what resuming needs ----
    cuda = torch.cuda.is_available()
    args = {
        "mlm": False,                                   # GPT-2 is a causal LM
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "train_batch_size": settings.train_batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "max_seq_length": block_size,
        "sliding_window": settings.sliding_window,      # applied by token_blocks; recorded in model_args.json
        "evaluate_during_training": True,
        # at least one evaluation, however short the run: best_model is what the bot loads
        "evaluate_during_training_steps": eval_steps,
        "evaluate_during_training_verbose": False,
        "save_eval_checkpoints": True,                  # every evaluation leaves a checkpoint to resume from
        "evaluate_each_epoch": epoch_ends_apart,
        "save_model_every_epoch": epoch_ends_apart,
        "save_optimizer_and_scheduler": True,           # the community dropped these; resuming needs them
        "save_steps": settings.save_steps,
        "overwrite_output_dir": True,                   # the run folder is ours: a resumed run writes into it
        "output_dir": str(out),
        "best_model_dir": str(out / BEST_MODEL),
        "cache_dir": str(out / "cache"),
        "tensorboard_dir": str(out / "runs"),           # default: ./runs in the working directory
        "model_name": str(start),
        "tokenizer_name": str(start),                   # else a community model_args.json names "gpt2": the hub
        "config_name": str(start),
        "use_hf_datasets": True,                        # dict batches: the only kind evaluate() reads in 0.70
        "use_multiprocessing": False,
        "use_multiprocessing_for_evaluation": False,
        "manual_seed": settings.seed,
        "fp16": cuda and settings.fp16 is not False,    # autocast + GradScaler need CUDA
        "wandb_project": None,
        "silent": not progress,
    }
    model_class = finetune_model_class()
    try:
        model = model_class("gpt2", str(start), args=args, use_cuda=cuda)
    except Exception as exc:  # a corrupt file fails in many ways; all mean "broken model"
        raise ModelError(f"{start}: cannot load the model: {first_line(exc)}") from exc
    model.retrieval_model = None                        # only set when rag is on, but train_model reads it
    model.datasets = {str(train_file): train_blocks, str(eval_file): eval_blocks}
    model.history = progress_history(out, up_to=resumed_from or 0)
    model.best_eval_loss = best_eval_loss(out) if resumed_from is not None else math.inf
    model.keep_checkpoints = settings.keep_checkpoints
    log.info("training on %s%s from %s", "cuda" if cuda else "cpu", " (fp16)" if args["fp16"] else "", start)

    global_step, _ = model.train_model(str(train_file), eval_file=str(eval_file), verbose=progress)

    # -- the result: eval loss over the run, and what the best model writes --------------------
    # an evaluation step that is also an epoch's last is evaluated twice: one row per step
    scores = progress_history(out, up_to=math.inf)
    write_progress(out, scores)
    if not (out / BEST_MODEL / "config.json").is_file():
        raise ModelError(f"{out}: training ended without a {BEST_MODEL}/ (no evaluation ran)")
    shutil.rmtree(out / INITIAL_MODEL, ignore_errors=True)   # the checkpoints carry the run from here
    prune_checkpoints(out, settings.keep_checkpoints)         # and the empty folders of epoch ends
    print(format_trajectory(scores, out / BEST_MODEL))
    replies = sample_replies(out / BEST_MODEL, eval_file, samples, settings.seed) if samples else []
    if replies:
        print(f"what {BEST_MODEL} writes for held-out threads of {eval_file.name} (prompt end -> reply):")
    for prompt_tail, reply in replies:
        print(f"  ...{prompt_tail}\n      -> {reply}")
    return {"best_model": out / BEST_MODEL, "resumed_from": resumed_from, "global_step": global_step,
            "scores": scores, "samples": replies, "blocks": len(train_blocks), "block_size": block_size}


def read_samples(path: Path, what: str) -> list[str]:
    """The samples of a training or eval file (``tagging.split_samples``: one per line, or
    one per ``<|endoftext|>`` for legacy samples that keep their line breaks); InputError
    when there are none."""
    if not path.is_file():
        hint = "--train-file" if what == "training" else "--eval-file"
        raise InputError(f"{path}: no {what} file (write it with python -m jobs.export, or pass {hint} PATH)")
    try:
        # as written: universal newlines would turn a legacy sample's "\r" into "\n"
        lines = tagging.split_samples(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not lines:
        raise InputError(f"{path}: the {what} file is empty, nothing to train on "
                         "(jobs.export writes one tagged sample per line)")
    return lines


# --- the starting model ----------------------------------------------------------------------

_CHECKPOINT = re.compile(r"checkpoint-(\d+)(?:-epoch-\d+)?")
# what simpletransformers' save_model writes, model_args.json last
_CHECKPOINT_FILES = ("config.json", "optimizer.pt", "scheduler.pt", "model_args.json")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def checkpoint_step(path: Path) -> int:
    """The global step in a checkpoint folder's name (checkpoint-N or checkpoint-N-epoch-E)."""
    return int(_CHECKPOINT.fullmatch(path.name).group(1))


def is_complete_checkpoint(path: Path) -> bool:
    """Every file a resume loads is there, and ``model_args.json``, written last, is the newest.

    A checkpoint saved twice (an evaluation at a ``save_steps`` step) and killed during the
    second save has an older model_args.json than its weights: not complete.
    """
    try:
        times = {name: (path / name).stat().st_mtime_ns for name in _CHECKPOINT_FILES}
    except OSError:
        return False
    weights = [path / name for name in _WEIGHTS if (path / name).is_file()]
    if not weights:
        return False
    written_before = [times["optimizer.pt"], times["scheduler.pt"], weights[0].stat().st_mtime_ns]
    return times["model_args.json"] >= max(written_before)


def checkpoints(out: Path) -> list[Path]:
    """The checkpoint folders in ``out``, complete or not, oldest step first."""
    if not out.is_dir():
        return []
    found = [p for p in out.iterdir() if p.is_dir() and _CHECKPOINT.fullmatch(p.name)]
    return sorted(found, key=lambda p: (checkpoint_step(p), p.stat().st_mtime_ns))


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint in ``out``, or None."""
    complete = [p for p in checkpoints(out) if is_complete_checkpoint(p)]
    return complete[-1] if complete else None


def prune_checkpoints(out: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints, and incomplete ones older than those."""
    found = checkpoints(out)
    complete = [p for p in found if is_complete_checkpoint(p)]
    kept = set(complete[-keep:])
    newest = checkpoint_step(complete[-1]) if complete else -1
    for path in found:
        if path not in kept and checkpoint_step(path) <= newest:
            shutil.rmtree(path, ignore_errors=True)


def clear_run(out: Path) -> None:
    """--restart: forget a run's checkpoints, best model and scores (nothing else in the folder)."""
    for path in checkpoints(out):
        shutil.rmtree(path)
    for name in (BEST_MODEL, INITIAL_MODEL, "runs", "cache", f".{BEST_MODEL}.tmp", f".{BEST_MODEL}.old"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (PROGRESS_CSV, "eval_results.txt"):
        (out / name).unlink(missing_ok=True)
    log.info("--restart: cleared %s", out)


def prepare_initial_model(settings, train_lines, target: Path) -> Path:
    """The model a fresh run starts from, in ``target``: the base model staged, or a new one.

    A base model is staged without its optimizer and scheduler state (simpletransformers
    would load them, and a finished run's scheduler would start this one at learning
    rate 0) and without its model_args.json (whose paths point at someone else's disk);
    files are hard-linked, so staging a 124M model costs no space.
    """
    if settings.base_model and settings.init:
        raise InputError(f"base_model ({settings.base_model}) and init ({settings.init}) "
                         "both set: start from one of them")
    shutil.rmtree(target, ignore_errors=True)
    if settings.base_model:
        source = generation.model_directory(Path(settings.base_model))
        target.mkdir(parents=True)
        for path in source.iterdir():
            if path.is_file() and path.name not in ("optimizer.pt", "scheduler.pt", "training_args.bin",
                                                    "model_args.json", "eval_results.txt"):
                try:
                    os.link(path, target / path.name)
                except OSError:
                    shutil.copy2(path, target / path.name)
        if not ((target / "vocab.json").is_file() and (target / "merges.txt").is_file()):
            # simpletransformers reads the slow tokenizer's files; tokenizer.json alone holds them too
            from transformers import GPT2TokenizerFast

            GPT2TokenizerFast.from_pretrained(target, local_files_only=True).save_pretrained(target)
        log.info("starting from %s", source)
        return target
    if settings.init:
        from shared.training.model_init import init_model, train_tokenizer

        log.info("--init %s: training a %d-entry byte-level BPE tokenizer on %d samples",
                 settings.init, INIT_VOCAB[settings.init], len(train_lines))
        tokenizer = train_tokenizer(train_lines, vocab_size=INIT_VOCAB[settings.init])
        init_model(settings.init, tokenizer, target, n_positions=INIT_POSITIONS, seed=settings.seed)
        log.info("--init %s: fresh GPT-2 (vocab %d) in %s", settings.init, len(tokenizer), target)
        return target
    raise InputError("nothing to start from: pass --base-model DIR (a GPT-2 model directory) "
                     "or --init tiny|124M (a fresh model, no download), or set finetune.base_model")


def json_field(path: Path, name: str):
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8")).get(name)
    except (OSError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(first_line(exc)) from exc


def context_size(model_dir: Path, max_seq_length: int) -> int:
    """Tokens per training block: max_seq_length, or the model's context if that is shorter."""
    n_positions = json_field(model_dir / "config.json", "n_positions") or 1024
    if max_seq_length > n_positions:
        log.warning("max_seq_length %d is longer than the model's context: using %d", max_seq_length, n_positions)
    return min(max_seq_length, n_positions)


# --- the datasets ----------------------------------------------------------------------------

def token_blocks(lines, tokenizer, block_size: int, sliding_window: bool, seed: int) -> list[dict]:
    """Training rows of exactly ``block_size`` tokens, for simpletransformers' dict batches.

    Each line is a sample. One longer than a block is cut into windows that overlap by
    a fifth (``sliding_window``; without it, only its first block is kept). Samples
    are then packed whole, longest first, into the fullest block they still fit in
    (best fit), and the rest of a block is padded with ``<|endoftext|>`` (attention
    mask 0). simpletransformers 0.70 computes the loss on every position, padding
    included, so padding must be rare. Its own loader for dict batches (the only kind
    its evaluate() reads) pads every line to max_seq_length, after cutting it into
    chunks of max_seq_length *characters*: 84% padding on the demo corpus at 256
    tokens, against 2% here.
    """
    import bisect

    import torch

    eos = tokenizer.eos_token_id
    # the backend tokenizer, as it is: no "longer than model_max_length" warning, no
    # padding or truncation left switched on by an earlier call; cutting is done here
    backend = tokenizer.backend_tokenizer
    backend.no_padding()
    backend.no_truncation()
    encoded = [e.ids for e in backend.encode_batch(list(lines), add_special_tokens=False)]
    pieces = []
    for ids in encoded:
        if len(ids) <= block_size:
            pieces.append(ids)
        elif sliding_window:
            step = max(1, int(block_size * WINDOW_STRIDE))
            starts = list(range(0, len(ids) - block_size, step)) + [len(ids) - block_size]
            pieces.extend(ids[s:s + block_size] for s in starts)
        else:
            pieces.append(ids[:block_size])
    random.Random(seed).shuffle(pieces)                 # ties in length: no file order inside blocks
    pieces.sort(key=len, reverse=True)
    blocks: list[list[int]] = []
    rooms: list[tuple[int, int]] = []                   # (room left, block index), sorted
    for piece in pieces:
        at = bisect.bisect_left(rooms, (len(piece), -1))
        if at < len(rooms):
            room, index = rooms.pop(at)
        else:
            room, index = block_size, len(blocks)
            blocks.append([])
        blocks[index].extend(piece)
        if room - len(piece) > 0:
            bisect.insort(rooms, (room - len(piece), index))
    rows = []
    for ids in blocks:
        pad = block_size - len(ids)
        rows.append({"input_ids": torch.tensor(ids + [eos] * pad),
                     "attention_mask": torch.tensor([1] * len(ids) + [0] * pad)})
    return rows


def padding_share(rows) -> float:
    """The share of padding positions in ``rows``."""
    total = sum(len(row["attention_mask"]) for row in rows)
    return 1 - sum(int(row["attention_mask"].sum()) for row in rows) / total if total else 0.0


# --- what simpletransformers 0.70 does differently here --------------------------------------

@functools.cache
def finetune_model_class():
    """``LanguageModelingModel`` with the changes this job needs; built on first use.

    Importing simpletransformers takes about 5 s, so ``--help`` and input errors never do.
    Each override fixes one behaviour of 0.70.8 (see the methods).
    """
    from simpletransformers.language_modeling import LanguageModelingModel

    class FinetuneModel(LanguageModelingModel):
        datasets = None             # {file path: token blocks}, set by the job before training
        history = ()                # progress rows a resumed run starts from
        best_eval_loss = math.inf   # of the best_model on disk
        keep_checkpoints = 2

        def load_and_cache_examples(self, file_path, evaluate=False, no_cache=False, verbose=True, silent=False):
            # the token blocks built before training (token_blocks); the library's own
            # loaders pad every sample, and the default one breaks evaluate()
            return self.datasets[str(file_path)]

        def evaluate(self, *args, **kwargs):
            results = super().evaluate(*args, **kwargs)
            # a tensor in 0.70: the CSV would read "tensor(41.2)"
            results["perplexity"] = float(results["perplexity"])
            return results

        def _create_training_progress_scores(self, **kwargs):
            # a resumed run starts a new table and would overwrite the CSV with its own
            # rows only: start it with the rows the checkpoint had already seen
            scores = super()._create_training_progress_scores(**kwargs)
            for row in self.history:
                for key in scores:
                    scores[key].append(row.get(key))
            return scores

        def save_model(self, output_dir=None, optimizer=None, scheduler=None, model=None, results=None):
            target = Path(output_dir or self.args.output_dir)
            if target == Path(self.args.best_model_dir):
                # after a resume the library has forgotten the best loss so far and would
                # overwrite best_model with the first evaluation, however bad
                if not results or model is None or results["eval_loss"] >= self.best_eval_loss:
                    return
                self.best_eval_loss = results["eval_loss"]
                tmp = target.parent / f".{BEST_MODEL}.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                super().save_model(str(tmp), model=model, results=results)   # no optimizer: the bot needs none
                replace_directory(tmp, target)
                log.info("new best model: eval loss %.4f", results["eval_loss"])
                return
            if target == Path(self.args.output_dir):
                # the final save of train_model: the last checkpoint holds these weights, and
                # without it load("models/NAME") finds best_model/, not the last weights
                return
            super().save_model(str(target), optimizer, scheduler, model, results)
            if _CHECKPOINT.fullmatch(target.name):
                prune_checkpoints(target.parent, self.keep_checkpoints)

    return FinetuneModel


def recover_best_model(out: Path) -> None:
    """Undo a best_model replacement that a crash cut in half, and drop its leftovers."""
    recover_directory(out / BEST_MODEL)
    shutil.rmtree(out / f".{BEST_MODEL}.tmp", ignore_errors=True)


def progress_history(out: Path, up_to: float) -> list[dict]:
    """The rows of training_progress_scores.csv up to global step ``up_to``, numbers as floats."""
    path = out / PROGRESS_CSV
    if not path.is_file():
        return []
    rows = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            values = {key: _number(value) for key, value in row.items()}
            if values.get("global_step") is not None and values["global_step"] <= up_to:
                values["global_step"] = int(values["global_step"])
                rows[values["global_step"]] = values        # a step evaluated twice: the last one
    return sorted(rows.values(), key=lambda row: row["global_step"])


def write_progress(out: Path, rows) -> None:
    """Rewrite training_progress_scores.csv with ``rows`` (one per step), by a rename."""
    if not rows:
        return
    tmp = out / f".{PROGRESS_CSV}.tmp"
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out / PROGRESS_CSV)


def _number(text):
    match = re.search(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf", text or "")
    return float(match.group()) if match else None


def best_eval_loss(out: Path) -> float:
    """The eval loss recorded in best_model/eval_results.txt, or infinity."""
    try:
        text = (out / BEST_MODEL / "eval_results.txt").read_text(encoding="utf-8")
    except OSError:
        return math.inf
    match = re.search(r"^eval_loss = (\S+)", text, re.MULTILINE)
    return float(match.group(1)) if match else math.inf


# --- the report --------------------------------------------------------------------------------

def format_trajectory(scores, best_model: Path) -> str:
    """'eval loss 5.81 (step 20) -> best 2.35 (step 400), ...' from the progress rows."""
    evals = [(row["global_step"], row["eval_loss"]) for row in scores if row.get("eval_loss") is not None]
    if not evals:
        return f"best model: {best_model}"
    (first_step, first), (last_step, last) = evals[0], evals[-1]
    best_step, best = min(evals, key=lambda e: e[1])
    path = " -> ".join(f"{loss:.3f}" for _, loss in evals[-8:])
    return (f"eval loss {first:.3f} (step {first_step}) -> best {best:.3f} (step {best_step}), "
            f"last {last:.3f} (step {last_step}); the last {min(8, len(evals))}: {path}\n"
            f"best model: {best_model}")


def sample_prompts(eval_file: Path, count: int, seed: int) -> list[tuple[str, str]]:
    """Up to ``count`` (kind, prompt) pairs from held-out samples: replies to their last comment, or a new post."""
    prompts = []
    lines = read_samples(eval_file, "eval")
    random.Random(seed).shuffle(lines)
    for line in lines:
        split = tagging.split_sample(line)
        if split is not None:
            prompts.append(("reply", split[0]))
        elif not any(kind == "post" for kind, _ in prompts):
            post = _parsed_post(line)
            if post is not None:
                prompts.append(("post", tagging.submission_prompt(*post)))
        if len(prompts) == count:
            break
    return prompts


def _parsed_post(line):
    """(subreddit, is_link, dialect) of a post-only sample, or None if it parses in no dialect."""
    for dialect in tagging.DIALECTS:
        try:
            post = tagging.parse_sample(line, dialect).post
            return post.subreddit, post.is_link, dialect
        except tagging.MalformedSample:
            continue
    return None


def sample_replies(best_model: Path, eval_file: Path, count: int, seed: int) -> list[tuple[str, str]]:
    """(prompt tail, what the best model writes) for a few held-out threads, via shared.generation."""
    prompts = sample_prompts(eval_file, count, seed)
    if not prompts:
        log.info("no sample replies: %s is not in the tag format", eval_file)
        return []
    model = generation.load(best_model)
    sampling = generation.Sampling(max_new_tokens=min(128, model.n_positions // 2), seed=seed)
    outputs = model.generate([prompt for _, prompt in prompts], sampling, n=1)
    replies = []
    for (kind, prompt), (text,) in zip(prompts, outputs):
        if kind == "post":
            post = tagging.extract_submission(text)
            shown = f"title {post[0]!r}, body {post[1][:200]!r}" if post else f"unclosed: {text[:120]!r}"
        else:
            reply = tagging.extract_reply(text)
            shown = repr(reply[:300]) if reply is not None else f"unclosed: {text[:120]!r}"
        replies.append((prompt[-90:], shown))
    return replies
