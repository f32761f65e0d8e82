"""Bodies and waits the behavioural probes share: pods, DRA claims, bounded waits that keep the events.

Every body carries the run's labels and the restricted Pod Security profile; pods have a deadline so nothing
kaic starts can run on after a killed run. Waits are bounded and put the object's events into the evidence
before they give up, so a timeout says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kaic.areas.accelerators import (
    PROFILES,
    SCRIPT,
    AcceleratorProfile,
    DeviceReport,
    Selection,
    parse_report,
)
from kaic.areas.policy import Guard, untolerated
from kaic.kube.client import Cluster
from kaic.kube.resourceslices import current_slices
from kaic.probe import Rule
from kaic.results.outcomes import ProbeOutcome, Unknown
from kaic.results.report import Recorder
from kaic.settings import Settings

DRA = "/apis/resource.k8s.io/v1"
POD_DEADLINE_S = 600
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CLAIM_REQUEST = "device"
TEMPLATE = "one-device"
# What a probe that runs accelerator pods creates and needs.
CREATES = ("pods", "resource.k8s.io/resourceclaims", "resource.k8s.io/resourceclaimtemplates")
RBAC = (
    Rule("", "pods", ("create", "get", "list", "delete")),
    Rule("", "events", ("list",)),
    Rule("", "nodes", ("get", "list"), namespaced=False),
    Rule("resource.k8s.io", "resourceclaims", ("create", "get", "list", "delete")),
    Rule("resource.k8s.io", "resourceclaimtemplates", ("create", "get", "list", "delete")),
    Rule("resource.k8s.io", "resourceslices", ("list",), namespaced=False),
)


def pods_path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/pods" + (f"/{name}" if name else "")


def dra_path(namespace: str, resource: str, name: str = "") -> str:
    return f"{DRA}/namespaces/{namespace}/{resource}" + (f"/{name}" if name else "")


def claim_spec(device_class: str, count: int = 1, selector: str | None = None) -> dict[str, Any]:
    """The inner ResourceClaim spec (v1: the request's fields sit under `exactly`)."""
    exactly: dict[str, Any] = {"deviceClassName": device_class, "count": count}
    if selector:
        exactly["selectors"] = [{"cel": {"expression": selector}}]
    return {"devices": {"requests": [{"name": CLAIM_REQUEST, "exactly": exactly}]}}


def claim(
    name: str, labels: Mapping[str, str], device_class: str, selector: str | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": claim_spec(device_class, selector=selector),
    }


def claim_template(
    name: str, labels: Mapping[str, str], device_class: str, selector: str | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {"metadata": {"labels": dict(labels)}, "spec": claim_spec(device_class, selector=selector)},
    }


def identity_container(
    name: str, image: str, profile: AcceleratorProfile, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A container that runs the identity script and exits; its result is the termination message."""
    return {
        "name": name,
        "image": image,
        "command": ["sh", "-c", SCRIPT],
        "env": profile.script_env() + [{"name": k, "value": v} for k, v in (env or {}).items()],
        "securityContext": RESTRICTED,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
    }


def give_device(
    pod_body: dict[str, Any],
    container: dict[str, Any],
    selection: Selection,
    *,
    template: str = "",
    claim: str = "",
) -> None:
    """Let `container` use one device: the pod's claim `device` from a template or a shared claim (DRA), or a
    limit on the extended resource (device plugin)."""
    if selection.path == "dra":
        source = {"resourceClaimTemplateName": template} if template else {"resourceClaimName": claim}
        claims = pod_body["spec"].setdefault("resourceClaims", [])
        if not claims:
            claims.append({"name": CLAIM_REQUEST, **source})
        container["resources"]["claims"] = [{"name": CLAIM_REQUEST}]
    else:
        container["resources"]["limits"][selection.extended_resource] = "1"
        container["resources"]["requests"][selection.extended_resource] = "1"


def device_template(cluster: Cluster, namespace: str, labels: Mapping[str, str], selection: Selection) -> str:
    """On the DRA path, the template every one-device pod claims from; "" on the device-plugin path."""
    if selection.path != "dra":
        return ""
    cluster.create(
        dra_path(namespace, "resourceclaimtemplates"),
        claim_template(TEMPLATE, labels, selection.device_class),
    )
    return TEMPLATE


def identity_pod(
    name: str,
    labels: Mapping[str, str],
    selection: Selection,
    image: str,
    devices: Mapping[str, bool],
    *,
    template: str = "",
    claim: str = "",
    env: Mapping[str, str] | None = None,
    nodes: tuple[str, ...] = (),
    runtime_class: str | None = None,
) -> dict[str, Any]:
    """A pod of identity containers on the selection's nodes; `devices` says which containers get a device."""
    containers = {c: identity_container(c, image, selection.profile, env) for c in devices}
    body = pod(
        name,
        labels,
        list(containers.values()),
        nodes=nodes or selection.nodes,
        tolerations=selection.tolerations(),
        runtime_class=runtime_class,
    )
    for container, wanted in devices.items():
        if wanted:
            give_device(body, containers[container], selection, template=template, claim=claim)
    return body


def pod(
    name: str,
    labels: Mapping[str, str],
    containers: list[dict[str, Any]],
    *,
    nodes: tuple[str, ...] = (),
    tolerations: list[dict[str, str]] | None = None,
    runtime_class: str | None = None,
) -> dict[str, Any]:
    """A one-shot pod limited to `nodes` by node affinity (never spec.nodeName: DRA needs the scheduler)."""
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": POD_DEADLINE_S,
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers,
        "tolerations": tolerations or [],
        "terminationGracePeriodSeconds": 1,
    }
    if nodes:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/hostname", "operator": "In", "values": list(nodes)}
                            ]
                        }
                    ]
                }
            }
        }
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": spec,
    }


