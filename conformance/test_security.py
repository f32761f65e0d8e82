"""Security: isolated accelerator access (workload sandboxing: test_sandboxing.py).

Proves `secure_accelerator_access`: a container sees only the accelerators allocated to it.

`positive-access`, `negative-isolation` and `multi-container-isolation` are upstream's tests of those names;
`disjoint-devices` and `requestless-leaks` are kaic's own.

Every behavioural probe first chooses one accelerator profile and allocation path (`--accelerator-profile`,
`--allocation-mode`): no accelerator, or none kaic recognises, is unknown. Each places its pods through the
API (binding, allocation and reservation are always checked); what a container sees needs a node that runs
containers, and on one that runs none the probe is unknown, naming what the API proved, unless its steps say
otherwise.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kaic.areas import accelerators, images, workloads
from kaic.kube.facts import slice_nodes
from kaic.probe import Cluster, Facts, NotApplicable, Recorder, RunContext, Unknown, probe, require


@probe(
    "secure_accelerator_access",
    "discovery",
    test="TestKaicDiscovery/SecureAcceleratorAccess",
    kind="discovery",
)
def test_secure_accelerator_access_discovery(facts: Facts, evidence: Recorder) -> None:
    """Testname: Secure accelerator access, discovery
    Description: Records where accelerators are: the nodes with extended resources (and which) and the nodes
    that ResourceSlices name; a record, never a verdict.
    """
    require(facts, "nodes", "resourceSlices")
    evidence.add(
        "fact",
        "acceleratorNodes",
        {
            "extendedResource": {
                n["name"]: n["extendedResources"] for n in facts["nodes"]["withExtendedResources"]
            },
            "resourceSlice": sorted(slice_nodes(facts)),
        },
    )


# ---- behavioural probes: secure accelerator access ---------------------------------------------------------

ACCESS: dict[str, Any] = {
    "consumes": ("devices",),
    "creates": workloads.CREATES,
    "images": ("ubuntu",),
    "rbac": workloads.RBAC,
    "timeout_s": 600,
}


def accelerator(
    cluster: Cluster, facts: Facts, run: RunContext, evidence: Recorder
) -> accelerators.Selection:
    """The detected profile and path; no accelerator anywhere means isolation cannot be exercised
    (unknown)."""
    require(facts, "nodes", "resourceSlices", "deviceClasses")
    selection = accelerators.select(facts, run.settings)
    evidence.add("fact", "acceleratorSelection", selection.found)
    return selection


def run_identity_pods(
    cluster: Cluster,
    namespace: str,
    run: RunContext,
    evidence: Recorder,
    selection: accelerators.Selection,
    pods: dict[str, dict[str, Any]],
) -> dict[str, dict[str, accelerators.DeviceReport]]:
    """Place every pod, then read each container's report: {pod: {container: DeviceReport}}.

    The API part (binding, allocation, reservation) always runs; a node that runs no containers ends the probe
    as unknown, naming what the API proved."""
    placed = {
        name: workloads.place(cluster, namespace, body, evidence, run.settings.schedule_timeout_s)
        for name, body in pods.items()
    }
    proved = "; ".join(
        f"{name} bound to {p.node}" + (f" with {p.devices()}" if p.claims else "")
        for name, p in placed.items()
    )
    reports = {}
    for name, placement in placed.items():
        done = workloads.observe(cluster, namespace, placement, f"the API shows: {proved}", evidence)
        reports[name] = {
            c["name"]: workloads.container_report(done, c["name"]) for c in done["spec"]["containers"]
        }
        evidence.add("log", name, {c: dataclasses.asdict(r) for c, r in reports[name].items()})
    return reports


@probe(
    "secure_accelerator_access",
    "positive-access",
    test="TestSecureAcceleratorAccess/PositiveAccessTest",
    **ACCESS,
)
def test_positive_access(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Secure accelerator access, the allocated device and only it
    Description: A container allocated one accelerator MUST see exactly one device, the allocated one.

    1. Choose the profile and path (above).
    2. A pod whose one container holds one device (from a claim template on the DRA path, else the extended
       resource) is placed; on the DRA path the identities of its allocated devices are read from the node's
       ResourceSlices (an allocated device they do not publish fails).
    3. The container must see exactly one device and, where its identity is known, the allocated one.
    """
    selection = accelerator(cluster, facts, run, evidence)
    template = workloads.device_template(cluster, namespace, run.labels, selection)
    image = images.for_run(run.settings)["ubuntu"]
    body = workloads.identity_pod("positive", run.labels, selection, image, {"main": True}, template=template)
    placed = workloads.place(cluster, namespace, body, evidence, run.settings.schedule_timeout_s)
    identities = workloads.allocated_identities(cluster, placed, selection.profile)
    done = workloads.observe(
        cluster, namespace, placed, f"the API allocated {', '.join(identities) or 'one device'}", evidence
    )
    report = workloads.container_report(done, "main")
    evidence.add("log", "positive/main", dataclasses.asdict(report))
    assert not (wrong := report.problems(selection.profile, 1, identities)), wrong


