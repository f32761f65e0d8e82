"""The cluster autoscaling probes against the real local cluster, with the upstream Cluster Autoscaler or
Karpenter where a scenario runs one.

Every scenario of the golden matrix has a cluster_autoscaling row. Without an autoscaler the requirement is
not-applicable with the detection trail. On `autoscaling` the certified run passes: the real scheduler marks
the extra accelerator pod Unschedulable, CA (kwok provider) creates a node that kwok makes Ready, the pod runs
there, and CA removes the node once it is idle; on `broken-autoscaling` (CA capped by --max-nodes-total) the
same run fails. On `karpenter` the pool starts empty: Karpenter creates a node for the pending pod and removes
it once empty; on `broken-karpenter` (a NodePool CPU limit below its only instance type) it adds none.
Certified mode runs whole profiles, so these runs use a copy of ai-v1.0 reduced to this requirement.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from golden_matrix import MATRIX, ROOT, assert_nothing_left, assert_rows, probe_outcomes, run_kaic

from kaic.localcluster import autoscaler, karpenter
from kaic.localcluster.launcher import bin_dir
from kaic.localcluster.scenarios import SCENARIOS

REQUIREMENT = "cluster_autoscaling"
AUTOSCALED = tuple(s for s in SCENARIOS if SCENARIOS[s].scales_nodes)
POOL = "--autoscaler-node-pool-label=kaic.io/node-pool=autoscale"
# The local autoscalers add a node within seconds and remove an empty one within a minute; these bound a
# broken run.
TIMEOUTS = ("--autoscaler-scale-up-timeout=45s", "--autoscaler-scale-down-timeout=150s")
NONE_FOUND = "no node autoscaler found"
# The scenarios this file claims: every kwok-only one (the real-node scenarios belong to other areas).
CLAIMED = [s for s in SCENARIOS if not SCENARIOS[s].real_node]


@pytest.fixture
def autoscaled_cluster_for(cluster_for):
    """`cluster_for(scenario)` for the scenarios that run a node autoscaler. Without the Cluster Autoscaler
    they skip, in CI too (its module is not on the Go module proxy, see cluster/README.md); without Karpenter
    they skip, and fail in CI (`make cluster` builds it)."""

    def start(scenario):
        built = bool(SCENARIOS[scenario].karpenter)
        binary = bin_dir() / (karpenter.BINARY if built else autoscaler.BINARY)
        if not os.access(binary, os.X_OK):
            why = f"needs {binary} (cluster/README.md)"
            if built and os.environ.get("CI") == "true":
                pytest.fail(f"CI builds Karpenter with `make cluster`: {why}")
            pytest.skip(why)
        return cluster_for(scenario)

    return start


def only_this_requirement(tmp_path: Path) -> Path:
    profile = yaml.safe_load((ROOT / "profiles/ai-v1.0.yaml").read_text())
    profile["requirements"] = [r for r in profile["requirements"] if r["id"] == REQUIREMENT]
    path = tmp_path / "cluster-autoscaling.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def probes(report: dict) -> dict[str, tuple[str, str]]:
    return {name: got for name, got in probe_outcomes(report).items() if name.startswith(f"{REQUIREMENT}.")}


def outcome(report: dict) -> str:
    return next(r["outcome"] for r in report["requirements"] if r["id"] == REQUIREMENT)


def test_every_scenario_has_a_row():
    assert_rows((REQUIREMENT,), set(AUTOSCALED), CLAIMED)


@pytest.mark.cluster
@pytest.mark.parametrize("scenario", [s for s in CLAIMED if s not in AUTOSCALED])
def test_no_autoscaler_is_not_applicable(scenario, cluster_for, tmp_path):
    cluster = cluster_for(scenario)
    report = run_kaic(cluster, tmp_path / "run", (REQUIREMENT,), POOL)
    assert outcome(report) == MATRIX[scenario][REQUIREMENT] == "not-applicable"
    got = probes(report)
    assert got["cluster_autoscaling.check-capacity"][0] == "not-applicable"
    assert NONE_FOUND in got["cluster_autoscaling.check-capacity"][1], got


# Non-disruptive mode runs only check-capacity: CA finds one accelerator and not more than the pool holds;
# Karpenter serves no ProvisioningRequest API, so there nothing is judged without certified mode.
NON_DISRUPTIVE = {
    "autoscaling": ("passed", ""),
    "karpenter": ("unknown", "the ProvisioningRequest API (autoscaling.x-k8s.io) is not served"),
}


@pytest.mark.cluster
@pytest.mark.parametrize("scenario", sorted(NON_DISRUPTIVE))
def test_non_disruptive_runs_only_the_safe_check(scenario, autoscaled_cluster_for, tmp_path):
    """check-capacity alone; nothing is scaled."""
    cluster = autoscaled_cluster_for(scenario)
    report = run_kaic(cluster, tmp_path / "run", (REQUIREMENT,), POOL)
    got = probes(report)
    want, why = NON_DISRUPTIVE[scenario]
    assert got["cluster_autoscaling.check-capacity"][0] == want, got
    assert why in got["cluster_autoscaling.check-capacity"][1], got
    assert outcome(report) == want
    assert "cluster_autoscaling.scale-up-down" not in got
    assert_nothing_left(cluster.kubeconfig, report["run"]["id"])


@pytest.mark.cluster
@pytest.mark.scenario("autoscaling")
def test_without_a_pool_label_the_scale_check_is_unknown(autoscaled_cluster_for, tmp_path):
    cluster = autoscaled_cluster_for("autoscaling")
    report = run_kaic(
        cluster,
        tmp_path / "run",
        (),
        "--profile",
        str(only_this_requirement(tmp_path)),
        "--mode",
        "certified",
    )
    got = probes(report)
    assert got["cluster_autoscaling.scale-up-down"][0] == "unknown", got
    assert "--autoscaler-node-pool-label" in got["cluster_autoscaling.scale-up-down"][1]
    assert outcome(report) == "unknown"


@pytest.mark.cluster
@pytest.mark.parametrize("scenario", AUTOSCALED)
def test_certified_scale_up_and_down(scenario, autoscaled_cluster_for, tmp_path):
    cluster = autoscaled_cluster_for(scenario)
    report = run_kaic(
        cluster,
        tmp_path / "run",
        (),
        "--profile",
        str(only_this_requirement(tmp_path)),
        "--mode",
        "certified",
        POOL,
        *TIMEOUTS,
    )
    got = probes(report)
    assert outcome(report) == MATRIX[scenario][REQUIREMENT], got
    if SCENARIOS[scenario].karpenter:
        assert got["cluster_autoscaling.check-capacity"][0] == "not-applicable", got
        assert "ProvisioningRequest API" in got["cluster_autoscaling.check-capacity"][1], got
    else:
        assert got["cluster_autoscaling.check-capacity"] == ("passed", ""), got
    if scenario.startswith("broken-"):
        assert got["cluster_autoscaling.scale-up-down"][0] == "failed", got
        assert "added no pool node" in got["cluster_autoscaling.scale-up-down"][1], got
    else:
        assert got["cluster_autoscaling.scale-up-down"] == ("passed", ""), got
    assert_nothing_left(cluster.kubeconfig, report["run"]["id"])
