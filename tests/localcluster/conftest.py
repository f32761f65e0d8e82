"""Typed-client helpers for the local-cluster tests; the cluster itself comes from tests/conftest.py."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from kaic.localcluster.launcher import LocalCluster


@pytest.fixture
def api(local_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    with local_cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace, deleted afterwards (without waiting: the namespace test checks that part)."""
    name = f"kaic-test-{uuid.uuid4().hex[:8]}"
    yield create_namespace(api, name)
    client.CoreV1Api(api).delete_namespace(name)


def create_namespace(api: client.ApiClient, name: str) -> str:
    """Create `name` and wait for its default ServiceAccount, without which pods are refused."""
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    poll(lambda: _has_default_service_account(core, name), 30, f"default ServiceAccount in {name}")
    return name


def _has_default_service_account(core: client.CoreV1Api, namespace: str) -> bool:
    return any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items)


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="session")
def new_namespace() -> Callable[[client.ApiClient, str], str]:
    return create_namespace


@pytest.fixture(scope="session")
def wait_until() -> Callable[[Callable[[], Any], float, str], Any]:
    return poll


class Gang:
    """A native gang: a scheduling.k8s.io/v1beta1 PodGroup with a minimum count, and its member pods."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, min_count: int) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.name = name
        DynamicClient(api).resources.get(api_version="scheduling.k8s.io/v1beta1", kind="PodGroup").create(
            namespace=namespace,
            body={
                "apiVersion": "scheduling.k8s.io/v1beta1",
                "kind": "PodGroup",
                "metadata": {"name": name},
                "spec": {"schedulingPolicy": {"gang": {"minCount": min_count}}},
            },
        )

    def add_member(self, index: int) -> str:
        pod_name = f"{self.name}-{index}"
        self.core.create_namespaced_pod(
            self.namespace,
            {
                "metadata": {"name": pod_name},
                "spec": {
                    "schedulingGroup": {"podGroupName": self.name},
                    "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}],
                },
            },
        )
        return pod_name

    def bound(self) -> list[str]:
        pods = self.core.list_namespaced_pod(self.namespace).items
        return [pod.metadata.name for pod in pods if pod.spec.node_name]


@pytest.fixture(scope="session")
def gang() -> type[Gang]:
    return Gang
