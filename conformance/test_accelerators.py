"""Accelerators: DRA, driver and runtime management, GPU sharing, virtualized accelerators.

Discovery probes record what the cluster serves and advertises; behavioural probes (issue 4) judge it.
"""

from kaic.facts import require
from kaic.probe import probe

SHARING_RESOURCE_MARKERS = ("mig-", "shared", "replicas")


@probe("dra_support", "discovery", test="TestKaicDiscovery/DraSupport", kind="discovery")
def test_dra_support_discovery(facts, evidence):
    """Served resource.k8s.io versions, DeviceClasses, and the drivers publishing ResourceSlices."""
    require(facts, "apiGroups", "deviceClasses", "resourceSlices")
    evidence.add("fact", "resource.k8s.io", facts["dra"])
    evidence.add("fact", "deviceClasses", facts.get("deviceClasses") or [])
    evidence.add("fact", "resourceSlices", facts.get("resourceSlices") or {})


@probe("driver_runtime_management", "discovery", test="TestKaicDiscovery/DriverRuntimeManagement", kind="discovery")
def test_driver_runtime_management_discovery(facts, evidence):
    """Driver versions advertised by DRA attributes and the container runtimes of accelerator nodes."""
    require(facts, "nodes", "resourceSlices")
    drivers = facts.get("resourceSlices") or {}
    evidence.add("fact", "driverAttributes", {d: info["attributes"] for d, info in drivers.items()})
    evidence.add(
        "fact",
        "acceleratorNodeRuntimes",
        {n["name"]: n["containerRuntime"] for n in facts["nodes"]["withExtendedResources"]},
    )


@probe("gpu_sharing", "discovery", test="TestKaicDiscovery/GpuSharing", kind="discovery")
def test_gpu_sharing_discovery(facts, evidence):
    """Sharing signs: MIG or replica resources on nodes, DRA shared counters are judged by the behavioural probe."""
    require(facts, "nodes")
    shared = {
        n["name"]: [r for r in n["extendedResources"] if any(m in r for m in SHARING_RESOURCE_MARKERS)]
        for n in facts["nodes"]["withExtendedResources"]
    }
    evidence.add("fact", "sharingResources", {k: v for k, v in shared.items() if v})


@probe("virtualized_accelerator", "discovery", test="TestKaicDiscovery/VirtualizedAccelerator", kind="discovery")
def test_virtualized_accelerator_discovery(facts, evidence):
    """Virtualized accelerator signs: vGPU node labels and VFIO device classes."""
    require(facts, "nodes", "deviceClasses")
    vgpu = [
        n["name"]
        for n in facts["nodes"]["withExtendedResources"]
        if n["labels"].get("nvidia.com/vgpu.present") == "true"
    ]
    vfio = [dc["name"] for dc in facts.get("deviceClasses") or [] if "vfio" in dc["name"]]
    evidence.add("fact", "virtualized", {"vgpuNodes": vgpu, "vfioDeviceClasses": vfio})
