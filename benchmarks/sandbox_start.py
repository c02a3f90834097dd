"""Benchmark: the sandbox's start time on real servers (two MinIO, VictoriaLogs) vs the S3 emulator.

Starts the default sandbox (what the suite's session starts) ``--rounds`` times each way, alternating, and
prints the median wall times and their ratio, measured in one run, and which server served each component.
Run after scripts/real-services.sh: ``python benchmarks/sandbox_start.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from akko_dr.policy import load_policy
from akko_dr.sandbox.platform import RealServers
from akko_dr.wiring import open_sandbox, real_servers


def start_once(servers: RealServers) -> tuple[float, dict[str, str]]:
    began = time.monotonic()
    with open_sandbox(load_policy(), servers=servers) as (sandbox, target):
        return time.monotonic() - began, dict(target.components, started_in=f"{sandbox.started_in:.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    real = real_servers()
    if real.minio is None:
        raise SystemExit("MinIO not provisioned: run scripts/real-services.sh first")
    times: dict[str, list[float]] = {"real servers": [], "emulator": []}
    for _ in range(args.rounds):
        took, components = start_once(real)
        times["real servers"].append(took)
        times["emulator"].append(start_once(RealServers())[0])
    for name, value in components.items():
        print(f"{name}: {value}")
    real_s, emu_s = statistics.median(times["real servers"]), statistics.median(times["emulator"])
    print(f"{args.rounds} rounds: real servers median {real_s:.2f}s, emulator median {emu_s:.2f}s, "
          f"ratio {real_s / emu_s:.2f}")


if __name__ == "__main__":
    main()
