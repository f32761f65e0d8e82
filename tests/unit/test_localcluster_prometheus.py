"""The local Prometheus's configuration: what it scrapes, and the one rule the broken scenario adds."""

from pathlib import Path

from kaic.localcluster import prometheus
from kaic.localcluster.launcher import components
from kaic.localcluster.scenarios import SCENARIOS


def test_scrapes_annotated_pods_on_the_real_node_only():
    job = prometheus.config(Path("/state/prometheus.kubeconfig"), dropping=False)["scrape_configs"][0]
    assert job["kubernetes_sd_configs"] == [
        {"role": "pod", "kubeconfig_file": "/state/prometheus.kubeconfig"}
    ]
    keeps = {
        tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"
    }
    assert keeps[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)] == "true"
    assert keeps[("__meta_kubernetes_pod_ip",)].startswith(r"100\.64\.128\.")
    assert not [r for r in job["relabel_configs"] if r.get("action") == "drop"]


def test_the_dropping_variant_drops_pods_kaic_labels_before_anything_else():
    first = prometheus.config(Path("k"), dropping=True)["scrape_configs"][0]["relabel_configs"][0]
    assert first == {"source_labels": ["__meta_kubernetes_pod_labelpresent_kaic_dev_run_id"], "regex": "true",
                     "action": "drop"}  # fmt: skip


def test_only_the_observability_scenarios_start_prometheus():
    running = {name for name, shape in SCENARIOS.items() if prometheus.NAME in components(shape)}
    assert running == {"observability", "broken-observability"}
    assert all(SCENARIOS[name].real_node for name in running)
