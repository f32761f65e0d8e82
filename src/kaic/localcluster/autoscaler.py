"""The upstream Cluster Autoscaler with its kwok cloud provider, for the `autoscaling` scenarios.

CA's kwok provider reads node templates from a ConfigMap and creates or deletes Node objects for each
node group; our kwok makes them Ready because they carry `kwok.x-k8s.io/node: fake`. The accelerator
group holds one-GPU nodes (the simulated profile's extended resource), min..max from the template's
annotations, and CA creates the first `min` nodes itself (`--enforce-node-group-min-size`). Timings are
short so a scale-up and the scale-down after it take a minute or two.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kaic.kube.conditions import is_ready
from kaic.localcluster import topology

BINARY = "cluster-autoscaler"
# The ProvisioningRequest CRD of the same CA release, expected next to the binary.
PROVISIONING_REQUEST_CRD = "provisioningrequests.autoscaling.x-k8s.io.yaml"
NAMESPACE = "kube-system"
STATUS_CONFIGMAP = "cluster-autoscaler-status"
PROVIDER_CONFIGMAP = "kwok-provider-config"
TEMPLATES_CONFIGMAP = "kwok-provider-templates"
# Annotations CA's kwok provider reads on a template node.
GROUP_ANNOTATION = "cluster-autoscaler.kwok.nodegroup/name"
MIN_ANNOTATION = "cluster-autoscaler.kwok.nodegroup/min-count"
MAX_ANNOTATION = "cluster-autoscaler.kwok.nodegroup/max-count"
# Must lie within min..max (the provider exits otherwise); CA then counts the nodes it finds.
DESIRED_ANNOTATION = "cluster-autoscaler.kwok.nodegroup/desired-count"
# Node names are "<group>-<5 random characters>".
GROUP = "kaic-autoscale"


@dataclass(frozen=True)
class AutoscaledPool:
    """One CA node group of one-accelerator nodes; `max_nodes_total` caps the whole cluster (0: no cap)."""

    min_size: int = 1
    max_size: int = 2
    gpus_per_node: int = 1
    max_nodes_total: int = 0

    @property
    def label(self) -> str:
        """The `--autoscaler-node-pool-label` value that names this pool."""
        return topology.AUTOSCALED_POOL_LABEL


def template_node(pool: AutoscaledPool) -> dict[str, Any]:
    """A node like the device-plugin pool's, with one GPU. No hostname label: CA copies the template's
    labels verbatim onto every node it creates."""
    resources = {**topology.NODE_RESOURCES, topology.EXTENDED_RESOURCE: str(pool.gpus_per_node)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": GROUP,
            "labels": {
                "type": "kwok",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": topology.instance_type(pool.gpus_per_node),
                "topology.kubernetes.io/zone": topology.ZONE,
                topology.POOL_LABEL: topology.AUTOSCALED_POOL,
                **topology.DEVICE_PLUGIN_LABELS,
            },
            "annotations": {
                GROUP_ANNOTATION: GROUP,
                MIN_ANNOTATION: str(pool.min_size),
                MAX_ANNOTATION: str(pool.max_size),
                DESIRED_ANNOTATION: str(pool.min_size),
            },
        },
        "status": {"capacity": resources, "allocatable": resources},
    }


def config_maps(pool: AutoscaledPool) -> list[dict[str, Any]]:
    """The kwok provider's config (node groups from our annotation, no provider taint) and its templates."""
    config = {
        "apiVersion": "v1alpha1",
        "readNodesFrom": "configmap",
        "nodegroups": {"fromNodeAnnotationKey": GROUP_ANNOTATION},
        "nodes": {"skipTaint": True},
        "configmap": {"name": TEMPLATES_CONFIGMAP},
    }
    templates = {"apiVersion": "v1", "kind": "List", "items": [template_node(pool)]}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": data,
        }
        for name, data in (
            (PROVIDER_CONFIGMAP, {"config": yaml.safe_dump(config)}),
            (TEMPLATES_CONFIGMAP, {"templates": yaml.safe_dump(templates)}),
        )
    ]


def flags(pool: AutoscaledPool, kubeconfig: Path, port: int) -> list[str]:
    """Loop every 2 s; a node idle for 10 s goes, 10 s after the last scale-up."""
    result = [
        "--cloud-provider=kwok",
        f"--kubeconfig={kubeconfig}",
        f"--namespace={NAMESPACE}",
        "--leader-elect=false",
        f"--address=127.0.0.1:{port}",
        "--scan-interval=2s",
        "--enforce-node-group-min-size=true",
        "--scale-down-unneeded-time=10s",
        "--scale-down-delay-after-add=10s",
        "--scale-down-delay-after-delete=0s",
        "--scale-down-delay-after-failure=5s",
        "--max-node-provision-time=2m",
        "--enable-provisioning-requests=true",
        "--v=2",
    ]
    if pool.max_nodes_total:
        result.append(f"--max-nodes-total={pool.max_nodes_total}")
    return result


def env(kubeconfig: Path) -> dict[str, str]:
    """The kwok provider builds its own client from $KUBECONFIG in local mode and reads its ConfigMaps
    from $POD_NAMESPACE."""
    return {"KWOK_PROVIDER_MODE": "local", "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": NAMESPACE}


def group_nodes(nodes: list[dict[str, Any]]) -> list[str]:
    """Names of the Ready nodes CA made for the group."""
    return [
        n["metadata"]["name"]
        for n in nodes
        if (n["metadata"].get("annotations") or {}).get(GROUP_ANNOTATION) == GROUP and is_ready(n)
    ]
