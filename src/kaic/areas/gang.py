"""Gang-scheduling adapters: how kaic forms one all-or-nothing group of pods with each solution it knows.

Every gang is a batch/v1 Job of N pods (upstream's TestGangScheduling also submits a plain Job) plus what the
solution reads to treat those pods as one group. An adapter recognises its solution from discovery facts,
builds the group object and the Job, and says which group a pod ended up in, so a solution that quietly
regroups pods (Volcano's one-pod "shadow" PodGroups) is caught rather than judged. Capacity arithmetic for the
fence that makes "only N of N+1 fit" exact lives here too. Pure: nothing in this module talks to a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from kaic.areas.policy import unschedulable_message
from kaic.kube.conditions import condition, is_ready
from kaic.results.outcomes import Unknown
from kaic.settings import GANG_SCHEDULERS, Gang

NATIVE_GROUP = "scheduling.k8s.io"
# Every pod of one gang carries this label (value: the Job's name), so a watch can select exactly them.
GANG_LABEL = "kaic.dev/gang"
JOB_DEADLINE_S = 600
INSTALL_HINT = "install one and re-run, or point kaic at it with --gang-scheduler/--gang-scheduler-namespace"


@dataclass(frozen=True)
class Discovery:
    """What detection reads: CRDs (facts["crds"]) and, per served scheduling.k8s.io version, its resources."""

    crds: Mapping[str, Any]
    native: Mapping[str, tuple[str, ...]]

    def serves(self, crd: str, version: str) -> bool:
        found = self.crds.get(crd) or {}
        return bool(found.get("established")) and version in (found.get("versions") or [])


@dataclass(frozen=True)
class Obj:
    """One object to create: its plural and its body (the path follows from apiVersion)."""

    plural: str
    body: dict[str, Any]
    namespaced: bool = True

    def collection(self, namespace: str) -> str:
        version = self.body["apiVersion"]
        root = "/api/v1" if version == "v1" else f"/apis/{version}"
        return f"{root}/namespaces/{namespace}/{self.plural}" if self.namespaced else f"{root}/{self.plural}"

    def path(self, namespace: str) -> str:
        return f"{self.collection(namespace)}/{self.body['metadata']['name']}"


def _pod_group(api_version: str, name: str, labels: Mapping[str, str], spec: dict[str, Any]) -> Obj:
    """A PodGroup: the native API, Volcano and scheduler-plugins each have one, in their own group."""
    return Obj(
        "podgroups",
        {
            "apiVersion": api_version,
            "kind": "PodGroup",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": spec,
        },
    )


class Adapter:
    """One gang-scheduling solution. Subclasses fill in the class attributes and the methods (`detect` only
    where no set of CRDs tells the API is served)."""

    name: ClassVar[str]
    # What keeps exactly N of N+1 members from fitting: "node" (a node's free CPU) or "quota" (an admission
    # quota).
    fence: ClassVar[str] = "node"
    # Whether a waiting gang's pods exist, unbound (a scheduler gates them), or are not created at all (a
    # queue keeps the Job suspended until the whole gang is admitted).
    pods_exist_while_waiting: ClassVar[bool] = True
    default_scheduler_name: ClassVar[str] = ""
    # An add-on's API: the CRDs that serve it, each at `version`.
    crds: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[str] = ""

    def detect(self, found: Discovery) -> str | None:
        """The API version kaic will speak with this solution, or None when it is not installed."""
        served = self.crds and all(found.serves(crd, self.version) for crd in self.crds)
        return self.version if served else None

    def group(self, name: str, size: int, labels: Mapping[str, str], version: str) -> Obj | None:
        """The group object members join (None when the solution makes its own)."""
        raise NotImplementedError

    def join(self, job_body: dict[str, Any], group: str, version: str, scheduler_name: str) -> None:
        """Make the Job's pods members of `group`."""
        raise NotImplementedError

    def group_of(self, pod: Mapping[str, Any]) -> str:
        """The group a pod was put in, as the solution sees it ("" = none)."""
        raise NotImplementedError

    def _schedule_with(self, template: dict[str, Any], scheduler_name: str) -> None:
        if name := scheduler_name or self.default_scheduler_name:
            template["spec"]["schedulerName"] = name


