"""Cluster facts, discovered once per run with paginated lists and no per-node calls.

Facts are read-only observations (what is served, installed and advertised); probes judge them. A section
that cannot be read is recorded under `errors` with the reason, never silently left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kaic.kube import resourceslices
from kaic.kube.conditions import is_ready, is_true
from kaic.probe import Rule

if TYPE_CHECKING:
    from kaic.kube.client import Cluster

STANDARD_RESOURCES = frozenset({"cpu", "memory", "pods", "ephemeral-storage"})
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"

# What discovery reads; preflight checks these and the RBAC examples include them.
RULES = (
    Rule("", "namespaces", ("get",), namespaced=False),
    Rule("", "nodes", ("list",), namespaced=False),
    Rule("resource.k8s.io", "deviceclasses", ("list",), namespaced=False),
    Rule("resource.k8s.io", "resourceslices", ("list",), namespaced=False),
    Rule("apiextensions.k8s.io", "customresourcedefinitions", ("list",), namespaced=False),
    Rule("apiregistration.k8s.io", "apiservices", ("list",), namespaced=False),
    Rule("gateway.networking.k8s.io", "gatewayclasses", ("list",), namespaced=False),
    Rule("node.k8s.io", "runtimeclasses", ("list",), namespaced=False),
)


def _groups(cluster: Cluster) -> dict[str, Any]:
    groups: dict[str, Any] = {"": {"versions": ["v1"], "preferred": "v1"}}
    for group in (cluster.get("/apis") or {}).get("groups") or []:
        groups[group["name"]] = {
            "versions": [v["version"] for v in group.get("versions") or []],
            "preferred": (group.get("preferredVersion") or {}).get("version", ""),
        }
    return groups


def node_summary(node: dict[str, Any]) -> dict[str, Any]:
    meta, status = node.get("metadata") or {}, node.get("status") or {}
    extended = {
        name: qty
        for name, qty in (status.get("allocatable") or {}).items()
        if name not in STANDARD_RESOURCES and not name.startswith("hugepages-")
    }
    annotations = meta.get("annotations") or {}
    return {
        "name": meta.get("name", ""),
        "ready": is_ready(node),
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
        "labels": meta.get("labels") or {},
        "taints": (node.get("spec") or {}).get("taints") or [],
        "extendedResources": extended,
        # kwok's own marker: such a node has no kubelet and runs no containers
        "runsContainers": annotations.get(KWOK_NODE_ANNOTATION) != "fake",
        "containerRuntime": (status.get("nodeInfo") or {}).get("containerRuntimeVersion", ""),
    }


def _nodes(cluster: Cluster, device_nodes: set[str]) -> dict[str, Any]:
    """Counts, plus the summaries of accelerator nodes: those with extended resources and those named only by
    a ResourceSlice (DRA drivers advertise no extended resource), so probes never list every node again."""
    total = ready = 0
    accelerated, dra_only = [], []
    for node in cluster.list("/api/v1/nodes"):
        total += 1
        info = node_summary(node)
        ready += info["ready"]
        if info["extendedResources"]:
            accelerated.append(info)
        elif info["name"] in device_nodes:
            dra_only.append(info)
    return {
        "total": total,
        "ready": ready,
        "withExtendedResources": accelerated,
        "withDraDevicesOnly": dra_only,
    }


def _resource_api(groups: dict[str, Any]) -> str | None:
    """The preferred served resource.k8s.io version, v1 first (beta-only is a finding, not the norm)."""
    versions = (groups.get("resource.k8s.io") or {}).get("versions") or []
    for version in ("v1", "v1beta2", "v1beta1"):
        if version in versions:
            return version
    return None


def _device_classes(cluster: Cluster, version: str) -> list[dict[str, Any]]:
    return [
        {
            "name": dc["metadata"]["name"],
            "selectors": [
                (s.get("cel") or {}).get("expression", "")
                for s in (dc.get("spec") or {}).get("selectors") or []
            ],
            "extendedResourceName": (dc.get("spec") or {}).get("extendedResourceName", ""),
        }
        for dc in cluster.list(f"/apis/resource.k8s.io/{version}/deviceclasses")
    ]


def _resource_slices(cluster: Cluster, version: str) -> dict[str, Any]:
    return resourceslices.inventory(cluster.list(f"/apis/resource.k8s.io/{version}/resourceslices"))


def _crds(cluster: Cluster) -> dict[str, Any]:
    return {
        crd["metadata"]["name"]: {
            "versions": [v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")],
            "established": is_true(crd, "Established"),
            "bundleVersion": (crd["metadata"].get("annotations") or {}).get(
                "gateway.networking.k8s.io/bundle-version", ""
            ),
        }
        for crd in cluster.list("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    }


def _api_services(cluster: Cluster) -> list[dict[str, Any]]:
    """Only aggregated (non-local) APIServices: metrics APIs and other extensions."""
    return [
        {
            "name": svc["metadata"]["name"],
            "available": is_true(svc, "Available"),
            "service": "{namespace}/{name}".format(**svc["spec"]["service"]),
        }
        for svc in cluster.list("/apis/apiregistration.k8s.io/v1/apiservices")
        if (svc.get("spec") or {}).get("service")
    ]


def _gateway_classes(cluster: Cluster, groups: dict[str, Any]) -> list[dict[str, Any]] | None:
    if "v1" not in (groups.get("gateway.networking.k8s.io") or {}).get("versions", []):
        return None
    return [
        {
            "name": gc["metadata"]["name"],
            "controllerName": (gc.get("spec") or {}).get("controllerName", ""),
            "accepted": is_true(gc, "Accepted"),
            "supportedFeatures": [
                f["name"] if isinstance(f, dict) else f
                for f in (gc.get("status") or {}).get("supportedFeatures") or []
            ],
        }
        for gc in cluster.list("/apis/gateway.networking.k8s.io/v1/gatewayclasses")
    ]


def _runtime_classes(cluster: Cluster) -> list[dict[str, str]]:
    return [
        {"name": rc["metadata"]["name"], "handler": rc.get("handler", "")}
        for rc in cluster.list("/apis/node.k8s.io/v1/runtimeclasses")
    ]


def slice_nodes(facts: Mapping[str, Any]) -> set[str]:
    """The nodes discovered ResourceSlices name: where DRA devices are, whatever a node advertises."""
    return {
        name
        for driver in (facts.get("resourceSlices") or {}).values()
        for pool in driver["pools"].values()
        for name in pool["nodes"]
    }


def discover(cluster: Cluster) -> dict[str, Any]:
    """Every fact section; an unreadable section becomes an entry in `errors`, not an exception."""
    from kaic.kube.client import describe_error  # here: planning reads RULES without the kubernetes client

    facts: dict[str, Any] = {"errors": {}}

    def section(name: str, read: Callable[[], Any]) -> None:
        try:
            facts[name] = read()
        except Exception as exc:  # noqa: BLE001 - each section fails alone, with its reason recorded
            facts[name] = None
            facts["errors"][name] = describe_error(exc)

    section("version", lambda: cluster.get("/version"))
    section("clusterUID", lambda: cluster.get("/api/v1/namespaces/kube-system")["metadata"]["uid"])
    section("apiGroups", lambda: _groups(cluster))
    groups = facts["apiGroups"] or {}
    dra = _resource_api(groups)
    facts["dra"] = {
        "servedVersions": (groups.get("resource.k8s.io") or {}).get("versions", []),
        "version": dra,
    }
    if dra:
        section("deviceClasses", lambda: _device_classes(cluster, dra))
        section("resourceSlices", lambda: _resource_slices(cluster, dra))
    device_nodes = slice_nodes(facts)
    section("nodes", lambda: _nodes(cluster, device_nodes))
    section("crds", lambda: _crds(cluster))
    section("apiServices", lambda: _api_services(cluster))
    section("gatewayClasses", lambda: _gateway_classes(cluster, groups))
    section("runtimeClasses", lambda: _runtime_classes(cluster))
    return facts
