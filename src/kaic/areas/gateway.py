"""Gateway API for inference: the objects the ai_inference probe routes through, and how its counts are
judged.

Two backends answer with their own name. One HTTPRoute sends requests that carry `X-Gateway-Model-Name: b` (an
OpenAI-style model header) to B and splits all others 80/20 between A and B. A client pod inside the cluster
sends PLAIN plain and MARKED marked requests to the Gateway's address and reports which backend answered each,
so the verdict below needs no cluster: any marked request answered by A, B's share of plain requests outside
10–30 % (3.5 standard deviations either side of 20 % for 200 requests), or a request no backend answered,
fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kaic.kube.conditions import condition
from kaic.results.outcomes import ProbeError

if TYPE_CHECKING:
    from kaic.kube.client import Cluster
    from kaic.results.report import Recorder

GROUP = "gateway.networking.k8s.io"
API = f"/apis/{GROUP}/v1"
CRDS = tuple(f"{plural}.{GROUP}" for plural in ("gatewayclasses", "gateways", "httproutes"))
HEADER = "X-Gateway-Model-Name"
MARK = "b"
WEIGHTS = {"a": 80, "b": 20}
PLAIN, MARKED = 200, 20
B_SHARE = (0.10, 0.30)
# The port of the probe's listener: the Gateway API conformance suite's Gateways listen on 80 too.
LISTENER_PORT = 80
BACKEND_PORT = 8080
GATEWAY = "kaic-inference"
ROUTE = "kaic-inference"
RESULT = "kaic-gateway-counts"
WARMUP_S = 60  # tries, a second apart, the client gives the route to answer at all and B to answer
_LINE = re.compile(r"^(plain|marked) a=(\d+) b=(\d+) failed=(\d+)$")

# The client: wait (bounded: $GATEWAY_WARMUP tries a second apart) until the route answers at all, then till B
# answers a marked request, as a data plane may learn of a route, and of each backend's endpoints, a moment
# after its status says so (the Gateway API conformance suite waits for consistent answers too). Then count
# which backend answered each request, whatever the warm-up ended with; the tally goes to the termination
# message (no exec needed). An address that never answers is reported as such instead of timing out request by
# request. (`timeout`, since Debian's static busybox 1.35 wget crashes on its own -T.)
CLIENT = (
    r"""set -u
url="http://$GATEWAY_ADDRESS:$GATEWAY_PORT/"
ask() { timeout 5 wget -q -O - "$@" "$url" 2>/dev/null; }
tries=0
until ask >/dev/null; do
  tries=$((tries+1))
  if [ "$tries" -ge "$GATEWAY_WARMUP" ]; then
    printf 'RESULT\nunreachable\n' | tee /dev/termination-log; exit 0
  fi
  sleep 1
done
until [ "$(ask --header "HEADER: MARK")" = backend-b ] || [ "$tries" -ge "$GATEWAY_WARMUP" ]; do
  tries=$((tries+1))
  sleep 1
done
tally() {
  kind=$1; n=$2; shift 2; a=0; b=0; failed=0; i=0
  while [ "$i" -lt "$n" ]; do
    case "$(ask "$@")" in backend-a) a=$((a+1));; backend-b) b=$((b+1));; *) failed=$((failed+1));; esac
    i=$((i+1))
  done
  echo "$kind a=$a b=$b failed=$failed"
}
{ echo RESULT; tally plain PLAIN; tally marked MARKED --header "HEADER: MARK"; } | tee /dev/termination-log
""".replace("RESULT", RESULT)
    .replace("PLAIN", str(PLAIN))
    .replace("MARKED", str(MARKED))
    .replace("HEADER", HEADER)
    .replace("MARK", MARK)
)


def backend_server(name: str) -> str:
    """busybox httpd answering every GET of / with `backend-<name>`."""
    return (
        f"mkdir -p /www && echo backend-{name} > /www/index.html && exec httpd -f -p {BACKEND_PORT} -h /www"
    )


@dataclass(frozen=True)
class Counts:
    """Which backend answered the requests of one kind."""

    a: int
    b: int
    failed: int

    @property
    def total(self) -> int:
        return self.a + self.b + self.failed


def parse_counts(text: str) -> dict[str, Counts] | None:
    """The client's tally ("plain a=160 b=40 failed=0", then "marked ...") after its marker; {} when the
    Gateway's address never answered; None when the client reported nothing usable."""
    lines = [line.strip() for line in text.splitlines()]
    if RESULT not in lines:
        return None
    rest = lines[lines.index(RESULT) + 1 :]
    if rest[:1] == ["unreachable"]:
        return {}
    found = {}
    for line in rest:
        if match := _LINE.match(line):
            found[match[1]] = Counts(*(int(g) for g in match.groups()[1:]))
    return found if set(found) == {"plain", "marked"} else None


