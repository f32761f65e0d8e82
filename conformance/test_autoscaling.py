"""Cluster autoscaling, judged by behaviour: a node autoscaler adds an accelerator node for a pending pod and
removes it again (certified mode: it buys a node), and answers a check-capacity ProvisioningRequest.

Proves `cluster_autoscaling`: where the platform scales nodes, it adds an accelerator node when a pod needs
one and removes it when it is no longer needed.

Both behavioural probes first:

1. Detect a node autoscaler: the Cluster Autoscaler (its status or Deployment in kube-system), Karpenter
   NodePools, Cluster API scaling annotations, the ProvisioningRequest CRD. None: not-applicable, the reason
   listing what was looked for.
2. Take the pool: `--autoscaler-node-pool-label` names an isolated accelerator pool (N ≥ 1 Ready,
   schedulable nodes, max ≥ N+1, one accelerator per node, nothing else pending for it). N = 0 where a
   Karpenter NodePool labels its nodes so (Karpenter pools have no minimum and commonly start empty). Unset,
   no such node and no such NodePool, not exactly one accelerator per node, or other workloads on the pool or
   pending for it: unknown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from kaic.areas import accelerators, autoscaling, images, policy, workloads
from kaic.probe import (
    Cluster,
    Facts,
    NotApplicable,
    Recorder,
    Rule,
    RunContext,
    Unknown,
    crds_in,
    probe,
    require,
)

NODES = "/api/v1/nodes"
PR_API = "/apis/autoscaling.x-k8s.io/v1"
RUN_LABEL = "kaic.dev/autoscaling"
BASELINE_TIMEOUT_S = 300
PENDING_TIMEOUT_S = 120
STABLE_S = 30  # how long an added node only marked for removal must stay so: a mark can be withdrawn
DETECT_RBAC = (
    Rule("", "configmaps", ("get",)),
    Rule("apps", "deployments", ("list",)),
    Rule("karpenter.sh", "nodepools", ("list",), namespaced=False),
    Rule("cluster.x-k8s.io", "machinedeployments", ("list",)),
)
SCALE_RBAC = (
    *DETECT_RBAC,
    *workloads.RBAC,
    Rule("", "pods", ("list",), namespaced=False),
    Rule("", "pods", ("watch",)),
    Rule("", "nodes", ("watch",), namespaced=False),
    Rule("policy", "poddisruptionbudgets", ("create", "delete")),
)
PR_RBAC = (
    *DETECT_RBAC,
    *workloads.RBAC,
    Rule("", "podtemplates", ("create", "delete")),
    Rule("autoscaling.x-k8s.io", "provisioningrequests", ("create", "get", "list", "watch", "delete")),
)
CAPI_MIN = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
AUTOSCALER_GROUPS = ("karpenter.sh", "cluster.x-k8s.io", "autoscaling.x-k8s.io")
SCALE_UP_DOWN = "cluster_autoscaling.scale-up-down"


@probe("cluster_autoscaling", "discovery", test="TestKaicDiscovery/ClusterAutoscaling", kind="discovery")
def test_cluster_autoscaling_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Cluster autoscaling, discovery
    Description: Records the CRDs of node autoscalers known by their APIs (Karpenter, Cluster API,
    ProvisioningRequest); a record, never a verdict.
    """
    require(facts, "crds")
    evidence.add("fact", "autoscalerCrds", crds_in(facts, *AUTOSCALER_GROUPS))


