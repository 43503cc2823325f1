"""The toxicity check (shared/bot/toxicity.py): both engines with real models, their thresholds,
and one clear line for every way a Detoxify checkpoint can be wrong."""

import subprocess
import sys

import pytest
import yaml

from shared.bot import toxicity
from shared.config import DetoxifyThresholds, Toxicity, load_config, parse_config
from shared.errors import ConfigError
from tests.botworld import ROOT
from tests.detoxify_models import LABELS, build_checkpoint

ORIGINAL = dict(toxicity=0.8, severe_toxicity=0.05, obscene=0.8, identity_attack=0.4, insult=0.4, threat=0.3,
                sexual_explicit=0.8)


# --- the verdict (pure) ---------------------------------------------------------------------

def test_verdict_names_the_highest_label_over_its_threshold():
    limits = (("toxicity", 0.8), ("insult", 0.4), ("threat", 0.3))
    assert toxicity.verdict({"toxicity": 0.5, "insult": 0.93, "threat": 0.35}, limits, False) == \
        "toxic: insult 0.93 > 0.40"
    assert toxicity.verdict({"toxicity": 0.5, "insult": 0.2, "threat": 0.1}, limits, False) is None


def test_verdict_strict_or_inclusive_at_the_threshold_and_unknown_labels_ignored():
    assert toxicity.verdict({"threat": 0.3}, (("threat", 0.3),), False) is None        # the original: strictly above
    assert toxicity.verdict({"profanity": 0.8}, (("profanity", 0.8),), True) == "toxic: profanity 0.80 >= 0.80"
    assert toxicity.verdict({"toxicity": 0.99}, (("sexual_explicit", 0.8),), False) is None


def test_the_defaults_are_profanity_check_on_both_sides_and_the_originals_detoxify_thresholds():
    settings = parse_config({"bots": [{"name": "A", "model": "m"}]}).bots[0].toxicity
    assert (settings.engine, settings.incoming, settings.generated, settings.threshold) == (
        "profanity-check", True, True, 0.8)
    assert vars(settings.thresholds) == ORIGINAL


# --- profanity-check (the default engine, its real packaged model) ----------------------------

@pytest.fixture(scope="module")
def profanity():
    return toxicity.checker(Toxicity(), "TestBot")


TOXIC = ["You are a worthless piece of shit.", "Shut up, you stupid idiot.", "What a pathetic loser you are.",
         "You're a fucking moron and everyone hates you.", "You are a cunt!"]
CLEAN = ["I played the trumpet at the school concert.", "Scunthorpe United won their match on Saturday.",
         "My therapist helped me a lot this year.", "I bought a bunch of grapes at the market.",
         "Pakistan is playing India in the cricket final.", "The housing crisis is getting worse.",
         "I'd murder a pizza right now.", "Assassin's Creed is my favourite game series.",
         "Thanks for sharing, this made my day.", "Can someone explain what this means? I'm confused.", "", "   "]


def test_profanity_check_flags_insults_and_passes_ordinary_chatter(profanity):
    reasons = profanity.reasons(TOXIC + CLEAN)
    assert all(r and r.startswith("toxic: profanity ") and r.endswith(" >= 0.80") for r in reasons[:len(TOXIC)])
    assert reasons[len(TOXIC):] == [None] * len(CLEAN)


def test_one_insult_in_a_long_comment_is_not_diluted(profanity):
    long = ("I went to the market this morning. The tomatoes were lovely and cheap. "
            "The baker had fresh bread as usual. You are an idiot. Anyway, dinner was great.")
    assert profanity.reasons([long]) == ["toxic: profanity 1.00 >= 0.80"]
    assert toxicity.sentences("One. Two!\n\nThree?  Four") == ["One.", "Two!", "Three?", "Four"]


def test_the_threshold_is_the_bots_setting(profanity):
    text = "You are an ignorant clown, go away."          # 0.94 in alt-profanity-check 1.9.1
    assert profanity.reasons([text])[0] is not None
    assert toxicity.checker(Toxicity(threshold=0.99), "TestBot").reasons([text]) == [None]


def test_an_engine_is_loaded_once_per_process_and_shared_by_bots(profanity):
    other = toxicity.checker(Toxicity(threshold=0.5), "OtherBot")
    assert other.engine is profanity.engine and other.thresholds != profanity.thresholds


