"""Inference networking through the Gateway API: header routing and weighted splits to model backends.

Proves `ai_inference`: a Gateway API implementation routes inference traffic by request header and by weight.

Every behavioural probe first chooses the GatewayClass: `--gateway-class`, else the first Accepted one by
name. The Gateway API CRDs (GatewayClasses, Gateways, HTTPRoutes) not Established at v1, no Accepted class, or
a named one not Accepted: unknown; a named class that does not exist is an error naming the classes found.
"""

from __future__ import annotations

from kaic.areas import gateway, images, workloads
from kaic.kube.conditions import is_ready
from kaic.probe import Cluster, Facts, Recorder, Rule, RunContext, Unknown, crds_in, probe, require

GATEWAY_RBAC = (
    Rule("", "pods", ("create", "get", "list", "watch", "delete")),
    Rule("", "services", ("create", "get", "delete")),
    Rule("", "events", ("list",)),
    Rule("", "nodes", ("list",), namespaced=False),
    Rule(gateway.GROUP, "gateways", ("create", "get", "list", "watch", "delete")),
    Rule(gateway.GROUP, "httproutes", ("create", "get", "list", "watch", "delete")),
)


@probe("ai_inference", "discovery", test="TestKaicDiscovery/AiInference", kind="discovery")
def test_ai_inference_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: AI inference, discovery
    Description: Records the Gateway API CRDs (with their bundle version) and the GatewayClasses with their
    Accepted condition; a record, never a verdict.
    """
    require(facts, "crds", "gatewayClasses")
    evidence.add("fact", "gatewayApiCrds", crds_in(facts, "gateway.networking.k8s.io"))
    evidence.add("fact", "gatewayClasses", facts.get("gatewayClasses") or [])


def gateway_class(facts: Facts, run: RunContext, evidence: Recorder) -> str:
    """The GatewayClass to route through (gateway.choose_class); none to use is unknown (nothing to judge)."""
    require(facts, "crds", "gatewayClasses")
    chosen, how = gateway.choose_class(facts, run.settings.gateway_class)
    evidence.add("fact", "gatewayClass", {"chosen": chosen, "how": how})
    if chosen is None:
        raise Unknown(
            f"{how}: install a Gateway implementation (or name its class with --gateway-class) and run again"
        )
    return chosen["name"]


@probe(
    "ai_inference",
    "header-and-weight-routing",
    test="TestKaicAiInference/RoutesByHeaderAndWeight",
    creates=("pods", "services", f"{gateway.GROUP}/gateways", f"{gateway.GROUP}/httproutes"),
    images=("busybox",),
    rbac=GATEWAY_RBAC,
    timeout_s=900,
)
def test_header_and_weight_routing(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: AI inference, routing by header and by weight
    Description: Through a Gateway of the chosen class, every request carrying `X-Gateway-Model-Name: b` MUST
    reach backend B, and other requests MUST split between backends A and B as the route's 80/20 weights say.

    1. Choose the GatewayClass (above); no node that runs containers is unknown.
    2. Two backends, A and B, each a Service; a Gateway of that class with an HTTP listener on port 80 (as the
       Gateway API conformance suite's), and an HTTPRoute that sends the marked requests to B and splits the
       others 80/20. The Gateway must be `Programmed` with an address within 300 s (one the implementation
       marks not Accepted fails at once), and the HTTPRoute `Accepted` and `ResolvedRefs` by it within 60 s.
    3. A pod behind each Service answers with its backend's name; both must be Ready within 120 s.
    4. A client pod inside the cluster gives the route up to 60 s to answer at all and B to answer a marked
       request (a data plane may lag its status), then sends 200 plain and 20 marked requests and reports
       which backend answered each.
    5. The address must answer, every request must be answered by a backend, no marked request may reach A,
       and B's share of the answered plain requests must lie in 10–30 %.
    """
    class_name = gateway_class(facts, run, evidence)
    nodes, tolerations = workloads.container_nodes(cluster, run.settings)
    if not nodes:
        raise Unknown(
            "no Ready node runs containers, so no backend can answer and no client can send requests"
        )
    image = images.for_run(run.settings)["busybox"]
    core, routes = f"/api/v1/namespaces/{namespace}", f"{gateway.API}/namespaces/{namespace}"
    services = {name: f"kaic-backend-{name}" for name in gateway.WEIGHTS}
    for name, service in services.items():
        cluster.create(f"{core}/services", gateway.service_body(service, run.labels, {"app": service}))
    cluster.create(f"{routes}/gateways", gateway.gateway_body(run.labels, class_name))
    cluster.create(f"{routes}/httproutes", gateway.route_body(run.labels, services))
    # Cloud implementations may take minutes to program a Gateway; the pods start once it is (their deadline
    # runs).
    address = gateway.programmed_address(cluster, routes, evidence, timeout_s=300)
    gateway.parent_accepted(cluster, f"{routes}/httproutes", gateway.ROUTE, evidence, timeout_s=60)

    backends = workloads.PodWatch(cluster, namespace, "kaic.dev/role=gateway-backend")
    for name, service in services.items():
        cluster.create(
            f"{core}/pods", backend_pod(name, {**run.labels, "app": service}, image, nodes, tolerations)
        )
    if not backends.until(lambda w: sum(is_ready(p) for p in w.pods.values()) == 2, 120):
        evidence.add("object", "backend pods", {n: p.get("status") for n, p in backends.pods.items()})
        raise TimeoutError("the two backend pods were not Ready within 120s")

    clients = workloads.PodWatch(cluster, namespace, "kaic.dev/role=gateway-client")
    cluster.create(f"{core}/pods", client_pod(run.labels, image, nodes, tolerations, address))
    if not clients.until(lambda w: any(workloads.terminated(p) for p in w.pods.values()), 300):
        raise TimeoutError("the client pod did not finish its requests within 300s")
    done = next(iter(clients.pods.values()))
    state = ((done["status"].get("containerStatuses") or [{}])[0].get("state") or {}).get("terminated") or {}
    counts = gateway.parse_counts(state.get("message") or "")
    assert counts is not None, (
        f"the client pod reported no tally ({done['status'].get('phase')}): {state.get('message')!r}"
    )
    evidence.add(
        "log", "requests answered per backend", {k: vars(v) for k, v in counts.items()} or "unreachable"
    )
    found = gateway.problems(counts)
    evidence.add(
        "fact", "routing", found or "every marked request reached B; B's share of plain requests in range"
    )
    assert not found, f"GatewayClass {class_name}, Gateway address {address}: " + "; ".join(found)


