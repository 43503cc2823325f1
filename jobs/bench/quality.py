"""The quality section of ``python -m jobs.bench``: does a faster precision write worse replies?

On the demo model (shared/training/demo_model.py) and its eval file: perplexity in fp32,
bf16 and int8, and the share of tag-valid replies (closed by ``<|`` with non-empty text) to
prompts cut from the eval threads, greedy, per precision.
"""

from __future__ import annotations

import math

QUALITY_PRECISIONS = (("transformers", "fp32"), ("transformers", "bf16"), ("ctranslate2", "int8"))


def quality_prompts(samples: list[str]) -> list[str]:
    """Reply prompts cut from eval samples: each sample up to the opening tag of its last comment."""
    from shared import tagging

    return [split[0] for split in map(tagging.split_sample, samples) if split is not None]


def bench_quality(max_samples: int = 1000) -> dict:
    """fp32/bf16/int8 perplexity on the demo model's eval file and the share of tag-valid replies."""
    from shared import generation, tagging
    from shared.training.demo_model import ensure_demo_model

    model_dir = ensure_demo_model(progress=False)
    eval_file = next((p for p in (model_dir.parent / "data" / "eval.txt", model_dir / "data" / "eval.txt")
                      if p.is_file()), None)
    if eval_file is None:
        return {"error": f"no eval.txt beside {model_dir}"}
    samples = [line for line in eval_file.read_text(encoding="utf-8").splitlines() if line.strip()][:max_samples]
    prompts = quality_prompts(samples)
    result = {"model": str(model_dir), "eval_file": str(eval_file), "eval_samples": len(samples),
              "prompts": len(prompts)}
    for backend, precision in QUALITY_PRECISIONS:
        model = generation.load(model_dir, backend=backend, precision=precision, device="cpu")
        losses = [x for x in model.loss(samples, batch_size=8) if not math.isnan(x)]
        replies = [c[0] for c in model.generate(prompts, generation.Sampling(temperature=0, max_new_tokens=64))]
        valid = sum(1 for r in replies if r.endswith(tagging.TAG_OPEN) and tagging.extract_reply(r))
        result[f"{backend}-{precision}"] = {"perplexity": round(math.exp(sum(losses) / len(losses)), 4),
                                            "tag_valid_share": round(valid / len(replies), 4) if replies else None}
    base = result["transformers-fp32"]["perplexity"]
    for backend, precision in QUALITY_PRECISIONS[1:]:
        entry = result[f"{backend}-{precision}"]
        entry["perplexity_vs_fp32_pct"] = round((entry["perplexity"] / base - 1) * 100, 3)
    return result


def quality_lines(result: dict) -> list[str]:
    if "error" in result:
        return [f"quality: {result['error']}"]
    lines = [f"quality guard on {result['model']} ({result['eval_samples']} eval samples, "
             f"{result['prompts']} reply prompts, greedy):"]
    for backend, precision in QUALITY_PRECISIONS:
        entry = result[f"{backend}-{precision}"]
        delta = entry.get("perplexity_vs_fp32_pct")
        lines.append(f"  {backend}-{precision:<5} perplexity {entry['perplexity']:.4f}"
                     + (f" ({delta:+.3f}% vs fp32)" if delta is not None else "")
                     + f", tag-valid replies {entry['tag_valid_share']:.1%}")
    return lines
