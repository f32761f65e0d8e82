"""Start, watch and stop the cluster's processes.

Each process gets a pidfile and a log file in the state directory, so `down` (from any shell) stops
exactly what `up` started and nothing else: a pid is only signalled while its command line still names
the binary that was started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ClusterError(RuntimeError):
    """The cluster could not be started, reached or stopped."""


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody listens on now (the kernel's picks, held until all are
    chosen)."""
    with contextlib.ExitStack() as stack:
        probes = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)
        ]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Managed:
    """One process of the cluster: its name, pidfile and log."""

    name: str
    run_dir: Path
    log_dir: Path

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self, argv: list[str], env: Mapping[str, str] | None = None) -> int:
        """Start `argv` in its own session (so a terminal's Ctrl-C does not reach it) and record its pid;
        `env` adds to the inherited environment."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **env} if env else None,
            )
        self.pidfile.write_text(f"{process.pid}\n{argv[0]}\n")
        # Until the child has exec'd, /proc shows our own command line and `pid()` would disown it.
        deadline = time.monotonic() + 5
        while self.pid() is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return process.pid

    def pid(self) -> int | None:
        """The recorded pid if that process is still the one started, else None."""
        try:
            pid_text, binary = self.pidfile.read_text().splitlines()[:2]
        except (FileNotFoundError, ValueError):
            return None
        pid = int(pid_text)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            # A zombie still has /proc entries; it is not running.
            running = _proc_state(pid) != "Z"
        except OSError:
            return None
        return pid if running and cmdline[0].decode(errors="replace") == binary else None

    def alive(self) -> bool:
        return self.pid() is not None

    def rss_bytes(self) -> int:
        pid = self.pid()
        return 0 if pid is None else resident_bytes(pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; reap it if it is our child; drop the pidfile."""
        pid = self.pid()
        if pid is not None:
            _signal(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout):
                _signal(pid, signal.SIGKILL)
                _wait_gone(pid, timeout)
        self.pidfile.unlink(missing_ok=True)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _gone(pid: int) -> bool:
    """Whether `pid` has exited; our own child is reaped here so it does not linger as a zombie."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == pid
    except ChildProcessError:
        pass
    try:
        return _proc_state(pid) == "Z"
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def resident_bytes(pid: int) -> int:
    """A process's resident set (VmRSS); 0 once it is gone or a kernel thread."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def run_command(*argv: str) -> None:
    """Run a host command (ip, ...) to completion; ClusterError with its stderr when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


def tls_context(ca_file: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    if cert and key:
        context.load_cert_chain(str(cert), str(key))
    return context


def wait_unix_socket(process: Managed, path: Path, timeout: float) -> None:
    """Wait until `process` accepts connections on the unix socket `path`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise ClusterError(f"{process.name} exited during start-up:\n{process.log_tail()}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(str(path)) == 0:
                return
        time.sleep(0.05)
    raise ClusterError(f"{process.name} not listening on {path} after {timeout:.0f}s; log: {process.log}")


def wait_healthy(
    process: Managed,
    url: str,
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> None:
    """Poll `url` until it answers 200 `ok`; fail early, with the log's tail, if the process dies."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if not process.alive():
            raise ClusterError(f"{process.name} exited during start-up:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last_error = f"HTTP {error.code}: {error.read()[:300]!r}"
        except (urllib.error.URLError, OSError) as error:
            last_error = str(error)
        time.sleep(0.2)
    raise ClusterError(
        f"{process.name} not healthy at {url} after {timeout:.0f}s ({last_error}); log: {process.log}\n"
        f"{process.log_tail()}"
    )
