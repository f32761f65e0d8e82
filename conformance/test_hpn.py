"""High-performance networking: secondary network devices are claimable and give pods a working extra
interface.

Proves `high_performance_networking` (conditional: platform): where the platform offers fast pod-to-pod
networking, the extra network devices can be claimed and carry traffic.

Every behavioural probe first detects the stack, taking the first found of: a DRA driver publishing network
devices (`dra.net`, or one whose devices publish attributes such as `rdma` or `ifName`), a
NetworkAttachmentDefinition (`--network-attachment`, else the first defined), `rdma/*` resources; none of them
is not-applicable, with that trail. It is unknown where the DRA driver publishes no `--network-attribute`
attribute (`rdma` by default) or no DeviceClass selects it (`--network-device-class` names one), where the
NetworkAttachmentDefinition API defines no network, and where only `rdma/*` resources exist (they give a pod
no interface kaic can observe).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kaic.areas import hpn, images, workloads
from kaic.probe import (
    Cluster,
    Facts,
    NotApplicable,
    Recorder,
    Rule,
    RunContext,
    Unknown,
    crds_in,
    probe,
    require,
)

NAD_CRD = f"network-attachment-definitions.{hpn.MULTUS_GROUP}"
RBAC = (
    *workloads.RBAC,
    Rule("", "pods/log", ("get",)),
    Rule(hpn.MULTUS_GROUP, "network-attachment-definitions", ("list",), namespaced=False),
)


@probe(
    "high_performance_networking",
    "discovery",
    test="TestKaicDiscovery/HighPerformanceNetworking",
    kind="discovery",
)
def test_high_performance_networking_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: High-performance networking, discovery
    Description: Records the signs of a secondary network: DRA drivers publishing network devices,
    NetworkAttachmentDefinition CRDs and `rdma/*` resources per node; a record, never a verdict.
    """
    require(facts, "crds", "nodes", "resourceSlices")
    evidence.add("fact", "networking", signs(facts))


def signs(facts: Facts) -> dict[str, Any]:
    rdma = {
        n["name"]: sorted(r for r in n["extendedResources"] if r.startswith("rdma/"))
        for n in facts["nodes"]["withExtendedResources"]
    }
    return {
        "draNetworkDrivers": hpn.network_drivers(facts.get("resourceSlices") or {}),
        "multusCrds": sorted(crds_in(facts, hpn.MULTUS_GROUP)),
        "rdmaResources": {k: v for k, v in rdma.items() if v},
    }


def stack(cluster: Cluster, facts: Facts, run: RunContext, evidence: Recorder) -> hpn.Stack:
    """The stack to judge, or not-applicable/unknown with the discovery trail."""
    require(facts, "crds", "nodes", "resourceSlices", "deviceClasses")
    found = signs(facts)
    evidence.add("fact", "discoveryTrail", found)
    slices = facts.get("resourceSlices") or {}
    if drivers := found["draNetworkDrivers"]:
        driver = drivers[0]
        wanted = run.settings.network.attribute
        attribute = hpn.find_attribute(slices[driver]["attributes"], driver, wanted)
        if attribute is None:
            raise Unknown(
                f"DRA network driver {driver} publishes no {wanted} attribute (it publishes "
                f"{', '.join(slices[driver]['attributes']) or 'none'}): name the boolean attribute its "
                "claims select on with --network-attribute"
            )
        wanted_class = run.settings.network.device_class
        classes = (
            [wanted_class] if wanted_class else hpn.classes_for(facts.get("deviceClasses") or [], driver)
        )
        if not classes:
            raise Unknown(
                f"DRA network driver {driver} publishes devices but no DeviceClass selects it: create "
                "one, or name it with --network-device-class"
            )
        return hpn.Stack("dra", driver=driver, device_class=classes[0], attribute=attribute)
    if NAD_CRD in found["multusCrds"]:
        attachment = run.settings.network.attachment or next(
            (
                f"{n['metadata']['namespace']}/{n['metadata']['name']}"
                for n in cluster.list(f"/apis/{hpn.MULTUS_GROUP}/v1/{NAD_CRD.split('.')[0]}")
            ),
            "",
        )
        if not attachment:
            raise Unknown(
                "the NetworkAttachmentDefinition API is installed but defines no network: create one, or "
                "name it with --network-attachment"
            )
        return hpn.Stack("multus", attachment=attachment)
    if found["rdmaResources"]:
        raise Unknown(
            f"rdma/* device-plugin resources are advertised ({found['rdmaResources']}) but no DRA network "
            "driver or NetworkAttachmentDefinition gives pods an interface kaic can observe"
        )
    drivers = (
        ", ".join(f"{name} ({info['devices']} devices)" for name, info in sorted(slices.items())) or "none"
    )
    raise NotApplicable(
        f"no DRA network driver publishes devices (drivers: {drivers}), no {NAD_CRD} CRD, "
        "no rdma/* resource on any node"
    )


