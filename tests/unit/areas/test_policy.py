"""The cluster's own policy told apart from the behaviour under test: scheduler messages, container waiting
states, API error bodies and the --toleration syntax (pure parsing; the real cluster is in tests/probes)."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from kaic.areas.policy import (
    Guard,
    api_denial,
    denial,
    image_problem,
    parse_toleration,
    scheduling_block,
    tolerates,
    toleration_text,
    unschedulable_message,
    untolerated,
)
from kaic.engine.collector import classify
from kaic.results.outcomes import Outcome, ProbeError, Unknown
from kaic.results.report import shorten
from kaic.settings import Settings

DEDICATED = {"key": "dedicated", "value": "team-a", "effect": "NoSchedule"}
GPU_TAINT = {"key": "example.com/gpu", "value": "present", "effect": "NoSchedule"}
GPU_TOLERATION = {"key": "example.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
TAINTED = (
    "0/5 nodes are available: 2 node(s) had untolerated taint(s), 3 node(s) didn't match Pod's node "
    "affinity/selector. preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling."
)


# ---- --toleration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "toleration"),
    [
        (
            "dedicated=team-a:NoSchedule",
            {"key": "dedicated", "operator": "Equal", "value": "team-a", "effect": "NoSchedule"},
        ),
        ("nvidia.com/gpu:NoExecute", {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}),
        ("k=:PreferNoSchedule", {"key": "k", "operator": "Equal", "value": "", "effect": "PreferNoSchedule"}),
    ],
)
def test_toleration_forms(text, toleration):
    assert parse_toleration(text) == toleration
    assert toleration_text(toleration) == text


@pytest.mark.parametrize(
    "text",
    [
        "dedicated",
        "dedicated=team-a",
        "a=b:NoSched",
        ":NoSchedule",
        "a=b=c:NoSchedule",
        "a b:NoSchedule",
        "a:b:NoSchedule",
        "",
    ],
)
def test_bad_toleration_names_the_valid_forms(text):
    with pytest.raises(ValueError, match="KEY:EFFECT or KEY=VALUE:EFFECT, EFFECT one of NoSchedule"):
        parse_toleration(text)


@pytest.mark.parametrize(
    ("key", "value", "effect"),
    [
        ("dedicated", "team-a", "NoSchedule"),
        ("nvidia.com/gpu", "", "NoExecute"),
        ("a.b/c-d", "1", "PreferNoSchedule"),
    ],
)
def test_a_parsed_toleration_tolerates_the_taint_it_names(key, value, effect):
    toleration = parse_toleration(f"{key}={value}:{effect}")
    assert tolerates(toleration, {"key": key, "value": value, "effect": effect})
    assert not tolerates(toleration, {"key": key, "value": value + "x", "effect": effect})
    assert tolerates(
        parse_toleration(f"{key}:{effect}"), {"key": key, "value": value + "x", "effect": effect}
    )


def test_untolerated_ignores_preferences_and_lifecycle_taints():
    taints = [
        DEDICATED,
        GPU_TAINT,
        {"key": "soft", "effect": "PreferNoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
        {"key": "ToBeDeletedByClusterAutoscaler", "value": "1", "effect": "NoSchedule"},
    ]
    assert untolerated(taints, [GPU_TOLERATION]) == ["dedicated=team-a:NoSchedule"]
    assert untolerated(taints, [GPU_TOLERATION, parse_toleration("dedicated=team-a:NoSchedule")]) == []
    assert untolerated(taints, [{"operator": "Exists"}]) == []  # tolerates everything


# ---- the scheduler -----------------------------------------------------------------------------------------


def node(name, *, taints=(), cordoned=False, gpus="0", **labels):
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "spec": {"taints": list(taints), "unschedulable": cordoned},
        "status": {"allocatable": {"cpu": "8", "example.com/gpu": gpus}},
    }


def pod(message, *, pinned=(), claims=False, gpus=0, bound=""):
    spec = {
        "tolerations": [GPU_TOLERATION],
        "nodeName": bound,
        "containers": [
            {"name": "main", "resources": {"limits": {"example.com/gpu": str(gpus)} if gpus else {}}}
        ],
    }
    if pinned:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/hostname", "operator": "In", "values": list(pinned)}
                            ]
                        }
                    ]
                }
            }
        }
    if claims:
        spec["resourceClaims"] = [{"name": "device", "resourceClaimTemplateName": "one-device"}]
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    return {
        "kind": "Pod",
        "metadata": {"name": "consumer"},
        "spec": spec,
        "status": {"conditions": [condition]},
    }


CLUSTER = [
    node("gpu-0", taints=[GPU_TAINT, DEDICATED]),
    node("gpu-1", taints=[GPU_TAINT, DEDICATED]),
    node("cpu-0"),
    node("cpu-1"),
    node("cpu-2"),
]
SLICES = {"gpu-0", "gpu-1"}


def test_pinned_accelerator_nodes_all_tainted_is_policy_naming_nodes_and_taints():
    why = scheduling_block(pod(TAINTED, pinned=("gpu-0", "gpu-1"), claims=True), CLUSTER, SLICES)
    assert "node gpu-0 taint dedicated=team-a:NoSchedule not tolerated" in why
    assert "node gpu-1 taint dedicated=team-a:NoSchedule not tolerated" in why
    assert why.endswith(f"(the scheduler: {TAINTED})")
    # What to do comes first, so a reason shortened for people keeps it.
    assert why.startswith(
        "pod consumer cannot be placed because of the cluster's policy (pass --toleration "
        "dedicated=team-a:NoSchedule if kaic's pods may run there): node gpu-0 taint"
    )
    assert "--toleration dedicated=team-a:NoSchedule" in shorten(why)


def test_unpinned_pod_whose_capable_nodes_are_tainted_is_policy():
    """The rest fail for lack of devices, but the nodes that have them are tainted: policy decides."""
    message = (
        "0/5 nodes are available: 2 node(s) had untolerated taint(s), 3 node(s) cannot allocate all claims."
    )
    assert "node gpu-0 taint dedicated" in scheduling_block(pod(message, claims=True), CLUSTER, SLICES)
    plugin = [node("gpu-0", taints=[DEDICATED], gpus="8"), node("cpu-0"), node("cpu-1")]
    insufficient = (
        "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient example.com/gpu."
    )
    assert "node gpu-0" in scheduling_block(pod(insufficient, gpus=1), plugin, None)


def test_an_untainted_capable_node_keeps_the_refusal_a_finding():
    """One eligible node fails for lack of devices: the negative probe's behaviour, not policy."""
    mixed = [node("gpu-0", taints=[DEDICATED]), node("gpu-1"), node("cpu-0")]
    message = (
        "0/3 nodes are available: 1 node(s) had untolerated taint(s), 1 node(s) cannot allocate all claims, "
        "1 node(s) didn't match Pod's node affinity/selector."
    )
    assert (
        scheduling_block(pod(message, pinned=("gpu-0", "gpu-1"), claims=True), mixed, {"gpu-0", "gpu-1"})
        == ""
    )


