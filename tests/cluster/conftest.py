"""A real local cluster for the tests in this directory, started once per session.

Without the binaries (`make cluster`) the tests skip on a developer machine and fail in CI (`CI=true`),
where a missing build must not pass silently.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from kaic.localcluster.launcher import Binaries, LocalCluster, find_binaries
from kaic.localcluster.processes import ClusterError
from kaic.localcluster.scenarios import SCENARIOS


@pytest.fixture(scope="session")
def cluster_binaries() -> Binaries:
    try:
        return find_binaries()
    except ClusterError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the local cluster: {error}")
        pytest.skip(f"no local cluster binaries ({error}); run `make cluster`")


@pytest.fixture(scope="session")
def local_cluster(
    cluster_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster") / "state")
    cluster.up(SCENARIOS["conformant"], cluster_binaries)
    yield cluster
    cluster.down()


@pytest.fixture(scope="session")
def api(local_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    with local_cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace, deleted afterwards (without waiting: the namespace test checks that part)."""
    core = client.CoreV1Api(api)
    name = f"kaic-test-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    poll(lambda: _has_default_service_account(core, name), 30, f"default ServiceAccount in {name}")
    yield name
    core.delete_namespace(name)


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
def wait_until() -> Callable[[Callable[[], Any], float, str], Any]:
    return poll
