"""The local cluster's monitoring system: upstream Prometheus (cluster/prometheus) as a host process.

It listens on the real node's address, like the metrics adapter, so a Service with an EndpointSlice there lets
clients find it and reach it through the API server's services/proxy, as they would an in-cluster Prometheus. It
discovers pods with kubernetes_sd (its own client identity from the cluster's PKI) and scrapes those on the real
node's bridge that carry the common prometheus.io scrape annotations. `dropping` adds one relabelling rule that
drops every pod kaic labelled: the monitoring system runs and answers queries, but never collects a probe's
workload, which is what an ai_service_metrics probe must fail on.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from kaic.localcluster import kubeconfig
from kaic.localcluster.node import NODE_IP, NODE_NAME
from kaic.localcluster.pki import ClientIdentity, ClusterPKI
from kaic.localcluster.processes import ClusterError, free_ports

NAME = "prometheus"
SERVICE = "kaic-prometheus"
NAMESPACE = "kube-system"
IDENTITY = ClientIdentity("prometheus", "kaic-prometheus")
SCRAPE_INTERVAL = "5s"
# Only pods on the real node's bridge are scraped: kwok pods have addresses no host answers on.
POD_ADDRESS = r"100\.64\.128\.\d+"
RUN_ID_LABEL = "kaic_dev_run_id"  # kaic.dev/run-id as kubernetes_sd sanitises label names


def config(kubeconfig_path: Path, dropping: bool) -> dict[str, Any]:
    """prometheus.yml: one pod job, kept by the scrape annotations, addressed by the port annotation."""
    relabel: list[dict[str, Any]] = [
        {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "regex": "true", "action": "keep"},
        {"source_labels": ["__meta_kubernetes_pod_node_name"], "regex": NODE_NAME, "action": "keep"},
        {"source_labels": ["__meta_kubernetes_pod_ip"], "regex": POD_ADDRESS, "action": "keep"},
        {"source_labels": ["__meta_kubernetes_pod_ip", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
         "regex": r"(.+);(\d+)", "replacement": "$1:$2", "target_label": "__address__"},
        {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"], "regex": "(.+)",
         "target_label": "__metrics_path__"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]  # fmt: skip
    if dropping:
        relabel.insert(0, {"source_labels": [f"__meta_kubernetes_pod_labelpresent_{RUN_ID_LABEL}"],
                           "regex": "true", "action": "drop"})  # fmt: skip
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [{
            "job_name": "kubernetes-pods",
            "kubernetes_sd_configs": [{"role": "pod", "kubeconfig_file": str(kubeconfig_path)}],
            "relabel_configs": relabel,
        }],
    }  # fmt: skip


def start(
    pki: ClusterPKI, process: Any, state_dir: Path, server: str, bin_dir: Path, dropping: bool
) -> dict[str, Any]:
    """Start Prometheus with its own identity and configuration; return what `register` needs."""
    binary = bin_dir / NAME
    if not binary.exists():
        raise ClusterError(f"{binary} is missing; build it with `make cluster`")
    config_path = state_dir / f"{IDENTITY.file_stem}.kubeconfig"
    kubeconfig.write(config_path, server, pki.ca.cert, pki.issue_client(IDENTITY), IDENTITY.user)
    settings = state_dir / "prometheus.yml"
    settings.write_text(yaml.safe_dump(config(config_path, dropping), sort_keys=False))
    (port,) = free_ports(1)
    process(NAME).start([
        str(binary),
        f"--config.file={settings}",
        f"--storage.tsdb.path={state_dir / 'prometheus-data'}",
        "--storage.tsdb.retention.time=1h",
        f"--web.listen-address={NODE_IP}:{port}",
    ])  # fmt: skip
    return {"port": port, "dropping": dropping}


def grant(api: client.ApiClient) -> None:
    """What kubernetes_sd's pod role reads: pods, cluster-wide."""
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_cluster_role({"metadata": {"name": SERVICE},
                              "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})  # fmt: skip
    rbac.create_cluster_role_binding({
        "metadata": {"name": SERVICE},
        "subjects": [{"kind": "User", "name": IDENTITY.user, "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": SERVICE},
    })  # fmt: skip


def register(api: client.ApiClient, port: int) -> None:
    """A Service named as charts name Prometheus, with the node address as its one endpoint (Endpoints for the
    API server's proxy, an EndpointSlice for everything newer)."""
    client.CoreV1Api(api).create_namespaced_service(NAMESPACE, {
        "metadata": {"name": SERVICE, "labels": {"app.kubernetes.io/name": "prometheus"}},
        "spec": {"ports": [{"name": "web", "port": 9090, "targetPort": port}]},
    })  # fmt: skip
    # The API server's services/proxy resolves a Service through its Endpoints, not its EndpointSlices.
    client.CoreV1Api(api).create_namespaced_endpoints(NAMESPACE, {
        "metadata": {"name": SERVICE},
        "subsets": [{"addresses": [{"ip": NODE_IP}], "ports": [{"name": "web", "port": port, "protocol": "TCP"}]}],
    })  # fmt: skip
    client.DiscoveryV1Api(api).create_namespaced_endpoint_slice(NAMESPACE, {
        "metadata": {"name": SERVICE, "labels": {"kubernetes.io/service-name": SERVICE}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
        "ports": [{"name": "web", "port": port, "protocol": "TCP"}],
    })  # fmt: skip


def wait_ready(port: int, timeout: float, process: Any) -> None:
    """Prometheus's own readiness endpoint; a dead process fails at once with its log."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{NODE_IP}:{port}/-/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if not process(NAME).alive():
            raise ClusterError(f"{NAME} exited:\n{process(NAME).log_tail()}")
        if time.monotonic() > deadline:
            raise ClusterError(f"{NAME} not ready within {timeout:.0f}s:\n{process(NAME).log_tail()}")
        time.sleep(0.5)
