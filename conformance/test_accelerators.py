"""Accelerators: DRA, driver and runtime management, GPU sharing, virtualized accelerators.

Discovery probes record what the cluster serves and advertises; behavioural probes (issue 4) judge it.
"""

from kaic import accelerators, images, workloads
from kaic.facts import require
from kaic.outcomes import NotApplicable, Unknown
from kaic.probe import Rule, probe
from kaic.pytest_plugin import RUN_ID_LABEL
from kaic.workloads import DRA

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


# ---- behavioural probes ------------------------------------------------------------------------------------

DRA_KINDS = ("deviceclasses", "resourceclaims", "resourceclaimtemplates", "resourceslices")


def require_dra_v1(facts) -> None:
    """resource.k8s.io/v1 must be served; otherwise DRA is absent but installable (unknown, not failed)."""
    require(facts, "apiGroups")
    served = facts["dra"]["servedVersions"]
    if "v1" not in served:
        raise Unknown(
            f"resource.k8s.io/v1 is not served (served versions: {', '.join(served) or 'none'}); "
            "on 1.33 DRA is beta and off by default"
        )


def dra_selection(cluster, facts, run, evidence) -> accelerators.Selection:
    """The DRA path of the chosen profile; no driver publishing devices is a fact (N/A), not a failure."""
    require_dra_v1(facts)
    require(facts, "resourceSlices", "deviceClasses")
    if not accelerators.inventory(facts)["draDrivers"]:
        evidence.add("fact", "draDrivers", "no DRA driver publishes devices")
        raise NotApplicable("no DRA driver publishes devices, so there is nothing to allocate (a reported fact)")
    selection = accelerators.select(cluster, facts, run.options, "dra")
    evidence.add("fact", "acceleratorSelection", selection.found)
    return selection


@probe(
    "dra_support", "crud", test="TestKaicDra/Crud",
    creates=("resource.k8s.io/deviceclasses", "resource.k8s.io/resourceslices", "resource.k8s.io/resourceclaims",
             "resource.k8s.io/resourceclaimtemplates"),
    rbac=tuple(Rule("resource.k8s.io", kind, ("create", "get", "list", "update", "delete"),
                    namespaced=kind.startswith("resourceclaim")) for kind in DRA_KINDS),
    timeout_s=120,
)  # fmt: skip
def test_dra_crud(cluster, namespace, run, facts, evidence):
    """resource.k8s.io/v1 serves all four kinds and resourceclaims/status, and each kind can be created (dry run
    first), read, listed, updated and deleted, without any driver (a class matching nothing, a slice on no node)."""
    require_dra_v1(facts)
    served = {r["name"]: r["verbs"] for r in cluster.get(DRA)["resources"]}
    evidence.add("fact", "resource.k8s.io/v1 resources", sorted(served))
    assert {*DRA_KINDS, "resourceclaims/status"} <= set(served), f"v1 lacks {set(DRA_KINDS) - set(served)}"
    name = f"kaic-{run.id}-crud"
    bodies = {
        "deviceclasses": {"spec": {"selectors": [{"cel": {"expression": "false"}}]}},
        "resourceslices": {"spec": {
            "driver": "crud.kaic.dev", "nodeName": f"kaic-{run.id}-no-such-node",
            "pool": {"name": name, "generation": 1, "resourceSliceCount": 1}, "devices": []}},
        "resourceclaims": {"spec": workloads.claim_spec(name)},
        "resourceclaimtemplates": {"spec": {"spec": workloads.claim_spec(name)}},
    }  # fmt: skip
    for kind, body in bodies.items():
        collection = workloads.dra_path(namespace, kind) if kind.startswith("resourceclaim") else f"{DRA}/{kind}"
        obj = {"apiVersion": "resource.k8s.io/v1", "metadata": {"name": name, "labels": run.labels}, **body}
        dry = cluster.create(collection, obj, dry_run=True)
        assert dry["metadata"]["name"] == name and cluster.get_or_none(f"{collection}/{name}") is None, (
            f"{kind}: a dry-run create persisted"
        )
        created = cluster.create(collection, obj)
        try:
            assert cluster.get(f"{collection}/{name}")["metadata"]["uid"] == created["metadata"]["uid"]
            selector = f"{RUN_ID_LABEL}={run.id}"
            assert name in [o["metadata"]["name"] for o in cluster.list(collection, labelSelector=selector)]
            created["metadata"]["labels"]["kaic.dev/crud"] = "updated"
            updated = cluster.request("PUT", f"{collection}/{name}", body=created)
            assert cluster.get(f"{collection}/{name}")["metadata"]["labels"]["kaic.dev/crud"] == "updated", kind
            assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
        finally:
            cluster.delete(f"{collection}/{name}")
        cluster.wait_gone([f"{collection}/{name}"], 30)
        evidence.add("text", kind, "dry-run create, create, get, list, update, delete: ok")


