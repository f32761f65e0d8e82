"""Accelerators: DRA, driver and runtime management, GPU sharing, virtualized accelerators.

Discovery probes record what the cluster serves and advertises; behavioural probes judge it.

Proves `dra_support` (workloads ask for devices through the resource.k8s.io API and the real scheduler
allocates them), `driver_runtime_management` (a pod gets the driver version its node advertises),
`gpu_sharing` (pods can share one device) and `virtualized_accelerator` (virtual accelerators are requested
like physical ones).

Every `dra_support` probe first needs resource.k8s.io/v1: a cluster that does not serve it fails
`dra_support` from the 1.34 checklist (DRA is GA and on by default there) and is unknown at 1.33.

The probes that hold devices choose one accelerator profile and allocation path (`--accelerator-profile`,
`--allocation-mode`; a DRA pool on Ready, schedulable nodes is preferred): accelerators kaic does not
recognise are unknown. Where a node runs no containers (kwok), what a container sees cannot be observed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kaic.areas import accelerators, images, workloads
from kaic.areas.workloads import DRA
from kaic.kube.resourceslices import current_slices
from kaic.probe import (
    RUN_ID_LABEL,
    Cluster,
    Facts,
    NotApplicable,
    Recorder,
    Rule,
    RunContext,
    Unknown,
    probe,
    require,
)

SHARING_RESOURCE_MARKERS = ("mig-", "shared", "replicas")


@probe("dra_support", "discovery", test="TestKaicDiscovery/DraSupport", kind="discovery")
def test_dra_support_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: DRA support, discovery
    Description: Records the served resource.k8s.io versions, the DeviceClasses and the drivers publishing
    ResourceSlices; a record, never a verdict.
    """
    require(facts, "apiGroups", "deviceClasses", "resourceSlices")
    evidence.add("fact", "resource.k8s.io", facts["dra"])
    evidence.add("fact", "deviceClasses", facts.get("deviceClasses") or [])
    evidence.add("fact", "resourceSlices", facts.get("resourceSlices") or {})


@probe(
    "driver_runtime_management",
    "discovery",
    test="TestKaicDiscovery/DriverRuntimeManagement",
    kind="discovery",
)
def test_driver_runtime_management_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Driver runtime management, discovery
    Description: Records the attributes each DRA driver publishes (driver versions among them) and the
    container runtime of every node with an extended resource; a record, never a verdict.
    """
    require(facts, "nodes", "resourceSlices")
    drivers = facts.get("resourceSlices") or {}
    evidence.add("fact", "driverAttributes", {d: info["attributes"] for d, info in drivers.items()})
    evidence.add(
        "fact",
        "acceleratorNodeRuntimes",
        {n["name"]: n["containerRuntime"] for n in facts["nodes"]["withExtendedResources"]},
    )


@probe("gpu_sharing", "discovery", test="TestKaicDiscovery/GpuSharing", kind="discovery")
def test_gpu_sharing_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: GPU sharing, discovery
    Description: Records, per node, the extended resources that name shared devices (MIG partitions, shared
    or replica resources); DRA sharing is left to the behavioural probes; a record, never a verdict.
    """
    require(facts, "nodes")
    shared = {
        n["name"]: [r for r in n["extendedResources"] if any(m in r for m in SHARING_RESOURCE_MARKERS)]
        for n in facts["nodes"]["withExtendedResources"]
    }
    evidence.add("fact", "sharingResources", {k: v for k, v in shared.items() if v})


