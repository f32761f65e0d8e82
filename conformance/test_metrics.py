"""Observability: accelerator metrics and AI service metrics.

AI service metrics are judged by what the monitoring system collected, never by what kaic reads itself: its
query API must report the number of requests the workload really served.

Proves `ai_service_metrics` (a monitoring system collects the metrics a workload exposes) and
`accelerator_metrics` (an exporter publishes per-device accelerator metrics).

The `accelerator_metrics` probes apply only where accelerators are (none at all: not-applicable) and choose
one accelerator profile and allocation path (`--accelerator-profile`, `--allocation-mode`; accelerators kaic
does not recognise are unknown). They read the `/metrics` of the vendor's exporter (DCGM, AMD's
device-metrics-exporter, Intel Gaudi): `--metrics-endpoint`, else a Service that looks like the vendor's
exporter, read through the API server's proxy; no exporter kaic knows for the profile, or no such Service, is
unknown. Utilisation and memory series are told apart by the exporter's names, or by
`--metrics-utilization-metric` and `--metrics-memory-metric`.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from kaic.areas import accelerators, images, metrics, workloads
from kaic.kube.conditions import is_ready
from kaic.probe import (
    Cluster,
    Facts,
    ProbeError,
    Recorder,
    Rule,
    RunContext,
    Unknown,
    crds_in,
    probe,
    require,
)
from kaic.settings import Metrics

MONITORING_GROUPS = ("monitoring.coreos.com", "monitoring.googleapis.com")
NAME = "kaic-inference"
PORT = 8080
METRICS_PATH = "/cgi-bin/metrics"
REQUESTS = 10
PREFIX = "kaic_inference"
# The workload: each request to /cgi-bin/infer is counted and timed, and the exposition is rewritten whole (a
# rename, so a scrape never reads half a file). A CGI script serves it too: a scrape needs the exposition's
# Content-Type (Prometheus 3 refuses a target that sends none, as httpd does for a plain file).
# The run id replaces RUN; httpd serves one CGI process per request.
SERVER = r"""set -e
mkdir -p /www/cgi-bin
cat > /www/cgi-bin/infer <<'EOF'
#!/bin/sh
count=$(( $(cat /www/count) + 1 ))
echo "$count" > /www/count
l='conformance_run="RUN"'
{
printf '# HELP PREFIX_requests_total Inference requests served.\n# TYPE PREFIX_requests_total counter\n'
printf 'PREFIX_requests_total{%s} %s\n' "$l" "$count"
printf '# HELP PREFIX_request_duration_seconds Request latency.\n# TYPE PREFIX_request_duration_seconds histogram\n'
for le in 0.005 0.05 0.5 +Inf; do printf 'PREFIX_request_duration_seconds_bucket{%s,le="%s"} %s\n' "$l" "$le" "$count"; done
printf 'PREFIX_request_duration_seconds_sum{%s} %s\n' "$l" "0.00$count"
printf 'PREFIX_request_duration_seconds_count{%s} %s\n' "$l" "$count"
printf '# HELP PREFIX_queue_depth Requests waiting.\n# TYPE PREFIX_queue_depth gauge\n'
printf 'PREFIX_queue_depth{%s} 0\n' "$l"
} > /www/metrics.next && mv /www/metrics.next /www/metrics
printf 'Content-Type: text/plain\r\n\r\n%s\n' "$count"
EOF
cat > /www/cgi-bin/metrics <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n\r\n'
cat /www/metrics
EOF
chmod +x /www/cgi-bin/infer /www/cgi-bin/metrics
echo -1 > /www/count
/www/cgi-bin/infer >/dev/null
exec httpd -f -p PORT -h /www
""".replace("PREFIX", PREFIX).replace("PORT", str(PORT))  # noqa: E501 - shell lines in a raw string

SERVICE_RBAC = (
    *workloads.RBAC,
    Rule("", "pods", ("watch",)),
    Rule("", "pods/proxy", ("create", "get")),
    Rule("", "services", ("get", "list"), namespaced=False),
    Rule("", "services/proxy", ("get",), namespaced=False),
    Rule("monitoring.coreos.com", "podmonitors", ("create", "delete")),
    Rule("monitoring.googleapis.com", "podmonitorings", ("create", "delete")),
    Rule("monitoring.coreos.com", "prometheuses", ("list",), namespaced=False),
)
ACCELERATOR_RBAC = (
    Rule("", "services", ("list",), namespaced=False),
    Rule("", "services/proxy", ("get",), namespaced=False),
    Rule("resource.k8s.io", "resourceslices", ("list",), namespaced=False),
    Rule("", "nodes", ("get", "list"), namespaced=False),
)


@probe("accelerator_metrics", "discovery", test="TestKaicDiscovery/AcceleratorMetrics", kind="discovery")
def test_accelerator_metrics_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Accelerator metrics, discovery
    Description: Records the monitoring CRDs (Prometheus Operator, Google managed Prometheus) that could
    scrape accelerator exporters, and the nodes with extended resources to cover; a record, never a verdict.
    """
    require(facts, "crds", "nodes")
    evidence.add("fact", "monitoringCrds", crds_in(facts, *MONITORING_GROUPS))
    evidence.add("fact", "acceleratorNodes", [n["name"] for n in facts["nodes"]["withExtendedResources"]])


