"""The cluster's own policy, told apart from the behaviour a probe tests.

Taints kaic's pods do not tolerate, cordoned nodes, admission denials (webhooks, ValidatingAdmissionPolicies,
Pod Security), ResourceQuota and images that cannot be pulled say nothing about conformance. A probe held up
by one ends unknown (policy) or error (an image), naming the cause, as soon as the scheduler, the API server
or the kubelet says so: never failed or passed, never after the full wait. A pod the scheduler refuses for any
other reason (too few devices, an unsatisfiable claim, a gang that does not fit) is what negative probes test,
so the scheduler's refusal counts as policy only when policy alone keeps the pod off every node it could use.

The parsing here is pure; `Guard` asks the cluster, and the waits in `kaic.areas.workloads` consult it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kaic.areas.images import DEFAULTS, registry_split
from kaic.results.outcomes import ProbeError, Unknown

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_FORMS = "KEY:EFFECT or KEY=VALUE:EFFECT, EFFECT one of " + ", ".join(EFFECTS)
# Taints a node carries for its health or lifecycle (Kubernetes, cloud providers, node autoscalers): not
# policy.
LIFECYCLE_TAINTS = (
    "node.kubernetes.io/",
    "node.cloudprovider.kubernetes.io/",
    "ToBeDeletedByClusterAutoscaler",
    "DeletionCandidateOfClusterAutoscaler",
    "karpenter.sh/",
)
IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
# What the scheduler says about a node policy excludes (taint wording of 1.25 and earlier, and since).
_SCHEDULER_POLICY = re.compile(r"untolerated taint|that the pod didn't tolerate|were unschedulable")
_TOLERATION = re.compile(r"^(?P<key>[^=:\s]+)(?:=(?P<value>[^=:\s]*))?:(?P<effect>[A-Za-z]+)$")
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage", "storage")


# ---- tolerations -------------------------------------------------------------------------------------------


def parse_toleration(text: str) -> dict[str, str]:
    """`KEY[=VALUE]:EFFECT` as a pod toleration: operator Equal with a value, Exists without one."""
    match = _TOLERATION.match(text.strip())
    if not match or match["effect"] not in EFFECTS:
        raise ValueError(f"{text!r}: use {TOLERATION_FORMS}")
    if match["value"] is None:
        return {"key": match["key"], "operator": "Exists", "effect": match["effect"]}
    return {"key": match["key"], "operator": "Equal", "value": match["value"], "effect": match["effect"]}


def toleration_text(toleration: Mapping[str, str]) -> str:
    """The flag's spelling of a toleration (what `kaic plan` shows)."""
    value = f"={toleration.get('value', '')}" if toleration.get("operator", "Equal") == "Equal" else ""
    return f"{toleration.get('key', '')}{value}:{toleration.get('effect', '')}"


def taint_text(taint: Mapping[str, str]) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key', '')}{value}:{taint.get('effect', '')}"


def tolerates(toleration: Mapping[str, str], taint: Mapping[str, str]) -> bool:
    """Kubernetes' rule: effects match (an empty one matches all), then Exists matches the key (an empty key
    every key), Equal the key and value."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (
        taint.get("value") or ""
    )


def untolerated(taints: Iterable[Mapping[str, str]], tolerations: Sequence[Mapping[str, str]]) -> list[str]:
    """The policy taints that keep a pod with `tolerations` off a node (NoSchedule, NoExecute; lifecycle
    taints are not policy)."""
    return [
        taint_text(t)
        for t in taints
        if t.get("effect") in ("NoSchedule", "NoExecute")
        and not str(t.get("key", "")).startswith(LIFECYCLE_TAINTS)
        and not any(tolerates(tol, t) for tol in tolerations)
    ]


CORDONED = "cordoned"


def node_block(
    unschedulable: bool, taints: Iterable[Mapping[str, str]], tolerations: Sequence[Mapping[str, str]]
) -> list[str]:
    """What policy keeps such a pod off a node with: [CORDONED], its untolerated taints, or [] (nothing)."""
    return [CORDONED] if unschedulable else untolerated(taints, tolerations)


def describe(causes: Sequence[str]) -> str:
    return CORDONED if causes == [CORDONED] else f"taint {', '.join(causes)} not tolerated"


def remedy(causes: Iterable[str]) -> str:
    """What the user can do: the --toleration flags naming the taints, uncordoning."""
    causes = set(causes)
    taints = sorted(causes - {CORDONED})
    steps = (
        [f"pass {' '.join(f'--toleration {t}' for t in taints)} if kaic's pods may run there"]
        if taints
        else []
    )
    if CORDONED in causes:
        steps.append("cordoned nodes take no new pods: uncordon them to probe there")
    return "; ".join(steps)


# ---- the scheduler ---------------------------------------------------------------------------------------


def unschedulable_message(pod: Mapping[str, Any]) -> str:
    """The scheduler's last word on an unbound pod: PodScheduled=False, reason Unschedulable (""
    otherwise)."""
    if (pod.get("spec") or {}).get("nodeName"):
        return ""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return str(cond.get("message") or "")
    return ""


def names_policy(message: str) -> bool:
    """Whether the scheduler excluded some node for policy (a taint, a cordon)."""
    return bool(_SCHEDULER_POLICY.search(message))


def _matches(
    labels: Mapping[str, str], name: str, expressions: Iterable[Mapping[str, Any]], fields: bool
) -> bool:
    for expr in expressions:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        value = name if fields else labels.get(key)
        if fields and key != "metadata.name":
            return False
        present = value is not None
        ok = {
            "In": present and value in values,
            "NotIn": not present or value not in values,
            "Exists": present,
            "DoesNotExist": not present,
            "Gt": present and str(value).lstrip("-").isdigit() and int(str(value)) > int(values[0]),
            "Lt": present and str(value).lstrip("-").isdigit() and int(str(value)) < int(values[0]),
        }.get(op, False)
        if not ok:
            return False
    return True


def placed_on(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Whether the pod's own placement (nodeSelector, required node affinity) allows the node."""
    spec = pod.get("spec") or {}
    meta = node.get("metadata") or {}
    labels, name = meta.get("labels") or {}, meta.get("name", "")
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    return not terms or any(
        _matches(labels, name, t.get("matchExpressions") or [], False)
        and _matches(labels, name, t.get("matchFields") or [], True)
        for t in terms
    )


