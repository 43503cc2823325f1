"""The demo model: a small GPT-2 that this project trains itself, with no download.

The README's first command runs the bot with it, and the end-to-end tests drive
the bot with it. It is made by the real pipeline, nothing special-cased:

1. ``demo_threads``: a thousand synthetic threads, mostly in r/SubSimGPT2Interactive:
   a handful of personas chatting about houseplants, sourdough, retro games,
   stargazing, cycling, cats, coffee and tea in short sentences: posts (self and link), comments,
   replies by the post's author (OP) and by the author of the comment two levels
   up (own chain). A fixed seed: every build writes the same corpus.
2. stored as rows of a training DB (``shared/training/corpus.py``) through
   ``shared/records.py``, as the download job stores reddit's;
3. the export of ``jobs.export`` writes train.txt and eval.txt (one sample per comment chain);
4. the finetune of ``jobs.finetune`` with ``--init tiny``: a fresh 2-layer GPT-2 and a tokenizer
   trained on train.txt, 8 epochs (about 600 steps): one to two minutes on one core.

Usage::

    python -m jobs.demo --rebuild-model          # build models/demo (about 2 minutes)

    from shared.training.demo_model import ensure_demo_model
    model_dir = ensure_demo_model()             # models/demo/best_model, built when missing

A build happens in a temporary folder beside ``models/demo`` and is renamed into
place when complete, so a killed build never leaves a half model that looks
finished. ``models/demo/demo.json`` records the recipe: a cached model built by
another recipe (an older version of this file) is rebuilt. Two processes that
ask at once build it once: the second waits for the first (a lock file) and
reuses its model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from shared.errors import ModelError
from shared.generation import model_directory

log = logging.getLogger("demo_model")

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = ROOT / "models" / "demo"
# where the threads are posted: SubSimGPT2Interactive, the demo's sandbox subreddit (jobs/demo.py)
# and the tests' (tests/botworld.py), so the model has seen the names its prompts carry
SUBREDDITS = ("SubSimGPT2Interactive", "SubSimDemo", "test")
RECIPE_VERSION = 1      # raise when the corpus or the training changes: cached models are rebuilt


@dataclass(frozen=True)
class Recipe:
    """What a demo build trains on and how long; tests use a much smaller one."""

    posts: int = 1200
    seed: int = 7
    init: str = "tiny"
    epochs: int = 8
    max_seq_length: int = 256
    train_batch_size: int = 8
    learning_rate: float = 3e-3         # a fresh tiny model learns fast; 1e-4 suits finetuning GPT-2 small
    evaluate_during_training_steps: int = 100
    version: int = RECIPE_VERSION


DEMO = Recipe()


def ensure_demo_model(path=DEMO_DIR, progress=True, recipe: Recipe = DEMO, force=False) -> Path:
    """The demo model's directory (``path/best_model``), built first when missing or incomplete.

    ``force`` rebuilds it anyway. ``progress`` shows the training's progress bars.
    """
    path = Path(path)
    if not force and is_built(path, recipe):
        return path / "best_model"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):           # another process is building it: wait, then reuse
        if not force and is_built(path, recipe):
            return path / "best_model"
        build(path, recipe, progress)
    return path / "best_model"


def is_built(path: Path, recipe: Recipe = DEMO) -> bool:
    """True when ``path`` holds a complete demo model made by ``recipe``."""
    try:
        built = json.loads((path / "demo.json").read_text(encoding="utf-8")).get("recipe")
    except (OSError, ValueError, AttributeError):
        return False
    if built != recipe_record(recipe):
        return False
    try:
        model_directory(path / "best_model")
    except ModelError:
        return False
    return True


def recipe_record(recipe: Recipe = DEMO) -> dict:
    """The recipe as demo.json records it, with a fingerprint of the tag format.

    The fingerprint hashes a few samples and prompts as ``shared.tagging`` writes them
    today, so a change of the format (what the model must learn) rebuilds the model.
    """
    from shared import tagging

    samples = demo_samples(4, recipe.seed)
    thread = tagging.parse_sample(samples[-1])
    prompts = [tagging.reply_prompt(thread, "DemoBot-GPT2"), tagging.submission_prompt(SUBREDDITS[0], False)]
    digest = hashlib.sha256("\n".join(samples + prompts).encode("utf-8")).hexdigest()[:16]
    return {**dataclasses.asdict(recipe), "tag_format": digest}


def build(path: Path, recipe: Recipe = DEMO, progress=True) -> dict:
    """Build the demo model into ``path`` (replacing what is there); returns its demo.json.

    Call it holding ``path``'s lock (``ensure_demo_model`` does).
    """
    import torch

    from shared.config import Finetune, Training
    from shared.files import replace_directory
    from shared.training import corpus, export, finetune


    started = time.perf_counter()
    for stale in path.parent.glob(f".{path.name}-build-*"):
        shutil.rmtree(stale, ignore_errors=True)     # a killed build's leftovers (we hold the lock)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}-build-", dir=path.parent))
    threads = torch.get_num_threads()
    # one core: a 2-layer model gains little from a second one, and loses 3-5x of its
    # speed when another process competes for the cores (measured on the 2-core dev box)
    torch.set_num_threads(1)
    try:
        # the corpus, as rows of a training DB, exported by the export job
        rows = thread_rows(recipe.posts, recipe.seed)
        corpus.open(work / "training.db")
        try:
            corpus.store(rows)
            exported = export.export([name.lower() for name in SUBREDDITS], work / "data",
                                     export.Rules.from_config(Training()), chains_mode=True, max_comments=10,
                                     seed=recipe.seed)
        finally:
            corpus.close()
        log.info("demo corpus: %d posts, %d rows, %d samples (%.2f MB)", recipe.posts, len(rows),
                 exported["samples"], exported["mb"])

        # the finetune job, from a fresh model: nothing to download
        settings = dataclasses.replace(
            Finetune(), name="model", output_dir=str(work), init=recipe.init, epochs=recipe.epochs,
            max_seq_length=recipe.max_seq_length, train_batch_size=recipe.train_batch_size,
            learning_rate=recipe.learning_rate, evaluate_during_training_steps=recipe.evaluate_during_training_steps,
            seed=recipe.seed)
        summary = finetune.finetune(settings, work / "data" / "train.txt", work / "data" / "eval.txt",
                                    work / "model", samples=3, progress=progress)

        # keep what the bot and a curious reader need: best_model, the scores, the corpus
        model = work / "model"
        for checkpoint in finetune.checkpoints(model):
            shutil.rmtree(checkpoint)            # the demo is never resumed
        shutil.rmtree(model / "runs", ignore_errors=True)
        os.replace(work / "data", model / "data")
        evals = [(row["global_step"], round(row["eval_loss"], 4)) for row in summary["scores"]]
        record = {"recipe": recipe_record(recipe), "samples": exported["samples"],
                  "blocks": summary["blocks"], "steps": summary["global_step"], "eval_loss": evals,
                  "build_seconds": round(time.perf_counter() - started, 1)}
        (model / "demo.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        replace_directory(model, path)
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(work, ignore_errors=True)
    log.info("demo model built in %.0f s: %s", record["build_seconds"], path / "best_model")
    return record


# --- the corpus ----------------------------------------------------------------------------------

# Each topic: singular things one owns, problems (after "does my X ..."), wins (past
# tense), and tips (imperatives). Templates below turn them into titles and comments.
TOPICS = {
    "plants": dict(
        things=["monstera", "pothos", "snake plant", "fiddle leaf fig", "peace lily", "string of pearls"],
        problems=["keep dropping leaves", "get yellow spots", "look so droopy", "grow sideways"],
        wins=["put out a new leaf", "survived the winter", "started climbing the moss pole",
              "flowered for the first time"],
        tips=["water it only when the top inch is dry", "move it to a brighter window",
              "repot it in chunky soil", "wipe the leaves once a month"]),
    "sourdough": dict(
        things=["starter", "loaf", "focaccia", "rye bread", "banneton"],
        problems=["come out flat", "taste too sour", "stick to everything", "have a gummy crumb"],
        wins=["got a proper ear", "doubled overnight", "had a perfect open crumb", "rose beautifully"],
        tips=["feed the starter twice a day", "do a longer cold proof", "dust it with rice flour",
              "bake it ten minutes longer"]),
    "games": dict(
        things=["SNES", "Game Boy", "N64", "CRT", "arcade stick"],
        problems=["keep freezing", "show a black screen", "lose my saves", "make a buzzing noise"],
        wins=["booted on the first try", "came back to life after a clean", "still had my old save",
              "came with the manual"],
        tips=["clean the contacts with alcohol", "replace the save battery", "use a proper scart cable",
              "open it up and check the caps"]),
    "stars": dict(
        things=["telescope", "star chart", "new eyepiece", "camera", "tripod"],
        problems=["show everything blurry", "fog up", "drift out of view", "miss every target"],
        wins=["showed the rings of Saturn", "caught the Orion nebula", "found all four moons of Jupiter",
              "got a sharp photo of the moon"],
        tips=["let the telescope cool outside first", "start with the lowest power eyepiece",
              "download a star map app", "drive somewhere darker"]),
    "cycling": dict(
        things=["gravel bike", "chain", "rear derailleur", "tubeless setup", "commuter"],
        problems=["keep skipping gears", "squeak in the rain", "lose air overnight", "feel so slow"],
        wins=["did a hundred kilometres", "got me up the big hill", "survived a whole winter",
              "finally felt dialed in"],
        tips=["clean and lube the chain", "check the hanger alignment", "add fresh sealant",
              "drop the tyre pressure a bit"]),
    "cats": dict(
        things=["cat", "kitten", "scratching post", "cat tree", "litter box"],
        problems=["ignore every toy I buy", "wake me up at 5am", "knock everything off the table",
                  "hate the new food"],
        wins=["finally used the scratching post", "slept on my lap for the first time",
              "made friends with the dog", "learned to high five"],
        tips=["play with it before bedtime", "put a bit of catnip on it", "feed it on a timer",
              "give it a cardboard box"]),
    "coffee": dict(
        things=["espresso machine", "grinder", "moka pot", "french press", "pour over"],
        problems=["taste so sour", "come out watery", "make a weird noise", "leave grounds in the cup"],
        wins=["pulled a perfect shot", "made the best cup of my life", "finally tasted like the cafe",
              "survived a full year of daily use"],
        tips=["grind a little finer", "use fresher beans", "descale it once a month", "weigh the beans"]),
    "tea": dict(
        things=["oolong", "green tea", "teapot", "matcha whisk", "earl grey"],
        problems=["taste so bitter", "go cloudy", "lose flavour fast", "come out weak"],
        wins=["tasted amazing", "was worth every penny", "made my whole morning", "tasted like the shop"],
        tips=["use water just below boiling", "steep it for less time", "store the leaves in a dark tin",
              "warm the pot first"]),
}

# name, favourite topics, voice (see _voice)
PERSONAS = [
    ("fern_and_fig", ["plants", "tea", "cats"], "warm"),
    ("crumb_theory", ["sourdough", "coffee"], "plain"),
    ("pixel_pilgrim", ["games", "stars"], "lower"),
    ("orbit_otter", ["stars", "cycling"], "excited"),
    ("gravel_grinder", ["cycling", "coffee", "sourdough"], "plain"),
    ("teacup_tyrant", ["tea", "plants"], "dry"),
    ("quiet_harbor", ["plants", "stars", "cats"], "warm"),
    ("marmalade_cat", ["cats", "games", "sourdough"], "lower"),
]

PROBLEM_TITLES = ["Why does my {thing} {problem}?", "Is it normal for a {thing} to {problem}?",
                  "Help, why does my {thing} {problem}", "Anyone else's {thing} {problem} lately?"]
WIN_TITLES = ["My {thing} finally {win}", "Small victory: my {thing} {win}", "Look at this, my {thing} {win}!",
              "After months of trying my {thing} {win}"]
TIP_TITLES = ["Little tip for anyone with a {thing}: {tip}", "PSA: {tip}", "What finally worked for my {thing}"]

PROBLEM_BODIES = ["I tried to {tip} but nothing changed. Any ideas?", "It started last week and I have no clue why.",
                  "Everyone says to {tip}, but I already do that.", "First time owner here, please be gentle."]
WIN_BODIES = ["Just wanted to share. It took me ages to get here.", "Honestly made my day.",
              "The trick was to {tip}. Who knew.", "Still can't believe it worked."]
TIP_BODIES = ["I wish someone had told me sooner.", "Took me a year to figure this out.",
              "Simple, but it changed everything for me."]

# A comment on a post of each kind, with the answers its post's author (OP) may give.
COMMENTS = {
    "problem": [
        ("Try to {tip}. That fixed mine.", ["Thanks! I'll try that tonight.", "Good idea, I had not thought of that."]),
        ("Have you tried to {tip}?", ["Not yet, I'll try that tonight.", "Yes, and it did not help much."]),
        ("Mine did the same thing last month.", ["Did it ever get better?", "Glad I'm not the only one."]),
        ("Same here, it drives me nuts.", ["Right? So annoying."]),
        ("How long has it been like that?", ["About two weeks, give or take.", "Since last weekend."]),
        ("Does it {problem} every time?", ["Yes, every single time.", "Only sometimes, which is even weirder."]),
        ("I would {tip} and give it a week.", ["Okay, I'll give that a go.", "Will do, thanks for the help!"]),
    ],
    "win": [
        ("That's awesome, congrats!", ["Thank you, I was so nervous!", "Thanks, I'm really proud of it."]),
        ("Looks great. Mine never {win}.", ["Keep at it, yours will get there.", "The trick for me was to {tip}."]),
        ("How long did that take?", ["About three months, give or take.", "Way longer than I would like to admit."]),
        ("Nice! What was the trick?", ["Honestly I just had to {tip}.", "Nothing special, I just kept at it."]),
        ("This is the content I'm here for.", ["Haha thank you!"]),
        ("Well deserved, enjoy it.", ["I will, thanks!"]),
    ],
    "tip": [
        ("Good tip, I always forget to {tip}.", ["Same, I set a reminder now."]),
        ("This is the way.", ["It really is."]),
        ("Does that work for a {other} too?", ["No idea, let me know if you try it!", "It should, give it a go."]),
        ("Saving this for later.", ["Glad it helps!"]),
        ("I do this too and it really helps.", ["Nice to hear it is not just me."]),
    ],
}
OWN_CHAIN_REPLIES = ["Let me know how it goes!", "Glad to help.", "No problem, good luck with it.",
                     "Fingers crossed for you.", "Post an update when it works!"]
SIDE_REPLIES = ["Seconding this.", "Can confirm, this works.", "This thread is so wholesome.",
                "Same question here.", "Wait, I need to try this too."]


def _voice(text: str, voice: str, rng: random.Random) -> str:
    """A persona's habits: all lower case, exclamation marks, a dry opener, a smiley."""
    if voice == "lower":
        return text.lower().rstrip(".")
    if voice == "excited":
        return text.rstrip(".") + "!" if text.endswith(".") and rng.random() < 0.6 else text
    if voice == "dry" and rng.random() < 0.4:
        return "Honestly? " + text
    if voice == "warm" and rng.random() < 0.3:
        return text + " :)"
    return text