@probe("ai_service_metrics", "discovery", test="TestKaicDiscovery/AiServiceMetrics", kind="discovery")
def test_ai_service_metrics_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: AI service metrics, discovery
    Description: Records what could collect a workload's own metrics: the monitoring CRDs and the
    APIServices of metrics APIs; a record, never a verdict.
    """
    require(facts, "crds", "apiServices")
    evidence.add("fact", "monitoringCrds", crds_in(facts, *MONITORING_GROUPS))
    evidence.add("fact", "metricsApiServices", [s for s in facts["apiServices"] if "metrics" in s["name"]])


@probe(
    "ai_service_metrics",
    "collects-service-metrics",
    test="TestKaicAIServiceMetrics/CollectsExactRequestCount",
    creates=("pods", "monitoring.coreos.com/podmonitors", "monitoring.googleapis.com/podmonitorings"),
    images=("busybox",),
    rbac=SERVICE_RBAC,
    timeout_s=600,
)
def test_collects_service_metrics(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: AI service metrics, the exact request count collected
    Description: The monitoring system MUST collect the metrics a workload exposes: after K requests to the
    workload, its query API MUST report exactly K for the workload's request counter, and the workload's
    scrape target MUST be up.

    1. Find the query API: `--metrics-query-url`, else `--prometheus-service` (one that does not exist is an
       error), else a Prometheus Service found by name (`prometheus-operated` first) and port (`web`, `http`
       or 9090), queried through the API server's `services/proxy`. None, or one that does not answer
       `vector(1)` with 1, is unknown; so is no node that runs containers.
    2. A small inference-shaped workload (busybox httpd with a CGI script) serves a request counter, a latency
       histogram and a queue-depth gauge labelled with the run id. It is registered with the platform's
       monitoring: a PodMonitor (labelled as the installed Prometheus objects select them) when the Prometheus
       Operator is installed, a PodMonitoring when Google managed Prometheus is, the `prometheus.io` scrape
       annotations always. It must be Ready within 180 s.
    3. kaic sends exactly K = 10 requests through the API server's pod proxy; the workload must count them 1
       to K.
    4. Within `--metrics-collection-timeout` (180 s) the query API must report exactly K for the run's
       counter (the largest of its series, so a target two scrape jobs read counts once), and `up` of the
       workload's target must be 1.
    """
    require(facts, "crds")
    query = QueryApi.find(cluster, run.settings.metrics, evidence)
    assert_query_works(query)
    nodes, tolerations = workloads.container_nodes(cluster, run.settings)
    if not nodes:
        raise Unknown(
            "no Ready node runs containers (every node is simulated), so no workload can serve metrics"
        )
    image = images.for_run(run.settings)["busybox"]
    cluster.create(workloads.pods_path(namespace), server_pod(run, nodes, tolerations, image))
    registered = ["prometheus.io scrape annotations"]
    if "podmonitors.monitoring.coreos.com" in facts["crds"]:
        cluster.create(
            f"/apis/monitoring.coreos.com/v1/namespaces/{namespace}/podmonitors",
            pod_monitor(run.labels, monitor_labels(cluster)),
        )
        registered.append("PodMonitor (Prometheus Operator)")
    if "podmonitorings.monitoring.googleapis.com" in facts["crds"]:
        cluster.create(
            f"/apis/monitoring.googleapis.com/v1/namespaces/{namespace}/podmonitorings",
            pod_monitoring(run.labels),
        )
        registered.append("PodMonitoring (Google managed Prometheus)")
    evidence.add("fact", "registration", registered)
    pods = workloads.PodWatch(cluster, namespace, f"app={NAME}")
    if not pods.until(lambda w: any(is_ready(p) for p in w.pods.values()), 180):
        evidence.add("object", "pods", {n: p.get("status") for n, p in pods.pods.items()})
        raise TimeoutError("the metrics workload was not Ready within 180s")

    served = [infer(cluster, namespace) for _ in range(REQUESTS)]
    assert served == list(range(1, REQUESTS + 1)), f"the workload counted {served} for {REQUESTS} requests"
    exposed = metrics.samples(cluster.request_bytes("GET", f"{pod_proxy(namespace)}{METRICS_PATH}").decode())
    evidence.add("metric", "workload exposition", {s.name: s.value for s in exposed})

    # max, not sum: a target scraped by two jobs (a PodMonitor and an annotation job) must not count twice
    series = f'{PREFIX}_requests_total{{conformance_run="{run.id}"}}'
    counter = f"max({series})"
    collection_s = run.settings.metrics.collection_timeout_s
    collected = query.wait_for(counter, REQUESTS, collection_s)
    evidence.add("metric", counter, collected)
    for name in (f"{PREFIX}_request_duration_seconds_count", f"{PREFIX}_queue_depth"):
        evidence.add("metric", name, query.value(f'max({name}{{conformance_run="{run.id}"}})'))
    assert collected is not None, (
        f"the monitoring system never collected {PREFIX}_requests_total of the run's workload within "
        f"{collection_s:.0f}s (its own /metrics says "
        f"{metrics.total(exposed, f'{PREFIX}_requests_total', {})})"
    )
    assert collected == REQUESTS, (
        f"the monitoring system reports {collected:g} requests, {REQUESTS} were sent"
    )
    # The target that produced the count, as its scrape job sees it now (the same instance and job labels).
    up = query.value(f"min(up and on(instance, job) {series})")
    evidence.add("metric", "up of the workload's target", up)
    assert up == 1, f"the workload's scrape target is not up (up = {up})"


