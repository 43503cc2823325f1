"""Shared pytest fixtures."""

import os

import pytest

# Nothing may reach the HuggingFace hub from a test (there is no network anyway).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# --- tiny GPT-2 models (built once per session by shared.model_init) -------------------

TINY_N_POSITIONS = 128


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level BPE tokenizer (vocab 400) trained on a few hundred synthetic tagged threads."""
    from shared.model_init import synthetic_tagged_text, train_tokenizer

    return train_tokenizer(synthetic_tagged_text(300, seed=0), vocab_size=400)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    """A random 2-layer GPT-2 (context 128) saved as transformers saves it (safetensors).

    Its weights are ten times GPT-2's usual scale, so attention is far from uniform and a
    wrong mask, position or cache entry changes the output.
    """
    from shared.model_init import init_model

    return init_model("tiny", tiny_tokenizer, tmp_path_factory.mktemp("tiny") / "model",
                      n_positions=TINY_N_POSITIONS, seed=0, initializer_range=0.2)


@pytest.fixture(scope="session")
def rigged_model_dir(tmp_path_factory, tiny_model_dir):
    """Build a copy of the tiny model that strongly prefers the given token texts.

    ``rigged_model_dir(["<|"], strength=4.0)`` returns the path of a model whose final
    layer norm bias points at those tokens' embeddings (tied to the output layer), so
    their logits are raised by about ``strength`` whatever the input: an honest model,
    only a very opinionated one. Cached per arguments.
    """
    import torch
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    built = {}

    def build(texts, strength=8.0):
        key = (tuple(texts), strength)
        if key not in built:
            tokenizer = GPT2TokenizerFast.from_pretrained(tiny_model_dir)
            model = GPT2LMHeadModel.from_pretrained(tiny_model_dir)
            vocab = tokenizer.get_vocab()
            assert all(text in vocab for text in texts), f"not single tokens: {texts}"
            ids = [vocab[text] for text in texts]
            with torch.no_grad():
                rows = model.transformer.wte.weight[ids]                # (k, d)
                # the bias b with b . row_i = strength for every favoured row
                bias = rows.T @ torch.linalg.solve(rows @ rows.T, torch.full((len(ids),), strength))
                model.transformer.ln_f.bias.copy_(bias)
                model.transformer.ln_f.weight.mul_(0.5)             # keep some input dependence
            out = tmp_path_factory.mktemp("rigged") / "model"
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
            built[key] = out
        return built[key]

    return build


@pytest.fixture(scope="session")
def simpletransformers_model_dir(tmp_path_factory, tiny_model_dir):
    """The tiny model in the layout simpletransformers (old transformers) wrote: pytorch_model.bin,
    vocab.json + merges.txt and no tokenizer.json, plus its own model_args.json."""
    import shutil

    from transformers import GPT2LMHeadModel

    out = tmp_path_factory.mktemp("simpletransformers") / "model"
    GPT2LMHeadModel.from_pretrained(tiny_model_dir).save_pretrained(out, safe_serialization=False)
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, out / name)
    (out / "model_args.json").write_text('{"model_type": "gpt2", "max_seq_length": 128}')
    return out


# --- local reddit sandbox (shared/sandbox) ---------------------------------------------

@pytest.fixture
def sandbox():
    """A fresh local reddit (in-memory state, free port) that real PRAW talks to over HTTP.

    ``sandbox.reddit("alice")`` is a praw.Reddit logged in as alice (account created on
    first login); ``sandbox.url`` is the base URL for subprocesses; admin helpers
    (lock, remove, ban, faults.add, comments_by, ...) are methods of the fixture.
    """
    from shared.sandbox import Sandbox

    with Sandbox() as sb:
        yield sb
