"""The README's Performance section, written from a bench run's JSON: the one place its numbers live.

    python -m jobs.bench --json docs/bench-results.json       # measure (writes the JSON)
    python -m jobs.bench --readme docs/bench-results.json     # rewrite README.md's tables from it

The tables sit between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` in README.md;
``tests/test_bench.py`` checks that they are what this module writes from the committed JSON,
so a number in the README is always one that a run measured.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from jobs.bench.generation import NOISY, TARGETS
from jobs.bench.quality import MAX_PERPLEXITY_DRIFT_PCT, MAX_VALID_SHARE_DRIFT

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
# how a configuration is named in the README
TITLES = {
    "original": "original: simpletransformers, one prompt per call",
    "transformers-fp32": "transformers fp32",
    "transformers-bf16": "transformers bf16",
    "ctranslate2-int8": "CTranslate2 int8",
    "openvino-int8": "OpenVINO int8",
    "openvino-int4": "OpenVINO int4",
}


def performance_section(results: dict) -> str:
    """The markdown between the markers: the machine, then one table per section measured."""
    machine = results["machine"]
    auto = results.get("auto", {})
    auto_config = f"{auto.get('backend')}-{auto.get('precision')}"
    parts = [f"Measured on {machine['cores']} cores ({machine['cpu']}), python {machine['python']}, "
             f"torch {machine.get('torch')}, ctranslate2 {machine.get('ctranslate2')}, "
             f"openvino {machine.get('openvino')}; "
             f"`auto` there was {TITLES.get(auto_config, auto_config)}."]
    if "generation" in results:
        parts += ["", generation_table(results["generation"]["rows"], auto_config)]
        if results.get("targets"):
            parts += ["", f"Targets ({TARGETS}), in this run:", ""] + [f"- {line}" for line in results["targets"]]
    if "quality" in results and "error" not in results["quality"]:
        parts += ["", quality_table(results["quality"])]
    if "download" in results:
        parts += ["", download_line(results["download"])]
    if "toxicity" in results:
        parts += ["", toxicity_table(results["toxicity"])]
    return "\n".join(parts)


def generation_table(rows: list[dict], auto_config: str = "") -> str:
    base = next((r for r in rows if r["config"] == "original" and "error" not in r), None)
    ct2 = {r["batch"]: r for r in rows if r["config"] == "ctranslate2-int8" and "error" not in r}
    lines = ["| path | batch | tokens/s | s per reply (p50) | peak RSS | cold start | tokens/s vs original | "
             "tokens/s vs CTranslate2 int8 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted((r for r in rows if "error" not in r), key=lambda r: (list(TITLES).index(r["config"])
                                                                           if r["config"] in TITLES else 99,
                                                                           r["batch"])):
        title = TITLES.get(r["config"], r["config"]) + (" (auto)" if r["config"] == auto_config else "")
        noisy = " *" if r.get("others", 0) > NOISY else ""
        ratio = f"{r['tokens_per_s'] / base['tokens_per_s']:.1f}x" if base else ""
        same_batch = ct2.get(r["batch"])
        vs_ct2 = (f"{r['tokens_per_s'] / same_batch['tokens_per_s']:.2f}x"
                  if same_batch and r["config"] != "original" else "")
        lines.append(f"| {title}{noisy} | {r['batch']} | {r['tokens_per_s']:.0f} | {r['s_per_reply_p50']:.2f} | "
                     f"{r['peak_rss_mib']:.0f} MiB | {r['cold_start_s']:.1f} s | {ratio} | {vs_ct2} |")
    if any(r.get("others", 0) > NOISY for r in rows):
        lines += ["", f"\\* other processes kept more than {NOISY} of a core busy during that row: its times "
                      "are inflated."]
    return "\n".join(lines)


def quality_table(quality: dict) -> str:
    lines = [f"Quality guard on the demo model ({quality['eval_samples']} eval samples, "
             f"{quality['prompts']} reply prompts, greedy; the guard: perplexity within "
             f"{MAX_PERPLEXITY_DRIFT_PCT:g} % of fp32 and tag-valid replies within {MAX_VALID_SHARE_DRIFT:.0%} "
             f"of fp32's share):", "",
             "| precision | perplexity | vs fp32 | tag-valid replies | within the guard |", "|---|---|---|---|---|"]
    for name, entry in quality.items():
        if not isinstance(entry, dict):
            continue
        delta = entry.get("perplexity_vs_fp32_pct")
        guard = {True: "yes", False: "**no**"}.get(entry.get("within_guard"), "-")
        lines.append(f"| {name} | {entry['perplexity']:.4f} | {'-' if delta is None else f'{delta:+.3f} %'} | "
                     f"{entry['tag_valid_share']:.1%} | {guard} |")
    return "\n".join(lines)


def toxicity_table(toxicity: dict) -> str:
    round_ = toxicity["round"]
    lines = [f"The toxicity check on the {toxicity['corpus_texts']:,} texts of the demo corpus, and against a generate "
             f"round ({round_['items']} items x {round_['candidates']} candidates of {round_['new_tokens']} tokens, "
             f"GPT-2 124M, {TITLES.get(round_['config'], round_['config'])}: {round_['seconds']:.1f} s). "
             f"Detoxify ran unbiased-small's shape with random weights (speed only):", "",
             "| engine | texts/s, 1 per call | ms per text (p50), 1 per call | texts/s, 32 per call | "
             "flagged in the demo corpus | checking a round | share of the round | cold load | its peak RSS |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in toxicity["rows"]:
        flagged = f"{r['flagged_share']:.1%}" if "flagged_share" in r else "-"
        lines.append(f"| {r['engine']} | {r['texts_per_s_batch1']:,.0f} | {r['ms_per_text_p50_batch1']:.2f} | "
                     f"{r['texts_per_s_batch32']:,.0f} | {flagged} | {1000 * r['round_check_s']:.0f} ms | "
                     f"{r['share_of_round']:.2%} | {r['load_s']:.1f} s | {r['load_rss_mib']} MiB |")
    return "\n".join(lines)


def download_line(download: dict) -> str:
    return (f"Importing a {download['lines']:,}-line `.zst` dump: {download['lines_per_s']:,} lines/s in "
            f"{download['peak_rss_mb']:.0f} MB peak RSS; the same lines as NDJSON: "
            f"{download['ndjson_lines_per_s']:,} lines/s in {download['ndjson_peak_rss_mb']:.0f} MB.")


def rewrite_readme(readme: Path, results_file: Path) -> None:
    """Replace the text between the markers in ``readme`` with ``performance_section``."""
    results = json.loads(Path(results_file).read_text(encoding="utf-8"))
    text = readme.read_text(encoding="utf-8")
    block = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not block.search(text):
        raise ValueError(f"{readme}: no {START} ... {END} block to rewrite")
    section = f"{START}\n{performance_section(results)}\n{END}"
    readme.write_text(block.sub(lambda _: section, text), encoding="utf-8")


def readme_section(readme: Path) -> str:
    """What is between the markers in ``readme`` now."""
    text = readme.read_text(encoding="utf-8")
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")
