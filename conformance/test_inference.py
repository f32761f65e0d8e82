"""Advanced inference ingress: a Gateway routes to an InferencePool whose endpoint picker follows live
metrics.

Proves `advanced_inference_ingress`: the Gateway API Inference Extension routes to a pool of model servers by
their live state.

Both behavioural probes detect what the requirement needs: `inferencepools.inference.networking.k8s.io`
serving `v1`, and an Accepted GatewayClass (`--gateway-class`, chosen as for `ai_inference`: a class that does
not exist is an error); either missing is unknown.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from kaic.areas import gateway, images, inference, workloads
from kaic.kube.conditions import is_ready
from kaic.probe import (
    Cluster,
    Facts,
    NotApplicable,
    ProbeError,
    Recorder,
    Rule,
    RunContext,
    Unknown,
    crds_in,
    probe,
    require,
)

SIMS = ("sim-0", "sim-1", "sim-2")
SKEWED = SIMS[0]
SIM_PORT, EPP_PORT = 8000, 9002
WARMUP, JUDGED = 5, 20
# kaic may grant the endpoint picker's Role only what it holds itself (RBAC escalation check): pods watch.
RBAC = (
    Rule("", "pods", ("create", "get", "list", "watch", "delete")),
    Rule("", "pods/log", ("get",)),
    Rule("", "events", ("list",)),
    Rule("", "services", ("create", "get", "delete")),
    Rule("", "serviceaccounts", ("create", "get", "delete")),
    Rule("", "nodes", ("get", "list"), namespaced=False),
    Rule("rbac.authorization.k8s.io", "roles", ("create", "get", "delete")),
    Rule("rbac.authorization.k8s.io", "rolebindings", ("create", "get", "delete")),
    Rule(inference.POOL_GROUP, "inferencepools", ("create", "get", "list", "watch", "delete")),
    Rule(gateway.GROUP, "gateways", ("create", "get", "list", "watch", "delete")),
    Rule(gateway.GROUP, "httproutes", ("create", "get", "list", "watch", "delete")),
)


@probe(
    "advanced_inference_ingress",
    "discovery",
    test="TestKaicDiscovery/AdvancedInferenceIngress",
    kind="discovery",
)
def test_advanced_inference_ingress_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Advanced inference ingress, discovery
    Description: Records the Gateway API Inference Extension's CRDs (InferencePool and its companions) and
    whether InferencePool v1 is served; a record, never a verdict.
    """
    require(facts, "crds")
    evidence.add(
        "fact", "inferenceCrds", crds_in(facts, inference.POOL_GROUP, "inference.networking.x-k8s.io")
    )
    evidence.add("fact", "inferencePoolV1", inference.pool_version(facts["crds"]) or "not served")


def gateway_class(facts: Facts, run: RunContext, evidence: Recorder) -> str:
    """The GatewayClass to route through; unknown (the profile's text) when the API or a class is missing."""
    require(facts, "crds", "gatewayClasses")
    crds = crds_in(facts, inference.POOL_GROUP, "inference.networking.x-k8s.io")
    evidence.add(
        "fact",
        "detection",
        {
            "inferenceCrds": {n: c["versions"] for n, c in crds.items()},
            "gatewayClasses": facts.get("gatewayClasses"),
        },
    )
    # First, so a --gateway-class naming no class is the same error here as in ai_inference.
    chosen, how = gateway.choose_class(facts, run.settings.gateway_class)
    evidence.add("fact", "gatewayClass", how)
    if inference.pool_version(facts["crds"]) is None:
        raise Unknown(
            f"the InferencePool API {inference.POOL_CRD} v1 is not served (Inference Extension CRDs found: "
            f"{', '.join(sorted(crds)) or 'none'}): install an Inference Extension implementation"
        )
    if chosen is None:
        raise Unknown(
            f"InferencePool v1 is served but {how}, so nothing can route to a pool: install the "
            "implementation's Gateway controller or name its class with --gateway-class"
        )
    return chosen["name"]


def sim_pod(
    name: str,
    run: RunContext,
    image: str,
    kv_cache: float,
    nodes: tuple[str, ...],
    tolerations: list[dict[str, str]],
) -> dict:
    container = {
        "name": "sim",
        "image": image,
        "args": [
            "--model",
            "kaic-model",
            "--port",
            str(SIM_PORT),
            "--fake-metrics",
            json.dumps({"kv-cache-usage": kv_cache}),
        ],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "ports": [{"containerPort": SIM_PORT}],
        "securityContext": workloads.RESTRICTED,
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    }
    return workloads.pod(
        name, {**run.labels, "kaic.dev/pool": "sims"}, [container], nodes=nodes, tolerations=tolerations
    )


