"""The observability probes: what they conclude from real exposition text and real query answers, and their
golden rows. The kwok scenarios run no monitoring system; `observability` runs upstream Prometheus scraping
the real node's annotated pods, `broken-observability` the same Prometheus dropping kaic's pods. The simulated
GPUs have no exporter anywhere, so accelerator_metrics is unknown (or not applicable without accelerators).

Requirement outcomes must match tests/golden/matrix.yaml; probe outcomes say why.
"""

from __future__ import annotations

import pytest
from golden_matrix import (
    assert_rows,
    check_scenario,
)

from kaic.areas import metrics
from kaic.localcluster import node, prometheus
from kaic.localcluster.scenarios import SCENARIOS

REQUIREMENTS = ("accelerator_metrics", "ai_service_metrics")
# The plain kwok scenarios run no monitoring system or accelerator exporter: of them only the one without
# accelerators moves a row (accelerator_metrics does not apply). The two Prometheus scenarios move the other.
OWN_SCENARIOS = {"no-gpu-nodes", "observability", "broken-observability"}
CLAIMED = [
    *(s for s, shape in SCENARIOS.items() if not (shape.real_node or shape.scales_nodes)),
    *OWN_SCENARIOS,
]
PROBES = {
    "conformant": {
        "ai_service_metrics.collects-service-metrics": ("unknown", "no monitoring system found"),
        "accelerator_metrics.per-device-series": (
            "unknown",
            "the simulated accelerators have no known metrics exporter",
        ),
    },
    "no-gpu-nodes": {"accelerator_metrics.per-device-series": ("not-applicable", "no accelerators")},
    "observability": {"ai_service_metrics.collects-service-metrics": ("passed", "")},
    "broken-observability": {
        "ai_service_metrics.collects-service-metrics": (
            "failed",
            "never collected kaic_inference_requests_total",
        ),
    },
}

DCGM = """\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-aaa",Hostname="n1"} 12
DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-bbb",Hostname="n1"} 0
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-aaa",Hostname="n1"} 1024
DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-bbb",Hostname="n1"} 0
# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-aaa",Hostname="n1"} 40
"""


def test_matrix_rows_are_complete_and_only_deviceless_scenarios_move_them():
    assert_rows(REQUIREMENTS, OWN_SCENARIOS, CLAIMED)


def test_dcgm_exposition_covers_each_device():
    series = metrics.device_series(metrics.samples(DCGM), metrics.EXPORTERS["nvidia"])
    assert series.complete() == {"0", "1"}
    assert series.problems(2) == []
    assert series.problems(3) == ["2 device(s) have utilisation and memory series, 3 expected"]


def test_a_device_without_memory_series_or_label_fails():
    text = DCGM.replace('DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-bbb",Hostname="n1"} 0\n', "")
    text += '# TYPE DCGM_FI_DEV_FB_FREE gauge\nDCGM_FI_DEV_FB_FREE{Hostname="n1"} 5\n'
    problems = metrics.device_series(metrics.samples(text), metrics.EXPORTERS["nvidia"]).problems(2)
    assert any("without a device label" in p and "DCGM_FI_DEV_FB_FREE" in p for p in problems)
    assert "device 1 has no memory series" in problems


def test_unknown_vendor_falls_back_to_upstream_name_rules():
    text = (
        '# TYPE acc_util gauge\nacc_util{device_id="a"} 3\n'
        '# TYPE acc_hbm_used gauge\nacc_hbm_used{device_id="a"} 9\n'
    )
    assert metrics.device_series(metrics.samples(text), None).problems(1) == []


def test_utilisation_under_load_is_read_for_the_claimed_device_only():
    nvidia = metrics.EXPORTERS["nvidia"]
    idle = metrics.utilisation(metrics.samples(DCGM), nvidia, ["GPU-bbb"])
    assert idle == {("DCGM_FI_DEV_GPU_UTIL", "1"): 0}
    loaded = metrics.utilisation(
        metrics.samples(
            DCGM.replace('UUID="GPU-bbb",Hostname="n1"} 0', 'UUID="GPU-bbb",Hostname="n1"} 97', 1)
        ),
        nvidia,
        ["GPU-bbb"],
    )
    assert metrics.risen(idle, loaded) == [("DCGM_FI_DEV_GPU_UTIL", "1")]
    # A rise below a tenth of full scale is no evidence; another device's readings are never read.
    assert metrics.risen(idle, {("DCGM_FI_DEV_GPU_UTIL", "1"): 9}) == []
    assert metrics.utilisation(metrics.samples(DCGM), nvidia, ["GPU-zzz"]) == {}
    assert len(metrics.utilisation(metrics.samples(DCGM), nvidia)) == 2


