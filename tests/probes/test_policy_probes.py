"""Cluster policy is not a verdict, against the real local cluster: taints kaic does not tolerate, cordoned
nodes, a ValidatingAdmissionPolicy, a ResourceQuota and an image the node cannot pull end probes unknown or
error, naming the cause, as soon as the real scheduler, API server or kubelet says so; --toleration lets the
probes onto tainted nodes again. Every test puts the cluster back as it found it (the scenario is reused).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import pytest
from golden_matrix import assert_nothing_left, assert_probes, probe_outcomes, run_kaic
from kubernetes.client.exceptions import ApiException

from kaic.areas import workloads
from kaic.areas.accelerators import PROFILES
from kaic.areas.policy import api_denial
from kaic.kube import client as kube
from kaic.kube.labels import MANAGED_BY, run_labels
from kaic.results.outcomes import ProbeError, Unknown
from kaic.results.report import Recorder
from kaic.settings import Settings

ACCELERATORS = "example.com/gpu.present=true"  # the label of the local cluster's accelerator nodes
DEDICATED = {"key": "dedicated", "value": "team-a", "effect": "NoSchedule"}
DRA_PROBES = ("dra_support.claim-lifecycle", "dra_support.unsatisfiable-claim")
QUICK_S = 60  # the probes' own waits are 90 s and more: a policy answer must come well before
MANAGED = run_labels("policytest")  # swept like a run's
POLICY = "kaic-test-no-probe-pods"
ADMISSION = "/apis/admissionregistration.k8s.io/v1"


def probes(report: dict) -> dict[str, dict]:
    return {p["name"]: p for r in report["requirements"] for p in r["probes"]}


def update_node(admin: kube.Cluster, name: str, change: Callable[[dict], None]) -> None:
    """GET, change, PUT; kwok rewrites node status all the time, so a conflict is retried on a fresh copy."""
    for _ in range(20):
        node = admin.get(f"/api/v1/nodes/{name}")
        change(node)
        try:
            admin.request("PUT", f"/api/v1/nodes/{name}", body=node)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise AssertionError(f"node {name}: update kept conflicting")


@contextlib.contextmanager
def accelerator_nodes(
    admin: kube.Cluster, change: Callable[[dict], None], undo: Callable[[dict], None]
) -> Iterator[list[str]]:
    names = [n["metadata"]["name"] for n in admin.list("/api/v1/nodes", labelSelector=ACCELERATORS)]
    assert names, "the scenario has no accelerator nodes"
    try:
        for name in names:
            update_node(admin, name, change)
        yield names
    finally:
        for name in names:
            update_node(admin, name, undo)


def taint(node: dict) -> None:
    node["spec"]["taints"] = [*(node["spec"].get("taints") or []), DEDICATED]


def untaint(node: dict) -> None:
    node["spec"]["taints"] = [
        t for t in node["spec"].get("taints") or [] if t["key"] != DEDICATED["key"]
    ] or None


def cordon(node: dict) -> None:
    node["spec"]["unschedulable"] = True


def uncordon(node: dict) -> None:
    node["spec"]["unschedulable"] = False


@contextlib.contextmanager
def own_namespace(admin: kube.Cluster, stem: str) -> Iterator[str]:
    """A namespace labelled as kaic's own (so `kaic cleanup --all` would sweep it), deleted afterwards."""
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"generateName": f"kaic-{stem}-", "labels": MANAGED},
    }
    name = admin.create("/api/v1/namespaces", body)["metadata"]["name"]
    try:
        yield name
    finally:
        admin.delete(f"/api/v1/namespaces/{name}")
        admin.wait_gone([f"/api/v1/namespaces/{name}"], 120)


def pause_pod(name: str, nodes: tuple[str, ...] = (), image: str = "registry.k8s.io/pause:3.10") -> dict:
    container = {
        "name": "main",
        "image": image,
        "securityContext": workloads.RESTRICTED,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
    }
    return workloads.pod(
        name, MANAGED, [container], nodes=nodes, tolerations=PROFILES["simulated"].tolerations()
    )


