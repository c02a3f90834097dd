"""Benchmark: replaying every database's latest dump sequentially vs in parallel (Drill 2's replay).

Starts a sandbox of its own, takes the backups, pulls and checks every dump as Drill 2 does, then
replays the same dumps into scratch databases ``--rounds`` times each way and prints the wall times
and the speed-up. Run: ``python benchmarks/replay_parallel.py [--rounds 3] [--workers N]``.
"""

from __future__ import annotations

import argparse
import statistics

from akko_dr.drills.full_rebuild import replay, replay_workers
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.policy import load_policy
from akko_dr.sandbox import start_sandbox
from akko_dr.targets import new_run_id
from akko_dr.wiring import sandbox_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=replay_workers())
    args = parser.parse_args()
    policy = load_policy()
    with start_sandbox(policy, consumers=()) as sandbox:
        target, run_id = sandbox_target(sandbox, sandbox.root), new_run_id()
        dumps = {}
        for name in policy.databases:
            drill = RestoreDatabaseDrill(target, name, run_id)
            drill.pull_latest_backup()
            dumps[name] = drill.sql_file
        times: dict[str, list[float]] = {"sequential": [], "parallel": []}
        for i in range(args.rounds):
            times["sequential"].append(replay(target.db, dumps, 1, f"seq{i}_{run_id}"))
            times["parallel"].append(replay(target.db, dumps, args.workers, f"par{i}_{run_id}"))
    seq, par = statistics.median(times["sequential"]), statistics.median(times["parallel"])
    print(f"{len(dumps)} dumps, {args.rounds} rounds, {args.workers} workers (cores: {replay_workers()})")
    print(f"sequential median {seq:.3f}s  parallel median {par:.3f}s  speed-up {seq / par:.2f}x")


if __name__ == "__main__":
    main()
