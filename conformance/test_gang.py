"""Gang scheduling: a group of pods bound all together or not at all, judged by binding.

Proves `gang_scheduling`: a gang scheduler binds a group of pods all together or not at all.

Gang probes judge by binding (a pod's spec.nodeName, followed with a watch started before the gang is
created), never by Job status counters: the scheduler's decision is what gang scheduling is about, and kwok
nodes (which run no containers) leave it real. These are kaic's own checks (`TestKaicGangScheduling/*`), since
upstream's `TestGangScheduling` differs in detail. Every gang is a `batch/v1` Job of 3 pods plus the group
object its solution reads (`kaic.areas.gang`). Both behavioural probes first:

1. Choose the solution (`--gang-scheduler`). No solution installed: unknown ("install one and re-run, or point
   kaic at it with --gang-scheduler/--gang-scheduler-namespace").
2. Fence the capacity. Native, Volcano and coscheduling members are pinned to one Ready, schedulable,
   untainted node (one without accelerators if there is one, then the most free CPU) and sized from its free
   CPU with half a member of margin either way; on a real cluster that node's spare CPU is reserved for the
   probe's minute or so. Kueue is fenced by quota: kaic's own ResourceFlavor, ClusterQueue (open only to the
   probe's namespace) and LocalQueue, or the free quota of a pre-made queue named by `--gang-job-labels` (its
   free CPU is split over the gang, so give kaic a small queue whose members also fit on a node). Everything
   the probe made is deleted afterwards, newest first, also in a pre-made namespace.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from kaic.areas import gang, images, workloads
from kaic.areas.workloads import PodWatch
from kaic.probe import Cluster, Facts, ProbeError, Recorder, Rule, RunContext, crds_in, probe, require
from kaic.settings import Gang

GANG_GROUPS = ("kueue.x-k8s.io", "scheduling.volcano.sh", "scheduling.x-k8s.io", "scheduling.run.ai")


@probe("gang_scheduling", "discovery", test="TestKaicDiscovery/GangScheduling", kind="discovery")
def test_gang_scheduling_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Gang scheduling, discovery
    Description: Records the gang-scheduling solutions the cluster serves (Kueue, Volcano, coscheduling and
    KAI CRDs, and the native scheduling.k8s.io API's versions); a record, never a verdict.
    """
    require(facts, "crds", "apiGroups")
    evidence.add("fact", "gangCrds", crds_in(facts, *GANG_GROUPS))
    evidence.add("fact", "nativeSchedulingVersions", facts["apiGroups"].get("scheduling.k8s.io", {}))


GANG_SIZE = 3  # members of every gang; N+1 for the gang that cannot fit, where only N = 2 do
GRACE_S = 5  # after a first bind in the window: long enough to tell a partial gang from a wrong fence
KUEUE_MEMBER_CPU_M = 100  # with kaic's own Kueue queue the quota is the fence, so members stay small
# Kueue frees a Job's quota once the Job finishes, so a queued blocker whose pod exits (simulated nodes finish
# Job pods) would hand its share to the gang mid-probe: it asks for more completions than its deadline leaves
# time for, one pod at a time, and so holds one member's quota until it is deleted.
QUEUED_BLOCKER_COMPLETIONS = 2 * gang.JOB_DEADLINE_S
# The probes declare `consumes=("node-pool",)`: a node fence needs its node's capacity to itself among probes,
# while kaic's own Kueue queue has a quota nothing else draws on.
GANG_CREATES = (
    "pods",
    "batch/jobs",
    "scheduling.k8s.io/podgroups",
    "scheduling.volcano.sh/podgroups",
    "scheduling.x-k8s.io/podgroups",
    "kueue.x-k8s.io/resourceflavors",
    "kueue.x-k8s.io/clusterqueues",
    "kueue.x-k8s.io/localqueues",
)
_WRITE = ("create", "get", "list", "delete")
GANG_RBAC = (
    Rule("", "pods", ("create", "get", "list", "watch", "delete")),
    Rule("", "events", ("list",)),
    Rule("", "nodes", ("get", "list"), namespaced=False),
    Rule("batch", "jobs", _WRITE),
    Rule("scheduling.k8s.io", "podgroups", _WRITE),
    Rule("scheduling.volcano.sh", "podgroups", _WRITE),
    Rule("scheduling.x-k8s.io", "podgroups", _WRITE),
    Rule("kueue.x-k8s.io", "localqueues", _WRITE),
    Rule("kueue.x-k8s.io", "workloads", ("get", "list")),
    Rule("kueue.x-k8s.io", "clusterqueues", _WRITE, namespaced=False),
    Rule("kueue.x-k8s.io", "resourceflavors", _WRITE, namespaced=False),
)


