"""Finetune GPT-2 on exported training text; keep the best model by eval loss.

    python -m jobs.finetune [--config ssi-bot.yaml] [--name NAME]
                            [--base-model DIR | --init tiny|124M]
                            [--train-file data/train.txt] [--eval-file data/eval.txt]
                            [--epochs N] [--learning-rate LR] [--max-seq-length N] [--batch-size N]
                            [--eval-every N] [--seed N] [--restart] [--samples N]

Workflow step 3 of training a bot: train.txt and eval.txt from ``jobs.export`` (one
tagged sample per line) go in, ``models/NAME/best_model`` comes out, ready for
the bot (``model: models/NAME/best_model`` in ssi-bot.yaml). Every setting has
a key under ``finetune:`` in ssi-bot.yaml, with the community's defaults
(zacc/ssi-bot's train.py: learning rate 1e-4, batch 4, 512-token windows,
evaluation every 2000 steps); the command line overrides them.

Where training starts:

- the newest complete checkpoint in ``models/NAME`` (an interrupted run resumes);
- else ``--base-model DIR``: any GPT-2 directory in the transformers or
  simpletransformers layout (or a run folder holding ``best_model/``);
- else ``--init tiny|124M``: a fresh GPT-2 of that shape with a byte-level BPE
  tokenizer trained on train.txt, so the pipeline runs with no download at all
  (air-gapped machines, this repo's tests and demo model).

It trains with simpletransformers' ``LanguageModelingModel`` on a CUDA GPU when
there is one (fp16 there unless ``finetune.fp16`` is false), else on the CPU,
which is only practical for tiny models. Samples are packed whole into blocks of
``max_seq_length`` tokens, a sample longer than a block in overlapping windows
(``token_blocks``: 2% padding where simpletransformers' own loader pads to 84%).
It evaluates on eval.txt every ``--eval-every`` steps and at the end of each
epoch, writes each evaluation to ``models/NAME/training_progress_scores.csv`` and
keeps the model with the lowest eval loss in ``best_model``. At the end it
prints the eval-loss trajectory and a few replies that ``best_model`` writes to
held-out threads, generated through the bot's own path (``shared.generation``).

Resumable and idempotent: checkpoints (weights, optimizer and scheduler)
are saved at every evaluation and every epoch end (and every ``save_steps``),
the newest ``keep_checkpoints`` kept. Killed at any moment, a rerun continues
from the newest complete checkpoint; rerun after it finished, it trains
nothing. ``best_model`` is replaced by renames, never left half written, and
only by a better model. ``--restart`` throws the run away and starts over.
One finetune at a time per ``models/NAME`` (a lock file beside it).

Exit codes: 0 done; 2 bad input (no or empty training file, a base model that
is not a GPT-2 directory, conflicting settings), one line, no traceback.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

from shared import cli
from shared.errors import InputError
from shared.state.lock import job_lock
from shared.training.finetune import finetune


def run(config, bots, train_file=None, eval_file=None, restart=False, samples=3, progress=True,
        **overrides):
    # -- settings: the config's finetune section, then the command line ------------------------
    settings = finetune_settings(config, overrides)
    data_dir = Path(config.training.data_dir)
    train_file = Path(train_file) if train_file else data_dir / "train.txt"
    eval_file = Path(eval_file) if eval_file else data_dir / "eval.txt"
    out = Path(settings.output_dir) / settings.name
    out.parent.mkdir(parents=True, exist_ok=True)
    with job_lock("finetune", str(out)):
        return finetune(settings, train_file, eval_file, out, restart, samples, progress)


def finetune_settings(config, overrides):
    """``config.finetune`` with command-line overrides, each checked like the config key it replaces.

    Relative paths in the config are relative to the config file; on the command
    line, to the working directory.
    """
    here = Path(config.path).resolve().parent if config.path else Path.cwd()
    settings = dataclasses.replace(config.finetune)
    for name in ("output_dir", "base_model"):
        value = getattr(settings, name)
        if value is not None:
            setattr(settings, name, str(here / value))
    for f in dataclasses.fields(settings):
        value = overrides.get(f.name)
        if value is None:
            continue
        check = f.metadata.get("check")
        expected = check(value) if check else None
        if expected:
            raise InputError(f"--{f.name.replace('_', '-')} {value}: expected {expected}")
        setattr(settings, f.name, str(Path(value).resolve()) if f.name in ("output_dir", "base_model") else value)
    if not re.fullmatch(r"[\w.-]+", settings.name) or settings.name in (".", ".."):
        raise InputError(f"--name {settings.name!r}: expected a folder name (letters, digits, _ . -)")
    return settings


# --- command line ------------------------------------------------------------------------------

def _positive(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def add_arguments(parser):
    import argparse

    # each option overrides the finetune key of the same name in ssi-bot.yaml
    parser.add_argument("--name", help="the run folder under output_dir (default: finetune.name)")
    parser.add_argument("--train-file", metavar="PATH", help="training text (default: training.data_dir/train.txt)")
    parser.add_argument("--eval-file", metavar="PATH", help="held-out text (default: training.data_dir/eval.txt)")
    parser.add_argument("--base-model", metavar="DIR", help="GPT-2 directory to start from")
    parser.add_argument("--init", choices=("tiny", "124M"), help="start from a fresh GPT-2 of this size, no download")
    parser.add_argument("--output-dir", metavar="DIR", help="where run folders live (default: finetune.output_dir)")
    parser.add_argument("--epochs", type=_positive, metavar="N")
    parser.add_argument("--learning-rate", type=float, metavar="LR")
    parser.add_argument("--max-seq-length", type=_positive, metavar="N", help="tokens per training block")
    parser.add_argument("--sliding-window", action=argparse.BooleanOptionalAction, default=None,
                        help="cut long samples into overlapping windows (--no-sliding-window: keep their start)")
    parser.add_argument("--batch-size", dest="train_batch_size", type=_positive, metavar="N")
    parser.add_argument("--gradient-accumulation-steps", type=_positive, metavar="N")
    parser.add_argument("--eval-every", dest="evaluate_during_training_steps", type=_positive, metavar="N",
                        help="evaluate (and maybe keep a new best model) every N steps")
    parser.add_argument("--save-steps", type=int, metavar="N", help="also checkpoint every N steps (0 = off)")
    parser.add_argument("--keep-checkpoints", type=_positive, metavar="N")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None,
                        help="mixed precision on a CUDA GPU (default: on when there is one)")
    parser.add_argument("--restart", action="store_true", help="discard this run's checkpoints and start over")
    parser.add_argument("--samples", type=int, default=3, metavar="N",
                        help="sample replies printed at the end (default: %(default)s; 0 = none)")


def main(argv=None):
    return cli.main("finetune", __doc__, run, add_arguments, argv=argv, use_db=False, use_lock=False,
                    config_optional=True)


if __name__ == "__main__":
    sys.exit(main())
