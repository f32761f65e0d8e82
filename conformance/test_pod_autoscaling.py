"""Pod autoscaling: a HorizontalPodAutoscaler scales accelerator pods on a custom metric the pods serve.

The probe reads the metric the way the HPA does (custom.metrics.k8s.io) and judges by the Deployment's
replicas, never by the HPA's own status.

Proves `pod_autoscaling`: where the HorizontalPodAutoscaler is offered, it scales pods holding accelerators on
a custom metric.

Upstream has no test for it: the probe is kaic's own.
"""

from __future__ import annotations

import time

from kaic.areas import accelerators, images, workloads
from kaic.kube.conditions import is_ready
from kaic.probe import (
    Cluster,
    Facts,
    NotApplicable,
    Recorder,
    Rule,
    RunContext,
    Unknown,
    probe,
    require,
)

METRIC = "kaic_probe_load"
PORT = 8080
TARGET = 10
NAME = "kaic-hpa"
METRIC_API = "custom.metrics.k8s.io"
# The server: /metrics is a file the CGI script /cgi-bin/set rewrites, so a set is visible to the next scrape.
SERVER = r"""set -e
mkdir -p /www/cgi-bin
cat > /www/cgi-bin/set <<'EOF'
#!/bin/sh
value="${QUERY_STRING#value=}"
case "$value" in ''|*[!0-9]*) printf 'Status: 400 Bad Request\r\n\r\nvalue must be a whole number\n'; exit 0;; esac
printf '# TYPE METRIC gauge\nMETRIC %s\n' "$value" > /www/metrics.next && mv /www/metrics.next /www/metrics
printf 'Content-Type: text/plain\r\n\r\n%s\n' "$value"
EOF
chmod +x /www/cgi-bin/set
QUERY_STRING=value=0 /www/cgi-bin/set >/dev/null
exec httpd -f -p PORT -h /www
""".replace("METRIC", METRIC).replace("PORT", str(PORT))  # noqa: E501 - shell lines in a raw string

RBAC = (
    *workloads.RBAC,
    Rule("", "pods/proxy", ("create", "get")),
    Rule("apps", "deployments", ("create", "get", "list", "watch", "delete")),
    Rule("autoscaling", "horizontalpodautoscalers", ("create", "get", "delete")),
    Rule("", "pods", ("watch",)),
    Rule(METRIC_API, f"pods/{METRIC}", ("get",)),  # a metric is a subresource to RBAC: pods/<metric>
    Rule("apiregistration.k8s.io", "apiservices", ("list",), namespaced=False),
)


