"""AI operator profiles: how kaic recognises an operator and exercises its CRDs, webhook and controller.

A profile says, for one operator: the CRDs that mark it installed, the validating webhook (by the name of the
webhook entry, which is stable across install methods) that judges the probed kind, a valid object and an
invalid one that only the webhook (never the OpenAPI schema) turns away, and what "reconciled to success"
means for the valid one. Probes (conformance/test_operators.py) only read profiles; adding an operator is a
new entry in PROFILES.

`kubeflow-trainer` follows the upstream suite (TrainJob on a ClusterTrainingRuntime, success = Complete) and
runs for real on kaic's local cluster; `kuberay` is written from KubeRay's documented API and webhook and is
**untested against a running operator**.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

AUTO = "auto"


@dataclass(frozen=True)
class Resource:
    """A custom resource kind: where it is served and what it is called."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def crd(self) -> str:
        return f"{self.plural}.{self.group}"

    def path(self, namespace: str = "", name: str = "") -> str:
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        return f"/apis/{self.group}/{self.version}{scope}/{self.plural}" + (f"/{name}" if name else "")

    def body(self, name: str, labels: Mapping[str, str], spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": f"{self.group}/{self.version}",
            "kind": self.kind,
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": spec,
        }


@dataclass(frozen=True)
class Progress:
    """What the controller has made of the valid object so far."""

    succeeded: bool = False
    failed: str = ""  # a terminal failure the controller reported ("" while none)
    state: str = ""  # the status in a few words, for evidence


@dataclass(frozen=True)
class OperatorProfile:
    name: str
    title: str
    tested: str  # where this profile has been exercised
    crds: tuple[str, ...]  # every CRD the operator installs that the probes rely on; any present = installed
    validator: str  # the validating webhook entry that judges `resource` (as named in its configuration)
    resource: Resource  # the kind the probes create
    valid: Callable[
        [str, Mapping[str, str], str, Mapping[str, str]], dict[str, Any]
    ]  # name, labels, runtime, images
    invalid: Callable[[str, Mapping[str, str], Mapping[str, str]], dict[str, Any]]  # name, labels, images
    progress: Callable[[dict[str, Any]], Progress]
    install_hint: str
    # Where the operator usually runs, for the record when its webhook names no service.
    namespace: str = ""
    # A cluster-scoped object the valid object refers to and the operator's install provides (Trainer's
    # runtime).
    runtime: Resource | None = None
    default_runtime: str = ""
    images: tuple[str, ...] = ()  # keys of kaic.areas.images.DEFAULTS the valid object runs

    def installed(self, crds: Iterable[str]) -> list[str]:
        """The profile's CRDs among the cluster's."""
        present = set(crds)
        return [crd for crd in self.crds if crd in present]


def conditions(obj: Mapping[str, Any]) -> dict[str, str]:
    """Condition type -> status of an object."""
    return {c.get("type", ""): c.get("status", "") for c in (obj.get("status") or {}).get("conditions") or []}


def condition_message(obj: Mapping[str, Any], kind: str) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return f"{c.get('reason', '')}: {c.get('message', '')}".strip(": ")
    return ""


# ---- Kubeflow Trainer v2 ---------------------------------------------------------------------------------

TRAINJOB = Resource("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob")
CLUSTER_TRAINING_RUNTIME = Resource(
    "trainer.kubeflow.org", "v1alpha1", "clustertrainingruntimes", "ClusterTrainingRuntime", namespaced=False
)


def _trainjob(name: str, labels: Mapping[str, str], runtime: str) -> dict[str, Any]:
    ref = {"name": runtime, "apiGroup": TRAINJOB.group, "kind": CLUSTER_TRAINING_RUNTIME.kind}
    return TRAINJOB.body(name, labels, {"runtimeRef": ref})


def _trainjob_progress(obj: Mapping[str, Any]) -> Progress:
    seen = conditions(obj)
    state = ", ".join(f"{k}={v}" for k, v in sorted(seen.items())) or "no conditions yet"
    if seen.get("Failed") == "True":
        return Progress(failed=condition_message(obj, "Failed") or "Failed", state=state)
    return Progress(succeeded=seen.get("Complete") == "True", state=state)


TRAINER = OperatorProfile(
    name="kubeflow-trainer",
    title="Kubeflow Trainer v2",
    tested="kaic local reference cluster: the real trainer-controller-manager v2.3.0 and JobSet v0.12.0",
    crds=(TRAINJOB.crd, CLUSTER_TRAINING_RUNTIME.crd, "trainingruntimes.trainer.kubeflow.org"),
    validator="validator.trainjob.trainer.kubeflow.org",
    resource=TRAINJOB,
    # As upstream: a runtime that does not exist passes the schema; only the webhook knows it is missing.
    invalid=lambda name, labels, images: _trainjob(name, labels, "kaic-no-such-runtime"),
    valid=lambda name, labels, runtime, images: _trainjob(name, labels, runtime),
    progress=_trainjob_progress,
    install_hint="install Kubeflow Trainer (with its default runtimes and JobSet)",
    namespace="kubeflow-system",
    runtime=CLUSTER_TRAINING_RUNTIME,
    default_runtime="torch-distributed",
)