def picker_objects(
    namespace: str, run: RunContext, image: str, nodes: tuple[str, ...], tolerations: list[dict[str, str]]
) -> list[tuple[str, dict]]:
    """The endpoint picker as the Inference Extension deploys it: service account, role, pod and service."""
    meta = {"name": "epp", "labels": run.labels}
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": [inference.POOL_GROUP],
            "resources": ["inferencepools"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    container = {
        "name": "epp",
        "image": image,
        "args": [
            "--pool-name",
            "pool",
            "--pool-namespace",
            namespace,
            "--pool-group",
            inference.POOL_GROUP,
            "--grpc-port",
            str(EPP_PORT),
        ],
        "ports": [{"containerPort": EPP_PORT}],
        "securityContext": workloads.RESTRICTED,
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    }
    pod = workloads.pod(
        "epp", {**run.labels, "kaic.dev/epp": "pool"}, [container], nodes=nodes, tolerations=tolerations
    )
    pod["spec"].update(serviceAccountName="epp", automountServiceAccountToken=True)
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/" + namespace
    return [
        (
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        ),
        (
            f"{rbac}/roles",
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules},
        ),
        (
            f"{rbac}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "epp"},
                "subjects": [{"kind": "ServiceAccount", "name": "epp", "namespace": namespace}],
            },
        ),
        (workloads.pods_path(namespace), pod),
        (
            f"/api/v1/namespaces/{namespace}/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": {
                    "selector": {"kaic.dev/epp": "pool"},
                    "ports": [{"port": EPP_PORT, "appProtocol": "http2"}],
                },
            },
        ),
    ]


def routing_objects(namespace: str, run: RunContext, class_name: str) -> list[tuple[str, dict]]:
    """InferencePool over the sims, and a Gateway whose HTTPRoute sends everything to the pool."""
    pool = {
        "apiVersion": f"{inference.POOL_GROUP}/v1",
        "kind": "InferencePool",
        "metadata": {"name": "pool", "labels": run.labels},
        "spec": {
            "selector": {"matchLabels": {"kaic.dev/pool": "sims"}},
            "targetPorts": [{"number": SIM_PORT}],
            "endpointPickerRef": {"name": "epp", "port": {"number": EPP_PORT}, "failureMode": "FailClose"},
        },
    }
    route = {
        "apiVersion": f"{gateway.GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": gateway.ROUTE, "labels": run.labels},
        "spec": {
            "parentRefs": [{"name": gateway.GATEWAY}],
            "rules": [
                {"backendRefs": [{"group": inference.POOL_GROUP, "kind": "InferencePool", "name": "pool"}]}
            ],
        },
    }
    return [
        (f"/apis/{inference.POOL_GROUP}/v1/namespaces/{namespace}/inferencepools", pool),
        (f"{gateway.API}/namespaces/{namespace}/gateways", gateway.gateway_body(run.labels, class_name)),
        (f"{gateway.API}/namespaces/{namespace}/httproutes", route),
    ]