class QueryApi:
    """A Prometheus-compatible HTTP query API: --metrics-query-url, or a Prometheus Service through the API
    server's services/proxy (reachable wherever kaic's kubeconfig is)."""

    def __init__(self, cluster: Cluster, base: str, through_api_server: bool) -> None:
        self.cluster, self.base, self.through_api_server = cluster, base.rstrip("/"), through_api_server

    @classmethod
    def find(cls, cluster: Cluster, settings: Metrics, evidence: Recorder) -> QueryApi:
        if url := settings.query_url:
            evidence.add("fact", "queryApi", url)
            return cls(cluster, url, through_api_server=False)
        if named := settings.prometheus_service:
            namespace, name, port = metrics.service_ref(named)
            service = cluster.get_or_none(f"/api/v1/namespaces/{namespace}/services/{name}")
            if service is None:
                raise ProbeError(f"--prometheus-service {named}: no such Service")
            found: tuple[str, str, int] | None = (
                namespace,
                name,
                port or metrics.query_port(service) or service["spec"]["ports"][0]["port"],
            )
        else:
            found = metrics.prometheus_service(cluster.list("/api/v1/services"))
        if found is None:
            raise Unknown(
                "no monitoring system found (no Prometheus Service, no --metrics-query-url): install one "
                "(e.g. the Prometheus Operator) or give --metrics-query-url, and run again"
            )
        namespace, name, port = found
        evidence.add("fact", "queryApi", f"service {namespace}/{name}:{port}")
        return cls(
            cluster, f"/api/v1/namespaces/{namespace}/services/{name}:{port}/proxy", through_api_server=True
        )

    def value(self, promql: str) -> float | None:
        path = f"{self.base}/api/v1/query"
        if self.through_api_server:
            return metrics.query_scalar(
                json.loads(self.cluster.request_bytes("GET", path, query={"query": promql}))
            )
        with urllib.request.urlopen(
            f"{path}?{urllib.parse.urlencode({'query': promql})}", timeout=30
        ) as answer:
            return metrics.query_scalar(json.loads(answer.read()))

    def wait_for(self, promql: str, want: float, timeout_s: float) -> float | None:
        """The last reading of `promql` once it equals `want` or the time is up (None: never any reading)."""
        deadline, seen = time.monotonic() + timeout_s, None
        while True:
            seen = self.value(promql)
            if seen == want or time.monotonic() > deadline:
                return seen
            time.sleep(5)  # a query API has no watch; scrapes land on the monitoring system's interval


