"""A full run's wall time beside its slowest probe and the sum of its probes, on the reference cluster.

    .venv/bin/python bench/full_run.py [--modes non-disruptive,certified] [--keep]

Starts the reference cluster (`kaic cluster up`, the real node included: run it as the tests run, where the
real node can start) in its own state dir and runs `kaic run --profile ai-v1.0 --mode MODE` as a user would,
with only the exports `kaic cluster up` prints. From each report it prints the wall time of the probes, the
sum of their durations (what running them one after another would take, as the upstream Go suite does), the
slowest probe, and wall / slowest (target ≤ 1.3). Then the lanes: probes consuming the same thing (devices, a
node pool) must never have overlapped, and the busiest moment shows how many probes ran at once.
The cluster stops afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from kaic.localcluster.launcher import LocalCluster
from kaic.results.run_dir import REPORT_FILE, RUN_SETTINGS_FILE

KAIC = [sys.executable, "-m", "kaic"]
PROFILE = "ai-v1.0"


def intervals(out: Path) -> dict[str, tuple[float, float, str]]:
    """Probe name -> (start, end, lane), in seconds since the epoch, from the run's report and settings."""
    report = json.loads((out / REPORT_FILE).read_text())
    lanes = {
        name: p["lane"] for name, p in json.loads((out / RUN_SETTINGS_FILE).read_text())["probes"].items()
    }
    spans = {}
    for requirement in report["requirements"]:
        for probe in requirement["probes"]:
            if not probe.get("startedAt"):
                continue  # never started (skipped before it ran)
            start = datetime.fromisoformat(probe["startedAt"]).timestamp()
            spans[probe["name"]] = (start, start + probe["durationSeconds"], lanes.get(probe["name"], ""))
    return spans


def lanes_held(spans: dict[str, tuple[float, float, str]]) -> list[str]:
    """Pairs of probes in one shared lane whose runs overlapped: there must be none."""
    shared: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for name, (start, end, lane) in spans.items():
        if lane.startswith("consumes-"):
            shared[lane].append((start, end, name))
    clashes = []
    for lane, runs in shared.items():
        runs.sort()
        for (_, end, first), (start, _, second) in itertools.pairwise(runs):
            if start < end - 0.001:
                clashes.append(f"{lane}: {first} and {second}")
    return clashes


def most_at_once(spans: dict[str, tuple[float, float, str]]) -> int:
    edges = sorted([(s, 1) for s, _, _ in spans.values()] + [(e, -1) for _, e, _ in spans.values()])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def summary(mode: str, out: Path, wall_s: float) -> None:
    spans = intervals(out)
    first = min(s for s, _, _ in spans.values())
    last = max(e for _, e, _ in spans.values())
    total = sum(e - s for s, e, _ in spans.values())
    slowest, (s, e, _) = max(spans.items(), key=lambda item: item[1][1] - item[1][0])
    probes_wall = last - first
    shared = defaultdict(list)
    for name, (_, _, lane) in spans.items():
        if lane.startswith("consumes-"):
            shared[lane].append(name)
    print(f"\n{mode}: {len(spans)} probes; `kaic run` took {wall_s:.0f}s end to end")
    print(f"  probes' wall time       {probes_wall:7.0f}s")
    print(f"  sum of probe durations  {total:7.0f}s  (one after another, as the upstream suite runs)")
    print(f"  slowest probe           {e - s:7.0f}s  {slowest}")
    print(f"  wall / slowest          {probes_wall / (e - s):7.2f}   (target ≤ 1.3)")
    print(f"  sum / wall              {total / probes_wall:7.2f}   (overlap achieved)")
    print(f"  most probes at once     {most_at_once(spans):7d}")
    for lane, names in sorted(shared.items()):
        print(f"  lane {lane}: {len(names)} probes, one at a time: {', '.join(sorted(names))}")
    clashes = lanes_held(spans)
    print(
        "  lanes held: "
        + ("yes, no two probes of a lane overlapped" if not clashes else "NO: " + "; ".join(clashes))
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="non-disruptive,certified")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="kaic-bench-")) / "cluster"
    env = {**os.environ, "KAIC_CLUSTER_DIR": str(state), "CI": "true"}
    subprocess.run([*KAIC, "cluster", "up"], env=env, check=True)
    try:
        local = LocalCluster(state)  # the exports `kaic cluster up` printed
        env["KUBECONFIG"], env["KAIC_CONFIG"] = str(local.kubeconfig), str(local.config)
        for mode in args.modes.split(","):
            out = state.parent / mode
            start = time.perf_counter()
            proc = subprocess.run(
                [*KAIC, "run", "--profile", PROFILE, "--mode", mode, "-d", str(out)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if not (out / REPORT_FILE).exists():
                sys.exit(f"{mode}: no report (exit {proc.returncode}): {proc.stderr[-2000:]}")
            summary(mode, out, time.perf_counter() - start)
    finally:
        if not args.keep:
            subprocess.run([*KAIC, "cluster", "down"], env=env, check=False)


if __name__ == "__main__":
    main()