@pytest.mark.parametrize(
    "message",
    [
        (
            "0/5 nodes are available: 2 cannot allocate all claims, "
            "3 node(s) didn't match Pod's node affinity/selector."
        ),
        "0/3 nodes are available: 3 Insufficient example.com/gpu.",
        (
            "0/1 nodes are available: 1 Insufficient cpu. "
            "preemption: 0/1 nodes are available: 1 No preemption victims found."
        ),
        "",
    ],
)
def test_capability_refusals_are_never_policy(message):
    assert scheduling_block(pod(message, pinned=("gpu-0", "gpu-1"), claims=True), CLUSTER, SLICES) == ""


def test_cordoned_nodes_are_named_cordoned():
    cordoned = [node("gpu-0", cordoned=True), node("gpu-1", cordoned=True, taints=[GPU_TAINT])]
    message = "0/2 nodes are available: 2 node(s) were unschedulable."
    why = scheduling_block(pod(message, pinned=("gpu-0", "gpu-1")), cordoned, None)
    assert "node gpu-0 cordoned; node gpu-1 cordoned" in why
    assert "(cordoned nodes take no new pods: uncordon them to probe there): node gpu-0" in why


def test_older_taint_wording_and_a_refusal_message_given_by_the_probe():
    older = "0/2 nodes are available: 2 node(s) had taint {dedicated: team-a}, that the pod didn't tolerate."
    idle = pod("", pinned=("gpu-0", "gpu-1"))
    idle["status"]["conditions"] = []
    assert scheduling_block(idle, CLUSTER, None) == ""
    assert "node gpu-0" in scheduling_block(idle, CLUSTER, None, older)