class Native(Adapter):
    """Kubernetes' own PodGroup: `spec.schedulingPolicy.gang.minCount`, joined by `spec.schedulingGroup`."""

    name = "native"
    # Served versions with a standalone PodGroup that pods join through spec.schedulingGroup.podGroupName,
    # newest first: 1.37 beta (gate GenericWorkload), 1.37 alpha, 1.36 alpha. 1.35's v1alpha1 Workload (pods
    # joined by spec.workloadRef) had another shape and is not built.
    versions = ("v1beta1", "v1alpha3", "v1alpha2")

    def detect(self, found: Discovery) -> str | None:
        return next((v for v in self.versions if "podgroups" in found.native.get(v, ())), None)

    def group(self, name: str, size: int, labels: Mapping[str, str], version: str) -> Obj:
        return _pod_group(
            f"{NATIVE_GROUP}/{version}", name, labels, {"schedulingPolicy": {"gang": {"minCount": size}}}
        )

    def join(self, job_body: dict[str, Any], group: str, version: str, scheduler_name: str) -> None:
        template = job_body["spec"]["template"]
        template["spec"]["schedulingGroup"] = {"podGroupName": group}
        self._schedule_with(template, scheduler_name)

    def group_of(self, pod: Mapping[str, Any]) -> str:
        return str(((pod.get("spec") or {}).get("schedulingGroup") or {}).get("podGroupName") or "")


class Kueue(Adapter):
    """Kueue admits a suspended Job only when quota for all its pods is free, then unsuspends it whole."""

    name = "kueue"
    fence = "quota"
    pods_exist_while_waiting = False
    version = "v1beta2"  # Kueue 0.15+ (storage version from 0.16)
    QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
    crds = (
        "clusterqueues.kueue.x-k8s.io",
        "localqueues.kueue.x-k8s.io",
        "resourceflavors.kueue.x-k8s.io",
        "workloads.kueue.x-k8s.io",
    )

    def group(self, name: str, size: int, labels: Mapping[str, str], version: str) -> None:
        return None  # Kueue makes one Workload per Job itself

    def join(self, job_body: dict[str, Any], group: str, version: str, scheduler_name: str) -> None:
        """`group` is the LocalQueue; the Job starts suspended so nothing runs before Kueue admits it (even
        where Kueue's defaulting webhook is not reached)."""
        job_body["metadata"]["labels"][self.QUEUE_LABEL] = group
        job_body["spec"]["suspend"] = True
        self._schedule_with(job_body["spec"]["template"], scheduler_name)

    def group_of(self, pod: Mapping[str, Any]) -> str:
        """The Job that owns the pod: Kueue admits (and gangs) per Job."""
        owners = (pod.get("metadata") or {}).get("ownerReferences") or []
        return next((str(o["name"]) for o in owners if o.get("kind") == "Job"), "")

    def workload_of(self, workloads: Iterable[Mapping[str, Any]], job: str) -> Mapping[str, Any] | None:
        """The Workload Kueue made for the Job `job` (one per Job, owned by it), if any."""
        return next((w for w in workloads if self.group_of(w) == job), None)

    @staticmethod
    def refused_whole(workload: Mapping[str, Any] | None, size: int) -> bool:
        """Kueue weighed the gang as one: a Workload asking for all `size` pods at once, whose quota
        reservation it has considered and refused (QuotaReserved False), not merely not looked at yet."""
        if workload is None:
            return False
        count = sum(int(p.get("count", 0)) for p in (workload.get("spec") or {}).get("podSets") or [])
        return count == size and condition(workload.get("status") or {}, "QuotaReserved") == "False"

    @staticmethod
    def admission(workload: Mapping[str, Any] | None, job: str) -> str:
        """What Kueue made of the Job: no Workload at all, or its pod sets and quota reservation."""
        if workload is None:
            return f"Kueue made no Workload for Job {job}, so it never queued it"
        sets = ", ".join(
            f"{p.get('name')}={p.get('count')}" for p in (workload.get("spec") or {}).get("podSets") or []
        )
        reserved = next(
            (
                c
                for c in (workload.get("status") or {}).get("conditions") or []
                if c.get("type") == "QuotaReserved"
            ),
            None,
        )
        state = (
            f"QuotaReserved {reserved.get('status')} ({reserved.get('reason')}: {reserved.get('message')})"
            if reserved
            else "no QuotaReserved condition yet"
        )
        return f"Workload {workload['metadata']['name']} (pod sets {sets}): {state}"

    def queue_objects(self, name: str, namespace: str, labels: Mapping[str, str], cpu_m: int) -> list[Obj]:
        """A ResourceFlavor, a ClusterQueue open only to `namespace` with `cpu_m` of CPU (the fence; memory is
        not fenced) and its LocalQueue: kaic's own queue, so a run never competes with real work for quota."""
        meta = {"name": name, "labels": dict(labels)}
        api = f"kueue.x-k8s.io/{self.version}"
        return [
            Obj(
                "resourceflavors",
                {"apiVersion": api, "kind": "ResourceFlavor", "metadata": meta, "spec": {}},
                False,
            ),
            Obj(
                "clusterqueues",
                {
                    "apiVersion": api,
                    "kind": "ClusterQueue",
                    "metadata": meta,
                    "spec": {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                        "resourceGroups": [
                            {
                                "coveredResources": ["cpu", "memory"],
                                "flavors": [
                                    {
                                        "name": name,
                                        "resources": [
                                            {"name": "cpu", "nominalQuota": f"{cpu_m}m"},
                                            {"name": "memory", "nominalQuota": "64Gi"},
                                        ],
                                    }
                                ],
                            }
                        ],
                    },
                },
                False,
            ),
            Obj(
                "localqueues",
                {"apiVersion": api, "kind": "LocalQueue", "metadata": meta, "spec": {"clusterQueue": name}},
            ),
        ]


