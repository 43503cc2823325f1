"""jobs.finetune: a tiny finetune on CPU, resuming, bad input; and the demo model (shared/training/demo_model.py).

The finetunes here train `--init tiny` models (2 layers, width 64) on the demo corpus for a
few dozen steps: seconds each, once simpletransformers is imported (about 5 s, once).
"""

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import finetune as finetune_job
from shared.training import finetune
from shared import generation, tagging
from shared.training.demo_model import Recipe, demo_samples, ensure_demo_model, is_built

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def one_thread():
    """Train on one core: a tiny model gains nothing from two, and is 3-5x slower when
    another process competes for them (other test sessions on the dev box)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """train.txt (270 samples) and eval.txt (30) from the demo corpus: short, repetitive threads."""
    directory = tmp_path_factory.mktemp("corpus")
    samples = demo_samples(150, seed=1)
    random.Random(0).shuffle(samples)
    (directory / "eval.txt").write_text("\n".join(samples[:30]) + "\n", encoding="utf-8")
    (directory / "train.txt").write_text("\n".join(samples[30:]) + "\n", encoding="utf-8")
    return directory


def tiny_args(corpus, out, *extra):
    """Command-line arguments of a tiny CPU finetune of ``corpus`` into ``out``/run."""
    return ["--config", str(out / "absent.yaml"), "--train-file", str(corpus / "train.txt"),
            "--eval-file", str(corpus / "eval.txt"), "--output-dir", str(out), "--name", "run",
            "--init", "tiny", "--max-seq-length", "128", "--batch-size", "8", "--learning-rate", "1e-2",
            "--samples", "0", *extra]


def progress_rows(run_dir):
    with (run_dir / finetune.PROGRESS_CSV).open(newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def prompts_in_training_format(samples, count):
    """Samples cut right after their last comment's opening tag, as training wrote it."""
    prompts = []
    for sample in samples:
        start = sample.rfind("<|so")
        if start > 0 and not sample.startswith(("<|soss", "<|sols"), start):
            prompts.append(sample[:sample.index("|>", start) + 2])
        if len(prompts) == count:
            break
    return prompts


def bot_prompts(samples, count):
    """The bot's own prompts (what tagging.reply_prompt gives) for the last comment of each sample."""
    prompts = []
    for sample in samples:
        split = tagging.split_sample(sample)
        if split is not None:
            prompts.append(split[0])
        if len(prompts) == count:
            break
    return prompts


# --- a tiny finetune ------------------------------------------------------------------------

def test_tiny_finetune_writes_a_best_model_that_the_bot_loads_and_that_closes_its_replies(
        tmp_path, corpus, one_thread):
    assert finetune_job.main(tiny_args(corpus, tmp_path, "--epochs", "8", "--eval-every", "30")) == 0

    run_dir = tmp_path / "run"
    rows = progress_rows(run_dir)
    assert [r["global_step"] for r in rows] == sorted({r["global_step"] for r in rows})   # no step twice
    assert rows[-1]["eval_loss"] < rows[0]["eval_loss"]
    assert json.loads((run_dir / "best_model" / "config.json").read_text())["model_type"] == "gpt2"
    assert not (run_dir / "config.json").exists(), "the run folder must lead load() to best_model/"
    assert not (run_dir / finetune.INITIAL_MODEL).exists()

    model = generation.load(run_dir)                    # a run folder: loads best_model/
    assert model.path == run_dir / "best_model"
    train = (corpus / "train.txt").read_text().splitlines()
    prompts = prompts_in_training_format(train, 10)
    outputs = model.generate(prompts, generation.Sampling(temperature=0, max_new_tokens=40), n=1)
    replies = [tagging.extract_reply(text) for (text,) in outputs]
    assert sum(1 for r in replies if r) >= 8, replies    # closed and not empty