def demo_threads(posts: int, seed: int = 7) -> list[dict]:
    """``posts`` synthetic threads as nested dicts: {"post": {...}, "comments": [tree...]}.

    A comment is {"author", "body", "replies": [...]}. The same seed gives the same threads.
    """
    rng = random.Random(seed)
    names = [name for name, _, _ in PERSONAS]
    voices = {name: voice for name, _, voice in PERSONAS}
    threads = []
    for _ in range(posts):
        author, topics, _voice_name = rng.choice(PERSONAS)
        topic = TOPICS[rng.choice(topics)]
        slots = {key[:-1]: rng.choice(values) for key, values in topic.items()}   # thing, problem, win, tip
        kind = rng.choice(["problem", "problem", "win", "win", "tip"])
        titles = {"problem": PROBLEM_TITLES, "win": WIN_TITLES, "tip": TIP_TITLES}[kind]
        bodies = {"problem": PROBLEM_BODIES, "win": WIN_BODIES, "tip": TIP_BODIES}[kind]
        is_link = rng.random() < 0.15

        def say(who, template, words):
            return _voice(template.format(**words), voices[who], rng)

        post = {"subreddit": rng.choices(SUBREDDITS, weights=(6, 3, 1))[0], "author": author,
                "title": say(author, rng.choice(titles), slots).removesuffix(" :)"),
                "body": "" if is_link else say(author, rng.choice(bodies), slots), "is_link": is_link}
        comments = []
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
            commenter = rng.choice([n for n in names if n != author])
            # each comment brings its own tip, which OP's answer may repeat
            words = dict(slots, tip=rng.choice(topic["tips"]),
                         other=rng.choice([t for t in topic["things"] if t != slots["thing"]]))
            comment, answers = rng.choice(COMMENTS[kind])
            top = {"author": commenter, "body": say(commenter, comment, words), "replies": []}
            comments.append(top)
            if rng.random() < 0.6:                        # OP answers
                op = {"author": author, "body": say(author, rng.choice(answers), words), "replies": []}
                top["replies"].append(op)
                if rng.random() < 0.5:                    # and the commenter answers back: own chain
                    op["replies"].append({"author": commenter, "replies": [],
                                          "body": say(commenter, rng.choice(OWN_CHAIN_REPLIES), words)})
            if rng.random() < 0.25:                       # someone else chimes in
                other = rng.choice([n for n in names if n not in (author, commenter)])
                top["replies"].append({"author": other, "replies": [],
                                       "body": say(other, rng.choice(SIDE_REPLIES), words)})
        threads.append({"post": post, "comments": comments})
    return threads


