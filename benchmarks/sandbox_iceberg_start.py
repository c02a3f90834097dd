"""Benchmark: what the Iceberg warehouse adds to the sandbox start (issue 15: keep the start fast).

Starts the sandbox ``--rounds`` times without and with the Iceberg tables (alternating, same run) and
prints the median start times and their ratio. Run: ``python benchmarks/sandbox_iceberg_start.py``.
"""

from __future__ import annotations

import argparse
import statistics

from akko_dr.policy import load_policy
from akko_dr.sandbox import start_sandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    policy = load_policy()
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for iceberg in (False, True):
            with start_sandbox(policy, iceberg=iceberg) as sandbox:
                times[iceberg].append(sandbox.started_in)
    plain, ice = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.rounds} rounds: without Iceberg median {plain:.2f}s, with Iceberg median {ice:.2f}s, "
          f"ratio {ice / plain:.2f}x (+{ice - plain:.2f}s)")


if __name__ == "__main__":
    main()
