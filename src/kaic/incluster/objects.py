"""The objects of an in-cluster run: their names, labels and manifests, all stated here once.

Everything lives in the run's own namespace but the ClusterRole and its binding, which are named after the
run. Each carries `runner_labels` (not the run-id label the run's closing sweep deletes by).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kaic.kube.labels import runner_labels
from kaic.settings import CLEANUP_TIMEOUT_S, RESULTS_TTL_S

SERVICE_ACCOUNT = "kaic-runner"
JOB = "kaic-runner"
CONTAINER = "runner"
RESULTS_ROLE = "kaic-runner-results"  # the runner's one permission beyond the plan's: its own ConfigMaps
RESULTS_DIR = "/results"  # an emptyDir: the run's folder is written here, then published
JOB_UID_ENV = "KAIC_RUNNER_JOB_UID"  # the Job's uid (downward API), so stored results belong to the Job
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"  # set by the Job controller on the Job's pods


def namespace(run_id: str) -> str:
    return f"kaic-{run_id}"


def cluster_role_name(run_id: str) -> str:
    return f"kaic-{run_id}-runner"


@dataclass(frozen=True)
class Runner:
    """Where and how the runner pod runs: the `--runner-*` flags."""

    image: str
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, str], ...] = ()
    # On the node's network, reaching the API server at the client's address (kaic's local cluster, whose
    # Service network pods cannot reach): (host, port), or None for the in-cluster `kubernetes` Service.
    api_server: tuple[str, str] | None = None
    results_ttl_s: int = int(RESULTS_TTL_S)
    grace_s: int = int(CLEANUP_TIMEOUT_S) + 60  # the run's closing sweep, then storing its results


def _meta(run_id: str, name: str, namespaced: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": runner_labels(run_id)}
    if namespaced:
        meta["namespace"] = namespace(run_id)
    return meta


def manifests(
    run_id: str, plan_role: dict[str, Any], args: list[str], runner: Runner
) -> list[dict[str, Any]]:
    """In creation order: the namespace, the ServiceAccount, the plan's ClusterRole (its rules exactly, under
    the run's name) and binding, the Role and binding for the runner's own results, and the Job."""
    ns = namespace(run_id)
    subject = [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}]
    role = {
        **plan_role,
        "metadata": {**plan_role["metadata"], **_meta(run_id, cluster_role_name(run_id), False)},
    }
    role["metadata"]["labels"] = {**plan_role["metadata"].get("labels", {}), **runner_labels(run_id)}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(run_id, ns, False)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(run_id, SERVICE_ACCOUNT)},
        role,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(run_id, cluster_role_name(run_id), False),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role["metadata"]["name"],
            },
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(run_id, RESULTS_ROLE),
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "update"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(run_id, RESULTS_ROLE),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RESULTS_ROLE},
            "subjects": subject,
        },
        job(run_id, args, runner),
    ]


def job(run_id: str, args: list[str], runner: Runner) -> dict[str, Any]:
    """One pod, never retried (a second attempt would be a second run under the same id), kept with its
    results for `results_ttl_s` after it ends; given the time an interrupted run needs to sweep and store
    what it has."""
    env = [
        {
            "name": JOB_UID_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_UID_LABEL}']"}},
        },
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    pod: dict[str, Any] = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": runner.grace_s,
        "containers": [
            {
                "name": CONTAINER,
                "image": runner.image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/usr/bin/python3", "-m", "kaic.incluster.runner"],
                "args": args,
                "env": env,
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "results", "mountPath": RESULTS_DIR},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [{"name": "results", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
    }
    if runner.node_selector:
        pod["nodeSelector"] = dict(runner.node_selector)
    if runner.tolerations:
        pod["tolerations"] = [dict(t) for t in runner.tolerations]
    if runner.api_server:
        host, port = runner.api_server
        pod.update(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
        # Explicit env wins over the kubelet's service variables.
        env += [
            {"name": "KUBERNETES_SERVICE_HOST", "value": host},
            {"name": "KUBERNETES_SERVICE_PORT", "value": port},
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(run_id, JOB),
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": runner.results_ttl_s,
            "template": {"metadata": {"labels": runner_labels(run_id)}, "spec": pod},
        },
    }


def path(manifest: dict[str, Any]) -> str:
    """The collection a manifest is created in."""
    group_version = manifest["apiVersion"]
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    plural = {
        "Namespace": "namespaces",
        "ServiceAccount": "serviceaccounts",
        "ClusterRole": "clusterroles",
        "ClusterRoleBinding": "clusterrolebindings",
        "Role": "roles",
        "RoleBinding": "rolebindings",
        "Job": "jobs",
    }[manifest["kind"]]
    ns = manifest["metadata"].get("namespace")
    return f"{prefix}/namespaces/{ns}/{plural}" if ns else f"{prefix}/{plural}"
