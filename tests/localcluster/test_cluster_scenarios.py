"""Each broken scenario differs from `conformant` in exactly the facts it is named for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from kaic.localcluster import topology
from kaic.localcluster.launcher import LocalCluster

pytestmark = pytest.mark.cluster

# scenario: (resource.k8s.io served, DeviceClass, ResourceSlices, nodes with example.com/gpu, PodGroups
# served)
SHAPES = {
    "no-dra": (False, 0, 0, 2, False),
    "no-devices": (True, 0, 0, 2, True),
    "no-gang": (True, 1, 2, 2, False),
    "broken-gang": (True, 1, 2, 2, True),
    "no-gpu-nodes": (True, 1, 0, 0, True),
    "broken-dra": (True, 1, 2, 2, True),
}


@pytest.fixture(params=sorted(SHAPES))
def scenario(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def scenario_cluster(
    scenario: str, cluster_for: Callable[[str], LocalCluster]
) -> Iterator[tuple[str, client.ApiClient]]:
    with cluster_for(scenario).api_client() as api:
        yield scenario, api


def served_versions(api: client.ApiClient, group: str) -> list[str]:
    for found in client.ApisApi(api).get_api_versions().groups:
        if found.name == group:
            return [version.version for version in found.versions]
    return []


def test_scenario_shape(
    scenario_cluster: tuple[str, client.ApiClient], gang: Any, new_namespace: Any, wait_until: Any
) -> None:
    name, api = scenario_cluster
    dra_served, classes, slices, plugin_nodes, gang_served = SHAPES[name]
    assert ("v1" in served_versions(api, "resource.k8s.io")) is dra_served
    if dra_served:
        resource = client.ResourceV1Api(api)
        assert len(resource.list_device_class().items) == classes
        assert len(resource.list_resource_slice().items) == slices
    nodes = client.CoreV1Api(api).list_node().items
    assert sum(1 for n in nodes if topology.EXTENDED_RESOURCE in (n.status.allocatable or {})) == plugin_nodes
    assert ("v1beta1" in served_versions(api, "scheduling.k8s.io")) is gang_served
    if name == "broken-gang":
        assert_gang_binds_partially(api, gang, new_namespace(api, "gang"), wait_until)
    if name == "broken-dra":
        assert_claim_stays_unallocated(api, new_namespace(api, "claim"), wait_until)
    if name == "no-dra":
        assert_device_plugin_pod_binds(api, new_namespace(api, "plain"), wait_until)


def assert_gang_binds_partially(api: client.ApiClient, gang: Any, namespace: str, wait_until: Any) -> None:
    """The API takes the PodGroup, but the scheduler ignores it and binds members one by one."""
    trio = gang(api, namespace, "trio", min_count=3)
    trio.add_member(0)
    wait_until(trio.bound, 30, "broken-gang to bind a lone member of a gang of 3")


def assert_device_plugin_pod_binds(api: client.ApiClient, namespace: str, wait_until: Any) -> None:
    """Without the DRA API the scheduler still binds pods: one asking for example.com/gpu lands in its
    pool."""
    core = client.CoreV1Api(api)
    limits = {topology.EXTENDED_RESOURCE: "1"}
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "gpu"},
            "spec": {
                "containers": [
                    {"name": "main", "image": "registry.k8s.io/pause:3.10", "resources": {"limits": limits}}
                ]
            },
        },
    )
    node = wait_until(
        lambda: core.read_namespaced_pod("gpu", namespace).spec.node_name, 30, "no-dra to bind a GPU pod"
    )
    assert node.startswith("kaic-device-plugin-"), node


def assert_claim_stays_unallocated(api: client.ApiClient, namespace: str, wait_until: Any) -> None:
    """The class exists and slices are published, but its selector matches none of them: the real scheduler
    reports FailedScheduling and leaves the pod Pending and the claim from the template unallocated."""
    resource, core = client.ResourceV1Api(api), client.CoreV1Api(api)
    request = {"name": "gpu", "exactly": {"deviceClassName": topology.DRIVER}}
    resource.create_namespaced_resource_claim_template(
        namespace,
        {
            "metadata": {"name": "gpu"},
            "spec": {"spec": {"devices": {"requests": [request]}}},
        },
    )
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "gpu"},
            "spec": {
                "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "gpu"}],
                "containers": [
                    {
                        "name": "main",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {"claims": [{"name": "gpu"}]},
                    }
                ],
            },
        },
    )

    def refused() -> bool:
        events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=gpu").items
        return any(
            e.reason == "FailedScheduling" and "cannot allocate all claims" in e.message for e in events
        )

    wait_until(refused, 30, "FailedScheduling: cannot allocate all claims")
    pod = core.read_namespaced_pod("gpu", namespace)
    assert pod.status.phase == "Pending" and not pod.spec.node_name
    claims = resource.list_namespaced_resource_claim(namespace).items
    assert len(claims) == 1 and not (claims[0].status and claims[0].status.allocation), claims
