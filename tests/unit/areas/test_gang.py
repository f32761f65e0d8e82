"""Gang adapters: detection from discovery facts, the objects each solution reads, group identity, the
fence."""

from __future__ import annotations

import pytest

from kaic.areas import gang
from kaic.results.outcomes import Unknown
from kaic.settings import Gang

CRD = {"established": True}
NATIVE_137 = {"v1": ("priorityclasses",), "v1beta1": ("podgroups", "podgroups/status", "workloads")}


def crds(**served: str) -> dict:
    """CRDs by name -> one served version each."""
    return {name.replace("_", "."): {**CRD, "versions": [version]} for name, version in served.items()}


KUEUE = {
    f"{kind}.kueue.x-k8s.io": {**CRD, "versions": ["v1beta1", "v1beta2"]}
    for kind in ("clusterqueues", "localqueues", "resourceflavors", "workloads")
}
VOLCANO = {"podgroups.scheduling.volcano.sh": {**CRD, "versions": ["v1beta1"]}}
COSCHEDULING = {"podgroups.scheduling.x-k8s.io": {**CRD, "versions": ["v1alpha1"]}}


def found(crd_map: dict | None = None, native: dict | None = None) -> gang.Discovery:
    return gang.Discovery(crd_map or {}, native or {})


@pytest.mark.parametrize(
    ("native", "version"),
    [
        (NATIVE_137, "v1beta1"),
        ({"v1alpha3": ("podgroups",), "v1beta1": ("podgroups",)}, "v1beta1"),  # the beta wins over the alpha
        ({"v1alpha2": ("podgroups", "workloads")}, "v1alpha2"),  # 1.36
        ({"v1": ("priorityclasses",)}, None),  # 1.37 without GenericWorkload: only PriorityClass
        ({"v1alpha1": ("workloads",)}, None),  # 1.35's Workload-only shape is not built
    ],
)
def test_native_version_follows_what_the_release_serves(native, version):
    assert gang.Native().detect(found(native=native)) == version


def test_add_ons_are_detected_from_established_crds_of_the_version_kaic_speaks():
    assert gang.Kueue().detect(found(KUEUE)) == "v1beta2"
    old_kueue = {name: {**crd, "versions": ["v1beta1"]} for name, crd in KUEUE.items()}
    assert gang.Kueue().detect(found(old_kueue)) is None
    assert gang.Kueue().detect(found(dict(list(KUEUE.items())[1:]))) is None  # every CRD, not some
    assert gang.Volcano().detect(found(VOLCANO)) == "v1beta1"
    assert gang.Coscheduling().detect(found(COSCHEDULING)) == "v1alpha1"
    pending = {"podgroups.scheduling.volcano.sh": {"established": False, "versions": ["v1beta1"]}}
    assert gang.Volcano().detect(found(pending)) is None


def test_auto_prefers_native_then_add_ons_and_records_everything_found():
    choice = gang.choose(Gang(), found({**KUEUE, **VOLCANO}, NATIVE_137))
    assert (choice.adapter.name, choice.version) == ("native", "v1beta1")
    assert choice.installed == ("native", "kueue", "volcano")
    assert gang.choose(Gang(), found(VOLCANO)).adapter.name == "volcano"


def test_a_kueue_queue_label_or_an_explicit_choice_wins_over_auto():
    labelled = Gang(job_labels={"kueue.x-k8s.io/queue-name": "team-q"})
    assert gang.choose(labelled, found(KUEUE, NATIVE_137)).adapter.name == "kueue"
    asked = Gang(scheduler="volcano")
    assert gang.choose(asked, found(VOLCANO, NATIVE_137)).why == "volcano (asked for)"


def test_nothing_installed_or_an_absent_choice_is_unknown_with_the_install_hint():
    with pytest.raises(Unknown, match="no gang-scheduling solution found.*--gang-scheduler-namespace"):
        gang.choose(Gang(), found(native={"v1": ("priorityclasses",)}))
    with pytest.raises(Unknown, match="kueue gang scheduling was asked for but its API is not served"):
        gang.choose(Gang(scheduler="kueue"), found(native=NATIVE_137))


def build(adapter: str, version: str, settings: Gang | None = None, queue: str = "") -> list[gang.Obj]:
    choice = gang.Choice(gang.ADAPTERS[adapter], version, "", (adapter,))
    labels = {"kaic.dev/run-id": "r1"}
    return gang.gang(choice, "g", 3, labels, {"containers": []}, settings or Gang(), queue)


