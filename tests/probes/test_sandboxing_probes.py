"""The workload_sandboxing probes against the real local cluster (judged as the 1.37 checklist, the only one
that has the requirement).

`conformant` has no RuntimeClass and no agent-sandbox API: not-applicable, with the trail. `broken-sandbox`
has a RuntimeClass named `sandboxed` whose handler is plain runc on the real node: its pod and the control pod
beside it run on the same kernel, so the probe fails. `sandbox` has a RuntimeClass `gvisor` whose handler runs
gVisor's runsc on the real node (cluster/README.md): its pod runs on gVisor's own kernel, so the probe passes.
"""

from __future__ import annotations

import pytest
from golden_matrix import (
    assert_probes,
    assert_rows,
    check_scenario,
    run_kaic,
)

REQUIREMENTS = ("workload_sandboxing",)
OWN_SCENARIOS = {"conformant", "sandbox", "broken-sandbox"}
VERSION = "1.37"
GVISOR_BUILDS = ("runsc", "kaic-runsc")
EXPECTED = {
    "conformant": {
        "workload_sandboxing.discovery": ("passed", ""),
        "workload_sandboxing.isolated-from-host": ("not-applicable", "no RuntimeClass whose name or handler"),
    },
    "sandbox": {
        "workload_sandboxing.discovery": ("passed", ""),
        "workload_sandboxing.isolated-from-host": ("passed", ""),
    },
    "broken-sandbox": {
        "workload_sandboxing.discovery": ("passed", ""),
        "workload_sandboxing.isolated-from-host": (
            "failed",
            "RuntimeClass sandboxed: kernel: shares the node's kernel",
        ),
    },
}


def test_matrix_rows_are_complete_and_only_the_sandbox_scenarios_have_them():
    assert_rows(REQUIREMENTS, OWN_SCENARIOS, EXPECTED)


@pytest.mark.cluster
@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_outcomes_match_the_golden_matrix(scenario, cluster_for, tmp_path, require_real_node):
    if scenario != "conformant":
        require_real_node(*(GVISOR_BUILDS if scenario == "sandbox" else ()))
    check_scenario(
        cluster_for(scenario),
        tmp_path / "run",
        scenario,
        REQUIREMENTS,
        EXPECTED[scenario],
        version=VERSION,
    )


@pytest.mark.cluster
@pytest.mark.scenario("conformant")
def test_a_runtime_class_that_does_not_exist_is_an_error(cluster_for, tmp_path):
    cluster = cluster_for("conformant")
    report = run_kaic(
        cluster,
        tmp_path / "run",
        REQUIREMENTS,
        "--sandbox-runtime-class",
        "gvisor",
        version=VERSION,
    )
    assert_probes(report, {"workload_sandboxing.isolated-from-host": ("error", "names no RuntimeClass")})