def events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, str]]:
    """The events about one object, oldest first, trimmed to what explains its state."""
    items = cluster.list(
        f"/api/v1/namespaces/{namespace}/events", fieldSelector=f"involvedObject.name={name}"
    )
    return [
        {"type": e.get("type", ""), "reason": e.get("reason", ""), "message": e.get("message", "")}
        for e in sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    ]


def wait_for(
    cluster: Cluster,
    path: str,
    check: Callable[[dict[str, Any]], Any],
    timeout_s: float,
    what: str,
    evidence: Recorder,
) -> Any:
    """Poll `path` until `check(obj)` is truthy and return that; on timeout record the events, then raise. A
    pod that the cluster's policy or an unpullable image holds ends the wait at once
    (`kaic.areas.policy.Guard`), before `check` is asked, so no check can take policy for the behaviour it
    waits for."""
    namespace, name = path.split("/namespaces/", 1)[-1].split("/")[0], path.rsplit("/", 1)[-1]
    guard = Guard(cluster, namespace)
    deadline = time.monotonic() + timeout_s
    while True:
        obj = cluster.get_or_none(path)
        try:
            if obj is not None and obj.get("kind") == "Pod":
                guard.pod(obj)
            if obj is not None and (result := check(obj)):
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout_s:.0f}s (events recorded)")
        except (ProbeOutcome, TimeoutError):
            evidence.add("event", f"{name} events", events(cluster, namespace, name))
            if obj is not None:
                evidence.add("object", name, obj.get("status") or {})
            raise
        # A poll, not a watch: checks also read what no watch of the object reports (its events, a log).
        time.sleep(0.5)


def wait_refused(
    cluster: Cluster, namespace: str, name: str, timeout_s: float, what: str, evidence: Recorder
) -> str:
    """Wait for the scheduler to refuse a pod (its FailedScheduling message), as negative probes expect; a
    refusal the cluster's policy explains is not the behaviour under test (Unknown, naming it)."""
    path = pods_path(namespace, name)

    def refusal(_: dict[str, Any]) -> str:
        return next(
            (
                e["message"]
                for e in reversed(events(cluster, namespace, name))
                if e["reason"] == "FailedScheduling"
            ),
            "",
        )

    message = wait_for(cluster, path, refusal, timeout_s, what, evidence)
    Guard(cluster, namespace).pod(cluster.get(path), message)
    return str(message)