def native_resources(cluster: Cluster, facts: Facts) -> dict[str, tuple[str, ...]]:
    """The resources of every served scheduling.k8s.io version (PodGroups moved between versions by
    release)."""
    served = (facts["apiGroups"].get(gang.NATIVE_GROUP) or {}).get("versions") or []
    found = {}
    for version in served:
        listing = cluster.get_or_none(f"/apis/{gang.NATIVE_GROUP}/{version}") or {}
        found[version] = tuple(r["name"] for r in listing.get("resources") or [])
    return found


@pytest.fixture
def solution(cluster: Cluster, run: RunContext, facts: Facts, evidence: Recorder) -> gang.Choice:
    """The gang-scheduling solution to judge (step 1); unknown when none is installed."""
    require(facts, "apiGroups", "crds")
    settings = run.settings.gang
    choice = gang.choose(settings, gang.Discovery(facts.get("crds") or {}, native_resources(cluster, facts)))
    evidence.add(
        "fact",
        "gangScheduler",
        {
            "adapter": choice.adapter.name,
            "apiVersion": choice.version,
            "why": choice.why,
            "installed": list(choice.installed),
            "namespace": settings.namespace or "(kaic's own)",
        },
    )
    return choice


@dataclass
class Fence:
    """Where gangs run and how big each member is: GANG_SIZE members fit, and with one member-sized blocker
    in place only GANG_SIZE - 1 do. Either a node's free CPU (members pinned to it) or a Kueue queue's
    quota."""

    cluster: Cluster
    choice: gang.Choice
    run: RunContext
    namespace: str
    cpu_m: int = 0
    node: str = ""
    queue: str = ""
    cluster_queue: str = ""  # the Kueue ClusterQueue behind `queue`
    created: list[str] = field(default_factory=list)  # paths to delete afterwards, in creation order

    @property
    def settings(self) -> Gang:
        return self.run.settings.gang

    def member_spec(self) -> dict[str, Any]:
        container = {
            "name": "main",
            "image": images.for_run(self.run.settings)["pause"],
            "securityContext": workloads.RESTRICTED,
            "resources": {
                "requests": {"cpu": f"{self.cpu_m}m", "memory": "16Mi"},
                "limits": {"memory": "64Mi"},
            },
        }
        nodes = (self.node,) if self.node else ()
        tolerations = list(self.run.settings.tolerations)
        return workloads.pod("member", {}, [container], nodes=nodes, tolerations=tolerations)["spec"]

    def create(self, objs: list[gang.Obj]) -> None:
        for obj in objs:
            self.cluster.create(obj.collection(self.namespace), obj.body)
            self.created.append(obj.path(self.namespace))

    def submit(self, name: str, size: int, completions: int = 0) -> PodWatch:
        """Start watching the gang's pods, then create its group object and Job (so no bind can be
        missed)."""
        watch = PodWatch(self.cluster, self.namespace, f"{gang.GANG_LABEL}={name}", owners=(name,))
        spec = self.member_spec()
        self.create(
            gang.gang(self.choice, name, size, self.run.labels, spec, self.settings, self.queue, completions)
        )
        return watch

    def workload(self, job: str) -> Mapping[str, Any] | None:
        """Kueue's Workload for `job`, if it made one."""
        path = f"/apis/kueue.x-k8s.io/{gang.Kueue.version}/namespaces/{self.namespace}/workloads"
        return gang.Kueue().workload_of(self.cluster.list(path), job)

    def members_fitting(self) -> int:
        """How many members the fenced capacity holds now: the node's free CPU, or the ClusterQueue's free
        quota, over a member's CPU."""
        if self.queue:
            api = f"/apis/kueue.x-k8s.io/{gang.Kueue.version}"
            free = gang.quota_free_cpu_m(self.cluster.get(f"{api}/clusterqueues/{self.cluster_queue}"))
        else:
            pods = self.cluster.list("/api/v1/pods", fieldSelector=f"spec.nodeName={self.node}")
            free = gang.free_cpu_m(self.cluster.get(f"/api/v1/nodes/{self.node}"), list(pods))
        return free // self.cpu_m

    def refusal(self, job: str, watch: PodWatch) -> str:
        """What the solution said in refusing the whole gang while the fence leaves room for GANG_SIZE - 1
        members ("" until it has): every member's scheduler message, or Kueue's verdict on the Job's
        Workload. Only a change in the cluster can undo that decision; with less room the refusal would say
        nothing about the gang, with more it may be about to change."""
        if self.queue:
            workload = self.workload(job)
            said = (
                gang.Kueue.admission(workload, job) if gang.Kueue.refused_whole(workload, GANG_SIZE) else ""
            )
        else:
            refused = gang.refused_members(watch.pods, GANG_SIZE) or {}
            said = "; ".join(f"{pod}: {message}" for pod, message in sorted(refused.items()))
        return said if said and self.members_fitting() == GANG_SIZE - 1 else ""

    def why_waiting(self, job: str) -> str:
        """What the queue made of a Job whose pods kaic awaits ("" where no queue is in play)."""
        return gang.Kueue.admission(self.workload(job), job) if self.queue else ""

    def block(self, evidence: Recorder) -> str:
        """Take one member's worth of the fenced capacity and wait until that is bound; returns what to
        delete."""
        name = f"kaic-{self.run.id}-blocker"
        if self.queue:
            watch = self.submit(name, 1, QUEUED_BLOCKER_COMPLETIONS)
            path = self.created[-1]
        else:
            watch = PodWatch(self.cluster, self.namespace, f"{gang.GANG_LABEL}={name}")
            body = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "labels": {**self.run.labels, gang.GANG_LABEL: name}},
                "spec": self.member_spec(),
            }
            self.cluster.create(workloads.pods_path(self.namespace), body)
            path = workloads.pods_path(self.namespace, name)
            self.created.append(path)
        bind_s = self.settings.bind_timeout_s
        if not watch.until(lambda w: bool(w.ever_bound), bind_s):
            why = self.why_waiting(name)
            raise ProbeError(
                f"the blocker {name} holding one member's capacity was not bound in {bind_s:.0f}s"
                + (f": {why}" if why else "")
            )
        where = self.node or f"queue {self.queue}"
        evidence.add("text", "blocker", f"{name} holds {self.cpu_m}m CPU on {where}")
        return path


