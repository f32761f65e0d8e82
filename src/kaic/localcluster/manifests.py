"""Upstream manifests into the local cluster: a file's YAML documents, each created at its kind's collection.

The operator and Gateway API installs create upstream's own files (CRDs, RBAC, webhooks, policies) as they
are, through kaic's API access; a refusal names the object it was about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from kaic.kube import client as kube
from kaic.kube.conditions import is_true
from kaic.localcluster.processes import ClusterError, Managed

# The kinds the local installs create; {ns} is the object's namespace.
COLLECTIONS = {
    "Namespace": "/api/v1/namespaces",
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "CustomResourceDefinition": "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "MutatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
    "ValidatingAdmissionPolicy": "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": (
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
    ),
    "ClusterTrainingRuntime": "/apis/trainer.kubeflow.org/v1alpha1/clustertrainingruntimes",
    "GatewayClass": "/apis/gateway.networking.k8s.io/v1/gatewayclasses",
    "KWOKNodeClass": "/apis/karpenter.kwok.sh/v1alpha1/kwoknodeclasses",
    "NodePool": "/apis/karpenter.sh/v1/nodepools",
    "ResourceFlavor": "/apis/kueue.x-k8s.io/v1beta2/resourceflavors",
}


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def create(cluster: kube.Cluster, obj: dict[str, Any]) -> None:
    path = COLLECTIONS[obj["kind"]].format(ns=obj["metadata"].get("namespace", ""))
    try:
        cluster.create(path, obj)
    except ApiException as error:
        raise ClusterError(
            f"creating {obj['kind']} {obj['metadata']['name']}: {kube.describe_error(error)}"
        ) from None


def wait_condition(
    cluster: kube.Cluster,
    kind: str,
    name: str,
    condition: str,
    timeout: float,
    process: Managed | None = None,
) -> None:
    """Watch the cluster-scoped object `name` of `kind` until its `condition` is True; the error shows its
    last conditions and, when given, the log of the process expected to set it."""
    last: dict[str, Any] = {}
    for _, obj in cluster.watch(COLLECTIONS[kind], timeout, fieldSelector=f"metadata.name={name}"):
        last = obj
        if is_true(obj, condition):
            return
    conditions = (last.get("status") or {}).get("conditions")
    raise ClusterError(
        f"{kind} {name} not {condition} within {timeout:.0f}s ({conditions})"
        + (f":\n{process.log_tail()}" if process else "")
    )
