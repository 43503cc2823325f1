"""The toxicity section of jobs.bench: its corpus, its table in the terminal and in the README."""

from jobs.bench import report, toxicity

RESULT = {
    "corpus_texts": 5196,
    "round": {"config": "ctranslate2-int8", "items": 16, "candidates": 2, "new_tokens": 64, "seconds": 10.0},
    "rows": [
        {"engine": "profanity-check", "load_s": 1.5, "load_rss_mib": 190, "texts_per_s_batch1": 300.0,
         "ms_per_text_p50_batch1": 3.2, "texts_per_s_batch32": 9000.0, "ms_per_text_p50_batch32": 0.11,
         "round_check_s": 0.004, "share_of_round": 0.0004, "flagged": 1, "flagged_share": 0.0002},
        {"engine": "detoxify", "load_s": 5.0, "load_rss_mib": 520, "texts_per_s_batch1": 20.0,
         "ms_per_text_p50_batch1": 50.0, "texts_per_s_batch32": 50.0, "ms_per_text_p50_batch32": 20.0,
         "round_check_s": 0.64, "share_of_round": 0.064},
    ],
}


def test_the_corpus_is_every_post_and_comment_of_the_demo_threads():
    texts = toxicity.corpus()
    assert len(texts) == 5196 and all(texts)


def test_the_terminal_lines_show_each_engine_and_its_share_of_a_round():
    lines = toxicity.toxicity_lines(RESULT)
    assert "a generate round = 16 items x 2 candidates" in lines[0] and "10.00 s" in lines[0]
    (profanity,) = [line for line in lines if line.startswith("profanity-check")]
    (detoxify,) = [line for line in lines if line.startswith("detoxify")]
    assert "0.0%" in profanity and "0.04%" in profanity
    assert " n/a " in detoxify and "6.40%" in detoxify


def test_the_readme_table_is_written_from_the_runs_json():
    section = report.performance_section({"machine": {"cores": 2, "cpu": "x", "python": "3.11"}, "toxicity": RESULT})
    assert "| profanity-check | 300 | 3.20 | 9,000 | 0.0% | 4 ms | 0.04% | 1.5 s | 190 MiB |" in section
    assert "| detoxify | 20 | 50.00 | 50 | - | 640 ms | 6.40% | 5.0 s | 520 MiB |" in section
