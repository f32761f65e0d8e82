"""Quick mode on a big cluster, side by side with `kubectl get nodes -o json` (target: kaic ≤ 3×).

    .venv/bin/python bench/quick_mode.py [--nodes 2000] [--runs 5] [--keep]

Starts the local reference cluster in its own state dir, adds NODES GPU-sized nodes (without kwok's
annotation, so no controller heartbeats them and the machine stays quiet), then times both commands
alternately and prints medians and the ratio. The cluster is stopped afterwards unless --keep.
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
            "capacity": {"cpu": "96", "memory": "1Ti", "pods": "110", "example.com/gpu": "8"},
            "allocatable": {"cpu": "96", "memory": "1Ti", "pods": "110", "example.com/gpu": "8"},
        },
    }


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="kaic-bench-")) / "cluster"
    env = {**os.environ, "KAIC_CLUSTER_DIR": str(state), "CI": "true"}
    subprocess.run([*KAIC, "cluster", "up"], env=env, check=True)
    try:
        kubeconfig = state / "kubeconfig"
        env["KUBECONFIG"] = str(kubeconfig)
        cluster = kube.connect(str(kubeconfig))
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: cluster.create("/api/v1/nodes", node(i)), range(args.nodes)))
        total = sum(1 for _ in cluster.list("/api/v1/nodes"))
        print(f"created {args.nodes} nodes in {time.perf_counter() - start:.1f}s; cluster has {total}")
        kubectl = ["kubectl", "get", "nodes", "-o", "json"]
        samples: dict[str, list[float]] = {"kubectl get nodes -o json": [], "kaic run --mode quick": []}
        for run in range(args.runs):
            samples["kubectl get nodes -o json"].append(timed(kubectl, env))
            out = state.parent / f"quick-{run}"
            samples["kaic run --mode quick"].append(
                timed([*KAIC, "run", "--mode", "quick", "-d", str(out)], env)
            )
        base = statistics.median(samples["kubectl get nodes -o json"])
        for name, values in samples.items():
            median = statistics.median(values)
            print(f"{name:<28} {median:>7.2f}s {median / base:>6.2f}x")
    finally:
        if not args.keep:
            subprocess.run([*KAIC, "cluster", "down"], env=env, check=False)


if __name__ == "__main__":
    main()
