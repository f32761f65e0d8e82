"""The client's side of an in-cluster run: launch it, find it, say how it is doing, read its log, fetch its
results and remove it. The CLI (kaic.cli.incluster) turns these into commands and exit codes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from kaic.incluster import objects, store
from kaic.kube import cleanup
from kaic.kube.client import Cluster
from kaic.kube.labels import RUNNER_LABEL, runner_selector

POLL_S = 1.0


class RunNotFound(Exception):
    """No in-cluster run of that id on this cluster (bad input: the message says where it may be)."""


@dataclass
class RunState:
    """What the cluster says about one in-cluster run."""

    run_id: str
    phase: str  # pending, running, finished, failed, expired
    detail: str  # why it is pending or failed, or where its results are
    status: dict[str, Any]  # the runner's last status (total, done, outcomes), {} before it starts
    manifest: dict[str, Any] | None  # the stored results' manifest, once they are whole
    created: str


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
    cluster: Cluster, run_id: str, plan_role: dict[str, Any], options: str, runner: objects.Runner
) -> None:
    """Create the run's objects in order; if one is refused, remove those already made and re-raise."""
    made: list[str] = []
    try:
        for manifest in objects.manifests(run_id, plan_role, options, runner):
            collection = objects.path(manifest)
            cluster.create(collection, manifest)
            made.append(f"{collection}/{manifest['metadata']['name']}")
    except BaseException:
        for item in reversed(made):
            try:
                cluster.delete(item)
            except Exception:  # noqa: BLE001,S110 - best effort; `kaic delete` finishes it
                pass
        raise
    remember(cluster, run_id)


def _namespace(cluster: Cluster, run_id: str) -> dict[str, Any]:
    found = cluster.get_or_none(f"/api/v1/namespaces/{objects.namespace(run_id)}")
    if not found or (found["metadata"].get("labels") or {}).get(RUNNER_LABEL) != run_id:
        raise not_found(cluster, run_id)
    return found


def runner_pod(cluster: Cluster, run_id: str) -> dict[str, Any] | None:
    pods = list(
        cluster.list(
            f"/api/v1/namespaces/{objects.namespace(run_id)}/pods", labelSelector=f"job-name={objects.JOB}"
        )
    )
    return max(pods, key=lambda p: p["metadata"]["creationTimestamp"]) if pods else None


def _waiting(pod: dict[str, Any]) -> str:
    """Why the runner's container has not started (an image it cannot pull, most often), or ''."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") and waiting["reason"] != "ContainerCreating":
            return f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"unschedulable: {condition.get('message', '')}"
    return ""


def state(cluster: Cluster, run_id: str) -> RunState:
    """The run's phase from its stored status and results, its Job and its pod."""
    ns = _namespace(cluster, run_id)
    created = ns["metadata"].get("creationTimestamp", "")
    status = store.read(cluster, run_id, store.STATUS) or {}
    manifest = store.read(cluster, run_id, store.RESULTS)
    if manifest is not None:
        return RunState(run_id, "finished", "results stored", status, manifest, created)
    job = cluster.get_or_none(f"/apis/batch/v1/namespaces/{ns['metadata']['name']}/jobs/{objects.JOB}")
    if job is None:
        return RunState(
            run_id, "expired", "its runner and results are gone (TTL or deleted)", status, None, created
        )
    pod = runner_pod(cluster, run_id)
    phase = ((pod or {}).get("status") or {}).get("phase", "Pending")
    if phase in ("Succeeded", "Failed") or status.get("phase") == "failed":
        why = status.get("error") or f"the runner pod ended ({phase}) without storing results"
        return RunState(run_id, "failed", f"{why}; see `kaic logs {run_id}`", status, None, created)
    if phase == "Running":
        return RunState(run_id, "running", "", status, None, created)
    return RunState(
        run_id, "pending", _waiting(pod) if pod else "waiting for the Job's pod", status, None, created
    )


def runs(cluster: Cluster) -> list[str]:
    """The ids of every in-cluster run on this cluster, oldest first."""
    found = cluster.list("/api/v1/namespaces", labelSelector=runner_selector(None))
    ordered = sorted(found, key=lambda ns: ns["metadata"].get("creationTimestamp", ""))
    return [ns["metadata"]["labels"][RUNNER_LABEL] for ns in ordered]


def log_lines(
    cluster: Cluster, run_id: str, follow: bool, stop: Callable[[], bool] = lambda: False
) -> Iterator[str]:
    """The runner's log: all of it, and with `follow` the rest as it is written, until the runner ends. Waits
    for the container to start; a runner that cannot start (image, scheduling) ends the wait with
    RunNotStarted."""
    while True:
        current = state(cluster, run_id)
        if current.phase != "pending":
            break
        if current.detail.startswith(("ErrImage", "ImagePull", "InvalidImage")):
            raise RunNotStarted(
                f"run {run_id}: the runner cannot start: {current.detail}; fix that (--runner-image, "
                f"docs/in-cluster.md) and remove the run with `kaic delete {run_id}`"
            )
        if not follow or stop():
            return
        time.sleep(POLL_S)
    pod = runner_pod(cluster, run_id)
    if pod is None:  # gone with its Job
        return
    path = f"/api/v1/namespaces/{objects.namespace(run_id)}/pods/{pod['metadata']['name']}/log"
    try:
        yield from cluster.stream_lines(path, container=objects.CONTAINER, follow="true" if follow else None)
    except ApiException as exc:
        if exc.status != 400:  # 400: the container is not there yet or any more
            raise


class RunNotStarted(Exception):
    """The runner's pod cannot start (operation error: the message names the cause)."""


def retrieve(cluster: Cluster, run_id: str, folder: Path) -> dict[str, Any]:
    """Fetch a finished run's results into `folder` (new or empty), every file checked against its digest.
    Returns the manifest."""
    current = state(cluster, run_id)
    if current.manifest is None:
        raise RunNotReady(current)
    blob = store.fetch(cluster, run_id, current.manifest)
    store.unpack(blob, current.manifest["files"], folder)
    return current.manifest


class RunNotReady(Exception):
    """Results asked for before the run stored them (bad input: wait for it)."""

    def __init__(self, current: RunState) -> None:
        self.state = current
        done = f", {current.status.get('done', 0)} of {current.status.get('total', '?')} probes done"
        hint = (
            f"wait with `kaic status {current.run_id}` or `kaic logs {current.run_id} -f`"
            if current.phase in ("pending", "running")
            else f"see `kaic logs {current.run_id}`"
        )
        super().__init__(
            f"run {current.run_id} has no results to retrieve: it is {current.phase}{done}; {hint}"
        )


def delete(cluster: Cluster, run_id: str, timeout_s: float) -> list[str]:
    """Everything the run created: what its probes left (if it was cut short), its ClusterRole and binding,
    and its namespace with the runner, its RBAC and its results in it."""
    _namespace(cluster, run_id)
    deleted = cleanup.sweep(cluster, run_id, timeout_s)
    name = objects.cluster_role_name(run_id)
    for kind in ("clusterrolebindings", "clusterroles"):
        if cluster.delete(f"/apis/rbac.authorization.k8s.io/v1/{kind}/{name}") is not None:
            deleted.append(f"{kind}/{name}")
    ns = objects.namespace(run_id)
    cluster.delete(f"/api/v1/namespaces/{ns}", propagationPolicy="Foreground")
    deleted.append(f"namespaces/{ns}")
    cluster.wait_gone([f"/api/v1/namespaces/{ns}"], timeout_s)
    return deleted
