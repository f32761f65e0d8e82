"""The reference AI cluster: every real component that builds here, together, judged as a user would judge
their own cluster: `kaic run --profile ai-v1.0 --mode certified` with only the exports `kaic cluster up`
prints (KUBECONFIG, and KAIC_CONFIG for the local images, the operator runtime and the autoscaled pool).

Every MUST passes but accelerator_metrics, which stays unknown (the simulated GPUs have no telemetry, and kaic
invents none), so the verdict is undetermined, exit 4.
"""

from __future__ import annotations

import pytest
from golden_matrix import MATRIX, OUTCOMES, assert_matches_matrix, assert_nothing_left, run_kaic

SCENARIO = "reference"
VERSION = "1.37"
BUILDS = ("runsc", "kaic-runsc", "traefik", "prometheus", "trainer-controller-manager", "karpenter")


def test_the_row_is_complete() -> None:
    assert set(MATRIX[SCENARIO].values()) <= OUTCOMES


@pytest.mark.cluster
def test_a_certified_run_passes_every_must_but_accelerator_metrics(cluster_for, tmp_path, require_real_node):
    require_real_node(*BUILDS)
    cluster = cluster_for(SCENARIO)
    report = run_kaic(
        cluster, tmp_path / "run", (), "--profile", "ai-v1.0", "--mode", "certified", version=VERSION
    )
    assert_matches_matrix(report, SCENARIO, MATRIX[SCENARIO])
    assert report["verdict"]["result"] == "undetermined" and report["verdict"]["exitCode"] == 4, report[
        "verdict"
    ]
    assert_nothing_left(cluster.kubeconfig, report["run"]["id"])
