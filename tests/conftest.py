"""Shared pytest fixtures."""

import os

import pytest

# Nothing may reach the HuggingFace hub from a test (there is no network anyway).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# --- tiny GPT-2 models (built once per session by shared.training.model_init) -------------------

TINY_N_POSITIONS = 128


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level BPE tokenizer (vocab 400) trained on a few hundred synthetic tagged threads."""
    from shared.training.model_init import synthetic_tagged_text, train_tokenizer

    return train_tokenizer(synthetic_tagged_text(300, seed=0), vocab_size=400)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    """A random 2-layer GPT-2 (context 128) saved as transformers saves it (safetensors).

    Its weights are ten times GPT-2's usual scale, so attention is far from uniform and a
    wrong mask, position or cache entry changes the output.
    """
    from shared.training.model_init import init_model

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


# --- S3-compatible server (moto) for the state sync (shared/state/replica.py) -----------------

class _S3Server:
    """moto's standalone S3 on 127.0.0.1: ``url`` for endpoint_url, ``new_bucket()`` for a fresh one."""

    def __init__(self, url):
        self.url = url
        self._count = 0

    def client(self):
        import boto3
        return boto3.session.Session().client("s3", endpoint_url=self.url, region_name="us-east-1")

    def new_bucket(self, name="ssi-test"):
        self._count += 1
        bucket = f"{name}-{self._count}"
        self.client().create_bucket(Bucket=bucket)
        return bucket


@pytest.fixture(scope="session")
def s3_server():
    """A ThreadedMotoServer (moto[server]) on 127.0.0.1 and a free port, for the whole session,
    with dummy credentials in the environment (also seen by subprocesses) and the EC2
    metadata lookup off, so nothing leaves the machine."""
    import logging

    from moto.server import ThreadedMotoServer

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # one line per request otherwise
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield _S3Server(f"http://{host}:{port}")
        finally:
            server.stop()


# --- the demo model (shared/training/demo_model.py) -----------------------------------------------

@pytest.fixture(scope="session")
def demo_model_dir():
    """models/demo/best_model: a tiny GPT-2 trained by the project's own export -> finetune
    pipeline on generated threads. Built on first use (one to three minutes on 2 CPU cores),
    then cached in models/demo (gitignored) across sessions; rebuilt when incomplete or when
    its recipe or the tag format changed."""
    from shared.training.demo_model import ensure_demo_model

    return ensure_demo_model(progress=False)


# --- a model that can only say a few words (generate's and rehearse's checks) ------------

@pytest.fixture(scope="session")
def word_model_dir(tmp_path_factory):
    """``build(words)``: a tiny GPT-2 whose likeliest tokens, whatever the input, are ``words``
    (each " word") and "<|", all raised alike. With ``top_k`` = len(words) + 1 it samples only
    those, and with a few new tokens every candidate is empty, made of ``words``, or unclosed."""
    import torch
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    from shared.training.model_init import init_model, synthetic_tagged_text, train_tokenizer

    vocabulary = ["idiot", "stupid", "hello"]
    tokenizer = train_tokenizer(synthetic_tagged_text(300, seed=0) + [" " + " ".join(vocabulary)] * 300, 400)
    base = init_model("tiny", tokenizer, tmp_path_factory.mktemp("words") / "base", n_positions=512, seed=0)
    built = {}

    def build(words):
        if words not in built:
            tokenizer = GPT2TokenizerFast.from_pretrained(base)
            model = GPT2LMHeadModel.from_pretrained(base)
            ids = [tokenizer.get_vocab()[token] for token in ["<|"] + [f"Ġ{w}" for w in words]]
            with torch.no_grad():
                rows = model.transformer.wte.weight[ids]
                model.transformer.ln_f.bias.copy_(rows.T @ torch.linalg.solve(rows @ rows.T, torch.full((len(ids),), 12.0)))
                model.transformer.ln_f.weight.mul_(0.1)
            out = tmp_path_factory.mktemp("words") / "-".join(words)
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
            built[words] = out
        return built[words]

    return build
