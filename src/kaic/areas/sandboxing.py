"""Workload sandboxing: which runtime to judge, and whether a sandboxed pod is kept from its node's kernel.

The probe runs the same script (device_scripts/sandbox.sh) in a pod of the sandbox runtime and in a plain
control pod on the same node, and compares what each sees. Sharing the control pod's kernel (same uname and
boot_id) means no sandbox at all; the other checks say what a sandbox still lets through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = (Path(__file__).parent / "device_scripts" / "sandbox.sh").read_text(encoding="utf-8")
BEGIN, END = "KAIC-SANDBOX-BEGIN", "KAIC-SANDBOX-END"
# As upstream's TestWorkloadSandboxing: a RuntimeClass whose name or handler contains one of these.
MARKERS = ("gvisor", "runsc", "kata", "sandboxed", "quark", "krun")
AGENT_SANDBOX_GROUP = "agents.x-k8s.io"
# Bridges and tunnels of a node's host network namespace that a pod network never shows (kaic0: the local
# reference cluster's real node).
HOST_INTERFACES = ("cni0", "docker0", "cbr0", "flannel.1", "vxlan.calico", "cilium_host", "kaic0")
CHECKS = ("kernel", "processes", "memory", "filesystem", "network")


@dataclass(frozen=True)
class View:
    """What one pod saw of its kernel and host."""

    kernel: str
    boot_id: str
    process_count: int
    host_processes: tuple[str, ...]
    dev_mem: bool
    host_paths: tuple[str, ...]
    interfaces: tuple[str, ...]


def _items(value: str) -> tuple[str, ...]:
    return tuple(item for item in value.split(",") if item)


def parse_view(text: str) -> View | None:
    """The script's key=value lines, from the termination message or from the log between the markers."""
    if BEGIN in text:
        text = text.split(BEGIN, 1)[1].split(END, 1)[0]
    fields = dict(line.split("=", 1) for line in text.strip().splitlines() if "=" in line)
    try:
        return View(
            kernel=fields["kernel"].strip(),
            boot_id=fields["boot_id"].strip(),
            process_count=int(fields["process_count"]),
            host_processes=_items(fields["host_processes"]),
            dev_mem=fields["dev_mem"].strip() == "present",
            host_paths=_items(fields["host_paths"]),
            interfaces=_items(fields["interfaces"]),
        )
    except (KeyError, ValueError):
        return None


def is_sandbox(runtime_class: Mapping[str, str]) -> bool:
    return any(m in (runtime_class["name"] + runtime_class["handler"]).lower() for m in MARKERS)


def choose_runtime_class(
    runtime_classes: Iterable[Mapping[str, str]], wanted: str | None
) -> tuple[dict[str, str] | None, str]:
    """The RuntimeClass to judge and how it was chosen: the one named by --sandbox-runtime-class, else the
    first (by name) that looks like a sandbox. (None, trail) when there is none; the trail says what was
    searched."""
    classes = sorted((dict(rc) for rc in runtime_classes), key=lambda rc: rc["name"])
    if wanted:
        named = next((rc for rc in classes if rc["name"] == wanted), None)
        if named is None:
            return None, f"--sandbox-runtime-class {wanted} names no RuntimeClass (found: {_names(classes)})"
        return named, f"named by --sandbox-runtime-class: {wanted} (handler {named['handler']})"
    sandboxes = [rc for rc in classes if is_sandbox(rc)]
    if not sandboxes:
        return None, (
            f"no RuntimeClass whose name or handler contains {'|'.join(MARKERS)} (found: {_names(classes)})"
        )
    chosen = sandboxes[0]
    return chosen, f"detected by name or handler: {chosen['name']} (handler {chosen['handler']})"


def _names(classes: list[dict[str, str]]) -> str:
    return ", ".join(f"{rc['name']} (handler {rc['handler']})" for rc in classes) or "none"


def problems(sandboxed: View, control: View) -> dict[str, list[str]]:
    """Per check (CHECKS), what the sandboxed pod saw that a sandbox must hide; empty lists mean isolated."""
    found: dict[str, list[str]] = {check: [] for check in CHECKS}
    if (sandboxed.kernel, sandboxed.boot_id) == (control.kernel, control.boot_id):
        found["kernel"].append(
            f"shares the node's kernel: the same kernel ({control.kernel}) and boot_id ({control.boot_id}) "
            "as the control pod"
        )
    if sandboxed.host_processes:
        found["processes"].append(f"sees host processes: {', '.join(sandboxed.host_processes)}")
    if sandboxed.dev_mem:
        found["memory"].append("sees /dev/mem")
    if sandboxed.host_paths:
        found["filesystem"].append(f"its mount table names host paths: {', '.join(sandboxed.host_paths)}")
    if leaked := [i for i in sandboxed.interfaces if i in HOST_INTERFACES]:
        found["network"].append(f"sees host network interfaces: {', '.join(leaked)}")
    return found


def summary(found: Mapping[str, list[str]]) -> str:
    return "; ".join(f"{check}: {', '.join(items)}" for check, items in found.items() if items)


def as_evidence(view: View) -> dict[str, Any]:
    return {
        "kernel": view.kernel,
        "bootId": view.boot_id,
        "processCount": view.process_count,
        "hostProcesses": list(view.host_processes),
        "devMem": view.dev_mem,
        "hostPaths": list(view.host_paths),
        "interfaces": list(view.interfaces),
    }