@pytest.fixture
def autoscaler(cluster: Cluster, facts: Facts, evidence: Recorder) -> dict[str, Any]:
    """Step 1: Cluster Autoscaler status or Deployment in kube-system, Karpenter NodePools, Cluster API
    scaling annotations, the ProvisioningRequest CRD; NotApplicable with the trail when none is found."""
    require(facts, "crds")
    crds = facts["crds"] or {}
    detected: dict[str, Any] = {
        "clusterAutoscalerStatus": ca_status(cluster),
        "clusterAutoscalerDeployments": [
            d["metadata"]["name"]
            for d in cluster.list(f"/apis/apps/v1/namespaces/{autoscaling.CA_STATUS[0]}/deployments")
            if autoscaling.is_cluster_autoscaler(d)
        ],
        "karpenterCrds": sorted(set(autoscaling.KARPENTER_CRDS) & set(crds)),
        "karpenterNodePools": [],
        "clusterApiCrds": sorted(set(autoscaling.CAPI_CRDS) & set(crds)),
        "clusterApiAutoscaled": [],
        "provisioningRequestCrd": autoscaling.PROVISIONING_REQUESTS in crds,
    }
    detected["karpenterNodePools"] = [p["metadata"]["name"] for p in karpenter_nodepools(cluster, facts)]
    if "machinedeployments.cluster.x-k8s.io" in crds:
        version = crds["machinedeployments.cluster.x-k8s.io"]["versions"][0]
        detected["clusterApiAutoscaled"] = [
            f"{m['metadata']['namespace']}/{m['metadata']['name']}"
            for m in cluster.list(f"/apis/cluster.x-k8s.io/{version}/machinedeployments")
            if CAPI_MIN in (m["metadata"].get("annotations") or {})
        ]
    evidence.add("fact", "autoscalerDetection", detected)
    evidence.add("fact", "autoscalerCrds", crds_in(facts, *AUTOSCALER_GROUPS))
    if not autoscaling.found_autoscalers(detected):
        raise NotApplicable(autoscaling.trail(detected))
    return detected


def karpenter_nodepools(cluster: Cluster, facts: Facts) -> list[dict[str, Any]]:
    """Karpenter's NodePools, where its CRD is served."""
    crd = (facts["crds"] or {}).get("nodepools.karpenter.sh")
    return list(cluster.list(f"/apis/karpenter.sh/{crd['versions'][0]}/nodepools")) if crd else []


def ca_status(cluster: Cluster) -> Any:
    """The gist of the Cluster Autoscaler's status ConfigMap, "" without one."""
    status = cluster.get_or_none("/api/v1/namespaces/{}/configmaps/{}".format(*autoscaling.CA_STATUS))
    if not status:
        return ""
    updated = (status["metadata"].get("annotations") or {}).get(
        "cluster-autoscaler.kubernetes.io/last-updated", ""
    )
    return {
        "lastUpdated": updated,
        "status": autoscaling.ca_status((status.get("data") or {}).get("status", "")),
    }