@pytest.fixture
def fence(
    request: pytest.FixtureRequest,
    cluster: Cluster,
    solution: gang.Choice,
    namespace: str,
    run: RunContext,
    evidence: Recorder,
) -> Iterator[Fence]:
    """Fence the capacity (step 2); afterwards delete everything the probe made (also in a pre-made
    namespace, which kaic's namespace cleanup does not reach), newest first."""
    fence = Fence(cluster, solution, run, run.settings.gang.namespace or namespace)
    try:
        if solution.adapter.fence == "node":
            try:
                fence.node, free = gang.fence_node(list(cluster.list("/api/v1/nodes")), busy_pods(cluster))
            except LookupError as exc:
                raise ProbeError(f"no node to size a gang on: {exc}") from None
        else:
            stem = request.function.kaic_probe.name.partition(".")[2]
            free = kueue_queue(fence, stem)
        fence.cpu_m = gang.member_cpu_m(free, GANG_SIZE)
        evidence.add(
            "fact",
            "fence",
            {
                "node": fence.node,
                "queue": fence.queue,
                "freeCpu": f"{free}m",
                "memberCpu": f"{fence.cpu_m}m",
                "gangSize": GANG_SIZE,
            },
        )
        if fence.cpu_m < 1:
            raise ProbeError(f"only {free}m CPU free on the fence: too little to size a gang of {GANG_SIZE}")
        yield fence
    finally:
        for path in reversed(fence.created):
            cluster.delete(path, propagationPolicy="Background")


def busy_pods(cluster: Cluster) -> dict[str, list[Mapping[str, Any]]]:
    """Unfinished bound pods by node."""
    selector = "status.phase!=Succeeded,status.phase!=Failed"
    found: defaultdict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for pod in cluster.list("/api/v1/pods", fieldSelector=selector):
        if name := pod["spec"].get("nodeName"):
            found[name].append(pod)
    return found