def test_a_bound_pod_or_a_lifecycle_taint_is_not_blocked():
    assert scheduling_block(pod(TAINTED, bound="gpu-0"), CLUSTER, None) == ""
    dying = [node("gpu-0", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}])]
    assert scheduling_block(pod(TAINTED, pinned=("gpu-0",)), dying, None) == ""


def test_unschedulable_message_is_the_schedulers_word_on_an_unbound_pod_only():
    assert unschedulable_message(pod("0/5 nodes: Insufficient x")) == "0/5 nodes: Insufficient x"
    assert unschedulable_message(pod("0/5 nodes: Insufficient x", bound="gpu-0")) == ""
    scheduled = pod("")
    scheduled["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    assert unschedulable_message(scheduled) == ""
    assert unschedulable_message({}) == ""


# ---- the kubelet -------------------------------------------------------------------------------------------


def waiting(image, reason, message):
    return {
        "metadata": {"name": "kaic-hpa-abc"},
        "status": {
            "containerStatuses": [
                {
                    "name": "server",
                    "image": image,
                    "state": {"waiting": {"reason": reason, "message": message}},
                }
            ]
        },
    }


@pytest.mark.parametrize(
    "reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]
)
def test_an_unpullable_default_image_names_the_image_flag(reason):
    message = (
        'Back-off pulling image "docker.io/library/busybox:1.36.1": ErrImagePull: failed to resolve '
        'reference "docker.io/library/busybox:1.36.1": dial tcp: lookup registry-1.docker.io: no such host'
    )
    found = image_problem(waiting("docker.io/library/busybox:1.36.1", reason, message))
    assert found.startswith("image docker.io/library/busybox:1.36.1 of container server in pod kaic-hpa-abc")
    assert "(mirror it and pass --image busybox=REF or --image-mirror PREFIX)" in found
    assert found.endswith(f"): {reason}: {message}")
    assert "--image busybox=REF" in shorten(found)


def test_a_mirrored_or_overridden_image():
    assert "--image ubuntu=REF" in image_problem(
        waiting("mirror.local/hub/library/ubuntu:22.04", "ErrImagePull", "x")
    )
    assert "given with --image" in image_problem(waiting("kaic.local/busybox:2", "ErrImagePull", "not found"))


def test_other_waiting_states_are_not_image_problems():
    assert image_problem(waiting("docker.io/library/busybox:1.36.1", "ContainerCreating", "")) == ""
    assert image_problem(waiting("docker.io/library/busybox:1.36.1", "CrashLoopBackOff", "back-off")) == ""
    assert image_problem({"status": {}}) == ""


# ---- the API server ----------------------------------------------------------------------------------------


def status_error(code, reason, message):
    exc = ApiException(status=code, reason=reason)
    exc.body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    )
    return exc


# The API server's answers, as it words them (quota: what a 403 body holds; made real in tests/probes for the
# rest).
QUOTA = (
    'pods "consumer" is forbidden: exceeded quota: gpu-quota, requested: pods=1,requests.example.com/gpu=1, '
    "used: pods=4,requests.example.com/gpu=4, limited: pods=4,requests.example.com/gpu=4"
)
VAP = (
    "pods \"consumer\" is forbidden: ValidatingAdmissionPolicy 'no-probes' with binding 'no-probes-binding' "
    "denied request: probe pods are not allowed on this cluster"
)
WEBHOOK = (
    'admission webhook "deny.policy.example.com" denied the request: pods must carry a cost-center label'
)
POD_SECURITY = (
    'pods "consumer" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation '
    "!= false"
)


@pytest.mark.parametrize(
    ("message", "named"),
    [
        (QUOTA, "ResourceQuota gpu-quota is exceeded: requested: pods=1"),
        (
            VAP,
            (
                "ValidatingAdmissionPolicy no-probes (binding no-probes-binding) denied it: "
                "probe pods are not allowed"
            ),
        ),
        (WEBHOOK, "admission webhook deny.policy.example.com denied it: pods must carry a cost-center label"),
        (POD_SECURITY, "Pod Security admission (restricted:latest) denied it: allowPrivilegeEscalation"),
    ],
)
def test_denials_name_the_policy(message, named):
    assert denial(message).startswith(named)
    assert named in api_denial(status_error(403, "Forbidden", message))
    assert named in api_denial(status_error(422, "Invalid", message))


