"""The converting backends (shared/generation/ct2.py, openvino.py) against the transformers one, and
choosing between them.

The behaviour every backend shares (stop rule, best-of-N, ordering, context limit) is
pinned backend by backend in tests/test_generation.py; here: the conversion caches, the
agreement of the backends, the quality guard, ``auto`` and its fallback, and the bot's
torch-free process.
"""

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.generation import ct2, openvino
from shared import generation
from shared.generation import Sampling, load
from tests.test_generation import PROMPTS, THREAD

GREEDY_NO_PENALTY = Sampling(temperature=0, repetition_penalty=1.0, max_new_tokens=24)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def model_copy(tmp_path, tiny_model_dir):
    """A private copy of the tiny model: its conversion caches start empty."""
    path = tmp_path / "model"
    shutil.copytree(tiny_model_dir, path,
                    ignore=shutil.ignore_patterns(f"{ct2.CACHE_PREFIX}*", f"{openvino.CACHE_PREFIX}*"))
    return path


# --- conversion cache ------------------------------------------------------------------

# both backends keep their conversions in shared.generation.conversion's cache
CONVERTING = pytest.mark.parametrize("backend, module, weights", [
    ("ctranslate2", ct2, "model.bin"), ("openvino", openvino, "openvino_model.bin")])


@CONVERTING
def test_the_conversion_is_cached_beside_the_model_and_reused(model_copy, backend, module, weights):
    model = load(model_copy, backend=backend)
    cache = model_copy / f"{module.CACHE_PREFIX}int8"
    assert model.converted_dir == cache
    for name in (weights, "tokenizer.json", module.META_FILE):
        assert (cache / name).is_file(), name
    converted_at = (cache / weights).stat().st_mtime_ns
    assert module.converted(model_copy, "int8") == cache
    assert (cache / weights).stat().st_mtime_ns == converted_at  # not converted again
    assert not [p for p in model_copy.iterdir() if ".tmp-" in p.name or ".old" in p.name]


@CONVERTING
def test_a_changed_source_is_converted_again(model_copy, rigged_model_dir, backend, module, weights):
    before = load(model_copy, backend=backend).generate([THREAD], GREEDY_NO_PENALTY)
    cache = model_copy / f"{module.CACHE_PREFIX}int8"
    converted_at = (cache / weights).stat().st_mtime_ns
    # a finetune rewrites the weights in place: here, a model that closes at once
    shutil.copy(rigged_model_dir(["<|"], strength=30.0) / "model.safetensors", model_copy / "model.safetensors")
    generation._models.clear()
    model = load(model_copy, backend=backend)
    assert (cache / weights).stat().st_mtime_ns != converted_at
    assert model.generate([THREAD], GREEDY_NO_PENALTY) == [["<|"]] != before


@CONVERTING
def test_an_incomplete_conversion_is_never_used(model_copy, backend, module, weights):
    load(model_copy, backend=backend)
    cache = model_copy / f"{module.CACHE_PREFIX}int8"
    (cache / module.META_FILE).unlink()              # as if a conversion died before its last file
    generation._models.clear()
    assert load(model_copy, backend=backend).generate([THREAD], GREEDY_NO_PENALTY)
    assert (cache / module.META_FILE).is_file()


@CONVERTING
def test_a_read_only_model_directory_is_converted_into_the_user_cache(model_copy, tmp_path, monkeypatch,
                                                                      backend, module, weights):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as for a read-only mount
    target = module.CACHE.target(model_copy, "int8")
    assert target.is_relative_to(tmp_path / "cache" / "ssi-bot" / module.CACHE.backend)
    assert module.converted(model_copy, "int8") == target
    assert not (model_copy / f"{module.CACHE_PREFIX}int8").exists()


