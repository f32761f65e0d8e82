"""The client's side of an in-cluster run: launch it, find it, say how it is doing, read its log, fetch its
results and remove it. The CLI (kaic.cli.incluster) turns these into commands and exit codes."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from kaic.incluster import objects, store
from kaic.kube import cleanup
from kaic.kube.client import Cluster
from kaic.kube.labels import RUNNER_LABEL, selector

POLL_S = 1.0
# How long a runner may stay pending (no pod, unschedulable, image pulling) before a follower gives up on it.
START_TIMEOUT_S = 300.0
# A followed log silent this long is reopened (a long probe prints nothing; a dropped connection never ends).
LOG_SILENCE_S = 60.0
# What a container waits for on its way to running; any other waiting reason means it cannot start.
STARTING = ("ContainerCreating", "PodInitializing")
RUN_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$")  # a run id goes into names: a DNS label part
RBAC = "/apis/rbac.authorization.k8s.io/v1"


class RunNotFound(Exception):
    """No in-cluster run of that id on this cluster (bad input: the message says where it may be)."""


class RunNotStarted(Exception):
    """The runner cannot start: an image it cannot run, a pod that is not placed or not made (operation
    error)."""


class RunNotReady(Exception):
    """Results asked for while the run is still going (bad input: wait for it)."""


class RunEnded(Exception):
    """Results asked for from a run that ended without them, or whose results expired (operation error)."""


@dataclass
class RunState:
    """What the cluster says about one in-cluster run."""

    run_id: str
    phase: str  # pending, running, finished, failed, expired
    detail: str  # why it is pending, failed or expired
    status: dict[str, Any]  # the runner's last status (total, done, outcomes), {} before it starts
    manifest: dict[str, Any] | None  # the stored results' manifest, once they are whole
    created: str
    stuck: bool = False  # pending at a dead end (a container that cannot start), not on the way to running


def checked(run_id: str) -> str:
    if not RUN_ID.match(run_id):
        raise RunNotFound(
            f"RUN_ID {run_id!r}: not a kaic run id (lowercase letters and digits, as `kaic status` lists)"
        )
    return run_id


def records_dir() -> Path:
    """Where the client remembers the runs it launched and on which cluster, to name it when asked about a
    run on another."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kaic" / "runs"


def remember(cluster: Cluster, run_id: str) -> None:
    try:
        records_dir().mkdir(parents=True, exist_ok=True)
        (records_dir() / f"{run_id}.json").write_text(
            json.dumps({"server": cluster.server(), "context": cluster.context}) + "\n", encoding="utf-8"
        )
    except OSError:
        pass  # a convenience for later error messages, never a reason to fail a run


