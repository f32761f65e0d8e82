"""The route guard: while a cluster is up, its whole simulated address space is `unreachable` on this host.

kwok's pod addresses, the service range and the real node's bridge all lie in 100.64.0.0/10. Nothing behind
most of them exists, so without the guard a packet to one would follow the default route off the host. With
it the kernel refuses at once ("No route to host"); the real node's bridge route is more specific and still
carries its own pods' traffic. Each cluster adds its own route, told apart by its metric (its API server's
port, unique while it runs), so clusters side by side never remove each other's guard.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess

from kaic.localcluster.processes import run_command

SIMULATED = ipaddress.ip_network("100.64.0.0/10")


def unavailable() -> str | None:
    """Why this host cannot install the guard, or None."""
    if os.geteuid() != 0:
        return "adding a route needs root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    return None


def add(metric: int) -> None:
    run_command("ip", "route", "add", "unreachable", str(SIMULATED), "metric", str(metric))


def remove(metric: int) -> None:
    """Remove this cluster's guard; one already gone is fine (teardown runs again after a failed start)."""
    if installed(metric):
        run_command("ip", "route", "del", "unreachable", str(SIMULATED), "metric", str(metric))


def refuses(address: str) -> bool:
    """Whether the kernel's route to `address` is an unreachable one (asked, never dialled)."""
    result = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True, check=False)
    return result.returncode != 0 and "No route to host" in result.stderr


def installed(metric: int) -> bool:
    shown = subprocess.run(
        ["ip", "route", "show", "type", "unreachable", str(SIMULATED)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return f"metric {metric}" in shown