def test_commands_and_config_do_not_load_a_classifier():
    code = ("import sys, jobs.decide, jobs.generate, shared.config; shared.config.parse_config({}); "
            "assert not {'profanity_check', 'detoxify', 'sklearn'} & set(sys.modules), sorted(sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- detoxify from a local checkpoint (a tiny one, built here, loaded by the real Detoxify) ---------

def detoxify(path, **thresholds):
    return toxicity.checker(Toxicity(engine="detoxify", checkpoint=str(path),
                                     thresholds=DetoxifyThresholds(**thresholds)), "TestBot")


def test_a_local_checkpoint_loads_through_detoxify_and_scores_every_label(tmp_path):
    check = detoxify(build_checkpoint(tmp_path))
    assert check.engine.labels == tuple(LABELS)
    assert check.thresholds == tuple((label, ORIGINAL[label]) for label in LABELS)   # no sexual_explicit here
    texts = ["you are a stupid idiot !", "i love this bread .", "i love you " * 100, ""]
    scores = check.engine.scores(texts)
    assert [set(s) for s in scores] == [set(LABELS)] * 4
    assert all(0.0 <= v <= 1.0 for s in scores for v in s.values())
    assert scores[3] == dict.fromkeys(LABELS, 0.0), "an empty text is not scored"
    assert check.engine.scores(texts[:1]) == scores[:1], "one text: Detoxify's floats become a list"
    assert len(check.engine.scores(texts * 10)) == 40, "more texts than one batch"


def test_detoxify_uses_the_originals_thresholds_strictly(tmp_path):
    clean = [0.5, 0.01, 0.5, 0.29, 0.39, 0.39]     # toxicity, severe, obscene, threat, insult, identity_attack
    assert detoxify(build_checkpoint(tmp_path / "a", fixed=clean)).reasons(["anything", "at all"]) == [None, None]
    severe = [0.5, 0.06, 0.5, 0.1, 0.1, 0.1]
    assert detoxify(build_checkpoint(tmp_path / "b", fixed=severe)).reasons(["hi"]) == [
        "toxic: severe_toxicity 0.06 > 0.05"]
    threat = [0.1, 0.01, 0.1, 0.31, 0.1, 0.1]
    assert detoxify(build_checkpoint(tmp_path / "c", fixed=threat)).reasons(["hi"]) == ["toxic: threat 0.31 > 0.30"]
    assert detoxify(build_checkpoint(tmp_path / "d", fixed=threat), threat=0.5).reasons(["hi"]) == [None]


def test_a_seven_label_checkpoint_checks_sexual_explicit_too(tmp_path):
    classes = ["toxicity", "severe_toxicity", "obscene", "identity_attack", "insult", "threat", "sexual_explicit"]
    path = build_checkpoint(tmp_path, fixed=[0.1, 0.01, 0.1, 0.1, 0.1, 0.1, 0.85], classes=classes)
    assert detoxify(path).reasons(["hi"]) == ["toxic: sexual_explicit 0.85 > 0.80"]


def broken(tmp_path, kind):
    """A checkpoint path that is wrong in one way."""
    import torch

    path = tmp_path / "bad.ckpt"
    if kind == "missing":
        return tmp_path / "nope.ckpt"
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a checkpoint\n")
    elif kind == "bare state dict":
        torch.save({"weight": torch.zeros(2)}, path)
    elif kind == "hub id":
        return build_checkpoint(tmp_path, model_type="unitary/unbiased-toxic-roberta")
    elif kind == "lightning prefix":
        return build_checkpoint(tmp_path, prefix="model.")
    return path


@pytest.mark.parametrize("kind, words", [
    ("missing", "no such file"),
    ("folder", "a folder, not a file"),
    ("empty", "not a Detoxify checkpoint"),
    ("text", "not a Detoxify checkpoint"),
    ("bare state dict", "needs config.arch.args"),
    ("hub id", "'unitary/unbiased-toxic-roberta', not a folder on this machine"),
    ("lightning prefix", "start with 'model.'"),
])
def test_a_bad_checkpoint_is_one_line_naming_the_setting_and_the_fix(tmp_path, kind, words):
    path = broken(tmp_path, kind)
    with pytest.raises(ConfigError) as caught:
        detoxify(path)
    (line,) = caught.value.problems
    assert line.startswith(f"bot TestBot: toxicity.checkpoint {path}: ") and words in line, line


def test_detoxify_without_a_checkpoint_is_a_config_error_and_a_relative_one_is_beside_the_config(tmp_path):
    with pytest.raises(ConfigError) as caught:
        parse_config({"bots": [{"name": "A", "model": "m", "toxicity": {"engine": "detoxify"}}]})
    assert caught.value.problems == ["bots[0].toxicity.checkpoint: missing, expected a Detoxify checkpoint file on "
                                     "this machine when engine is detoxify (Detoxify cannot download one offline)"]
    path = tmp_path / "ssi-bot.yaml"
    path.write_text(yaml.safe_dump({"bots": [{"name": "A", "model": "m", "toxicity": {
        "engine": "detoxify", "checkpoint": "models/tox.ckpt"}}]}))
    assert load_config(path).bots[0].toxicity.checkpoint == str(tmp_path / "models" / "tox.ckpt")