class Volcano(Adapter):
    """Volcano's PodGroup (`minMember`), joined by the group-name annotation and scheduled by `volcano`."""

    name = "volcano"
    default_scheduler_name = "volcano"
    version = "v1beta1"
    crds = ("podgroups.scheduling.volcano.sh",)
    GROUP_ANNOTATION = "scheduling.k8s.io/group-name"

    def group(self, name: str, size: int, labels: Mapping[str, str], version: str) -> Obj:
        return _pod_group(f"scheduling.volcano.sh/{version}", name, labels, {"minMember": size})

    def join(self, job_body: dict[str, Any], group: str, version: str, scheduler_name: str) -> None:
        """Naming the group on every pod keeps Volcano from wrapping each pod in its own minMember=1 group."""
        template = job_body["spec"]["template"]
        template["metadata"].setdefault("annotations", {})[self.GROUP_ANNOTATION] = group
        self._schedule_with(template, scheduler_name)

    def group_of(self, pod: Mapping[str, Any]) -> str:
        return str(((pod.get("metadata") or {}).get("annotations") or {}).get(self.GROUP_ANNOTATION) or "")


class Coscheduling(Adapter):
    """scheduler-plugins' Coscheduling: a PodGroup (`minMember`) joined by label, usually a second
    scheduler."""

    name = "coscheduling"
    default_scheduler_name = "scheduler-plugins-scheduler"
    version = "v1alpha1"
    crds = ("podgroups.scheduling.x-k8s.io",)
    GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
    SCHEDULE_TIMEOUT_S = 60

    def group(self, name: str, size: int, labels: Mapping[str, str], version: str) -> Obj:
        spec = {"minMember": size, "scheduleTimeoutSeconds": self.SCHEDULE_TIMEOUT_S}
        return _pod_group(f"scheduling.x-k8s.io/{version}", name, labels, spec)

    def join(self, job_body: dict[str, Any], group: str, version: str, scheduler_name: str) -> None:
        template = job_body["spec"]["template"]
        template["metadata"]["labels"][self.GROUP_LABEL] = group
        self._schedule_with(template, scheduler_name)

    def group_of(self, pod: Mapping[str, Any]) -> str:
        return str(((pod.get("metadata") or {}).get("labels") or {}).get(self.GROUP_LABEL) or "")