def assert_query_works(query: QueryApi) -> None:
    """`vector(1)` first: a query API that cannot answer it is not a monitoring system kaic can judge."""
    try:
        one = query.value("vector(1)")
    except Exception as exc:  # noqa: BLE001 - any failure here means no usable query API
        raise Unknown(f"the query API at {query.base} does not answer vector(1): {exc}") from None
    if one != 1:
        raise Unknown(f"the query API at {query.base} answers vector(1) with {one}")


def server_pod(
    run: RunContext, nodes: tuple[str, ...], tolerations: list[dict[str, str]], image: str
) -> dict:
    container = {
        "name": "server",
        "image": image,
        "command": ["sh", "-c", SERVER.replace("RUN", run.id)],
        "ports": [{"containerPort": PORT, "name": "metrics"}],
        "readinessProbe": {"httpGet": {"path": METRICS_PATH, "port": PORT}, "periodSeconds": 2},
        "securityContext": workloads.RESTRICTED,
        "volumeMounts": [{"name": "www", "mountPath": "/www"}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
    }
    body = workloads.pod(NAME, {**run.labels, "app": NAME}, [container], nodes=nodes, tolerations=tolerations)
    body["spec"]["volumes"] = [{"name": "www", "emptyDir": {"sizeLimit": "1Mi"}}]
    body["metadata"]["annotations"] = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": METRICS_PATH,
    }
    return body


def monitor_labels(cluster: Cluster) -> dict[str, str]:
    """Labels the installed Prometheus objects select PodMonitors by (an unselected monitor is never read)."""
    labels: dict[str, str] = {}
    for prometheus in cluster.list("/apis/monitoring.coreos.com/v1/prometheuses"):
        labels.update(
            ((prometheus.get("spec") or {}).get("podMonitorSelector") or {}).get("matchLabels") or {}
        )
    return labels


def pod_monitor(labels: dict[str, str], selected_by: dict[str, str]) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": NAME, "labels": {**selected_by, **labels}},
        "spec": {
            "selector": {"matchLabels": {"app": NAME}},
            "podMetricsEndpoints": [{"port": "metrics", "path": METRICS_PATH, "interval": "5s"}],
        },
    }


def pod_monitoring(labels: dict[str, str]) -> dict:
    """Google Cloud Managed Service for Prometheus's own kind (not exercised: no managed collector runs
    here)."""
    return {
        "apiVersion": "monitoring.googleapis.com/v1",
        "kind": "PodMonitoring",
        "metadata": {"name": NAME, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app": NAME}},
            "endpoints": [{"port": "metrics", "path": METRICS_PATH, "interval": "5s"}],
        },
    }


