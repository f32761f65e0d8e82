"""The AI-shaped objects of the local cluster: GPU nodes in two pools and the simulated DRA driver.

The `simulated` accelerator profile (dra-example-driver's `gpu.example.com`) is what kaic's probes expect
here. One pool publishes its GPUs only as DRA ResourceSlices, the other only as the extended resource
`example.com/gpu` (the device-plugin path), so no GPU is ever counted both ways. The DeviceClass sets no
`extendedResourceName`: a pod asking for `example.com/gpu` must land on the device-plugin pool.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any

DRIVER = "gpu.example.com"
EXTENDED_RESOURCE = "example.com/gpu"
GPU_MODEL = "SIM-GPU-80GB"
GPU_MEMORY = "80Gi"
DRIVER_VERSION = "1.0.0"
# kwok's simulated pod addresses; the upper half of 100.64.0.0/16 belongs to the real node (node.py).
POD_CIDR = "100.64.0.0/17"
# Pool membership, for tests and probes that must aim at one pool.
POOL_LABEL = "kaic.io/node-pool"
# kwok manages only nodes with this annotation; probes read it as "runs no containers".
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
ZONE = "kaic-sim-a"
# Every simulated node's size, GPUs aside.
NODE_RESOURCES = {"cpu": "96", "memory": "1Ti", "pods": "110", "ephemeral-storage": "2Ti"}
# What a device-plugin GPU node is labelled with, as GPU feature discovery would.
DEVICE_PLUGIN_LABELS = {"example.com/gpu.present": "true", "example.com/gpu.product": GPU_MODEL}
# The pool the node autoscalers (Cluster Autoscaler, Karpenter) grow and shrink.
AUTOSCALED_POOL = "autoscale"
AUTOSCALED_POOL_LABEL = f"{POOL_LABEL}={AUTOSCALED_POOL}"  # what --autoscaler-node-pool-label names
_UUID_NAMESPACE = uuid.UUID("6f1c1d52-4a1e-4d4b-9a55-2a0c9f0e7c11")


class GpuPath(Enum):
    """How a pool's GPUs reach pods."""

    DRA = "dra"
    DEVICE_PLUGIN = "device-plugin"
    NONE = "none"


@dataclass(frozen=True)
class NodePool:
    name: str
    nodes: int
    gpu_path: GpuPath
    gpus_per_node: int = 8


DEFAULT_POOLS = (
    NodePool("dra", 2, GpuPath.DRA),
    NodePool("device-plugin", 2, GpuPath.DEVICE_PLUGIN),
)
CPU_ONLY_POOLS = (NodePool("cpu", 2, GpuPath.NONE, gpus_per_node=0),)


def instance_type(gpus_per_node: int) -> str:
    return f"kaic-sim-{gpus_per_node}gpu" if gpus_per_node else "kaic-sim-cpu"


def node_names(pool: NodePool) -> list[str]:
    return [f"kaic-{pool.name}-{index}" for index in range(pool.nodes)]


def gpu_uuid(node: str, index: int) -> str:
    """Stable per node and index, so reruns and probes see the same identities."""
    return f"GPU-{uuid.uuid5(_UUID_NAMESPACE, f'{node}/gpu-{index}')}"


def node(pool: NodePool, name: str, pod_cidr: str) -> dict[str, Any]:
    """A kwok-managed node sized like an 8-GPU server; status is accepted on create for nodes."""
    labels = {
        "type": "kwok",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": instance_type(pool.gpus_per_node),
        "topology.kubernetes.io/zone": ZONE,
        POOL_LABEL: pool.name,
    }
    resources = dict(NODE_RESOURCES)
    if pool.gpu_path is GpuPath.DEVICE_PLUGIN:
        resources[EXTENDED_RESOURCE] = str(pool.gpus_per_node)
        labels |= DEVICE_PLUGIN_LABELS
    elif pool.gpu_path is GpuPath.DRA:
        labels |= {"example.com/gpu.present": "true", "example.com/gpu.dra-driver": DRIVER}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {KWOK_ANNOTATION: "fake"}},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        "status": {"capacity": resources, "allocatable": resources},
    }


def device_class(selects_driver: str = DRIVER) -> dict[str, Any]:
    """The driver's DeviceClass; `selects_driver` other than DRIVER gives a class that matches none of its
    devices."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": DRIVER},
        "spec": {"selectors": [{"cel": {"expression": f"device.driver == '{selects_driver}'"}}]},
    }


def resource_slice(node_name: str, gpus: int) -> dict[str, Any]:
    """One pool per node, one slice per pool, as dra-example-driver publishes them."""
    devices = [
        {
            "name": f"gpu-{index}",
            "attributes": {
                "index": {"int": index},
                "uuid": {"string": gpu_uuid(node_name, index)},
                "model": {"string": GPU_MODEL},
                "driverVersion": {"version": DRIVER_VERSION},
            },
            "capacity": {"memory": {"value": GPU_MEMORY}},
        }
        for index in range(gpus)
    ]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node_name}-{DRIVER}"},
        "spec": {
            "driver": DRIVER,
            "nodeName": node_name,
            "pool": {"name": node_name, "generation": 1, "resourceSliceCount": 1},
            "devices": devices,
        },
    }


def nodes(pools: tuple[NodePool, ...]) -> list[dict[str, Any]]:
    """All nodes of `pools`, each with its own /24 of the pod range."""
    result: list[dict[str, Any]] = []
    for pool in pools:
        for name in node_names(pool):
            result.append(node(pool, name, f"100.64.{len(result)}.0/24"))
    return result


def driver_objects(
    pools: tuple[NodePool, ...], with_slices: bool, class_selects_driver: str = DRIVER
) -> list[dict[str, Any]]:
    """What the simulated DRA driver publishes: its DeviceClass and, when it sees GPUs, their slices."""
    objects = [device_class(class_selects_driver)]
    if with_slices:
        for pool in pools:
            if pool.gpu_path is GpuPath.DRA:
                objects += [resource_slice(name, pool.gpus_per_node) for name in node_names(pool)]
    return objects
