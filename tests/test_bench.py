"""jobs.bench's generation section: issue 14's targets, the README's tables from the committed run, knobs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import bench
from jobs.bench import generation, report

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "docs" / "bench-results.json"


def row(config, batch, tokens_per_s, s_per_reply, rss=400.0, cold=1.2, **extra):
    return {"config": config, "batch": batch, "tokens_per_s": tokens_per_s, "s_per_reply_p50": s_per_reply,
            "s_per_reply_p95": s_per_reply, "peak_rss_mib": rss, "load_s": 0.5, "cold_start_s": cold, **extra}


ROWS = [
    row("original", 1, 12.0, 5.0, rss=1000, cold=6.0),
    row("ctranslate2-int8", 1, 60.0, 1.0, rss=330, cold=1.5),
    row("openvino-int8", 1, 150.0, 0.40, rss=400, cold=1.4),
    row("openvino-int4", 1, 170.0, 0.38, rss=340, cold=1.6),
    row("ctranslate2-int8", 16, 200.0, 0.30, rss=740, cold=1.5),
    row("openvino-int8", 16, 800.0, 0.08, rss=451, cold=1.4),
    row("openvino-int4", 16, 1000.0, 0.06, rss=430, cold=1.6),
    row("openvino-int8 KV_CACHE_PRECISION=f16", 16, 5000.0, 0.01, rss=100),  # a knob's row: never a target's
]


def test_the_targets_are_issue_14s_and_compare_with_ctranslate2_in_the_same_run():
    lines = generation.targets(ROWS, "openvino-int8", shipped_batch=16)
    assert lines == [
        "batch 16 >= 1000 tok/s: met (1000 tok/s, openvino-int4)",
        "batch 16 >= 4x ctranslate2-int8: met (5.00x, openvino-int4)",
        "batch 1 <= 0.40 s/reply: met (0.38 s, openvino-int4)",
        "batch 1 <= 0.45x ctranslate2-int8's s/reply: met (0.38x, openvino-int4)",
        "bot peak RSS <= 450 MiB at batch 16: MISSED (451 MiB, openvino-int8 = auto here)",
        "cold start <= 1.5 s: met (1.40 s median of 2 rows, openvino-int8)",
    ]
    slower = [dict(r, tokens_per_s=790.0) if r["config"] in ("openvino-int4", "openvino-int8") else r for r in ROWS]
    assert "batch 16 >= 4x ctranslate2-int8: MISSED (3.95x, openvino-int8)" in generation.targets(slower, "openvino-int8", 16)


def test_the_shipped_batch_size_is_the_configs():
    from shared.config import Generation

    rows = [row("openvino-int8", Generation().batch_size, 100.0, 0.5, rss=300)]
    assert f"at batch {Generation().batch_size}: met" in generation.targets(rows, "openvino-int8")[-2]


def test_every_configuration_has_a_readme_title_and_the_table_shows_the_ratio_to_ctranslate2():
    assert set(generation.CONFIGS) <= set(report.TITLES)
    table = report.generation_table(ROWS, "openvino-int8")
    assert "| OpenVINO int8 (auto) | 16 | 800 | 0.08 | 451 MiB | 1.4 s | 66.7x | 4.00x |" in table
    assert "| CTranslate2 int8 | 1 | 60 | 1.00 | 330 MiB | 1.5 s | 5.0x | 1.00x |" in table
    assert "| openvino-int8 KV_CACHE_PRECISION=f16 | 16 |" in table   # a knob keeps its name


def test_a_tuning_row_is_named_after_its_settings():
    spec = {"config": "openvino-int8", "tuning": {"KV_CACHE_PRECISION": "f16", "cache_size": 1}}
    assert generation.config_name(spec) == "openvino-int8 KV_CACHE_PRECISION=f16 cache_size=1"
    assert generation.config_name({"config": "ctranslate2-int8"}) == "ctranslate2-int8"


def test_openvino_settings_parse_and_a_bad_one_exits_2():
    assert bench._setting("INFERENCE_NUM_THREADS=1") == ("INFERENCE_NUM_THREADS", 1)
    assert bench._setting("KV_CACHE_PRECISION=u8") == ("KV_CACHE_PRECISION", "u8")
    assert bench._setting("enable_prefix_caching=false") == ("enable_prefix_caching", False)
    done = subprocess.run([sys.executable, "-m", "jobs.bench", "--only", "generation", "--openvino", "nonsense"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "--openvino: expected KEY=VALUE, got 'nonsense'"


def test_a_tuning_replaces_the_backends_own_setting_per_precision(monkeypatch):
    from shared.generation import openvino

    monkeypatch.setattr(openvino, "PROPERTIES", dict(openvino.PROPERTIES))
    monkeypatch.setattr(openvino, "PRECISION_PROPERTIES", {k: dict(v) for k, v in openvino.PRECISION_PROPERTIES.items()})
    monkeypatch.setattr(openvino, "SCHEDULER", dict(openvino.SCHEDULER))
    generation._tune({"DYNAMIC_QUANTIZATION_GROUP_SIZE": 32, "max_num_batched_tokens": 1024})
    assert openvino.PROPERTIES["DYNAMIC_QUANTIZATION_GROUP_SIZE"] == 32
    assert "DYNAMIC_QUANTIZATION_GROUP_SIZE" not in openvino.PRECISION_PROPERTIES["int8"]
    assert openvino.SCHEDULER["max_num_batched_tokens"] == 1024


def test_the_readme_performance_tables_are_written_from_the_committed_run():
    results = ROOT / "docs" / "bench-results.json"
    section = report.performance_section(json.loads(results.read_text(encoding="utf-8")))
    assert report.readme_section(ROOT / "README.md") == section, \
        "README.md's Performance tables differ from docs/bench-results.json: python -m jobs.bench --readme docs/bench-results.json"


@pytest.mark.parametrize("config", ["openvino-int8", "openvino-int4", "ctranslate2-int8"])
def test_the_committed_run_has_every_converting_backend_at_batch_1_4_16_and_32(config):
    results = json.loads((ROOT / "docs" / "bench-results.json").read_text(encoding="utf-8"))
    batches = {r["batch"] for r in results["generation"]["rows"] if r["config"] == config and "error" not in r}
    assert {1, 4, 16, 32} <= batches


def test_the_committed_run_measured_every_backend_against_the_original():
    results = json.loads(RESULTS_FILE.read_text(encoding="utf-8"))
    rows = [r for r in results["generation"]["rows"] if "error" not in r]
    assert {r["config"] for r in rows} >= {"original", "transformers-fp32", "transformers-bf16", "ctranslate2-int8"}
    assert not results["quick"], "the README shows a full run, not --quick"


def test_readme_rewrites_only_what_is_between_the_markers(tmp_path):
    results = json.loads(RESULTS_FILE.read_text(encoding="utf-8"))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\nbefore\n{report.START}\nold table\n{report.END}\nafter\n")
    report.rewrite_readme(readme, RESULTS_FILE)
    text = readme.read_text()
    assert text.startswith("# title\nbefore\n") and text.endswith(f"{report.END}\nafter\n")
    assert "old table" not in text and report.performance_section(results) in text


def test_readme_option_refuses_a_missing_json_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "jobs.bench", "--readme", str(tmp_path / "nope.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "nope.json" in done.stderr and "Traceback" not in done.stderr


def test_readme_without_markers_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    shutil.copy(RESULTS_FILE, tmp_path / "r.json")
    try:
        report.rewrite_readme(readme, tmp_path / "r.json")
    except ValueError as exc:
        assert "bench:start" in str(exc)
    else:
        raise AssertionError("a README without markers must be refused")
    assert readme.read_text() == "no markers here\n"
