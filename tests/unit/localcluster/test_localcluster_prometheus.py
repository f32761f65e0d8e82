"""The local Prometheus's configuration: what it scrapes, and the one rule the broken scenario adds."""

from kaic.areas import metrics
from kaic.localcluster import prometheus
from kaic.localcluster.scenarios import SCENARIOS


def test_scrapes_annotated_pods_on_the_real_node_only():
    job = prometheus.config(dropping=False)["scrape_configs"][0]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    keeps = {
        tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"
    }
    assert keeps[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)] == "true"
    assert keeps[("__meta_kubernetes_pod_ip",)].startswith(r"100\.64\.128\.")
    assert not [r for r in job["relabel_configs"] if r.get("action") == "drop"]


def test_the_dropping_variant_drops_pods_kaic_labels_before_anything_else():
    first = prometheus.config(dropping=True)["scrape_configs"][0]["relabel_configs"][0]
    assert first == {
        "source_labels": ["__meta_kubernetes_pod_labelpresent_kaic_dev_run_id"],
        "regex": "true",
        "action": "drop",
    }


def test_only_the_observability_scenarios_and_the_reference_run_prometheus():
    running = {name for name, shape in SCENARIOS.items() if shape.monitoring}
    assert running == {"reference", "observability", "broken-observability"}
    assert all(SCENARIOS[name].real_node for name in running)


def test_the_pod_is_found_behind_its_service_as_kaic_looks_for_one():
    made = prometheus.objects(dropping=False, server_port=6443, port=40123)
    kinds = {path.rsplit("/", 1)[1]: body for path, body in made}
    pod, service = kinds["pods"], kinds["services"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert pod["spec"]["hostNetwork"] is True
    assert "--web.listen-address=100.64.128.1:40123" in pod["spec"]["containers"][0]["args"]
    assert metrics.prometheus_service([{**service, "metadata": {**service["metadata"]}}]) == (
        "kube-system",
        "kaic-prometheus",
        9090,
    )
