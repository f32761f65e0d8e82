"""AI operators: a robust CRD controller with a working admission webhook.

The operator is chosen by its CRDs (`--operator`, else the first supported one installed;
`kaic.areas.operators`). Five checks, as upstream's `TestRobustCRDControllerOperation` has five subtests, but
each is kaic's own (`TestKaicRobustController/*`): kaic finds the operator's pods through its webhook's
Service rather than a fixed label, asks the webhook's Service for ready endpoints, insists that the denial
names the operator's webhook, and does not count success that a node without containers simulated.

Proves `robust_controller`: an AI operator with its own CRDs and admission webhook is installed and working:
it rejects invalid objects and reconciles valid ones.

A profile per operator says how to recognise it (its CRDs; its validating webhook by the webhook's entry name,
whatever the configuration is called), a valid object, an invalid one that the CRD schema accepts but the
operator's webhook must deny, and what success means. A behavioural probe that finds no supported operator
installed (or not the one `--operator` names) is unknown.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from kaic.areas import images, operators, policy, workloads
from kaic.kube.client import describe_error
from kaic.kube.conditions import is_ready
from kaic.probe import (
    Cluster,
    Facts,
    ProbeError,
    Recorder,
    Rule,
    RunContext,
    Unknown,
    crds_in,
    probe,
    require,
)
from kaic.settings import Operator

OPERATOR_GROUPS = (
    "trainer.kubeflow.org",
    "kubeflow.org",
    "ray.io",
    "serving.kserve.io",
    "nvidia.com",
    "apps.nvidia.com",
    "slinky.slurm.net",
)
WEBHOOKS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
INSTALLATION_RBAC = (
    Rule("admissionregistration.k8s.io", "validatingwebhookconfigurations", ("list",), namespaced=False),
    Rule("", "services", ("get",)),
    Rule("", "pods", ("list", "watch")),
    Rule("discovery.k8s.io", "endpointslices", ("list",)),
)
OBJECT_RBAC = tuple(
    Rule(p.resource.group, p.resource.plural, ("create", "get", "list", "watch", "delete"))
    for p in operators.PROFILES.values()
) + tuple(
    Rule(p.runtime.group, p.runtime.plural, ("get",), namespaced=False)
    for p in operators.PROFILES.values()
    if p.runtime
)
OBJECTS = tuple(f"{p.resource.group}/{p.resource.plural}" for p in operators.PROFILES.values())


@probe("robust_controller", "discovery", test="TestKaicDiscovery/RobustController", kind="discovery")
def test_robust_controller_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Robust controller, discovery
    Description: Records the CRDs of the AI operators kaic knows (Kubeflow Trainer, KubeRay, KServe, Dynamo,
    NIM, Slinky); a record, never a verdict.
    """
    require(facts, "crds")
    evidence.add("fact", "operatorCrds", crds_in(facts, *OPERATOR_GROUPS))


def chosen(facts: Facts, run: RunContext, evidence: Recorder) -> tuple[operators.OperatorProfile, Operator]:
    """The operator to judge; none installed (or not the one asked for) is unknown: it could be installed."""
    require(facts, "crds")
    settings = run.settings.operator
    try:
        profile, found = operators.select(settings.operator, facts["crds"] or {})
    except operators.NotInstalled as absent:
        raise Unknown(str(absent)) from None
    evidence.add("fact", "operator", {"profile": profile.name, "crds": found, "tested": profile.tested})
    return profile, settings


def webhook_of(cluster: Cluster, profile: operators.OperatorProfile) -> tuple[str, dict[str, Any]] | None:
    return operators.find_webhook(cluster.list(WEBHOOKS), profile.validator)