def thread_rows(posts: int, seed: int = 7) -> list[dict]:
    """The training-DB rows (``shared.records.normalise``) of ``demo_threads(posts, seed)``."""
    from shared.records import base36, normalise

    rows = []
    rng = random.Random(seed)
    counter = iter(range(36 ** 3, 36 ** 6))
    created = 1_600_000_000.0
    for thread in demo_threads(posts, seed):
        post = thread["post"]
        post_id = base36(next(counter))
        created += 3600
        rows.append(normalise({
            "id": post_id, "subreddit": post["subreddit"], "author": post["author"], "title": post["title"],
            "selftext": post["body"], "is_self": not post["is_link"], "over_18": False,
            "url": f"https://example.com/{post_id}" if post["is_link"] else None,
            "score": rng.randint(1, 200), "created_utc": created}))

        def add(comment, parent, depth, subreddit=post["subreddit"]):
            comment_id = base36(next(counter))
            rows.append(normalise({
                "id": comment_id, "subreddit": subreddit, "author": comment["author"], "body": comment["body"],
                "score": rng.randint(1, 50), "created_utc": created + 60 * (depth + 1),
                "parent_id": parent, "link_id": f"t3_{post_id}"}))
            for reply in comment["replies"]:
                add(reply, f"t1_{comment_id}", depth + 1)

        for comment in thread["comments"]:
            add(comment, f"t3_{post_id}", 0)
    return rows


def demo_samples(posts: int, seed: int = 7) -> list[str]:
    """Training samples (one chain each) of the demo corpus, without the DB: for quick tests."""
    from shared.tagging import Comment, Post, Thread, training_sample

    samples = []
    for thread in demo_threads(posts, seed):
        p = thread["post"]
        post = Post(p["subreddit"], p["author"], p["title"], p["body"], p["is_link"])

        def chains(comment, above):
            chain = above + (Comment(comment["author"], comment["body"]),)
            if not comment["replies"]:
                yield chain
            for reply in comment["replies"]:
                yield from chains(reply, chain)

        threads = [chain for c in thread["comments"] for chain in chains(c, ())] or [()]
        samples.extend(training_sample(Thread(post, chain)) for chain in threads)
    return samples