def problems(counts: Mapping[str, Counts]) -> list[str]:
    """What the tally shows to be wrong; empty when header routing and the weighted split both held."""
    if not counts:
        return [f"the Gateway's address answered none of {WARMUP_S} requests a second apart"]
    plain, marked = counts["plain"], counts["marked"]
    found = []
    if marked.a:
        found.append(f"{marked.a} of {marked.total} requests with {HEADER}: {MARK} reached backend A")
    for kind, seen in counts.items():
        if seen.failed:
            found.append(f"{seen.failed} of {seen.total} {kind} requests got no answer from either backend")
    answered = plain.a + plain.b
    low, high = B_SHARE
    if answered and not low <= plain.b / answered <= high:
        found.append(
            f"backend B answered {plain.b} of {answered} plain requests ({plain.b / answered:.0%}), "
            f"outside {low:.0%}–{high:.0%} for an {WEIGHTS['a']}/{WEIGHTS['b']} split"
        )
    return found


def choose_class(facts: Mapping[str, Any], wanted: str | None) -> tuple[dict[str, Any] | None, str]:
    """The GatewayClass every Gateway probe routes through, with how it was chosen: the one named by
    --gateway-class if Accepted, else the first Accepted one by name. None (with the reason, for the probe's
    unknown) when the Gateway API CRDs are not Established at v1 or no usable class exists; a named class that
    does not exist is bad input (ProbeError naming it and the classes found), whichever probe asks."""
    crds = facts.get("crds") or {}
    missing = [n for n in CRDS if not (crds.get(n, {}).get("established") and "v1" in crds[n]["versions"])]
    if missing:
        return None, f"the Gateway API CRDs {', '.join(missing)} are not installed and Established at v1"
    classes = facts.get("gatewayClasses") or []
    if wanted:
        named = next((c for c in classes if c["name"] == wanted), None)
        if named is None:
            raise ProbeError(f"--gateway-class {wanted} names no GatewayClass (found: {_names(classes)})")
        if not named["accepted"]:
            return None, f"GatewayClass {wanted} (controller {named['controllerName']}) is not Accepted"
        return named, f"named by --gateway-class: {wanted} (controller {named['controllerName']})"
    accepted = sorted((c for c in classes if c["accepted"]), key=lambda c: c["name"])
    if not accepted:
        return None, f"no GatewayClass is Accepted (found: {_names(classes)})"
    first = accepted[0]
    return first, f"the first Accepted GatewayClass: {first['name']} (controller {first['controllerName']})"


def _names(classes: list[dict[str, Any]]) -> str:
    return (
        ", ".join(f"{c['name']} ({'Accepted' if c['accepted'] else 'not Accepted'})" for c in classes)
        or "none"
    )


