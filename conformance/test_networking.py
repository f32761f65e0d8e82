"""Networking: Gateway API for inference, inference ingress, high-performance and disaggregated inference."""

from kaic.facts import crds_in, require
from kaic.probe import probe


@probe("ai_inference", "discovery", test="TestKaicDiscovery/AiInference", kind="discovery")
def test_ai_inference_discovery(facts, evidence):
    """Gateway API CRDs (with bundle version) and the GatewayClasses with their Accepted condition."""
    require(facts, "crds", "gatewayClasses")
    evidence.add("fact", "gatewayApiCrds", crds_in(facts, "gateway.networking.k8s.io"))
    evidence.add("fact", "gatewayClasses", facts.get("gatewayClasses") or [])
