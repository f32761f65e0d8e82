"""Local clusters for the tests: one scenario's cluster at a time, each started once per session.

A test names its scenario by a `scenario` parameter, a `@pytest.mark.scenario(NAME)` marker, or by asking for
`local_cluster` (scenario conformant). Collection orders the tests by scenario, tests that need none first, so
every scenario's cluster starts once and tests that start their own real node never wait on the shared one.
Without the binaries (`make cluster`) such tests skip on a developer machine and fail in CI (`CI=true`),
where a missing build must not pass silently. Tests that need no cluster never start one.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kaic.localcluster import node
from kaic.localcluster.launcher import Binaries, LocalCluster, bin_dir, find_binaries
from kaic.localcluster.processes import ClusterError
from kaic.localcluster.scenarios import SCENARIOS

# A host holds one real node (one bridge, one pod subnet): every test run on this host that starts one, from
# this checkout or another, takes this lock first and holds it until that node is down.
REAL_NODE_LOCK = "/tmp/kaic-real-node.lock"


_held_here = False  # this test process holds the lock: its own real node may be up


@contextlib.contextmanager
def _hold_real_node_lock() -> Iterator[None]:
    global _held_here
    with open(REAL_NODE_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _held_here = True
        try:
            yield
        finally:
            _held_here = False


@pytest.fixture(scope="session")
def real_node_lock() -> Callable[[], contextlib.AbstractContextManager[None]]:
    """`with real_node_lock():` around starting and stopping a real node."""
    return _hold_real_node_lock


@functools.cache
def _real_node_problem(also: tuple[str, ...]) -> str | None:
    """Why this host cannot run the real node (with the builds named in `also`), asked once per session."""
    try:
        node.find_node_binaries(bin_dir())
    except ClusterError as error:
        return str(error)
    if missing := [name for name in also if not (bin_dir() / name).exists()]:
        return f"missing {', '.join(str(bin_dir() / name) for name in missing)}: run `make cluster`"
    if _held_here:  # this session's own real node is up (asking under the lock again would wait on itself)
        return None
    with (
        _hold_real_node_lock()
    ):  # a node another test run holds is waited for, not mistaken for a broken host
        return node.host_problem()


@pytest.fixture(scope="session")
def require_real_node() -> Callable[..., None]:
    """`require_real_node(*names)`: skip unless this host can run the real node and cluster/bin holds `names`;
    in CI (`CI=true`) fail instead, since a missing build must not pass silently."""

    def require(*also: str) -> None:
        if problem := _real_node_problem(also):
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI needs the real node: {problem}")
            pytest.skip(problem)

    return require


@pytest.fixture(scope="session")
def cluster_binaries() -> Binaries:
    try:
        return find_binaries()
    except ClusterError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the local cluster (run `make cluster`): {error}")
        pytest.skip(f"needs the local cluster binaries (`make cluster`): {error}")


def scenario_of(item: pytest.Item) -> str | None:
    """The scenario whose cluster `item` runs on, or None for a test that needs no shared cluster."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "scenario" in callspec.params:
        return str(callspec.params["scenario"])
    if marker := item.get_closest_marker("scenario"):
        return str(marker.args[0])
    if "local_cluster" in getattr(item, "fixturenames", ()):
        return "conformant"
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests by scenario (in the order scenarios first appear), those that need none first."""
    rank: dict[str | None, int] = {None: 0}
    for item in items:
        rank.setdefault(scenario_of(item), len(rank))
    items.sort(key=lambda item: rank[scenario_of(item)])


_declared: dict[str, str | None] = {}  # the running test's scenario, for cluster_for to hold it to


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _declared["scenario"] = scenario_of(item)


@pytest.fixture(scope="session")
def cluster_for(
    cluster_binaries: Binaries,
    tmp_path_factory: pytest.TempPathFactory,
    real_node_lock: Callable[[], contextlib.AbstractContextManager[None]],
) -> Iterator[Callable[[str], LocalCluster]]:
    """`cluster_for(scenario)`: that scenario's cluster, reused by every test of the scenario; starting
    another one stops the previous (one cluster's memory at a time). The last one stops at the end of the
    session. A test must declare the scenario it asks for, or the grouping could not hold."""
    current: dict[str, LocalCluster] = {}
    held = contextlib.ExitStack()  # the host's real-node lock while a real-node scenario runs

    def stop() -> None:
        for running in current.values():
            running.down()
        current.clear()
        held.close()

    def start(scenario: str) -> LocalCluster:
        if (declared := _declared.get("scenario")) != scenario:
            pytest.fail(
                f"this test asks for scenario {scenario} but declares {declared}: give it a `scenario` "
                f"parameter or @pytest.mark.scenario({scenario!r})"
            )
        if scenario not in current:
            stop()
            if SCENARIOS[scenario].real_node:
                held.enter_context(real_node_lock())
            cluster = LocalCluster(tmp_path_factory.mktemp(f"cluster-{scenario}") / "state")
            current[scenario] = cluster
            cluster.up(SCENARIOS[scenario], cluster_binaries)
        return current[scenario]

    yield start
    stop()


@pytest.fixture
def local_cluster(cluster_for: Callable[[str], LocalCluster]) -> LocalCluster:
    """The conformant scenario's cluster."""
    return cluster_for("conformant")


RUNNER_ARCHIVE = Path(__file__).resolve().parents[1] / "dist" / "kaic-runner.tar"


@pytest.fixture(scope="session")
def load_runner_image() -> Callable[[LocalCluster], None]:
    """`load_runner_image(cluster)`: import the runner image `make image` left in dist/ into the cluster's
    real node, as a user would (`kaic cluster load-image`); skip without the archive, fail in CI."""

    def load(cluster: LocalCluster) -> None:
        if not RUNNER_ARCHIVE.exists():
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI needs the runner image: {RUNNER_ARCHIVE} is missing (`make image`)")
            pytest.skip(f"no {RUNNER_ARCHIVE}: run `make image`")
        done = subprocess.run(
            [sys.executable, "-m", "kaic", "cluster", "load-image", str(RUNNER_ARCHIVE)]
            + ["--state-dir", str(cluster.state_dir)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    return load
