"""The project's performance record: CPU generation, the dump import and the quality guard.

    python -m jobs.bench                      # everything (about 10 minutes on 2 cores)
    python -m jobs.bench --quick              # a one-minute run: batch 1 and 16, fewer calls
    python -m jobs.bench --only generation    # or download, or quality
    python -m jobs.bench --quality            # add the quality guard on the demo model (builds it)
    python -m jobs.bench --json out.json      # where the numbers go (default bench-results.json)

Generation: on GPT-2 124M with random weights (built once into
~/.cache/ssi-bot/bench/gpt2-124M-random, about 20 s), 200-token prompts and 64 new tokens per
reply, side by side in one run:

- ``original``: simpletransformers' LanguageGenerationModel, one prompt per call, as the
  original bot did (it also built the model for every job: its cold start shows that cost);
- ``transformers-fp32`` and ``transformers-bf16``: our batched loop (shared/generation.py);
- ``ctranslate2-int8``: the CTranslate2 backend (shared/ct2.py);

at batch 1, 4, 8, 16 and 32. Each configuration and batch size runs in its own child
process (``python -m jobs.bench --worker SPEC``), so its peak RSS is its own and its cold
start (process start to the first reply) is what a freshly started bot pays. The child
imports the bot's own job module first, as the bot does. Replies run to 64 tokens whatever
they say (a random model closes replies at random; the stop rule is still checked at every
token), so every row measures the same work.

Columns: tokens/s over the measured calls; p50/p95 of seconds per reply (a call's time
divided by its replies); the child's peak RSS; model load time; cold start; the ratios to
the original's batch-1 row; and ``others``, the CPU cores busy with other processes while
the child ran (read from /proc/stat): numbers taken with ``others`` above 0.1 are noisy.

Download: ``jobs.bench_download`` (a generated .zst dump imported by ``jobs.download``).

Quality: on the demo model (shared/demo_model.py) and its eval file, perplexity in fp32,
bf16 and int8, and the share of tag-valid replies (closed by ``<|`` with non-empty text)
to prompts cut from the eval threads, greedy, per precision.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssi-bot" / "bench" / "gpt2-124M-random"
PROMPT_TOKENS = 200
NEW_TOKENS = 64
BATCHES = (1, 4, 8, 16, 32)
QUICK_BATCHES = (1, 16)
# name -> (backend, precision); "original" is simpletransformers
CONFIGS = {
    "original": None,
    "transformers-fp32": ("transformers", "fp32"),
    "transformers-bf16": ("transformers", "bf16"),
    "ctranslate2-int8": ("ctranslate2", "int8"),
}
NOISY = 0.1  # cores busy with other processes above which a row's times are not trustworthy
TARGETS = "batch 16 >= 400 tok/s; batch 1 <= 0.6 s/reply; bot peak RSS <= 500 MiB; cold start <= 3 s"


# --- the child: one configuration at one batch size ------------------------------------

def worker(spec: dict) -> dict:
    """Measure one configuration at one batch size in this (fresh) process; a result row."""
    prompts = json.loads(Path(spec["prompts"]).read_text(encoding="utf-8"))
    batch, calls = spec["batch"], spec["calls"]
    if spec["config"] == "original":
        return _original(spec, prompts, calls)
    started = time.time()
    from jobs import generate  # noqa: F401  (the bot's own imports, as the bot pays them)
    from shared import generation

    imported = time.time()
    backend, precision = CONFIGS[spec["config"]]
    model = generation.load(spec["model_dir"], backend=backend, precision=precision, device="cpu")
    loaded = time.time()
    model.set_stop_flags(generation.StopFlags.never(model.vocab_size))
    sampling = generation.Sampling(max_new_tokens=NEW_TOKENS)
    model.generate(prompts[:1], sampling)
    first_reply = time.time()
    # warm up this batch shape (kernels, allocator) before the measured calls
    model.generate(prompts[:batch], generation.Sampling(max_new_tokens=8), batch_size=batch)
    seconds, tokens = [], 0
    for call in range(calls):
        chunk = [prompts[(call * batch + i) % len(prompts)] for i in range(batch)]
        t = time.perf_counter()
        model.generate(chunk, sampling, batch_size=batch)
        seconds.append(time.perf_counter() - t)
        tokens += model.last_stats.new_tokens
    return _row(spec, seconds, tokens, batch, import_s=imported - started, load_s=loaded - imported,
                cold_start_s=first_reply - spec["spawned_at"])


def _original(spec: dict, prompts: list, calls: int) -> dict:
    """The original bot's way: LanguageGenerationModel.generate, one prompt per call."""
    started = time.time()
    from simpletransformers.language_generation import LanguageGenerationModel

    imported = time.time()
    args = {"max_length": NEW_TOKENS, "do_sample": True, "temperature": 0.8, "top_k": 40, "top_p": 0.95,
            "repetition_penalty": 1.008, "num_return_sequences": 1}
    model = LanguageGenerationModel("gpt2", spec["model_dir"], args=args, use_cuda=False)
    loaded = time.time()
    produced = []
    generate = model.model.generate

    def counting_generate(*a, **kw):  # the replies are text: count the tokens where they are made
        out = generate(*a, **kw)
        produced.append(out.shape[1] - kw["input_ids"].shape[1])
        return out

    model.model.generate = counting_generate
    model.generate(prompts[0], verbose=False)
    first_reply = time.time()
    seconds = []
    produced.clear()
    for call in range(calls):
        t = time.perf_counter()
        model.generate(prompts[call % len(prompts)], verbose=False)
        seconds.append(time.perf_counter() - t)
    return _row(spec, seconds, sum(produced), 1, import_s=imported - started, load_s=loaded - imported,
                cold_start_s=first_reply - spec["spawned_at"])


