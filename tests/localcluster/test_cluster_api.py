"""The local cluster behaves like a real AI cluster: DRA allocation, device-plugin GPUs, kwok lifecycles."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kaic.localcluster import topology
from kaic.localcluster.launcher import SERVICE_CIDR, LocalCluster

pytestmark = pytest.mark.cluster

IMAGE = "registry.k8s.io/pause:3.10"
# Host-network destinations this project must never dial.
FLAGGED = [ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def pool_nodes(api: client.ApiClient, pool: str) -> set[str]:
    nodes = client.CoreV1Api(api).list_node(label_selector=f"{topology.POOL_LABEL}={pool}").items
    return {node.metadata.name for node in nodes}


def pod(name: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": IMAGE, **spec.pop("container", {})}
    return {"metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def test_version_answers(api: client.ApiClient) -> None:
    version = client.VersionApi(api).get_code()
    assert version.git_version.startswith("v1.37.")


def test_nodes_are_kwok_nodes_with_leases(api: client.ApiClient, wait_until: Any) -> None:
    nodes = client.CoreV1Api(api).list_node().items
    assert {node.metadata.annotations.get(topology.KWOK_ANNOTATION) for node in nodes} == {"fake"}
    coordination = client.CoordinationV1Api(api)
    wait_until(
        lambda: (
            {lease.metadata.name for lease in coordination.list_namespaced_lease("kube-node-lease").items}
            >= {node.metadata.name for node in nodes}
        ),
        30,
        "a Lease per node (the node lifecycle controller's liveness signal)",
    )


def test_claim_is_allocated_by_the_scheduler_and_released(
    api: client.ApiClient, namespace: str, wait_until: Any
) -> None:
    core, resource = client.CoreV1Api(api), client.ResourceV1Api(api)
    resource.create_namespaced_resource_claim_template(
        namespace,
        {
            "metadata": {"name": "one-gpu"},
            "spec": {
                "spec": {
                    "devices": {
                        "requests": [{"name": "gpu", "exactly": {"deviceClassName": topology.DRIVER}}]
                    }
                }
            },
        },
    )
    core.create_namespaced_pod(
        namespace,
        pod(
            "claimer",
            resourceClaims=[{"name": "gpu", "resourceClaimTemplateName": "one-gpu"}],
            container={"resources": {"claims": [{"name": "gpu"}]}},
        ),
    )
    running = wait_until(
        lambda: (p := core.read_namespaced_pod("claimer", namespace)).status.phase == "Running" and p,
        60,
        "the claiming pod to run",
    )
    assert running.spec.node_name in pool_nodes(api, "dra")
    claim_name = running.status.resource_claim_statuses[0].resource_claim_name
    claim = resource.read_namespaced_resource_claim(claim_name, namespace)
    [result] = claim.status.allocation.devices.results
    assert result.driver == topology.DRIVER
    assert result.pool == running.spec.node_name
    assert result.device.startswith("gpu-")
    assert [(ref.resource, ref.name, ref.uid) for ref in claim.status.reserved_for] == [
        ("pods", "claimer", running.metadata.uid)
    ]

    core.delete_namespaced_pod("claimer", namespace)

    def claim_released() -> bool:
        try:
            resource.read_namespaced_resource_claim(claim_name, namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_until(claim_released, 60, "the generated claim to be deleted with its pod")


def test_extended_resource_pod_binds_to_device_plugin_pool(
    api: client.ApiClient, namespace: str, wait_until: Any
) -> None:
    core = client.CoreV1Api(api)
    gpu = {"resources": {"limits": {topology.EXTENDED_RESOURCE: "1"}}}
    core.create_namespaced_pod(namespace, pod("plugin-gpu", container=gpu))
    bound = wait_until(
        lambda: core.read_namespaced_pod("plugin-gpu", namespace).spec.node_name, 60, "binding"
    )
    assert bound in pool_nodes(api, "device-plugin")

    # Forced onto the DRA pool, the same request must not fit: those GPUs exist only as DRA devices.
    dra_only = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": topology.POOL_LABEL, "operator": "In", "values": ["dra"]}]}
                ]
            }
        }
    }
    core.create_namespaced_pod(namespace, pod("plugin-gpu-on-dra", container=gpu, affinity=dra_only))

    def unschedulable() -> bool:
        status = core.read_namespaced_pod("plugin-gpu-on-dra", namespace).status
        return any(
            c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
            for c in status.conditions or []
        )

    wait_until(unschedulable, 60, "the scheduler to reject the DRA pool")
    assert not core.read_namespaced_pod("plugin-gpu-on-dra", namespace).spec.node_name


def test_addresses_stay_out_of_flagged_private_ranges(
    api: client.ApiClient, namespace: str, wait_until: Any
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, pod("addressed"))
    service = core.create_namespaced_service(
        namespace, {"metadata": {"name": "addressed"}, "spec": {"ports": [{"port": 80}]}}
    )
    pod_ip = wait_until(
        lambda: core.read_namespaced_pod("addressed", namespace).status.pod_ip, 60, "a pod IP"
    )
    node_ips = {
        address.address
        for node in core.list_node().items
        for address in node.status.addresses
        if address.type == "InternalIP"
    }
    assert ipaddress.ip_address(pod_ip) in ipaddress.ip_network(topology.POD_CIDR)
    assert ipaddress.ip_address(service.spec.cluster_ip) in ipaddress.ip_network(SERVICE_CIDR)
    assert node_ips == {"127.0.0.1"}
    for address in (pod_ip, service.spec.cluster_ip, *node_ips):
        assert not any(ipaddress.ip_address(address) in network for network in FLAGGED), address


def test_apiserver_does_not_dial_pod_addresses(
    api: client.ApiClient, local_cluster: LocalCluster, namespace: str, wait_until: Any
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, pod("proxied"))
    pod_ip = wait_until(lambda: core.read_namespaced_pod("proxied", namespace).status.pod_ip, 60, "a pod IP")
    with pytest.raises(ApiException) as refused:
        core.connect_get_namespaced_pod_proxy("proxied:80", namespace)
    assert refused.value.status == 503
    assert f"refused CONNECT {pod_ip}:80" in local_cluster.process("egress").log.read_text()


def test_job_completes(api: client.ApiClient, namespace: str, wait_until: Any) -> None:
    client.BatchV1Api(api).create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "two-steps"},
            "spec": {
                "completions": 2,
                "template": {"spec": {**pod("step")["spec"], "restartPolicy": "Never"}},
            },
        },
    )

    def complete() -> bool:
        job = client.BatchV1Api(api).read_namespaced_job("two-steps", namespace)
        return any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])

    wait_until(complete, 90, "the Job to complete")


def test_namespace_deletes_cleanly(api: client.ApiClient, new_namespace: Any, wait_until: Any) -> None:
    core = client.CoreV1Api(api)
    name = new_namespace(api, "kaic-test-delete-me")
    core.create_namespaced_pod(name, pod("runner"))
    wait_until(lambda: core.read_namespaced_pod("runner", name).status.phase == "Running", 60, "pod running")
    core.delete_namespace(name)

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as error:
            return error.status == 404
        return False

    wait_until(gone, 90, "the namespace to be deleted")
