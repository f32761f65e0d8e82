"""`up` and `down` through the CLI, as a user runs them: nothing may survive `down`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kaic.localcluster.launcher import Binaries, components
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