@probe(
    "advanced_inference_ingress",
    "endpoint-picker",
    test="TestKaicAdvancedInferenceIngress/EndpointPickerAvoidsLoadedServer",
    creates=(
        "pods",
        "services",
        "serviceaccounts",
        "rbac.authorization.k8s.io/roles",
        "rbac.authorization.k8s.io/rolebindings",
        f"{inference.POOL_GROUP}/inferencepools",
        f"{gateway.GROUP}/gateways",
        f"{gateway.GROUP}/httproutes",
    ),
    images=("inference-sim", "inference-epp", "python"),
    rbac=RBAC,
    timeout_s=600,
)
def test_endpoint_picker(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Advanced inference ingress, the endpoint picker avoids a loaded server
    Description: Requests through a Gateway to an InferencePool of three model servers MUST be answered by
    members of the pool, and the endpoint picker MUST NOT send any to the server whose KV cache is reported
    nearly full.

    1. Detect the InferencePool API and the GatewayClass (above); no node that runs containers is unknown.
    2. Three `inference-sim` pods (llm-d-inference-sim; `POD_NAME` makes it answer with `x-inference-pod`),
       `sim-0` reporting a 95 % full KV cache through `--fake-metrics`, the others 5 %; the Inference
       Extension's endpoint picker (`inference-epp`, with its own ServiceAccount and Role) and its Service; an
       InferencePool over the sims whose picker fails closed; a Gateway of the class and an HTTPRoute to the
       pool. Each sim and the picker must be Ready within 300 s.
    3. The Gateway must be `Programmed` with an address within 180 s, and the HTTPRoute and the InferencePool
       `Accepted` and `ResolvedRefs` by it within 120 s each.
    4. A client pod sends 5 warm-up and 20 judged requests through the Gateway: every judged request must be
       answered 200 by a pool member, and none by `sim-0`.
    """
    class_name = gateway_class(facts, run, evidence)
    refs = images.for_run(run.settings)
    nodes, tolerations = workloads.container_nodes(cluster, run.settings)
    if not nodes:
        raise Unknown("no Ready node runs containers, so no model server can answer")
    for name in SIMS:
        kv = inference.KV_CACHE_SKEWED if name == SKEWED else inference.KV_CACHE_IDLE
        cluster.create(
            workloads.pods_path(namespace), sim_pod(name, run, refs["inference-sim"], kv, nodes, tolerations)
        )
    for path, body in picker_objects(
        namespace, run, refs["inference-epp"], nodes, tolerations
    ) + routing_objects(namespace, run, class_name):
        cluster.create(path, body)
    for name in (*SIMS, "epp"):
        workloads.wait_for(
            cluster,
            workloads.pods_path(namespace, name),
            is_ready,
            300,
            f"pod {name} Ready",
            evidence,
        )
    base = f"{gateway.API}/namespaces/{namespace}"
    address = gateway.programmed_address(cluster, base, evidence, timeout_s=180)
    gateway.parent_accepted(cluster, f"{base}/httproutes", gateway.ROUTE, evidence, timeout_s=120)
    pools = f"/apis/{inference.POOL_GROUP}/v1/namespaces/{namespace}/inferencepools"
    gateway.parent_accepted(cluster, pools, "pool", evidence, timeout_s=120)
    target = f"http://{address}:{gateway.LISTENER_PORT}"
    env = {"TARGET": target, "COUNT": str(WARMUP + JUDGED), "MODEL": "kaic-model"}
    client = inference.client_pod("client", run.labels, refs["python"], env, nodes, tolerations)
    _, answers = inference.ask(cluster, namespace, client, evidence)
    judged = answers[WARMUP:]
    evidence.add(
        "fact",
        "answersByPod",
        {"warmup": inference.spread(answers[:WARMUP]), "judged": inference.spread(judged)},
    )
    assert not (wrong := inference.picker_problems(judged, SKEWED, SIMS)), "; ".join(wrong)


@probe(
    "advanced_inference_ingress",
    "gaie-suite",
    test="TestKaicAdvancedInferenceIngress/GaieConformanceSuite",
    rbac=(),
    timeout_s=1800,
)
def test_gaie_suite(run: RunContext, facts: Facts, evidence: Recorder) -> None:
    """Testname: Advanced inference ingress, the Inference Extension's own conformance suite
    Description: The Gateway API Inference Extension's conformance suite, run from the user's checkout
    against the chosen GatewayClass, MUST pass every profile.

    1. Without `--gaie-conformance-dir` the probe is not-applicable (endpoint-picker judges the requirement
       alone); then detect the InferencePool API and the GatewayClass (above). Any `--context` is an error:
       the suite reads the kubeconfig's current context.
    2. `go test ./conformance -run TestConformance -timeout 25m -args --gateway-class=… --report-output=…`
       runs in that checkout; a suite that cannot run, or writes no report, is an error.
    3. Every profile of the report must be `success` at its core, and go test must exit 0.
    """
    suite = run.settings.network.gaie_conformance_dir
    if not suite:
        raise NotApplicable(
            "no --gaie-conformance-dir names a checkout of the Inference Extension's conformance "
            "suite; the endpoint-picker probe judges the requirement alone"
        )
    class_name = gateway_class(facts, run, evidence)
    if run.context:
        raise ProbeError(
            f"the GAIE suite reads the kubeconfig's current context, not --context {run.context}: "
            "make that context current and run again"
        )
    report = run.out_dir / "gaie-conformance-report.yaml"
    args = [
        "go",
        "test",
        "./conformance",
        "-run",
        "TestConformance",
        "-timeout",
        "25m",
        "-args",
        f"--gateway-class={class_name}",
        f"--report-output={report}",
    ]
    env = {**os.environ, **({"KUBECONFIG": run.kubeconfig} if run.kubeconfig else {})}
    try:
        proc = subprocess.run(
            args, cwd=Path(suite), capture_output=True, text=True, timeout=1700, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProbeError(f"cannot run the GAIE suite in {suite}: {exc}") from None
    evidence.add("log", "go test", (proc.stdout + proc.stderr)[-6000:])
    if not report.exists():
        raise ProbeError(f"the GAIE suite wrote no report (go test exit {proc.returncode})")
    ok, summary = inference.suite_result(report.read_text(encoding="utf-8"))
    evidence.add("fact", "gaieReport", summary)
    assert ok and proc.returncode == 0, f"GAIE conformance suite: {summary} (go test exit {proc.returncode})"
