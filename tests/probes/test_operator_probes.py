"""The robust_controller probes against the real local cluster, scenario by scenario.

In `operator` and `broken-operator` the real trainer-controller-manager and JobSet run as pods of the real
node (src/kaic/localcluster/operator.py): the API server calls their webhooks, and a valid TrainJob's pod runs
to completion on that node. Every other scenario has no operator (unknown). Requirement outcomes must match
tests/golden/matrix.yaml, probe outcomes say why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from golden_matrix import (
    assert_nothing_left,
    assert_probes,
    assert_rows,
    check_scenario,
    run_kaic,
)

from kaic.localcluster import node, operator

REQUIREMENTS = ("robust_controller",)
OPERATOR_BUILDS = ("trainer-controller-manager", "jobset", operator.manifests_dir(Path()).name)
# Only these scenarios install an operator; the later tests reuse `operator`'s cluster, so it comes last.
OWN_SCENARIOS = {"broken-operator", "operator"}
PROBES = (
    "operator-pods-ready",
    "crds-established",
    "webhook-serving",
    "webhook-rejects-invalid",
    "controller-reconciles",
)
ABSENT = "no supported AI operator is installed"
NOTHING = {f"robust_controller.{p}": ("unknown", ABSENT) for p in PROBES}
DEAD = 'failed calling webhook "defaulter.trainjob.trainer.kubeflow.org"'
EXPECTED = {
    **dict.fromkeys(
        ("conformant", "no-dra", "no-devices", "no-gang", "broken-gang", "broken-dra", "no-gpu-nodes"),
        NOTHING,
    ),
    "broken-operator": {
        # Pods Ready, CRDs Established, webhook configured with endpoints: only calling it shows it is dead.
        **{f"robust_controller.{p}": ("passed", "") for p in PROBES[:3]},
        "robust_controller.webhook-rejects-invalid": ("failed", DEAD),
        "robust_controller.controller-reconciles": ("failed", "a valid TrainJob was refused: HTTP 500"),
    },
    "operator": {f"robust_controller.{p}": ("passed", "") for p in PROBES},
}


def test_matrix_rows_are_complete_and_only_the_operator_scenarios_change_them():
    assert_rows(REQUIREMENTS, OWN_SCENARIOS, EXPECTED)


@pytest.mark.cluster
@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_outcomes_match_the_golden_matrix(scenario, cluster_for, tmp_path, require_real_node):
    if scenario in OWN_SCENARIOS:
        require_real_node(*OPERATOR_BUILDS)
    check_scenario(cluster_for(scenario), tmp_path / "run", scenario, REQUIREMENTS, EXPECTED[scenario])


@pytest.mark.cluster
@pytest.mark.scenario("operator")
def test_the_valid_trainjob_really_ran_on_the_real_node(cluster_for, tmp_path, require_real_node):
    """Success is the real controller's: the TrainJob's pod ran to completion on kaic-worker, and the denial
    named Trainer's webhook."""
    require_real_node(*OPERATOR_BUILDS)
    cluster = cluster_for("operator")
    report = run_kaic(cluster, tmp_path / "run", REQUIREMENTS)
    probes = {p["name"]: p for r in report["requirements"] for p in r["probes"]}
    evidence = {
        e["name"]: e["content"] for e in probes["robust_controller.controller-reconciles"]["evidence"]
    }
    assert f"- {node.NODE_NAME}\n- Succeeded" in evidence["pods (node, phase)"]
    assert "jobset completed successfully" in evidence["TrainJob status"]
    refusal = {
        e["name"]: e["content"] for e in probes["robust_controller.webhook-rejects-invalid"]["evidence"]
    }
    assert (
        'admission webhook "validator.trainjob.trainer.kubeflow.org" denied the request' in refusal["refusal"]
    )


@pytest.mark.cluster
@pytest.mark.scenario("operator")
def test_what_the_cluster_lacks_is_unknown(cluster_for, tmp_path, require_real_node):
    """On the operator cluster: another operator asked for, or the default runtime absent (a run without the
    config file naming kaic-busybox), is unknown, not failed."""
    require_real_node(*OPERATOR_BUILDS)
    cluster = cluster_for("operator")
    other = run_kaic(cluster, tmp_path / "kuberay", REQUIREMENTS, "--operator", "kuberay")
    assert_probes(other, {f"robust_controller.{p}": ("unknown", "KubeRay was asked for") for p in PROBES})
    default = run_kaic(cluster, tmp_path / "default", REQUIREMENTS, cluster_config=False)
    assert_probes(
        default,
        {
            "robust_controller.controller-reconciles": (
                "unknown",
                "ClusterTrainingRuntime torch-distributed does not exist",
            )
        },
    )
    assert_nothing_left(cluster.kubeconfig, default["run"]["id"])
