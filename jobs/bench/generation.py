"""The generation section of ``python -m jobs.bench``: every backend at every batch size.

Each configuration and batch size runs in its own child process (``python -m jobs.bench
--worker SPEC``), so its peak RSS is its own and its cold start (process start to the first
reply) is what a freshly started bot pays. The child imports the bot's own job module first,
as the bot does. Replies run to 64 tokens whatever they say (a random model closes replies at
random; the stop rule is still checked at every token), so every row measures the same work.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from jobs.bench import ROOT

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
    "openvino-int8": ("openvino", "int8"),
    "openvino-int4": ("openvino", "int4"),
}
NOISY = 0.1  # cores busy with other processes above which a row's times are not trustworthy
# issue 14's targets, on 2 cores: throughput and latency against CTranslate2 int8 in the same
# run, and the bot's memory at the batch size ssi-bot.yaml ships with (generation.batch_size)
TARGET_B16_TOKENS_PER_S, TARGET_B16_VS_CT2 = 1000, 4.0
TARGET_B1_S_PER_REPLY, TARGET_B1_VS_CT2 = 0.40, 0.45
TARGET_RSS_MIB, TARGET_COLD_S = 450, 1.5
TARGETS = (f"batch 16 >= {TARGET_B16_TOKENS_PER_S} tok/s and >= {TARGET_B16_VS_CT2:g}x ctranslate2-int8; "
           f"batch 1 <= {TARGET_B1_S_PER_REPLY:.2f} s/reply and <= {TARGET_B1_VS_CT2:.2f}x ctranslate2-int8's; "
           f"bot peak RSS <= {TARGET_RSS_MIB} MiB at the shipped batch size; cold start <= {TARGET_COLD_S:g} s")


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
    if spec.get("tuning"):
        _tune(spec["tuning"])
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


def _tune(tuning: dict) -> None:
    """Apply ``--openvino KEY=VALUE`` settings to the OpenVINO backend before it loads:
    upper-case keys are CPU plugin properties (replacing the backend's own, per precision
    too), lower-case ones SchedulerConfig fields."""
    from shared.generation import openvino

    for key, value in tuning.items():
        if key.isupper():
            openvino.PROPERTIES[key] = value
            for precision in ("int8", "int4"):
                openvino.PRECISION_PROPERTIES[precision].pop(key, None)
        else:
            openvino.SCHEDULER[key] = value


def _original(spec: dict, prompts: list, calls: int) -> dict:
    """The original bot's way: LanguageGenerationModel.generate, one prompt per call."""
    started = time.time()
    from simpletransformers.language_generation import LanguageGenerationModel

    imported = time.time()
    from shared.generation import Sampling

    product = Sampling()        # the same sampling as our rows: both sides do the same work
    args = {"max_length": NEW_TOKENS, "do_sample": True, "temperature": product.temperature, "top_k": product.top_k,
            "top_p": product.top_p, "repetition_penalty": product.repetition_penalty, "num_return_sequences": 1}
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
        "config": config_name(spec), "batch": batch, "calls": len(seconds), "replies": len(seconds) * batch,
        "new_tokens": tokens, "tokens_per_s": round(tokens / sum(seconds), 1),
        "s_per_reply_p50": round(statistics.median(per_reply), 3),
        "s_per_reply_p95": round(_p95(per_reply), 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **{name: round(value, 2) for name, value in times.items()},
    }


def config_name(spec: dict) -> str:
    """A row's name: its configuration, and its tuning when it has one."""
    tuning = spec.get("tuning") or {}
    return spec["config"] + "".join(f" {key}={value}" for key, value in tuning.items())


def _p95(values: list) -> float:
    """The 95th percentile, interpolated between the two nearest values."""
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


# --- the parent: preparation, the runs, the table --------------------------------------

