"""The local cluster's custom metrics pipeline: `kaic-metrics-adapter`, registered as custom.metrics.k8s.io.

The adapter (cluster/metrics-adapter, on sigs.k8s.io/custom-metrics-apiserver) runs on this host beside the
real node's daemons and listens on the node address: the aggregator reaches an APIService through its
Service's endpoints, and endpoints may not be loopback. It scrapes the pods on the node's bridge that carry
the prometheus.io/scrape annotations, so the real HPA controller scales on what those pods serve. With `stale`
it serves each pod's first reading forever: the broken pipeline a pod-autoscaling probe must fail on.
"""

from __future__ import annotations

import base64
import contextlib
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from kaic.localcluster import kubeconfig
from kaic.localcluster.node import NODE_IP
from kaic.localcluster.pki import ClientIdentity, ClusterPKI
from kaic.localcluster.processes import ClusterError, free_ports

IDENTITY = ClientIdentity("metrics-adapter", "kaic-metrics-adapter")
NAME = "kaic-metrics-adapter"
NAMESPACE = "kube-system"
GROUP = "custom.metrics.k8s.io"
VERSIONS = ("v1beta2", "v1beta1")
BINARY = NAME


def start(
    pki: ClusterPKI, process: Any, state_dir: Path, server: str, bin_dir: Path, stale: bool
) -> dict[str, Any]:
    """Start the adapter process with its own identity and serving certificate; return what `register`
    needs."""
    binary = bin_dir / BINARY
    if not binary.exists():
        raise ClusterError(f"{binary} is missing; build it with `make cluster`")
    client_pair = pki.issue_client(IDENTITY)
    serving = pki.issue_serving(NAME, dns_names=(f"{NAME}.{NAMESPACE}.svc",), ip_addresses=(NODE_IP,))
    config = state_dir / f"{IDENTITY.file_stem}.kubeconfig"
    kubeconfig.write(config, server, pki.ca.cert, client_pair, IDENTITY.user)
    (port,) = free_ports(1)
    argv = [
        str(binary),
        f"--bind-address={NODE_IP}",
        f"--secure-port={port}",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
        f"--lister-kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        *(["--stale"] if stale else []),
    ]
    process(NAME).start(argv)
    return {"port": port, "stale": stale}


def grant(api: client.ApiClient) -> None:
    """The RBAC upstream adapter deployments grant, before the adapter starts (it reads its CA at once)."""
    rbac = client.RbacAuthorizationV1Api(api)
    subject = [{"kind": "User", "name": IDENTITY.user, "apiGroup": "rbac.authorization.k8s.io"}]
    rbac.create_cluster_role(
        client.V1ClusterRole.model_validate(
            {
                "metadata": {"name": NAME},
                "rules": [{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list"]}],
            }
        )
    )
    for role in (NAME, "system:auth-delegator"):
        rbac.create_cluster_role_binding(
            client.V1ClusterRoleBinding.model_validate(
                {
                    "metadata": {"name": f"{NAME}:{role.replace(':', '-')}"},
                    "subjects": subject,
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                }
            )
        )
    rbac.create_namespaced_role_binding(
        NAMESPACE,
        client.V1RoleBinding.model_validate(
            {
                "metadata": {"name": f"{NAME}:auth-reader"},
                "subjects": subject,
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "extension-apiserver-authentication-reader",
                },
            }
        ),
    )


def register(api: client.ApiClient, ca_bundle: bytes, port: int) -> None:
    """Service, EndpointSlice (the node address) and the APIServices the aggregator routes to them."""
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    core.create_namespaced_service(
        NAMESPACE,
        client.V1Service.model_validate(
            {
                "metadata": {"name": NAME},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]},
            }
        ),
    )
    discovery.create_namespaced_endpoint_slice(
        NAMESPACE,
        client.V1EndpointSlice.model_validate(
            {
                "metadata": {"name": NAME, "labels": {"kubernetes.io/service-name": NAME}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            }
        ),
    )
    registration = client.ApiregistrationV1Api(api)
    for priority, version in enumerate(VERSIONS):
        registration.create_api_service(
            client.V1APIService.model_validate(
                {
                    "metadata": {"name": f"{version}.{GROUP}"},
                    "spec": {
                        "group": GROUP,
                        "version": version,
                        "service": {"namespace": NAMESPACE, "name": NAME, "port": 443},
                        "caBundle": base64.b64encode(ca_bundle).decode(),
                        "groupPriorityMinimum": 100,
                        "versionPriority": 200 - priority,
                    },
                }
            )
        )


def wait_available(api: client.ApiClient, timeout: float, process: Any) -> None:
    """Every APIService Available, as the aggregator sees it; a dead adapter fails at once with its log."""
    registration = client.ApiregistrationV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        states = {}
        for version in VERSIONS:
            with contextlib.suppress(client.ApiException):
                status = registration.read_api_service(f"{version}.{GROUP}").status
                conditions = (status.conditions if status else None) or []
                states[version] = next((c.status for c in conditions if c.type == "Available"), "")
        if all(states.get(v) == "True" for v in VERSIONS):
            return
        if not process(NAME).alive():
            raise ClusterError(f"{NAME} exited:\n{process(NAME).log_tail()}")
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{GROUP} not Available within {timeout:.0f}s ({states}):\n{process(NAME).log_tail()}"
            )
        time.sleep(0.5)