def not_found(cluster: Cluster, run_id: str) -> RunNotFound:
    """The error for a run id this cluster does not hold, naming the cluster it was launched on if known."""
    here = f"server {cluster.server()}, context {cluster.context}"
    try:
        record = json.loads((records_dir() / f"{run_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    if record and record.get("server") != cluster.server():
        return RunNotFound(
            f"run {run_id} was launched on another cluster (server {record['server']}, context "
            f"{record.get('context')}), not this one ({here}); pass --context {record.get('context')}"
        )
    gone = " any more (deleted)" if record else ""
    return RunNotFound(
        f"run {run_id}: no in-cluster run of that id on this cluster{gone} ({here}); `kaic status` lists "
        "the runs here"
    )


def launch(
    cluster: Cluster, run_id: str, plan_role: dict[str, Any], options: list[str], runner: objects.Runner
) -> None:
    """Create the run's objects in order; if one is refused, remove those already made (what cannot be
    removed is named) and re-raise."""
    made: list[str] = []
    try:
        for manifest in objects.manifests(run_id, plan_role, options, runner):
            collection = objects.path(manifest)
            cluster.create(collection, manifest)
            made.append(f"{collection}/{manifest['metadata']['name']}")
    except BaseException as exc:
        left = []
        for item in reversed(made):
            try:
                cluster.delete(item)
            except Exception:  # noqa: BLE001 - named below; `kaic delete` finishes it
                left.append(item)
        if left:
            exc.add_note(f"left behind: {', '.join(left)}; remove them with `kaic delete {run_id}`")
        raise
    remember(cluster, run_id)


def _namespace(cluster: Cluster, run_id: str) -> dict[str, Any] | None:
    name = objects.namespace(checked(run_id))
    found = cluster.get_or_none(f"/api/v1/namespaces/{name}")
    return found if found and _labels(found).get(RUNNER_LABEL) == run_id else None


def runner_pod(cluster: Cluster, run_id: str) -> dict[str, Any] | None:
    pods = list(
        cluster.list(
            f"/api/v1/namespaces/{objects.namespace(run_id)}/pods", labelSelector=f"job-name={objects.JOB}"
        )
    )
    return max(pods, key=lambda p: p["metadata"]["creationTimestamp"]) if pods else None


def _waiting(pod: dict[str, Any]) -> tuple[str, bool]:
    """Why the runner's container has not started, and whether that is a dead end rather than a wait."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") and waiting["reason"] not in STARTING:
            return f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": "), True
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"unschedulable: {condition.get('message', '')}", False
    return "starting", False


def _job_ended(job: dict[str, Any]) -> str:
    """The Job's Failed or Complete condition, as a reason, or '' while it runs."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Failed", "Complete") and condition.get("status") == "True":
            why = f"{condition.get('reason', '')}: {condition.get('message', '')}".strip(": ")
            return f"the runner's Job {condition['type'].lower()} ({why})"
    return ""


def state(cluster: Cluster, run_id: str) -> RunState:
    """The run's phase from its stored results and status, its Job and its pod."""
    ns = _namespace(cluster, run_id)
    if ns is None:
        raise not_found(cluster, run_id)
    created = ns["metadata"].get("creationTimestamp", "")
    status = store.read(cluster, run_id, store.STATUS) or {}

    def phase(name: str, detail: str, manifest: dict[str, Any] | None = None) -> RunState:
        return RunState(run_id, name, detail, status, manifest, created)

    if (manifest := store.read(cluster, run_id, store.RESULTS)) is not None:
        return phase("finished", "results stored", manifest)
    job = cluster.get_or_none(f"/apis/batch/v1/namespaces/{objects.namespace(run_id)}/jobs/{objects.JOB}")
    if job is None:
        return phase(
            "expired",
            f"its runner and results are gone (TTL or deleted); `kaic delete {run_id}` removes its RBAC",
        )
    pod = runner_pod(cluster, run_id)
    pod_phase = ((pod or {}).get("status") or {}).get("phase", "")
    ended = _job_ended(job) or (
        f"the runner pod ended ({pod_phase})" if pod_phase in ("Succeeded", "Failed") else ""
    )
    if ended or status.get("phase") == "failed":
        # The runner stores its results and then exits: read again before calling the run failed.
        if (manifest := store.read(cluster, run_id, store.RESULTS)) is not None:
            return phase("finished", "results stored", manifest)
        return phase(
            "failed", f"{status.get('error') or ended} without storing results; see `kaic logs {run_id}`"
        )
    if pod_phase == "Running":
        return phase("running", "")
    detail, stuck = _waiting(pod) if pod else ("no runner pod yet", False)
    return RunState(run_id, "pending", detail, status, None, created, stuck)


def runs(cluster: Cluster) -> list[str]:
    """The ids of every in-cluster run on this cluster, oldest first."""
    found = cluster.list("/api/v1/namespaces", labelSelector=selector(None, RUNNER_LABEL))
    ordered = sorted(found, key=lambda ns: ns["metadata"].get("creationTimestamp", ""))
    return [ns["metadata"]["labels"][RUNNER_LABEL] for ns in ordered]


def wait_started(cluster: Cluster, run_id: str, timeout_s: float = START_TIMEOUT_S) -> RunState:
    """The run's state once its runner has started (or ended); RunNotStarted when its container cannot start
    or it stays pending for `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while (current := state(cluster, run_id)).phase == "pending":
        if current.stuck or time.monotonic() > deadline:
            raise RunNotStarted(
                f"run {run_id}: the runner cannot start: {current.detail}; fix that (--runner-image, "
                f"--runner-node-selector, docs/in-cluster.md) and remove the run with `kaic delete {run_id}`"
            )
        time.sleep(POLL_S)
    return current


def wait_ended(cluster: Cluster, run_id: str) -> RunState:
    """The run's state once it is no longer pending or running (its log ends a moment before its results
    are read)."""
    while (current := state(cluster, run_id)).phase in ("pending", "running"):
        time.sleep(POLL_S)
    return current


def log_lines(cluster: Cluster, run_id: str, follow: bool) -> Iterator[str]:
    """The runner's log: what it has written, and with `follow` the rest until the runner ends. A followed
    log that falls silent or drops is reopened from the last line seen, so nothing repeats or is lost."""
    current = wait_started(cluster, run_id) if follow else state(cluster, run_id)
    pod = runner_pod(cluster, run_id)
    if pod is None:
        if current.phase == "pending":
            return
        raise RunEnded(f"run {run_id}: its runner pod is gone (it {current.phase}: {current.detail})")
    path = f"/api/v1/namespaces/{objects.namespace(run_id)}/pods/{pod['metadata']['name']}/log"
    last: tuple[datetime, str] | None = None
    while True:
        since = last[0].isoformat().replace("+00:00", "Z") if last else None
        try:
            for stamped in cluster.stream_lines(
                path,
                LOG_SILENCE_S,
                container=objects.CONTAINER,
                follow="true" if follow else None,
                timestamps="true",
                sinceTime=since,
            ):
                stamp_text, _, line = stamped.partition(" ")
                key = (_timestamp(stamp_text), line)
                if last is not None and key <= last:  # sinceTime is whole seconds: skip what was shown
                    continue
                last = key
                yield line
        except urllib3.exceptions.ReadTimeoutError:
            pass
        except ApiException as exc:
            if exc.status != 400:  # 400: the container is not there any more
                raise
        if not follow or state(cluster, run_id).phase not in ("pending", "running"):
            return
        time.sleep(POLL_S)  # the container has ended but its pod not yet: no loop of empty reads


def _timestamp(text: str) -> datetime:
    """The kubelet's RFC 3339 timestamp, nanoseconds cut to what datetime holds."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00")


def fetch(cluster: Cluster, run_id: str) -> tuple[dict[str, Any], bytes]:
    """A finished run's results manifest and archive, the archive checked against the manifest's digest."""
    current = state(cluster, run_id)
    if current.manifest is None:
        total = current.status.get("total")
        done = f", {current.status.get('done', 0)} of {total} probes done" if total else ""
        if current.phase in ("pending", "running"):
            raise RunNotReady(
                f"run {run_id} has no results to retrieve yet: it is {current.phase}{done}; wait with "
                f"`kaic status {run_id}` or `kaic logs {run_id} -f`"
            )
        raise RunEnded(f"run {run_id} has no results to retrieve: it {current.phase}{done}: {current.detail}")
    return current.manifest, store.fetch(cluster, run_id, current.manifest)


def delete(cluster: Cluster, run_id: str, timeout_s: float) -> list[str]:
    """Everything the run created: its runner (stopped first, so it creates nothing more), what its probes
    left if it was cut short, its ClusterRole and binding, and its namespace with its results."""
    ns = objects.namespace(checked(run_id))
    name = objects.cluster_role_name(run_id)
    found = {
        kind: cluster.get_or_none(f"{RBAC}/{kind}/{name}") for kind in ("clusterrolebindings", "clusterroles")
    }
    owned = [kind for kind, item in found.items() if item and _labels(item).get(RUNNER_LABEL) == run_id]
    role = found["clusterroles"] if "clusterroles" in owned else None
    namespace = _namespace(cluster, run_id)
    if namespace is None and not owned:
        raise not_found(cluster, run_id)
    deleted: list[str] = []
    if namespace is not None and store.read(cluster, run_id, store.RESULTS) is None:
        # Cut short: stop the runner, then sweep what its probes created, of the kinds its role could create.
        job = f"/apis/batch/v1/namespaces/{ns}/jobs/{objects.JOB}"
        if cluster.delete(job, propagationPolicy="Foreground") is not None:
            deleted.append(f"jobs/{objects.JOB}")
        cluster.wait_gone([job], timeout_s)
        deleted += cleanup.sweep(cluster, run_id, timeout_s, _creatable(role))
    for kind in owned:
        cluster.delete(f"{RBAC}/{kind}/{name}")
        deleted.append(f"{kind}/{name}")
    if namespace is not None:
        cluster.delete(f"/api/v1/namespaces/{ns}", propagationPolicy="Foreground")
        deleted.append(f"namespaces/{ns}")
        cluster.wait_gone([f"/api/v1/namespaces/{ns}"], timeout_s)
    return deleted


def _labels(item: dict[str, Any]) -> dict[str, str]:
    return item["metadata"].get("labels") or {}


def _creatable(role: dict[str, Any] | None) -> frozenset[str]:
    """What a run's probes may have created, from its ClusterRole: namespaces and the cluster-scoped kinds
    it may create (as kaic.kube.cleanup names them)."""
    kinds = {"namespaces"}
    for rule in (role or {}).get("rules") or []:
        if "create" in rule.get("verbs", ()):
            kinds |= {f"{group}/{resource}" for group in rule["apiGroups"] for resource in rule["resources"]}
    return frozenset(kinds & (set(cleanup.CLUSTER_SCOPED) | {"namespaces"}))