def operator_pods(cluster: Cluster, profile: operators.OperatorProfile) -> tuple[str, str]:
    """(namespace, label selector) of the operator's pods: those behind its webhook's Service."""
    found = webhook_of(cluster, profile)
    assert found is not None, (
        f"no validating webhook {profile.validator} is configured, so no operator pods serve it"
    )
    configuration, webhook = found
    service = (webhook.get("clientConfig") or {}).get("service")
    assert service, (
        f"webhook {profile.validator} ({configuration}) calls a URL, not a Service of the operator"
    )
    svc = cluster.get_or_none(f"/api/v1/namespaces/{service['namespace']}/services/{service['name']}")
    assert svc is not None, (
        f"webhook {profile.validator} names Service {service['namespace']}/{service['name']}, "
        "which does not exist"
    )
    selector = ",".join(
        f"{k}={v}" for k, v in sorted(((svc.get("spec") or {}).get("selector") or {}).items())
    )
    if not selector:
        raise Unknown(
            f"Service {service['namespace']}/{service['name']} selects no pods (its endpoints are managed "
            "by hand), so kaic cannot tell which pods are the operator's"
        )
    return service["namespace"], selector


@probe(
    "robust_controller",
    "operator-pods-ready",
    test="TestKaicRobustController/OperatorPodsReady",
    rbac=INSTALLATION_RBAC,
    timeout_s=660,
)
def test_operator_pods_ready(cluster: Cluster, run: RunContext, facts: Facts, evidence: Recorder) -> None:
    """Testname: Robust controller, operator pods Ready
    Description: Every pod behind the operator's validating webhook Service MUST be Ready within
    `--operator-ready-timeout`.

    1. Choose the operator (above).
    2. Its pods are those its webhook's Service selects: no such webhook, a webhook that calls a URL instead
       of a Service, or a Service that does not exist fails; a Service that selects no pods (its endpoints
       managed by hand) is unknown.
    3. Pods must match that selector, and all be Ready within `--operator-ready-timeout`.
    """
    profile, settings = chosen(facts, run, evidence)
    namespace, selector = operator_pods(cluster, profile)
    path = workloads.pods_path(namespace)
    # One list, then a watch from its version: the pods are judged whole, and every change after it is seen.
    listing = cluster.get(path, labelSelector=selector)
    pods = {p["metadata"]["name"]: p for p in listing.get("items") or []}
    version = listing["metadata"]["resourceVersion"]
    evidence.add("fact", "operatorPods", {"namespace": namespace, "selector": selector, "pods": list(pods)})

    def all_ready() -> bool:
        return bool(pods) and all(is_ready(p) for p in pods.values())

    if not all_ready():
        for kind, obj in cluster.watch(path, settings.ready_timeout_s, version, labelSelector=selector):
            if kind == "DELETED":
                pods.pop(obj["metadata"]["name"], None)
            else:
                pods[obj["metadata"]["name"]] = obj
            if all_ready():
                break
    if not all_ready():
        evidence.add("object", "operator pods", {name: p.get("status") for name, p in pods.items()})
        raise AssertionError(
            f"{len(pods)} operator pod(s) in {namespace} ({selector}), not all Ready after "
            f"{settings.ready_timeout_s:.0f}s"
            if pods
            else f"no pod in {namespace} matches {selector}"
        )
    evidence.add(
        "text",
        "ready",
        ", ".join(f"{name} on {p['spec'].get('nodeName')}" for name, p in sorted(pods.items())),
    )


@probe(
    "robust_controller",
    "crds-established",
    test="TestKaicRobustController/CrdsEstablished",
    rbac=(Rule("apiextensions.k8s.io", "customresourcedefinitions", ("get",), namespaced=False),),
    timeout_s=60,
)
def test_crds_established(cluster: Cluster, run: RunContext, facts: Facts, evidence: Recorder) -> None:
    """Testname: Robust controller, CRDs Established
    Description: Every CRD of the operator's profile MUST be registered and Established.

    1. Choose the operator (above).
    2. Each CRD of the profile must exist with its `Established` condition True.
    """
    profile, _ = chosen(facts, run, evidence)
    state = {}
    for name in profile.crds:
        crd = cluster.get_or_none(f"{CRDS}/{name}")
        state[name] = (
            "missing" if crd is None else operators.conditions(crd).get("Established", "no condition")
        )
    evidence.add("fact", "Established", state)
    broken = {name: value for name, value in state.items() if value != "True"}
    assert not broken, f"{profile.title} CRDs not Established: {broken}"


