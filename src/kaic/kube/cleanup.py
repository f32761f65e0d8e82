"""Removing what kaic created: by run id after a run, or every run's leftovers after a kill.

Only objects carrying kaic's run-id label are touched: namespaces (their contents go with them) and the
cluster-scoped kinds probes may create, which are also named with the run id.
"""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from kaic.kube.client import Cluster
from kaic.kube.labels import selector
from kaic.settings import CLEANUP_TIMEOUT_S

# Cluster-scoped kinds a probe may create ("group/resource", as probes declare in `creates`) and their paths.
CLUSTER_SCOPED = {
    "resource.k8s.io/deviceclasses": "/apis/resource.k8s.io/v1/deviceclasses",
    "resource.k8s.io/resourceslices": "/apis/resource.k8s.io/v1/resourceslices",
    "node.k8s.io/runtimeclasses": "/apis/node.k8s.io/v1/runtimeclasses",
    "scheduling.k8s.io/priorityclasses": "/apis/scheduling.k8s.io/v1/priorityclasses",
    "admissionregistration.k8s.io/validatingwebhookconfigurations": (
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
    ),
    "rbac.authorization.k8s.io/clusterroles": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "rbac.authorization.k8s.io/clusterrolebindings": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "kueue.x-k8s.io/clusterqueues": "/apis/kueue.x-k8s.io/v1beta2/clusterqueues",
    "kueue.x-k8s.io/resourceflavors": "/apis/kueue.x-k8s.io/v1beta2/resourceflavors",
}


def sweep(
    cluster: Cluster,
    run_id: str | None,
    wait_s: float = CLEANUP_TIMEOUT_S,
    kinds: frozenset[str] | None = None,
) -> list[str]:
    """Delete every labelled object; wait (bounded) for namespaces to go. Returns what was deleted.

    `kinds` limits the sweep to what a plan creates ("namespaces" plus cluster-scoped "group/resource"),
    so a run needs no permission on kinds it never touches; None sweeps everything kaic may create.
    """
    label = selector(run_id)
    deleted: list[str] = []
    for kind, path in CLUSTER_SCOPED.items():
        if kinds is not None and kind not in kinds:
            continue
        try:
            items = list(cluster.list(path, labelSelector=label))
        except ApiException as exc:
            if exc.status == 404:  # API not served here
                continue
            raise
        for item in items:
            cluster.delete(f"{path}/{item['metadata']['name']}")
            deleted.append(f"{path.rsplit('/', 1)[-1]}/{item['metadata']['name']}")
    if kinds is not None and "namespaces" not in kinds:
        return deleted
    namespaces = [ns["metadata"]["name"] for ns in cluster.list("/api/v1/namespaces", labelSelector=label)]
    for name in namespaces:
        cluster.delete(f"/api/v1/namespaces/{name}", propagationPolicy="Foreground")
        deleted.append(f"namespaces/{name}")
    cluster.wait_gone([f"/api/v1/namespaces/{n}" for n in namespaces], wait_s)
    return deleted
