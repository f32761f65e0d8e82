"""Local reference clusters for the probe tests: one scenario at a time, each in its own temporary state dir.

Without the binaries the tests skip on a developer machine (build them with `make cluster`) and fail in CI
(`CI=true`), where a missing build must not pass silently.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import pytest

from kaic.localcluster.launcher import LocalCluster, find_binaries
from kaic.localcluster.processes import ClusterError
from kaic.localcluster.scenarios import SCENARIOS


@pytest.fixture(scope="session")
def cluster_for(
    tmp_path_factory: pytest.TempPathFactory,
    real_node_lock: Callable[[], contextlib.AbstractContextManager[None]],
) -> Iterator[Callable[[str], LocalCluster]]:
    """`cluster_for(scenario)`: that scenario's cluster, reused by consecutive tests; starting another one
    stops the previous (one cluster's memory at a time). The last one stops at the end of the session."""
    try:
        binaries = find_binaries()
    except ClusterError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the local cluster (run `make cluster`): {error}")
        pytest.skip(f"needs the local cluster binaries (`make cluster`): {error}")
    current: dict[str, LocalCluster] = {}
    held = contextlib.ExitStack()  # the host's real-node lock while a real-node scenario runs

    def stop() -> None:
        for running in current.values():
            running.down()
        current.clear()
        held.close()

    def start(scenario: str) -> LocalCluster:
        if scenario not in current:
            stop()
            if SCENARIOS[scenario].real_node:
                held.enter_context(real_node_lock())
            cluster = LocalCluster(tmp_path_factory.mktemp(f"cluster-{scenario}") / "state")
            current[scenario] = cluster
            cluster.up(SCENARIOS[scenario], binaries)
        return current[scenario]

    yield start
    stop()
