"""The installed `kaic` command in a subprocess, as a user or a pipeline runs it, and what end-to-end tests
ask of the cluster after it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def kaic(*args: str | Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`kaic ARGS` with `env` over this process's environment and CI set (plain progress lines)."""
    return subprocess.run(
        [sys.executable, "-m", "kaic", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CI": "true", **env},
        check=False,
    )


def left_behind(kubeconfig: Path, run_id: str) -> list[str]:
    """Every namespace, ClusterRole and binding that kaic labelled for this run, by either label (the probes'
    run-id label or an in-cluster runner's)."""
    from kaic.kube import client as kube
    from kaic.kube.labels import MANAGED_BY, RUN_ID_LABEL, RUNNER_LABEL

    admin = kube.connect(str(kubeconfig))
    managed = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    left = []
    for path in (
        "/api/v1/namespaces",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    ):
        for item in admin.list(path, labelSelector=managed):
            labels = item["metadata"].get("labels") or {}
            if run_id in (labels.get(RUN_ID_LABEL), labels.get(RUNNER_LABEL)):
                left.append(f"{path.rsplit('/', 1)[1]}/{item['metadata']['name']}")
    return left


def wait_finished(
    kaic: Callable[..., subprocess.CompletedProcess[str]], run_id: str, timeout_s: float = 480
) -> dict:
    """`kaic status RUN_ID -o json` once the in-cluster run is no longer pending or running."""
    deadline = time.monotonic() + timeout_s
    while True:
        proc = kaic("status", run_id, "-o", "json")
        assert proc.returncode == 0, proc.stderr
        (current,) = json.loads(proc.stdout)
        if current["phase"] not in ("pending", "running"):
            return dict(current)
        assert time.monotonic() < deadline, current
        time.sleep(2)
