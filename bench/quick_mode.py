"""Quick mode on a big cluster, side by side with `kubectl get nodes -o json`.

    .venv/bin/python bench/quick_mode.py [--nodes 5000] [--devices 8] [--runs 5] [--keep]

Starts the local cluster (scenario conformant) in its own state dir and adds NODES GPU nodes, each with a
ResourceSlice of DEVICES DRA devices (a DRA-only node: no extended resource, as a DRA driver leaves it). The
nodes lack kwok's annotation, so no controller heartbeats them and the machine stays quiet. Then both commands
run alternately; it prints medians, the ratio and kaic's peak resident memory (the whole process tree).
Targets: quick mode under 3 s, at most 2x kubectl, under 200 MB. The cluster stops afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kaic.kube import client as kube

KAIC = [sys.executable, "-m", "kaic"]
DRIVER = "bench.gpu.example.com"
SLICES = "/apis/resource.k8s.io/v1/resourceslices"


def node(i: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": f"bench-gpu-{i:05d}",
            "labels": {"kaic.dev/bench": "true", "node.kubernetes.io/instance-type": "gpu-8x"},
        },
        "spec": {"taints": [{"key": "example.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "96", "memory": "1Ti", "pods": "110"},
            "allocatable": {"cpu": "96", "memory": "1Ti", "pods": "110"},
        },
    }


def resource_slice(i: int, devices: int) -> dict:
    name = f"bench-gpu-{i:05d}"
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{name}-{DRIVER}", "labels": {"kaic.dev/bench": "true"}},
        "spec": {
            "driver": DRIVER,
            "nodeName": name,
            "pool": {"name": name, "generation": 1, "resourceSliceCount": 1},
            "devices": [
                {
                    "name": f"gpu-{d}",
                    "attributes": {"model": {"string": "bench-80g"}, "index": {"int": d}},
                    "capacity": {"memory": {"value": "80Gi"}},
                }
                for d in range(devices)
            ],
        },
    }


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds, and the peak resident bytes of the command's process tree (wait4's rusage)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}: its time would not count")
    return time.perf_counter() - start, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="kaic-bench-")) / "cluster"
    env = {**os.environ, "KAIC_CLUSTER_DIR": str(state), "CI": "true"}
    subprocess.run([*KAIC, "cluster", "up", "--scenario", "conformant"], env=env, check=True)
    try:
        kubeconfig = state / "kubeconfig"
        env["KUBECONFIG"] = str(kubeconfig)
        cluster = kube.connect(str(kubeconfig))
        start = time.perf_counter()

        def add(i: int) -> None:
            cluster.create("/api/v1/nodes", node(i))
            cluster.create(SLICES, resource_slice(i, args.devices))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(add, range(args.nodes)))
        total = sum(1 for _ in cluster.list("/api/v1/nodes"))
        devices = sum(len(s["spec"].get("devices") or []) for s in cluster.list(SLICES))
        print(
            f"created {args.nodes} nodes and their slices in {time.perf_counter() - start:.1f}s; "
            f"the cluster has {total} nodes and {devices} DRA devices"
        )
        commands = {
            "kubectl get nodes -o json": lambda run: ["kubectl", "get", "nodes", "-o", "json"],
            "kaic run --mode quick": lambda run: [
                *KAIC,
                "run",
                "--mode",
                "quick",
                "-d",
                str(state.parent / f"q{run}"),
            ],
        }
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
        for run in range(args.runs):
            for name, command in commands.items():
                samples[name].append(timed(command(run), env))
        base = statistics.median(t for t, _ in samples["kubectl get nodes -o json"])
        print(f"{'command':<28} {'median':>8} {'ratio':>7} {'peak RSS':>10}")
        for name, values in samples.items():
            median = statistics.median(t for t, _ in values)
            rss = max(r for _, r in values) / 2**20
            print(f"{name:<28} {median:>7.2f}s {median / base:>6.2f}x {rss:>7.0f} MiB")
    finally:
        if not args.keep:
            subprocess.run([*KAIC, "cluster", "down"], env=env, check=False)


if __name__ == "__main__":
    main()
