"""Restore speed (issue 13): the harness's Drill 1, its backup job and Drill 2's replay against the
paper procedure and the tools' own floor, in one run on the same data and server.

Starts a sandbox of its own (real PostgreSQL; real MinIO where scripts/real-services.sh provisioned it,
else the S3 emulator in a process of its own: either way the peak RSS is the harness's alone), fills
superset_metadata to ``--size`` MB with benchmarks/generate.py, then times, in this order:

1. backups: ``pg_dump | gzip -1`` (the reference), the harness's backup job (plain ``.sql.gz``), the
   harness's job writing the custom format, and ``pg_dump -Fc`` (the floor's archive);
2. the playbook's literal Drill 1 pipeline: download, ``DROP DATABASE``/``CREATE DATABASE``,
   ``zcat | psql``;
3. the floor: ``pg_restore -j<cores>`` of the custom-format archive into an empty database;
4. the harness's Drill 1 end to end (RTO) with its phases, from the plain dump and from the custom one;
5. Drill 2's replay of five databases of mixed size, sequential and in parallel (biggest first).

Prints a table and one JSON line. Run: ``python benchmarks/restore_speed.py [--size 1000] [--seed 13]``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate

from akko_dr.adapters import postgres
from akko_dr.backup import backup_database, dump_key, latest_backup, run_job
from akko_dr.drills.full_rebuild import replay
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.dumpstream import cores
from akko_dr.policy import load_policy
from akko_dr.ports import BackupObject, DatabaseFingerprint
from akko_dr.sandbox import start_sandbox
from akko_dr.sandbox.emulator import _ProcessServer
from akko_dr.sandbox.platform import RealServers
from akko_dr.sandbox.seed import schema_sql
from akko_dr.targets import new_run_id
from akko_dr.wiring import real_servers, sandbox_target

DB = "superset_metadata"
# Drill 2's databases, as shares of half the main database's size: mixed, one as big as a third of all
MIX = (0.35, 0.25, 0.20, 0.15, 0.05)
TARGETS = {"drill_1_vs_playbook": 0.85, "restore_vs_floor": 1.0, "overhead_of_restore": 0.10,
           "peak_rss_mb": 200, "backup_vs_gzip1": 1.3, "drill_2_speed_up": 1.5}



def _no_fingerprint(*_args: object, **_kwargs: object) -> Future:
    """A fingerprint that costs nothing: the backup job timed without it."""
    done: Future = Future()
    done.set_result(DatabaseFingerprint({}, {}))
    return done


def timed(fn: Callable[[], object]) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


class PeakRss:
    """The peak resident set size of this process while the block runs, sampled every 10 ms."""

    def __init__(self) -> None:
        self.peak, self._done = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._done.wait(0.01):
            self.peak = max(self.peak, me.memory_info().rss)

    def __enter__(self) -> PeakRss:
        _release_freed_memory()
        self.peak = self.start = psutil.Process().memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


def _release_freed_memory() -> None:
    """Hand memory freed by earlier phases back to the OS (glibc keeps it), so that the RSS measured
    during a drill is the drill's own."""
    with suppress(OSError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def pipe(first: list[str], second: list[str], stdout: Path = Path(os.devnull)) -> None:
    """``first | second > stdout``, failing loudly when either fails."""
    with open(stdout, "wb") as out:
        a = subprocess.Popen(first, stdout=subprocess.PIPE)
        b = subprocess.Popen(second, stdin=a.stdout, stdout=out)
        a.stdout.close()
        if b.wait() != 0 or a.wait() != 0:
            raise RuntimeError(f"{first[0]} | {second[0]} failed")


class Bench:
    """One benchmark run on one sandbox."""

    def __init__(self, sandbox, work: Path) -> None:
        self.sandbox, self.work, self.policy = sandbox, work, sandbox.policy
        self.target = sandbox_target(sandbox, work)
        self.dumps: dict[str, BackupObject] = {}
        self.stamp = datetime.now(UTC) + timedelta(hours=1)
        self.tool = lambda name: self.sandbox.db._tool(name)
        self.rows: list[tuple[str, float, float | None]] = []
        self.figures: dict[str, object] = {"cores": cores()}

    def psql(self, *sql: str) -> None:
        cmd = [self.tool("psql"), "-X", "-q", "-d", self.sandbox.db.dsn("postgres")]
        for statement in sql:
            cmd += ["-c", statement]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    # -- backups ---------------------------------------------------------------------------
    def backups(self) -> None:
        dsn, job = self.sandbox.db.dsn(DB), self.policy.database(DB).job.name
        ref = timed(lambda: pipe([self.tool("pg_dump"), "-d", dsn], ["gzip", "-1"], self.work / "ref.sql.gz"))
        plain = timed(lambda: self._job(job, "plain"))
        custom = timed(lambda: self._job(job, "custom"))
        self.figures["fingerprint_s"] = timed(lambda: self.sandbox.db.fingerprint(DB))
        with mock.patch.object(postgres.PgFingerprinter, "begin", _no_fingerprint):  # the dump's own cost
            alone = timed(lambda: backup_database(self.policy, self.sandbox.db, self.sandbox.store, DB,
                                                  self.work))
        self.archive = self.work / "floor.dump"
        floor = timed(lambda: subprocess.run([self.tool("pg_dump"), "-Fc", "--compress=gzip:1", "-d", dsn,
                                              "-f", str(self.archive)], check=True))
        n = sum(1 for d in self.policy.databases.values() if d.job.name == job)
        self.rows += [("`pg_dump \\| gzip -1` (reference)", ref, 1.0),
                      (f"harness backup job, plain .sql.gz ({n} databases)", plain, plain / ref),
                      (f"harness backup job, custom format ({n} databases)", custom, custom / ref),
                      (f"— {DB} alone, fingerprint left out (pg_dump → ISA-L → S3)", alone, alone / ref),
                      ("`pg_dump -Fc --compress=gzip:1`", floor, floor / ref)]
        self.figures |= {"backup_ref_s": ref, "backup_job_s": plain, "backup_job_custom_s": custom,
                         "backup_vs_gzip1": plain / ref, "backup_dump_alone_vs_gzip1": alone / ref,
                         "job_gz_bytes": self.dumps["plain"].size,
                         "ref_gz_bytes": (self.work / "ref.sql.gz").stat().st_size,
                         "archive_bytes": self.archive.stat().st_size}

    def _job(self, job: str, fmt: str) -> None:
        policy = replace(self.policy, storage=replace(self.policy.storage, dump_format=fmt))
        run = run_job(policy, job, self.sandbox.db, self.sandbox.store, self.work)
        if not run.succeeded:
            raise RuntimeError(run.error)
        self.dumps[fmt] = next(o for o in run.objects if o.database == DB)

    # -- restores --------------------------------------------------------------------------
    def playbook(self) -> float:
        """The paper procedure, literally (into a database of its own, not over the source)."""
        gz, name = self.work / "restore.sql.gz", "bench_playbook"
        t0 = time.monotonic()
        dump = self.dumps["plain"]
        self.sandbox.store.download(dump.bucket, dump.key, gz)
        self.psql(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
        pipe(["zcat", str(gz)], [self.tool("psql"), "-X", "-q", "-d", self.sandbox.db.dsn(name)])
        elapsed = time.monotonic() - t0
        self.psql(f"DROP DATABASE {name}")
        gz.unlink()
        return elapsed

    def floor(self) -> float:
        name = "bench_floor"
        self.psql(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
        elapsed = timed(lambda: subprocess.run(
            [self.tool("pg_restore"), f"-j{cores()}", "-d", self.sandbox.db.dsn(name), str(self.archive)],
            check=True))
        self.psql(f"DROP DATABASE {name}")
        return elapsed

    def drill_1(self, fmt: str) -> dict[str, float]:
        """The harness's Drill 1, step by step as recover() runs them, each step timed, the process's
        RSS sampled throughout."""
        self._newest(fmt)
        drill = RestoreDatabaseDrill(self.target, DB, new_run_id())
        drill.drop_table("slices")
        with PeakRss() as rss:
            drill.declare_incident()
            phases = {"stop": timed(drill.stop_consumer), "pull": timed(drill.pull_latest_backup),
                      "restore": timed(drill.restore_to_scratch), "verify": timed(drill.verify_scratch),
                      "swap, restart, validate": timed(lambda: (drill.swap_in(), drill.restart_consumer(),
                                                                drill.validate_service()))}
        phases["rto"] = drill.rto().measured.total_seconds()
        phases["peak_rss_mb"], phases["rss_at_start_mb"] = rss.peak / 2**20, rss.start / 2**20
        self.sandbox.db.drop(drill.kept)
        return phases

    def _newest(self, fmt: str) -> None:
        """Make a copy of the ``fmt`` dump (and its manifest) the newest of the database: a drill
        restores the newest one. Copies a second apart, later than any job's (streamed through this
        process: moto's server-side copy gives the copy a checksum its bytes do not match)."""
        src, bucket, store = self.dumps[fmt], self.dumps[fmt].bucket, self.sandbox.store
        self.stamp += timedelta(seconds=1)
        copy = replace(src, key=dump_key(self.policy, DB, self.stamp, fmt), taken_at=self.stamp)
        body = store.stream(bucket, src.key)
        try:
            store.put_stream(bucket, copy.key, body)
        finally:
            body.close()
        store.put_bytes(bucket, copy.manifest_key, copy.manifest())
        if latest_backup(self.policy, self.sandbox.store, DB).key != copy.key:
            raise RuntimeError(f"{copy.key} is not the newest dump of {DB}")

    # -- Drill 2 ---------------------------------------------------------------------------
    def drill_2(self, size_mb: int, seed: int) -> None:
        db, backups = self.sandbox.db, {}
        for i, share in enumerate(MIX):
            name = f"bench_mix_{i}"
            db.drop(name)
            db.create(name)
            db.execute(name, schema_sql(DB))
            generate(db.dsn(name), max(int(size_mb / 2 * share), 5), seed + i)
            policy = replace(self.policy, databases={name: self.policy.database(DB)} | self.policy.databases)
            backups[name] = backup_database(policy, db, self.sandbox.store, name, self.work)
        seq = replay(db, self.sandbox.store, backups, 1, "seq", self.work)
        one_core = replay(db, self.sandbox.store, backups, 1, "seq1", self.work, jobs=1)
        par = replay(db, self.sandbox.store, backups, cores(), "par", self.work)
        for name in backups:
            db.drop(name)
        self.rows += [(f"Drill 2 replay, {len(MIX)} databases of mixed size, sequential", seq, 1.0),
                      ("— sequential, one core per database (a lone psql each, as before the sectioned "
                       "restore)", one_core, one_core / seq),
                      (f"Drill 2 replay, parallel ({cores()} workers, biggest first)", par, par / seq)]
        self.figures |= {"drill_2_sequential_s": seq, "drill_2_sequential_one_core_s": one_core,
                         "drill_2_parallel_s": par, "drill_2_speed_up": seq / par,
                         "drill_2_speed_up_over_one_core": one_core / par}


def run(size_mb: int, seed: int, rounds: int) -> dict[str, object]:
    policy = load_policy()
    minio = real_servers().minio  # real MinIO where provisioned, else the emulator in a process of its own
    emulator = None if minio else _ProcessServer()
    work = Path(tempfile.mkdtemp(prefix="akko-bench-"))
    work.chmod(0o755)
    try:
        with start_sandbox(policy, root=work / "sandbox", s3_endpoint=emulator.endpoint if emulator else None,
                           servers=RealServers(minio=minio), consumers=(DB,),
                           initial_backups=False) as sandbox:
            bench = Bench(sandbox, work)
            bench.figures["object_store"] = sandbox.components["object-store"]
            t0 = time.monotonic()
            bench.figures["generated"] = generate(sandbox.db.dsn(DB), size_mb, seed)
            bench.figures["generate_s"] = time.monotonic() - t0
            return report(bench, size_mb, seed, rounds)
    finally:
        if emulator:
            emulator.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


def report(bench: Bench, size_mb: int, seed: int, rounds: int) -> dict[str, object]:
    bench.backups()
    runs: dict[str, list] = {"playbook": [], "floor": [], "plain": [], "custom": []}
    for _ in range(rounds):  # interleaved; the best of each is kept (the machine is shared and noisy)
        runs["playbook"].append(bench.playbook())
        runs["floor"].append(bench.floor())
        for fmt in ("plain", "custom"):
            runs[fmt].append(bench.drill_1(fmt))
    playbook, floor = min(runs["playbook"]), min(runs["floor"])
    drills = {fmt: min(runs[fmt], key=lambda phases: phases["rto"]) for fmt in ("plain", "custom")}
    bench.rows += [("playbook Drill 1 (download, DROP/CREATE, `zcat \\| psql`)", playbook, 1.0),
                   (f"floor: `pg_restore -j{cores()}` of a custom-format dump", floor, floor / playbook)]
    figures = bench.figures | {"size_mb": size_mb, "seed": seed, "playbook_s": playbook, "floor_s": floor}
    for fmt, phases in drills.items():
        rto, restore = phases["rto"], phases["pull"] + phases["restore"]  # plain: the download overlaps
        bench.rows.append((f"harness Drill 1 end to end (RTO), {fmt} dump", rto, rto / playbook))
        bench.rows += [(f"— {phase}", seconds, None) for phase, seconds in phases.items()
                       if phase not in ("rto", "peak_rss_mb", "rss_at_start_mb")]
        figures |= {f"drill_1_{fmt}": phases, f"drill_1_vs_playbook ({fmt})": rto / playbook,
                    f"restore_vs_floor ({fmt})": restore / floor,
                    f"overhead_of_restore ({fmt})": (rto - restore) / restore}
    bench.drill_2(size_mb, seed)
    figures |= bench.figures | {
        "peak_rss_mb": max(phases["peak_rss_mb"] for fmt in ("plain", "custom") for phases in runs[fmt]),
        "peak_rss_whole_run_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rounds": rounds,
        "all_s": {"playbook": runs["playbook"], "floor": runs["floor"],
                  **{fmt: [p["rto"] for p in runs[fmt]] for fmt in ("plain", "custom")}}}
    figures["targets"] = {name: _met(name, value, limit) for target, limit in TARGETS.items()
                          for name, value in figures.items() if name.split(" (")[0] == target}
    print_table(bench.rows, figures)
    return figures


def _met(name: str, value: float, limit: float) -> str:
    at_least = name == "drill_2_speed_up"
    ok = value >= limit if at_least else value <= limit
    return f"{'met' if ok else 'NOT met'}: {value:.2f} ({'≥' if at_least else '≤'} {limit})"


def print_table(rows: list[tuple[str, float, float | None]], figures: dict[str, object]) -> None:
    print(f"\n{figures['size_mb']} MB superset_metadata (seed {figures['seed']}, "
          f"{figures['generated']['bytes'] / 1e6:.0f} MB on disk), {figures['cores']} cores, "
          f"restores: best of {figures['rounds']} interleaved rounds\n")
    print("| path | seconds | ratio |\n| --- | ---: | ---: |")
    for label, seconds, ratio in rows:
        print(f"| {label} | {seconds:.2f} | {'' if ratio is None else f'{ratio:.2f}'} |")
    rss, whole = f"{figures['peak_rss_mb']:.0f} MB", f"{figures['peak_rss_whole_run_mb']:.0f} MB"
    print(f"| harness peak RSS during Drill 1 (its own process; S3 emulator out of process) | {rss} | |")
    print(f"| peak RSS of the whole benchmark process (generator and backups included) | {whole} | |")
    print(f"\nobject store: {figures['object_store']}")
    print(f"sizes: `pg_dump | gzip -1` {figures['ref_gz_bytes'] / 1e6:.1f} MB, harness .sql.gz "
          f"{figures['job_gz_bytes'] / 1e6:.1f} MB, custom archive {figures['archive_bytes'] / 1e6:.1f} MB; "
          f"fingerprint of {DB} alone {figures['fingerprint_s']:.2f}s")
    print("\n| target | result |\n| --- | --- |")
    for name, verdict in figures["targets"].items():
        print(f"| {name} | {verdict} |")
    print()
    print(json.dumps(figures, default=str, sort_keys=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1000, help="superset_metadata size in MB (default 1000)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds of the restores, the best kept (default 2)")
    args = parser.parse_args()
    run(args.size, args.seed, args.rounds)


if __name__ == "__main__":
    main()