def prepare_model(model_dir: Path, configs=tuple(CONFIGS)) -> Path:
    """The 124M random model (built when missing), its conversions, and the page cache warm."""
    if not (model_dir / "config.json").is_file():
        print(f"building GPT-2 124M with random weights in {model_dir} (about 20 s)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "shared.training.model_init", str(model_dir), "--size", "124M"],
                       cwd=ROOT, check=True)
    for configuration in configs:
        backend, precision = CONFIGS[configuration] or (None, None)
        if backend in ("ctranslate2", "openvino"):  # converted once, outside the measured rows
            module = {"ctranslate2": "shared.generation.ct2", "openvino": "shared.generation.openvino"}[backend]
            subprocess.run([sys.executable, "-m", module, str(model_dir), precision], cwd=ROOT, check=True,
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

    from shared.training.model_init import synthetic_tagged_text

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
        return {"config": config_name(spec), "batch": spec["batch"], "error": f"timed out after {timeout:.0f} s"}
    busy_after, wall_after = _cpu_busy()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        tail = [line for line in err.strip().splitlines() if line.strip()][-1:] or [f"exit {child.returncode}"]
        return {"config": config_name(spec), "batch": spec["batch"], "error": tail[0]}
    row = json.loads(lines[-1])
    # the child's own CPU time is in its row; what else was busy meanwhile is "others"
    row["others"] = round(max(0.0, (busy_after - busy_before) - row.pop("cpu_s")) / (wall_after - wall_before), 2)
    return row


def bench_generation(model_dir: Path, quick: bool, batches=None, configs=None, tuning=None) -> list[dict]:
    """Every configuration at every batch size, each in its own process; the rows.

    ``tuning`` (``--openvino KEY=VALUE``) runs the OpenVINO configurations with those
    settings instead of the backend's own (rows named with them), to measure a knob.
    """
    configs = configs or list(CONFIGS)
    prepare_model(model_dir, configs)
    prompts_file = model_dir / "bench-prompts.json"
    prompts_file.write_text(json.dumps(bench_prompts(model_dir)), encoding="utf-8")
    batches = batches or (QUICK_BATCHES if quick else BATCHES)
    rows = []
    # batch by batch, so that the configurations compared in a row group ran close in time
    for batch in batches:
        for config in configs:
            if config == "original" and batch != batches[0]:
                continue  # one prompt per call: it has no batch size
            if quick:
                calls = 2 if (config in ("original", "ctranslate2-int8") or config.startswith("openvino")) \
                    and batch == 1 else 1
            else:
                calls = 12 if config == "original" else max(3, math.ceil(16 / batch))
            spec = {"config": config, "batch": batch, "calls": calls, "model_dir": str(model_dir),
                    "prompts": str(prompts_file)}
            if tuning and config.startswith("openvino"):
                spec["tuning"] = tuning
            print(f"  {config_name(spec)} at batch {batch if config != 'original' else 1} ({calls} calls)...",
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


def targets(rows: list[dict], auto_config: str, shipped_batch: int = None) -> list[str]:
    """Each of TARGETS: met or not, by which row (``auto_config``: what "auto" runs here).

    Speed targets take the best shippable row (not the original's, not a ``--openvino``
    tuning) and compare it with ctranslate2-int8's row of the same run; memory and cold start
    are the bot's: the auto row at ``shipped_batch`` (generation.batch_size's default).
    """
    if shipped_batch is None:
        from shared.config import Generation

        shipped_batch = Generation().batch_size
    good = [r for r in rows if "error" not in r and r["config"] in CONFIGS and r["config"] != "original"]

    def row(batch, config):
        return next((r for r in good if r["batch"] == batch and r["config"] == config), None)

    def best(batch, key, lowest=False):
        candidates = [r for r in good if r["batch"] == batch]
        return (min if lowest else max)(candidates, key=lambda r: r[key]) if candidates else None

    def verdict(ok):
        return "met" if ok else "MISSED"

    lines = []
    b16, ct2_16 = best(16, "tokens_per_s"), row(16, "ctranslate2-int8")
    if b16:
        ratio = b16["tokens_per_s"] / ct2_16["tokens_per_s"] if ct2_16 else None
        lines.append(f"batch 16 >= {TARGET_B16_TOKENS_PER_S} tok/s: "
                     f"{verdict(b16['tokens_per_s'] >= TARGET_B16_TOKENS_PER_S)} "
                     f"({b16['tokens_per_s']:.0f} tok/s, {b16['config']})")
        if ratio is not None:
            lines.append(f"batch 16 >= {TARGET_B16_VS_CT2:g}x ctranslate2-int8: {verdict(ratio >= TARGET_B16_VS_CT2)} "
                         f"({ratio:.2f}x, {b16['config']})")
    b1, ct2_1 = best(1, "s_per_reply_p50", lowest=True), row(1, "ctranslate2-int8")
    if b1:
        lines.append(f"batch 1 <= {TARGET_B1_S_PER_REPLY:.2f} s/reply: "
                     f"{verdict(b1['s_per_reply_p50'] <= TARGET_B1_S_PER_REPLY)} "
                     f"({b1['s_per_reply_p50']:.2f} s, {b1['config']})")
        if ct2_1:
            ratio = b1["s_per_reply_p50"] / ct2_1["s_per_reply_p50"]
            lines.append(f"batch 1 <= {TARGET_B1_VS_CT2:.2f}x ctranslate2-int8's s/reply: "
                         f"{verdict(ratio <= TARGET_B1_VS_CT2)} ({ratio:.2f}x, {b1['config']})")
    bot = row(shipped_batch, auto_config)
    if bot:
        lines.append(f"bot peak RSS <= {TARGET_RSS_MIB} MiB at batch {shipped_batch}: "
                     f"{verdict(bot['peak_rss_mib'] <= TARGET_RSS_MIB)} ({bot['peak_rss_mib']:.0f} MiB, "
                     f"{auto_config} = auto here)")
    auto_rows = [r for r in good if r["config"] == auto_config]
    if auto_rows:
        cold = statistics.median(r["cold_start_s"] for r in auto_rows)
        lines.append(f"cold start <= {TARGET_COLD_S:g} s: {verdict(cold <= TARGET_COLD_S)} "
                     f"({cold:.2f} s median of {len(auto_rows)} rows, {auto_config})")
    return lines