def net_pod(
    name: str,
    run: RunContext,
    chosen: hpn.Stack,
    nodes: tuple[str, ...],
    tolerations: list[dict[str, str]],
    env: dict[str, str],
) -> dict:
    container: dict[str, Any] = {
        "name": "net",
        "image": images.for_run(run.settings)["busybox"],
        "command": ["sh", "-c", hpn.SCRIPT],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "securityContext": workloads.RESTRICTED,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
    }
    body = workloads.pod(name, run.labels, [container], nodes=nodes, tolerations=tolerations)
    if chosen.kind == "dra":
        body["spec"]["resourceClaims"] = [{"name": "net", "resourceClaimTemplateName": "net"}]
        container["resources"]["claims"] = [{"name": "net"}]
    else:
        body["metadata"]["annotations"] = {hpn.NETWORKS_ANNOTATION: chosen.attachment}
    return body


def first_view(cluster: Cluster, namespace: str, name: str, timeout_s: float, evidence: Recorder) -> hpn.View:
    """The pod's first report, read from its log while it keeps running (it may be serving)."""

    def reported(pod: dict[str, Any]) -> str | None:
        if (pod.get("status") or {}).get("phase") not in ("Running", "Succeeded", "Failed"):
            return None
        log = workloads.pod_log(cluster, namespace, name)
        return log if hpn.END in log else None

    log = workloads.wait_for(
        cluster,
        workloads.pods_path(namespace, name),
        reported,
        timeout_s,
        f"pod {name} reported its interfaces",
        evidence,
    )
    evidence.add("log", name, log[-3000:])
    return hpn.parse_views(log)[0]


def peer_nodes(
    facts: Facts, chosen: hpn.Stack, container_nodes: Sequence[str], server_node: str
) -> tuple[str, ...]:
    """Other nodes a client can run on: for a DRA driver, only nodes its pools publish devices for."""
    if chosen.kind == "dra":
        pools = (facts.get("resourceSlices") or {})[chosen.driver]["pools"].values()
        container_nodes = [n for n in container_nodes if any(n in pool["nodes"] for pool in pools)]
    return tuple(n for n in container_nodes if n != server_node)


