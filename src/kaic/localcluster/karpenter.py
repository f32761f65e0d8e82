"""Karpenter with its kwok cloud provider (cluster/karpenter, upstream's `kwok/` main), for the `karpenter`
scenarios.

Karpenter runs on this host against the API server. Its instance types come from a file: one type shaped like
the device-plugin pool's nodes with a single GPU. One KWOKNodeClass and one NodePool offer only that type,
labelled as the autoscaled pool, so the pool starts at zero nodes and grows only for pods that select it. A
node Karpenter creates carries `kwok.x-k8s.io/node: fake`, so our kwok makes it Ready and runs its pods.
An empty node goes about 40 s after its last pod left: `consolidate_after`, then Karpenter's disruption
polling and re-validation (cluster/README.md, "Karpenter (kwok provider)").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaic.localcluster import topology

BINARY = "karpenter"
CRDS_DIR = "karpenter-crds"
NODE_CLASS = "kaic"
NODE_POOL = "kaic-gpu"
INSTANCE_TYPES_FILE = "karpenter-instance-types.json"


@dataclass(frozen=True)
class KarpenterPool:
    """One NodePool of one-accelerator nodes, from zero up to `max_nodes`; `cpu_limit` ("" none) caps the
    CPUs of all its nodes together."""

    max_nodes: int = 2
    gpus_per_node: int = 1
    cpu_limit: str = ""
    consolidate_after: str = "10s"

    @property
    def label(self) -> str:
        """The `--autoscaler-node-pool-label` value that names this pool."""
        return topology.AUTOSCALED_POOL_LABEL


def instance_types(pool: KarpenterPool) -> list[dict[str, Any]]:
    """The kwok provider's `--instance-types-file-path` content: the only type the NodePool may use."""
    return [
        {
            "name": topology.instance_type(pool.gpus_per_node),
            "architecture": "amd64",
            "operatingSystems": ["linux"],
            "resources": {**topology.NODE_RESOURCES, topology.EXTENDED_RESOURCE: str(pool.gpus_per_node)},
            "offerings": [
                {
                    "price": 1.0,
                    "requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [topology.ZONE]},
                    ],
                }
            ],
        }
    ]


def node_class() -> dict[str, Any]:
    """No spec needed; its CRD defaults the status to Ready, which the provider requires."""
    return {
        "apiVersion": "karpenter.kwok.sh/v1alpha1",
        "kind": "KWOKNodeClass",
        "metadata": {"name": NODE_CLASS},
    }


def node_pool(pool: KarpenterPool) -> dict[str, Any]:
    """Nodes labelled as the autoscaled pool, of the one instance type, removed once empty for
    `consolidate_after`; never expired, so only consolidation removes them."""
    limits = {"nodes": str(pool.max_nodes)} | ({"cpu": pool.cpu_limit} if pool.cpu_limit else {})
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": NODE_POOL},
        "spec": {
            "template": {
                "metadata": {
                    "labels": {topology.POOL_LABEL: topology.AUTOSCALED_POOL, **topology.DEVICE_PLUGIN_LABELS}
                },
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.kwok.sh",
                        "kind": "KWOKNodeClass",
                        "name": NODE_CLASS,
                    },
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": [topology.instance_type(pool.gpus_per_node)],
                        }
                    ],
                    "expireAfter": "Never",
                },
            },
            "limits": limits,
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": pool.consolidate_after,
                "budgets": [{"nodes": "100%"}],
            },
        },
    }


def flags(metrics_port: int, health_port: int, instance_types_path: Path) -> list[str]:
    """Outside a cluster: no leader election (it would demand a namespace); both ports are bound on every
    interface, so they are free ones."""
    return [
        "--disable-leader-election",
        f"--metrics-port={metrics_port}",
        f"--health-probe-port={health_port}",
        f"--instance-types-file-path={instance_types_path}",
    ]