def test_other_api_answers_are_not_denials():
    assert (
        api_denial(
            status_error(403, "Forbidden", 'pods is forbidden: User "kaic" cannot create resource "pods"')
        )
        == ""
    )
    assert (
        api_denial(
            status_error(422, "Invalid", 'Pod "x" is invalid: spec.containers[0].image: Required value')
        )
        == ""
    )
    assert api_denial(status_error(500, "InternalError", WEBHOOK)) == ""
    assert api_denial(ValueError(WEBHOOK)) == ""


class _Info:
    def __init__(self, value):
        self.value = value


def test_a_denied_create_is_unknown_naming_the_policy_in_setup_and_call():
    refused = status_error(403, "Forbidden", QUOTA)
    for when in ("setup", "call"):
        outcome, reason = classify(_Info(refused), when)  # type: ignore[arg-type]
        assert outcome == Outcome.UNKNOWN and "ResourceQuota gpu-quota is exceeded" in reason
    assert classify(_Info(status_error(409, "Conflict", "already exists")), "call")[0] == Outcome.ERROR  # type: ignore[arg-type]


# ---- the guard a wait consults -----------------------------------------------------------------------------


class Listing:
    """Answers `list` from canned collections and counts the calls (the Guard's only cluster use)."""

    def __init__(self, **collections):
        self.collections, self.calls = collections, []

    def list(self, path, **query):
        self.calls.append(path)
        return iter(self.collections.get(path.rsplit("/", 1)[-1], []))


def test_guard_lists_nodes_once_per_scheduler_message_and_raises():
    cluster = Listing(nodes=CLUSTER, resourceslices=[{"spec": {"nodeName": n}} for n in SLICES])
    guard = Guard(cluster, "ns")
    blocked = pod(TAINTED, pinned=("gpu-0", "gpu-1"), claims=True)
    for _ in range(2):
        with pytest.raises(Unknown, match="node gpu-0 taint dedicated=team-a:NoSchedule"):
            guard.pod(blocked)
    assert cluster.calls.count("/api/v1/nodes") == 1
    guard.pod(
        pod("0/5 nodes are available: 5 Insufficient cpu.", pinned=("gpu-0",))
    )  # no policy word: no listing
    assert cluster.calls.count("/api/v1/nodes") == 1
    with pytest.raises(ProbeError, match="--image busybox=REF"):
        guard.pod(waiting("docker.io/library/busybox:1.36.1", "ImagePullBackOff", "not found"))


def test_guard_reads_controller_refusals_of_its_owners_only():
    event = {
        "reason": "FailedCreate",
        "involvedObject": {"kind": "ReplicaSet", "name": "kaic-hpa-5d8f"},
        "message": f"Error creating: {VAP}",
    }
    other = {**event, "involvedObject": {"kind": "Job", "name": "someone-else"}}
    with pytest.raises(
        Unknown, match="refused the pods of kaic-hpa-5d8f: ValidatingAdmissionPolicy no-probes"
    ):
        Guard(Listing(events=[other, event]), "ns", owners=("kaic-hpa",)).creations()
    Guard(Listing(events=[other]), "ns", owners=("kaic-hpa",)).creations()
    Guard(Listing(events=[event]), "ns").creations()  # no owners: nothing to read


def test_container_nodes_leave_dedicated_nodes_out_while_others_remain():
    from kaic.areas.workloads import container_nodes

    def runs(name, taints=()):
        found = node(name, taints=taints)
        found["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        return found

    control = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    cluster = Listing(
        nodes=[runs("gpu-0", [GPU_TAINT]), runs("team-a", [DEDICATED]), runs("control", [control])]
    )
    assert container_nodes(cluster, Settings())[0] == (
        "gpu-0",
    )  # the accelerator taint is kaic's to tolerate
    allowed = parse_toleration("dedicated=team-a:NoSchedule")
    nodes, tolerations = container_nodes(cluster, Settings(tolerations=(allowed,)))
    assert nodes == ("gpu-0", "team-a") and allowed in tolerations and GPU_TOLERATION in tolerations
    assert control["key"] not in {t["key"] for t in tolerations}
    only_dedicated = Listing(nodes=[runs("team-a", [DEDICATED])])
    assert container_nodes(only_dedicated, Settings())[0] == (
        "team-a",
    )  # left to the scheduler, whose refusal names it