# Auto-detection order: the platform's own API first (it needs no cluster-scoped objects), then the add-ons.
ADAPTERS: dict[str, Adapter] = {a.name: a for a in (Native(), Kueue(), Volcano(), Coscheduling())}


@dataclass(frozen=True)
class Choice:
    adapter: Adapter
    version: str
    why: str
    installed: tuple[str, ...]  # every solution detection found


def choose(settings: Gang, found: Discovery) -> Choice:
    """The adapter to judge: the one asked for, else the one the job labels point at (a Kueue queue), else the
    first installed. Nothing installed is unknown: kaic cannot tell whether the platform could run one."""
    installed = {name: v for name, adapter in ADAPTERS.items() if (v := adapter.detect(found))}
    wanted = settings.scheduler
    if wanted == "auto" and Kueue.QUEUE_LABEL in settings.job_labels:
        wanted = "kueue"
    if wanted != "auto":
        if wanted not in ADAPTERS:
            raise ValueError(f"unknown gang scheduler {wanted!r}; known: {', '.join(GANG_SCHEDULERS)}")
        if wanted not in installed:
            raise Unknown(f"{wanted} gang scheduling was asked for but its API is not served; {INSTALL_HINT}")
        return Choice(ADAPTERS[wanted], installed[wanted], f"{wanted} (asked for)", tuple(installed))
    if not installed:
        raise Unknown(
            "no gang-scheduling solution found (native PodGroup API, Kueue v1beta2, Volcano, coscheduling); "
            + INSTALL_HINT
        )
    name = next(iter(installed))
    return Choice(
        ADAPTERS[name],
        installed[name],
        f"{name} (auto-detected; found {', '.join(installed)})",
        tuple(installed),
    )


def job(
    name: str, size: int, labels: Mapping[str, str], pod_spec: dict[str, Any], completions: int = 0
) -> dict[str, Any]:
    """N pods started together: parallelism = completions = N (or more completions, run N at a time), no
    retries, bounded lifetime and cleanup."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "parallelism": size,
            "completions": completions or size,
            "backoffLimit": 0,
            "activeDeadlineSeconds": JOB_DEADLINE_S,
            "ttlSecondsAfterFinished": 60,
            "template": {"metadata": {"labels": {**labels, GANG_LABEL: name}}, "spec": pod_spec},
        },
    }


def gang(
    choice: Choice,
    name: str,
    size: int,
    labels: Mapping[str, str],
    pod_spec: dict[str, Any],
    settings: Gang,
    queue: str = "",
    completions: int = 0,
) -> list[Obj]:
    """The objects of one gang in creation order: its group object (if the solution reads one), then the
    Job."""
    adapter = choice.adapter
    group = adapter.group(name, size, labels, choice.version)
    body = job(name, size, {**labels, **settings.job_labels}, pod_spec, completions)
    adapter.join(body, queue or name, choice.version, settings.scheduler_name)
    return [*([group] if group else []), Obj("jobs", body)]


# ---- capacity fence --------------------------------------------------------------------------------------

_CPU_UNITS = {"n": 1e-6, "u": 1e-3, "m": 1.0, "": 1000.0}


def cpu_m(quantity: str | float) -> int:
    """A CPU quantity in millicores ("2", "1.5", "500m", "250000u"), rounded up like the scheduler does."""
    text = str(quantity).strip()
    if not text:
        return 0
    unit = text[-1] if text and text[-1] in "num" else ""
    return math.ceil(float(text[: len(text) - len(unit)]) * _CPU_UNITS[unit])


def pod_cpu_request_m(pod: Mapping[str, Any]) -> int:
    """The CPU the scheduler counts for a pod: the larger of its containers' sum and its largest init
    container, plus overhead (sidecar init containers are counted as plain init containers: an upper bound is
    safe)."""
    spec = pod.get("spec") or {}

    def request(container: Mapping[str, Any]) -> int:
        return cpu_m(((container.get("resources") or {}).get("requests") or {}).get("cpu", 0))

    main = sum(request(c) for c in spec.get("containers") or [])
    init = max((request(c) for c in spec.get("initContainers") or []), default=0)
    return max(main, init) + cpu_m((spec.get("overhead") or {}).get("cpu", 0))


def usable(node: Mapping[str, Any]) -> bool:
    """A node the default scheduler may use for an ordinary pod: Ready, schedulable, no hard taints."""
    spec = node.get("spec") or {}
    hard = [t for t in spec.get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
    return is_ready(node) and not spec.get("unschedulable") and not hard


def free_cpu_m(node: Mapping[str, Any], pods: list[Mapping[str, Any]]) -> int:
    """Allocatable CPU minus what the node's unfinished pods request."""
    allocatable = cpu_m(((node.get("status") or {}).get("allocatable") or {}).get("cpu", 0))
    busy = sum(
        pod_cpu_request_m(p)
        for p in pods
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    )
    return allocatable - busy


