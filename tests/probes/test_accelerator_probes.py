"""The accelerator, DRA and secure-access probes against the real local cluster, scenario by scenario.

Each run is `kaic run --focus <these requirements> -o json` in a subprocess. Requirement outcomes must match
tests/golden/matrix.yaml; probe outcomes pin down why (what the real API server and scheduler decided, and
which checks are unknown because kwok nodes run no containers). Nothing labelled by the run may remain.
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

REQUIREMENTS = (
    "dra_support",
    "secure_accelerator_access",
    "driver_runtime_management",
    "gpu_sharing",
    "virtualized_accelerator",
)
# Scenarios that break something these requirements depend on; every other scenario keeps conformant's rows.
OWN_SCENARIOS = {"no-dra", "no-devices", "no-gpu-nodes", "broken-dra", "real-node"}
# The API-decided probes: real passes by the API server and scheduler on conformant's kwok nodes.
API_DECIDED = {
    "dra_support.crud": ("passed", ""),
    "dra_support.claim-lifecycle": ("passed", ""),
    "dra_support.unsatisfiable-claim": ("passed", ""),
    "secure_accelerator_access.disjoint-devices": ("passed", ""),
    "gpu_sharing.shared-claim": ("passed", ""),
}
KWOK = "runs no containers"
DRA_GA = "DRA is GA and on by default from Kubernetes 1.34, and checklist 1.35 requires it"
# The real node runs containers from locally built images only; busybox runs the identity script there.
PROBES = {
    "conformant": {
        **API_DECIDED,
        "secure_accelerator_access.positive-access": ("unknown", "kaic-dra-"),
        "secure_accelerator_access.negative-isolation": ("unknown", KWOK),
        "secure_accelerator_access.multi-container-isolation": ("unknown", KWOK),
        "secure_accelerator_access.requestless-leaks": ("not-applicable", "no known request-less leak"),
        "driver_runtime_management.versions-in-pod": ("unknown", "advertises ['1.0.0']"),
        "gpu_sharing.device-plugin-sharing": ("not-applicable", "no node offers shared simulated devices"),
        "virtualized_accelerator.virtual-device": ("not-applicable", "no node labelled"),
    },
    "no-dra": {
        "dra_support.crud": ("failed", f"resource.k8s.io/v1 is not served (served versions: none): {DRA_GA}"),
        "dra_support.claim-lifecycle": ("failed", DRA_GA),
        "dra_support.unsatisfiable-claim": ("failed", DRA_GA),
        "secure_accelerator_access.positive-access": ("unknown", "node kaic-device-plugin-"),
        "secure_accelerator_access.disjoint-devices": (
            "unknown",
            "device-plugin allocations carry no identity",
        ),
        "driver_runtime_management.versions-in-pod": ("unknown", "advertises []"),
        "gpu_sharing.shared-claim": ("not-applicable", "no DRA driver publishes devices"),
    },
    "no-devices": {
        "dra_support.crud": ("passed", ""),
        "dra_support.claim-lifecycle": ("not-applicable", "no DRA driver publishes devices"),
        "dra_support.unsatisfiable-claim": ("not-applicable", "no DRA driver publishes devices"),
        "secure_accelerator_access.positive-access": ("unknown", "node kaic-device-plugin-"),
        "secure_accelerator_access.disjoint-devices": (
            "unknown",
            "device-plugin allocations carry no identity",
        ),
    },
    "no-gpu-nodes": {
        "dra_support.crud": ("passed", ""),
        "dra_support.claim-lifecycle": ("not-applicable", "no DRA driver publishes devices"),
        "secure_accelerator_access.positive-access": ("unknown", "no accelerators"),
        "driver_runtime_management.versions-in-pod": ("unknown", "no accelerators"),
        "gpu_sharing.device-plugin-sharing": ("not-applicable", "no accelerators"),
        "virtualized_accelerator.virtual-device": ("not-applicable", "no accelerators"),
    },
    "broken-dra": {
        "dra_support.crud": ("passed", ""),
        "dra_support.unsatisfiable-claim": ("passed", ""),
        "dra_support.claim-lifecycle": ("failed", "cannot allocate all claims"),
        "secure_accelerator_access.positive-access": ("error", "TimeoutError"),
        "gpu_sharing.shared-claim": ("error", "TimeoutError"),
    },
    "no-gang": API_DECIDED,
    "broken-gang": API_DECIDED,
    # Containers really run: the devices each one sees (CDI-injected GPU_DEVICE_* from the upstream driver)
    # are compared with what the API allocated.
    "real-node": {
        **API_DECIDED,
        "secure_accelerator_access.positive-access": ("passed", ""),
        "secure_accelerator_access.negative-isolation": ("passed", ""),
        "secure_accelerator_access.multi-container-isolation": ("passed", ""),
        "driver_runtime_management.versions-in-pod": ("unknown", "no in-container driver tool"),
    },
}


def test_matrix_rows_are_complete_and_broken_scenarios_change_only_their_own_rows():
    assert_rows(REQUIREMENTS, OWN_SCENARIOS, PROBES)


@pytest.mark.cluster
@pytest.mark.parametrize("scenario", list(PROBES))
def test_outcomes_match_the_golden_matrix(scenario, cluster_for, tmp_path):
    check_scenario(
        cluster_for(scenario),
        tmp_path / "run",
        scenario,
        REQUIREMENTS,
        PROBES[scenario],
    )


@pytest.mark.cluster
@pytest.mark.scenario("conformant")
def test_device_plugin_path_on_the_conformant_cluster(cluster_for, tmp_path):
    """--allocation-mode device-plugin: pods land on the device-plugin pool; allocations there carry no
    identity the API can show, so disjointness waits for a node that runs containers; DRA's own probes still
    pass."""
    cluster = cluster_for("conformant")
    report = run_kaic(cluster, tmp_path / "run", REQUIREMENTS, "--allocation-mode", "device-plugin")
    assert_probes(
        report,
        {
            "secure_accelerator_access.positive-access": ("unknown", "node kaic-device-plugin-"),
            "secure_accelerator_access.disjoint-devices": (
                "unknown",
                "device-plugin allocations carry no identity",
            ),
            "dra_support.claim-lifecycle": ("passed", ""),
            "gpu_sharing.shared-claim": ("passed", ""),
        },
    )
    assert_nothing_left(cluster.kubeconfig, report["run"]["id"])


@pytest.mark.cluster
@pytest.mark.scenario("no-dra")
def test_dra_not_served_is_unknown_on_the_1_33_checklist(cluster_for, tmp_path):
    """Before 1.34 DRA is beta and off by default: the same no-dra cluster judged as 1.33 is unknown, not
    failed."""
    cluster = cluster_for("no-dra")
    report = run_kaic(cluster, tmp_path / "run", ("dra_support",), version="1.33")
    beta = "resource.k8s.io/v1 is not served (served versions: none); on 1.33 DRA is beta and off by default"
    assert_probes(
        report,
        {
            f"dra_support.{name}": ("unknown", beta)
            for name in ("crud", "claim-lifecycle", "unsatisfiable-claim")
        },
    )
    assert {r["id"]: r["outcome"] for r in report["requirements"]} == {"dra_support": "unknown"}
