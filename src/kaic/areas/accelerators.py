"""Accelerator profiles as data, and the detection that picks one profile and one allocation path.

A profile says how one accelerator family shows up in Kubernetes (DRA driver and DeviceClass, extended
resource, node labels, device nodes) and how a container proves what it sees (the identity script in
`device_scripts/identity.sh`). `simulated` is exercised against kaic's local reference cluster, `nvidia` by
the identity script on real hardware and the upstream suite's conventions; `amd`, `intel` and `google-tpu`
come from their vendors' documented facts and are marked untested on hardware.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaic.areas.policy import untolerated
from kaic.kube.resourceslices import uncounted
from kaic.profile import minor_key
from kaic.results.outcomes import NotApplicable, ProbeError, Unknown
from kaic.settings import ALLOCATION_MODES, Settings

SCRIPT = (Path(__file__).parent / "device_scripts" / "identity.sh").read_text(encoding="utf-8")
RESULT_BEGIN, RESULT_END = "KAIC-RESULT-BEGIN", "KAIC-RESULT-END"
DRA_GA = "1.34"  # resource.k8s.io/v1 is GA and on by default from this Kubernetes minor


@dataclass(frozen=True)
class AcceleratorProfile:
    name: str
    tested: str  # where this profile has been exercised; "untested on hardware" for documented-only ones
    dra_drivers: tuple[str, ...] = ()
    device_classes: tuple[str, ...] = ()  # whole-device classes, preferred first
    extended_resources: tuple[str, ...] = ()  # whole devices; also the taint keys accelerator nodes carry
    node_labels: tuple[str, ...] = ()  # labels that mark this family's nodes
    device_globs: tuple[str, ...] = ()  # device nodes a container sees per allocated device
    identity: str = "nodes"  # identity.sh mode: nvidia-smi | env | nodes | drm-pci
    env_pattern: str = ""  # for identity "env": sed BRE whose \1 is one device identity
    count_by: str = "devices"  # what counts visible devices: "devices" (nodes) or "ids" (identities)
    identity_attribute: str | None = (
        None  # DRA attribute equal to the in-container identity (None: device name)
    )
    version_attributes: tuple[str, ...] = ()  # DRA attributes that advertise driver versions
    version_labels: tuple[str, ...] = ()  # node labels that advertise them (e.g. GPU feature discovery)
    sharing_resources: tuple[str, ...] = ()  # extended-resource prefixes of shared devices (MIG, replicas)
    sharing_labels: tuple[str, ...] = ()  # node labels whose value > 1 means time-sliced replicas
    virtual_labels: tuple[str, ...] = ()  # node labels "true" on nodes with virtual accelerators
    virtual_classes: tuple[str, ...] = ()  # DeviceClasses of virtual or passthrough devices
    leak_env: tuple[tuple[str, str], ...] = ()  # env that must not grant devices to a request-less container
    leak_runtime_classes: tuple[str, ...] = ()  # RuntimeClasses that must not either

    def tolerations(self) -> list[dict[str, str]]:
        """Tolerate the taints accelerator nodes carry (the taint key is the extended resource)."""
        return [{"key": r, "operator": "Exists", "effect": "NoSchedule"} for r in self.extended_resources]

    def script_env(self) -> list[dict[str, str]]:
        return [
            {"name": "KAIC_DEVICE_GLOBS", "value": " ".join(self.device_globs)},
            {"name": "KAIC_IDENTITY", "value": self.identity},
            {"name": "KAIC_ENV_PATTERN", "value": self.env_pattern},
        ]

    def identity_of(self, device: Mapping[str, Any]) -> str:
        """What the identity script reports for one ResourceSlice device."""
        if self.identity_attribute is None:
            return str(device["name"])
        value = (device.get("attributes") or {}).get(self.identity_attribute) or {}
        return str(next(iter(value.values()), ""))


UNTESTED = "untested on hardware: documented facts only"
PROFILES: dict[str, AcceleratorProfile] = {
    p.name: p
    for p in (
        AcceleratorProfile(
            "simulated",
            tested="kaic local reference cluster (dra-example-driver conventions)",
            dra_drivers=("gpu.example.com",),
            device_classes=("gpu.example.com",),
            extended_resources=("example.com/gpu",),
            node_labels=("example.com/gpu.present",),
            identity="env",
            env_pattern=r"^GPU_DEVICE_[A-Z0-9_]*=\(gpu-.*\)$",
            count_by="ids",
            version_attributes=("driverVersion",),
        ),
        AcceleratorProfile(
            "nvidia",
            tested="identity script on NVIDIA hardware; DRA and device-plugin paths as the upstream suite",
            dra_drivers=("gpu.nvidia.com",),
            device_classes=("gpu.nvidia.com",),
            extended_resources=("nvidia.com/gpu",),
            node_labels=("nvidia.com/gpu.present",),
            device_globs=("/dev/nvidia[0-9]*",),
            identity="nvidia-smi",
            identity_attribute="uuid",
            version_attributes=("driverVersion", "cudaDriverVersion"),
            version_labels=("nvidia.com/cuda.driver-version.full", "nvidia.com/cuda.runtime-version.full"),
            sharing_resources=("nvidia.com/mig-",),
            sharing_labels=("nvidia.com/gpu.replicas",),
            virtual_labels=("nvidia.com/vgpu.present",),
            virtual_classes=("vfio.gpu.nvidia.com",),
            leak_env=(("NVIDIA_VISIBLE_DEVICES", "all"),),
            leak_runtime_classes=("nvidia",),
        ),
        AcceleratorProfile(
            "amd",
            tested=UNTESTED,
            dra_drivers=("gpu.amd.com",),
            device_classes=("gpu.amd.com",),
            extended_resources=("amd.com/gpu",),
            node_labels=("amd.com/gpu.present",),
            device_globs=("/dev/dri/renderD*",),
            leak_env=(("AMD_VISIBLE_DEVICES", "all"),),
        ),
        AcceleratorProfile(
            "intel",
            tested=UNTESTED,
            dra_drivers=("gpu.intel.com",),
            device_classes=("gpu.intel.com",),
            extended_resources=("gpu.intel.com/i915", "gpu.intel.com/xe", "habana.ai/gaudi"),
            node_labels=("intel.feature.node.kubernetes.io/gpu",),
            device_globs=("/dev/dri/renderD*", "/dev/accel/accel*"),
            identity="drm-pci",
            count_by="devices",
        ),
        AcceleratorProfile(
            "google-tpu",
            tested=UNTESTED,
            dra_drivers=("tpu.google.com",),
            device_classes=("tpu.google.com",),
            extended_resources=("google.com/tpu",),
            node_labels=("cloud.google.com/gke-tpu-accelerator",),
            device_globs=("/dev/accel*", "/dev/vfio/[0-9]*"),
        ),
    )
}


class NoAccelerators(Unknown):
    """Nothing in the cluster offers an accelerator; hardware-conditional probes turn this into N/A."""


@dataclass(frozen=True)
class Selection:
    """One profile and one allocation path, with the nodes that offer devices on it."""

    profile: AcceleratorProfile
    path: str  # "dra" | "device-plugin"
    nodes: tuple[str, ...]
    device_class: str = ""  # dra
    extended_resource: str = ""  # device-plugin
    found: dict[str, Any] = field(default_factory=dict)  # inventory and decision trail, for evidence
    extra_tolerations: tuple[dict[str, str], ...] = ()  # the run's --toleration

    def tolerations(self) -> list[dict[str, str]]:
        """What every pod on this selection tolerates: the profile's accelerator taints and the run's own."""
        return [*self.profile.tolerations(), *self.extra_tolerations]


def select(facts: Mapping[str, Any], settings: Settings, mode: str | None = None) -> Selection:
    """`detect` with the run's --accelerator-profile, --allocation-mode (or `mode`) and --toleration."""
    return detect(facts, settings.accelerator_profile, mode or settings.allocation_mode, settings.tolerations)