def until(
    cluster: Cluster, path: str, check: Callable[[], Any], timeout_s: float, what: str, tick_s: float = 5.0
) -> Any:
    """Re-check `check()` whenever the collection at `path` changes (a watch, not a sleep loop), and at least
    every `tick_s` for conditions that need time to pass; TimeoutError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    version = cluster.get(path, limit=1)["metadata"]["resourceVersion"]
    while not (result := check()):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f}s")
        events = cluster.watch(path, min(left, tick_s), version)
        for _, obj in events:
            version = obj["metadata"].get("resourceVersion", version)
            break
        events.close()
    return result


@pytest.fixture
def provisioning_requests(autoscaler: dict[str, Any], run: RunContext) -> None:
    """The ProvisioningRequest API must be served for the check-capacity probe (before the pool is taken).
    Without it (Karpenter serves none) the check is not-applicable where scale-up-down runs too, judging the
    autoscaler by a real scale-up, and unknown where this check is the only one."""
    if autoscaler["provisioningRequestCrd"]:
        return
    why = "a node autoscaler is present but the ProvisioningRequest API (autoscaling.x-k8s.io) is not served"
    if SCALE_UP_DOWN in run.probes:
        raise NotApplicable(f"{why}; scale-up-down judges the autoscaler by a real scale-up in this run")
    raise Unknown(
        f"{why}: the safe check-capacity check cannot run (certified mode judges a real scale-up instead)"
    )


@dataclass
class Pool:
    """The named pool and how its pods ask for one accelerator."""

    cluster: Cluster
    key: str
    value: str
    selection: accelerators.Selection
    nodes: dict[str, str] = field(default_factory=dict)  # name -> uid, when the probe began

    @property
    def resource(self) -> str:
        return self.selection.extended_resource

    def read(self) -> dict[str, str]:
        return autoscaling.pool_nodes(self.cluster.list(NODES), self.key, self.value)

    def pod(
        self, name: str, labels: dict[str, str], image: str, deadline_s: int, spread: str = ""
    ) -> dict[str, Any]:
        """A long-running pod holding one accelerator on the pool; `spread` keeps such pods one per node."""
        container = {
            "name": "main",
            "image": image,
            "securityContext": workloads.RESTRICTED,
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        }
        body = workloads.pod(name, labels, [container], tolerations=self.selection.tolerations())
        workloads.give_device(body, container, self.selection)
        body["spec"]["nodeSelector"] = {self.key: self.value}
        body["spec"]["activeDeadlineSeconds"] = deadline_s
        if spread:
            body["metadata"]["labels"][RUN_LABEL] = spread
            term = {
                "labelSelector": {"matchLabels": {RUN_LABEL: spread}},
                "topologyKey": "kubernetes.io/hostname",
            }
            body["spec"]["affinity"] = {
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
            }
        return body

    def isolation(self, namespace: str) -> list[str]:
        pods = self.cluster.list("/api/v1/pods")
        return autoscaling.foreign_workloads(pods, namespace, self.nodes, self.key, self.value, self.resource)


@pytest.fixture
def pool(
    autoscaler: dict[str, Any],
    cluster: Cluster,
    namespace: str,
    run: RunContext,
    facts: Facts,
    evidence: Recorder,
) -> Pool:
    """Step 2: the named pool, checked to hold N >= 1 nodes of one accelerator each (or N = 0 for a Karpenter
    NodePool) and nothing else."""
    label = run.settings.autoscaler.node_pool_label
    if not label:
        raise Unknown(
            "a node autoscaler is present but no accelerator pool was named: pass "
            "--autoscaler-node-pool-label key=value (an isolated pool, min N >= 1 or a Karpenter NodePool, "
            "max >= N+1, one accelerator per node) in certified mode"
        )
    key, value = autoscaling.parse_pool_label(label)
    pool = Pool(cluster, key, value, accelerators.select(facts, run.settings, "device-plugin"))
    pool.nodes = pool.read()
    if not pool.nodes:
        nodepools = autoscaling.karpenter_pools(karpenter_nodepools(cluster, facts), key, value)
        if not nodepools:
            raise Unknown(
                f"no Ready, schedulable node is labelled {label} and no Karpenter NodePool labels its nodes "
                "so: the pool needs N >= 1 nodes"
            )
        evidence.add("fact", "empty Karpenter pool", {"label": label, "nodePools": nodepools})
    counts = {
        n: (cluster.get(f"{NODES}/{n}")["status"].get("allocatable") or {}).get(pool.resource)
        for n in pool.nodes
    }
    evidence.add(
        "fact", "pool", {"label": label, "nodes": pool.nodes, f"allocatable {pool.resource}": counts}
    )
    if any(c != "1" for c in counts.values()):
        raise Unknown(
            f"pool {label} must offer exactly one {pool.resource} per node (found {counts}); DRA pools are "
            "not exercised by kaic yet"
        )
    if foreign := pool.isolation(namespace):
        raise Unknown(
            "the pool is not isolated, so kaic neither scales it nor judges its free capacity: "
            + "; ".join(foreign)
        )
    return pool


@probe(
    "cluster_autoscaling",
    "scale-up-down",
    test="TestKaicClusterAutoscaling/ScaleUpAndDown",
    disruptive=True,
    consumes=("node-pool", "devices"),
    creates=("pods", "policy/poddisruptionbudgets"),
    images=("pause",),
    rbac=SCALE_RBAC,
    timeout_s=75 * 60,
)
def test_cluster_autoscaling_scale_up_down(
    cluster: Cluster, namespace: str, pool: Pool, run: RunContext, evidence: Recorder
) -> None:
    """Testname: Cluster autoscaling, an accelerator node added for a pending pod and removed after it
    Description: For a pod that is Unschedulable for want of an accelerator, the autoscaler MUST add a pool
    node that runs it without changing a baseline node, and MUST return the pool to its baseline once the pod
    is gone (upstream's contract; certified mode, since it buys a node).

    1. Detect the autoscaler and take the pool (above).
    2. N pods, one per node (anti-affinity, a PodDisruptionBudget of N), fill the pool; they must run on the
       N baseline nodes within 300 s (else unknown). N = 0 (an empty Karpenter pool): no baseline pods.
    3. Pod N+1 must be marked Unschedulable within 120 s, for want of the accelerator (for another reason:
       unknown); with N = 0 there is no pool node, so any Unschedulable reason is the want of one.
    4. The autoscaler must add a pool node that runs it within `--autoscaler-scale-up-timeout`, without a
       baseline node changing (failed otherwise).
    5. Once that pod is deleted the pool must return to its N baseline nodes (N = 0: no node) within
       `--autoscaler-scale-down-timeout`: the added node deleted, which ends the wait at once (a deleted node
       cannot return), or still there but unusable (marked for deletion, cordoned, NotReady) with the pool
       unchanged for 30 s, since such a mark can be withdrawn.
    """
    up_s = run.settings.autoscaler.scale_up_timeout_s
    down_s = run.settings.autoscaler.scale_down_timeout_s
    deadline_s = int(BASELINE_TIMEOUT_S + PENDING_TIMEOUT_S + up_s + down_s + 300)
    image = images.for_run(run.settings)["pause"]
    baseline = dict(pool.nodes)
    n = len(baseline)
    spread = run.id

    guard = policy.Guard(cluster, namespace)
    pods = workloads.pods_path(namespace)
    if n:
        cluster.create(
            f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets",
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "baseline", "labels": run.labels},
                "spec": {"minAvailable": n, "selector": {"matchLabels": {RUN_LABEL: spread}}},
            },
        )
        names = [f"baseline-{i}" for i in range(n)]
        for name in names:
            cluster.create(pods, pool.pod(name, run.labels, image, deadline_s, spread))

        def baseline_running() -> dict[str, str] | None:
            members = [cluster.get(workloads.pods_path(namespace, name)) for name in names]
            guard.pods(members)
            if all((p.get("status") or {}).get("phase") == "Running" for p in members):
                return {p["metadata"]["name"]: workloads.scheduled_node(p) for p in members}
            return None

        placed = until(cluster, pods, baseline_running, BASELINE_TIMEOUT_S, f"{n} baseline pods Running")
        evidence.add("object", "baseline placement", placed)
        if sorted(placed.values()) != sorted(baseline):
            raise Unknown(
                f"baseline pods did not take one pool node each ({placed}, pool {sorted(baseline)})"
            )

    trigger = "trigger"
    cluster.create(pods, pool.pod(trigger, run.labels, image, deadline_s))
    message = until(
        cluster,
        pods,
        lambda: policy.unschedulable_message(cluster.get(workloads.pods_path(namespace, trigger))),
        PENDING_TIMEOUT_S,
        "the trigger pod marked Unschedulable",
    )
    evidence.add("text", "trigger unschedulable", message)
    if n and pool.resource not in message:
        raise Unknown(f"the trigger pod is Unschedulable for a reason other than {pool.resource}: {message}")

    def trigger_on_new_node() -> tuple[str, str] | None:
        current = pool.read()
        if any(current.get(name) != uid for name, uid in baseline.items()):
            raise AssertionError(f"a baseline node changed or became unusable during scale-up: {current}")
        pod = cluster.get(workloads.pods_path(namespace, trigger))
        guard.pod(pod)
        node = workloads.scheduled_node(pod)
        if (pod.get("status") or {}).get("phase") == "Running" and node in current and node not in baseline:
            return node, current[node]
        return None

    started = time.monotonic()
    try:
        added = until(
            cluster,
            pods,
            trigger_on_new_node,
            up_s,
            f"a new {pool.key}={pool.value} node running the trigger pod",
        )
    except TimeoutError as exc:
        evidence.add("event", "trigger events", workloads.events(cluster, namespace, trigger))
        evidence.add("fact", "pool nodes at timeout", pool.read())
        evidence.add("fact", "autoscaler status at timeout", ca_status(cluster))
        raise AssertionError(
            f"the autoscaler added no pool node for the pending accelerator pod: {exc}"
        ) from None
    evidence.add(
        "text",
        "scale-up",
        f"node {added[0]} (uid {added[1]}) runs the trigger pod after "
        f"{time.monotonic() - started:.0f}s; pool {n} -> {len(pool.read())}",
    )
    evidence.add("event", "trigger events", workloads.events(cluster, namespace, trigger))

    cluster.delete(workloads.pods_path(namespace, trigger))
    cluster.wait_gone([workloads.pods_path(namespace, trigger)], 120)
    started, stable_since = time.monotonic(), None

    def back_to_baseline() -> str:
        """How the pool came back ("" until it has): the added node deleted, or unusable for STABLE_S."""
        nonlocal stable_since
        state = autoscaling.back_to_baseline(cluster.list(NODES), pool.key, pool.value, baseline, added)
        if state != "unusable":
            stable_since = None
            return state
        stable_since = stable_since or time.monotonic()
        return f"unusable for {STABLE_S}s" if time.monotonic() - stable_since >= STABLE_S else ""

    try:
        how = until(
            cluster,
            NODES,
            back_to_baseline,
            down_s,
            f"the pool back to its {n} baseline node(s), the added node deleted or unusable for {STABLE_S}s",
        )
    except TimeoutError as exc:
        evidence.add("fact", "pool nodes at timeout", pool.read())
        evidence.add("fact", "autoscaler status at timeout", ca_status(cluster))
        raise AssertionError(
            f"the pool did not shrink back after the trigger pod was deleted: {exc}"
        ) from None
    evidence.add(
        "text",
        "scale-down",
        f"back to {n} node(s) after {time.monotonic() - started:.0f}s; {added[0]} {how}",
    )


def provisioning_request(name: str, labels: dict[str, str], template: str, count: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling.x-k8s.io/v1",
        "kind": "ProvisioningRequest",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "provisioningClassName": "check-capacity.autoscaling.x-k8s.io",
            "podSets": [{"podTemplateRef": {"name": template}, "count": count}],
        },
    }


def pr_verdict(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(condition, reason) once CA has decided: Provisioned=True, Provisioned=False or Failed=True."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Provisioned" or (cond["type"] == "Failed" and cond["status"] == "True"):
            return f"{cond['type']}={cond['status']}", cond.get("reason", "")
    return None


@probe(
    "cluster_autoscaling",
    "check-capacity",
    test="TestKaicClusterAutoscaling/CheckCapacityProvisioningRequest",
    consumes=("node-pool",),
    creates=("podtemplates", "autoscaling.x-k8s.io/provisioningrequests"),
    images=("pause",),
    rbac=PR_RBAC,
    timeout_s=300,
)
def test_cluster_autoscaling_check_capacity(
    cluster: Cluster,
    namespace: str,
    provisioning_requests: None,
    pool: Pool,
    run: RunContext,
    evidence: Recorder,
) -> None:
    """Testname: Cluster autoscaling, check-capacity ProvisioningRequests
    Description: A check-capacity ProvisioningRequest for one pool accelerator MUST be found
    (`Provisioned=True`, `CapacityIsFound`) and one for more than the pool holds MUST NOT: the autoscaler
    simulates rather than rubber-stamps. No node is bought.

    1. Detect the autoscaler. The ProvisioningRequest API not served: not-applicable where scale-up-down
       runs too (it judges the autoscaler by a real scale-up), unknown otherwise. Take the pool (above); an
       empty one: unknown, there is no capacity to find.
    2. A PodTemplate asks for one pool accelerator.
    3. A ProvisioningRequest for 1 such pod must be answered `Provisioned=True`, `CapacityIsFound`; one for
       N+1 must be answered `Provisioned=False` or `Failed=True`. No controller answering within 120 s:
       unknown.
    """
    image = images.for_run(run.settings)["pause"]
    body = pool.pod("template", run.labels, image, workloads.POD_DEADLINE_S)
    cluster.create(
        f"/api/v1/namespaces/{namespace}/podtemplates",
        {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "one-accelerator", "labels": run.labels},
            "template": {"metadata": {"labels": run.labels}, "spec": body["spec"]},
        },
    )
    path = f"{PR_API}/namespaces/{namespace}/provisioningrequests"
    results = {}
    if not pool.nodes:
        raise Unknown("the pool has no node yet (an empty Karpenter pool): there is no capacity to check")
    for name, count in (("fits", 1), ("too-many", len(pool.nodes) + 1)):
        cluster.create(path, provisioning_request(name, run.labels, "one-accelerator", count))
        url = f"{path}/{name}"

        def answered(url: str = url) -> tuple[str, str] | None:
            return pr_verdict(cluster.get(url))

        try:
            results[name] = until(
                cluster,
                path,
                answered,
                120,
                f"a check-capacity verdict on {name}",
            )
        except TimeoutError as exc:
            raise Unknown(
                f"no controller answered a check-capacity ProvisioningRequest ({exc}): the autoscaler "
                "may run without --enable-provisioning-requests"
            ) from None
        finally:
            evidence.add(
                "object", f"ProvisioningRequest {name} ({count} pods)", cluster.get(url).get("status")
            )
            cluster.delete(url)
    assert results["fits"] == ("Provisioned=True", "CapacityIsFound"), f"one accelerator: {results['fits']}"
    assert results["too-many"][0] in ("Provisioned=False", "Failed=True"), (
        f"{len(pool.nodes) + 1} accelerators on "
        f"{len(pool.nodes)} one-accelerator nodes: {results['too-many']}"
    )
