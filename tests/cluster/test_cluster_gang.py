"""Native gang scheduling (scheduling.k8s.io/v1beta1 PodGroup) is served and all-or-nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient

pytestmark = pytest.mark.cluster

# Long enough for the scheduler to have tried (and, in a broken cluster, bound) the first members.
QUIET_SECONDS = 8


def member(name: str, group: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "schedulingGroup": {"podGroupName": group},
            "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}],
        },
    }


def test_gang_binds_only_when_complete(api: client.ApiClient, namespace: str, wait_until: Any) -> None:
    core = client.CoreV1Api(api)
    pod_groups = DynamicClient(api).resources.get(api_version="scheduling.k8s.io/v1beta1", kind="PodGroup")
    pod_groups.create(
        namespace=namespace,
        body={
            "apiVersion": "scheduling.k8s.io/v1beta1",
            "kind": "PodGroup",
            "metadata": {"name": "trio"},
            "spec": {"schedulingPolicy": {"gang": {"minCount": 3}}},
        },
    )
    for index in range(2):
        core.create_namespaced_pod(namespace, member(f"trio-{index}", "trio"))
    time.sleep(QUIET_SECONDS)
    bound = [p.metadata.name for p in core.list_namespaced_pod(namespace).items if p.spec.node_name]
    assert bound == [], f"gang of 3 bound partially with 2 members: {bound}"

    core.create_namespaced_pod(namespace, member("trio-2", "trio"))
    wait_until(
        lambda: all(p.spec.node_name for p in core.list_namespaced_pod(namespace).items),
        60,
        "the complete gang to bind",
    )
