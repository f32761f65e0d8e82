"""Security: isolated accelerator access and workload sandboxing."""

from kaic.facts import crds_in, require
from kaic.probe import probe

SANDBOX_MARKERS = ("gvisor", "runsc", "kata", "sandboxed", "quark", "krun")


@probe("secure_accelerator_access", "discovery", test="TestKaicDiscovery/SecureAcceleratorAccess", kind="discovery")
def test_secure_accelerator_access_discovery(facts, evidence):
    """Where accelerators are: nodes with device resources and nodes named by ResourceSlices."""
    require(facts, "nodes", "resourceSlices")
    slice_nodes = sorted(
        {node for d in (facts.get("resourceSlices") or {}).values() for p in d["pools"].values() for node in p["nodes"]}
    )
    evidence.add(
        "fact",
        "acceleratorNodes",
        {
            "extendedResource": {n["name"]: n["extendedResources"] for n in facts["nodes"]["withExtendedResources"]},
            "resourceSlice": slice_nodes,
        },
    )


@probe("workload_sandboxing", "discovery", test="TestKaicDiscovery/WorkloadSandboxing", kind="discovery")
def test_workload_sandboxing_discovery(facts, evidence):
    """Sandboxing runtimes (RuntimeClass name or handler) and the agent-sandbox API."""
    require(facts, "runtimeClasses", "crds")
    sandboxes = [
        rc
        for rc in facts["runtimeClasses"]
        if any(m in (rc["name"] + rc["handler"]).lower() for m in SANDBOX_MARKERS)
    ]
    evidence.add("fact", "sandboxRuntimeClasses", sandboxes)
    evidence.add("fact", "agentSandboxCrds", crds_in(facts, "agents.x-k8s.io"))
