"""Turn the original bot's ssi-bot.ini (zacc/ssi-bot) into an equivalent ssi-bot.yaml.

    python -m jobs.migrate path/to/ssi-bot.ini [--out ssi-bot.yaml] [--force]

Reads every key the original read, as its ConfigParser did ([DEFAULT] keys
inherited unless a bot sets its own, no inline comments, quotes kept,
%(key)s interpolated), and writes one commented ssi-bot.yaml: each value's
comment names the ini key it came from. The reply weights keep their numbers
(comment_depth_reply_penalty 0.05 becomes per_depth_level -0.05), keywords
become word or prefix* patterns, new_submission_schedule and
subreddit_flair_id_map become submit entries, enable_inbox_replies becomes
inbox.messages. The command lists what could not be carried exactly and what
ssi-bot does differently on purpose; the same lists head the file.

The file is checked with ssi-bot's own config loader before it is put in
place (written beside it, then renamed), so it passes
``python -m shared.config --check``. An existing file is kept unless
``--force``. Model paths stay where they are: they are rewritten relative to
the new file. Keep praw.ini as it is (same sections), beside the new file.

Exit codes: 0 written; 2 unreadable or invalid ini, or the output exists
(one line saying what to fix); 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from shared import cli
from shared.config import load_config
from shared.errors import ConfigError, InputError
from shared.original.ini import migrate

log = logging.getLogger("migrate")


def read_text(path: Path) -> str:
    """The ini's text; InputError when it is missing or not a text file."""
    if not path.exists():
        raise InputError(f"{path}: no such file (pass the original's ssi-bot.ini)")
    if not path.is_file():
        raise InputError(f"{path}: not a file (pass the original's ssi-bot.ini)")
    data = path.read_bytes()
    if b"\x00" in data:
        raise InputError(f"{path}: a binary file, not an ini (pass the original's ssi-bot.ini)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def run(ini, out, force=False):
    """Migrate ``ini`` to ``out`` ("-": print the YAML); return the Migration."""
    ini, to_stdout = Path(ini), out == "-"
    out = Path(out)
    if not to_stdout and out.is_dir():
        raise InputError(f"{out}: a folder; pass the file to write, e.g. --out {out / 'ssi-bot.yaml'}")
    if not to_stdout and out.exists() and out.resolve() == ini.resolve():
        raise InputError(f"{out}: that is the ini itself; pass --out another file")
    if not to_stdout and out.exists() and not force:
        raise InputError(f"{out}: already exists; pass --force to overwrite it, or --out another file")
    text = read_text(ini)
    out_dir = Path.cwd() if to_stdout else out.resolve().parent
    result = migrate(text, source=str(ini), ini_dir=str(ini.resolve().parent), out_dir=str(out_dir))
    if to_stdout:
        sys.stdout.write(result.yaml_text)
        return result
    if not out_dir.is_dir():
        raise InputError(f"{out}: its folder {out_dir} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(result.yaml_text)
        try:
            load_config(tmp)     # what every job will read; relative paths resolve from the same folder
        except ConfigError as exc:
            raise ConfigError([line.replace(tmp, str(out)) for line in exc.problems]) from None
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return result


def summary(result, out):
    """What the command prints: the file, the bots and the notes an operator must read."""
    lines = [f"wrote {out}: {len(result.bots)} bot(s): {', '.join(result.bots)}"]
    for title, notes in (("not carried exactly", result.not_exact),
                         ("different from the original on purpose", result.by_design),
                         ("carried as the original read the ini (check that this is what you meant)", result.as_read)):
        if notes:
            lines.append(f"{title} ({len(notes)}):")
            lines += [f"  - {note}" for note in notes]
    base = Path(out).resolve().parent
    missing = [f"{name}: {path}" for name, path in result.model_dirs.items() if not (base / path).is_dir()]
    if missing:
        lines.append("model folders not found (copy or link them there, or edit model:):")
        lines += [f"  - {m}" for m in missing]
    lines.append(f"next: put praw.ini beside it and check it: python -m shared.config --check {out}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jobs.migrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ini", help="the original's ssi-bot.ini")
    p.add_argument("--out", default=cli.DEFAULT_CONFIG, metavar="PATH",
                   help="the ssi-bot.yaml to write (default: %(default)s; '-' prints it)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    cli.setup_logging(args.verbose)
    try:
        result = run(args.ini, args.out, force=args.force)
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
        return cli.report(exc, log)
    if args.out == "-":
        sys.stderr.write(summary(result, "-").replace("wrote -", "printed the YAML") + "\n")
    else:
        print(summary(result, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
