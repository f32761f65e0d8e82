"""Disaggregated inference: one request through a user's split serving stack reaches every role.

Proves `disaggregated_inference`: an inference service split into separately scaled roles (such as prefill and
decode) answers a request that passes through every role.

kaic deploys no serving stack of its own: `--disaggregated-namespace`, `--disaggregated-role` selectors
(llm-d's prefill and decode by default) and `--disaggregated-endpoint` name the user's stack.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from kaic.areas import images, inference, workloads
from kaic.probe import Cluster, Facts, Recorder, Rule, RunContext, Unknown, crds_in, probe, require

SERVING_GROUPS = ("llm-d.ai", "leaderworkerset.x-k8s.io", "nvidia.com")
RBAC = (
    Rule("", "pods", ("create", "get", "list", "delete")),
    Rule("", "pods", ("list",), namespaced=False),
    Rule("", "pods/log", ("get",)),
    Rule("", "events", ("list",)),
    Rule("", "nodes", ("get", "list"), namespaced=False),
)


@probe(
    "disaggregated_inference", "discovery", test="TestKaicDiscovery/DisaggregatedInference", kind="discovery"
)
def test_disaggregated_inference_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Disaggregated inference, discovery
    Description: Records the CRDs of disaggregated-serving stacks (llm-d, LeaderWorkerSet, Dynamo); a record,
    never a verdict.
    """
    require(facts, "crds")
    evidence.add("fact", "servingCrds", crds_in(facts, *SERVING_GROUPS))


def role_pods(cluster: Cluster, namespace: str, roles: dict[str, str]) -> dict[str, list[str]]:
    """Running pods of each role (namespace "" = every namespace, as namespace/name)."""
    found = {}
    for role, selector in roles.items():
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        pods = list(cluster.list(path, labelSelector=selector))
        names = inference.running(pods)
        if not namespace:
            names = sorted(
                f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                for p in pods
                if p["metadata"]["name"] in names
            )
        found[role] = names
    return found


@probe(
    "disaggregated_inference",
    "request-through-roles",
    test="TestKaicDisaggregatedInference/RequestThroughRoles",
    creates=("pods",),
    images=("python",),
    rbac=RBAC,
    timeout_s=420,
)
def test_request_through_roles(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Disaggregated inference, one request through every role
    Description: Every role of the named serving stack MUST have a Running pod, and one request with a unique
    `x-request-id` MUST be answered 200 and logged by a pod of every role.

    1. Without `--disaggregated-namespace` the probe is unknown, naming the Running role pods it found in any
       namespace.
    2. Every role must have a Running pod in that namespace; no `--disaggregated-endpoint` is then unknown.
    3. A client pod sends one completion request with a unique `x-request-id` to the endpoint (the model of
       `--disaggregated-model`, else the first the endpoint lists); it must be answered 200.
    4. The id must appear, as a whole token, in the recent log (any container) of a Running pod of every role.
    """
    require(facts, "crds")
    roles = inference.parse_roles(run.settings.disaggregated.roles)
    target_ns = run.settings.disaggregated.namespace
    endpoint = run.settings.disaggregated.endpoint
    evidence.add(
        "fact",
        "disaggregated",
        {
            "namespace": target_ns or "(any)",
            "roles": roles,
            "endpoint": endpoint,
            "servingCrds": sorted(crds_in(facts, *SERVING_GROUPS)),
        },
    )
    pods = role_pods(cluster, target_ns, roles)
    evidence.add("fact", "runningPodsByRole", pods)
    if not target_ns:
        seen = {role: names for role, names in pods.items() if names}
        if seen:
            listed = "; ".join(f"{role}: {', '.join(names[:5])}" for role, names in seen.items())
            found = f"Running pods found ({listed})"
        else:
            found = f"no Running pod matches {' or '.join(roles.values())} in any namespace"
        raise Unknown(
            f"no disaggregated serving stack named for kaic to exercise: {found}; deploy one and name it "
            "with --disaggregated-namespace and --disaggregated-endpoint"
        )
    assert not (missing := inference.role_problems(pods)), f"namespace {target_ns}: {'; '.join(missing)}"
    if not endpoint:
        raise Unknown(
            f"every role has a Running pod in {target_ns}, but no --disaggregated-endpoint names where "
            "to send a request, so whether it passes through every role is unproven"
        )
    request_id = f"kaic-{run.id}-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    nodes, tolerations = workloads.container_nodes(cluster, run.settings)
    image = images.for_run(run.settings)["python"]
    env = {
        "TARGET": endpoint,
        "REQUEST_ID": request_id,
        "MODEL": run.settings.disaggregated.model,
    }
    body = inference.client_pod("client", run.labels, image, env, nodes, tolerations)
    _, answers = inference.ask(cluster, namespace, body, evidence)
    since = int(time.monotonic() - started) + 60
    seen_by_role = {
        role: [
            p
            for p in names
            if any(inference.mentions(log, request_id) for log in pod_logs(cluster, target_ns, p, since))
        ]
        for role, names in pods.items()
    }
    evidence.add("fact", "requestSeenBy", {"requestId": request_id, **seen_by_role})
    problems = inference.trace_problems(answers[0] if answers else None, seen_by_role, request_id)
    assert not problems, f"{endpoint}: {'; '.join(problems)}"


def pod_logs(cluster: Cluster, namespace: str, name: str, since_s: int) -> Iterator[str]:
    """Each container's recent log (serving pods often put a routing sidecar beside the model server)."""
    pod = cluster.get(workloads.pods_path(namespace, name))
    for container in pod["spec"]["containers"]:
        yield workloads.pod_log(cluster, namespace, name, container["name"], since_s)