@pytest.mark.cluster
@pytest.mark.scenario("conformant")
def test_tainted_accelerator_nodes_are_unknown_at_once_and_a_toleration_lets_the_probes_pass(
    cluster_for, tmp_path
):
    cluster = cluster_for("conformant")
    admin = kube.connect(str(cluster.kubeconfig))
    with accelerator_nodes(admin, taint, untaint) as tainted:
        report = run_kaic(cluster, tmp_path / "tainted", ("dra_support",))
        found, whole = probes(report), probe_outcomes(report)
        for name in DRA_PROBES:
            reason, full = found[name]["reason"], whole[name][1]
            assert found[name]["outcome"] == "unknown", (name, reason)
            # The shown reason, however short, keeps what to do; the real scheduler's refusal (its condition's
            # message) was judged against the nodes, which the whole reason names.
            assert "pass --toleration dedicated=team-a:NoSchedule if kaic's pods may run there" in reason, (
                reason
            )
            assert "the scheduler: 0/" in full and "untolerated taint" in full, full
            for node in (n for n in tainted if n.startswith("kaic-dra-")):
                assert f"node {node} taint dedicated=team-a:NoSchedule not tolerated" in full, full
            assert found[name]["durationSeconds"] < QUICK_S, found[name]["durationSeconds"]
        assert found["dra_support.crud"]["outcome"] == "passed"  # no pod: the taint does not matter
        assert {r["id"]: r["outcome"] for r in report["requirements"]} == {"dra_support": "unknown"}
        assert_nothing_left(cluster.kubeconfig, report["run"]["id"])

        allowed = run_kaic(
            cluster,
            tmp_path / "tolerated",
            ("dra_support",),
            "--toleration",
            "dedicated=team-a:NoSchedule",
        )
        assert_probes(allowed, {name: ("passed", "") for name in DRA_PROBES})
        assert_nothing_left(cluster.kubeconfig, allowed["run"]["id"])


@pytest.mark.cluster
@pytest.mark.scenario("conformant")
def test_cordoned_accelerator_nodes_are_unknown_naming_the_cordon(cluster_for, tmp_path):
    """Cordoned at discovery: the selection names them; cordoned under a waiting pod: the scheduler's
    refusal."""
    cluster = cluster_for("conformant")
    admin = kube.connect(str(cluster.kubeconfig))
    with accelerator_nodes(admin, cordon, uncordon) as cordoned:
        report = run_kaic(cluster, tmp_path / "cordoned", ("dra_support",))
        for name in DRA_PROBES:
            outcome, reason = probe_outcomes(report)[name]
            assert outcome == "unknown" and "kaic-dra-0 cordoned" in reason, (name, reason)
        assert_nothing_left(cluster.kubeconfig, report["run"]["id"])

        with own_namespace(admin, "cordon") as namespace:
            started = time.monotonic()
            with pytest.raises(Unknown) as held:
                workloads.place(
                    admin,
                    namespace,
                    pause_pod("pinned", tuple(cordoned)),
                    Recorder(),
                    Settings.schedule_timeout_s,
                )
            assert time.monotonic() - started < QUICK_S
            assert "were unschedulable" in held.value.reason, held.value.reason
            assert all(f"node {name} cordoned" in held.value.reason for name in cordoned), held.value.reason


