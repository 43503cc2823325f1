"""The quality section of ``python -m jobs.bench``: does a faster precision write worse replies?

On the demo model (shared/training/demo_model.py) and its eval file: perplexity in fp32,
bf16, CTranslate2 int8 and OpenVINO int8 and int4, and the share of tag-valid replies (closed
by ``<|`` with non-empty text) to prompts cut from the eval threads, greedy, per precision.
The guard: each precision's perplexity within ``MAX_PERPLEXITY_DRIFT_PCT`` of fp32 and its
share of tag-valid replies within ``MAX_VALID_SHARE_DRIFT`` of fp32's.
"""

from __future__ import annotations

import math

QUALITY_PRECISIONS = (("transformers", "fp32"), ("transformers", "bf16"), ("ctranslate2", "int8"),
                      ("openvino", "int8"), ("openvino", "int4"))
MAX_PERPLEXITY_DRIFT_PCT = 1.0
# greedy replies to a few hundred prompts: one reply in a hundred changing its ending is noise
MAX_VALID_SHARE_DRIFT = 0.01


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
    base = result["transformers-fp32"]
    for backend, precision in QUALITY_PRECISIONS[1:]:
        entry = result[f"{backend}-{precision}"]
        entry["perplexity_vs_fp32_pct"] = round((entry["perplexity"] / base["perplexity"] - 1) * 100, 3)
        entry["within_guard"] = (abs(entry["perplexity_vs_fp32_pct"]) <= MAX_PERPLEXITY_DRIFT_PCT and
                                 abs(entry["tag_valid_share"] - base["tag_valid_share"]) <= MAX_VALID_SHARE_DRIFT)
    return result


def quality_lines(result: dict) -> list[str]:
    if "error" in result:
        return [f"quality: {result['error']}"]
    lines = [f"quality guard on {result['model']} ({result['eval_samples']} eval samples, "
             f"{result['prompts']} reply prompts, greedy):"]
    for backend, precision in QUALITY_PRECISIONS:
        entry = result.get(f"{backend}-{precision}")
        if entry is None:
            continue
        delta = entry.get("perplexity_vs_fp32_pct")
        guard = {True: "  ok", False: "  OUTSIDE THE GUARD"}.get(entry.get("within_guard"), "")
        lines.append(f"  {backend}-{precision:<5} perplexity {entry['perplexity']:.4f}"
                     + (f" ({delta:+.3f}% vs fp32)" if delta is not None else "")
                     + f", tag-valid replies {entry['tag_valid_share']:.1%}{guard}")
    lines.append(f"  (the guard: perplexity within {MAX_PERPLEXITY_DRIFT_PCT:g}% of fp32 and tag-valid replies "
                 f"within {MAX_VALID_SHARE_DRIFT:.0%} of fp32's share)")
    return lines