@probe(
    "virtualized_accelerator", "discovery", test="TestKaicDiscovery/VirtualizedAccelerator", kind="discovery"
)
def test_virtualized_accelerator_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Virtualized accelerator, discovery
    Description: Records the nodes labelled `nvidia.com/vgpu.present=true` and the DeviceClasses named for
    VFIO; a record, never a verdict.
    """
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


def require_dra_v1(facts: Facts, run: RunContext) -> None:
    """dra_support's own prerequisite, judged by the run's checklist (accelerators.require_dra_v1)."""
    require(facts, "apiGroups")
    accelerators.require_dra_v1(facts["dra"]["servedVersions"], run.checklist)


def dra_selection(
    cluster: Cluster, facts: Facts, run: RunContext, evidence: Recorder
) -> accelerators.Selection:
    """The DRA path of the chosen profile; no driver publishing devices is a fact (N/A), not a failure."""
    require(facts, "resourceSlices", "deviceClasses")
    found = accelerators.inventory(facts)
    if not found["draDrivers"]:
        without = "; ".join(
            f"{driver}: {why}" for driver, why in sorted(found["draDriversWithoutDevices"].items())
        )
        evidence.add(
            "fact", "draDrivers", f"no DRA driver publishes devices ({without or 'no ResourceSlices'})"
        )
        raise NotApplicable(
            f"no DRA driver publishes devices ({without or 'no ResourceSlices'}), so there is nothing to "
            "allocate (a reported fact)"
        )
    selection = accelerators.select(facts, run.settings, "dra")
    evidence.add("fact", "acceleratorSelection", selection.found)
    return selection


@probe(
    "dra_support",
    "crud",
    test="TestKaicDra/Crud",
    creates=(
        "resource.k8s.io/deviceclasses",
        "resource.k8s.io/resourceslices",
        "resource.k8s.io/resourceclaims",
        "resource.k8s.io/resourceclaimtemplates",
    ),
    rbac=tuple(
        Rule(
            "resource.k8s.io",
            kind,
            ("create", "get", "list", "update", "delete"),
            namespaced=kind.startswith("resourceclaim"),
        )
        for kind in DRA_KINDS
    ),
    timeout_s=120,
)
def test_dra_crud(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: DRA support, every kind served and writable
    Description: resource.k8s.io/v1 MUST serve DeviceClasses, ResourceClaims, ResourceClaimTemplates,
    ResourceSlices and resourceclaims/status, and MUST let each kind be created (dry run first), read,
    listed, updated and deleted without any driver.

    1. resource.k8s.io/v1 must be served (above), and its discovery must list the four kinds and
       resourceclaims/status.
    2. For each kind, an object no driver is needed for (a DeviceClass matching nothing, a ResourceSlice on no
       node, a claim and a claim template of that class): a dry-run create must answer and persist nothing.
    3. The object is then created, read (same uid), listed by the run's label, updated (a new label, a new
       resourceVersion) and deleted, and must be gone within 30 s.
    """
    require_dra_v1(facts, run)
    served = {r["name"]: r["verbs"] for r in cluster.get(DRA)["resources"]}
    evidence.add("fact", "resource.k8s.io/v1 resources", sorted(served))
    assert {*DRA_KINDS, "resourceclaims/status"} <= set(served), f"v1 lacks {set(DRA_KINDS) - set(served)}"
    name = f"kaic-{run.id}-crud"
    bodies: dict[str, dict[str, Any]] = {
        "deviceclasses": {"spec": {"selectors": [{"cel": {"expression": "false"}}]}},
        "resourceslices": {
            "spec": {
                "driver": "crud.kaic.dev",
                "nodeName": f"kaic-{run.id}-no-such-node",
                "pool": {"name": name, "generation": 1, "resourceSliceCount": 1},
                "devices": [],
            }
        },
        "resourceclaims": {"spec": workloads.claim_spec(name)},
        "resourceclaimtemplates": {"spec": {"spec": workloads.claim_spec(name)}},
    }
    for kind, body in bodies.items():
        collection = (
            workloads.dra_path(namespace, kind) if kind.startswith("resourceclaim") else f"{DRA}/{kind}"
        )
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
            assert cluster.get(f"{collection}/{name}")["metadata"]["labels"]["kaic.dev/crud"] == "updated", (
                kind
            )
            assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
        finally:
            cluster.delete(f"{collection}/{name}")
        cluster.wait_gone([f"{collection}/{name}"], 30)
        evidence.add("text", kind, "dry-run create, create, get, list, update, delete: ok")