@contextlib.contextmanager
def denying_policy(admin: kube.Cluster) -> Iterator[None]:
    """A ValidatingAdmissionPolicy (and its binding) that denies every pod in namespaces managed by kaic."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "validations": [{"expression": "false", "message": "probe pods are not allowed on this cluster"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY},
        "spec": {
            "policyName": POLICY,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": MANAGED_BY}},
        },
    }
    admin.create(f"{ADMISSION}/validatingadmissionpolicies", policy)
    admin.create(f"{ADMISSION}/validatingadmissionpolicybindings", binding)
    try:
        enforced(admin, True)
        yield
    finally:
        admin.delete(f"{ADMISSION}/validatingadmissionpolicybindings/{POLICY}")
        admin.delete(f"{ADMISSION}/validatingadmissionpolicies/{POLICY}")
        enforced(admin, False)  # the API server drops it a moment later: later tests must not meet it


def enforced(admin: kube.Cluster, wanted: bool) -> None:
    """Wait until the API server enforces the policy (or no longer does): a dry-run pod in kaic's
    namespaces."""
    with own_namespace(admin, "vap") as namespace:
        deadline = time.monotonic() + 60
        while True:
            try:
                admin.create(workloads.pods_path(namespace), pause_pod("probe"), dry_run=True)
                denied = False
            except ApiException as exc:
                assert POLICY in (exc.body or ""), exc.body
                denied = True
            if denied == wanted:
                return
            assert time.monotonic() < deadline, f"the policy's enforcement never became {wanted}"
            time.sleep(1)


@pytest.mark.cluster
@pytest.mark.scenario("conformant")
def test_a_validating_admission_policy_denying_probe_pods_is_unknown_naming_it(cluster_for, tmp_path):
    """Pods kaic creates are refused on create; a gang Job's pods are refused to the Job controller, which the
    wait reads from its FailedCreate events (without that, the gang that cannot fit would 'pass': nothing
    bound)."""
    cluster = cluster_for("conformant")
    admin = kube.connect(str(cluster.kubeconfig))
    with denying_policy(admin):
        report = run_kaic(
            cluster,
            tmp_path / "denied",
            ("dra_support", "gang_scheduling"),
            "--gang-negative-window",
            "10s",
        )
    found = probes(report)
    named = f"ValidatingAdmissionPolicy {POLICY} (binding {POLICY}) denied it: probe pods are not allowed"
    for name in (*DRA_PROBES, "gang_scheduling.fitting-gang", "gang_scheduling.unfit-gang"):
        assert found[name]["outcome"] == "unknown" and named in found[name]["reason"], (
            name,
            found[name]["reason"],
        )
        assert found[name]["durationSeconds"] < QUICK_S, (name, found[name]["durationSeconds"])
    assert (
        "refused the pods of kaic-" in found["gang_scheduling.fitting-gang"]["reason"]
    )  # the controller's refusal
    assert {r["id"]: r["outcome"] for r in report["requirements"]} == {
        "dra_support": "unknown",
        "gang_scheduling": "unknown",
    }
    assert_nothing_left(cluster.kubeconfig, report["run"]["id"])


@pytest.mark.cluster
@pytest.mark.scenario("conformant")
def test_a_resource_quota_refusal_is_named_from_the_api_servers_own_answer(cluster_for):
    """kaic makes its own namespaces, so a run cannot meet a quota here; the real API server's answers can: a
    pod create refused (the 403 body) and a Deployment's pods refused to its controller (FailedCreate)."""
    cluster = cluster_for("conformant")
    admin = kube.connect(str(cluster.kubeconfig))
    with own_namespace(admin, "quota") as namespace:
        admin.create(
            f"/api/v1/namespaces/{namespace}/resourcequotas",
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "no-pods"},
                "spec": {"hard": {"pods": "0"}},
            },
        )
        deadline = time.monotonic() + 30
        while not (
            admin.get(f"/api/v1/namespaces/{namespace}/resourcequotas/no-pods").get("status") or {}
        ).get("hard"):
            assert time.monotonic() < deadline, "the quota controller never took the quota up"
            time.sleep(0.5)
        with pytest.raises(ApiException) as refused:
            admin.create(workloads.pods_path(namespace), pause_pod("one"))
        assert refused.value.status == 403
        assert "ResourceQuota no-pods is exceeded: requested: pods=1" in api_denial(refused.value), (
            refused.value.body
        )

        body = pause_pod("server")
        body["spec"].pop("activeDeadlineSeconds")
        body["spec"]["restartPolicy"] = "Always"
        admin.create(
            f"/apis/apps/v1/namespaces/{namespace}/deployments",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "server"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "server"}},
                    "template": {"metadata": {"labels": {"app": "server"}}, "spec": body["spec"]},
                },
            },
        )
        watch = workloads.PodWatch(admin, namespace, "app=server", owners=("server",))
        started = time.monotonic()
        with pytest.raises(
            Unknown, match=r"refused the pods of server-[a-z0-9]+: ResourceQuota no-pods is exceeded"
        ):
            watch.until(lambda w: bool(w.pods), 120)
        assert time.monotonic() - started < QUICK_S


@pytest.mark.cluster
@pytest.mark.scenario("real-node")
def test_an_image_the_node_cannot_pull_is_an_error_at_once_naming_the_image_flag(
    cluster_for, tmp_path, require_real_node
):
    """The case: pod_autoscaling on the real node without the local image map `kaic cluster up` writes (the
    node pulls from no registry; every pull fails at once there)."""
    require_real_node()
    cluster = cluster_for("real-node")
    report = run_kaic(cluster, tmp_path / "run", ("pod_autoscaling",), cluster_config=False)
    found = probes(report)["pod_autoscaling.scale-on-custom-metric"]
    assert found["outcome"] == "error", found
    assert "image docker.io/library/busybox:1.36.1 of container server" in found["reason"], found["reason"]
    assert "--image busybox=REF" in found["reason"], found["reason"]
    full = probe_outcomes(report)["pod_autoscaling.scale-on-custom-metric"][1]
    assert "): ErrImagePull: " in full or "): ImagePullBackOff: " in full, (
        full
    )  # the kubelet's own words follow
    assert found["durationSeconds"] < QUICK_S, found["durationSeconds"]
    assert_nothing_left(cluster.kubeconfig, report["run"]["id"])

    admin = kube.connect(str(cluster.kubeconfig))
    with own_namespace(admin, "image") as namespace:
        body = pause_pod("unpullable", ("kaic-worker",), image="kaic.local/no-such-image:1")
        started = time.monotonic()
        with pytest.raises(ProbeError, match="image kaic.local/no-such-image:1 of container main") as held:
            placed = workloads.place(admin, namespace, body, Recorder(), Settings.schedule_timeout_s)
            workloads.observe(admin, namespace, placed, "", Recorder())
        assert "given with --image" in held.value.reason
        assert time.monotonic() - started < QUICK_S