@probe(
    "high_performance_networking",
    "secondary-interface",
    test="TestKaicHighPerformanceNetworking/SecondaryInterface",
    creates=workloads.CREATES,
    images=("busybox",),
    rbac=RBAC,
    timeout_s=600,
)
def test_secondary_interface(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: High-performance networking, a working secondary interface
    Description: A pod given a network device (a claim on the driver's boolean attribute, or a
    NetworkAttachmentDefinition) MUST land on a matching device and see an interface besides its pod network,
    and that interface MUST carry traffic from another node.

    1. Detect the stack (above).
    2. A server pod claims a device by the attribute, for DraNet `"rdma" in device.attributes["dra.net"] &&
       device.attributes["dra.net"].rdma == true` (or attaches the NetworkAttachmentDefinition); every device
       allocated to it must publish the attribute as true. A node that runs no containers is then unknown.
    3. Within 180 s the pod must report an IPv4 interface besides loopback and the one holding its pod IP.
    4. Where another node that runs containers can hold such a pod (for a DRA driver, one its pools publish
       devices for), a client pod there sends 1 MiB to the secondary address: it must succeed, and the
       server's receive counter on that interface must rise by at least as much. With no such node, a
       warning says cross-node traffic was not checked.
    """
    chosen = stack(cluster, facts, run, evidence)
    evidence.add("fact", "stack", vars(chosen))
    nodes, tolerations = workloads.container_nodes(cluster, run.settings)
    if chosen.kind == "dra":
        cluster.create(
            workloads.dra_path(namespace, "resourceclaimtemplates"),
            workloads.claim_template("net", run.labels, chosen.device_class, chosen.selector()),
        )
        evidence.add("fact", "claimSelector", chosen.selector())
    # The scheduler picks the node (one with a matching device on the DRA path); it serves only if a peer
    # exists.
    server = net_pod("server", run, chosen, nodes, tolerations, {"SERVE": "1" if len(nodes) > 1 else ""})
    placed = workloads.place(cluster, namespace, server, evidence, run.settings.schedule_timeout_s)
    for device in placed.devices():
        item = workloads.slice_device(cluster, placed.node, device)
        assert item is not None, f"allocated device {device} is not published for node {placed.node}"
        evidence.add("object", f"allocated {device[2]}", item)
        assert hpn.matches(item, chosen.attribute, chosen.driver), (
            f"claim `{chosen.selector()}` got {'/'.join(device)}, "
            f"which does not publish {chosen.attribute}=true"
        )
    if not workloads.runs_containers(cluster, placed.node):
        raise Unknown(
            f"node {placed.node} runs no containers, so the pod's interfaces are not observable; the claim "
            "landed on a matching device"
        )
    view = first_view(cluster, namespace, "server", 180, evidence)
    pod_ip = cluster.get(workloads.pods_path(namespace, "server"))["status"].get("podIP", "")
    secondary = view.secondary(pod_ip)
    evidence.add("fact", "interfaces", {"all": view.addresses, "podIP": pod_ip, "secondary": secondary})
    assert secondary, f"pod on {placed.node} sees no interface besides its pod network ({view.addresses})"
    others = peer_nodes(facts, chosen, nodes, placed.node)
    if not others or len(nodes) < 2:
        evidence.warn(f"no other node can hold a {chosen.kind} network pod: cross-node traffic not checked")
        return
    interface, addresses = next(iter(secondary.items()))
    client = net_pod("client", run, chosen, others, tolerations, {"SEND_TO": addresses[0]})
    cluster.create(workloads.pods_path(namespace), client)
    done = workloads.wait_for(
        cluster,
        workloads.pods_path(namespace, "client"),
        lambda p: p if workloads.terminated(p) else None,
        180,
        "client pod finished",
        evidence,
    )
    assert done["status"]["phase"] == "Succeeded", f"client on another node could not send to {addresses[0]}"
    server = workloads.wait_for(
        cluster,
        workloads.pods_path(namespace, "server"),
        lambda p: p if workloads.terminated(p) else None,
        60,
        "server pod finished",
        evidence,
    )
    views = hpn.parse_views(workloads.pod_log(cluster, namespace, "server"))
    assert len(views) >= 2, (
        f"server reported no counters after the transfer ({server['status'].get('phase')})"
    )
    assert not (wrong := hpn.traffic_problems(views[0], views[-1], interface)), "; ".join(wrong)


@probe(
    "high_performance_networking",
    "unmatched-claim",
    test="TestKaicHighPerformanceNetworking/UnmatchedClaimStaysPending",
    creates=workloads.CREATES,
    images=("pause",),
    rbac=RBAC,
    timeout_s=180,
)
def test_unmatched_claim(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: High-performance networking, an unmatched network claim stays pending (⊖)
    Description: A pod whose network claim no device matches MUST NOT be bound, and its claim MUST NOT be
    allocated.

    1. Detect the stack (above); one without DRA claims (a NetworkAttachmentDefinition) is not-applicable.
    2. A claim template of the chosen DeviceClass selects `device.driver == "unmatched.kaic.dev"`; a pod
       claims from it.
    3. The scheduler must report FailedScheduling within `--schedule-timeout` (90 s); the pod must be unbound
       and no claim in the namespace allocated.
    """
    chosen = stack(cluster, facts, run, evidence)
    if chosen.kind != "dra":
        raise NotApplicable(f"the {chosen.kind} stack has no claims; the unmatched-claim case is DRA's")
    cluster.create(
        workloads.dra_path(namespace, "resourceclaimtemplates"),
        workloads.claim_template("net", run.labels, chosen.device_class, hpn.UNMATCHED_SELECTOR),
    )
    container: dict[str, Any] = {
        "name": "main",
        "image": images.for_run(run.settings)["pause"],
        "securityContext": workloads.RESTRICTED,
        "resources": {"requests": {}, "limits": {}, "claims": [{"name": "net"}]},
    }
    body = workloads.pod(
        "unmatched", run.labels, [container], tolerations=workloads.container_nodes(cluster, run.settings)[1]
    )
    body["spec"]["resourceClaims"] = [{"name": "net", "resourceClaimTemplateName": "net"}]
    cluster.create(workloads.pods_path(namespace), body)
    workloads.wait_refused(
        cluster,
        namespace,
        "unmatched",
        run.settings.schedule_timeout_s,
        "FailedScheduling for the unmatched network claim",
        evidence,
    )
    pod = cluster.get(workloads.pods_path(namespace, "unmatched"))
    evidence.add("event", "unmatched", workloads.events(cluster, namespace, "unmatched"))
    assert not workloads.scheduled_node(pod), f"the pod was bound to {workloads.scheduled_node(pod)}"
    for claim in cluster.list(workloads.dra_path(namespace, "resourceclaims")):
        assert not (claim.get("status") or {}).get("allocation"), f"{claim['metadata']['name']} was allocated"
