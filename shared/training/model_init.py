"""Fresh GPT-2 models built locally: no hub, no downloads.

Tests need a tiny model that builds in well under a second; benchmarks need a model
with the exact shape of GPT-2 small (124M). Both are randomly initialised and saved in
the layout ``transformers`` and ``simpletransformers`` write (config.json,
model.safetensors, tokenizer.json + vocab.json + merges.txt), so ``shared.generation``
loads them exactly like an operator's finetuned model.

Usage::

    from shared.training.model_init import synthetic_tagged_text, train_tokenizer, init_model

    tokenizer = train_tokenizer(synthetic_tagged_text(300, seed=0), vocab_size=400)
    path = init_model("tiny", tokenizer, "models/tiny", n_positions=128, seed=0)

    # the benchmark model: GPT-2 small's shape (12 layers, 768 wide, vocab 50257)
    python -m shared.training.model_init models/gpt2-124M-random --size 124M

The real GPT-2 vocab files cannot be downloaded here, so the 124M model's tokenizer is a
byte-level BPE trained to 50257 entries on generated text. Generation speed does not
depend on the weights or the merges, only on the shapes (layers, width, vocab, context)
and the number of tokens, so timings on this model stand for any finetuned GPT-2 small.
Its text is gibberish, of course.

The tags (``<|sor|>``, ``<|eor|>``...) stay ordinary text, as in the community models:
only ``<|endoftext|>`` is a special token (bos, eos and unk, as in GPT-2).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Iterable

from shared.tagging import END_OF_TEXT, Comment, Post, Role, Thread, render_comment, render_items

log = logging.getLogger(__name__)

ENDOFTEXT = END_OF_TEXT          # the only special token: bos, eos and unk, as in GPT-2
GPT2_VOCAB_SIZE = 50257

# Model shapes. "tiny" keeps a test's build well under a second; "124M" is GPT-2 small.
SIZES = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64),
    "124M": dict(n_layer=12, n_head=12, n_embd=768),
}


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A GPT-2 style byte-level BPE tokenizer trained on ``texts``.

    Returns a ``transformers.GPT2TokenizerFast`` whose only special token is
    ``<|endoftext|>`` (bos, eos and unk), with ``add_prefix_space=False`` like GPT-2.
    The vocabulary is at most ``vocab_size``; it is smaller when the text has too few
    distinct pieces to merge (the 256 byte symbols plus the special token are the floor).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2TokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,  # every pair may merge, so a generated corpus can reach 50257
        special_tokens=[ENDOFTEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # any byte stays encodable
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return GPT2TokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=ENDOFTEXT,
        eos_token=ENDOFTEXT,
        unk_token=ENDOFTEXT,
        add_prefix_space=False,
        model_max_length=1024,
    )


def init_model(size: str, tokenizer, out_dir, n_positions: int = 1024, seed: int = 0,
               initializer_range: float = 0.02) -> Path:
    """Save a randomly initialised GPT2LMHeadModel of ``size`` with ``tokenizer`` in ``out_dir``.

    ``size`` is "tiny" (2 layers, 2 heads, width 64; vocab = the tokenizer's size) or
    "124M" (GPT-2 small: 12 layers, 12 heads, width 768, vocab 50257). A 124M model whose
    tokenizer has fewer than 50257 entries keeps vocab 50257 so its speed is GPT-2 small's;
    the extra embedding rows are simply never produced by the tokenizer. The same ``seed``
    gives the same weights. ``initializer_range`` is the weights' standard deviation (GPT-2's
    0.02); tests raise it so that a random model's output depends more on its input (with
    0.02 attention is nearly uniform). Returns ``out_dir`` as a Path.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, not {size!r}")
    vocab_size = len(tokenizer)
    if size == "124M":
        if vocab_size > GPT2_VOCAB_SIZE:
            raise ValueError(f"tokenizer has {vocab_size} entries, more than GPT-2's {GPT2_VOCAB_SIZE}")
        if vocab_size < GPT2_VOCAB_SIZE:
            log.warning("tokenizer has %d entries; the 124M model keeps GPT-2's vocab of %d",
                        vocab_size, GPT2_VOCAB_SIZE)
        vocab_size = GPT2_VOCAB_SIZE

    eos_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        initializer_range=initializer_range,
        **SIZES[size],
    )
    # fork_rng: seeding must not disturb the caller's global random state
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    model.eval()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