# ---- KubeRay ---------------------------------------------------------------------------------------------

RAYCLUSTER = Resource("ray.io", "v1", "rayclusters", "RayCluster")


def _raycluster(name: str, labels: Mapping[str, str], image: str, groups: tuple[str, ...]) -> dict[str, Any]:
    def pod(role: str) -> dict[str, Any]:
        container = {
            "name": f"ray-{role}",
            "image": image,
            "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        }
        return {"spec": {"containers": [container]}}

    workers = [
        {
            "groupName": group,
            "replicas": 0,
            "minReplicas": 0,
            "maxReplicas": 1,
            "rayStartParams": {},
            "template": pod("worker"),
        }
        for group in groups
    ]
    spec = {"headGroupSpec": {"rayStartParams": {}, "template": pod("head")}, "workerGroupSpecs": workers}
    return RAYCLUSTER.body(name, labels, spec)


def _raycluster_progress(obj: Mapping[str, Any]) -> Progress:
    status = obj.get("status") or {}
    seen = conditions(obj)
    state = f"state={status.get('state', '')} " + ", ".join(f"{k}={v}" for k, v in sorted(seen.items()))
    if status.get("state") == "failed" or seen.get("ReplicaFailure") == "True":
        return Progress(
            failed=status.get("reason") or condition_message(obj, "ReplicaFailure") or "failed", state=state
        )
    return Progress(
        succeeded=seen.get("RayClusterProvisioned") == "True" or status.get("state") == "ready", state=state
    )


KUBERAY = OperatorProfile(
    name="kuberay",
    title="KubeRay",
    tested="untested against a running operator: written from KubeRay v1.5's API and webhook",
    crds=(RAYCLUSTER.crd, "rayjobs.ray.io", "rayservices.ray.io"),
    # KubeRay serves it only when installed with webhooks; a KubeRay without one fails the webhook probes.
    validator="vraycluster.kb.io",
    resource=RAYCLUSTER,
    # Unique worker group names are the webhook's rule; the CRD schema allows duplicates.
    invalid=lambda name, labels, images: _raycluster(name, labels, images["ray"], ("workers", "workers")),
    valid=lambda name, labels, runtime, images: _raycluster(name, labels, images["ray"], ("workers",)),
    progress=_raycluster_progress,
    install_hint="install the KubeRay operator with its validating webhook",
    namespace="ray-system",
    images=("ray",),
)

PROFILES: dict[str, OperatorProfile] = {p.name: p for p in (TRAINER, KUBERAY)}
CHOICES = (AUTO, *PROFILES)


class NotInstalled(Exception):
    """No supported operator, or not the one asked for, is installed (the reason says which)."""


def select(choice: str, crds: Iterable[str]) -> tuple[OperatorProfile, list[str]]:
    """The operator to judge and its CRDs found: the one asked for, else the first installed one."""
    crds = list(crds)
    if choice != AUTO:
        profile = PROFILES[choice]
        if not (found := profile.installed(crds)):
            raise NotInstalled(
                f"{profile.title} was asked for (--operator {choice}) but none of its CRDs "
                f"({', '.join(profile.crds)}) is installed: {profile.install_hint}"
            )
        return profile, found
    for profile in PROFILES.values():
        if found := profile.installed(crds):
            return profile, found
    raise NotInstalled(
        "no supported AI operator is installed (no CRD of "
        + "; ".join(f"{p.title}: {', '.join(p.crds)}" for p in PROFILES.values())
        + "): install one, or name it with --operator"
    )


def find_webhook(configurations: Iterable[Mapping[str, Any]], name: str) -> tuple[str, dict[str, Any]] | None:
    """(configuration name, webhook entry) of the validating webhook called `name`, wherever it is
    configured."""
    for configuration in configurations:
        for webhook in configuration.get("webhooks") or []:
            if webhook.get("name") == name:
                return configuration["metadata"]["name"], dict(webhook)
    return None


def denial(message: str, validator: str) -> str:
    """How the API server turned an object away: "webhook" (the named webhook denied it), "unreachable" (a
    webhook on the object's path, such as the operator's defaulter, could not be called and its failurePolicy
    refused) or "other" (schema, quota, another admission plugin)."""
    if f'admission webhook "{validator}" denied the request' in message:
        return "webhook"
    if 'failed calling webhook "' in message:
        return "unreachable"
    return "other"


def ready_endpoints(slices: Iterable[Mapping[str, Any]]) -> list[str]:
    """Addresses of the ready endpoints in a Service's EndpointSlices ("ready" unset counts as ready)."""
    found: list[str] = []
    for item in slices:
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is not False:
                found += endpoint.get("addresses") or []
    return sorted(set(found))
