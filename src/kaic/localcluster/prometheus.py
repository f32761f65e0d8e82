"""The local cluster's monitoring system: upstream Prometheus (cluster/prometheus) as a pod of the real node.

A pod, not a host process, because the API server's services/proxy forwards only to endpoints that are pods:
behind a Service of its own it is found and queried the way kaic finds an in-cluster Prometheus. It uses the
node's network (the `kubernetes` ClusterIP is not routed here, so it reaches the API server on loopback with
its service account) and listens on the node address. It discovers pods with kubernetes_sd and scrapes those
on the real node's bridge that carry the common prometheus.io scrape annotations. `dropping` adds one
relabelling rule that drops every pod kaic labelled: the monitoring system runs and answers queries, but never
collects a probe's workload, which is what an ai_service_metrics probe must fail on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from kaic.kube import client as kube
from kaic.localcluster import images, node
from kaic.localcluster.processes import ClusterError, free_ports

NAME = "prometheus"
IMAGE = "kaic.local/prometheus:1"
SERVICE = "kaic-prometheus"
NAMESPACE = "kube-system"
SCRAPE_INTERVAL = "5s"
# Only pods on the real node's bridge are scraped: kwok pods have addresses no host answers on.
POD_ADDRESS = r"100\.64\.128\.\d+"
RUN_ID_LABEL = "kaic_dev_run_id"  # kaic.dev/run-id as kubernetes_sd sanitises label names
LABELS = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": SERVICE}


def image(bin_dir: Path) -> images.Image:
    binary = bin_dir / NAME
    if not binary.exists():
        raise ClusterError(f"{binary} is missing; build it with `make cluster`")
    return images.Image(IMAGE, files={"bin/prometheus": binary}, entrypoint=["/bin/prometheus"])


def config(dropping: bool) -> dict[str, Any]:
    """prometheus.yml: one pod job, kept by the scrape annotations, addressed by the port annotation."""
    relabel: list[dict[str, Any]] = [
        {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
            "regex": "true",
            "action": "keep",
        },
        {"source_labels": ["__meta_kubernetes_pod_node_name"], "regex": node.NODE_NAME, "action": "keep"},
        {"source_labels": ["__meta_kubernetes_pod_ip"], "regex": POD_ADDRESS, "action": "keep"},
        {
            "source_labels": [
                "__meta_kubernetes_pod_ip",
                "__meta_kubernetes_pod_annotation_prometheus_io_port",
            ],
            "regex": r"(.+);(\d+)",
            "replacement": "$1:$2",
            "target_label": "__address__",
        },
        {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
            "regex": "(.+)",
            "target_label": "__metrics_path__",
        },
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]
    if dropping:
        relabel.insert(
            0,
            {
                "source_labels": [f"__meta_kubernetes_pod_labelpresent_{RUN_ID_LABEL}"],
                "regex": "true",
                "action": "drop",
            },
        )
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": "kubernetes-pods",
                "kubernetes_sd_configs": [{"role": "pod"}],  # in-cluster: its service account
                "relabel_configs": relabel,
            }
        ],
    }


def objects(dropping: bool, server_port: int, port: int) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) in creation order: identity, configuration, the pod, its Service."""
    meta = {"name": SERVICE, "namespace": NAMESPACE, "labels": LABELS}
    pod_spec = {
        **node.placement(),
        "serviceAccountName": SERVICE,
        "hostNetwork": True,
        "containers": [
            {
                "name": NAME,
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "args": [
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/prometheus",
                    "--storage.tsdb.retention.time=1h",
                    f"--web.listen-address={node.NODE_IP}:{port}",
                ],
                # Explicit env wins over the kubelet's service variables: the `kubernetes` ClusterIP is not
                # routed.
                "env": [
                    {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                    {"name": "KUBERNETES_SERVICE_PORT", "value": str(server_port)},
                ],
                "ports": [{"name": "web", "containerPort": port, "protocol": "TCP"}],
                "readinessProbe": {
                    "httpGet": {"host": node.NODE_IP, "path": "/-/ready", "port": "web"},
                    "periodSeconds": 2,
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/prometheus", "readOnly": True},
                    {"name": "data", "mountPath": "/prometheus"},
                ],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}},
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": SERVICE}},
            {"name": "data", "emptyDir": {"sizeLimit": "256Mi"}},
        ],
    }
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    return [
        (f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts", {"metadata": meta}),
        # What kubernetes_sd's pod role reads: pods, cluster-wide.
        (
            f"{rbac}/clusterroles",
            {
                "metadata": {"name": SERVICE},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
            },
        ),
        (
            f"{rbac}/clusterrolebindings",
            {
                "metadata": {"name": SERVICE},
                "subjects": [{"kind": "ServiceAccount", "name": SERVICE, "namespace": NAMESPACE}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": SERVICE},
            },
        ),
        (
            f"/api/v1/namespaces/{NAMESPACE}/configmaps",
            {"metadata": meta, "data": {"prometheus.yml": yaml.safe_dump(config(dropping), sort_keys=False)}},
        ),
        (f"/api/v1/namespaces/{NAMESPACE}/pods", {"metadata": meta, "spec": pod_spec}),
        # Named and labelled as charts name Prometheus, port `web`: what kaic looks for.
        (
            f"/api/v1/namespaces/{NAMESPACE}/services",
            {
                "metadata": meta,
                "spec": {"selector": LABELS, "ports": [{"name": "web", "port": 9090, "targetPort": "web"}]},
            },
        ),
    ]


def install(cluster: kube.Cluster, dropping: bool, server_port: int, timeout: float) -> dict[str, Any]:
    """Create everything, then wait until its query API answers through the API server's service proxy."""
    (port,) = free_ports(1)
    for path, body in objects(dropping, server_port, port):
        cluster.create(path, body)
    ready = f"/api/v1/namespaces/{NAMESPACE}/services/{SERVICE}:web/proxy/-/ready"
    deadline = time.monotonic() + timeout
    while True:
        try:
            cluster.request_bytes("GET", ready)
            return {"port": port, "dropping": dropping}
        except Exception as error:  # noqa: BLE001 - 503 until the endpoint is ready; anything else at the deadline
            if time.monotonic() > deadline:
                pod = cluster.get_or_none(f"/api/v1/namespaces/{NAMESPACE}/pods/{SERVICE}") or {}
                raise ClusterError(
                    f"Prometheus not ready through {ready} within {timeout:.0f}s: "
                    f"{kube.describe_error(error)}; pod status: {pod.get('status')}"
                ) from None
        time.sleep(0.5)