def test_native_gang_is_a_podgroup_and_a_job_whose_pods_join_it():
    group, job = build("native", "v1beta1")
    assert group.collection("ns") == "/apis/scheduling.k8s.io/v1beta1/namespaces/ns/podgroups"
    assert group.body["spec"] == {"schedulingPolicy": {"gang": {"minCount": 3}}}
    assert job.path("ns") == "/apis/batch/v1/namespaces/ns/jobs/g"
    spec = job.body["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (3, 3, 0)
    assert spec["template"]["spec"]["schedulingGroup"] == {"podGroupName": "g"}
    assert "schedulerName" not in spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"] == {"kaic.dev/run-id": "r1", gang.GANG_LABEL: "g"}
    pod = {"spec": spec["template"]["spec"]}
    assert gang.Native().group_of(pod) == "g"


def test_kueue_gang_is_a_suspended_job_in_the_queue_and_its_own_queue_is_fenced_by_quota():
    (job,) = build("kueue", "v1beta2", queue="q")
    assert job.body["spec"]["suspend"] is True
    assert job.body["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "q"
    pod = {"metadata": {"ownerReferences": [{"kind": "Job", "name": "g"}]}}
    assert gang.Kueue().group_of(pod) == "g"
    flavor, cluster_queue, local = gang.Kueue().queue_objects("kq", "ns", {"a": "b"}, 350)
    assert flavor.collection("ns") == "/apis/kueue.x-k8s.io/v1beta2/resourceflavors"
    assert cluster_queue.path("ns") == "/apis/kueue.x-k8s.io/v1beta2/clusterqueues/kq"
    assert local.collection("ns") == "/apis/kueue.x-k8s.io/v1beta2/namespaces/ns/localqueues"
    spec = cluster_queue.body["spec"]
    assert spec["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "ns"}}
    assert spec["resourceGroups"][0]["flavors"][0]["resources"][0] == {"name": "cpu", "nominalQuota": "350m"}
    assert gang.quota_free_cpu_m(cluster_queue.body) == 350


def workload(count: int, reserved: dict | None) -> dict:
    """A Workload as Kueue v0.17 writes it for a Job `g` (as read from a real cluster)."""
    return {
        "metadata": {"name": "job-g-1a2b3", "ownerReferences": [{"kind": "Job", "name": "g"}]},
        "spec": {"podSets": [{"name": "main", "count": count}]},
        "status": {"conditions": [{"type": "QuotaReserved", **reserved}] if reserved else []},
    }


PENDING = {
    "status": "False",
    "reason": "Pending",
    "message": "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor q, "
    "50m more needed",
}


def test_kueue_refused_the_gang_whole_only_when_its_workload_asks_for_all_and_got_no_quota():
    kueue = gang.Kueue()
    other = {
        **workload(3, PENDING),
        "metadata": {"name": "x", "ownerReferences": [{"kind": "Job", "name": "h"}]},
    }
    assert kueue.workload_of([other, workload(3, PENDING)], "g") == workload(3, PENDING)
    assert kueue.workload_of([other], "g") is None
    assert kueue.refused_whole(workload(3, PENDING), 3)
    assert not kueue.refused_whole(None, 3)  # never queued
    assert not kueue.refused_whole(workload(3, None), 3)  # not weighed yet
    assert not kueue.refused_whole(workload(2, PENDING), 3)  # not the whole gang
    assert not kueue.refused_whole(workload(3, {"status": "True", "reason": "QuotaReserved"}), 3)
    assert kueue.admission(workload(3, PENDING), "g") == (
        "Workload job-g-1a2b3 (pod sets main=3): QuotaReserved False (Pending: couldn't assign flavors to "
        "pod set main: insufficient unused quota for cpu in flavor q, 50m more needed)"
    )
    assert kueue.admission(workload(3, None), "g").endswith("no QuotaReserved condition yet")
    assert kueue.admission(None, "g") == "Kueue made no Workload for Job g, so it never queued it"


def test_a_job_may_ask_for_more_completions_than_it_runs_at_once():
    body = gang.job("b", 1, {}, {"containers": []}, completions=1200)
    assert (body["spec"]["parallelism"], body["spec"]["completions"]) == (1, 1200)
    assert gang.job("g", 3, {}, {"containers": []})["spec"]["completions"] == 3


def test_volcano_members_name_their_group_so_no_shadow_group_is_made():
    group, job = build("volcano", "v1beta1")
    assert group.body["apiVersion"] == "scheduling.volcano.sh/v1beta1" and group.body["spec"] == {
        "minMember": 3
    }
    template = job.body["spec"]["template"]
    assert template["metadata"]["annotations"] == {"scheduling.k8s.io/group-name": "g"}
    assert template["spec"]["schedulerName"] == "volcano"
    assert gang.Volcano().group_of({"metadata": template["metadata"]}) == "g"
    assert gang.Volcano().group_of({"metadata": {"annotations": {}}}) == ""


def test_coscheduling_members_join_by_label_and_the_scheduler_name_and_job_labels_can_be_set():
    settings = Gang(scheduler_name="my-scheduler", job_labels={"team": "ml"})
    group, job = build("coscheduling", "v1alpha1", settings)
    assert group.body["spec"]["minMember"] == 3
    template = job.body["spec"]["template"]
    assert template["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "g"
    assert template["metadata"]["labels"]["team"] == "ml" and job.body["metadata"]["labels"]["team"] == "ml"
    assert template["spec"]["schedulerName"] == "my-scheduler"


@pytest.mark.parametrize(
    ("quantity", "millis"),
    [("2", 2000), ("1.5", 1500), ("250m", 250), ("500000u", 500), ("1n", 1), (0, 0), ("", 0)],
)
def test_cpu_quantities(quantity, millis):
    assert gang.cpu_m(quantity) == millis


def pod(cpu: str, phase: str = "Running", init: str = "0", overhead: str = "0") -> dict:
    return {
        "spec": {
            "containers": [{"resources": {"requests": {"cpu": cpu}}}, {"resources": {}}],
            "initContainers": [{"resources": {"requests": {"cpu": init}}}],
            "overhead": {"cpu": overhead},
        },
        "status": {"phase": phase},
    }


def node(name: str, cpu: str = "8", ready: bool = True, taint: str = "", **extra: str) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {"taints": [{"key": "k", "effect": taint}] if taint else []},
        "status": {
            "allocatable": {"cpu": cpu, "memory": "1Gi", "pods": "110", **extra},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_requests_count_like_the_scheduler_and_finished_pods_free_their_cpu():
    assert gang.pod_cpu_request_m(pod("500m", init="2", overhead="100m")) == 2100
    assert (
        gang.free_cpu_m(node("n"), [pod("1"), pod("2", phase="Succeeded"), pod("500m", phase="Pending")])
        == 6500
    )


def test_fence_node_is_usable_prefers_plain_nodes_then_the_most_free_cpu():
    nodes = [
        node("gpu", "96", **{"example.com/gpu": "8"}),
        node("small", "4"),
        node("big", "16"),
        node("tainted", "64", taint="NoSchedule"),
        node("down", "64", ready=False),
    ]
    assert gang.fence_node(nodes, {"big": [pod("14")]}) == ("small", 4000)
    assert gang.fence_node(nodes, {}) == ("big", 16000)
    assert gang.fence_node(nodes[:1], {}) == ("gpu", 96000)
    with pytest.raises(LookupError):
        gang.fence_node(nodes[3:], {})


@pytest.mark.parametrize("free", [96000, 3500, 4000, 777, 12, 7])
@pytest.mark.parametrize("size", [2, 3, 5])
def test_member_size_lets_the_gang_fit_alone_and_not_beside_one_blocker(free, size):
    member = gang.member_cpu_m(free, size)
    if member == 0:  # too small to fence exactly (the probe reports an error): truly no size would do
        assert not any(size * m <= free < (size + 1) * m for m in range(1, free + 1))
        return
    assert size * member <= free  # the whole gang fits on its own
    assert size * member > free - member  # with a member-sized blocker only size-1 fit
    if free >= 100 * size:
        assert free - size * member >= member // 2 - 1  # and about half a member of slack either way


def test_quota_free_is_nominal_minus_reserved_in_the_cpu_flavor():
    queue = {
        "spec": {
            "resourceGroups": [
                {
                    "coveredResources": ["nvidia.com/gpu"],
                    "flavors": [
                        {"name": "a100", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": "8"}]}
                    ],
                },
                {
                    "coveredResources": ["cpu", "memory"],
                    "flavors": [
                        {
                            "name": "default",
                            "resources": [
                                {"name": "memory", "nominalQuota": "36Gi"},
                                {"name": "cpu", "nominalQuota": "9"},
                            ],
                        }
                    ],
                },
            ]
        },
        "status": {
            "flavorsReservation": [{"name": "default", "resources": [{"name": "cpu", "total": "2500m"}]}]
        },
    }
    assert gang.quota_free_cpu_m(queue) == 6500
    assert gang.quota_free_cpu_m({"spec": {}}) == 0


def test_judging_helpers_read_binds_and_scheduled_times():
    pods = {
        "a": {
            "spec": {"nodeName": "n"},
            "status": {
                "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t1"}]
            },
        },
        "b": {"spec": {}},
    }
    assert gang.bound(pods) == ["a"]
    assert gang.scheduled_times(pods) == {"a": "t1"}


def member(name, node="", refused="", deleting=False):
    """A gang member as the API returns it: bound to `node`, or refused by the scheduler with `refused`."""
    pod = {"metadata": {"name": name}, "spec": {"nodeName": node} if node else {}, "status": {}}
    if refused:
        reason = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": refused}
        pod["status"]["conditions"] = [reason]
    if deleting:
        pod["metadata"]["deletionTimestamp"] = "2026-09-15T10:00:00Z"
    return pod


FULL = "0/1 nodes are available: 1 Insufficient cpu."


def test_the_scheduler_has_answered_for_a_gang_only_when_it_refused_every_member():
    refused = {n: member(n, refused=FULL) for n in ("a", "b", "c")}
    assert gang.refused_members(refused, 3) == {n: FULL for n in ("a", "b", "c")}
    # A member not yet refused (still weighed, or waiting at a permit) or missing: not answered yet.
    assert gang.refused_members({**refused, "c": member("c")}, 3) is None
    assert gang.refused_members({n: refused[n] for n in ("a", "b")}, 3) is None
    # A bound member is no refusal, a member being deleted does not count, nor does a gated one.
    assert gang.refused_members({**refused, "c": member("c", node="n")}, 3) is None
    assert gang.refused_members({**refused, "c": member("c", refused=FULL, deleting=True)}, 3) is None
    gated = member("c")
    gated["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]
    assert gang.refused_members({**refused, "c": gated}, 3) is None