@probe("pod_autoscaling", "discovery", test="TestKaicDiscovery/PodAutoscaling", kind="discovery")
def test_pod_autoscaling_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Pod autoscaling, discovery
    Description: Records the metrics APIs an HPA can scale on (resource, custom, external) and whether each
    is Available; a record, never a verdict.
    """
    require(facts, "apiServices")
    evidence.add(
        "fact",
        "metricsApiServices",
        [s for s in facts["apiServices"] if "metrics.k8s.io" in s["name"]],
    )


@probe(
    "pod_autoscaling",
    "scale-on-custom-metric",
    test="TestKaicPodAutoscaling/ScalesAcceleratorPodsOnCustomMetric",
    consumes=("devices",),
    creates=("apps/deployments", "autoscaling/horizontalpodautoscalers", *workloads.CREATES),
    images=("busybox",),
    rbac=RBAC,
    timeout_s=900,
)
def test_scale_on_custom_metric(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Pod autoscaling, accelerator pods scaled on a custom metric
    Description: A HorizontalPodAutoscaler MUST scale a Deployment of pods that each hold an accelerator up
    when the pods' custom metric rises above its target and back down when it falls, and every replica MUST
    hold an accelerator.

    1. `autoscaling/v2` not served is not-applicable. The custom metrics API (`custom.metrics.k8s.io`, v1beta2
       or v1beta1) must be registered and Available; otherwise unknown ("install a metrics adapter").
    2. Choose the accelerator profile and path (`--accelerator-profile`, `--allocation-mode`; no accelerator,
       or none kaic recognises, is unknown) and its nodes that run containers (none: unknown).
    3. A Deployment (image key `busybox`, whose httpd serves the gauge) on those nodes, whose pods each hold
       one accelerator (DRA claim template or extended resource) and serve the gauge `kaic_probe_load` on
       `:8080/metrics`, with the common `prometheus.io/scrape`, `port` and `path` annotations; the probe sets
       the value through the API server's pod proxy (`POST .../pods/NAME:8080/proxy/cgi-bin/set?value=N`, no
       exec).
    4. An HPA (`Pods` metric, target average 10, 1–2 replicas, stabilisation 0 s both ways). Once the first
       replica is Ready, the metric must be reported as 0 within `--custom-metrics-timeout` (120 s); never
       reported at all is unknown (the pipeline does not collect such pods).
    5. The probe sets that pod to 20: the metric must follow within `--custom-metrics-timeout` (failed
       otherwise: a stale pipeline), and the Deployment must reach 2 replicas within 240 s, both Ready and,
       on the DRA path, each with its claim allocated and reserved for it.
    6. Every pod set to 0: the Deployment must come back to 1 within 240 s (failed otherwise, with the HPA's
       conditions as evidence).
    """
    require(facts, "apiGroups", "apiServices", "nodes")
    if "v2" not in (facts["apiGroups"].get("autoscaling") or {}).get("versions", []):
        raise NotApplicable("the platform does not serve the HorizontalPodAutoscaler API (autoscaling/v2)")
    version = metrics_api_version(facts)
    selection = accelerators.select(facts, run.settings)
    nodes = container_nodes(facts, selection)
    evidence.add("fact", "acceleratorSelection", {**selection.found, "nodesRunningContainers": nodes})
    template = workloads.device_template(cluster, namespace, run.labels, selection)
    image = images.for_run(run.settings)["busybox"]
    cluster.create(
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        deployment(run.labels, selection, nodes, image, template),
    )
    cluster.create(
        f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers", autoscaler(run.labels)
    )
    pods = workloads.PodWatch(cluster, namespace, f"app={NAME}", owners=(NAME,))

    first = ready_pods(pods, 1, 180, "the first replica Ready", evidence)[0]
    reported_s = run.settings.metrics.custom_metrics_timeout_s
    read_metric(
        cluster,
        namespace,
        version,
        {first: 0},
        reported_s,
        evidence,
        "before any load",
        absent_is_unknown=True,
    )
    set_load(cluster, namespace, first, 2 * TARGET)
    read_metric(
        cluster, namespace, version, {first: 2 * TARGET}, reported_s, evidence, "after the load was set"
    )
    scaled = wait_replicas(cluster, namespace, 2, 240, evidence, "up")
    assert scaled, f"replicas stayed at 1 while the pods averaged {2 * TARGET} against a target of {TARGET}"
    both = ready_pods(pods, 2, 180, "both replicas Ready", evidence)
    placements = [
        workloads.placement_of(cluster, namespace, pods.pods[p], evidence, run.settings.schedule_timeout_s)
        for p in both
    ]
    evidence.add(
        "fact",
        "replicaDevices",
        {p.pod["metadata"]["name"]: (p.node, p.devices() or selection.extended_resource) for p in placements},
    )

    for pod_name in both:
        set_load(cluster, namespace, pod_name, 0)
    down = wait_replicas(cluster, namespace, 1, 240, evidence, "down")
    assert down, "replicas stayed at 2 after every pod served 0 (scale-down stabilisation is 0 s)"


def metrics_api_version(facts: Facts) -> str:
    """The served custom.metrics.k8s.io version; an absent or unavailable pipeline is unknown, not failed."""
    services = {s["name"]: s for s in facts["apiServices"] if s["name"].endswith(f".{METRIC_API}")}
    for version in ("v1beta2", "v1beta1"):
        service = services.get(f"{version}.{METRIC_API}")
        if service and service.get("available") is True:
            return version
    raise Unknown(
        "no custom metrics API is registered and Available "
        f"({', '.join(sorted(services)) or 'none registered'}): install a metrics adapter "
        "(prometheus-adapter, KEDA, a managed one) and run again"
    )


def container_nodes(facts: Facts, selection: accelerators.Selection) -> list[str]:
    """The selection's nodes that run containers: the pods must really serve their metric."""
    summaries = accelerators.accelerator_nodes(facts)
    nodes = [n for n in selection.nodes if summaries.get(n, {}).get("runsContainers")]
    if not nodes:
        raise Unknown(
            f"the accelerator nodes ({', '.join(selection.nodes)}) run no containers, "
            "so no pod can serve a metric"
        )
    return nodes