def backend_pod(
    name: str, labels: dict[str, str], image: str, nodes: tuple[str, ...], tolerations: list[dict[str, str]]
) -> dict:
    container = {
        "name": "server",
        "image": image,
        "command": ["sh", "-c", gateway.backend_server(name)],
        "ports": [{"containerPort": gateway.BACKEND_PORT, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": gateway.BACKEND_PORT}, "periodSeconds": 1},
        "securityContext": workloads.RESTRICTED,
        "volumeMounts": [{"name": "www", "mountPath": "/www"}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
    }
    body = workloads.pod(
        f"backend-{name}",
        {**labels, "kaic.dev/role": "gateway-backend"},
        [container],
        nodes=nodes,
        tolerations=tolerations,
    )
    body["spec"]["volumes"] = [{"name": "www", "emptyDir": {"sizeLimit": "1Mi"}}]
    return body


def client_pod(
    labels: dict[str, str],
    image: str,
    nodes: tuple[str, ...],
    tolerations: list[dict[str, str]],
    address: str,
) -> dict:
    container = {
        "name": "client",
        "image": image,
        "command": ["sh", "-c", gateway.CLIENT],
        "env": [
            {
                "name": "GATEWAY_ADDRESS",
                "value": f"[{address}]" if ":" in address else address,
            },  # IPv6 in a URL
            {"name": "GATEWAY_PORT", "value": str(gateway.LISTENER_PORT)},
            {"name": "GATEWAY_WARMUP", "value": str(gateway.WARMUP_S)},
        ],
        "securityContext": workloads.RESTRICTED,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
    }
    return workloads.pod(
        "client",
        {**labels, "kaic.dev/role": "gateway-client"},
        [container],
        nodes=nodes,
        tolerations=tolerations,
    )
