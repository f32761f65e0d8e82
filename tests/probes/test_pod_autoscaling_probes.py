"""The pod-autoscaling probe against the real local cluster: the real HPA controller, a real custom metrics
API server (kaic-metrics-adapter) scraping pods that really run on the real node, and a stale adapter it must
fail on.

Requirement outcomes must match tests/golden/matrix.yaml; probe outcomes say why.
"""

from __future__ import annotations

import pytest
from golden_matrix import (
    assert_rows,
    check_scenario,
)

from kaic.localcluster.scenarios import SCENARIOS

REQUIREMENTS = ("pod_autoscaling",)
# Only these scenarios run a custom metrics pipeline (and the real node its pods need); every other one keeps
# conformant's row: no custom metrics API, so nothing to scale on.
OWN_SCENARIOS = {"real-node", "broken-pod-autoscaling"}
PROBE = "pod_autoscaling.scale-on-custom-metric"
# The plain kwok scenarios and the two with a metrics pipeline (other areas' special scenarios list none).
CLAIMED = [
    *(s for s, shape in SCENARIOS.items() if not (shape.real_node or shape.scales_nodes)),
    *OWN_SCENARIOS,
]
PROBES = {
    "conformant": {PROBE: ("unknown", "no custom metrics API is registered and Available")},
    "real-node": {PROBE: ("passed", "")},
    "broken-pod-autoscaling": {PROBE: ("failed", "not {")},
}


def test_matrix_rows_are_complete_and_only_pipeline_scenarios_move_them():
    assert_rows(REQUIREMENTS, OWN_SCENARIOS, CLAIMED)


@pytest.mark.cluster
@pytest.mark.parametrize("scenario", list(PROBES))
def test_outcomes_match_the_golden_matrix(scenario, cluster_for, tmp_path):
    check_scenario(cluster_for(scenario), tmp_path / "run", scenario, REQUIREMENTS, PROBES[scenario])