@probe(
    "dra_support",
    "claim-lifecycle",
    test="TestKaicDra/ClaimAllocatedReservedReleased",
    consumes=("devices",),
    creates=workloads.CREATES,
    images=("ubuntu",),
    rbac=workloads.RBAC,
    timeout_s=600,
)
def test_dra_claim_lifecycle(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: DRA support, claim allocated, reserved and released
    Description: The real scheduler MUST allocate a claim made from a template and reserve it for the pod,
    and the claim MUST be released when the pod goes; where containers run, the container MUST see the
    allocated device.

    1. resource.k8s.io/v1 must be served (above); no DRA driver publishing devices is not-applicable (a
       reported fact); then choose the profile on the DRA path.
    2. A pod claims one device from a ResourceClaimTemplate: it must be bound and its claim allocated and
       reserved for it within `--schedule-timeout` (90 s). Never bound while the scheduler reports
       FailedScheduling and no claim is allocated fails: drivers publish devices, yet the scheduler refuses
       the claim.
    3. Where its node runs containers, the container must see exactly one device, the allocated one;
       elsewhere a warning says its identity was not checked.
    4. The pod is deleted: the pod and its claim must be gone within 60 s.
    """
    require_dra_v1(facts, run)
    selection = dra_selection(cluster, facts, run, evidence)
    template = workloads.device_template(cluster, namespace, run.labels, selection)
    image = images.for_run(run.settings)["ubuntu"]
    body = workloads.identity_pod("consumer", run.labels, selection, image, {"main": True}, template=template)
    try:
        placed = workloads.place(cluster, namespace, body, evidence, run.settings.schedule_timeout_s)
    except TimeoutError:
        # Drivers publish devices and the class exists, yet the real scheduler refuses the claim: DRA is
        # broken.
        refused = [
            e["message"]
            for e in workloads.events(cluster, namespace, "consumer")
            if e["reason"] == "FailedScheduling"
        ]
        claims = cluster.list(workloads.dra_path(namespace, "resourceclaims"))
        if refused and not any((c.get("status") or {}).get("allocation") for c in claims):
            raise AssertionError(
                f"the scheduler never allocated a {selection.device_class} claim although drivers "
                f"{sorted(accelerators.inventory(facts)['draDrivers'])} publish devices: {refused[-1]}"
            ) from None
        raise
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
    "dra_support",
    "unsatisfiable-claim",
    test="TestKaicDra/UnsatisfiableClaimStaysPending",
    consumes=("devices",),
    creates=workloads.CREATES,
    images=("pause",),
    rbac=workloads.RBAC,
    timeout_s=180,
)
def test_dra_unsatisfiable_claim(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: DRA support, unsatisfiable claim stays pending (⊖)
    Description: A pod whose claim no device matches MUST stay Pending with FailedScheduling, and its claim
    MUST NOT be allocated.

    1. resource.k8s.io/v1 must be served (above); no DRA driver publishing devices is not-applicable; then
       choose the profile on the DRA path.
    2. A claim template of the chosen DeviceClass selects `device.driver == 'no-such-driver.kaic.dev'`; a pod
       on the accelerator nodes claims from it.
    3. The scheduler must report FailedScheduling within `--schedule-timeout` (90 s); the pod must be Pending
       and unbound, and no claim in the namespace allocated.
    """
    require_dra_v1(facts, run)
    selection = dra_selection(cluster, facts, run, evidence)
    selector = "device.driver == 'no-such-driver.kaic.dev'"
    cluster.create(
        workloads.dra_path(namespace, "resourceclaimtemplates"),
        workloads.claim_template("nothing", run.labels, selection.device_class, selector),
    )
    container = {
        "name": "main",
        "image": images.for_run(run.settings)["pause"],
        "securityContext": workloads.RESTRICTED,
        "resources": {"requests": {}, "limits": {}},
    }
    body = workloads.pod(
        "unsatisfiable", run.labels, [container], nodes=selection.nodes, tolerations=selection.tolerations()
    )
    workloads.give_device(body, container, selection, template="nothing")
    cluster.create(workloads.pods_path(namespace), body)
    workloads.wait_refused(
        cluster,
        namespace,
        "unsatisfiable",
        run.settings.schedule_timeout_s,
        "FailedScheduling for the unsatisfiable claim",
        evidence,
    )
    pod = cluster.get(workloads.pods_path(namespace, "unsatisfiable"))
    evidence.add("event", "unsatisfiable", workloads.events(cluster, namespace, "unsatisfiable"))
    assert pod["status"].get("phase") == "Pending" and not workloads.scheduled_node(pod), "the pod was bound"
    for claim in cluster.list(workloads.dra_path(namespace, "resourceclaims")):
        assert not (claim.get("status") or {}).get("allocation"), f"{claim['metadata']['name']} was allocated"


def hardware_selection(
    cluster: Cluster, facts: Facts, run: RunContext, evidence: Recorder
) -> accelerators.Selection:
    """For hardware-conditional requirements: no accelerator at all means the requirement does not apply."""
    require(facts, "nodes", "resourceSlices", "deviceClasses")
    selection = accelerators.select_present(facts, run.settings)
    evidence.add("fact", "acceleratorSelection", selection.found)
    return selection


def one_device_pod(
    cluster: Cluster,
    namespace: str,
    run: RunContext,
    evidence: Recorder,
    selection: accelerators.Selection,
    name: str = "main",
    **where: Any,
) -> workloads.Placement:
    """Place one identity pod holding one device on the selection's path."""
    template = workloads.device_template(cluster, namespace, run.labels, selection)
    image = images.for_run(run.settings)["ubuntu"]
    body = workloads.identity_pod(
        name, run.labels, selection, image, {"main": True}, template=template, **where
    )
    return workloads.place(cluster, namespace, body, evidence, run.settings.schedule_timeout_s)


@probe(
    "driver_runtime_management",
    "versions-in-pod",
    test="TestKaicDriverRuntimeManagement/AdvertisedVersionsInPod",
    consumes=("devices",),
    creates=workloads.CREATES,
    images=("ubuntu",),
    rbac=workloads.RBAC,
    timeout_s=600,
)
def test_driver_versions_in_pod(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Driver runtime management, advertised driver version in the pod
    Description: A scheduler-placed pod holding one device MUST find the injected driver tool, exactly one
    device, and the driver version its node advertises.

    1. Choose the profile and path (above); no accelerator at all is unknown.
    2. A pod holding one device is placed by the scheduler, and the driver versions its node advertises are
       read: the profile's first version attribute on the node's DRA devices, and its first version label.
       None advertised is a warning, and the version is then not compared.
    3. The pod runs to the end where its node runs containers (elsewhere unknown, naming what the node
       advertises); a profile with no in-container driver tool kaic can query is unknown.
    4. The driver tool must be present, the container must see exactly one device, and its driver version
       must be one the node advertises.
    """
    require(facts, "nodes", "resourceSlices", "deviceClasses")
    selection = accelerators.select(facts, run.settings)
    evidence.add("fact", "acceleratorSelection", selection.found)
    profile = selection.profile
    placed = one_device_pod(cluster, namespace, run, evidence, selection, "versions")
    advertised = advertised_driver_versions(cluster, placed.node, profile)
    evidence.add("fact", f"advertised driver versions on {placed.node}", sorted(advertised))
    if not advertised:
        evidence.warn(
            f"{placed.node} advertises no driver version "
            f"({profile.version_attributes + profile.version_labels})"
        )
    done = workloads.observe(
        cluster, namespace, placed, f"{placed.node} advertises {sorted(advertised)}", evidence
    )
    if profile.identity != "nvidia-smi":
        raise Unknown(f"profile {profile.name} has no in-container driver tool kaic can query")
    report = workloads.container_report(done, "main")
    evidence.add("log", "versions/main", dataclasses.asdict(report))
    assert report.tool == "present", "the driver tool is missing inside a scheduler-placed accelerator pod"
    assert not (wrong := report.problems(profile, 1)), wrong
    assert not advertised or report.driver_version in advertised, (
        f"the pod's driver is {report.driver_version}, the node advertises {sorted(advertised)}"
    )


def advertised_driver_versions(
    cluster: Cluster, node: str, profile: accelerators.AcceleratorProfile
) -> set[str]:
    """The driver version a node advertises: the first version attribute of its devices, the first label."""
    found: set[str] = set()
    # Without resource.k8s.io/v1 (a cluster without DRA) no slice can advertise anything: node labels only.
    if profile.version_attributes and cluster.get_or_none(DRA) is not None:
        for driver in profile.dra_drivers:
            listed = cluster.list(
                f"{DRA}/resourceslices", fieldSelector=f"spec.nodeName={node},spec.driver={driver}"
            )
            for rs in current_slices(listed):
                for device in rs["spec"].get("devices") or []:
                    value = (device.get("attributes") or {}).get(profile.version_attributes[0])
                    found.update(str(v) for v in (value or {}).values())
    labels = cluster.get(f"/api/v1/nodes/{node}")["metadata"].get("labels") or {}
    found.update(labels[k] for k in profile.version_labels[:1] if k in labels)
    return found


@probe(
    "gpu_sharing",
    "shared-claim",
    test="TestKaicGpuSharing/SharedClaimOneDevice",
    consumes=("devices",),
    creates=workloads.CREATES,
    images=("ubuntu",),
    rbac=workloads.RBAC,
    timeout_s=600,
)
def test_gpu_sharing_shared_claim(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: GPU sharing, one claim shared by two pods
    Description: Two pods sharing one ResourceClaim MUST both be reserved on the same single device of one
    node, and MUST see that same device where containers run.

    1. resource.k8s.io/v1 not served, or no DRA driver publishing devices, is not-applicable; then choose the
       profile on the DRA path.
    2. One ResourceClaim of the chosen DeviceClass, and two pods that both use it, placed by the scheduler.
    3. The claim must be reserved for both pods and hold a single device, and both pods must be on one node.
    4. Where that node runs containers, each container must see exactly one device, the same one; elsewhere a
       warning says the identities were not compared.
    """
    require(facts, "resourceSlices", "deviceClasses")
    if "v1" not in facts["dra"]["servedVersions"] or not accelerators.inventory(facts)["draDrivers"]:
        raise NotApplicable(
            "no DRA driver publishes devices (or resource.k8s.io/v1 is not served): no claim to share"
        )
    selection = dra_selection(cluster, facts, run, evidence)
    cluster.create(
        workloads.dra_path(namespace, "resourceclaims"),
        workloads.claim("shared", run.labels, selection.device_class),
    )
    image = images.for_run(run.settings)["ubuntu"]
    placed = [
        workloads.place(
            cluster,
            namespace,
            workloads.identity_pod(name, run.labels, selection, image, {"main": True}, claim="shared"),
            evidence,
            run.settings.schedule_timeout_s,
        )
        for name in ("first", "second")
    ]
    claim = cluster.get(workloads.dra_path(namespace, "resourceclaims", "shared"))
    reserved = {r["uid"] for r in claim["status"].get("reservedFor") or []}
    assert {p.pod["metadata"]["uid"] for p in placed} <= reserved, f"reservedFor holds {reserved}"
    assert len(claim["status"]["allocation"]["devices"]["results"]) == 1, (
        "the shared claim holds several devices"
    )
    assert placed[0].node == placed[1].node, f"sharers landed on {placed[0].node} and {placed[1].node}"
    if not workloads.runs_containers(cluster, placed[0].node):
        evidence.warn(f"node {placed[0].node} runs no containers: in-container identities not compared")
        return
    seen = [
        workloads.container_report(workloads.observe(cluster, namespace, p, "", evidence), "main")
        for p in placed
    ]
    evidence.add("log", "identities", [dataclasses.asdict(r) for r in seen])
    for report in seen:
        assert not (wrong := report.problems(selection.profile, 1)), wrong
    assert seen[0].ids == seen[1].ids, f"sharers see different devices: {seen[0].ids} and {seen[1].ids}"


def shared_resources(node: dict[str, Any], profile: accelerators.AcceleratorProfile) -> list[str]:
    """A node's shared devices: partition resources (e.g. MIG), or the whole-device resource when a replica
    label says it is time-sliced more than once."""
    resources = [
        r
        for r in node["extendedResources"]
        if profile.sharing_resources and r.startswith(profile.sharing_resources)
    ]
    replicas = [node["labels"].get(label, "1") for label in profile.sharing_labels]
    if any(value.isdigit() and int(value) > 1 for value in replicas):
        resources += [r for r in profile.extended_resources if r in node["extendedResources"]]
    return sorted(resources)


@probe(
    "gpu_sharing",
    "device-plugin-sharing",
    test="TestKaicGpuSharing/PartitionsOrReplicas",
    consumes=("devices",),
    creates=workloads.CREATES,
    images=("ubuntu",),
    rbac=workloads.RBAC,
    timeout_s=600,
)
def test_gpu_sharing_device_plugin(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: GPU sharing, partitions or replicas of one device
    Description: Where a node offers shared devices (MIG partitions or time-sliced replicas), two pods on it
    MUST each get one, and both MUST run on the same physical device.

    1. Choose the profile and path (above); no accelerator at all is not-applicable.
    2. A node's shared devices are the profile's partition resources (e.g. `nvidia.com/mig-*`), or its
       whole-device resource where a replica label says more than 1; no node offering them is
       not-applicable.
    3. Two pods, each asking for one unit of the first such node's first shared resource, are placed on that
       node and run to the end (a node that runs no containers: unknown).
    4. Each container must see exactly one device, and both the same one.
    """
    selection = hardware_selection(cluster, facts, run, evidence)
    profile = selection.profile
    shared = {n["name"]: shared_resources(n, profile) for n in facts["nodes"]["withExtendedResources"]}
    shared = {node: resources for node, resources in shared.items() if resources}
    evidence.add("fact", "sharedResources", shared)
    if not shared:
        raise NotApplicable(
            f"no node offers shared {profile.name} devices (resources {list(profile.sharing_resources)}, "
            f"replica labels {list(profile.sharing_labels)}); DRA claim sharing is probed on its own"
        )
    node, resources = next(iter(shared.items()))
    plugin = dataclasses.replace(
        selection, path="device-plugin", extended_resource=resources[0], nodes=(node,)
    )
    placed = [one_device_pod(cluster, namespace, run, evidence, plugin, name) for name in ("first", "second")]
    seen = [
        workloads.container_report(
            workloads.observe(cluster, namespace, p, f"both bound to {node}", evidence), "main"
        )
        for p in placed
    ]
    for report in seen:
        assert not (wrong := report.problems(profile, 1)), wrong
    assert seen[0].ids == seen[1].ids, f"sharers run on different devices: {seen[0].ids} and {seen[1].ids}"


@probe(
    "virtualized_accelerator",
    "virtual-device",
    test="TestKaicVirtualizedAccelerator/RequestedLikePhysical",
    consumes=("devices",),
    creates=workloads.CREATES,
    images=("ubuntu",),
    rbac=workloads.RBAC,
    timeout_s=600,
)
def test_virtual_device(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Virtualized accelerator, requested like a physical one
    Description: Virtual accelerators MUST be requested like physical ones (through a DeviceClass, or by the
    physical device's extended resource name), and a pod asking for one MUST start with exactly one.

    1. Choose the profile and path (above); no accelerator at all is not-applicable.
    2. The profile's virtual DeviceClass is used where one exists; else the nodes whose vGPU label is `true`,
       which must offer the physical device's extended resource name (failed otherwise); neither is
       not-applicable.
    3. A pod asking for one virtual device is placed and runs to the end (a node that runs no containers:
       unknown); its container must see exactly one device.
    """
    selection = hardware_selection(cluster, facts, run, evidence)
    profile = selection.profile
    nodes = tuple(
        n["name"]
        for n in facts["nodes"]["withExtendedResources"]
        if any(n["labels"].get(label) == "true" for label in profile.virtual_labels)
    )
    classes = [c["name"] for c in facts.get("deviceClasses") or [] if c["name"] in profile.virtual_classes]
    evidence.add("fact", "virtual", {"nodes": list(nodes), "deviceClasses": classes})
    if classes:
        virtual = dataclasses.replace(selection, path="dra", device_class=classes[0])
    elif nodes:
        names = {
            r
            for n in facts["nodes"]["withExtendedResources"]
            if n["name"] in nodes
            for r in n["extendedResources"]
        }
        assert names & set(profile.extended_resources), (
            f"virtual nodes offer {sorted(names)}, not the physical name"
        )
        resource = min(names & set(profile.extended_resources))
        virtual = dataclasses.replace(
            selection, path="device-plugin", extended_resource=resource, nodes=nodes
        )
    else:
        raise NotApplicable(
            f"no node labelled {'/'.join(profile.virtual_labels) or '(no label known)'}=true and no "
            f"DeviceClass {'/'.join(profile.virtual_classes) or '(none known)'} for profile {profile.name}"
        )
    placed = one_device_pod(cluster, namespace, run, evidence, virtual, "virtual")
    done = workloads.observe(cluster, namespace, placed, f"bound to {placed.node}", evidence)
    report = workloads.container_report(done, "main")
    assert not (wrong := report.problems(profile, 1)), wrong