def rejected(obj: Mapping[str, Any]) -> bool:
    """The implementation marked the object's current generation not Accepted."""
    generation = (obj.get("metadata") or {}).get("generation")
    return any(
        c.get("type") == "Accepted"
        and c.get("status") == "False"
        and c.get("observedGeneration") == generation
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def route_parent(route: Mapping[str, Any], gateway: str) -> dict[str, Any]:
    """The route's status for one parent Gateway (empty until the implementation writes it)."""
    parents = (route.get("status") or {}).get("parents") or []
    return next((p for p in parents if (p.get("parentRef") or {}).get("name") == gateway), {})


def gateway_body(labels: Mapping[str, str], gateway_class: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gateway",
        "metadata": {"name": GATEWAY, "labels": dict(labels)},
        "spec": {
            "gatewayClassName": gateway_class,
            "listeners": [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "port": LISTENER_PORT,
                    "allowedRoutes": {"namespaces": {"from": "Same"}},
                }
            ],
        },
    }


def route_body(labels: Mapping[str, str], services: Mapping[str, str]) -> dict[str, Any]:
    """Header match to B first; the default rule splits by WEIGHTS (both are Core Gateway API features)."""

    def ref(backend: str, weight: int | None = None) -> dict[str, Any]:
        return {
            "name": services[backend],
            "port": BACKEND_PORT,
            **({"weight": weight} if weight is not None else {}),
        }

    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ROUTE, "labels": dict(labels)},
        "spec": {
            "parentRefs": [{"name": GATEWAY}],
            "rules": [
                {
                    "matches": [{"headers": [{"type": "Exact", "name": HEADER, "value": MARK}]}],
                    "backendRefs": [ref("b")],
                },
                {"backendRefs": [ref(name, weight) for name, weight in WEIGHTS.items()]},
            ],
        },
    }


def service_body(name: str, labels: Mapping[str, str], selector: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "selector": dict(selector),
            "ports": [{"name": "http", "port": BACKEND_PORT, "targetPort": BACKEND_PORT}],
        },
    }


def programmed_address(cluster: Cluster, base: str, evidence: Recorder, timeout_s: float) -> str:
    """Watch the probe's Gateway under `base` (its namespace's gateway.networking.k8s.io/v1 path) until it is
    Programmed with an address. Never Programmed is a failure, and so is an implementation that marks the
    current generation not Accepted (it has said it will not program it)."""
    status: dict[str, Any] = {}
    for _, obj in cluster.watch(f"{base}/gateways", timeout_s, fieldSelector=f"metadata.name={GATEWAY}"):
        status = obj.get("status") or {}
        if (condition(status, "Programmed") == "True" and status.get("addresses")) or rejected(obj):
            break
    evidence.add("object", "gateway status", status)
    listeners = "; ".join(f"{item.get('name')}: {conditions(item)}" for item in status.get("listeners") or [])
    assert condition(status, "Programmed") == "True", (
        f"Gateway {GATEWAY} (listener HTTP :{LISTENER_PORT}) was not Programmed (waited up to "
        f"{timeout_s:.0f}s): {conditions(status)}; listeners: {listeners or 'none'}"
    )
    assert status.get("addresses"), f"Gateway {GATEWAY} is Programmed but publishes no address"
    return str(status["addresses"][0]["value"])


def parent_accepted(
    cluster: Cluster, collection: str, name: str, evidence: Recorder, timeout_s: float
) -> None:
    """Watch a route (or an InferencePool) until its status for the probe's Gateway reports Accepted and
    ResolvedRefs."""
    parent: dict[str, Any] = {}
    for _, obj in cluster.watch(collection, timeout_s, fieldSelector=f"metadata.name={name}"):
        parent = route_parent(obj, GATEWAY)
        if all(condition(parent, kind) == "True" for kind in ("Accepted", "ResolvedRefs")):
            break
    evidence.add("object", f"{name} parent status", parent)
    for kind in ("Accepted", "ResolvedRefs"):
        assert condition(parent, kind) == "True", (
            f"{collection.rsplit('/', 1)[-1]} {name} is not {kind} by Gateway {GATEWAY} within "
            f"{timeout_s:.0f}s: {conditions(parent) if parent else 'no status from the implementation'}"
        )


def conditions(status: Mapping[str, Any]) -> str:
    return (
        ", ".join(
            f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})"
            for c in status.get("conditions") or []
        )
        or "no conditions"
    )