def test_a_bot_process_converts_in_a_child_and_never_imports_torch(model_copy):
    code = ("import sys; from shared.generation import load, Sampling; "
            f"m = load({str(model_copy)!r}, backend='ctranslate2'); "
            "m.generate(['hi'], Sampling(max_new_tokens=4)); "
            "print(sorted(k for k in ('torch', 'transformers') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "[]"
    assert (model_copy / ".ct2-int8" / "model.bin").is_file()


def test_importing_the_online_jobs_stays_light():
    heavy = ("simpletransformers", "pandas", "sklearn", "torch", "transformers", "ctranslate2", "datasets",
             "openvino", "openvino_genai")
    code = f"import sys, jobs.generate, shared.generation; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "[]"


# --- OpenVINO: the conversion cache --------------------------------------------------------

@CONVERTING
def test_a_copy_with_new_times_but_the_same_contents_is_not_converted_again(model_copy, tmp_path, caplog,
                                                                            backend, module, weights):
    """A copy that resets modification times (a Docker layer, cp without -p) keeps its
    conversion: the contents are compared when the times differ, and the new times recorded."""
    load(model_copy, backend=backend)
    copy = tmp_path / "copy"
    shutil.copytree(model_copy, copy)                  # copies the times: make them all new
    later = time.time() + 60
    for path in copy.rglob("*"):
        os.utime(path, (later, later))
    generation._models.clear()
    with caplog.at_level(logging.INFO, logger="shared.generation"):
        model = load(copy, backend=backend)
    cache = copy / f"{module.CACHE_PREFIX}int8"
    assert model.converted_dir == cache and "converting" not in caplog.text
    meta = json.loads((cache / module.META_FILE).read_text())
    assert meta["fingerprint"] == module.source_fingerprint(copy, "int8")   # next time: no reading


def test_a_conversion_made_while_writable_is_used_when_the_folder_is_read_only(model_copy, tmp_path, monkeypatch):
    """An image converts its models at build time; at run time the folder is read-only."""
    built = openvino.converted(model_copy, "int8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(openvino.os, "access", lambda path, mode: False)
    assert openvino.converted(model_copy, "int8") == built == model_copy / ".ov-int8"
    assert not (tmp_path / "cache").exists()


def test_two_processes_converting_one_model_convert_it_once(model_copy):
    command = [sys.executable, "-m", "shared.generation.openvino", str(model_copy), "int8"]
    children = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    outputs = [child.communicate(timeout=300) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {str(model_copy / ".ov-int8")}
    assert sum(err.count("converting for OpenVINO") for _, err in outputs) == 1   # the other one waited
    assert (model_copy / ".ov-int8" / openvino.META_FILE).is_file()


def test_a_model_openvino_cannot_convert_falls_back_with_one_line_and_is_not_tried_again(model_copy, monkeypatch,
                                                                                       caplog):
    """Without optimum-intel's exporter (a machine with the runtime only) the conversion
    fails: auto loads CTranslate2 instead and says why in one line; the next process reads
    the note instead of trying again, and a changed model is tried again."""
    monkeypatch.setitem(sys.modules, "optimum.exporters.openvino", None)   # import fails as if not installed
    with caplog.at_level(logging.INFO, logger="shared.generation"):
        model = load(model_copy)
    assert model.backend == "ctranslate2"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert warnings[0].getMessage().startswith(f"{model_copy}: cannot load the model (converting it for OpenVINO): ")
    assert "is not installed" in warnings[0].getMessage() and "using ctranslate2 int8 instead" in warnings[0].getMessage()
    assert (model_copy / ".ov-int8.failed").is_file() and not (model_copy / ".ov-int8").exists()

    generation._models.clear()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shared.generation"):
        assert load(model_copy).backend == "ctranslate2"
    assert "converting for OpenVINO" not in caplog.text and "is not installed" in caplog.text

    # asked for by name, OpenVINO's failure is an error, not a fallback
    generation._models.clear()
    with pytest.raises(generation.ModelError, match="converting it for OpenVINO"):
        load(model_copy, backend="openvino")

    monkeypatch.delitem(sys.modules, "optimum.exporters.openvino")
    generation._models.clear()
    later = time.time() + 60
    os.utime(model_copy / "config.json", (later, later))   # the model changed: worth another try
    assert load(model_copy).backend == "openvino"
    assert not (model_copy / ".ov-int8.failed").exists()


def test_the_bot_process_converts_in_a_child_and_never_imports_torch_with_openvino(model_copy):
    code = ("import sys; from shared.generation import load, Sampling; "
            f"m = load({str(model_copy)!r}, backend='openvino'); "
            "m.generate(['hi'], Sampling(max_new_tokens=4)); "
            "print(sorted(k for k in ('torch', 'transformers', 'optimum', 'nncf') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    assert (model_copy / ".ov-int8" / "openvino_model.xml").is_file()


def test_the_converted_weights_are_not_held_twice_once_the_plugin_has_its_own_copy(model_copy):
    """OpenVINO repacks the weights at the first inference; the mapped file's pages are then
    released from the process (and generation still reads what it needs from the file)."""
    code = f"""
from shared.generation import load, Sampling
model = load({str(model_copy)!r}, backend="openvino", precision="fp32")
weights = str(model.converted_dir / "openvino_model.bin")
lines = open("/proc/self/smaps").read().splitlines()
starts = [i for i, line in enumerate(lines) if line.endswith(weights)]
resident = sum(int(next(x for x in lines[i + 1:] if x.startswith("Rss:")).split()[1]) for i in starts)
print(len(starts), resident)
print(model.generate(["hi"], Sampling(temperature=0, max_new_tokens=8)))
"""
    openvino.converted(model_copy, "fp32")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    mappings, resident_kib = map(int, out.stdout.splitlines()[0].split())
    size_kib = (model_copy / ".ov-fp32" / "openvino_model.bin").stat().st_size / 1024
    assert mappings >= 1 and resident_kib < 0.2 * size_kib, (resident_kib, size_kib)
    expected = load(model_copy, backend="openvino", precision="fp32").generate(["hi"], Sampling(temperature=0,
                                                                                               max_new_tokens=8))
    assert out.stdout.splitlines()[1] == str(expected)


# --- the same replies as transformers ----------------------------------------------------

@pytest.mark.parametrize("backend", ["ctranslate2", "openvino"])
def test_greedy_replies_equal_transformers_fp32(tiny_model_dir, backend):
    reference = load(tiny_model_dir, backend="transformers", precision="fp32")
    model = load(tiny_model_dir, backend=backend, precision="fp32")
    expected = reference.generate(PROMPTS, GREEDY_NO_PENALTY, n=2, batch_size=4)
    assert model.generate(PROMPTS, GREEDY_NO_PENALTY, n=2, batch_size=4) == expected
    assert model.loss(PROMPTS) == pytest.approx(reference.loss(PROMPTS), rel=1e-4, nan_ok=True)


def test_openvino_applies_the_repetition_penalty_as_transformers_does(tiny_model_dir):
    """Over the prompt and the reply, divided for a positive logit, multiplied for a negative one."""
    reference = load(tiny_model_dir, backend="transformers", precision="fp32")
    model = load(tiny_model_dir, backend="openvino", precision="fp32")
    penalised = Sampling(temperature=0, repetition_penalty=1.5, max_new_tokens=24)
    assert model.generate(PROMPTS, penalised) == reference.generate(PROMPTS, penalised)
    assert model.generate(PROMPTS, penalised) != model.generate(PROMPTS, GREEDY_NO_PENALTY)


@pytest.mark.parametrize("backend", ["ctranslate2", "openvino"])
def test_int8_greedy_replies_mostly_equal_fp32(trained_tiny_model_dir, backend):
    """int8 rounds the weights: a greedy reply may take another turn where two tokens are
    nearly tied, but most replies of a trained model stay the same."""
    _, prompts = held_out_threads()
    reference = load(trained_tiny_model_dir, backend="transformers", precision="fp32")
    int8 = load(trained_tiny_model_dir, backend=backend, precision="int8")
    sampling = Sampling(temperature=0, repetition_penalty=1.0, max_new_tokens=16)
    expected, replies = reference.generate(prompts, sampling), int8.generate(prompts, sampling)
    same = sum(got == want for got, want in zip(replies, expected))
    assert same >= 0.8 * len(prompts), (same, len(prompts))


def test_mixed_prompt_lengths_are_split_into_calls_without_changing_replies(tiny_model_dir):
    model = load(tiny_model_dir, backend="ctranslate2", precision="fp32")
    reference = load(tiny_model_dir, backend="transformers", precision="fp32")
    short, long = "hi there", THREAD * 3
    prompts = [short, long, short + "!", long + " ok"]
    replies = model.generate(prompts, GREEDY_NO_PENALTY, n=2, batch_size=16)
    assert model.last_stats.batches == 1 and model.last_stats.backend_calls == 2
    assert replies == reference.generate(prompts, GREEDY_NO_PENALTY, n=2, batch_size=16)


def test_embedding_rows_beyond_the_tokenizer_are_never_generated(tmp_path, tiny_model_dir):
    """A model whose vocabulary is padded past its tokenizer (GPT-2 124M with a smaller BPE)
    converts, and neither backend ever picks a row the tokenizer cannot decode."""
    import torch
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    tokenizer = GPT2TokenizerFast.from_pretrained(tiny_model_dir)
    model = GPT2LMHeadModel.from_pretrained(tiny_model_dir)
    model.resize_token_embeddings(len(tokenizer) + 8)
    with torch.no_grad():  # make the last padded row the likeliest token whatever the input
        row = model.transformer.wte.weight[-1]
        row.copy_(torch.randn(row.shape, generator=torch.Generator().manual_seed(0)) * 3)
        model.transformer.ln_f.weight.mul_(0.01)
        model.transformer.ln_f.bias.copy_(row * (30.0 / row.dot(row)))
        assert model(torch.tensor([tokenizer("hi")["input_ids"]])).logits[0, -1].argmax() >= len(tokenizer)
    model.save_pretrained(tmp_path / "padded")
    tokenizer.save_pretrained(tmp_path / "padded")
    models = [load(tmp_path / "padded", backend=backend, precision="fp32")
              for backend in ("transformers", "ctranslate2", "openvino")]
    assert models[1].vocab_size == models[2].vocab_size == len(tokenizer) + 8
    replies = [m.generate(PROMPTS, GREEDY_NO_PENALTY) for m in models]
    assert replies[0] == replies[1] == replies[2]
    assert not any("<ssi-bot-unused" in r for rs in replies[1] for r in rs)


def test_length_groups_keep_similar_lengths_together():
    assert ct2.length_groups([200] * 16, 64) == [(0, 16)]
    assert ct2.length_groups([200] * 32, 64) == [(0, 16), (16, 32)]   # MAX_ROWS_PER_CALL
    assert ct2.length_groups([210, 205, 205, 200], 64) == [(0, 4)]
    assert ct2.length_groups([600, 600, 40, 40], 64) == [(0, 2), (2, 4)]
    lengths = [900, 500, 500, 480, 100, 90, 90, 20]
    groups = ct2.length_groups(lengths, 256)
    assert groups[0][0] == 0 and groups[-1][1] == len(lengths) and len(groups) > 1
    assert all(end == start for (_, end), (start, _) in zip(groups, groups[1:]))  # contiguous, in order
    for start, end in groups:  # equal lengths (a prompt's candidates) never part
        assert start == 0 or lengths[start - 1] != lengths[start]


@pytest.mark.parametrize("backend", ["ctranslate2", "openvino"])
def test_seeded_sampling_repeats(tiny_model_dir, backend):
    model = load(tiny_model_dir, backend=backend)
    sampling = Sampling(max_new_tokens=16, seed=7)
    first = model.generate(PROMPTS, sampling, n=3)
    assert model.generate(PROMPTS, sampling, n=3) == first
    assert model.generate(PROMPTS, Sampling(max_new_tokens=16, seed=8), n=3) != first
    assert len({reply for replies in first for reply in replies}) > len(PROMPTS)  # sampled, not greedy


def test_unseeded_openvino_calls_differ(tiny_model_dir):
    """GenAI's default seed is one fixed number: without fresh seeds every call would repeat."""
    model = load(tiny_model_dir, backend="openvino")
    sampling = Sampling(max_new_tokens=16)
    first = model.generate(PROMPTS, sampling, n=3)
    assert model.generate(PROMPTS, sampling, n=3) != first
    assert all(len(set(candidates)) > 1 for candidates in first[:1])  # a prompt's candidates differ too


# --- quality guard ---------------------------------------------------------------------

@pytest.fixture(scope="session")
def trained_tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    """The tiny GPT-2 trained for a few hundred steps on synthetic threads (a few seconds):
    unlike a random model it predicts text and closes its replies, so rounding can hurt it."""
    import random

    import torch
    from transformers import GPT2LMHeadModel

    from shared.training.model_init import init_model, synthetic_tagged_text

    out = init_model("tiny", tiny_tokenizer, tmp_path_factory.mktemp("trained") / "model", n_positions=128, seed=0)
    model = GPT2LMHeadModel.from_pretrained(out)
    model.train()
    stream = [i for text in synthetic_tagged_text(600, seed=3) for i in tiny_tokenizer(text)["input_ids"]]
    rng = random.Random(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and robust to a busy machine
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
            for _ in range(300):
                starts = [rng.randrange(len(stream) - 65) for _ in range(16)]
                batch = torch.tensor([stream[s:s + 64] for s in starts])
                loss = model(batch, labels=batch).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.save_pretrained(out)
    return out


def held_out_threads():
    from shared.training.model_init import synthetic_tagged_text

    texts = synthetic_tagged_text(60, seed=11)
    prompts = []
    for text in texts:  # each thread up to the opening tag of its last comment
        start = max(text.rfind("<|sor"), text.rfind("<|soopr"), text.rfind("<|soocr"))
        prompts.append(text[:text.index("|>", start) + 2][-120:])  # within the tiny context
    return texts, prompts


@pytest.mark.parametrize("backend, precision, tolerance", [("transformers", "bf16", 0.02), ("ctranslate2", "int8", 0.02),
                                                        ("openvino", "int8", 0.01)])
def test_quality_guard_stays_close_to_fp32(trained_tiny_model_dir, backend, precision, tolerance):
    """Perplexity within 2 % of fp32 (bf16, CTranslate2 int8) or 1 % (OpenVINO int8: issue 14's
    guard), and the same share of closed replies."""
    texts, prompts = held_out_threads()
    reference = load(trained_tiny_model_dir, backend="transformers", precision="fp32")
    model = load(trained_tiny_model_dir, backend=backend, precision=precision)
    fp32_perplexity = math.exp(sum(reference.loss(texts, batch_size=8)) / len(texts))
    perplexity = math.exp(sum(model.loss(texts, batch_size=8)) / len(texts))
    assert fp32_perplexity < 40, "the trained model should predict the threads"
    assert abs(perplexity / fp32_perplexity - 1) < tolerance, (perplexity, fp32_perplexity)

    def closed_share(m):
        # sampled as the bot does; 480 replies keep the sampling noise of a share near 0.02
        replies = [r for rs in m.generate(prompts, Sampling(max_new_tokens=40, seed=3), n=8) for r in rs]
        return sum(r.endswith("<|") and len(r) > 2 for r in replies) / len(replies)

    fp32_share = closed_share(reference)
    assert fp32_share > 0.3, "the trained model should close many of its replies"
    assert abs(closed_share(model) - fp32_share) <= 0.1


# --- auto ------------------------------------------------------------------------------

def test_auto_picks_a_backend_that_runs_here(tiny_model_dir):
    backend, precision, device = generation.choose()
    assert backend in generation.BACKENDS and precision in generation.PRECISIONS[(backend, device)]
    model = load(tiny_model_dir)
    assert (model.backend, model.precision, model.device) == (backend, precision, device)
    assert model.generate(["hi"], Sampling(max_new_tokens=4))


def test_auto_prefers_openvino_then_ctranslate2_then_transformers_on_a_cpu(monkeypatch):
    monkeypatch.setattr(generation, "_gpu_visible", lambda: False)
    assert generation.choose() == ("openvino", "int8", "cpu")
    assert generation.fallback() == ("ctranslate2", "int8", "cpu")
    assert generation.choose(precision="int8") == ("openvino", "int8", "cpu")
    missing = {"openvino_genai"}
    monkeypatch.setattr(generation, "_installed", lambda package: package not in missing)
    assert generation.choose() == ("ctranslate2", "int8", "cpu")
    assert generation.choose(precision="int8") == ("ctranslate2", "int8", "cpu")
    with pytest.raises(generation.ConfigError, match="openvino-genai package is not installed"):
        generation.choose(backend="openvino")
    missing.add("ctranslate2")
    backend, precision, device = generation.choose()
    assert (backend, device) == ("transformers", "cpu")
    assert precision == ("bf16" if generation._cpu_has_bf16() else "fp32")
    with pytest.raises(generation.ConfigError, match="ctranslate2 package is not installed"):
        generation.choose(backend="ctranslate2")


def test_a_gpu_keeps_the_torch_cuda_path(monkeypatch):
    monkeypatch.setattr(generation, "_gpu_visible", lambda: True)
    assert generation.choose() == ("transformers", "bf16", "cuda")
    assert generation.choose(precision="int8") == ("ctranslate2", "int8", "cuda")
    assert generation.choose(device="cpu") == ("openvino", "int8", "cpu")


# --- the slim runtime: the bot with OpenVINO and no torch -----------------------------------

def slim_site(folder: Path, requirements: Path) -> Path:
    """A folder that shows only the distributions ``requirements`` names, and those they
    require (their extras and other platforms' markers left out), each linked from this
    python's site-packages: what a fresh install of that file alone would import."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lines = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    todo = [Requirement(line) for line in lines if line]
    found = {}
    while todo:
        requirement = todo.pop()
        if canonicalize_name(requirement.name) in found:
            continue
        dist = metadata.distribution(requirement.name)   # not installed here: the test fails, naming it
        found[canonicalize_name(requirement.name)] = dist
        for needed in map(Requirement, dist.requires or []):
            if needed.marker is None or needed.marker.evaluate({"extra": ""}):
                todo.append(needed)
    folder.mkdir()
    for dist in found.values():
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            if not (folder / top).exists() and dist.locate_file(top).exists():
                (folder / top).symlink_to(dist.locate_file(top))
    return folder


def test_the_bot_runs_the_demo_with_openvino_from_the_slim_requirements_alone(tmp_path, demo_model_dir):
    """infra/container/bot.req is the bot image's whole environment (infra/Dockerfile): with
    only its packages importable (no torch, transformers or ctranslate2), run.py --demo
    generates with OpenVINO from a model converted beforehand, as the image converts at build time."""
    openvino.converted(demo_model_dir, "int8")          # the image's build-time conversion
    site = slim_site(tmp_path / "site", ROOT / "infra" / "container" / "bot.req")
    assert not (site / "torch").exists() and not (site / "transformers").exists()
    code = ("import importlib.util, runpy, sys; "
            f"sys.path[:0] = [{str(site)!r}, {str(ROOT)!r}]; "
            "missing = [m for m in ('torch', 'transformers', 'ctranslate2', 'optimum', 'simpletransformers') "
            "if importlib.util.find_spec(m)]; "
            "assert not missing, missing; "
            "sys.argv = ['run.py', '--demo', '--cycles', '2']; "
            "runpy.run_path('run.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "(openvino int8 on cpu" in done.stderr, done.stderr[-3000:]
    replies = [line for line in done.stdout.splitlines() if line.startswith("    u/DemoBot-GPT2: ")]
    assert replies and all("<|" not in line for line in replies)
    assert "Traceback" not in done.stderr
