"""ssi-bot.yaml validation: every problem named once, by key, with the fix."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shared.config import example_yaml, load_config, parse_config
from shared.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def problems(data):
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def minimal(**bot):
    return {"bots": [{"name": "TestBot", "model": "models/x", **bot}]}


def test_minimal_config_gets_every_default():
    config = parse_config(minimal())
    bot = config.bots[0]
    assert bot.reply.base == -0.1 and bot.reply.human_author == 0.3
    assert bot.sampling.temperature == 0.8 and bot.sampling.top_k == 40
    assert bot.sampling.top_p is None and bot.sampling.repetition_penalty == 1.008   # None: the model's, else 0.95
    assert config.retention_days == 30 and config.schedule.fetch == 60
    assert bot.excluded_authors == ["AutoModerator", "reddit", "profanitycounter"]   # the original's three
    assert bot.negative_patterns(), "a safe default negative keyword list ships with the product"


def test_misspelled_key_is_an_error_with_a_suggestion():
    lines = problems(minimal(reply={"bsae": 0.2}))
    assert lines == ["bots[0].reply.bsae: unknown key (did you mean 'base'?)"]


def test_wrong_type_names_key_value_and_expectation():
    lines = problems(minimal(reply={"base": "high"}))
    assert lines == ["bots[0].reply.base: got 'high', expected a number"]


def test_every_problem_is_reported_at_once():
    lines = problems({"bots": [{"name": "A", "modle": "x", "caps": {"per_hour": -1}}], "schedul": {}})
    assert any(line.startswith("bots[0].modle: unknown key (did you mean 'model'?)") for line in lines)
    assert any(line.startswith("bots[0].model: missing") for line in lines)
    assert "bots[0].caps.per_hour: got -1, expected a number >= 0" in lines
    assert any(line.startswith("schedul: unknown key (did you mean 'schedule'?)") for line in lines)


def test_bool_is_not_an_integer_and_ints_are_numbers():
    assert problems(minimal(caps={"per_hour": True})) == [
        "bots[0].caps.per_hour: got True, expected an integer"]
    assert parse_config(minimal(reply={"base": 0})).bots[0].reply.base == 0.0


def test_choices_and_ranges_are_checked():
    assert problems(minimal(dialect="old")) == [
        "bots[0].dialect: got 'old', expected one of 'reply_sense', 'legacy'"]
    assert problems(minimal(submit=[{"subreddit": "r/test", "link_share": 2}])) == [
        "bots[0].submit[0].subreddit: got 'r/test', expected subreddit names without 'r/', one per entry "
        "(e.g. SubSimGPT2Interactive)",
        "bots[0].submit[0].link_share: got 2, expected a number from 0 to 1"]


def test_duplicate_bots_are_refused():
    data = {"bots": [{"name": "A", "model": "m"}, {"name": "a", "model": "m"}]}
    assert problems(data) == ["bots[1].name: 'a' appears twice, expected one entry per account"]


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "ssi-bot.yaml"
    path.write_text(yaml.safe_dump({"db": "state.db", "bots": [{"name": "A", "model": "../models/a"}]}))
    config = load_config(path)
    assert config.db == str(tmp_path / "conf" / "state.db")
    assert config.bots[0].model == str(tmp_path / "models" / "a")


def test_missing_file_and_bad_yaml_are_one_line_each(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("bots: [\n  name: x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert len(caught.value.problems) == 1 and "not valid YAML" in caught.value.problems[0]


def test_example_file_is_generated_from_the_schema_and_valid():
    shipped = (ROOT / "ssi-bot.yaml.example").read_text()
    assert shipped == example_yaml(), "regenerate: python -m shared.config --example > ssi-bot.yaml.example"
    config = parse_config(yaml.safe_load(shipped))
    assert config.bots[0].name == "MyBot-GPT2"


@pytest.mark.parametrize("job", ["fetch", "decide", "status"])
def test_jobs_exit_2_with_one_line_per_problem_and_no_traceback(tmp_path, job):
    path = tmp_path / "ssi-bot.yaml"
    path.write_text(yaml.safe_dump({"bots": [{"name": "A", "model": "m", "reply": {"bsae": 1}}]}))
    done = subprocess.run([sys.executable, "-m", f"jobs.{job}", "--config", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "bots[0].reply.bsae: unknown key (did you mean 'base'?)" in errors[0]


def test_exponent_floats_written_without_a_dot_are_numbers():
    config = parse_config({"finetune": {"learning_rate": "1e-4"}, "bots": [{"name": "A", "model": "m"}]})
    assert config.finetune.learning_rate == pytest.approx(1e-4)
    assert problems(minimal(reply={"base": "lots"})) == ["bots[0].reply.base: got 'lots', expected a number"]


def test_the_old_s3_section_still_loads_with_one_warning_to_rename_it(tmp_path, caplog):
    path = tmp_path / "ssi-bot.yaml"
    path.write_text(yaml.safe_dump({**minimal(), "s3": {"bucket": "b", "prefix": "bots/"}}))
    config = load_config(path)
    assert (config.snapshots.bucket, config.snapshots.prefix) == ("b", "bots/")
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: s3: renamed to 'snapshots' (same keys); rename it in the file"]
    assert problems({**minimal(), "s3": {"bucket": "b"}, "snapshots": {"bucket": "c"}}) == [
        "s3: renamed to 'snapshots', and both are set: keep only 'snapshots'"]