# A small fixed word list so generated threads look like threads; random syllable
# words give the BPE trainer enough distinct pieces to reach GPT-2's 50257 entries.
_COMMON_WORDS = (
    "the a to and of is it you that in i this for my on with be not are but have what "
    "just like so was do if your they can me all at about no one how why when would think "
    "people get more good really know because time he she we an or there out up from "
    "some will any lol yes thanks post comment reddit bot gpt sub thread op title"
).split()
ROLES = (Role.REPLY, Role.OP_REPLY, Role.OWN_CHAIN_REPLY)
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th", "sh", "ch", "qu", "st"]


def synthetic_tagged_text(n_lines: int, seed: int = 0, n_rare_words: int = 2000) -> list[str]:
    """``n_lines`` generated training samples in the tag format, one thread per line.

    Each line is a self post and a few comments in random roles, every item tagged with its
    name by ``shared.tagging``, then ``<|endoftext|>``. ``n_rare_words`` random syllable words enrich the vocabulary: a
    few hundred lines with the default train a tiny tokenizer; about 60000 lines with
    200000 rare words reach vocab 50257.
    """
    rng = random.Random(seed)
    rare = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 5))) for _ in range(n_rare_words)]

    def sentence(n_words):
        words = [rng.choice(_COMMON_WORDS) if rng.random() < 0.7 else rng.choice(rare) for _ in range(n_words)]
        return " ".join(words).capitalize() + rng.choice([".", "?", "!", ""])

    lines = []
    for _ in range(n_lines):
        post = Post(rng.choice(rare), None, sentence(rng.randint(3, 10)), sentence(rng.randint(5, 25)))
        parts = render_items(Thread(post, ()))
        for _ in range(rng.randint(1, 4)):
            # any role and any author: what a tokenizer or a benchmark prompt needs is the format
            role, author = rng.choice(ROLES), rng.choice(rare)
            parts.append(render_comment(Comment(author, sentence(rng.randint(2, 20))), role))
        lines.append("".join(parts) + END_OF_TEXT)
    return lines


def build_gpt2_small_random(out_dir, seed: int = 0, n_positions: int = 1024) -> Path:
    """The benchmark model: GPT-2 small's shape, random weights, a 50257-entry tokenizer."""
    texts = synthetic_tagged_text(60000, seed=seed, n_rare_words=200000)
    tokenizer = train_tokenizer(texts, vocab_size=GPT2_VOCAB_SIZE)
    return init_model("124M", tokenizer, out_dir, n_positions=n_positions, seed=seed)


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Build a random-weights GPT-2 model directory (no downloads).")
    parser.add_argument("out_dir", help="where to write the model")
    parser.add_argument("--size", choices=sorted(SIZES), default="124M", help="model shape (default 124M)")
    parser.add_argument("--seed", type=int, default=0, help="weights and corpus seed")
    parser.add_argument("--n-positions", type=int, default=1024, help="context length in tokens")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.size == "124M":
        path = build_gpt2_small_random(args.out_dir, seed=args.seed, n_positions=args.n_positions)
    else:
        tokenizer = train_tokenizer(synthetic_tagged_text(300, seed=args.seed), vocab_size=512)
        path = init_model("tiny", tokenizer, args.out_dir, n_positions=args.n_positions, seed=args.seed)
    log.info("wrote %s", path)


if __name__ == "__main__":
    main()
