"""Observability: accelerator metrics and AI service metrics."""

from kaic.facts import crds_in, require
from kaic.probe import probe

MONITORING_GROUPS = ("monitoring.coreos.com", "monitoring.googleapis.com")


@probe("accelerator_metrics", "discovery", test="TestKaicDiscovery/AcceleratorMetrics", kind="discovery")
def test_accelerator_metrics_discovery(facts, evidence):
    """Monitoring stacks that could scrape accelerator exporters, and the accelerator nodes to cover."""
    require(facts, "crds", "nodes")
    evidence.add("fact", "monitoringCrds", crds_in(facts, *MONITORING_GROUPS))
    evidence.add("fact", "acceleratorNodes", [n["name"] for n in facts["nodes"]["withExtendedResources"]])


@probe("ai_service_metrics", "discovery", test="TestKaicDiscovery/AiServiceMetrics", kind="discovery")
def test_ai_service_metrics_discovery(facts, evidence):
    """Monitoring systems that can collect a workload's own metrics (operator CRDs, metrics APIs)."""
    require(facts, "crds", "apiServices")
    evidence.add("fact", "monitoringCrds", crds_in(facts, *MONITORING_GROUPS))
    evidence.add("fact", "metricsApiServices", [s for s in facts["apiServices"] if "metrics" in s["name"]])
