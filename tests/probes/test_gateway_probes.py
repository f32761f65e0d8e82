"""The ai_inference probes against the real local cluster: Traefik (built from its module) as the Gateway
implementation on the real node's address, the standard Gateway API CRDs, backends and a client pod on the
node.

`conformant` has no Gateway API: unknown. `gateway` passes: header routing and the 80/20 split measured from a
pod. `broken-gateway` fails: Traefik's HTTP entrypoint is :8000, so the probe's port-80 Gateway is never
Programmed.
"""

from __future__ import annotations

import pytest
from golden_matrix import (
    assert_probes,
    assert_rows,
    check_scenario,
    run_kaic,
)

from kaic.localcluster import gateway as localgateway

REQUIREMENTS = ("ai_inference",)
OWN_SCENARIOS = {"conformant", "gateway", "broken-gateway"}
ROUTING = "ai_inference.header-and-weight-routing"
EXPECTED = {
    "conformant": {
        "ai_inference.discovery": ("passed", ""),
        ROUTING: ("unknown", "the Gateway API CRDs gatewayclasses.gateway.networking.k8s.io"),
    },
    "gateway": {"ai_inference.discovery": ("passed", ""), ROUTING: ("passed", "")},
    "broken-gateway": {
        "ai_inference.discovery": ("passed", ""),
        ROUTING: ("failed", "Gateway kaic-inference (listener HTTP :80) was not Programmed"),
    },
}


def test_matrix_rows_are_complete_and_only_the_gateway_scenarios_have_them():
    assert_rows(REQUIREMENTS, OWN_SCENARIOS, EXPECTED)


@pytest.mark.cluster
@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_outcomes_match_the_golden_matrix(scenario, cluster_for, tmp_path, require_real_node):
    if scenario != "conformant":
        require_real_node(localgateway.NAME)
    check_scenario(cluster_for(scenario), tmp_path / "run", scenario, REQUIREMENTS, EXPECTED[scenario])


@pytest.mark.cluster
@pytest.mark.scenario("broken-gateway")
def test_a_gateway_class_that_does_not_exist_is_an_error(cluster_for, tmp_path, require_real_node):
    """Both Gateway probes resolve --gateway-class alike: a class that does not exist is an error naming the
    classes found, even where advanced_inference_ingress would otherwise be unknown (no InferencePool API)."""
    require_real_node(localgateway.NAME)
    cluster = cluster_for("broken-gateway")
    report = run_kaic(
        cluster,
        tmp_path / "run",
        (*REQUIREMENTS, "advanced_inference_ingress"),
        "--gateway-class",
        "istio",
        version="1.36",
    )
    wrong = "--gateway-class istio names no GatewayClass (found: traefik (Accepted))"
    assert_probes(
        report, {ROUTING: ("error", wrong), "advanced_inference_ingress.endpoint-picker": ("error", wrong)}
    )
