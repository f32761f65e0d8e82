"""A full run's wall time beside its slowest probe and the sum of its probes, on the reference cluster.

    .venv/bin/python bench/full_run.py [--modes non-disruptive,certified] [--in-cluster] [--keep]

Starts the reference cluster (`kaic cluster up`, the real node included: run it as the tests run, where the
real node can start) in its own state dir and runs `kaic run --profile ai-v1.0 --mode MODE` as a user would,
with only the exports `kaic cluster up` prints. From each report it prints the wall time of the probes, the
sum of their durations (what running them one after another would take, as the upstream Go suite does), the
slowest probe, and wall / slowest (target ≤ 1.3). Then the lanes: probes consuming the same thing (devices, a
node pool) must never have overlapped, and the busiest moment shows how many probes ran at once.
With --in-cluster each mode also runs as `kaic run --in-cluster` (the runner image `make image` left in
dist/, imported with `kaic cluster load-image`), right after the local run, and the in-cluster / local
ratio of end-to-end times is printed. The cluster stops afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kaic.localcluster.launcher import LocalCluster
from kaic.results import timeline
from kaic.results.run_dir import REPORT_FILE

KAIC = [sys.executable, "-m", "kaic"]
PROFILE = "ai-v1.0"
RUNNER_IMAGE = Path(__file__).resolve().parents[1] / "dist" / "kaic-runner.tar"


def summary(mode: str, out: Path, wall_s: float) -> None:
    found = timeline.spans(out)
    probes_wall = max(s.end for s in found) - min(s.start for s in found)
    total = sum(s.end - s.start for s in found)
    slowest = max(found, key=lambda s: s.end - s.start)
    print(f"\n{mode}: {len(found)} probes; `kaic run` took {wall_s:.0f}s end to end")
    print(f"  probes' wall time       {probes_wall:7.0f}s")
    print(f"  sum of probe durations  {total:7.0f}s  (one after another, as the upstream suite runs)")
    print(f"  slowest probe           {slowest.end - slowest.start:7.0f}s  {slowest.probe}")
    print(f"  wall / slowest          {probes_wall / (slowest.end - slowest.start):7.2f}   (target ≤ 1.3)")
    print(f"  sum / wall              {total / probes_wall:7.2f}   (overlap achieved)")
    print(f"  most probes at once     {timeline.most_at_once(found):7d}")
    for lane, names in sorted(timeline.shared_lanes(found).items()):
        spent = sum(s.end - s.start for s in found if s.lane == lane)
        print(
            f"  lane {lane}: {len(names)} probes one after another, {spent:.0f}s: {', '.join(sorted(names))}"
        )
    clashes = timeline.clashes(found)
    held = (
        "yes, no two probes of a lane overlapped"
        if not clashes
        else f"NO, {len(clashes)} pairs: {clashes[:3]}"
    )
    print(f"  lanes held: {held}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="non-disruptive,certified")
    parser.add_argument("--in-cluster", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="kaic-bench-")) / "cluster"
    env = {**os.environ, "KAIC_CLUSTER_DIR": str(state), "CI": "true"}
    subprocess.run([*KAIC, "cluster", "up"], env=env, check=True)
    try:
        local = LocalCluster(state)  # the exports `kaic cluster up` printed
        env["KUBECONFIG"], env["KAIC_CONFIG"] = str(local.kubeconfig), str(local.config)
        if args.in_cluster:
            subprocess.run([*KAIC, "cluster", "load-image", str(RUNNER_IMAGE)], env=env, check=True)
        for mode in args.modes.split(","):
            wall = {}
            for how in ("local", "in-cluster") if args.in_cluster else ("local",):
                out = state.parent / f"{mode}-{how}"
                start = time.perf_counter()
                extra = ["--in-cluster"] if how == "in-cluster" else []
                proc = subprocess.run(
                    [*KAIC, "run", "--profile", PROFILE, "--mode", mode, "-d", str(out), *extra],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if not (out / REPORT_FILE).exists():
                    sys.exit(f"{mode} {how}: no report (exit {proc.returncode}): {proc.stderr[-2000:]}")
                wall[how] = time.perf_counter() - start
                summary(f"{mode} ({how})", out, wall[how])
            if args.in_cluster:
                print(f"\n{mode}: in-cluster / local end to end {wall['in-cluster'] / wall['local']:.2f}")
    finally:
        if not args.keep:
            subprocess.run([*KAIC, "cluster", "down"], env=env, check=False)


if __name__ == "__main__":
    main()
