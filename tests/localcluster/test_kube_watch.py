"""`kaic.kube.client.Cluster.watch` against the real API server: state first, then changes, bounded by its
deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kaic.kube import client as kube
from kaic.localcluster.launcher import LocalCluster

pytestmark = pytest.mark.cluster


@pytest.fixture
def configmaps(local_cluster: LocalCluster, namespace: str) -> Iterator[tuple[kube.Cluster, str]]:
    yield kube.connect(str(local_cluster.kubeconfig)), f"/api/v1/namespaces/{namespace}/configmaps"


def configmap(name: str) -> dict:
    return {"metadata": {"name": name, "labels": {"watched": "yes"}}, "data": {"k": "v"}}


def test_watch_yields_current_items_then_changes(configmaps: tuple[kube.Cluster, str]) -> None:
    cluster, path = configmaps
    cluster.create(path, configmap("before"))
    events = cluster.watch(path, 30, labelSelector="watched=yes")
    kind, obj = next(events)
    assert (kind, obj["metadata"]["name"]) == ("ADDED", "before")
    cluster.create(path, configmap("after"))  # between the list and the watch request: must not be lost
    kind, obj = next(events)
    assert (kind, obj["metadata"]["name"]) == ("ADDED", "after")
    cluster.delete(f"{path}/before")
    kind, obj = next(events)
    assert (kind, obj["metadata"]["name"]) == ("DELETED", "before")
    events.close()


def test_a_quiet_watch_ends_at_its_deadline(configmaps: tuple[kube.Cluster, str]) -> None:
    cluster, path = configmaps
    started = time.monotonic()
    assert list(cluster.watch(path, 2, labelSelector="watched=never")) == []
    assert 1.5 < time.monotonic() - started < 10
