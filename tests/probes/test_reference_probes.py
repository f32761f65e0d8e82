"""The reference AI cluster: every real component that builds here, together, judged as a user would judge
their own cluster: `kaic run --profile ai-v1.0 --mode certified` with only the exports `kaic cluster up`
prints (KUBECONFIG, and KAIC_CONFIG for the local images, the operator runtime and the autoscaled pool).

Every MUST passes but accelerator_metrics, which stays unknown (the simulated GPUs have no telemetry, and kaic
invents none), so the verdict is undetermined, exit 4.
"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from golden_matrix import MATRIX, OUTCOMES, assert_matches_matrix, assert_nothing_left, run_kaic

from kaic.cli.cluster import cluster as cluster_cli
from kaic.results import timeline

SCENARIO = "reference"
VERSION = "1.37"
BUILDS = ("runsc", "kaic-runsc", "traefik", "prometheus", "trainer-controller-manager", "karpenter")


def test_the_row_is_complete() -> None:
    assert set(MATRIX[SCENARIO].values()) <= OUTCOMES


@pytest.mark.cluster
@pytest.mark.scenario(SCENARIO)
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
    spans = timeline.spans(tmp_path / "run")
    assert timeline.clashes(spans) == []  # probes consuming the same devices or pool waited for each other
    assert timeline.most_at_once(spans) > 1  # while the others ran beside them


@pytest.mark.cluster
@pytest.mark.scenario(SCENARIO)
def test_a_certified_run_inside_the_cluster_judges_the_same_with_only_the_plans_permissions(
    cluster_for, tmp_path, require_real_node, load_runner_image
):
    """The same run as a Job (`--in-cluster`), whose ServiceAccount holds exactly the plan's ClusterRole: a
    probe that needs a permission it does not declare errors here, where a run with admin rights hides it."""
    require_real_node(*BUILDS)
    cluster = cluster_for(SCENARIO)
    load_runner_image(cluster)
    report = run_kaic(
        cluster,
        tmp_path / "run",
        (),
        "--profile",
        "ai-v1.0",
        "--mode",
        "certified",
        "--in-cluster",
        version=VERSION,
    )
    assert report["cluster"]["context"] == "in-cluster"
    assert_matches_matrix(report, SCENARIO, MATRIX[SCENARIO])
    assert_nothing_left(cluster.kubeconfig, report["run"]["id"])


@pytest.mark.cluster
@pytest.mark.scenario(SCENARIO)
def test_status_shows_the_memory_of_every_process_and_real_node_pod(cluster_for, require_real_node):
    """The control plane, the node's daemons, each pod on the real node (Prometheus, Trainer, JobSet) and the
    shims: each row with its resident memory, and a total that adds them up."""
    require_real_node(*BUILDS)
    cluster = cluster_for(SCENARIO)
    result = CliRunner().invoke(cluster_cli, ["status", "--state-dir", str(cluster.state_dir)])
    assert result.exit_code == 0, result.output
    rows = {
        row[1]: int(row[2])
        for line in result.output.splitlines()[1:]
        if (row := re.match(r" +(\S.*?)  .*rss +(\d+) MiB$", line))
    }
    assert len(rows) == len(result.output.splitlines()) - 1, result.output
    total = rows.pop("total")
    for prefix in (
        "kube-apiserver",
        "kubelet",
        "karpenter",
        "kube-system/kaic-prometheus",
        "kubeflow-system/kubeflow-trainer-controller-manager-",
        "jobset-system/jobset-controller-manager-",
        "containerd shims",
    ):
        assert any(name.startswith(prefix) and rss > 0 for name, rss in rows.items()), (prefix, result.output)
    assert abs(total - sum(rows.values())) <= len(rows), result.output  # each row rounds to a MiB