def pod_proxy(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{NAME}:{PORT}/proxy"


def infer(cluster: Cluster, namespace: str) -> int:
    """One request, as a client would send it (no exec); the answer is the workload's count so far."""
    return int(cluster.request_bytes("GET", f"{pod_proxy(namespace)}/cgi-bin/infer").decode().strip())


@probe(
    "accelerator_metrics",
    "per-device-series",
    test="TestKaicAcceleratorMetrics/PerDeviceUtilisationAndMemory",
    rbac=ACCELERATOR_RBAC,
)
def test_per_device_series(cluster: Cluster, run: RunContext, facts: Facts, evidence: Recorder) -> None:
    """Testname: Accelerator metrics, utilisation and memory per device
    Description: The accelerators' exporter MUST publish a utilisation and a memory series for every device,
    each labelled with its device.

    1. Choose the profile and path, and read the exporter's `/metrics` once (above).
    2. No utilisation or memory series may lack a device label, every device with one of them must have the
       other, and at least as many devices must have both as the fewest any accelerator node of the selection
       offers (one read reaches one exporter instance, and an exporter runs per node).
    """
    require(facts, "nodes", "resourceSlices", "deviceClasses")
    selection = accelerators.select_present(facts, run.settings)
    devices = device_count(facts, selection)
    evidence.add("fact", "acceleratorSelection", {**selection.found, "devicesPerRead": devices})
    exporter = metrics.exporter_with(
        selection.profile.name,
        run.settings.metrics.utilization_metric,
        run.settings.metrics.memory_metric,
    )
    text, source = exposition(cluster, run.settings.metrics, exporter, selection)
    evidence.add("fact", "exporter", source)
    series = metrics.device_series(metrics.samples(text), exporter)
    evidence.add(
        "metric",
        "per-device series",
        {
            "utilisation": series.utilisation,
            "memory": series.memory,
            "unlabelled": sorted(set(series.unlabelled)),
        },
    )
    problems = series.problems(devices)
    assert not problems, f"the exporter at {source}: " + "; ".join(problems)


# The load: NVIDIA's CUDA sample nbody in benchmark mode, repeated; it waits first so kaic reads the device
# idle after the claim made it the pod's alone. The image's sample path is not verified on hardware.
IDLE_S, LOAD_S, READ_EVERY_S = 20, 150, 5
LOADS = {
    "nvidia": r"""n=$(command -v nbody || ls /cuda-samples/nbody /tmp/nbody 2>/dev/null | head -n1)
[ -x "$n" ] || { echo "kaic: no nbody sample in this image" >&2; exit 3; }
sleep IDLE; end=$(( $(date +%s) + LOAD ))
while [ "$(date +%s)" -lt "$end" ]; do "$n" -benchmark -numbodies=256000 >/dev/null || exit 4; done
""".replace("IDLE", str(IDLE_S)).replace("LOAD", str(LOAD_S)),
}


@probe(
    "accelerator_metrics",
    "utilisation-under-load",
    test="TestKaicAcceleratorMetrics/UtilisationRisesUnderLoad",
    disruptive=True,
    consumes=("devices",),
    creates=workloads.CREATES,
    images=("cuda-sample",),
    rbac=(*workloads.RBAC, *ACCELERATOR_RBAC, Rule("", "pods/proxy", ("get",), namespaced=False)),
    timeout_s=600,
)
def test_utilisation_under_load(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Accelerator metrics, utilisation rises under load
    Description: While a pod loads the one device it claims, the exporter on its node MUST report that
    device's utilisation rising above its idle reading.

    1. Certified mode only: it runs real work on a real accelerator. Choose the profile and path (above); a
       profile kaic knows no load for (it has one for `nvidia`: the CUDA sample nbody) is unknown.
    2. A pod claims one device and waits 20 s before its load; a node that runs no containers is unknown.
       The loaded device is the claim's (its identity from the node's ResourceSlices); on the device-plugin
       path, any device of the node.
    3. Once the pod is Running (within 120 s), the exporter on its node (its pod there, through the API
       server's proxy, unless `--metrics-endpoint` is given) must report the device's idle utilisation.
    4. Read every 5 s for up to 170 s: the utilisation must rise by at least 10 % of full scale over the idle
       reading. A load pod that ends first is an error: kaic's load failed, not the platform.
    """
    require(facts, "nodes", "resourceSlices", "deviceClasses")
    selection = accelerators.select_present(facts, run.settings)
    evidence.add("fact", "acceleratorSelection", selection.found)
    load = LOADS.get(selection.profile.name)
    if load is None:
        raise Unknown(
            f"kaic knows no load for {selection.profile.name} accelerators: attest manually that "
            "utilisation follows a workload"
        )
    exporter = metrics.exporter_with(
        selection.profile.name,
        run.settings.metrics.utilization_metric,
        run.settings.metrics.memory_metric,
    )
    container = {
        "name": "load",
        "image": images.for_run(run.settings)["cuda-sample"],
        "command": ["sh", "-c", load],
        "securityContext": workloads.RESTRICTED,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}},
    }
    body = workloads.pod(
        "load", run.labels, [container], nodes=selection.nodes, tolerations=selection.tolerations()
    )
    workloads.give_device(
        body,
        container,
        selection,
        template=workloads.device_template(cluster, namespace, run.labels, selection),
    )
    placed = workloads.place(cluster, namespace, body, evidence, run.settings.schedule_timeout_s)
    if not workloads.runs_containers(cluster, placed.node):
        raise Unknown(f"node {placed.node} runs no containers, so no device there can be loaded")
    # The device-plugin path does not say which device the pod got: then any device of the node may rise.
    identities = workloads.allocated_identities(cluster, placed, selection.profile) if placed.claims else ()
    evidence.add("fact", "loaded device", list(identities) or f"one device of {placed.node} (device plugin)")
    workloads.wait_for(
        cluster,
        workloads.pods_path(namespace, "load"),
        lambda p: (p.get("status") or {}).get("phase") == "Running",
        120,
        "the load pod Running",
        evidence,
    )

    def read() -> dict[tuple[str, str], float]:
        text, _ = exposition(cluster, run.settings.metrics, exporter, selection, node=placed.node)
        return metrics.utilisation(metrics.samples(text), exporter, identities)

    idle = read()
    evidence.add("metric", "idle utilisation", {f"{k[0]}/{k[1]}": v for k, v in idle.items()})
    assert idle, (
        f"the exporter on {placed.node} reports no utilisation for {list(identities) or 'any device'}"
    )
    deadline = time.monotonic() + IDLE_S + LOAD_S
    while not (up := metrics.risen(idle, loaded := read())) and time.monotonic() < deadline:
        pod = cluster.get(workloads.pods_path(namespace, "load"))
        if workloads.terminated(pod):
            raise RuntimeError(
                f"the load pod ended early ({pod['status']}): kaic's load, not the platform, failed"
            )
        time.sleep(READ_EVERY_S)  # an exporter has no watch; it refreshes on its own interval
    evidence.add("metric", "utilisation under load", {f"{k[0]}/{k[1]}": v for k, v in loaded.items()})
    assert up, (
        f"utilisation of {list(identities) or 'the devices of ' + placed.node} did not rise by "
        f"{metrics.MIN_RISE:.0%} of full scale within {IDLE_S + LOAD_S}s of load"
    )


def device_count(facts: Facts, selection: accelerators.Selection) -> int:
    """Devices one exporter read must cover: an exporter runs per node and one read (an endpoint, or a Service
    through the proxy) reaches one instance, so the fewest devices any accelerator node of the selection
    has."""
    option = selection.found.get("option") or {}
    return min((int(n) for n in (option.get("devicesPerNode") or {}).values()), default=0)


def exposition(
    cluster: Cluster,
    settings: Metrics,
    exporter: metrics.Exporter | None,
    selection: accelerators.Selection,
    node: str = "",
) -> tuple[str, str]:
    """The exporter's text and where it came from: --metrics-endpoint, else a Service that looks like the
    vendor's exporter, read through the API server's proxy (its pod on `node` when one is named)."""
    if endpoint := settings.endpoint:
        if endpoint.startswith("/"):
            return cluster.request_bytes("GET", endpoint).decode(), endpoint
        with urllib.request.urlopen(endpoint, timeout=30) as answer:
            return answer.read().decode(), endpoint
    if exporter is None:
        raise Unknown(
            f"the {selection.profile.name} accelerators have no known metrics exporter (DCGM, AMD "
            "device-metrics-exporter and Intel Gaudi are recognised): give --metrics-endpoint"
        )
    for svc in cluster.list("/api/v1/services"):
        meta = svc["metadata"]
        if metrics.exporter_for(meta["name"], meta.get("labels") or {}) is not exporter:
            continue
        ports = svc["spec"].get("ports") or []
        port = next((p for p in ports if p["port"] == exporter.port), ports[0])
        if not node:
            path = (
                f"/api/v1/namespaces/{meta['namespace']}/services/{meta['name']}:{port['port']}/proxy/metrics"
            )
            return cluster.request_bytes("GET", path).decode(), path
        selector = ",".join(f"{k}={v}" for k, v in (svc["spec"].get("selector") or {}).items())
        pods = (
            cluster.list(
                f"/api/v1/namespaces/{meta['namespace']}/pods",
                labelSelector=selector,
                fieldSelector=f"spec.nodeName={node}",
            )
            if selector
            else []
        )
        for pod in pods:
            path = (
                f"/api/v1/namespaces/{meta['namespace']}/pods/{pod['metadata']['name']}:"
                f"{port.get('targetPort', port['port'])}/proxy/metrics"
            )
            return cluster.request_bytes("GET", path).decode(), path
        raise AssertionError(
            f"no pod of the {exporter.vendor} exporter Service {meta['name']} runs on {node}"
        )
    raise Unknown(
        f"{exporter.vendor} accelerators are present but no {exporter.vendor} metrics exporter Service is "
        "found (install one such as dcgm-exporter, or give --metrics-endpoint)"
    )
