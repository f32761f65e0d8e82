"""The gang-scheduling probes against the real local cluster, scenario by scenario.

What binds is decided by the real kube-scheduler (native PodGroups, `scheduling.k8s.io/v1beta1`); kwok only
plays the nodes. In `kueue` and `broken-kueue` there is no native gang scheduling and real Kueue, a pod of the
real node (src/kaic/localcluster/kueue.py), admits kaic's queued Jobs by quota. Requirement outcomes must
match tests/golden/matrix.yaml, probe outcomes say why.
"""

from __future__ import annotations

import pytest
from golden_matrix import (
    assert_nothing_left,
    assert_probes,
    assert_rows,
    check_scenario,
    run_kaic,
)

from kaic.localcluster import kueue
from kaic.localcluster.scenarios import SCENARIOS

REQUIREMENTS = ("gang_scheduling",)
# `no-gang` serves no PodGroup API; `no-dra`'s scheduler emulates 1.34, so it has none either; `broken-gang`
# serves the API but its scheduler ignores pod groups; `broken-kueue`'s Kueue never admits a Job. Every other
# scenario keeps conformant's row.
OWN_SCENARIOS = {"no-gang", "no-dra", "broken-gang", "broken-kueue"}
KUEUE_BUILDS = (kueue.BINARY, kueue.MANIFESTS)
# A shorter window than the 30 s default keeps the suite quick; the observation is the same.
WINDOW = ("--gang-negative-window", "10s")
PASSED = {"gang_scheduling.fitting-gang": ("passed", ""), "gang_scheduling.unfit-gang": ("passed", "")}
ABSENT = "no gang-scheduling solution found"
PROBES = {
    "conformant": PASSED,
    "no-dra": {
        "gang_scheduling.fitting-gang": ("unknown", ABSENT),
        "gang_scheduling.unfit-gang": ("unknown", ABSENT),
    },
    "no-devices": PASSED,
    "no-gang": {
        "gang_scheduling.fitting-gang": ("unknown", ABSENT),
        "gang_scheduling.unfit-gang": ("unknown", ABSENT),
    },
    "broken-gang": {
        # All three fit, so an ignored pod group still binds them; only the gang that cannot fit tells.
        "gang_scheduling.fitting-gang": ("passed", ""),
        "gang_scheduling.unfit-gang": ("failed", "native let part of a gang bind"),
    },
    "broken-dra": PASSED,
    "no-gpu-nodes": PASSED,
    "broken-kueue": {
        # Nothing reconciles the queued Job: it stays suspended, no pod is ever made. The blocker, a queued
        # Job too, is never admitted either, so the unfit gang's probe cannot set up its fence.
        "gang_scheduling.fitting-gang": ("failed", "were bound within 15s (kueue): Kueue made no Workload"),
        "gang_scheduling.unfit-gang": ("error", "was not bound in 15s: Kueue made no Workload for Job"),
    },
    "kueue": PASSED,  # last: the Kueue test below reuses its cluster
}


def test_matrix_rows_are_complete_and_broken_scenarios_change_only_their_own_rows():
    assert_rows(REQUIREMENTS, OWN_SCENARIOS, PROBES)


@pytest.mark.cluster
@pytest.mark.parametrize("scenario", list(PROBES))
def test_outcomes_match_the_golden_matrix(scenario, cluster_for, tmp_path, require_real_node):
    if SCENARIOS[scenario].kueue:
        require_real_node(*KUEUE_BUILDS)
    check_scenario(cluster_for(scenario), tmp_path / "run", scenario, REQUIREMENTS, PROBES[scenario], *WINDOW)


@pytest.mark.cluster
@pytest.mark.scenario("kueue")
def test_kueue_is_found_and_refuses_the_unfit_gang_whole(cluster_for, tmp_path, require_real_node):
    """Without native gang scheduling kaic finds Kueue by itself, and while only 2 of 3 members fit the
    quota, real Kueue holds the gang's Workload of all 3 pods unadmitted: refused whole, not split."""
    require_real_node(*KUEUE_BUILDS)
    report = run_kaic(cluster_for("kueue"), tmp_path / "run", REQUIREMENTS, *WINDOW)
    probes = {p["name"]: p for r in report["requirements"] for p in r["probes"]}
    unfit = {e["name"]: e["content"] for e in probes["gang_scheduling.unfit-gang"]["evidence"]}
    assert "adapter: kueue" in unfit["gangScheduler"] and "auto-detected" in unfit["gangScheduler"]
    assert "(pod sets main=3): QuotaReserved False (Pending: couldn't assign flavors" in unfit["queued"]
    assert "insufficient unused quota for cpu" in unfit["queued"]
    assert_nothing_left(cluster_for("kueue").kubeconfig, report["run"]["id"])


@pytest.mark.cluster
@pytest.mark.scenario("conformant")
def test_asking_for_an_absent_solution_is_unknown(cluster_for, tmp_path):
    """--gang-scheduler kueue on a cluster without Kueue: unknown with the install hint, nothing created."""
    cluster = cluster_for("conformant")
    report = run_kaic(cluster, tmp_path / "run", REQUIREMENTS, "--gang-scheduler", "kueue", *WINDOW)
    hint = "kueue gang scheduling was asked for but its API is not served"
    assert_probes(
        report,
        {
            "gang_scheduling.fitting-gang": ("unknown", hint),
            "gang_scheduling.unfit-gang": ("unknown", "--gang-scheduler-namespace"),
        },
    )
    assert_nothing_left(cluster.kubeconfig, report["run"]["id"])