def deployment(
    labels: dict[str, str], selection: accelerators.Selection, nodes: list[str], image: str, template: str
) -> dict:
    container = {
        "name": "server",
        "image": image,
        "command": ["sh", "-c", SERVER],
        "ports": [{"containerPort": PORT, "name": "metrics"}],
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": PORT}, "periodSeconds": 2},
        "securityContext": workloads.RESTRICTED,
        "volumeMounts": [{"name": "www", "mountPath": "/www"}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
    }
    body = workloads.pod(
        NAME, {**labels, "app": NAME}, [container], nodes=tuple(nodes), tolerations=selection.tolerations()
    )
    workloads.give_device(body, container, selection, template=template)
    spec = body["spec"]
    spec.pop(
        "activeDeadlineSeconds"
    )  # a Deployment's pods may not carry one; the namespace is cleaned instead
    spec.update(restartPolicy="Always", volumes=[{"name": "www", "emptyDir": {"sizeLimit": "1Mi"}}])
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": "/metrics",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {"metadata": {**body["metadata"], "annotations": annotations}, "spec": spec},
        },
    }


def autoscaler(labels: dict[str, str]) -> dict:
    now = {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": NAME, "labels": dict(labels)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "minReplicas": 1,
            "maxReplicas": 2,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": METRIC},
                        "target": {"type": "AverageValue", "averageValue": str(TARGET)},
                    },
                }
            ],
            "behavior": {"scaleUp": now, "scaleDown": now},
        },
    }


def ready_pods(
    pods: workloads.PodWatch, count: int, timeout_s: float, what: str, evidence: Recorder
) -> list[str]:
    """Names of `count` Ready pods (oldest first), waited for through the pod watch."""

    def ready(watch: workloads.PodWatch) -> list[str]:
        live = [p for p in watch.pods.values() if not p["metadata"].get("deletionTimestamp") and is_ready(p)]
        return [p["metadata"]["name"] for p in sorted(live, key=lambda p: p["metadata"]["creationTimestamp"])]

    if not pods.until(lambda w: len(ready(w)) >= count, timeout_s):
        evidence.add("object", "pods", {n: p.get("status") for n, p in pods.pods.items()})
        raise TimeoutError(f"{what}: not within {timeout_s:.0f}s")
    return ready(pods)[:count]


def set_load(cluster: Cluster, namespace: str, pod: str, value: int) -> None:
    """What a client would do: talk to the pod (through the API server's proxy, no exec)."""
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}:{PORT}/proxy/cgi-bin/set"
    answer = cluster.request_bytes("POST", path, query={"value": str(value)}).decode().strip()
    assert answer == str(value), f"pod {pod} answered {answer!r} to setting {value}"


def read_metric(
    cluster: Cluster,
    namespace: str,
    version: str,
    want: dict[str, int],
    timeout_s: float,
    evidence: Recorder,
    when: str,
    absent_is_unknown: bool = False,
) -> None:
    """Wait until the custom metrics API reports `want` for those pods, as the HPA would read them.

    Never served at all is unknown (the pipeline does not collect these pods); served but not following what
    the pods serve is a failure of the pipeline the HPA depends on."""
    path = f"/apis/{METRIC_API}/{version}/namespaces/{namespace}/pods/*/{METRIC}"
    deadline, seen = time.monotonic() + timeout_s, None
    while True:
        listing = cluster.get_or_none(path, labelSelector=f"app={NAME}")
        seen = {i["describedObject"]["name"]: quantity(i["value"]) for i in (listing or {}).get("items", [])}
        if all(seen.get(pod) == value for pod, value in want.items()):
            evidence.add("metric", f"{METRIC} {when}", seen)
            return
        if time.monotonic() > deadline:
            break
        time.sleep(2)  # the metrics API has no watch; its readings are pulled, as the HPA pulls them
    evidence.add("metric", f"{METRIC} {when}", seen or {})
    if not seen and absent_is_unknown:
        raise Unknown(
            f"the custom metrics API never reported {METRIC} for the probe's pods, which serve it on "
            f":{PORT}/metrics with the prometheus.io/scrape, port and path annotations: configure the "
            "pipeline to collect such pods"
        )
    raise AssertionError(
        f"the custom metrics API reported {seen} {when}, not {want}, within {timeout_s:.0f}s"
    )


def quantity(text: str) -> float:
    """A metric value as the API renders it ("20", "20500m")."""
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def wait_replicas(
    cluster: Cluster, namespace: str, replicas: int, timeout_s: float, evidence: Recorder, direction: str
) -> bool:
    """Watch the Deployment until the HPA sets `replicas`; record the HPA's conditions either way."""
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    reached = False
    for _, obj in cluster.watch(path, timeout_s, fieldSelector=f"metadata.name={NAME}"):
        if obj["spec"].get("replicas") == replicas:
            reached = True
            break
    hpa = cluster.get(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{NAME}")
    evidence.add("object", f"autoscaler after scaling {direction}", hpa.get("status") or {})
    return reached
