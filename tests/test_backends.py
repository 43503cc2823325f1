"""The CTranslate2 backend (shared/generation/ct2.py) against the transformers one, and choosing between them.

The behaviour both backends share (stop rule, best-of-N, ordering, context limit) is
pinned backend by backend in tests/test_generation.py; here: the conversion cache, the
agreement of the two backends, the quality guard and ``auto``.
"""

import math
import os
import shutil
import subprocess
import sys

import pytest

from shared.generation import ct2
from shared import generation
from shared.generation import Sampling, load
from tests.test_generation import PROMPTS, THREAD

GREEDY_NO_PENALTY = Sampling(temperature=0, repetition_penalty=1.0, max_new_tokens=24)


@pytest.fixture
def model_copy(tmp_path, tiny_model_dir):
    """A private copy of the tiny model: its conversion cache starts empty."""
    path = tmp_path / "model"
    shutil.copytree(tiny_model_dir, path, ignore=shutil.ignore_patterns(f"{ct2.CACHE_PREFIX}*"))
    return path


# --- conversion cache ------------------------------------------------------------------

def test_the_conversion_is_cached_beside_the_model_and_reused(model_copy):
    model = load(model_copy, backend="ctranslate2")
    cache = model_copy / ".ct2-int8"
    assert model.converted_dir == cache and (cache / "model.bin").is_file() and (cache / ct2.META_FILE).is_file()
    converted_at = (cache / "model.bin").stat().st_mtime_ns
    assert ct2.converted(model_copy, "int8") == cache
    assert (cache / "model.bin").stat().st_mtime_ns == converted_at  # not converted again
    assert not [p for p in model_copy.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_a_changed_source_is_converted_again(model_copy, rigged_model_dir):
    before = load(model_copy, backend="ctranslate2").generate([THREAD], GREEDY_NO_PENALTY)
    cache = model_copy / ".ct2-int8"
    converted_at = (cache / "model.bin").stat().st_mtime_ns
    # a finetune rewrites the weights in place: here, a model that closes at once
    shutil.copy(rigged_model_dir(["<|"], strength=30.0) / "model.safetensors", model_copy / "model.safetensors")
    generation._models.clear()
    model = load(model_copy, backend="ctranslate2")
    assert (cache / "model.bin").stat().st_mtime_ns != converted_at
    assert model.generate([THREAD], GREEDY_NO_PENALTY) == [["<|"]] != before


def test_an_incomplete_conversion_is_never_used(model_copy):
    load(model_copy, backend="ctranslate2")
    cache = model_copy / ".ct2-int8"
    (cache / ct2.META_FILE).unlink()                 # as if a conversion died before its last file
    generation._models.clear()
    assert load(model_copy, backend="ctranslate2").generate([THREAD], GREEDY_NO_PENALTY)
    assert (cache / ct2.META_FILE).is_file()


def test_a_read_only_model_directory_is_converted_into_the_user_cache(model_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(ct2.os, "access", lambda path, mode: False)  # as for a read-only mount
    target = ct2.cache_dir(model_copy, "int8")
    assert target.is_relative_to(tmp_path / "cache" / "ssi-bot" / "ct2")
    assert ct2.converted(model_copy, "int8") == target and not (model_copy / ".ct2-int8").exists()


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
    heavy = ("simpletransformers", "pandas", "sklearn", "torch", "transformers", "ctranslate2", "datasets")
    code = f"import sys, jobs.generate, shared.generation; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "[]"


# --- the same replies as transformers ----------------------------------------------------

def test_greedy_replies_equal_transformers_fp32(tiny_model_dir):
    reference = load(tiny_model_dir, backend="transformers", precision="fp32")
    model = load(tiny_model_dir, backend="ctranslate2", precision="fp32")
    expected = reference.generate(PROMPTS, GREEDY_NO_PENALTY, n=2, batch_size=4)
    assert model.generate(PROMPTS, GREEDY_NO_PENALTY, n=2, batch_size=4) == expected
    assert model.loss(PROMPTS) == pytest.approx(reference.loss(PROMPTS), rel=1e-4, nan_ok=True)


def test_int8_greedy_replies_mostly_equal_fp32(trained_tiny_model_dir):
    """int8 rounds the weights: a greedy reply may take another turn where two tokens are
    nearly tied, but most replies of a trained model stay the same."""
    _, prompts = held_out_threads()
    reference = load(trained_tiny_model_dir, backend="transformers", precision="fp32")
    int8 = load(trained_tiny_model_dir, backend="ctranslate2", precision="int8")
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
    models = [load(tmp_path / "padded", backend=backend, precision="fp32") for backend in ("transformers", "ctranslate2")]
    assert models[1].vocab_size == len(tokenizer) + 8
    replies = [m.generate(PROMPTS, GREEDY_NO_PENALTY) for m in models]
    assert replies[0] == replies[1]
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


def test_seeded_sampling_repeats_on_ctranslate2(tiny_model_dir):
    model = load(tiny_model_dir, backend="ctranslate2")
    sampling = Sampling(max_new_tokens=16, seed=7)
    first = model.generate(PROMPTS, sampling, n=3)
    assert model.generate(PROMPTS, sampling, n=3) == first
    assert model.generate(PROMPTS, Sampling(max_new_tokens=16, seed=8), n=3) != first
    assert len({reply for replies in first for reply in replies}) > len(PROMPTS)  # sampled, not greedy


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


@pytest.mark.parametrize("backend, precision", [("transformers", "bf16"), ("ctranslate2", "int8")])
def test_quality_guard_bf16_and_int8_stay_within_2_percent_of_fp32(trained_tiny_model_dir, backend, precision):
    texts, prompts = held_out_threads()
    reference = load(trained_tiny_model_dir, backend="transformers", precision="fp32")
    model = load(trained_tiny_model_dir, backend=backend, precision=precision)
    fp32_perplexity = math.exp(sum(reference.loss(texts, batch_size=8)) / len(texts))
    perplexity = math.exp(sum(model.loss(texts, batch_size=8)) / len(texts))
    assert fp32_perplexity < 40, "the trained model should predict the threads"
    assert abs(perplexity / fp32_perplexity - 1) < 0.02, (perplexity, fp32_perplexity)

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


def test_auto_prefers_ctranslate2_int8_on_a_cpu_and_falls_back_to_transformers(monkeypatch):
    monkeypatch.setattr(generation, "_gpu_visible", lambda: False)
    assert generation.choose() == ("ctranslate2", "int8", "cpu")
    monkeypatch.setattr(generation, "_installed", lambda package: package != "ctranslate2")
    backend, precision, device = generation.choose()
    assert (backend, device) == ("transformers", "cpu")
    assert precision == ("bf16" if generation._cpu_has_bf16() else "fp32")
    with pytest.raises(generation.ConfigError, match="ctranslate2 package is not installed"):
        generation.choose(backend="ctranslate2")
