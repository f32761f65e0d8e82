"""Inference serving: the in-cluster client both inference probes run, and how their results are judged.

The client is a Python script in a pod (traffic must come from inside the cluster): it sends OpenAI-style
completion requests and prints, between markers, each answer's status, the `x-inference-pod` header a model
server sets (llm-d-inference-sim sets it from POD_NAME) and the `x-request-id` it sent. Each prompt starts
with its request id, so no prefix-cache affinity ties the requests to the server that answered the first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from kaic.areas import workloads
from kaic.kube.client import Cluster
from kaic.results.report import Recorder

BEGIN, END = "KAIC-INFERENCE-BEGIN", "KAIC-INFERENCE-END"
POOL_GROUP = "inference.networking.k8s.io"
POOL_CRD = f"inferencepools.{POOL_GROUP}"
# The gauge the endpoint picker reads by default, and what the sim publishes it from (--fake-metrics).
KV_CACHE_SKEWED, KV_CACHE_IDLE = 0.95, 0.05
ROLE_LABEL = "llm-d.ai/role"
DEFAULT_ROLES = {"prefill": f"{ROLE_LABEL}=prefill", "decode": f"{ROLE_LABEL}=decode"}

CLIENT = f"""
import json, os, urllib.request, urllib.error
base = os.environ["TARGET"].rstrip("/")
model = os.environ.get("MODEL", "")
if not model:
    try:
        with urllib.request.urlopen(base + "/v1/models", timeout=20) as r:
            model = json.load(r)["data"][0]["id"]
    except Exception as e:
        model = "unknown"
results = []
for i in range(int(os.environ.get("COUNT", "1"))):
    rid = os.environ.get("REQUEST_ID", "") or "kaic-%d" % i
    body = json.dumps({{"model": model, "prompt": rid + " kaic probe", "max_tokens": 2}}).encode()
    req = urllib.request.Request(base + "/v1/completions", body,
        {{"Content-Type": "application/json", "x-request-id": rid}})
    item = {{"requestId": rid}}
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            item.update(status=r.status, pod=r.headers.get("x-inference-pod"))
    except urllib.error.HTTPError as e:
        item.update(status=e.code, pod=e.headers.get("x-inference-pod"))
    except Exception as e:
        item.update(status=0, error=repr(e))
    results.append(item)
print("{BEGIN}")
print(json.dumps({{"model": model, "results": results}}))
print("{END}")
"""


@dataclass(frozen=True)
class Answer:
    status: int
    pod: str | None
    request_id: str
    error: str = ""


def parse_client(log: str) -> tuple[str, list[Answer]] | None:
    """(model, answers) from the client's log; None when it printed no result."""
    if BEGIN not in log:
        return None
    try:
        data = json.loads(log.split(BEGIN, 1)[1].split(END, 1)[0])
        answers = [
            Answer(int(r["status"]), r.get("pod"), str(r["requestId"]), r.get("error", ""))
            for r in data["results"]
        ]
    except (ValueError, KeyError, TypeError):
        return None
    return str(data.get("model", "")), answers


def pool_version(crds: Mapping[str, Any]) -> str | None:
    """'v1' when the InferencePool CRD serves it (the GA API), else None."""
    crd = crds.get(POOL_CRD)
    return "v1" if crd and crd.get("established") and "v1" in crd.get("versions", []) else None


def picker_problems(answers: list[Answer], skewed: str, pods: Iterable[str]) -> list[str]:
    """What the endpoint picker got wrong: failed requests, answers from no pool member, or the pod whose
    KV cache is full chosen at all."""
    pods = set(pods)
    problems = []
    if failed := [a for a in answers if a.status != 200]:
        problems.append(f"{len(failed)} of {len(answers)} requests failed (e.g. {_answer(failed[0])})")
    if strangers := sorted({str(a.pod) for a in answers if a.status == 200 and a.pod not in pods}):
        problems.append(f"answered by no pool member: {', '.join(strangers)}")
    if chosen := sum(1 for a in answers if a.pod == skewed):
        problems.append(
            f"the picker sent {chosen} of {len(answers)} requests to {skewed}, whose KV cache is "
            f"{KV_CACHE_SKEWED:.0%} full (the others {KV_CACHE_IDLE:.0%})"
        )
    return problems


