"""Discovery against the real API server: ResourceSlices published through the API count as the scheduler
counts them, a pool only at its newest generation and only once that generation is complete."""

from __future__ import annotations

from typing import Any

import pytest

from kaic.areas import accelerators
from kaic.kube import client as kube
from kaic.kube import facts
from kaic.localcluster import topology
from kaic.localcluster.launcher import LocalCluster

pytestmark = pytest.mark.cluster

SLICES = "/apis/resource.k8s.io/v1/resourceslices"
OTHER = "stale.kaic.dev"


def rslice(
    name: str, driver: str, pool: str, generation: int, devices: int, node: str, count: int = 1
) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"kaic-test-{name}"},
        "spec": {
            "driver": driver,
            "nodeName": node,
            "pool": {"name": pool, "generation": generation, "resourceSliceCount": count},
            "devices": [{"name": f"dev-{i}"} for i in range(devices)],
        },
    }


def test_stale_and_incomplete_generations_are_not_counted(local_cluster: LocalCluster) -> None:
    cluster = kube.connect(str(local_cluster.kubeconfig))
    node = next(
        topology.node_names(p)[0] for p in topology.DEFAULT_POOLS if p.gpu_path is topology.GpuPath.DRA
    )
    before = facts.discover(cluster)["resourceSlices"][topology.DRIVER]
    published = [
        # An older generation of the simulated driver's own pool, with more devices than the node has.
        rslice("gpus-gen0", topology.DRIVER, node, 0, 16, node),
        # Another driver whose newest generation withdrew every device, and a pool still being written.
        rslice("other-gen1", OTHER, node, 1, 2, node),
        rslice("other-gen2", OTHER, node, 2, 0, node),
        rslice("half-gen1", OTHER, "half", 1, 2, node, count=2),
    ]
    try:
        for body in published:
            cluster.create(SLICES, body)
        found = facts.discover(cluster)
        assert found["errors"] == {}
        gpus = found["resourceSlices"][topology.DRIVER]
        assert gpus["devices"] == before["devices"] and gpus["staleSlices"] == 1
        assert gpus["pools"][node] == {**before["pools"][node], "staleSlices": 1}
        other = found["resourceSlices"][OTHER]
        assert other["devices"] == 0 and other["attributes"] == []
        assert other["pools"] == {
            node: {"generation": 2, "nodes": [node], "devices": 0, "slices": 1, "staleSlices": 1}
        }
        assert other["incompletePools"] == {
            "half": {"generation": 1, "slices": 1, "expectedSlices": 2, "staleSlices": 0}
        }
        inventory = accelerators.inventory(found)
        assert OTHER not in inventory["draDrivers"]
        assert inventory["draDriversWithoutDevices"][OTHER] == (
            "pool half generation 1 has 1 of 2 slices (incomplete, not counted); "
            "1 slice(s) of older pool generations ignored"
        )
        assert inventory["draDrivers"][topology.DRIVER]["devices"] == before["devices"]
    finally:
        for body in published:
            cluster.delete(f"{SLICES}/{body['metadata']['name']}")
