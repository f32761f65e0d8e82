"""Networking: Gateway API for inference, inference ingress, high-performance and disaggregated inference."""

from kaic.facts import crds_in, require
from kaic.probe import probe


@probe("ai_inference", "discovery", test="TestKaicDiscovery/AiInference", kind="discovery")
def test_ai_inference_discovery(facts, evidence):
    """Gateway API CRDs (with bundle version) and the GatewayClasses with their Accepted condition."""
    require(facts, "crds", "gatewayClasses")
    evidence.add("fact", "gatewayApiCrds", crds_in(facts, "gateway.networking.k8s.io"))
    evidence.add("fact", "gatewayClasses", facts.get("gatewayClasses") or [])


@probe("advanced_inference_ingress", "discovery", test="TestKaicDiscovery/AdvancedInferenceIngress", kind="discovery")
def test_advanced_inference_ingress_discovery(facts, evidence):
    """Gateway API Inference Extension CRDs (InferencePool and friends)."""
    require(facts, "crds")
    evidence.add(
        "fact", "inferenceCrds", crds_in(facts, "inference.networking.k8s.io", "inference.networking.x-k8s.io")
    )


@probe(
    "high_performance_networking", "discovery", test="TestKaicDiscovery/HighPerformanceNetworking", kind="discovery"
)
def test_high_performance_networking_discovery(facts, evidence):
    """Secondary-network signs: DRA network drivers, NetworkAttachmentDefinitions, RDMA resources."""
    require(facts, "crds", "nodes", "resourceSlices")
    rdma = {
        n["name"]: [r for r in n["extendedResources"] if r.startswith("rdma/")]
        for n in facts["nodes"]["withExtendedResources"]
    }
    evidence.add(
        "fact",
        "networking",
        {
            "draNetworkDrivers": [d for d in facts.get("resourceSlices") or {} if "net" in d],
            "multusCrds": list(crds_in(facts, "k8s.cni.cncf.io")),
            "rdmaResources": {k: v for k, v in rdma.items() if v},
        },
    )


@probe("disaggregated_inference", "discovery", test="TestKaicDiscovery/DisaggregatedInference", kind="discovery")
def test_disaggregated_inference_discovery(facts, evidence):
    """Disaggregated-serving stacks known by their CRDs (llm-d, LeaderWorkerSet)."""
    require(facts, "crds")
    evidence.add("fact", "servingCrds", crds_in(facts, "llm-d.ai", "leaderworkerset.x-k8s.io"))
