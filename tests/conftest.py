"""The local reference cluster, started once per test session for every test that asks for it.

Without the binaries (`make cluster`) such tests skip on a developer machine and fail in CI (`CI=true`),
where a missing build must not pass silently. Tests that need no cluster never start one.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
from collections.abc import Callable, Iterator

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
            pytest.fail(f"CI needs the local cluster: {error}")
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def local_cluster(
    cluster_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster") / "state")
    cluster.up(SCENARIOS["conformant"], cluster_binaries)
    yield cluster
    cluster.down()