@probe(
    "robust_controller",
    "webhook-serving",
    test="TestKaicRobustController/WebhookServing",
    rbac=INSTALLATION_RBAC,
    timeout_s=60,
)
def test_webhook_serving(cluster: Cluster, run: RunContext, facts: Facts, evidence: Recorder) -> None:
    """Testname: Robust controller, webhook serving
    Description: The operator's validating webhook MUST be configured for creating its kind and trust a CA
    bundle, and, where it calls a Service, that Service MUST have ready endpoints.

    1. Choose the operator (above).
    2. The webhook must be configured, with a rule for creating the probed kind and a `caBundle`.
    3. Where it calls a Service, that Service's EndpointSlices must hold a ready endpoint.
    """
    profile, _ = chosen(facts, run, evidence)
    found = webhook_of(cluster, profile)
    assert found is not None, (
        f"{profile.title} is installed but no validating webhook {profile.validator} is configured"
    )
    configuration, webhook = found
    client = webhook.get("clientConfig") or {}
    evidence.add(
        "object",
        f"webhook {profile.validator} in {configuration}",
        {k: v for k, v in webhook.items() if k != "clientConfig"}
        | {"service": client.get("service"), "caBundleBytes": len(client.get("caBundle") or "")},
    )
    covered = any(
        profile.resource.group in r.get("apiGroups", [])
        and {profile.resource.plural, "*"} & set(r.get("resources", []))
        and {"CREATE", "*"} & set(r.get("operations", []))
        for r in webhook.get("rules") or []
    )
    assert covered, f"webhook {profile.validator} has no rule for creating {profile.resource.crd}"
    assert client.get("caBundle"), f"webhook {profile.validator} has no caBundle"
    service = client.get("service")
    if service:
        slices = cluster.list(
            f"/apis/discovery.k8s.io/v1/namespaces/{service['namespace']}/endpointslices",
            labelSelector=f"kubernetes.io/service-name={service['name']}",
        )
        ready = operators.ready_endpoints(slices)
        evidence.add("fact", "readyEndpoints", ready)
        assert ready, (
            f"Service {service['namespace']}/{service['name']} "
            f"of webhook {profile.validator} has no ready endpoint"
        )


