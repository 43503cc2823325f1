"""The project's performance record: CPU generation, the dump import, the toxicity check and the quality guard.

    python -m jobs.bench                      # everything (about 10 minutes on 2 cores)
    python -m jobs.bench --quick              # a one-minute run: batch 1 and 16, fewer calls
    python -m jobs.bench --only generation    # or download, toxicity, quality
    python -m jobs.bench --quality            # add the quality guard on the demo model (builds it)
    python -m jobs.bench --json out.json      # where the numbers go (default bench-results.json)
    python -m jobs.bench --readme out.json    # rewrite the README's Performance tables from a run

Each section is a module of this package:

- ``generation.py``: GPT-2 124M with random weights (built once into
  ~/.cache/ssi-bot/bench/gpt2-124M-random), 200-token prompts and 64 new tokens per reply,
  side by side in one run, at batch 1, 4, 8, 16 and 32, each row in its own process:
  ``original`` (simpletransformers' LanguageGenerationModel, one prompt per call, as the
  original bot did), ``transformers-fp32``/``-bf16`` (shared/generation/pytorch.py),
  ``ctranslate2-int8`` (shared/generation/ct2.py) and ``openvino-int8``/``-int4``
  (shared/generation/openvino.py). ``--openvino KEY=VALUE`` runs the OpenVINO rows with
  another setting (a CPU property such as KV_CACHE_PRECISION=f16, or a scheduler field such
  as cache_size=1), named in the row, to measure a knob. Columns: tokens/s; p50/p95 seconds per
  reply; the child's peak RSS; load time; cold start (process start to the first reply);
  the ratios to the original's row; ``others``, the cores busy with other processes while
  the row ran (numbers taken with ``others`` above 0.1 are noisy).
- ``download.py``: a generated .zst dump imported by ``jobs.download``.
- ``toxicity.py``: each toxicity engine's texts/s and p50 cost per text, the share of the
  demo corpus it flags, and the check of a generate round against generating that round.
- ``quality.py``: on the demo model, perplexity per precision and the share of tag-valid
  replies to prompts cut from its eval threads.
- ``report.py``: the README's Performance tables, written from a run's JSON.
- ``soak.py``: the state sync under random SIGKILLs (``python -m jobs.bench.soak``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def machine() -> dict:
    """What the numbers were measured on."""
    import importlib.metadata as metadata

    from shared.generation import cpu_info

    cpu = cpu_info()
    info = {"python": platform.python_version(), "cores": len(os.sched_getaffinity(0)),
            "cpu": cpu["model"] or platform.processor(),
            "cpu_flags": [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
                          if f in cpu["flags"]]}
    for package in ("torch", "transformers", "ctranslate2", "openvino", "openvino-genai", "simpletransformers"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info



def _setting(item: str) -> tuple:
    """``KEY=VALUE`` as (key, value), the value an int, float or bool where it reads as one."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {item!r}")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(value.lower(), value)


# --- command line ----------------------------------------------------------------------

def main(argv=None):
    from jobs.bench import download, generation, quality, toxicity

    parser = argparse.ArgumentParser(prog="python -m jobs.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a one-minute run: batch 1 and 16, fewer calls")
    parser.add_argument("--only", choices=("generation", "download", "toxicity", "quality"), action="append",
                        help="run only this section (repeatable); default: generation, download and toxicity, "
                             "plus quality when the demo model is built")
    parser.add_argument("--quality", action="store_true", help="include the quality guard (builds the demo model)")
    parser.add_argument("--json", default="bench-results.json", help="where to write the numbers (%(default)s)")
    parser.add_argument("--model-dir", type=Path, default=generation.MODEL_DIR,
                        help="the 124M benchmark model (%(default)s)")
    parser.add_argument("--batches", help="comma-separated batch sizes (default 1,4,8,16,32; quick: 1,16)")
    parser.add_argument("--configs", help=f"comma-separated configurations (default: {','.join(generation.CONFIGS)})")
    parser.add_argument("--openvino", metavar="KEY=VALUE", action="append", default=[],
                        help="run the OpenVINO rows with this CPU property (upper case, e.g. KV_CACHE_PRECISION=f16) "
                             "or scheduler field (lower case, e.g. cache_size=1); repeatable")
    parser.add_argument("--download-lines", type=int, help="dump lines (default 200000; quick: 20000)")
    parser.add_argument("--readme", metavar="JSON", type=Path,
                        help="measure nothing: rewrite README.md's Performance tables from this run's JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        tuning = dict(_setting(item) for item in args.openvino)
    except ValueError as exc:
        print(f"--openvino: {exc}", file=sys.stderr)
        return 2

    if args.readme:
        from jobs.bench import report

        try:
            report.rewrite_readme(ROOT / "README.md", args.readme)
        except (OSError, ValueError, KeyError) as exc:
            print(f"--readme {args.readme}: {exc}", file=sys.stderr)
            return 2
        print(f"README.md: Performance tables rewritten from {args.readme}")
        return 0

    if args.worker:
        row = generation.worker(json.loads(args.worker))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        row["cpu_s"] = usage.ru_utime + usage.ru_stime
        print(json.dumps(row), flush=True)
        return 0

    from shared.generation import choose
    from shared.training.demo_model import DEMO_DIR, is_built

    sections = args.only or ["generation", "download", "toxicity"] + (
        ["quality"] if args.quality or is_built(DEMO_DIR) else [])
    if args.quality and "quality" not in sections:
        sections.append("quality")
    auto_backend, auto_precision, auto_device = choose()
    auto_config = f"{auto_backend}-{auto_precision}"
    results = {"machine": machine(), "quick": args.quick,
               "auto": {"backend": auto_backend, "precision": auto_precision, "device": auto_device}}
    started = time.time()
    out = []
    if "generation" in sections:
        print("generation (each row its own process):", file=sys.stderr)
        batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else None
        configs = args.configs.split(",") if args.configs else None
        rows = generation.bench_generation(args.model_dir, args.quick, batches, configs, tuning)
        results["generation"] = {"model": str(args.model_dir), "prompt_tokens": generation.PROMPT_TOKENS,
                                 "new_tokens": generation.NEW_TOKENS, "rows": rows}
        results["targets"] = generation.targets(rows, auto_config)
        out += [f"GPT-2 124M (random weights), {generation.PROMPT_TOKENS}-token prompts, "
                f"{generation.NEW_TOKENS} new tokens per reply, "
                f"{results['machine']['cores']} cores ({results['machine']['cpu']}); auto here = {auto_config}",
                generation.generation_table(rows), "", "targets (" + generation.TARGETS + "):", *("  " + t for t in results["targets"])]
    if "download" in sections:
        lines = args.download_lines or (20_000 if args.quick else 200_000)
        print(f"download: importing a {lines}-line dump...", file=sys.stderr)
        results["download"] = download.bench_download(lines=lines)
        out += ["", "download (python -m jobs.bench --only download):",
                *(f"  {key}: {value}" for key, value in results["download"].items())]
    if "toxicity" in sections:
        print("toxicity: each engine on the demo corpus, and a generate round...", file=sys.stderr)
        results["toxicity"] = toxicity.bench_toxicity(quick=args.quick)
        out += [""] + toxicity.toxicity_lines(results["toxicity"])
    if "quality" in sections:
        print("quality: perplexity and tag-valid replies on the demo model...", file=sys.stderr)
        results["quality"] = quality.bench_quality()
        out += [""] + quality.quality_lines(results["quality"])
    results["seconds"] = round(time.time() - started, 1)
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print("\n".join(out))
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json} ({results['seconds']:.0f} s)")
    return 0