def scheduled_node(obj: dict[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("nodeName") or "")


def terminated(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def container_report(pod_obj: dict[str, Any], container: str) -> DeviceReport:
    """The identity script's result for one container of a finished pod, from its termination message (the
    kubelet falls back to the log tail on error). A container that reports nothing fails the probe: on a node
    that runs containers silence is a broken workload, never "unknown"."""
    for status in (pod_obj.get("status") or {}).get("containerStatuses") or []:
        if status["name"] == container:
            message = ((status.get("state") or {}).get("terminated") or {}).get("message") or ""
            report = parse_report(message)
            assert report is not None, (
                f"container {container} of {pod_obj['metadata']['name']} reported nothing"
            )
            return report
    raise AssertionError(f"pod {pod_obj['metadata']['name']} has no status for container {container}")


def slice_device(cluster: Cluster, node: str, device: tuple[str, str, str]) -> dict[str, Any] | None:
    """The ResourceSlice device behind an allocation result, if the node's slices publish it."""
    driver, pool, name = device
    listed = cluster.list(f"{DRA}/resourceslices", fieldSelector=f"spec.nodeName={node},spec.driver={driver}")
    for rs in current_slices(listed):
        if rs["spec"]["pool"]["name"] == pool:
            for item in rs["spec"].get("devices") or []:
                if item["name"] == name:
                    return dict(item)
    return None


def allocated_identities(
    cluster: Cluster, placement: Placement, profile: AcceleratorProfile
) -> tuple[str, ...]:
    """What the identity script should report for the placement's allocated devices; fails on an unpublished
    one."""
    identities = []
    for device in placement.devices():
        item = slice_device(cluster, placement.node, device)
        assert item is not None, f"allocated device {device} is not published for node {placement.node}"
        identities.append(profile.identity_of(item))
    return tuple(identities)


def runs_containers(cluster: Cluster, node: str) -> bool:
    """Decided from node facts (kwok marks its nodes), never from a pod that stayed silent."""
    from kaic.kube.facts import node_summary

    return bool(node_summary(cluster.get(f"/api/v1/nodes/{node}"))["runsContainers"])


def container_nodes(cluster: Cluster, settings: Settings) -> tuple[tuple[str, ...], list[dict[str, str]]]:
    """Ready, schedulable nodes that run containers, and what kaic's pods there tolerate: every accelerator
    profile's taints and the run's own (--toleration), never a taint it merely found (a dedicated node is the
    administrator's to open). Nodes tainted otherwise are left out while others remain; when only they remain
    they are returned, so the scheduler's refusal names them and their taints (`kaic.areas.policy.Guard`)."""
    from kaic.kube.facts import node_summary

    tolerations = [*(t for p in PROFILES.values() for t in p.tolerations()), *settings.tolerations]
    nodes = [node_summary(n) for n in cluster.list("/api/v1/nodes")]
    usable = [n for n in nodes if n["ready"] and not n["unschedulable"] and n["runsContainers"]]
    open_to_kaic = [n for n in usable if not untolerated(n["taints"], tolerations)]
    return tuple(sorted(n["name"] for n in open_to_kaic or usable)), tolerations


def pod_log(
    cluster: Cluster, namespace: str, name: str, container: str = "", since_s: int | None = None
) -> str:
    """A container's log (pods/log); results travel in logs because exec is often forbidden."""
    query = {"container": container or None, "sinceSeconds": since_s}
    data = cluster.request_bytes("GET", f"{pods_path(namespace, name)}/log", query=query)
    return data.decode(errors="replace")


@dataclass(frozen=True)
class Placement:
    """A pod the scheduler bound, with each of its DRA claims allocated and reserved for it."""

    pod: dict[str, Any]
    node: str
    claims: dict[str, dict[str, Any]]  # pod claim name -> ResourceClaim

    def devices(self) -> list[tuple[str, str, str]]:
        """(driver, pool, device) of every allocated device."""
        return [
            (r["driver"], r["pool"], r["device"])
            for c in self.claims.values()
            for r in c["status"]["allocation"]["devices"]["results"]
        ]


def reserved_for(claim_obj: dict[str, Any], uid: str) -> bool:
    status = claim_obj.get("status") or {}
    return bool(status.get("allocation")) and any(
        r.get("uid") == uid for r in status.get("reservedFor") or []
    )


def claim_names(pod_obj: dict[str, Any]) -> dict[str, str] | None:
    """Pod claim name -> ResourceClaim name; None until the controller has made every template's claim."""
    names = {c["name"]: c.get("resourceClaimName") for c in pod_obj["spec"].get("resourceClaims") or []}
    for status in (pod_obj.get("status") or {}).get("resourceClaimStatuses") or []:
        names[status["name"]] = status.get("resourceClaimName")
    return names if all(names.values()) else None


def place(
    cluster: Cluster, namespace: str, body: dict[str, Any], evidence: Recorder, timeout_s: float
) -> Placement:
    """Create the pod and wait until it is bound and every claim it uses is allocated and reserved for it,
    each within `timeout_s` (the run's `schedule_timeout_s`)."""
    name = body["metadata"]["name"]
    path = pods_path(namespace, name)
    cluster.create(pods_path(namespace), body)
    pod_obj = wait_for(
        cluster,
        path,
        lambda p: p if scheduled_node(p) and claim_names(p) is not None else None,
        timeout_s,
        f"pod {name} bound by the scheduler",
        evidence,
    )
    return placement_of(cluster, namespace, pod_obj, evidence, timeout_s)


def placement_of(
    cluster: Cluster, namespace: str, pod_obj: dict[str, Any], evidence: Recorder, timeout_s: float
) -> Placement:
    """A bound pod's placement, once every claim it uses is allocated and reserved for it."""
    name = pod_obj["metadata"]["name"]
    claims = {}
    for ref, claim_name in (claim_names(pod_obj) or {}).items():
        claims[ref] = wait_for(
            cluster,
            dra_path(namespace, "resourceclaims", claim_name),
            lambda c: c if reserved_for(c, pod_obj["metadata"]["uid"]) else None,
            timeout_s,
            f"claim {claim_name} allocated and reserved for pod {name}",
            evidence,
        )
        evidence.add("object", f"claim {claim_name}", claims[ref]["status"])
    return Placement(pod_obj, scheduled_node(pod_obj), claims)


def observe(
    cluster: Cluster,
    namespace: str,
    placement: Placement,
    api_result: str,
    evidence: Recorder,
    timeout_s: float = 300,
) -> dict[str, Any]:
    """Wait for a placed pod to finish. On a node that runs no containers (kwok) what a container sees cannot
    be observed: Unknown, naming what the API already proved (`api_result`)."""
    if not runs_containers(cluster, placement.node):
        raise Unknown(
            f"node {placement.node} runs no containers, so what the containers see is not observable; "
            f"{api_result}"
        )
    name = placement.pod["metadata"]["name"]
    return wait_for(
        cluster,
        pods_path(namespace, name),
        lambda p: p if terminated(p) else None,
        timeout_s,
        f"pod {name} finished",
        evidence,
    )


class PodWatch:
    """The pods matching a label selector: listed once, then followed by watches from that list's version, so
    no change after the list is missed (start it before creating what it should see). Remembers every pod that
    was ever bound, even one deleted or finished since, and the most pods that held a node at one time."""

    def __init__(self, cluster: Cluster, namespace: str, selector: str, owners: tuple[str, ...] = ()) -> None:
        """`owners`: the objects whose controllers make the pods (Job, Deployment, …), so that their refusal
        by admission or quota ends a wait at once (`kaic.areas.policy.Guard.creations`)."""
        self.cluster, self.namespace, self.selector = cluster, namespace, selector
        self.guard = Guard(cluster, namespace, owners)
        page = cluster.get(pods_path(namespace), labelSelector=selector)
        self.version = page["metadata"]["resourceVersion"]
        self.pods: dict[str, dict[str, Any]] = {}
        self.ever_bound: set[str] = set()
        self.peak = 0  # most pods bound and not yet finished at once
        for pod_obj in page.get("items") or []:
            self._saw("ADDED", pod_obj)

    def _saw(self, kind: str, pod_obj: dict[str, Any]) -> None:
        name = pod_obj["metadata"]["name"]
        if kind == "DELETED":
            self.pods.pop(name, None)
        else:
            self.pods[name] = pod_obj
        if scheduled_node(pod_obj):
            self.ever_bound.add(name)
        self.peak = max(
            self.peak, sum(1 for p in self.pods.values() if scheduled_node(p) and not terminated(p))
        )

    def until(self, done: Callable[[PodWatch], bool], timeout_s: float) -> bool:
        """Follow changes until `done(self)` holds (True) or `timeout_s` passes (False). Pods held by the
        cluster's policy or an unpullable image end it at once (`kaic.areas.policy.Guard`), before `done` is
        asked; with owners, their controllers' refusals are read at least every Guard.EVENTS_EVERY_S."""
        deadline = time.monotonic() + timeout_s
        while not self._done(done):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            path = pods_path(self.namespace)
            span = min(left, Guard.EVENTS_EVERY_S) if self.guard.owners else left
            events = self.cluster.watch(path, span, self.version, labelSelector=self.selector)
            try:
                for kind, obj in events:
                    self.version = obj["metadata"]["resourceVersion"]
                    self._saw(kind, obj)
                    if self._done(done) or time.monotonic() > deadline:
                        break
            finally:
                events.close()
        return True

    def _done(self, done: Callable[[PodWatch], bool]) -> bool:
        self.guard.pods(p for p in self.pods.values() if not p["metadata"].get("deletionTimestamp"))
        return done(self)