def kueue_queue(fence: Fence, stem: str) -> int:
    """The queue the gang goes to and the CPU quota it has free: a pre-made queue's (from --gang-job-labels),
    else kaic's own queue, sized for GANG_SIZE small members and a half to spare."""
    api = f"/apis/kueue.x-k8s.io/{gang.Kueue.version}"
    if queue := fence.settings.job_labels.get(gang.Kueue.QUEUE_LABEL, ""):
        local = fence.cluster.get(f"{api}/namespaces/{fence.namespace}/localqueues/{queue}")
        fence.queue, fence.cluster_queue = queue, local["spec"]["clusterQueue"]
        return gang.quota_free_cpu_m(fence.cluster.get(f"{api}/clusterqueues/{fence.cluster_queue}"))
    fence.queue = fence.cluster_queue = f"kaic-{fence.run.id}-{stem}"
    quota = int(KUEUE_MEMBER_CPU_M * (GANG_SIZE + 0.5))
    fence.create(gang.Kueue().queue_objects(fence.queue, fence.namespace, fence.run.labels, quota))
    return quota


def all_bound(size: int) -> Callable[[PodWatch], bool]:
    return lambda w: len(w.ever_bound) >= size


def record(watch: PodWatch, evidence: Recorder, what: str) -> None:
    evidence.add(
        "object",
        what,
        {
            "bound": sorted(watch.ever_bound),
            "podScheduled": gang.scheduled_times(watch.pods),
            "nodes": {n: workloads.scheduled_node(p) for n, p in watch.pods.items()},
        },
    )


def check_membership(watch: PodWatch, choice: gang.Choice, group: str) -> None:
    """Every pod must be in kaic's group: a solution that regrouped them (a shadow group) was never tested."""
    elsewhere = {n: g for n, p in watch.pods.items() if (g := choice.adapter.group_of(p)) != group}
    if elsewhere:
        raise ProbeError(f"{choice.adapter.name} put members in other groups than {group}: {elsewhere}")


@probe(
    "gang_scheduling",
    "fitting-gang",
    test="TestKaicGangScheduling/FittingGangBindsTogether",
    consumes=("node-pool",),
    creates=GANG_CREATES,
    images=("pause",),
    rbac=GANG_RBAC,
    timeout_s=300,
)
def test_gang_that_fits(cluster: Cluster, fence: Fence, run: RunContext, evidence: Recorder) -> None:
    """Testname: Gang scheduling, a gang that fits binds whole
    Description: A gang of 3 that fits MUST have every member bound within `--gang-bind-timeout` (120 s), each
    in kaic's group, and its pods MUST start.

    1. Choose the solution and fence the capacity (above).
    2. Submit a gang of 3 sized to fit; every member must be bound within `--gang-bind-timeout` (120 s), else
       the probe fails with the first member's events (with Kueue, also what it made of the Job: its
       Workload, or none).
    3. Every pod must be in kaic's group: a solution that regrouped them (a shadow group) was never tested
       (error).
    4. Every bound member must reach Running (or Succeeded) within another `--gang-bind-timeout`.
    """
    name, bind_s = f"kaic-{run.id}-fits", fence.settings.bind_timeout_s
    watch = fence.submit(name, GANG_SIZE)
    done = watch.until(all_bound(GANG_SIZE), bind_s)
    record(watch, evidence, "gang")
    if not done:
        for pod in list(watch.pods)[:1]:
            evidence.add("event", pod, workloads.events(cluster, fence.namespace, pod))
        why = fence.why_waiting(name)
        raise AssertionError(
            f"only {len(watch.ever_bound)} of {GANG_SIZE} members of a gang that fits were bound within "
            f"{bind_s:.0f}s ({fence.choice.adapter.name})" + (f": {why}" if why else "")
        )
    check_membership(watch, fence.choice, name)
    running = watch.until(
        lambda w: all(p["status"].get("phase") in ("Running", "Succeeded") for p in w.pods.values()),
        bind_s,
    )
    phases = {n: p["status"].get("phase") for n, p in watch.pods.items()}
    evidence.add("object", "phases", phases)
    if not running:
        raise TimeoutError(f"bound members did not start within {bind_s:.0f}s: {phases}")


