"""kaic's pytest plugin, loaded with `-p kaic.engine.plugin` in every process that runs probes.

It selects the planned probes (with their timeouts), turns each probe's phases into one
kaic result shipped in the teardown report, and gives probes their fixtures: a configured client, the facts
discovered once for the run, a per-probe namespace labelled with the run id (deleted on teardown whatever the
outcome) and an evidence recorder. The run's settings arrive in a JSON file named by `--kaic-run`, written by
the engine, so xdist workers get them too and the plugin holds no state of its own.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kaic.areas import workloads
from kaic.engine.collector import RESULT_PROPERTY, Phase, assemble, classify
from kaic.kube import client as kube
from kaic.probe import Facts, ProbeSpec, RunContext
from kaic.results.outcomes import ProbeOutcome
from kaic.results.report import Recorder
from kaic.results.run_dir import FACTS_FILE
from kaic.settings import Settings

_RECORDER = pytest.StashKey[Recorder]()
_PHASES = pytest.StashKey[list[Phase]]()
_STARTED = pytest.StashKey[tuple[datetime, float]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kaic-run", help="kaic run settings (JSON), written by `kaic run`")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requirement(id): the conformance requirement a probe provides evidence for"
    )


def _settings(config: pytest.Config) -> dict[str, Any] | None:
    path = config.getoption("--kaic-run")
    return json.loads(Path(path).read_text(encoding="utf-8")) if path else None


def _spec(item: pytest.Item) -> ProbeSpec | None:
    return getattr(getattr(item, "function", None), "kaic_probe", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the planned probes only, each with its timeout (the engine's Collector schedules the lanes)."""
    settings = _settings(config)
    planned = (settings or {}).get("probes")
    keep, drop = [], []
    for item in items:
        spec = _spec(item)
        if spec is None or (planned is not None and spec.name not in planned):
            drop.append(item)
            continue
        keep.append(item)
        plan = (planned or {}).get(spec.name, {})
        item.add_marker(pytest.mark.timeout(plan.get("timeout", spec.timeout_s)))
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_STARTED] = (datetime.now(UTC), time.monotonic())
    item.stash[_PHASES] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    spec = _spec(item)
    if spec is None or _PHASES not in item.stash:
        return report
    outcome, reason = classify(call.excinfo, call.when)
    if call.excinfo is not None and isinstance(call.excinfo.value, ProbeOutcome):
        # Show kaic's own outcomes as skips in pytest.log rather than as crashes.
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"{outcome}: {reason}")
    traceback = report.longreprtext if report.failed else ""
    item.stash[_PHASES].append(Phase(call.when, outcome, reason, traceback))
    if call.when == "teardown":
        started, t0 = item.stash[_STARTED]
        recorder = item.stash.get(_RECORDER, Recorder())
        result = assemble(spec, item.stash[_PHASES], recorder, started, time.monotonic() - t0)
        report.user_properties.append((RESULT_PROPERTY, json.dumps(result.to_json())))
    return report


@pytest.fixture(scope="session")
def run(pytestconfig: pytest.Config) -> RunContext:
    path = pytestconfig.getoption("--kaic-run")
    if not path:
        raise pytest.UsageError("probes run through `kaic run`; --kaic-run is missing")
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return RunContext(
        **{**data, "out_dir": Path(data["out_dir"]), "settings": Settings.from_json(data["settings"])}
    )


@pytest.fixture(scope="session")
def cluster(run: RunContext) -> kube.Cluster:
    return kube.connect(run.kubeconfig, run.context, run.request_timeout)


@pytest.fixture(scope="session")
def facts(run: RunContext) -> Facts:
    """The facts the engine discovered before any probe ran (one discovery per run)."""
    return json.loads((run.out_dir / FACTS_FILE).read_text(encoding="utf-8"))


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Recorder:
    return request.node.stash.setdefault(_RECORDER, Recorder())


@pytest.fixture
def namespace(request: pytest.FixtureRequest, run: RunContext, cluster: kube.Cluster) -> Iterator[str]:
    """A fresh namespace for one probe, labelled with the run id, created by the probe's first write into it
    and deleted afterwards (the run's sweep waits for it to go); a probe in a lane first waits until what it
    held is released."""
    stem = request.node.name.removeprefix("test_").replace("_", "-")[:30].rstrip("-")
    name = f"kaic-{run.id}-{stem}-{secrets.token_hex(3)}"  # named here: it may never be created
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": run.labels}}
    cluster.defer_namespace(body)
    try:
        yield name
    finally:
        if cluster.deferred.pop(name, None) is None:  # written into, so created
            spec = _spec(request.node)
            held = [HOLDERS[k](name) for k in spec.creates if k in HOLDERS] if spec and spec.consumes else []
            delete_namespace(cluster, name, held, timeout_s=run.settings.cleanup_timeout_s)


# What holds the things lanes share (node capacity, devices), by "group/resource": its collection in a
# namespace.
HOLDERS: dict[str, Callable[[str], str]] = {
    "pods": workloads.pods_path,
    "resource.k8s.io/resourceclaims": lambda namespace: workloads.dra_path(namespace, "resourceclaims"),
}


def delete_namespace(cluster: kube.Cluster, name: str, held: list[str], timeout_s: float) -> None:
    """Delete the namespace, and wait, bounded, until the `held` collections (paths) in it are empty.

    The namespace controller starts on a deleted namespace only after 5 s (its deletion grace period), so
    waiting for the namespace would cost every probe 5 s. Its own pods and claims are deleted here instead: a
    terminating namespace admits no new object, so no controller recreates them; a list that comes back empty
    after the deletions also catches one created just before the namespace began terminating.
    """
    cluster.delete(f"/api/v1/namespaces/{name}", propagationPolicy="Foreground")
    deadline = time.monotonic() + timeout_s
    for collection in held:
        while items := [f"{collection}/{item['metadata']['name']}" for item in cluster.list(collection)]:
            for path in items:
                cluster.delete(path)
            cluster.wait_gone(items, max(0.0, deadline - time.monotonic()))