def fence_node(
    nodes: list[Mapping[str, Any]], pods_by_node: Mapping[str, list[Mapping[str, Any]]]
) -> tuple[str, int]:
    """The node to fence on and its free CPU: a usable node, one without accelerators if there is one (their
    capacity is the scarce kind), with the most free CPU. Raises LookupError when no node is usable."""

    def key(node: Mapping[str, Any]) -> tuple[bool, int, str]:
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        plain = all(
            r in ("cpu", "memory", "pods", "ephemeral-storage") or r.startswith("hugepages-")
            for r in allocatable
        )
        name = node["metadata"]["name"]
        return plain, free_cpu_m(node, list(pods_by_node.get(name, []))), name

    candidates = sorted((key(n) for n in nodes if usable(n)), key=lambda k: (k[0], k[1]), reverse=True)
    if not candidates:
        raise LookupError("no Ready, schedulable, untainted node")
    _, free, name = candidates[0]
    return name, free


def member_cpu_m(free_m: int, size: int) -> int:
    """Each member's CPU so that `size` members fit in `free_m` and, beside one member-sized blocker, only
    size-1 do: about half a member of margin either way, so pods of a few millicores coming and going do not
    change the outcome. 0 when `free_m` is too small for whole millicores to make that exact."""
    member = int(free_m / (size + 0.5))
    if (size + 1) * member <= free_m:  # rounding ate the margin: take the largest size that still fits
        member = free_m // size
    return member if size * member <= free_m < (size + 1) * member else 0


def quota_free_cpu_m(cluster_queue: Mapping[str, Any]) -> int:
    """CPU a Kueue ClusterQueue can still admit in its first flavor that covers CPU: nominal minus
    reserved."""
    for group in (cluster_queue.get("spec") or {}).get("resourceGroups") or []:
        if "cpu" not in group.get("coveredResources", []):
            continue
        for flavor in group.get("flavors") or []:
            nominal = next(
                (r["nominalQuota"] for r in flavor.get("resources") or [] if r["name"] == "cpu"), None
            )
            if nominal is None:
                continue
            status = cluster_queue.get("status") or {}
            used = status.get("flavorsReservation") or status.get("flavorsUsage") or []
            taken = sum(
                cpu_m(r.get("total", 0))
                for f in used
                if f.get("name") == flavor["name"]
                for r in f.get("resources") or []
                if r.get("name") == "cpu"
            )
            return cpu_m(nominal) - taken
    return 0


# ---- judging what the watch saw -------------------------------------------------------------------------


def bound(pods: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return sorted(name for name, pod in pods.items() if (pod.get("spec") or {}).get("nodeName"))


def scheduled_times(pods: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """When each pod's PodScheduled condition turned True."""
    times = {}
    for name, pod in pods.items():
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "True":
                times[name] = str(cond.get("lastTransitionTime") or "")
    return times


def refused_members(pods: Mapping[str, Mapping[str, Any]], size: int) -> dict[str, str] | None:
    """The scheduler's refusal of every member (pod -> message), once it has answered for the whole gang: at
    least `size` live members, none bound, each with PodScheduled False, reason Unschedulable and a message.
    None until then: a member without that answer may still be weighed, or held at a gang plugin's permit."""
    said = {
        name: unschedulable_message(pod)
        for name, pod in pods.items()
        if not (pod.get("metadata") or {}).get("deletionTimestamp")
    }
    return said if len(said) >= size and all(said.values()) else None
