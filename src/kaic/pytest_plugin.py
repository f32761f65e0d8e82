"""kaic's pytest plugin: the fixtures every probe gets (loaded with `-p kaic.pytest_plugin`).

Fixtures give a configured client, the facts discovered once for the run, a per-probe namespace labelled with
the run id (deleted on teardown whatever the outcome), and an evidence recorder. The run's settings arrive in a
JSON file named by `--kaic-run`, written by the engine, so the plugin holds no state of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaic import kube
from kaic.results import Evidence

RUN_ID_LABEL = "kaic.dev/run-id"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kaic"}
EVIDENCE_KEY = pytest.StashKey["Recorder"]()


@dataclass(frozen=True)
class RunContext:
    id: str
    mode: str
    out_dir: Path
    kubeconfig: str | None
    context: str | None
    request_timeout: float
    options: dict[str, Any]

    @property
    def labels(self) -> dict[str, str]:
        return {RUN_ID_LABEL: self.id, **MANAGED_BY}


@dataclass
class Recorder:
    """What a probe saw, kept in its result: facts it relied on, objects, events, log excerpts, warnings."""

    evidence: list[Evidence] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, content: Any) -> None:
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        self.evidence.append(Evidence(kind=kind, name=name, content=text))

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kaic-run", help="kaic run settings (JSON), written by `kaic run`")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requirement(id): the conformance requirement a probe provides evidence for")


@pytest.fixture(scope="session")
def run(pytestconfig: pytest.Config) -> RunContext:
    path = pytestconfig.getoption("--kaic-run")
    if not path:
        raise pytest.UsageError("probes run through `kaic run`; --kaic-run is missing")
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return RunContext(**{**data, "out_dir": Path(data["out_dir"])})


@pytest.fixture(scope="session")
def cluster(run: RunContext) -> kube.Cluster:
    return kube.connect(run.kubeconfig, run.context, run.request_timeout)


@pytest.fixture(scope="session")
def facts(run: RunContext) -> dict[str, Any]:
    """The facts the engine discovered before any probe ran (one discovery per run)."""
    return json.loads((run.out_dir / "facts.json").read_text(encoding="utf-8"))


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Recorder:
    return request.node.stash.setdefault(EVIDENCE_KEY, Recorder())


@pytest.fixture
def namespace(request: pytest.FixtureRequest, run: RunContext, cluster: kube.Cluster) -> Iterator[str]:
    """A fresh namespace for one probe, labelled with the run id, deleted (and waited for) afterwards."""
    stem = request.node.name.removeprefix("test_").replace("_", "-")[:30].rstrip("-")
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"generateName": f"kaic-{run.id}-{stem}-", "labels": run.labels},
    }
    name = cluster.create("/api/v1/namespaces", body)["metadata"]["name"]
    try:
        yield name
    finally:
        delete_namespace(cluster, name, timeout_s=float(run.options.get("cleanup_timeout_s", 120)))


def delete_namespace(cluster: kube.Cluster, name: str, timeout_s: float) -> None:
    """Delete and wait, bounded: a namespace stuck terminating is reported, never waited on forever."""
    path = f"/api/v1/namespaces/{name}"
    cluster.delete(path, propagationPolicy="Foreground")
    cluster.wait_gone([path], timeout_s)
