"""Soak the state sync: write -> push cycles under random SIGKILLs, then restore and compare.

    python -m jobs.bench.soak [--cycles 200] [--seed N] [--storage moto|local] [--max-life 2.0]

A child process plays a runner: it opens the state DB the way the jobs do
(shared/state/db.py, WAL), and loops: write one new row (a Thing whose number is
one more than the newest), push (shared/state/replica.py), then append the number and
the generation to an acknowledgement log: a line there means "the push
returned". The parent SIGKILLs the child at random moments (during the write,
the VACUUM INTO, the upload, the state update, the retention, Python's
start-up...) and starts a new one on the same DB, until ``--cycles`` pushes
have been acknowledged; then it stops the child gently.

After every kill the parent restores the newest snapshot into an empty
directory and checks: every acknowledged row is there, nothing beyond what
the child had committed is, and the restored generation is not older than
the last acknowledged one (it may be newer: a push cut off between its upload
and its acknowledgement). No push may ever be refused as stale: the only
runner must always recognise its own snapshots. At the end the restore must
equal the child's DB row for row and the last acknowledged state exactly,
and the stored history must be linear (every generation N+1 based on N).

The S3 side is moto's standalone server started in this process on 127.0.0.1
(``--storage local`` uses a directory instead). Prints one summary: cycles,
kills, pushes, bytes, time per push, result; exit 0 when every check held.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WORDS = ("the bot said that it would never post twice and the human asked why the model "
         "keeps talking about snapshots in the cloud while reddit is down again today").split()


# --------------------------------------------------------------------------- the child (a runner)

def child(config_path, ack_path):
    from shared.state import db, replica
    from shared.config import load_config

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    config = load_config(config_path)
    db.open(config.db)
    rng = random.Random()
    ack = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    while not stopping:
        newest = (db.Thing.select(db.Thing.fullname).where(db.Thing.fullname.startswith("t1_"))
                  .order_by(db.Thing.fullname.desc()).first())
        number = int(newest.fullname[3:]) + 1 if newest else 1
        with db.database.atomic():
            db.Thing.create(fullname=f"t1_{number:08d}", author=f"user{number % 17}", created_utc=time.time(),
                            body=" ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 600))))
        try:
            pushed = replica.push(config)
        except replica.StaleState as exc:
            print(f"STALE: {exc}", file=sys.stderr, flush=True)
            return 3
        # one write() of a short line: all of it or nothing, even under SIGKILL
        os.write(ack, f"{number} {pushed.generation} {pushed.base} {pushed.seconds:.4f} {pushed.stored} "
                      f"{pushed.size}\n".encode())
    db.close()
    return 0


# --------------------------------------------------------------------------- the parent

def read_acks(path):
    acks = []
    if os.path.exists(path):
        for line in Path(path).read_text().splitlines():
            number, generation, base, seconds, stored, size = line.split()
            acks.append((int(number), int(generation), int(base), float(seconds), int(stored), int(size)))
    return acks


def numbers_in(path):
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return sorted(int(f[3:]) for (f,) in conn.execute("SELECT fullname FROM thing WHERE fullname LIKE 't1_%'"))


def all_rows(path, skip):
    with contextlib.closing(sqlite3.connect(path)) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if n != skip]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


def seed_db(path, rng, things=1500):
    """A state DB with some history, so snapshots have a realistic size (a few MB)."""
    from shared.state import db
    db.open(str(path))
    with db.database.atomic():
        for i in range(things):
            db.Thing.create(fullname=f"t3_seed{i:05d}", author=f"user{i % 50}", title="seed post",
                            created_utc=time.time(),
                            body=" ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 400))))
    db.close()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jobs.bench.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cycles", type=int, default=200, help="acknowledged write->push cycles to reach")
    p.add_argument("--seed", type=int, default=None, help="seed the kill times (default: random)")
    p.add_argument("--storage", choices=("moto", "local"), default="moto")
    p.add_argument("--max-life", type=float, default=2.0, help="longest a child lives before its SIGKILL (s)")
    p.add_argument("--keep", type=int, default=1000, help="s3.keep (default: keep the whole history)")
    p.add_argument("--workdir", help="keep files here (default: a temporary directory)")
    p.add_argument("--child", nargs=2, metavar=("CONFIG", "ACKLOG"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(*args.child)

    import logging

    import yaml

    from shared.state import replica
    from shared.config import load_config

    logging.basicConfig(level=logging.WARNING)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="soak-sync-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="soak", AWS_SECRET_ACCESS_KEY="soak", AWS_DEFAULT_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    os.environ.update(env)
    server = None
    s3 = {"keep": args.keep, "prefix": "soak/"}
    if args.storage == "moto":
        from moto.server import ThreadedMotoServer
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        s3.update(bucket="soak", endpoint_url=f"http://{host}:{port}", region="us-east-1")
        import boto3
        boto3.session.Session().client("s3", endpoint_url=s3["endpoint_url"], region_name="us-east-1"
                                       ).create_bucket(Bucket="soak")
    else:
        s3["directory"] = str(work / "store")
    runner_dir = work / "runner"
    runner_dir.mkdir(exist_ok=True)
    config_path = runner_dir / "ssi-bot.yaml"
    config_path.write_text(yaml.safe_dump({"db": "state.db", "snapshots": s3}))
    config = load_config(config_path)
    storage = replica.storage_for(config)
    ack_path = work / "acks.log"
    child_log = work / "child.log"
    seed_db(config.db, rng)

    started = time.monotonic()
    kills = starts = checks = 0
    failures = []

    def verify(exact):
        """Restore into an empty directory and compare with what was acknowledged; return how
        many pushes the restore is ahead of the log (pushes killed between upload and ack)."""
        acks = read_acks(ack_path)
        if not replica.list_snapshots(storage):
            if acks:
                failures.append("acknowledged pushes but no snapshot in storage")
            return 0
        target = Path(tempfile.mkdtemp(dir=work, prefix="restore-")) / "state.db"
        restored = replica.restore_db(target, storage)
        rows = numbers_in(target)
        acked = {a[0] for a in acks}
        last_generation = max((a[1] for a in acks), default=0)
        if rows != list(range(1, len(rows) + 1)):
            failures.append(f"restored rows are not 1..n: {rows[-5:]}")
        if not acked <= set(rows):
            failures.append(f"acknowledged rows missing from the restore: {sorted(acked - set(rows))}")
        if not set(rows) <= set(numbers_in(config.db)):
            failures.append("the restore holds rows the runner never committed")
        ahead = restored.generation - last_generation
        if ahead < 0:
            failures.append(f"restored {restored.generation:012d}, older than the acknowledged {last_generation:012d}")
        if exact and (ahead != 0 or all_rows(target, replica.STATE_TABLE) != all_rows(config.db, replica.STATE_TABLE)):
            failures.append(f"final restore differs from the last acknowledged state (ahead by {ahead})")
        for leftover in target.parent.iterdir():
            leftover.unlink()
        target.parent.rmdir()
        return ahead

    ahead_counts = {}
    with open(child_log, "ab") as log:
        while len(read_acks(ack_path)) < args.cycles and not failures:
            proc = subprocess.Popen([sys.executable, "-m", "jobs.bench.soak", "--child", str(config_path),
                                     str(ack_path)], cwd=ROOT, stdout=log, stderr=log, env=env)
            starts += 1
            deadline = time.monotonic() + rng.uniform(0.0, args.max_life)
            while time.monotonic() < deadline and proc.poll() is None and len(read_acks(ack_path)) < args.cycles:
                time.sleep(0.01)
            if proc.poll() is not None:
                failures.append(f"the child exited by itself with {proc.returncode} (see {child_log})")
                break
            if len(read_acks(ack_path)) >= args.cycles:
                proc.send_signal(signal.SIGTERM)       # the last one stops gently, after its ack
                proc.wait(timeout=60)
                break
            proc.kill()
            proc.wait()
            kills += 1
            ahead = verify(exact=False)
            ahead_counts[ahead] = ahead_counts.get(ahead, 0) + 1
            checks += 1
    if not failures:
        verify(exact=True)
        checks += 1
    elapsed = time.monotonic() - started

    acks = read_acks(ack_path)
    history = replica.list_snapshots(storage)
    for snapshot in history[1:]:
        metadata = storage.get(snapshot.key).metadata
        if int(metadata["base"]) != snapshot.generation - 1 or metadata.get("forced") != "0":
            failures.append(f"history not linear at {snapshot.generation:012d}: base {metadata['base']}")
    adopted = Path(child_log).read_text(errors="replace").count("adopting it as the base")
    seconds = sorted(a[3] for a in acks)
    stored = [a[4] for a in acks]
    sizes = [a[5] for a in acks]
    print(f"soak: storage {args.storage}, seed {seed}, {elapsed:.0f}s, work dir {work}")
    print(f"  cycles acknowledged  {len(acks)} (write -> push -> ack)")
    print(f"  child processes      {starts} started, {kills} SIGKILLed at random moments")
    print(f"  snapshots stored     {history[-1].generation if history else 0} generations, "
          f"{len(history)} kept; {adopted} pushes cut off after their upload were adopted on restart")
    print(f"  bytes                DB {sizes[0] / 1e6:.2f} -> {sizes[-1] / 1e6:.2f} MB, stored "
          f"{sum(stored) / 1e6:.1f} MB in total (zstd {sum(sizes) / max(1, sum(stored)):.1f}x)")
    print(f"  time per push        median {statistics.median(seconds) * 1000:.0f} ms, "
          f"p95 {seconds[int(len(seconds) * 0.95) - 1] * 1000:.0f} ms, max {seconds[-1] * 1000:.0f} ms")
    behind = ", ".join(f"{n} x {k} push(es) ahead" for k, n in sorted(ahead_counts.items()) if k)
    print(f"  restores checked     {checks} into empty directories, each holding every acknowledged row: "
          f"{ahead_counts.get(0, 0) + (not failures)} at the last acknowledged push"
          f"{'; ' + behind + ' (killed between upload and ack)' if behind else ''}")
    if server:
        server.stop()
    if failures:
        print("  RESULT: FAILED")
        for failure in failures:
            print(f"    {failure}")
        return 1
    print("  RESULT: ok: the final restore equals the last acknowledged state row for row; the history is "
          "linear; no push was refused as stale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
