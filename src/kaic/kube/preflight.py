"""Preflight: before any probe runs, prove the API answers and that kaic may do what the plan needs.

Access is checked with SelfSubjectAccessReview, cluster-wide (kaic works in namespaces it creates), one review
per verb; a refusal lists every missing permission at once so one RBAC change fixes them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kaic.kube.client import Cluster, describe_error
from kaic.probe import Rule


@dataclass
class Preflight:
    server_version: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # "verb group/resource"
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and not self.missing

    def problem(self) -> str:
        if self.error:
            return self.error
        return "missing permissions: " + ", ".join(self.missing)


def _allowed(cluster: Cluster, rule: Rule, verb: str) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"group": rule.group, "resource": rule.resource, "verb": verb}},
    }
    answer = cluster.create("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
    return bool((answer.get("status") or {}).get("allowed"))


def run_preflight(cluster: Cluster, rules: list[Rule]) -> Preflight:
    result = Preflight()
    try:
        result.server_version = cluster.get("/version")
        for rule in rules:
            for verb in rule.verbs:
                if not _allowed(cluster, rule, verb):
                    result.missing.append(f"{verb} {rule.group or 'core'}/{rule.resource}")
    except Exception as exc:  # noqa: BLE001 - any failure to talk to the API is a preflight failure
        result.error = f"API server {cluster.server()} unreachable or refusing: {describe_error(exc)}"
    return result
