"""The toxicity section of ``python -m jobs.bench``: what the check costs, next to a generate round.

    python -m jobs.bench --only toxicity

Per engine (shared/bot/toxicity.py): its cold load (a fresh process importing and loading
it, and that process's peak RSS); then, in this process, texts per second and the p50 cost
per text, one text per call (what decide pays for a lone item) and 32 per call (a
generate round's candidates), on the demo corpus (the posts and comments of
``shared.training.demo_model.demo_threads``, about 5,200 texts); the share of that corpus
it flags at the default settings; and the cost of checking one generate round, 16 items x
2 candidates, against generating that round with the bot's own default backend on GPT-2
124M (random weights, 200-token prompts, 64 new tokens: the generation section's setup).

``profanity-check`` runs its real packaged model. ``detoxify`` runs a checkpoint of
unbiased-small's shape (ALBERT-base, 7 labels; the model the original bot used), with
random weights built here once (~/.cache/ssi-bot/bench/detoxify-albert-random): the
real weights cannot be downloaded here and speed does not depend on them, so its share
flagged is not measured. Its tokenizer knows every word of the corpus, about one token
a word, as ALBERT's own does for plain English.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from jobs.bench import ROOT
from jobs.bench.generation import MODEL_DIR, NEW_TOKENS, bench_prompts, prepare_model

DETOXIFY_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssi-bot" / "bench" / \
    "detoxify-albert-random"
ROUND_ITEMS, ROUND_CANDIDATES = 16, 2          # a generate round: items x sampling.candidates
BATCH = ROUND_ITEMS * ROUND_CANDIDATES
UNBIASED_CLASSES = ["toxicity", "severe_toxicity", "obscene", "identity_attack", "insult", "threat",
                    "sexual_explicit"]


def corpus() -> list[str]:
    """Every post (title and body) and comment of the demo corpus, as the bot would check them."""
    from shared.training.demo_model import DEMO, demo_threads

    texts = []

    def walk(comments):
        for comment in comments:
            texts.append(comment["body"])
            walk(comment["replies"])

    for thread in demo_threads(DEMO.posts, DEMO.seed):
        post = thread["post"]
        texts.append(f"{post['title']}\n{post['body']}".strip())
        walk(thread["comments"])
    return texts


def build_detoxify_checkpoint(directory: Path, texts: list[str]) -> Path:
    """A Detoxify checkpoint of unbiased-small's shape with random weights (built once)."""
    path = directory / "unbiased-small-random.ckpt"
    if path.is_file():
        return path
    import torch
    from transformers import AlbertConfig, AlbertForSequenceClassification, BertTokenizer

    print(f"building a random Detoxify checkpoint of unbiased-small's shape in {directory}...", file=sys.stderr)
    folder = directory / "hf"
    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for text in texts for w in re.findall(r"\w+|[^\w\s]", text.lower())})
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
    BertTokenizer(str(folder / "vocab.txt"), model_max_length=512).save_pretrained(folder)
    # albert-base-v2: 30000 pieces, 128-wide embeddings, 12 shared layers 768 wide; unbiased has 16 outputs
    config = AlbertConfig(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
                          num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512, num_labels=16)
    config.save_pretrained(folder)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = AlbertForSequenceClassification(config)
    checkpoint = {"config": {"arch": {"args": {"model_type": str(folder),
                                               "model_name": "AlbertForSequenceClassification",
                                               "tokenizer_name": "BertTokenizer", "num_classes": 16}},
                             "dataset": {"args": {"classes": UNBIASED_CLASSES}}},
                  "state_dict": model.state_dict()}
    partial = path.with_suffix(".partial")
    torch.save(checkpoint, partial)
    partial.replace(path)
    return path


def _per_text_seconds(check, texts: list[str], batch: int, calls: int) -> list[float]:
    """Seconds per text of ``calls`` calls of ``batch`` texts each (cycling through ``texts``)."""
    seconds = []
    for call in range(calls):
        chunk = [texts[(call * batch + i) % len(texts)] for i in range(batch)]
        started = time.perf_counter()
        check.reasons(chunk)
        seconds.append((time.perf_counter() - started) / batch)
    return seconds