def select_present(facts: Mapping[str, Any], settings: Settings) -> Selection:
    """`select` for hardware-conditional requirements: no accelerator at all means they do not apply."""
    try:
        return select(facts, settings)
    except NoAccelerators as absent:
        raise NotApplicable(str(absent)) from None


def inventory(facts: Mapping[str, Any]) -> dict[str, Any]:
    """What the cluster offers, vendor-neutral: DRA drivers with devices (discovery's counts: complete pools
    at their newest generation), those without and why, DeviceClasses, extended resources."""
    drivers = facts.get("resourceSlices") or {}
    return {
        "draDrivers": {
            driver: {"devices": info["devices"], "pools": len(info["pools"])}
            for driver, info in drivers.items()
            if info["devices"]
        },
        "draDriversWithoutDevices": {
            driver: uncounted(info) or "its pools publish no devices"
            for driver, info in drivers.items()
            if not info["devices"]
        },
        "deviceClasses": sorted(dc["name"] for dc in facts.get("deviceClasses") or []),
        "extendedResources": {
            n["name"]: n["extendedResources"]
            for n in (facts.get("nodes") or {}).get("withExtendedResources", [])
        },
    }


def require_dra_v1(served: list[str], checklist: str) -> None:
    """dra_support's verdict on resource.k8s.io/v1 not being served. Before DRA_GA it is beta and off by
    default: absent but installable (unknown). From DRA_GA it is GA and on by default, so a cluster judged by
    such a checklist that does not serve it fails the MUST."""
    if "v1" in served:
        return
    why = f"resource.k8s.io/v1 is not served (served versions: {', '.join(served) or 'none'})"
    if minor_key(checklist) >= minor_key(DRA_GA):
        raise AssertionError(
            f"{why}: DRA is GA and on by default from Kubernetes {DRA_GA}, "
            f"and checklist {checklist} requires it"
        )
    raise Unknown(
        f"{why}; on {checklist} DRA is beta and off by default: enable the API and its feature gates"
    )


