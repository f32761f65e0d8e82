"""Process bookkeeping: a pidfile names exactly the process started, and stop leaves nothing running."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from kaic.localcluster.processes import Managed, free_ports, port_in_use


def test_start_and_stop_leave_no_process(tmp_path: Path) -> None:
    process = Managed("sleeper", tmp_path / "run", tmp_path / "logs")
    pid = process.start([shutil.which("sleep") or "/bin/sleep", "60"])
    assert process.pid() == pid
    process.stop(timeout=5)
    assert process.pid() is None
    assert not process.pidfile.exists()
    assert not Path(f"/proc/{pid}").exists()


def test_a_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        process = Managed("other", tmp_path, tmp_path)
        process.pidfile.write_text(f"{stranger.pid}\n/not/the/binary\n")
        assert process.pid() is None
        process.stop(timeout=1)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6
    assert not any(port_in_use(port) for port in ports)