def _row(spec, seconds, tokens, batch, **times) -> dict:
    per_reply = sorted(s / batch for s in seconds)
    return {
        "config": spec["config"], "batch": batch, "calls": len(seconds), "replies": len(seconds) * batch,
        "new_tokens": tokens, "tokens_per_s": round(tokens / sum(seconds), 1),
        "s_per_reply_p50": round(statistics.median(per_reply), 3),
        "s_per_reply_p95": round(_percentile(per_reply, 0.95), 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **{name: round(value, 2) for name, value in times.items()},
    }


def _percentile(ordered: list, q: float) -> float:
    """The q-quantile of sorted values, interpolated (the max for fewer than 20 values at 0.95)."""
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# --- the parent: preparation, the runs, the table --------------------------------------

def prepare_model(model_dir: Path) -> Path:
    """The 124M random model (built when missing), its CT2 conversion, and the page cache warm."""
    if not (model_dir / "config.json").is_file():
        print(f"building GPT-2 124M with random weights in {model_dir} (about 20 s)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "shared.model_init", str(model_dir), "--size", "124M"],
                       cwd=ROOT, check=True)
    subprocess.run([sys.executable, "-m", "shared.ct2", str(model_dir), "int8"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    for path in model_dir.rglob("*"):  # read once: no row pays the disk
        if path.is_file():
            with open(path, "rb") as handle:
                while handle.read(1 << 24):
                    pass
    return model_dir


def bench_prompts(model_dir: Path, count: int = 64) -> list[str]:
    """``count`` distinct prompts of exactly PROMPT_TOKENS tokens (synthetic tagged threads)."""
    from tokenizers import Tokenizer

    from shared.model_init import synthetic_tagged_text

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    prompts, lines = [], iter(synthetic_tagged_text(count * 8, seed=1))
    while len(prompts) < count:
        ids = []
        while len(ids) < PROMPT_TOKENS + 8:
            ids += tokenizer.encode(next(lines), add_special_tokens=False).ids
        text = tokenizer.decode(ids[:PROMPT_TOKENS], skip_special_tokens=False)
        if len(tokenizer.encode(text, add_special_tokens=False).ids) == PROMPT_TOKENS:
            prompts.append(text)
    return prompts


def _cpu_busy() -> tuple[float, float]:
    """(busy CPU seconds over all cores, wall seconds) from /proc/stat, for "others"."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0, time.time()
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK"), time.time()


def run_worker(spec: dict, timeout: float = 1800) -> dict:
    """Run ``spec`` in a child process; its result row plus "others" (cores busy elsewhere)."""
    busy_before, wall_before = _cpu_busy()
    spec = {**spec, "spawned_at": time.time()}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONWARNINGS": "ignore"}
    child = subprocess.Popen([sys.executable, "-m", "jobs.bench", "--worker", json.dumps(spec)], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        return {"config": spec["config"], "batch": spec["batch"], "error": f"timed out after {timeout:.0f} s"}
    busy_after, wall_after = _cpu_busy()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        tail = [line for line in err.strip().splitlines() if line.strip()][-1:] or [f"exit {child.returncode}"]
        return {"config": spec["config"], "batch": spec["batch"], "error": tail[0]}
    row = json.loads(lines[-1])
    # the child's own CPU time is in its row; what else was busy meanwhile is "others"
    row["others"] = round(max(0.0, (busy_after - busy_before) - row.pop("cpu_s")) / (wall_after - wall_before), 2)
    return row


def bench_generation(model_dir: Path, quick: bool, batches=None, configs=None) -> list[dict]:
    """Every configuration at every batch size, each in its own process; the rows."""
    prepare_model(model_dir)
    prompts_file = model_dir / "bench-prompts.json"
    prompts_file.write_text(json.dumps(bench_prompts(model_dir)), encoding="utf-8")
    batches = batches or (QUICK_BATCHES if quick else BATCHES)
    configs = configs or list(CONFIGS)
    rows = []
    # batch by batch, so that the configurations compared in a row group ran close in time
    for batch in batches:
        for config in configs:
            if config == "original" and batch != batches[0]:
                continue  # one prompt per call: it has no batch size
            if quick:
                calls = 2 if config in ("original", "ctranslate2-int8") and batch == 1 else 1
            else:
                calls = 12 if config == "original" else max(3, math.ceil(16 / batch))
            spec = {"config": config, "batch": batch, "calls": calls, "model_dir": str(model_dir),
                    "prompts": str(prompts_file)}
            print(f"  {config} at batch {batch if config != 'original' else 1} ({calls} calls)...",
                  file=sys.stderr, flush=True)
            row = run_worker(spec)
            rows.append(row)
            if "error" in row:
                print(f"    failed: {row['error']}", file=sys.stderr)
    return rows


def generation_table(rows: list[dict]) -> str:
    """The rows as a text table with the ratios to the original's row."""
    base = next((r for r in rows if r["config"] == "original" and "error" not in r), None)
    head = (f"{'configuration':<19} {'batch':>5} {'tok/s':>7} {'p50 s/reply':>11} {'p95':>6} "
            f"{'RSS MiB':>8} {'load s':>6} {'cold s':>6}  {'vs original: tok/s':>18} {'s/reply':>7} "
            f"{'RSS':>5} {'cold':>5} {'others':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['config']:<19} {r['batch']:>5}  failed: {r['error']}")
            continue
        ratios = ("", "", "", "")
        if base:
            ratios = (f"{r['tokens_per_s'] / base['tokens_per_s']:.1f}x",
                      f"{base['s_per_reply_p50'] / r['s_per_reply_p50']:.1f}x",
                      f"{r['peak_rss_mib'] / base['peak_rss_mib']:.2f}x",
                      f"{r['cold_start_s'] / base['cold_start_s']:.2f}x")
        lines.append(f"{r['config']:<19} {r['batch']:>5} {r['tokens_per_s']:>7.1f} {r['s_per_reply_p50']:>11.3f} "
                     f"{r['s_per_reply_p95']:>6.3f} {r['peak_rss_mib']:>8.0f} {r['load_s']:>6.2f} "
                     f"{r['cold_start_s']:>6.2f}  {ratios[0]:>18} {ratios[1]:>7} {ratios[2]:>5} {ratios[3]:>5} "
                     f"{r.get('others', 0):>6.2f}{' *' if r.get('others', 0) > NOISY else ''}")
    if any(r.get("others", 0) > NOISY for r in rows):
        lines.append(f"* other processes kept more than {NOISY} of a core busy during that row: its times are inflated")
    return "\n".join(lines)


def targets(rows: list[dict], auto_config: str) -> list[str]:
    """Each target of the fast-generation issue: met or not, by which row."""
    good = [r for r in rows if "error" not in r]

    def best(batch, key, lowest=False):
        candidates = [r for r in good if r["batch"] == batch and r["config"] != "original"]
        if not candidates:
            return None
        return (min if lowest else max)(candidates, key=lambda r: r[key])

    lines = []
    b16 = best(16, "tokens_per_s")
    if b16:
        lines.append(f"batch 16 >= 400 tok/s: {'met' if b16['tokens_per_s'] >= 400 else 'MISSED'} "
                     f"({b16['tokens_per_s']:.0f} tok/s, {b16['config']})")
    b1 = best(1, "s_per_reply_p50", lowest=True)
    if b1:
        lines.append(f"batch 1 <= 0.6 s/reply: {'met' if b1['s_per_reply_p50'] <= 0.6 else 'MISSED'} "
                     f"({b1['s_per_reply_p50']:.2f} s, {b1['config']})")
    auto_rows = [r for r in good if r["config"] == auto_config and r["batch"] <= 16]
    if auto_rows:
        over = [r for r in auto_rows if r["peak_rss_mib"] > 500]
        per_batch = ", ".join(f"batch {r['batch']}: {r['peak_rss_mib']:.0f}" for r in auto_rows)
        verdict = "met" if not over else f"MISSED from batch {min(r['batch'] for r in over)}"
        lines.append(f"bot peak RSS <= 500 MiB: {verdict} ({auto_config} = auto here; {per_batch} MiB)")
        cold = statistics.median(r["cold_start_s"] for r in auto_rows)
        lines.append(f"cold start <= 3 s: {'met' if cold <= 3 else 'MISSED'} ({cold:.2f} s median, {auto_config})")
    return lines


def machine() -> dict:
    """What the numbers were measured on."""
    import importlib.metadata as metadata

    info = {"python": platform.python_version(), "cores": len(os.sched_getaffinity(0)), "cpu": platform.processor()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags"))
        info["cpu_flags"] = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
                             if f in flags]
    except (OSError, StopIteration):
        pass
    for package in ("torch", "transformers", "ctranslate2", "simpletransformers"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


# --- quality guard on the demo model ---------------------------------------------------

QUALITY_PRECISIONS = (("transformers", "fp32"), ("transformers", "bf16"), ("ctranslate2", "int8"))


def quality_prompts(samples: list[str]) -> list[str]:
    """Reply prompts cut from eval samples: each sample up to the opening tag of its last comment."""
    prompts = []
    for sample in samples:
        sample = sample.strip().removesuffix("<|endoftext|>")
        start = max(sample.rfind("<|sor"), sample.rfind("<|soopr"), sample.rfind("<|soocr"))
        if start <= 0:
            continue
        opening = sample.find("|>", start)
        if opening > 0:
            prompts.append(sample[:opening + 2])
    return prompts


def bench_quality(max_samples: int = 1000) -> dict:
    """fp32/bf16/int8 perplexity on the demo model's eval file and the share of tag-valid replies."""
    from shared import generation, tagging
    from shared.demo_model import ensure_demo_model

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
        valid = sum(1 for r in replies if r.endswith("<|") and tagging.extract_reply(r))
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


# --- command line ----------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m jobs.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a one-minute run: batch 1 and 16, fewer calls")
    parser.add_argument("--only", choices=("generation", "download", "quality"), action="append",
                        help="run only this section (repeatable); default: generation and download, "
                             "plus quality when the demo model is built")
    parser.add_argument("--quality", action="store_true", help="include the quality guard (builds the demo model)")
    parser.add_argument("--json", default="bench-results.json", help="where to write the numbers (%(default)s)")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR, help="the 124M benchmark model (%(default)s)")
    parser.add_argument("--batches", help="comma-separated batch sizes (default 1,4,8,16,32; quick: 1,16)")
    parser.add_argument("--configs", help=f"comma-separated configurations (default: {','.join(CONFIGS)})")
    parser.add_argument("--download-lines", type=int, help="dump lines (default 200000; quick: 20000)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        row = worker(json.loads(args.worker))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        row["cpu_s"] = usage.ru_utime + usage.ru_stime
        print(json.dumps(row), flush=True)
        return 0

    from shared import generation
    from shared.demo_model import is_built
    from shared.demo_model import DEMO_DIR

    sections = args.only or ["generation", "download"] + (["quality"] if args.quality or is_built(DEMO_DIR) else [])
    if args.quality and "quality" not in sections:
        sections.append("quality")
    auto_backend, auto_precision, auto_device = generation.choose()
    auto_config = f"{auto_backend}-{auto_precision}"
    results = {"machine": machine(), "quick": args.quick,
               "auto": {"backend": auto_backend, "precision": auto_precision, "device": auto_device}}
    started = time.time()
    out = []
    if "generation" in sections:
        print("generation (each row its own process):", file=sys.stderr)
        batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else None
        configs = args.configs.split(",") if args.configs else None
        rows = bench_generation(args.model_dir, args.quick, batches, configs)
        results["generation"] = {"model": str(args.model_dir), "prompt_tokens": PROMPT_TOKENS,
                                 "new_tokens": NEW_TOKENS, "rows": rows}
        results["targets"] = targets(rows, auto_config)
        out += [f"GPT-2 124M (random weights), {PROMPT_TOKENS}-token prompts, {NEW_TOKENS} new tokens per reply, "
                f"{results['machine']['cores']} cores ({results['machine']['cpu']}); auto here = {auto_config}",
                generation_table(rows), "", "targets (" + TARGETS + "):", *("  " + t for t in results["targets"])]
    if "download" in sections:
        from jobs.bench_download import bench_download

        lines = args.download_lines or (20_000 if args.quick else 200_000)
        print(f"download: importing a {lines}-line dump...", file=sys.stderr)
        results["download"] = bench_download(lines=lines)
        out += ["", "download (jobs.bench_download):",
                *(f"  {key}: {value}" for key, value in results["download"].items())]
    if "quality" in sections:
        print("quality: perplexity and tag-valid replies on the demo model...", file=sys.stderr)
        results["quality"] = bench_quality()
        out += [""] + quality_lines(results["quality"])
    results["seconds"] = round(time.time() - started, 1)
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print("\n".join(out))
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json} ({results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