def test_ratio_series_rise_on_their_own_scale():
    key = ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "0")
    assert metrics.risen({key: 0.02}, {key: 0.5}) == [key]
    assert metrics.risen({key: 0.02}, {key: 0.09}) == []


def test_series_names_given_on_the_command_line_replace_the_exporters():
    assert metrics.exporter_with("nvidia") is metrics.EXPORTERS["nvidia"]
    custom = metrics.exporter_with("nvidia", utilisation="my_util")
    assert custom.utilisation == ("my_util",) and custom.memory == metrics.EXPORTERS["nvidia"].memory
    simulated = metrics.exporter_with("simulated", "u", "m")
    text = '# TYPE u gauge\nu{device_id="a"} 3\n# TYPE m gauge\nm{device_id="a"} 9\n'
    assert metrics.device_series(metrics.samples(text), simulated).problems(1) == []


def test_malformed_exposition_is_an_error_not_a_reading():
    with pytest.raises(ValueError):
        metrics.samples('DCGM_FI_DEV_GPU_UTIL{gpu="0" 12\n')


def test_service_counter_total_reads_labelled_samples():
    text = (
        "# TYPE kaic_inference_requests_total counter\n"
        'kaic_inference_requests_total{conformance_run="r1"} 10\n'
        'kaic_inference_requests_total{conformance_run="r2"} 4\n'
    )
    found = metrics.samples(text)
    assert metrics.total(found, "kaic_inference_requests_total", {"conformance_run": "r1"}) == 10
    assert metrics.total(found, "kaic_inference_requests_total", {"conformance_run": "r3"}) is None


def test_query_answers():
    vector = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "10"]}]},
    }
    assert metrics.query_scalar(vector) == 10
    assert metrics.query_scalar({"status": "success", "data": {"resultType": "vector", "result": []}}) is None
    with pytest.raises(ValueError, match="bad_data"):
        metrics.query_scalar({"status": "error", "errorType": "bad_data", "error": "parse error"})
    two = {"status": "success", "data": {"resultType": "vector", "result": [vector["data"]["result"][0]] * 2}}
    with pytest.raises(ValueError, match="one series"):
        metrics.query_scalar(two)


def service(namespace, name, ports, labels=None):
    return {
        "metadata": {"namespace": namespace, "name": name, "labels": labels or {}},
        "spec": {"ports": [{"name": n, "port": p} for n, p in ports]},
    }


def test_prometheus_service_prefers_the_operators_governing_service():
    services = [
        service("monitoring", "prometheus-node-exporter", [("metrics", 9100)]),
        service("monitoring", "kube-prometheus-stack-prometheus", [("http-web", 9090)]),
        service("monitoring", "prometheus-operated", [("web", 9090)]),
        service("monitoring", "prometheus-operator", [("https", 443)]),
    ]
    assert metrics.prometheus_service(services) == ("monitoring", "prometheus-operated", 9090)
    assert metrics.prometheus_service(services[:2]) == (
        "monitoring",
        "kube-prometheus-stack-prometheus",
        9090,
    )
    assert metrics.prometheus_service([services[0], services[3]]) is None


def test_a_named_prometheus_service_is_namespace_name_and_optional_port():
    assert metrics.service_ref("monitoring/prometheus-operated") == (
        "monitoring",
        "prometheus-operated",
        None,
    )
    assert metrics.service_ref("kube-system/kaic-prometheus:9090") == ("kube-system", "kaic-prometheus", 9090)
    for bad in ("prometheus", "a/b/c", "ns/name:http", "NS/name"):
        with pytest.raises(ValueError, match="NAMESPACE/NAME"):
            metrics.service_ref(bad)


def test_exporters_are_recognised_by_name_or_app_label():
    assert metrics.exporter_for("nvidia-dcgm-exporter", {}) is metrics.EXPORTERS["nvidia"]
    assert metrics.exporter_for("metrics", {"app": "amd-device-metrics-exporter"}) is metrics.EXPORTERS["amd"]
    assert metrics.exporter_for("kube-dns", {"app": "coredns"}) is None


@pytest.mark.cluster
@pytest.mark.parametrize("scenario", PROBES)
def test_outcomes_match_the_golden_matrix(scenario, cluster_for, tmp_path, require_real_node):
    if SCENARIOS[scenario].monitoring:
        require_real_node(prometheus.NAME)
    cluster = cluster_for(scenario)
    # `observability`: kaic finds the Prometheus Service and queries it through the API server's service
    # proxy; `broken-observability`: the same query API named by --metrics-query-url, as users can.
    query = []
    if scenario == "broken-observability":
        query = ["--metrics-query-url", f"http://{node.NODE_IP}:{cluster.state()['prometheus']['port']}"]
    check_scenario(cluster, tmp_path / "run", scenario, REQUIREMENTS, PROBES[scenario], *query)