def _extended(pod: Mapping[str, Any]) -> set[str]:
    """Extended resources the pod's containers ask for (devices of the device-plugin path)."""
    names: set[str] = set()
    spec = pod.get("spec") or {}
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for part in ("requests", "limits"):
            names |= {
                r
                for r in ((c.get("resources") or {}).get(part) or {})
                if r not in _STANDARD_RESOURCES and not r.startswith("hugepages-")
            }
    return names


def capable(pod: Mapping[str, Any], node: Mapping[str, Any], device_nodes: set[str] | None) -> bool:
    """Whether the node offers the kind of device the pod asks for (whether enough are free is the scheduler's
    question): allocatable extended resources, or DRA devices when it has claims (`device_nodes`: nodes with a
    ResourceSlice of their own; None means every node may reach one)."""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    if any(str(allocatable.get(r, "0")) in ("0", "") for r in _extended(pod)):
        return False
    claims = (pod.get("spec") or {}).get("resourceClaims")
    return not claims or device_nodes is None or (node.get("metadata") or {}).get("name") in device_nodes


def scheduling_block(
    pod: Mapping[str, Any],
    nodes: Iterable[Mapping[str, Any]],
    device_nodes: set[str] | None,
    message: str = "",
) -> str:
    """Why the cluster's policy keeps an unbound pod off every node it could use ("" when it does not): the
    scheduler refused it naming a taint or cordon (`message`, else the pod's PodScheduled condition), and
    every node the pod's placement allows that offers what it asks for is cordoned or tainted against it.
    Nodes that lack the capability, or that the pod's own placement rules out, do not count: a pod that fits
    nowhere for lack of devices stays the probe's finding."""
    message = message or unschedulable_message(pod)
    if (pod.get("spec") or {}).get("nodeName") or not names_policy(message):
        return ""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    blocks: dict[str, list[str]] = {}
    for node in nodes:
        if placed_on(pod, node) and capable(pod, node, device_nodes):
            spec = node.get("spec") or {}
            blocks[(node.get("metadata") or {}).get("name", "")] = node_block(
                bool(spec.get("unschedulable")), spec.get("taints") or [], tolerations
            )
    if not blocks or not all(blocks.values()):
        return ""
    causes = "; ".join(f"node {name} {describe(why)}" for name, why in sorted(blocks.items()))
    # What to do comes first: a reason shortened for people keeps the flag to pass, however many nodes follow.
    return (
        f"pod {(pod.get('metadata') or {}).get('name', '')} cannot be placed because of the cluster's policy "
        f"({remedy(c for why in blocks.values() for c in why)}): {causes} (the scheduler: {message.strip()})"
    )


# ---- the kubelet -------------------------------------------------------------------------------------------


def image_key(ref: str) -> str | None:
    """The `--image` key whose default (or its mirrored copy) is `ref`; None for an image given by
    override."""
    for key, image in DEFAULTS.items():
        if ref == image.ref or ref.endswith("/" + registry_split(image.ref)[1]):
            return key
    return None


def image_problem(pod: Mapping[str, Any]) -> str:
    """A container whose image cannot be pulled (the kubelet's waiting reason and message), or ""."""
    status = pod.get("status") or {}
    for c in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in IMAGE_PULL_REASONS:
            image = c.get("image", "")
            key = image_key(image)
            mirror = (
                f"mirror it and pass --image {key}=REF or --image-mirror PREFIX"
                if key
                else "it was given with --image or --image-mirror, check that reference"
            )
            # What to do comes before the kubelet's words: a reason shortened for people keeps the flag to
            # pass.
            return (
                f"image {image} of container {c.get('name', '')} in pod "
                f"{(pod.get('metadata') or {}).get('name', '')} cannot be pulled ({mirror}): "
                f"{waiting['reason']}: {waiting.get('message', '').strip()}"
            )
    return ""