@probe(
    "gang_scheduling",
    "unfit-gang",
    test="TestKaicGangScheduling/GangWaitsUntilWholeGroupFits",
    consumes=("node-pool",),
    creates=GANG_CREATES,
    images=("pause",),
    rbac=GANG_RBAC,
    timeout_s=420,
)
def test_gang_that_cannot_fit(cluster: Cluster, fence: Fence, run: RunContext, evidence: Recorder) -> None:
    """Testname: Gang scheduling, a gang that cannot fit waits whole (⊖)
    Description: While only 2 of a gang's 3 members fit, no member MUST be bound, until the solution has
    refused the whole gang or for the whole window; once the capacity is freed all 3 MUST bind.

    1. Choose the solution and fence the capacity (above).
    2. A member-sized blocker takes part of the fenced capacity, so only 2 of 3 members fit; it must be bound
       within `--gang-bind-timeout` (120 s; else error). A queued blocker's Job asks for more completions
       than it can finish, so it holds its quota until deleted even where its pod exits.
    3. Submit the gang of 3 and watch it for binds for up to the window (`--gang-negative-window`, 30 s). The
       watch ends sooner once the solution has refused every member while the fence still has room for exactly
       2 (all 3 pods unbound, each `PodScheduled=False`, reason `Unschedulable`, with a message; with Kueue,
       the Job's Workload for all 3 pods `QuotaReserved=False`): only a change in the cluster can undo that
       decision, so such an early end proves the gang was refused whole, not that no member would be bound for
       the rest of the window. Any bind first is a partial gang (failed), unless all 3 held a node at once,
       which means the fence did not hold (error). A solution whose pods exist while waiting must have created
       all 3 (else error: the scheduler never saw the gang); with Kueue, the Job's Workload must ask for all 3
       pods and Kueue must have refused it quota (else error: the gang was not weighed as one).
    4. Delete the blocker: all 3 members must be bound within `--gang-bind-timeout`, each in kaic's group.
    """
    choice, window_s = fence.choice, fence.settings.window_s
    blocker = fence.block(evidence)
    name = f"kaic-{run.id}-waits"
    watch = fence.submit(name, GANG_SIZE)
    started, refused = time.monotonic(), ""

    def answered(w: PodWatch) -> bool:
        """A member was bound, or the solution has refused the whole gang (its answer kept in `refused`)."""
        nonlocal refused
        if w.ever_bound:
            return True
        refused = fence.refusal(name, w)
        return bool(refused)

    if watch.until(answered, window_s) and watch.ever_bound:
        # Did the whole gang bind in one go (the fence was wrong), or only part of it?
        watch.until(lambda w: w.peak >= GANG_SIZE, GRACE_S)
        record(watch, evidence, "gang")
        if watch.peak >= GANG_SIZE:
            raise ProbeError(
                f"all {GANG_SIZE} members held a node at once although only {GANG_SIZE - 1} "
                "could fit: the fence did not hold (capacity changed during the probe?)"
            )
        raise AssertionError(
            f"{choice.adapter.name} let part of a gang bind: {len(watch.ever_bound)} of {GANG_SIZE} "
            f"members were bound, at most {watch.peak} at once, while only {GANG_SIZE - 1} fit"
        )
    waiting = sorted(watch.pods)
    if refused:
        evidence.add(
            "text",
            "window",
            f"no member bound; after {time.monotonic() - started:.0f}s of the {window_s:.0f}s window "
            f"{choice.adapter.name} had refused all {GANG_SIZE} members while {GANG_SIZE - 1} fit, "
            f"which only a change in the cluster can undo; pods waiting: {waiting}; {refused}",
        )
    else:
        evidence.add("text", "window", f"no member bound in {window_s:.0f}s; pods waiting: {waiting}")
    if choice.adapter.pods_exist_while_waiting and len(waiting) < GANG_SIZE:
        raise ProbeError(
            f"the Job created {len(waiting)} of {GANG_SIZE} pods: the scheduler never saw the gang"
        )
    if fence.queue:
        workload = fence.workload(name)
        queued = gang.Kueue.admission(workload, name)
        evidence.add("text", "queued", queued)
        if not gang.Kueue.refused_whole(workload, GANG_SIZE):
            raise ProbeError(
                f"Kueue did not weigh and refuse the gang as one Workload of {GANG_SIZE}: {queued}"
            )
    for pod in waiting[:1]:
        evidence.add("event", pod, workloads.events(cluster, fence.namespace, pod))
    cluster.delete(blocker, propagationPolicy="Background")
    done = watch.until(all_bound(GANG_SIZE), fence.settings.bind_timeout_s)
    record(watch, evidence, "gang")
    if not done:
        raise AssertionError(
            f"after the capacity was freed only {len(watch.ever_bound)} of {GANG_SIZE} members were "
            f"bound within {fence.settings.bind_timeout_s:.0f}s"
        )
    check_membership(watch, choice, name)