def test_an_interrupted_finetune_resumes_from_its_last_checkpoint(tmp_path, corpus, one_thread,
                                                                  monkeypatch, capsys):
    from simpletransformers.language_modeling import LanguageModelingModel

    original_save = LanguageModelingModel.save_model
    saved = []

    def save_or_die_halfway(self, output_dir=None, *args, **kwargs):
        if Path(output_dir).name == "checkpoint-20" and die:
            # killed while writing the second checkpoint: its weights are there, the rest not
            Path(output_dir).mkdir()
            (Path(output_dir) / "model.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt     # what Ctrl-C or a scheduler's SIGINT does
        original_save(self, output_dir, *args, **kwargs)
        saved.append(Path(output_dir).name)

    monkeypatch.setattr(LanguageModelingModel, "save_model", save_or_die_halfway)
    # batch 4: an epoch is longer than the 20 steps this test interrupts at
    args = tiny_args(corpus, tmp_path, "--epochs", "3", "--eval-every", "10", "--batch-size", "4")
    run_dir = tmp_path / "run"

    die = True
    assert finetune_job.main(args) == 130
    assert (run_dir / "checkpoint-20").is_dir()
    assert finetune.latest_checkpoint(run_dir).name == "checkpoint-10"
    assert [r["global_step"] for r in progress_rows(run_dir)] == [10]
    assert (run_dir / "best_model" / "eval_results.txt").is_file()

    die, saved[:] = False, []
    capsys.readouterr()
    assert finetune_job.main(args) == 0
    log = capsys.readouterr().err
    assert "resuming from" in log and "checkpoint-10 (step 10)" in log
    steps = [finetune.checkpoint_step(Path(name)) for name in saved if name.startswith("checkpoint-")]
    assert steps and min(steps) > 10, f"the rerun started over: {saved}"
    rows = progress_rows(run_dir)
    assert [r["global_step"] for r in rows][:2] == [10, 20], "the rows before the interruption are kept"
    best = finetune.best_eval_loss(run_dir)
    assert best == pytest.approx(min(r["eval_loss"] for r in rows)), "best_model is the best of both runs"
    kept = finetune.checkpoints(run_dir)
    assert len(kept) == 2 and finetune.checkpoint_step(kept[-1]) == int(rows[-1]["global_step"])

    saved[:] = []
    assert finetune_job.main(args) == 0          # finished: a rerun trains nothing
    assert saved == []


def test_a_checkpoint_counts_only_when_complete(tmp_path):
    def checkpoint(name, files):
        path = tmp_path / name
        path.mkdir()
        for i, file in enumerate(files):
            (path / file).write_text("x")
            os.utime(path / file, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
        return path

    order = ["config.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "model_args.json"]
    checkpoint("checkpoint-4", order)
    checkpoint("checkpoint-8-epoch-1", order)
    checkpoint("checkpoint-12", order[:-1])                                   # killed before model_args.json
    checkpoint("checkpoint-16", ["model_args.json", *order[:-1]])            # killed while saved a second time
    checkpoint("checkpoint-20-epoch-2", ["eval_results.txt"])                 # an epoch end without a model
    assert finetune.latest_checkpoint(tmp_path).name == "checkpoint-8-epoch-1"
    finetune.prune_checkpoints(tmp_path, keep=1)
    assert [p.name for p in finetune.checkpoints(tmp_path)] == ["checkpoint-8-epoch-1", "checkpoint-12",
                                                                "checkpoint-16", "checkpoint-20-epoch-2"]


# --- bad input: one clear line, exit 2 ---------------------------------------------------------

def run_finetune(*args):
    return subprocess.run([sys.executable, "-m", "jobs.finetune", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("case, expected", [
    ("no training file", "no training file"),
    ("empty training file", "the training file is empty"),
    ("no eval file", "no eval file"),
    ("empty model directory", "no config.json"),
    ("not a GPT-2 model", "model_type 'bert', not 'gpt2'"),
    ("nothing to start from", "nothing to start from"),
])
def test_bad_input_exits_2_with_one_clear_line(tmp_path, corpus, case, expected):
    train, evaluation = corpus / "train.txt", corpus / "eval.txt"
    start = ["--init", "tiny"]
    if case == "no training file":
        train = tmp_path / "missing.txt"
    elif case == "empty training file":
        train = tmp_path / "train.txt"
        train.write_text("\n  \n")
    elif case == "no eval file":
        evaluation = tmp_path / "missing.txt"
    elif case == "empty model directory":
        (tmp_path / "empty").mkdir()
        start = ["--base-model", str(tmp_path / "empty")]
    elif case == "not a GPT-2 model":
        bert = tmp_path / "bert"
        bert.mkdir()
        (bert / "config.json").write_text('{"model_type": "bert"}')
        for name in ("pytorch_model.bin", "vocab.json", "merges.txt"):
            (bert / name).write_text("")
        start = ["--base-model", str(bert)]
    elif case == "nothing to start from":
        start = []
    result = run_finetune("--config", str(tmp_path / "absent.yaml"), "--train-file", str(train),
                          "--eval-file", str(evaluation), "--output-dir", str(tmp_path / "models"), *start)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


# --- the demo model ---------------------------------------------------------------------------------

STUB = Recipe(posts=80, epochs=1, max_seq_length=128, evaluate_during_training_steps=5)


def test_ensure_demo_model_builds_once_reuses_it_and_rebuilds_an_incomplete_one(tmp_path, one_thread,
                                                                                monkeypatch):
    from shared.training import demo_model

    path = tmp_path / "models" / "demo"
    model_dir = ensure_demo_model(path, progress=False, recipe=STUB)
    assert model_dir == path / "best_model" and is_built(path, STUB)
    assert (path / "data" / "train.txt").is_file() and (path / finetune.PROGRESS_CSV).is_file()
    assert not finetune.checkpoints(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["demo", "demo.lock"]   # no build folder left

    builds = []
    real_build = demo_model.build
    monkeypatch.setattr(demo_model, "build", lambda *a, **k: builds.append(a) or real_build(*a, **k))
    assert ensure_demo_model(path, progress=False, recipe=STUB) == model_dir
    assert builds == []                                          # cached

    (model_dir / "model.safetensors").unlink()                  # incomplete: rebuilt
    assert not is_built(path, STUB)
    ensure_demo_model(path, progress=False, recipe=STUB)
    assert len(builds) == 1 and is_built(path, STUB)

    assert not is_built(path, Recipe(posts=81, epochs=1, max_seq_length=128))   # another recipe: rebuilt


def test_a_failed_demo_build_leaves_nothing_that_looks_built(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(finetune, "finetune", killed)
    path = tmp_path / "demo"
    with pytest.raises(KeyboardInterrupt):
        ensure_demo_model(path, progress=False, recipe=STUB)
    assert not path.exists() and not is_built(path, STUB)
    assert [p.name for p in tmp_path.iterdir()] == ["demo.lock"]


def test_the_demo_model_learned_its_corpus_and_answers_the_bots_prompts(demo_model_dir):
    record = json.loads((demo_model_dir.parent / "demo.json").read_text())
    losses = [loss for _, loss in record["eval_loss"]]
    assert min(losses) < 0.5 * losses[0], losses                 # eval loss fell by half or more

    held_out = (demo_model_dir.parent / "data" / "eval.txt").read_text().splitlines()
    prompts = bot_prompts(held_out, 20)
    model = generation.load(demo_model_dir)
    outputs = model.generate(prompts, generation.Sampling(max_new_tokens=60, seed=0), n=2)
    replies = [tagging.extract_reply(text) for candidates in outputs for text in candidates]
    assert sum(r is not None for r in replies) >= 0.9 * len(replies), replies      # closed
    assert sum(bool(r) for r in replies) >= 0.5 * len(replies), replies            # and say something
