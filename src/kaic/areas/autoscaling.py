"""Cluster autoscaling: autoscaler detection and the pure checks of the upstream contract.

The contract is upstream's TestAcceleratorClusterAutoscaling (kubernetes-sigs/ai-conformance): on an isolated
pool of N >= 1 nodes with one accelerator each, N baseline pods fill the pool, pod N+1 is Unschedulable, a new
pool node appears and runs it, and once it is deleted the pool returns to its N baseline nodes. A Karpenter
NodePool has no minimum and commonly starts empty: there N = 0 (no baseline pods) and the pool must return to
zero nodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from kaic.kube.conditions import is_ready

CA_STATUS = ("kube-system", "cluster-autoscaler-status")
PROVISIONING_REQUESTS = "provisioningrequests.autoscaling.x-k8s.io"
KARPENTER_CRDS = ("nodepools.karpenter.sh", "nodeclaims.karpenter.sh")
CAPI_CRDS = (
    "machinedeployments.cluster.x-k8s.io",
    "machinesets.cluster.x-k8s.io",
    "machinepools.cluster.x-k8s.io",
)
# CA's deletion mark on a node it is removing.
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
_QUALIFIED = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")


def parse_pool_label(value: str) -> tuple[str, str]:
    """`key=value` as upstream takes it: exactly one `=`, a qualified key, a valid label value."""
    if value.count("=") != 1:
        raise ValueError(f"expected exactly one key=value pair, got {value!r}")
    key, label = value.split("=")
    if not _QUALIFIED.match(key) or not _VALUE.match(label):
        raise ValueError(f"{value!r} is not a valid label key=value")
    return key, label


def ca_status(text: str) -> Any:
    """The gist of CA's status ConfigMap: overall and per node group health, min and max; YAML since CA 1.30,
    free text before (kept, shortened)."""
    try:
        status = yaml.safe_load(text)
    except yaml.YAMLError:
        status = None
    if not isinstance(status, dict) or "clusterWide" not in status:
        return text[:1000]
    return {
        "autoscalerStatus": status.get("autoscalerStatus", ""),
        "health": ((status.get("clusterWide") or {}).get("health") or {}).get("status", ""),
        "nodeGroups": [
            {
                "name": g.get("name", ""),
                "minSize": (g.get("health") or {}).get("minSize"),
                "maxSize": (g.get("health") or {}).get("maxSize"),
                "health": (g.get("health") or {}).get("status", ""),
            }
            for g in status.get("nodeGroups") or []
        ],
    }


def is_cluster_autoscaler(deployment: Mapping[str, Any]) -> bool:
    """A Deployment that runs the Cluster Autoscaler, by name or by image."""
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or []
    return "cluster-autoscaler" in deployment["metadata"]["name"] or any(
        "cluster-autoscaler" in c.get("image", "") for c in containers
    )


def found_autoscalers(detected: Mapping[str, Any]) -> list[str]:
    """The node autoscalers a detection record shows (see conformance/test_autoscaling.py)."""
    found = []
    if detected.get("clusterAutoscalerStatus"):
        found.append("Cluster Autoscaler (status ConfigMap kube-system/cluster-autoscaler-status)")
    if detected.get("clusterAutoscalerDeployments"):
        found.append(
            "Cluster Autoscaler Deployments in kube-system "
            f"{sorted(detected['clusterAutoscalerDeployments'])}"
        )
    if detected.get("karpenterNodePools"):
        found.append(f"Karpenter NodePools {sorted(detected['karpenterNodePools'])}")
    if detected.get("clusterApiAutoscaled"):
        found.append(
            f"Cluster API groups with autoscaler annotations {sorted(detected['clusterApiAutoscaled'])}"
        )
    return found


def trail(detected: Mapping[str, Any]) -> str:
    """What was looked for, in words, for a not-applicable reason."""
    return (
        "no node autoscaler found: no ConfigMap kube-system/cluster-autoscaler-status, "
        "no cluster-autoscaler Deployment in kube-system, "
        f"Karpenter CRDs {'present, no NodePool' if detected.get('karpenterCrds') else 'absent'}, "
        "Cluster API CRDs "
        f"{'present, no autoscaler annotations' if detected.get('clusterApiCrds') else 'absent'}, "
        f"ProvisioningRequest CRD {'present' if detected.get('provisioningRequestCrd') else 'absent'}"
    )


def karpenter_pools(nodepools: Iterable[Mapping[str, Any]], key: str, value: str) -> list[str]:
    """The Karpenter NodePools whose nodes carry `key=value`: a template label, or a requirement that allows
    that value alone (Karpenter labels its nodes with both)."""

    def labels_pool(spec: Mapping[str, Any]) -> bool:
        template = spec.get("template") or {}
        if ((template.get("metadata") or {}).get("labels") or {}).get(key) == value:
            return True
        return any(
            r.get("key") == key and r.get("operator") == "In" and r.get("values") == [value]
            for r in (template.get("spec") or {}).get("requirements") or []
        )

    return sorted(p["metadata"]["name"] for p in nodepools if labels_pool(p.get("spec") or {}))


def usable(node: Mapping[str, Any]) -> bool:
    """Ready, schedulable and not being removed by the autoscaler."""
    spec = node.get("spec") or {}
    marked = any(t.get("key") == TO_BE_DELETED_TAINT for t in spec.get("taints") or [])
    return is_ready(node) and not spec.get("unschedulable") and not marked


def pool_nodes(nodes: Iterable[Mapping[str, Any]], key: str, value: str) -> dict[str, str]:
    """Usable nodes of the pool: name -> uid."""
    return {
        n["metadata"]["name"]: n["metadata"]["uid"]
        for n in nodes
        if (n["metadata"].get("labels") or {}).get(key) == value and usable(n)
    }


def requests_resource(pod: Mapping[str, Any], resource: str) -> bool:
    containers = [*(pod["spec"].get("initContainers") or []), *pod["spec"]["containers"]]
    return any(
        resource in ((c.get("resources") or {}).get(kind) or {})
        for c in containers
        for kind in ("requests", "limits")
    )


def foreign_workloads(
    pods: Iterable[Mapping[str, Any]],
    own_namespace: str,
    pool: Mapping[str, str],
    key: str,
    value: str,
    resource: str,
) -> list[str]:
    """Why the pool is not isolated: other pods on it, or pending pods aimed at it or at its accelerator.
    Daemon and mirror pods are part of every node and do not count."""
    foreign = []
    for pod in pods:
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
        if meta["namespace"] == own_namespace or meta.get("deletionTimestamp"):
            continue
        if status.get("phase") in ("Succeeded", "Failed"):
            continue
        owners = meta.get("ownerReferences") or []
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}) or any(
            o.get("kind") == "DaemonSet" and o.get("controller") for o in owners
        ):
            continue
        where = f"{meta['namespace']}/{meta['name']}"
        node = spec.get("nodeName") or ""
        if node in pool:
            foreign.append(f"{where} runs on pool node {node}")
        elif not node and (spec.get("nodeSelector") or {}).get(key) == value:
            foreign.append(f"{where} is pending for the pool")
        elif not node and requests_resource(pod, resource):
            foreign.append(f"{where} is pending for {resource}")
    return sorted(foreign)


def scaled_down(current: Mapping[str, str], baseline: Mapping[str, str], added: tuple[str, str]) -> bool:
    """The pool is its baseline again: exactly the baseline nodes (same uids) usable, the added node not."""
    return dict(current) == dict(baseline) and current.get(added[0]) != added[1]


def back_to_baseline(
    nodes: Iterable[Mapping[str, Any]],
    key: str,
    value: str,
    baseline: Mapping[str, str],
    added: tuple[str, str],
) -> str:
    """How the pool is back to its baseline: "" while it is not; "deleted" once no Node of the added node's
    name is left (a deleted node cannot return); "unusable" while it is still there, marked for deletion,
    cordoned or NotReady (a mark that can be withdrawn)."""
    nodes = list(nodes)
    if not scaled_down(pool_nodes(nodes, key, value), baseline, added):
        return ""
    return "unusable" if any(n["metadata"]["name"] == added[0] for n in nodes) else "deleted"
