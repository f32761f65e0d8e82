"""Workload sandboxing: a pod of the sandbox runtime, compared with a plain control pod on the same node.

Proves `workload_sandboxing`: workloads can run in a sandbox that keeps them apart from the host kernel.

Every behavioural probe first chooses the RuntimeClass: `--sandbox-runtime-class`, else the first (by name)
whose name or handler contains `gvisor`, `runsc`, `kata`, `sandboxed`, `quark` or `krun`. None and no
`agents.x-k8s.io` API: not-applicable, with that trail; the agent-sandbox API served but no such class:
unknown; a named class that does not exist: error.
"""

from __future__ import annotations

from kaic.areas import images, sandboxing, workloads
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

RBAC = (
    Rule("", "pods", ("create", "get", "list", "delete")),
    Rule("", "events", ("list",)),
    Rule("", "nodes", ("get", "list"), namespaced=False),
    Rule("node.k8s.io", "runtimeclasses", ("list",), namespaced=False),
)


@probe("workload_sandboxing", "discovery", test="TestKaicDiscovery/WorkloadSandboxing", kind="discovery")
def test_workload_sandboxing_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Workload sandboxing, discovery
    Description: Records the RuntimeClasses whose name or handler names a sandbox runtime and the
    agent-sandbox API's CRDs; a record, never a verdict.
    """
    require(facts, "runtimeClasses", "crds")
    evidence.add(
        "fact", "sandboxRuntimeClasses", [rc for rc in facts["runtimeClasses"] if sandboxing.is_sandbox(rc)]
    )
    evidence.add("fact", "agentSandboxCrds", crds_in(facts, sandboxing.AGENT_SANDBOX_GROUP))


def runtime_class(facts: Facts, run: RunContext, evidence: Recorder) -> str:
    """The RuntimeClass to judge; none means the requirement's context is absent (not-applicable, with the
    trail)."""
    require(facts, "runtimeClasses", "crds")
    wanted = run.settings.sandbox_runtime_class
    chosen, trail = sandboxing.choose_runtime_class(facts["runtimeClasses"], wanted)
    agent_crds = sorted(crds_in(facts, sandboxing.AGENT_SANDBOX_GROUP))
    evidence.add("fact", "sandboxRuntime", {"chosen": chosen, "how": trail, "agentSandboxCrds": agent_crds})
    if chosen is not None:
        return chosen["name"]
    if wanted:
        raise ProbeError(trail)
    if agent_crds:
        raise Unknown(
            f"the agent-sandbox API is served ({', '.join(agent_crds)}) but {trail}: name the "
            "RuntimeClass its sandboxes run with --sandbox-runtime-class"
        )
    raise NotApplicable(f"{trail}; no {sandboxing.AGENT_SANDBOX_GROUP} CRD is installed")


def run_view(
    cluster: Cluster, namespace: str, run: RunContext, body: dict, evidence: Recorder, label: str
) -> tuple[str, sandboxing.View]:
    """Run one report pod to the end; its node and what it saw. A pod that reports nothing fails the probe."""
    placed = workloads.place(cluster, namespace, body, evidence, run.settings.schedule_timeout_s)
    done = workloads.observe(cluster, namespace, placed, "", evidence)
    status = (done["status"].get("containerStatuses") or [{}])[0]
    message = ((status.get("state") or {}).get("terminated") or {}).get("message") or ""
    view = sandboxing.parse_view(message)
    assert view is not None, (
        f"the {label} pod on {placed.node} reported nothing ({done['status'].get('phase')})"
    )
    evidence.add("log", label, {"node": placed.node, **sandboxing.as_evidence(view)})
    return placed.node, view


def report_pod(
    name: str,
    run: RunContext,
    image: str,
    nodes: tuple[str, ...],
    tolerations: list[dict[str, str]],
    runtime_class: str | None = None,
) -> dict:
    container = {
        "name": "report",
        "image": image,
        "command": ["sh", "-c", sandboxing.SCRIPT],
        "securityContext": workloads.RESTRICTED,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
    }
    return workloads.pod(
        name, run.labels, [container], nodes=nodes, tolerations=tolerations, runtime_class=runtime_class
    )


@probe(
    "workload_sandboxing",
    "isolated-from-host",
    test="TestKaicWorkloadSandboxing/IsolatedFromHost",
    creates=("pods",),
    images=("busybox",),
    rbac=RBAC,
    timeout_s=600,
)
def test_isolated_from_host(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Workload sandboxing, isolated from the host
    Description: A pod of the sandbox RuntimeClass MUST have its own kernel and boot_id and MUST NOT see host
    processes, `/dev/mem`, host paths or host network interfaces, where a plain pod on the same node does.

    1. Choose the RuntimeClass (above).
    2. A pod of that RuntimeClass runs and reports what it sees; then a control pod without a RuntimeClass
       does the same on the same node. No node that runs containers: unknown; a pod that reports nothing
       fails.
    3. The sandboxed pod's kernel and boot_id must differ from the control pod's, and it must see none of the
       host's processes, `/dev/mem`, host paths or host interfaces.
    """
    name = runtime_class(facts, run, evidence)
    nodes, tolerations = workloads.container_nodes(cluster, run.settings)
    if not nodes:
        raise Unknown(f"no Ready node runs containers, so a {name} pod cannot be observed")
    image = images.for_run(run.settings)["busybox"]
    node, sandboxed = run_view(
        cluster,
        namespace,
        run,
        report_pod("sandboxed", run, image, nodes, tolerations, name),
        evidence,
        f"sandboxed ({name})",
    )
    _, control = run_view(
        cluster,
        namespace,
        run,
        report_pod("control", run, image, (node,), tolerations),
        evidence,
        "control (no RuntimeClass)",
    )
    found = sandboxing.problems(sandboxed, control)
    evidence.add("fact", "isolation", {check: items or "isolated" for check, items in found.items()})
    assert not (wrong := sandboxing.summary(found)), f"RuntimeClass {name}: {wrong}"