@probe(
    "secure_accelerator_access",
    "negative-isolation",
    test="TestSecureAcceleratorAccess/NegativeIsolationTest",
    **ACCESS,
)
def test_negative_isolation(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Secure accelerator access, no request sees none
    Description: A container on an accelerator node that requested no accelerator MUST NOT see any.

    1. Choose the profile and path (above).
    2. A pod on the accelerator nodes whose one container requests no device is placed.
    3. Its container must see no device.
    """
    selection = accelerator(cluster, facts, run, evidence)
    image = images.for_run(run.settings)["ubuntu"]
    pods = {"no-request": workloads.identity_pod("no-request", run.labels, selection, image, {"main": False})}
    report = run_identity_pods(cluster, namespace, run, evidence, selection, pods)["no-request"]["main"]
    assert not (wrong := report.problems(selection.profile, 0)), wrong


@probe(
    "secure_accelerator_access",
    "multi-container-isolation",
    test="TestSecureAcceleratorAccess/MultiContainerIsolationTest",
    **ACCESS,
)
def test_multi_container_isolation(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Secure accelerator access, only the container given the device sees it
    Description: In one pod, the container given an accelerator MUST see exactly one device, and its sibling
    that requested none MUST NOT see any.

    1. Choose the profile and path (above).
    2. A pod of two containers, one holding one device and one holding none, is placed.
    3. The first container must see exactly one device, the second none.
    """
    selection = accelerator(cluster, facts, run, evidence)
    template = workloads.device_template(cluster, namespace, run.labels, selection)
    image = images.for_run(run.settings)["ubuntu"]
    body = workloads.identity_pod(
        "two-containers",
        run.labels,
        selection,
        image,
        {"with-device": True, "without-device": False},
        template=template,
    )
    reports = run_identity_pods(cluster, namespace, run, evidence, selection, {"two-containers": body})
    assert not (wrong := reports["two-containers"]["with-device"].problems(selection.profile, 1)), wrong
    assert not (wrong := reports["two-containers"]["without-device"].problems(selection.profile, 0)), wrong


@probe(
    "secure_accelerator_access",
    "disjoint-devices",
    test="TestKaicSecureAcceleratorAccess/DisjointDevices",
    **ACCESS,
)
def test_disjoint_devices(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Secure accelerator access, two pods get different devices
    Description: Two pods on one node holding one device each MUST get different devices: in the API's
    allocation results, and in what their containers see where the node runs containers.

    1. Choose the profile and path (above); no node offering two devices on that path is unknown.
    2. Two pods, each holding one device, are placed on the first node offering two, and both must be bound
       there.
    3. On the DRA path each claim must hold one device, and not the same one.
    4. Where the node runs containers, each container must see exactly one device, and the two containers
       different ones. A node that runs none is a warning on the DRA path (the API has shown the devices
       differ) and unknown on the device-plugin path, whose allocations carry no identity in the API.
    """
    selection = accelerator(cluster, facts, run, evidence)
    per_node = selection.found["option"]["devicesPerNode"]
    node = next((n for n in selection.nodes if per_node[n] >= 2), None)
    if node is None:
        raise Unknown(f"no node offers two devices on the {selection.path} path ({per_node})")
    template = workloads.device_template(cluster, namespace, run.labels, selection)
    image = images.for_run(run.settings)["ubuntu"]
    placed = [
        workloads.place(
            cluster,
            namespace,
            workloads.identity_pod(
                name, run.labels, selection, image, {"main": True}, template=template, nodes=(node,)
            ),
            evidence,
            run.settings.schedule_timeout_s,
        )
        for name in ("first", "second")
    ]
    assert {p.node for p in placed} == {node}, f"pods landed on {[p.node for p in placed]}, not only {node}"
    if selection.path == "dra":
        first, second = (set(p.devices()) for p in placed)
        evidence.add("fact", "allocations", {"first": sorted(first), "second": sorted(second)})
        assert len(first) == len(second) == 1 and not first & second, f"shared devices: {first & second}"
    if not workloads.runs_containers(cluster, node):
        if selection.path == "dra":
            evidence.warn(f"node {node} runs no containers: in-container identities not compared")
            return
        raise Unknown(
            f"node {node} runs no containers and device-plugin allocations carry no identity in the API"
        )
    seen = [
        workloads.container_report(workloads.observe(cluster, namespace, p, "", evidence), "main")
        for p in placed
    ]
    evidence.add("log", "identities", [dataclasses.asdict(r) for r in seen])
    for report in seen:
        assert not (wrong := report.problems(selection.profile, 1)), wrong
    assert not set(seen[0].ids) & set(seen[1].ids), (
        f"both containers see {set(seen[0].ids) & set(seen[1].ids)}"
    )


@probe(
    "secure_accelerator_access",
    "requestless-leaks",
    test="TestKaicSecureAcceleratorAccess/RequestlessPodsGainNothing",
    **ACCESS,
)
def test_requestless_leaks(
    cluster: Cluster, namespace: str, run: RunContext, facts: Facts, evidence: Recorder
) -> None:
    """Testname: Secure accelerator access, no device without a request
    Description: Pods that request no accelerator MUST NOT gain one through the known leaks: the vendor's
    visible-devices variable set to all, or the vendor's RuntimeClass.

    1. Choose the profile and path (above).
    2. One pod without a request per leak the profile knows: its visible-devices variable (e.g.
       `NVIDIA_VISIBLE_DEVICES=all`), and its RuntimeClass where the cluster has it. A profile with no known
       leak to try is not-applicable.
    3. Every such container must see no device.
    """
    selection = accelerator(cluster, facts, run, evidence)
    profile = selection.profile
    image = images.for_run(run.settings)["ubuntu"]
    pods = {
        f"env-{index}": workloads.identity_pod(
            f"env-{index}", run.labels, selection, image, {"main": False}, env={key: value}
        )
        for index, (key, value) in enumerate(profile.leak_env)
    }
    present = {rc["name"] for rc in facts.get("runtimeClasses") or []}
    for runtime_class in profile.leak_runtime_classes:
        if runtime_class in present:
            pods[f"runtime-{runtime_class}"] = workloads.identity_pod(
                f"runtime-{runtime_class}",
                run.labels,
                selection,
                image,
                {"main": False},
                runtime_class=runtime_class,
            )
    evidence.add(
        "fact",
        "leaksTried",
        {
            "env": dict(profile.leak_env),
            "runtimeClasses": sorted(set(profile.leak_runtime_classes) & present),
            "runtimeClassesAbsent": sorted(set(profile.leak_runtime_classes) - present),
        },
    )
    if not pods:
        raise NotApplicable(f"profile {profile.name} has no known request-less leak to try (none documented)")
    for name, containers in run_identity_pods(cluster, namespace, run, evidence, selection, pods).items():
        assert not (wrong := containers["main"].problems(profile, 0)), f"{name}: {wrong}"
