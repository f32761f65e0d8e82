"""`up` and `down` through the CLI, as a user runs them: nothing may survive `down`."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client

from kaic.localcluster import routes
from kaic.localcluster.launcher import SERVICE_IP, Binaries, LocalCluster, components
from kaic.localcluster.processes import port_in_use
from kaic.localcluster.scenarios import SCENARIOS

pytestmark = pytest.mark.cluster


def run_cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaic.cli.cluster", *args, "--state-dir", str(state_dir)],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ,
    )


def running(pid: int) -> bool:
    """Whether `pid` still runs; an exited child that its (re)parent has not reaped yet does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_down_leaves_no_process_port_or_file(cluster_binaries: Binaries, tmp_path: Path) -> None:
    state_dir = tmp_path / "cluster"
    started = run_cli("up", "--scenario", "no-gpu-nodes", state_dir=state_dir)
    assert started.returncode == 0, started.stderr
    assert f"export KUBECONFIG={state_dir / 'kubeconfig'}" in started.stdout
    config = state_dir / "kaic.yaml"
    assert f"export KAIC_CONFIG={config}" in started.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "kaic", "images", "list", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "KAIC_CONFIG": str(config)},
    )
    used = {row["key"]: row["image"] for row in json.loads(listed.stdout)}
    assert used["busybox"] == "kaic.local/busybox:1" and used["pause"] == "kaic.local/pause:1", used

    again = run_cli("up", state_dir=state_dir)
    assert again.returncode != 0 and "already up" in again.stderr

    state = json.loads((state_dir / "state.json").read_text())
    pids = [
        int((state_dir / "run" / f"{name}.pid").read_text().split()[0])
        for name in components(SCENARIOS["no-gpu-nodes"])
    ]
    status = run_cli("status", state_dir=state_dir)
    assert status.returncode == 0, status.stdout + status.stderr

    stopped = run_cli("down", state_dir=state_dir)
    assert stopped.returncode == 0, stopped.stderr
    assert not state_dir.exists()
    assert [pid for pid in pids if running(pid)] == []
    assert [port for port in state["ports"].values() if port_in_use(port)] == []
    if isinstance(guard := state["route_guard"], dict):
        assert not routes.installed(guard["metric"]), "down left the cluster's route guard behind"


def test_simulated_addresses_are_refused_on_this_host(
    local_cluster: LocalCluster, api: client.ApiClient
) -> None:
    """While the cluster is up, a connect to a kwok pod address (or a service address) fails at once with "No
    route to host" instead of leaving the host by the default route. The kernel is asked first, and the
    connect is tried only once it says so, so no packet can leave even if the guard were missing."""
    if why := routes.unavailable():
        pytest.skip(f"no route guard on this host: {why}")
    state = local_cluster.state()
    assert state["route_guard"] == {
        "unreachable": "100.64.0.0/10",
        "metric": state["ports"]["kube-apiserver"],
    }
    cidr = next(
        n.spec.pod_cidr
        for n in client.CoreV1Api(api).list_node().items
        if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake" and n.spec.pod_cidr
    )
    pod_address = str(ipaddress.ip_network(cidr)[7])
    for address in (pod_address, SERVICE_IP):
        assert routes.refuses(address), f"the kernel would route {address} somewhere"
    started = time.monotonic()
    with pytest.raises(OSError) as refused, socket.socket() as sock:
        sock.settimeout(5)
        sock.connect((pod_address, 80))
    assert refused.value.errno == errno.EHOSTUNREACH
    assert time.monotonic() - started < 1