# ---- the API server ----------------------------------------------------------------------------------------

_WEBHOOK = re.compile(r'admission webhook "(?P<name>[^"]+)" denied the request:?\s*(?P<why>.*)', re.DOTALL)
_VAP = re.compile(
    r"ValidatingAdmissionPolicy '(?P<name>[^']+)'(?: with binding '(?P<binding>[^']+)')? denied request:?"
    r"\s*(?P<why>.*)",
    re.DOTALL,
)
_QUOTA = re.compile(r"exceeded quota: (?P<name>[^,]+),?\s*(?P<why>.*)", re.DOTALL)
_POD_SECURITY = re.compile(r'violates PodSecurity "(?P<level>[^"]+)":?\s*(?P<why>.*)', re.DOTALL)


def denial(message: str) -> str:
    """The admission policy an API answer names as denying a create ("" for any other answer): a webhook, a
    ValidatingAdmissionPolicy and its binding, a ResourceQuota, Pod Security admission."""
    if m := _WEBHOOK.search(message):
        return f"admission webhook {m['name']} denied it: {m['why'].strip()}"
    if m := _VAP.search(message):
        binding = f" (binding {m['binding']})" if m["binding"] else ""
        return f"ValidatingAdmissionPolicy {m['name']}{binding} denied it: {m['why'].strip()}"
    if m := _QUOTA.search(message):
        return f"ResourceQuota {m['name'].strip()} is exceeded: {m['why'].strip()}"
    if m := _POD_SECURITY.search(message):
        return f"Pod Security admission ({m['level']}) denied it: {m['why'].strip()}"
    return ""


def api_denial(exc: BaseException) -> str:
    """`denial` of a 4xx API answer (the Status body's message), "" for anything else."""
    status, body = getattr(exc, "status", None), getattr(exc, "body", None)
    if not isinstance(status, int) or not 400 <= status < 500 or not isinstance(body, str):
        return ""
    try:
        message = str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        message = body
    found = denial(message)
    return f"the cluster's policy refused kaic's request (HTTP {status}): {found}" if found else ""


# ---- asking the cluster ------------------------------------------------------------------------------------


class Guard:
    """What a wait consults on each poll or watch event: raises Unknown when policy holds kaic's pods (taints,
    cordons; admission or quota denying a controller's pod creation), ProbeError when an image cannot be
    pulled.

    Nodes are listed only when the scheduler names policy, once per distinct scheduler message; a controller's
    FailedCreate events (of `owners`: names of the Jobs, Deployments or custom objects whose pods are awaited,
    their ReplicaSets and Jobs named after them) are read at most every `EVENTS_EVERY_S`.
    """

    EVENTS_EVERY_S = 5.0

    def __init__(self, cluster: Any, namespace: str, owners: Sequence[str] = ()) -> None:
        self.cluster, self.namespace, self.owners = cluster, namespace, tuple(owners)
        self._judged: dict[tuple[str, str], str] = {}  # (pod, scheduler message) -> cause
        self._events_at = 0.0

    def pod(self, pod: Mapping[str, Any], refusal: str = "") -> None:
        """Raise if policy or an image holds this pod; `refusal`: a FailedScheduling message to judge instead
        of the pod's condition (a negative probe's evidence)."""
        if problem := image_problem(pod):
            raise ProbeError(problem)
        message = refusal or unschedulable_message(pod)
        if not names_policy(message):
            return
        key = ((pod.get("metadata") or {}).get("name", ""), message)
        if key not in self._judged:
            nodes = list(self.cluster.list("/api/v1/nodes"))
            self._judged[key] = scheduling_block(pod, nodes, self._device_nodes(pod), message)
        if self._judged[key]:
            raise Unknown(self._judged[key])

    def _device_nodes(self, pod: Mapping[str, Any]) -> set[str] | None:
        """Nodes with a ResourceSlice of their own, for a pod with claims; None when slices may serve any
        node."""
        if not (pod.get("spec") or {}).get("resourceClaims"):
            return None
        from kaic.areas.workloads import DRA

        found = set()
        for rs in self.cluster.list(f"{DRA}/resourceslices"):
            if not (node := (rs.get("spec") or {}).get("nodeName")):
                return None  # a slice for all nodes or a node selector: any node may hold such a device
            found.add(node)
        return found

    def creations(self) -> None:
        """A controller refused, by policy, the pods of one of `owners` (read at most every
        EVENTS_EVERY_S)."""
        if not self.owners or time.monotonic() - self._events_at < self.EVENTS_EVERY_S:
            return
        self._events_at = time.monotonic()
        path = f"/api/v1/namespaces/{self.namespace}/events"
        for event in self.cluster.list(path, fieldSelector="reason=FailedCreate"):
            owner = (event.get("involvedObject") or {}).get("name", "")
            mine = any(owner == o or owner.startswith(f"{o}-") for o in self.owners)
            if mine and (found := denial(event.get("message") or "")):
                raise Unknown(f"the cluster's policy refused the pods of {owner}: {found}")

    def pods(self, pods: Iterable[Mapping[str, Any]]) -> None:
        for pod in pods:
            self.pod(pod)
        self.creations()