@probe(
    "dra_support", "claim-lifecycle", test="TestKaicDra/ClaimAllocatedReservedReleased",
    consumes=("devices",), creates=workloads.CREATES, images=("ubuntu",), rbac=workloads.RBAC, timeout_s=600,
)  # fmt: skip
def test_dra_claim_lifecycle(cluster, namespace, run, facts, evidence):
    """The real scheduler allocates a claim made from a template, reserves it for the pod, and the claim is
    released when the pod goes; where containers run, the container sees the allocated device."""
    selection = dra_selection(cluster, facts, run, evidence)
    template = workloads.device_template(cluster, namespace, run.labels, selection)
    image = images.for_run(run.options)["ubuntu"]
    body = workloads.identity_pod("consumer", run.labels, selection, image, {"main": True}, template=template)
    placed = workloads.place(cluster, namespace, body, evidence)
    identities = workloads.allocated_identities(cluster, placed, selection.profile)
    if workloads.runs_containers(cluster, placed.node):
        done = workloads.observe(cluster, namespace, placed, "", evidence)
        report = workloads.container_report(done, "main")
        assert not (wrong := report.problems(selection.profile, 1, identities)), wrong
    else:
        evidence.warn(f"node {placed.node} runs no containers: in-container identity not checked")
    (claim,) = placed.claims.values()
    claim_path = workloads.dra_path(namespace, "resourceclaims", claim["metadata"]["name"])
    cluster.delete(workloads.pods_path(namespace, "consumer"))
    cluster.wait_gone([workloads.pods_path(namespace, "consumer"), claim_path], 60)
    evidence.add("text", "release", f"pod deleted; its claim {claim['metadata']['name']} was removed with it")


@probe(
    "dra_support", "unsatisfiable-claim", test="TestKaicDra/UnsatisfiableClaimStaysPending",
    consumes=("devices",), creates=workloads.CREATES, images=("pause",), rbac=workloads.RBAC, timeout_s=180,
)  # fmt: skip
def test_dra_unsatisfiable_claim(cluster, namespace, run, facts, evidence):
    """A claim whose selector no device matches leaves its pod Pending with FailedScheduling, unallocated."""
    selection = dra_selection(cluster, facts, run, evidence)
    selector = "device.driver == 'no-such-driver.kaic.dev'"
    cluster.create(workloads.dra_path(namespace, "resourceclaimtemplates"),
                   workloads.claim_template("nothing", run.labels, selection.device_class, selector))  # fmt: skip
    container = {"name": "main", "image": images.for_run(run.options)["pause"],
                 "securityContext": workloads.RESTRICTED, "resources": {"requests": {}, "limits": {}}}  # fmt: skip
    body = workloads.pod("unsatisfiable", run.labels, [container], nodes=selection.nodes,
                         tolerations=selection.profile.tolerations())  # fmt: skip
    workloads.give_device(body, container, selection, template="nothing")
    cluster.create(workloads.pods_path(namespace), body)
    workloads.wait_for(
        cluster, workloads.pods_path(namespace, "unsatisfiable"),
        lambda _: any(e["reason"] == "FailedScheduling" for e in workloads.events(cluster, namespace, "unsatisfiable")),
        90, "FailedScheduling for the unsatisfiable claim", evidence,
    )  # fmt: skip
    pod = cluster.get(workloads.pods_path(namespace, "unsatisfiable"))
    evidence.add("event", "unsatisfiable", workloads.events(cluster, namespace, "unsatisfiable"))
    assert pod["status"].get("phase") == "Pending" and not workloads.scheduled_node(pod), "the pod was bound"
    for claim in cluster.list(workloads.dra_path(namespace, "resourceclaims")):
        assert not (claim.get("status") or {}).get("allocation"), f"{claim['metadata']['name']} was allocated"