def accelerator_nodes(facts: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Discovery's summaries of every accelerator node, by name: extended-resource nodes and DRA-only ones."""
    node_facts = facts.get("nodes") or {}
    return {
        n["name"]: n
        for key in ("withExtendedResources", "withDraDevicesOnly")
        for n in node_facts.get(key, [])
    }


def _unusable(node: Mapping[str, Any] | None) -> str:
    """Why no pod can be placed on a node ("" when one can): not known, not Ready, or cordoned (policy,
    named)."""
    if not node:
        return "not a known node"
    return "not Ready" if not node["ready"] else "cordoned" if node["unschedulable"] else ""


def _no_usable_node(nodes: Mapping[str, Mapping[str, Any]], names: list[str]) -> str:
    """The state of each node that was passed over, for the reason no pool or resource is usable."""
    return ", ".join(f"{name} {_unusable(nodes.get(name))}" for name in sorted(set(names))) or "none"


def _observable_first(per_node: dict[str, int], nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Only the nodes that run containers, when some do: a probe pod placed there can report what it sees."""
    running = {
        name: count for name, count in per_node.items() if (nodes.get(name) or {}).get("runsContainers")
    }
    return running or per_node


def _dra_option(
    profile: AcceleratorProfile, facts: Mapping[str, Any], nodes: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, Any] | None, str]:
    """(option, why not): a DeviceClass of the profile's driver and its complete pools on Ready nodes."""
    if (facts.get("dra") or {}).get("version") != "v1":
        return None, "resource.k8s.io/v1 is not served"
    slices = facts.get("resourceSlices") or {}
    drivers = [d for d in profile.dra_drivers if (slices.get(d) or {}).get("devices")]
    if not drivers:
        why = "; ".join(
            f"{d}: {uncounted(slices[d])}" for d in profile.dra_drivers if uncounted(slices.get(d) or {})
        )
        return None, f"no ResourceSlice of {', '.join(profile.dra_drivers)} publishes devices" + (
            f" ({why})" if why else ""
        )
    classes = {dc["name"]: dc for dc in facts.get("deviceClasses") or []}
    device_class = next((c for c in profile.device_classes if c in classes), "") or next(
        (
            name
            for name, dc in classes.items()
            if any(f"'{d}'" in s for d in drivers for s in dc["selectors"])
        ),
        "",
    )
    if not device_class:
        return None, f"no DeviceClass selects {', '.join(drivers)}"
    per_node: dict[str, int] = {}
    passed_over = []
    for driver in drivers:
        for pool in slices[driver]["pools"].values():
            if len(pool["nodes"]) != 1:
                continue
            if _unusable(nodes.get(pool["nodes"][0])):
                passed_over.append(pool["nodes"][0])
                continue
            per_node[pool["nodes"][0]] = per_node.get(pool["nodes"][0], 0) + pool["devices"]
    if not per_node:
        return None, (
            f"no complete pool of {', '.join(drivers)} on a Ready, schedulable node "
            f"(pool nodes: {_no_usable_node(nodes, passed_over)})"
        )
    return {
        "deviceClass": device_class,
        "drivers": drivers,
        "devicesPerNode": _observable_first(per_node, nodes),
    }, ""


def _plugin_option(
    profile: AcceleratorProfile, facts: Mapping[str, Any], nodes: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, Any] | None, str]:
    """(option, why not): Ready nodes with allocatable devices of the profile's extended resource."""
    passed_over = []
    for resource in profile.extended_resources:
        offering = {
            n["name"]: int(count)
            for n in (facts.get("nodes") or {}).get("withExtendedResources", [])
            if (count := str(n["extendedResources"].get(resource, "0"))).isdigit() and int(count) > 0
        }
        per_node = {name: count for name, count in offering.items() if not _unusable(nodes.get(name))}
        passed_over += [name for name in offering if name not in per_node]
        if per_node:
            mapped = [
                dc["name"]
                for dc in facts.get("deviceClasses") or []
                if dc["extendedResourceName"] == resource
            ]
            per_node = _observable_first(per_node, nodes)
            return {
                "extendedResource": resource,
                "devicesPerNode": per_node,
                "mappedByDeviceClass": mapped,
            }, ""
    resources = ", ".join(profile.extended_resources) or "extended resource"
    if passed_over:
        return (
            None,
            f"no Ready, schedulable node has allocatable {resources} ({_no_usable_node(nodes, passed_over)})",
        )
    return None, f"no Ready node has allocatable {resources}"


def detect(
    facts: Mapping[str, Any],
    requested: str = "auto",
    allocation_mode: str = "auto",
    tolerations: tuple[dict[str, str], ...] = (),
) -> Selection:
    """Pick the profile and allocation path; auto prefers a complete DRA pool on Ready, schedulable nodes.

    Unrecognised hardware is Unknown with the inventory; an empty cluster is NoAccelerators. Nodes with taints
    the chosen profile's pods would not tolerate stay chosen (the scheduler decides, and a wait that sees it
    refuse names the taint) but are named in the evidence.
    """
    if requested != "auto" and requested not in PROFILES:
        raise ProbeError(f"unknown accelerator profile {requested!r}; known: auto, {', '.join(PROFILES)}")
    if allocation_mode not in ALLOCATION_MODES:
        raise ProbeError(f"unknown allocation mode {allocation_mode!r}; known: {', '.join(ALLOCATION_MODES)}")
    known = accelerator_nodes(facts)
    found: dict[str, Any] = {
        "inventory": inventory(facts),
        "requested": requested,
        "allocationMode": allocation_mode,
    }
    trail: dict[str, dict[str, str]] = {}
    choices: list[Selection] = []
    for profile in [PROFILES[requested]] if requested != "auto" else PROFILES.values():
        dra, dra_why = _dra_option(profile, facts, known)
        plugin, plugin_why = _plugin_option(profile, facts, known)
        trail[profile.name] = {"dra": dra_why or "usable", "device-plugin": plugin_why or "usable"}
        if dra and allocation_mode in ("auto", "dra"):
            choices.append(
                Selection(
                    profile,
                    "dra",
                    tuple(sorted(dra["devicesPerNode"])),
                    device_class=dra["deviceClass"],
                    found={**found, "option": dra},
                )
            )
        elif plugin and allocation_mode in ("auto", "device-plugin"):
            if plugin["mappedByDeviceClass"]:
                trail[profile.name]["device-plugin"] = (
                    f"DeviceClass {', '.join(plugin['mappedByDeviceClass'])} maps "
                    f"{plugin['extendedResource']} to DRA, so requests for it are not device-plugin "
                    "allocations; use --allocation-mode dra"
                )
                continue
            choices.append(
                Selection(
                    profile,
                    "device-plugin",
                    tuple(sorted(plugin["devicesPerNode"])),
                    extended_resource=plugin["extendedResource"],
                    found={**found, "option": plugin},
                )
            )
    if choices:
        chosen = next((c for c in choices if c.path == "dra"), choices[0])
        chosen = dataclasses.replace(chosen, extra_tolerations=tolerations)
        tainted = {
            name: taints
            for name in chosen.nodes
            if (taints := untolerated((known.get(name) or {}).get("taints") or [], chosen.tolerations()))
        }
        return dataclasses.replace(
            chosen,
            found={
                **chosen.found,
                "trail": trail,
                "chosen": {"profile": chosen.profile.name, "path": chosen.path},
                **({"untoleratedTaints": tainted} if tainted else {}),
            },
        )
    summary = json.dumps(found["inventory"], sort_keys=True)
    if not any(found["inventory"][k] for k in ("draDrivers", "extendedResources")):
        raise NoAccelerators(
            "no accelerators: no DRA driver publishes devices and no node advertises an extended resource "
            f"(inventory {summary})"
        )
    why = "; ".join(
        f"{name}: {', '.join(f'{k} {v}' for k, v in paths.items())}" for name, paths in trail.items()
    )
    raise Unknown(
        f"no recognised accelerator on allocation path {allocation_mode} ({why}); inventory {summary}"
    )


@dataclass(frozen=True)
class DeviceReport:
    """What the identity script saw inside one container."""

    devices: tuple[str, ...]
    ids: tuple[str, ...]
    tool: str
    driver_version: str

    def visible(self, profile: AcceleratorProfile) -> tuple[str, ...]:
        """The devices this container can use, counted the profile's way."""
        return self.ids if profile.count_by == "ids" else self.devices

    def problems(
        self, profile: AcceleratorProfile, count: int, identities: tuple[str, ...] = ()
    ) -> list[str]:
        """Why this container's view is wrong for `count` allocated devices with these identities (empty:
        right).

        Over-allocation and leaks both show as more visible devices than allocated; identities are compared
        only where the container can report them (a driver tool or injected variables)."""
        found = []
        seen = self.visible(profile)
        if len(seen) != count:
            found.append(f"sees {len(seen)} device(s) {list(seen)}, allocated {count}")
        if count == 0 and self.ids and profile.count_by != "ids":
            found.append(f"reports device identities {list(self.ids)} without any allocation")
        if identities and self.ids and set(self.ids) != set(identities):
            found.append(f"reports identities {list(self.ids)}, allocated {list(identities)}")
        return found


def parse_report(text: str) -> DeviceReport | None:
    """The identity script's JSON, from the termination message or from logs between the markers."""
    if RESULT_BEGIN in text:
        text = text.split(RESULT_BEGIN, 1)[1].split(RESULT_END, 1)[0]
    try:
        data = json.loads(text.strip())
    except ValueError:
        return None
    return DeviceReport(tuple(data["devices"]), tuple(data["ids"]), data["tool"], data["driverVersion"])
