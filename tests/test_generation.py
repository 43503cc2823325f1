"""shared.generation: loading model directories and batched generation, on tiny local models.

Behaviour tests run on every backend (the ``backend`` fixture: transformers, CTranslate2 and
OpenVINO); tests of the transformers loop's internals name it. The converting backends' own
checks (conversion cache, agreement with transformers, the quality guard) are in
tests/test_backends.py.
"""

import logging
import shutil
import subprocess
import sys

import pytest

from shared.errors import ModelError
from shared.generation import BACKENDS, GenerationStats, Sampling, load
from tests.conftest import TINY_N_POSITIONS

GREEDY = Sampling(temperature=0, max_new_tokens=20)
THREAD = ("<|soss r/test|><|sot|>What is this<|eot|><|sost|>Tell me about it<|eost|>"
          "<|sor u/alice|>hi there<|eor|><|sor|>")
PROMPTS = [THREAD, "<|sor|>", "Just a few words of text, the thread and the post title", "hi"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend in turn: the behaviour under test is the same on all of them."""
    return request.param


def prompt_of(model, n_tokens):
    """A prompt of exactly ``n_tokens`` tokens."""
    ids = model.encode("a b c d e f g h " * n_tokens)[:n_tokens]
    text = model.decode(ids)
    assert len(model.encode(text)) == n_tokens
    return text


# --- loading ---------------------------------------------------------------------------

def test_loads_a_transformers_directory(tiny_model_dir, backend):
    model = load(tiny_model_dir, backend=backend)
    assert model.backend == backend and model.n_positions == TINY_N_POSITIONS
    [[reply]] = model.generate([THREAD], GREEDY)
    assert isinstance(reply, str) and reply


def test_loads_best_model_inside_a_run_folder(tmp_path, tiny_model_dir):
    shutil.copytree(tiny_model_dir, tmp_path / "outputs" / "best_model")
    model = load(tmp_path / "outputs")
    assert model.path.name == "best_model"
    assert load(tmp_path / "outputs" / "best_model") is model


def test_loads_a_simpletransformers_directory_with_the_same_weights(simpletransformers_model_dir, tiny_model_dir,
                                                                    backend):
    assert not (simpletransformers_model_dir / "tokenizer.json").exists()
    model = load(simpletransformers_model_dir, backend=backend)
    assert model.generate(PROMPTS, GREEDY) == load(tiny_model_dir, backend=backend).generate(PROMPTS, GREEDY)


def test_a_model_is_loaded_once_per_path(tiny_model_dir):
    assert load(tiny_model_dir) is load(str(tiny_model_dir) + "/")
    assert load(tiny_model_dir) is load(tiny_model_dir / ".." / tiny_model_dir.name)


def test_each_backend_and_precision_is_its_own_model(tiny_model_dir):
    fp32 = load(tiny_model_dir, backend="transformers", precision="fp32")
    assert load(tiny_model_dir, backend="transformers", precision="fp32") is fp32
    assert load(tiny_model_dir, backend="transformers", precision="bf16") is not fp32
    assert load(tiny_model_dir, backend="ctranslate2", precision="int8") is not fp32
    assert load(tiny_model_dir, backend="openvino", precision="int8") is not load(tiny_model_dir, backend="ctranslate2")
    assert load(tiny_model_dir, precision="int8").backend == "openvino"     # int8 alone: the fastest that runs it
    assert load(tiny_model_dir, precision="int4").backend == "openvino"
    assert load(tiny_model_dir, precision="bf16").backend == "transformers"


@pytest.mark.parametrize("settings, problem", [
    (dict(backend="transformers", precision="int8"), "generation.precision int8: backend transformers on cpu runs"),
    (dict(backend="ctranslate2", precision="bf16", device="cpu"), "backend ctranslate2 on cpu runs int8, fp32"),
    (dict(backend="openvino", precision="bf16"), "backend openvino on cpu runs int8, int4, fp32"),
    (dict(backend="openvino", device="cuda"), "generation.backend openvino runs on the CPU"),
    (dict(backend="onnx"), "generation.backend: expected auto, transformers, ctranslate2 or openvino"),
])
def test_a_combination_no_backend_runs_is_a_config_error(tiny_model_dir, settings, problem):
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match=problem):
        load(tiny_model_dir, **settings)


def broken_copy(tmp_path, tiny_model_dir, *remove):
    broken = tmp_path / "models" / "broken"
    shutil.copytree(tiny_model_dir, broken)
    for name in remove:
        (broken / name).unlink()
    return broken


@pytest.mark.parametrize("remove, missing", [
    ((), "no such directory"),
    (("config.json",), "no config.json"),
    (("model.safetensors",), "no weights (model.safetensors or pytorch_model.bin)"),
    (("tokenizer.json", "vocab.json", "merges.txt"), "no tokenizer (vocab.json + merges.txt or tokenizer.json)"),
    (("tokenizer.json", "merges.txt"), "no merges.txt"),
])
def test_an_incomplete_directory_names_the_path_and_the_missing_piece(tmp_path, tiny_model_dir, remove, missing):
    path = broken_copy(tmp_path, tiny_model_dir, *remove) if remove else tmp_path / "models" / "nothing"
    with pytest.raises(ModelError) as raised:
        load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {missing}")
    assert "\n" not in message
    assert "config.json, model.safetensors or pytorch_model.bin" in message


def test_corrupt_weights_give_a_model_error(tmp_path, tiny_model_dir, backend):
    path = broken_copy(tmp_path, tiny_model_dir)
    (path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match=f"^{path}: cannot load the model") as raised:
        load(path, backend=backend)
    assert "\n" not in str(raised.value)


def test_importing_generation_stays_light():
    modules = ("simpletransformers", "pandas", "sklearn", "datasets", "torch", "openvino", "ctranslate2")
    code = f"import sys, shared.generation; print([m for m in {modules!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- generation ------------------------------------------------------------------------

def test_returns_n_continuations_per_prompt_in_input_order(tiny_model_dir, backend):
    model = load(tiny_model_dir, backend=backend)
    sampling = Sampling(max_new_tokens=12, seed=3)
    replies = model.generate(PROMPTS, sampling, n=3, batch_size=6)
    assert [len(r) for r in replies] == [3, 3, 3, 3]
    assert model.last_stats.rows == 12 and model.last_stats.batches == 2  # 6 rows = 2 prompts x 3
    assert model.generate(PROMPTS, sampling, n=3, batch_size=6) == replies  # seeded

    # input order: each prompt's candidates are what that prompt gets on its own
    batched = model.generate(PROMPTS, GREEDY, n=2, batch_size=4)
    assert len({tuple(candidates) for candidates in batched}) == len(PROMPTS)  # order matters
    assert batched == [model.generate([prompt], GREEDY, n=2)[0] for prompt in PROMPTS]


def test_a_row_among_longer_and_shorter_prompts_generates_what_it_would_alone(tiny_model_dir, backend):
    """transformers left-pads the batch; CTranslate2 feeds the longer prompts step by step
    (or splits the batch); OpenVINO runs each prompt as its own request: either way a row's
    reply does not depend on its neighbours."""
    model = load(tiny_model_dir, backend=backend)
    greedy = Sampling(temperature=0, repetition_penalty=1.5, max_new_tokens=20)
    prompts = [prompt_of(model, 3), THREAD, prompt_of(model, 40), prompt_of(model, 38)]
    batched = model.generate(prompts, greedy, batch_size=16)
    stats = model.last_stats
    assert stats.batches == 1
    if backend == "transformers":
        assert stats.padded_prompt_tokens > stats.prompt_tokens  # really padded
    elif backend == "ctranslate2":
        assert stats.backend_calls < 4 and stats.decode_rows > stats.new_tokens - stats.rows  # fed step by step
    else:  # one call, no padding, no prompt token fed as a decode step
        assert stats.backend_calls == 1 and stats.padded_prompt_tokens == stats.prompt_tokens
        assert stats.decode_rows == stats.new_tokens - stats.rows
    assert batched == [model.generate([p], greedy)[0] for p in prompts]


def test_greedy_replies_match_transformers_generate(tiny_model_dir):
    """Batched and left-padded, each reply is what transformers' own generate gives the
    prompt alone: masks, positions, the cache and the repetition penalty (which must not
    count the padding) all agree with the reference."""
    import torch

    model = load(tiny_model_dir, backend="transformers")
    greedy = Sampling(temperature=0, repetition_penalty=1.3, max_new_tokens=30)
    replies = model.generate(PROMPTS, greedy, batch_size=16)
    for prompt, [reply] in zip(PROMPTS, replies):
        ids = torch.tensor([model.tokenizer(prompt)["input_ids"]])
        with torch.inference_mode():
            out = model.hf_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                          repetition_penalty=1.3, max_new_tokens=30,
                                          pad_token_id=model.tokenizer.eos_token_id)
        tokens = out[0, ids.shape[1]:].tolist()
        ended = model.tokenizer.eos_token_id in tokens
        if ended:
            tokens = tokens[:tokens.index(model.tokenizer.eos_token_id)]
        reference = model.tokenizer.decode(tokens)
        marker = reference.find("<|")
        if marker >= 0:
            assert reply == reference[:marker + 2]
        else:
            assert reply == reference + ("<|endoftext|>" if ended else "")


def assert_cut_at_first_marker(reply, max_new_tokens, model):
    if reply.endswith("<|endoftext|>") and "<|" not in reply[:-len("<|endoftext|>")]:
        return                                                # ended by eos
    first = reply.find("<|")
    if first >= 0:
        assert first == len(reply) - 2, reply                # nothing after the first <|
    else:
        assert len(model.encode(reply)) >= max_new_tokens - 2, reply  # ran out of tokens


def test_every_row_stops_at_its_first_marker(rigged_model_dir, backend):
    model = load(rigged_model_dir(["<|"], strength=5.0), backend=backend)
    replies = model.generate([THREAD, "hi"], Sampling(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=40,
                                                     seed=0), n=8)
    flat = [r for candidates in replies for r in candidates]
    for reply in flat:
        assert_cut_at_first_marker(reply, 40, model)
    closed = [r for r in flat if r.endswith("<|")]
    assert len(closed) >= 8 and len({len(r) for r in closed}) > 3  # rows stop at different steps
    assert model.last_stats.closed_rows == len(closed)  # each stopped there, not cut afterwards
    # ... and ended there: the closed rows did not run on to their budget of 40 tokens
    assert model.last_stats.new_tokens - 40 * model.last_stats.cut_rows < 40 * len(closed) // 2


def test_a_marker_split_over_two_tokens_stops_the_row(rigged_model_dir, backend):
    model = load(rigged_model_dir(["<", "|"], strength=8.0), backend=backend)
    replies = model.generate([THREAD], Sampling(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=40,
                                                seed=1), n=8)[0]
    for reply in replies:
        assert reply.endswith("<|") and reply.find("<|") == len(reply) - 2, reply
    assert any(len(r) > 2 for r in replies)  # "|" and "<<" alone did not stop anything
    assert model.last_stats.closed_rows == 8   # stopped at the "|", not cut afterwards
    assert model.last_stats.new_tokens < 8 * 40 // 2   # ... and generated nothing after it


def test_finished_rows_are_dropped_from_the_batch(rigged_model_dir):
    model = load(rigged_model_dir(["<|"], strength=5.0), backend="transformers")
    sampling = Sampling(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=40, seed=0)
    model.generate([THREAD], sampling, n=16)
    stats = model.last_stats
    assert isinstance(stats, GenerationStats)
    assert stats.rows == 16 and stats.closed_rows + stats.eos_rows + stats.cut_rows == 16
    # each row's first token comes from the prompt pass, every later one costs one decode row
    assert stats.decode_rows == stats.new_tokens - stats.rows
    longest = stats.forward_calls  # prompt pass + decode steps = the longest row's tokens
    assert stats.decode_rows < 16 * (longest - 1) / 2   # far less than keeping every row
    assert stats.tokens_per_second > 0


def test_generation_stops_when_every_row_has_closed(rigged_model_dir, backend):
    model = load(rigged_model_dir(["<|"], strength=30.0), backend=backend)
    replies = model.generate(PROMPTS, Sampling(max_new_tokens=100, seed=0), n=2)
    assert all(r == ["<|", "<|"] for r in replies)
    assert model.last_stats.new_tokens == model.last_stats.rows
    [[reply]] = model.generate([THREAD], Sampling(max_new_tokens=100, seed=0))
    assert reply == "<|" and model.last_stats.forward_calls == 1 and model.last_stats.decode_rows == 0


def test_prompt_and_reply_never_exceed_the_context(rigged_model_dir, caplog, backend):
    model = load(rigged_model_dir(["a"], strength=30.0), backend=backend)  # never closes: rows run to their limit
    sampling = Sampling(max_new_tokens=100, seed=0)
    # 60 + 68 = the context; a short row in the same batch keeps its full 100 tokens
    model.generate([prompt_of(model, 60), prompt_of(model, 5)], sampling)
    stats = model.last_stats
    assert stats.cut_rows == 2 and stats.truncated_prompts == 0
    assert stats.new_tokens == (TINY_N_POSITIONS - 60) + 100

    # too long for context minus the reply budget (100, at most half the context): cut from the left
    with caplog.at_level(logging.WARNING, logger="shared.generation"):
        [[reply]] = model.generate([prompt_of(model, 200)], sampling)
    stats = model.last_stats
    assert stats.truncated_prompts == 1 and "cut to its last 64" in caplog.text
    assert stats.prompt_tokens + stats.new_tokens == TINY_N_POSITIONS
    assert reply == "a" * 64


def test_eos_ends_a_row_and_shows_as_endoftext(rigged_model_dir, backend):
    model = load(rigged_model_dir(["<|endoftext|>"], strength=30.0), backend=backend)
    [[reply]] = model.generate([THREAD], Sampling(seed=0))
    assert reply == "<|endoftext|>"
    assert model.last_stats.eos_rows == 1


def test_loss_is_lower_for_text_the_model_prefers(rigged_model_dir, backend):
    model = load(rigged_model_dir(["a"], strength=30.0), backend=backend)
    aaa, other = model.loss(["a" * 30, "hello there, a thread <|eor|>"])
    assert aaa < other


def test_sampling_takes_the_settings_of_a_bot():
    class BotSampling:
        temperature, top_k, top_p, repetition_penalty, max_new_tokens, candidates = 0.7, 20, 0.9, 1.1, 64, 2

    assert Sampling.from_settings(BotSampling, seed=5) == Sampling(0.7, 20, 0.9, 1.1, 64, seed=5)


def test_reply_length_is_the_originals_1024_bounded_by_the_context(rigged_model_dir, backend):
    # zacc/ssi-bot generators/text/__init__.py:2 asked for 1024 new tokens; the context bounds it.
    assert Sampling().max_new_tokens == 1024
    model = load(rigged_model_dir(["a"], strength=30.0), backend=backend)   # never closes
    model.generate([prompt_of(model, 40)], Sampling(seed=0))
    assert model.last_stats.new_tokens == TINY_N_POSITIONS - 40


def test_model_args_json_gives_top_p_and_do_sample_as_the_original_honoured_them(tmp_path, tiny_model_dir):
    import json

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    (model_dir / "model_args.json").write_text(json.dumps({"top_p": 0.5, "max_length": 20, "manual_seed": 7}))
    model = load(model_dir)
    assert model.model_args["top_p"] == 0.5

    class Unset:   # a bot that leaves top_p open (its yaml default)
        temperature, top_k, top_p, repetition_penalty, max_new_tokens = 0.8, 40, None, 1.008, 1024

    class Explicit(Unset):
        top_p = 0.9

    assert Sampling.from_settings(Unset, model_args=model.model_args).top_p == 0.5
    assert Sampling.from_settings(Explicit, model_args=model.model_args).top_p == 0.9
    # max_length: the original's jobs always passed their own 1024, so the file's never counted
    assert Sampling.from_settings(Unset, model_args=model.model_args).max_new_tokens == 1024
    assert Sampling.from_settings(Unset, model_args={}).top_p == 0.95
    greedy = Sampling.from_settings(Unset, model_args={"do_sample": False})
    assert greedy.temperature == 0
    assert model.generate([THREAD], Sampling.from_settings(Unset, seed=1, model_args={"do_sample": False})) == \
        model.generate([THREAD], Sampling(temperature=0, top_p=0.95, seed=2))


def test_an_unreadable_model_args_json_is_ignored(tmp_path, tiny_model_dir, caplog):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    (model_dir / "model_args.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        model = load(model_dir)
    assert model.model_args == {} and "model_args.json is unreadable" in caplog.text