@probe(
    "robust_controller",
    "webhook-rejects-invalid",
    test="TestKaicRobustController/WebhookRejectsInvalid",
    creates=OBJECTS,
    rbac=OBJECT_RBAC,
    timeout_s=60,
)
def test_webhook_rejects_invalid(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Robust controller, webhook rejects an invalid object (⊖)
    Description: An object the CRD schema accepts but the operator's rules forbid MUST be denied by the
    operator's own webhook, by name.

    1. Choose the operator (above).
    2. The profile's invalid object is created in the probe's namespace.
    3. It must be denied, and the denial must name the operator's webhook (`admission webhook "<name>" denied
       the request`). Admitted (then deleted), or refused because a webhook on its path cannot be called,
       fails; refused by anything else (the schema, another admission plugin) is an error: the webhook was
       not exercised.
    """
    profile, _ = chosen(facts, run, evidence)
    body = profile.invalid("kaic-invalid", run.labels, images.for_run(run.settings))
    path = profile.resource.path(namespace)
    try:
        cluster.create(path, body)
    except ApiException as refused:
        message = describe_error(refused)
        evidence.add("text", "refusal", message)
        verdict = operators.denial(message, profile.validator)
        assert verdict != "unreachable", (
            f"a webhook on the {profile.resource.kind}'s path could not be called: {message}"
        )
        if verdict == "other":
            raise ProbeError(
                f"the invalid {profile.resource.kind} was refused before the webhook judged it: {message}"
            )
        return
    cluster.delete(f"{path}/kaic-invalid")
    raise AssertionError(
        f"an invalid {profile.resource.kind} was admitted: webhook {profile.validator} did not deny it"
    )


@probe(
    "robust_controller",
    "controller-reconciles",
    test="TestKaicRobustController/ControllerReconcilesValid",
    creates=OBJECTS,
    rbac=(
        *OBJECT_RBAC,
        *INSTALLATION_RBAC,
        Rule("", "nodes", ("get", "list"), namespaced=False),
        Rule("", "events", ("list",)),
    ),
    images=("ray",),
    timeout_s=660,
)
def test_controller_reconciles(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Robust controller, controller reconciles a valid object (⊕)
    Description: A valid object MUST be admitted and the controller MUST drive it to success (a TrainJob:
    Complete, its pods run to completion) within `--operator-reconcile-timeout`.

    1. Choose the operator (above); a runtime the profile needs (`--operator-runtime`, else its default) that
       does not exist is unknown.
    2. The profile's valid object is created: refused by the cluster's policy (not the operator's webhook) is
       unknown; refused otherwise fails.
    3. It is watched until the controller reports success or failure, within `--operator-reconcile-timeout`;
       between watch spans the namespace's pods are checked, so that policy holding them ends the wait as
       unknown and an image that cannot be pulled as an error. Failure, or no success in time, fails.
    4. Success whose pods ran on nodes that run no containers (kwok) is unknown, never a pass.
    """
    profile, settings = chosen(facts, run, evidence)
    runtime = settings.runtime or profile.default_runtime
    if profile.runtime and cluster.get_or_none(profile.runtime.path(name=runtime)) is None:
        raise Unknown(
            f"{profile.runtime.kind} {runtime} does not exist: install the operator's default runtimes "
            "or name one with --operator-runtime"
        )
    body = profile.valid("kaic-valid", run.labels, runtime, images.for_run(run.settings))
    path = profile.resource.path(namespace)
    try:
        cluster.create(path, body)
    except ApiException as refused:
        if (denied := policy.api_denial(refused)) and profile.validator not in denied:
            raise Unknown(denied) from None  # not the operator's own webhook: the cluster's policy
        raise AssertionError(
            f"a valid {profile.resource.kind} was refused: {describe_error(refused)}"
        ) from None
    progress = operators.Progress()
    # The controller's pods are checked between watch spans: policy or an image holding them ends the wait.
    guard = policy.Guard(cluster, namespace, owners=("kaic-valid",))
    deadline = time.monotonic() + settings.reconcile_timeout_s
    while not (progress.succeeded or progress.failed) and (left := deadline - time.monotonic()) > 0:
        span = min(left, guard.EVENTS_EVERY_S)
        for _, obj in cluster.watch(path, span, fieldSelector="metadata.name=kaic-valid"):
            progress = profile.progress(obj)
            if progress.succeeded or progress.failed:
                evidence.add("object", f"{profile.resource.kind} status", obj.get("status") or {})
                break
        else:
            guard.pods(cluster.list(workloads.pods_path(namespace)))
    pods = {
        p["metadata"]["name"]: (p["spec"].get("nodeName", ""), p["status"].get("phase", ""))
        for p in cluster.list(workloads.pods_path(namespace))
    }
    evidence.add("fact", "pods (node, phase)", pods)
    assert not progress.failed, f"the controller reported {profile.resource.kind} failed: {progress.failed}"
    assert progress.succeeded, (
        f"{profile.resource.kind} not reconciled to success within {settings.reconcile_timeout_s:.0f}s "
        f"({progress.state})"
    )
    simulated = sorted(
        {node for node, _ in pods.values() if node and not workloads.runs_containers(cluster, node)}
    )
    if simulated:
        raise Unknown(
            f"the {profile.resource.kind} succeeded, but its pods ran on nodes that run no containers "
            f"({', '.join(simulated)}), so their success was simulated"
        )