_COLD_LOAD = """
import json, resource, sys, time
started = time.time()
from shared.bot import toxicity
from shared.config import Toxicity
toxicity.checker(Toxicity(engine=sys.argv[1], checkpoint=sys.argv[2] or None), "bench").reasons(["hello"])
print(json.dumps({"seconds": time.time() - started,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def cold_load(engine: str, checkpoint: str = "") -> dict:
    """A fresh process: seconds to import, load and check one text; its peak RSS."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", _COLD_LOAD, engine, checkpoint], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_engine(name: str, check, texts: list[str], quick: bool, flagged: bool, load: dict) -> dict:
    heavy = name == "detoxify"
    check.reasons(texts[:BATCH])      # warm up (first-call costs, allocator)
    single = _per_text_seconds(check, texts, 1, (10 if heavy else 50) if quick else (40 if heavy else 300))
    batched = _per_text_seconds(check, texts, BATCH, (2 if heavy else 10) if quick else (6 if heavy else 60))
    row = {"engine": name, "load_s": round(load["seconds"], 2), "load_rss_mib": round(load["rss_mib"]),
           "texts_per_s_batch1": round(1 / statistics.mean(single), 1),
           "ms_per_text_p50_batch1": round(1000 * statistics.median(single), 3),
           "texts_per_s_batch32": round(1 / statistics.mean(batched), 1),
           "ms_per_text_p50_batch32": round(1000 * statistics.median(batched), 3),
           "round_check_s": round(statistics.median(batched) * BATCH, 4)}
    if flagged:
        reasons = [r for start in range(0, len(texts), 512) for r in check.reasons(texts[start:start + 512])]
        row["flagged"] = sum(r is not None for r in reasons)
        row["flagged_share"] = round(row["flagged"] / len(texts), 4)
    return row


def generate_round_seconds(quick: bool) -> dict:
    """One generate round with the bot's default backend: ROUND_ITEMS x ROUND_CANDIDATES replies."""
    from shared import generation

    prepare_model(MODEL_DIR)
    prompts = bench_prompts(MODEL_DIR, ROUND_ITEMS)
    model = generation.load(MODEL_DIR)
    model.set_stop_flags(generation.StopFlags.never(model.vocab_size))    # every reply runs 64 tokens
    sampling = generation.Sampling(max_new_tokens=NEW_TOKENS)
    model.generate(prompts[:2], generation.Sampling(max_new_tokens=8), n=ROUND_CANDIDATES, batch_size=BATCH)
    seconds = []
    for _ in range(1 if quick else 3):
        started = time.perf_counter()
        model.generate(prompts, sampling, n=ROUND_CANDIDATES, batch_size=BATCH)
        seconds.append(time.perf_counter() - started)
    backend, precision, _ = generation.choose()
    return {"config": f"{backend}-{precision}", "items": ROUND_ITEMS, "candidates": ROUND_CANDIDATES,
            "new_tokens": NEW_TOKENS, "seconds": round(statistics.median(seconds), 2)}


def bench_toxicity(quick: bool = False) -> dict:
    from shared.bot import toxicity
    from shared.config import Toxicity

    texts = corpus()
    rows = []
    print(f"  profanity-check on {len(texts)} demo texts...", file=sys.stderr, flush=True)
    load = cold_load("profanity-check")
    check = toxicity.checker(Toxicity(), "bench")
    rows.append(measure_engine("profanity-check", check, texts, quick, True, load))
    print("  detoxify (unbiased-small's shape, random weights)...", file=sys.stderr, flush=True)
    checkpoint = str(build_detoxify_checkpoint(DETOXIFY_DIR, texts))
    load = cold_load("detoxify", checkpoint)
    check = toxicity.checker(Toxicity(engine="detoxify", checkpoint=checkpoint), "bench")
    rows.append(measure_engine("detoxify", check, texts, quick, False, load))
    print(f"  a generate round ({ROUND_ITEMS} items x {ROUND_CANDIDATES} candidates, GPT-2 124M)...",
          file=sys.stderr, flush=True)
    round_ = generate_round_seconds(quick)
    for row in rows:
        row["share_of_round"] = round(row["round_check_s"] / round_["seconds"], 5)
    return {"corpus_texts": len(texts), "round": round_, "rows": rows}


def toxicity_lines(result: dict) -> list[str]:
    """The section as text lines for the terminal."""
    round_ = result["round"]
    lines = [f"toxicity check ({result['corpus_texts']} demo texts; a generate round = {round_['items']} items x "
             f"{round_['candidates']} candidates, GPT-2 124M {round_['config']}: {round_['seconds']:.2f} s):",
             f"{'engine':<16} {'texts/s b1':>10} {'ms/text p50 b1':>14} {'texts/s b32':>11} {'ms/text p50 b32':>15} "
             f"{'flagged':>8} {'round check s':>13} {'vs round':>8} {'cold load s':>11} {'RSS MiB':>7}"]
    for r in result["rows"]:
        flagged = f"{r['flagged_share']:.1%}" if "flagged_share" in r else "n/a"
        lines.append(f"{r['engine']:<16} {r['texts_per_s_batch1']:>10.1f} {r['ms_per_text_p50_batch1']:>14.3f} "
                     f"{r['texts_per_s_batch32']:>11.1f} {r['ms_per_text_p50_batch32']:>15.3f} {flagged:>8} "
                     f"{r['round_check_s']:>13.4f} {r['share_of_round']:>8.2%} {r['load_s']:>11.2f} "
                     f"{r['load_rss_mib']:>7}")
    lines.append("(detoxify: random weights of unbiased-small's shape, so no share flagged; b1/b32: texts per call)")
    return lines