def spread(answers: Iterable[Answer]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in answers:
        counts[str(a.pod)] = counts.get(str(a.pod), 0) + 1
    return dict(sorted(counts.items()))


def _answer(a: Answer) -> str:
    return f"status {a.status}" + (f": {a.error}" if a.error else "")


def suite_result(report_text: str) -> tuple[bool, str]:
    """Judge a GAIE/Gateway API ConformanceReport: every profile's core result must be success."""
    try:
        report = yaml.safe_load(report_text) or {}
    except yaml.YAMLError as exc:
        return False, f"unreadable conformance report: {exc}"
    profiles = report.get("profiles") or []
    if not profiles:
        return False, "the conformance report lists no profile"
    lines, ok = [], True
    for p in profiles:
        core = p.get("core") or {}
        stats = core.get("statistics") or {}
        ok &= core.get("result") == "success"
        lines.append(
            f"{p.get('name', '?')}: {core.get('result', 'no result')} (passed {stats.get('Passed', 0)}, "
            f"failed {stats.get('Failed', 0)}, skipped {stats.get('Skipped', 0)})"
        )
    return ok, "; ".join(lines)


def parse_roles(pairs: Mapping[str, str] | None) -> dict[str, str]:
    """Role name -> label selector (--disaggregated-role NAME=SELECTOR); the llm-d roles by default."""
    return dict(pairs) if pairs else dict(DEFAULT_ROLES)


def running(pods: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted(
        p["metadata"]["name"]
        for p in pods
        if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    )


def mentions(log: str, request_id: str) -> bool:
    """Whether a log names the request id as a whole token (an id that prefixes another does not count)."""
    start = 0
    while (at := log.find(request_id, start)) >= 0:
        end = at + len(request_id)
        before, after = log[at - 1 : at] if at else "", log[end : end + 1]
        if not _id_char(before) and not _id_char(after):
            return True
        start = at + 1
    return False


def _id_char(c: str) -> bool:
    return bool(c) and (c.isalnum() or c in "-_")


def role_problems(pods_by_role: Mapping[str, list[str]]) -> list[str]:
    return [f"role {role} has no Running pod" for role, pods in pods_by_role.items() if not pods]


def trace_problems(
    answer: Answer | None, seen_by_role: Mapping[str, list[str]], request_id: str
) -> list[str]:
    """The request must be answered 200 and its id logged by at least one pod of every role."""
    if answer is None:
        return ["the client pod reported no answer"]
    problems = [] if answer.status == 200 else [f"the request {request_id} got {_answer(answer)}"]
    problems += [
        f"no {role} pod logged request {request_id}" for role, pods in seen_by_role.items() if not pods
    ]
    return problems


def client_pod(
    name: str,
    labels: Mapping[str, str],
    image: str,
    env: Mapping[str, str],
    nodes: tuple[str, ...],
    tolerations: list[dict[str, str]],
) -> dict[str, Any]:
    container = {
        "name": "client",
        "image": image,
        "command": ["python", "-c", CLIENT],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "securityContext": workloads.RESTRICTED,
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
    }
    return workloads.pod(name, labels, [container], nodes=nodes, tolerations=tolerations)


def ask(
    cluster: Cluster, namespace: str, body: dict[str, Any], evidence: Recorder, timeout_s: float = 240
) -> tuple[str, list[Answer]]:
    """Run the client pod to the end and return what it reported; a client that reports nothing fails."""
    name = body["metadata"]["name"]
    cluster.create(workloads.pods_path(namespace), body)
    done = workloads.wait_for(
        cluster,
        workloads.pods_path(namespace, name),
        lambda p: p if workloads.terminated(p) else None,
        timeout_s,
        f"client pod {name} finished",
        evidence,
    )
    log = workloads.pod_log(cluster, namespace, name)
    evidence.add("log", f"client {name}", log[-4000:])
    parsed = parse_client(log)
    assert parsed is not None, f"client pod {name} reported nothing ({done['status'].get('phase')})"
    return parsed
