"""The real worker node: pods that really run, reached only through the API server.

The real-node scenario's cluster serves the behavioural tests; the teardown test starts its own through
the CLI (`kaic cluster up --real-node`) and checks that `down` leaves no process, mount, network
namespace, link, cgroup or shim socket behind. Without the node's binaries, or on a host that cannot
run it, these tests skip; under CI (`CI=true`) that is a failure.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from kaic.localcluster import images, node, topology
from kaic.localcluster.launcher import Binaries, LocalCluster

pytestmark = pytest.mark.cluster

POD_TIMEOUT = 60
REAL_NODE = "real-node"
on_the_real_node = pytest.mark.scenario(REAL_NODE)


def run_cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaic.cli.cluster", *args, "--state-dir", str(state_dir)],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )


def leftovers(state_dir: Path) -> dict[str, Any]:
    """What a real node could leave on the host, as seen from outside the launcher."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    processes = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(state_dir).encode() in (proc / "cmdline").read_bytes():
                processes.append(proc.name)
        except OSError:
            continue
    return {
        "processes": processes,
        "mounts": node.mounts_below(state_dir) + node.mounts_below(node.KUBELET_ROOT, itself=True),
        "kubelet root": node.KUBELET_ROOT.exists(),
        "links": [line for line in links.splitlines() if node.BRIDGE in line or "veth" in line],
        "cgroups": sorted(str(path) for path in Path(node.CGROUP_ROOT).glob(f"*/{node.CGROUP_PARENT}")),
        "shim sockets": sorted(os.listdir(node.SHIM_SOCKETS)) if node.SHIM_SOCKETS.is_dir() else [],
        "kernel settings": {name: Path("/proc/sys", name).read_text() for name in node.KERNEL_TUNABLES},
    }


def test_down_leaves_nothing_behind(
    cluster_binaries: Binaries, tmp_path: Path, real_node_lock: Any, require_real_node: Any
) -> None:
    require_real_node()
    state_dir = tmp_path / "cluster"
    with real_node_lock():
        _up_and_down_leaves_nothing(state_dir)


def _up_and_down_leaves_nothing(state_dir: Path) -> None:
    before = leftovers(state_dir)
    started = run_cli("up", "--scenario", "no-gpu-nodes", "--real-node", state_dir=state_dir)
    assert started.returncode == 0, started.stderr
    cluster = LocalCluster(state_dir)
    with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_pod("default", busybox_pod("sleeper", "exec sleep 3600"))
        wait_pod(core, "default", "sleeper", lambda pod: pod.status.phase == "Running")
    running = leftovers(state_dir)
    assert running["mounts"] and running["links"] and running["cgroups"] and running["processes"]

    stopped = run_cli("down", state_dir=state_dir)
    assert stopped.returncode == 0, stopped.stderr
    assert not state_dir.exists()
    assert leftovers(state_dir) == before


@pytest.fixture
def core(cluster_for: Callable[[str], LocalCluster], require_real_node: Any) -> Iterator[client.CoreV1Api]:
    """The API of the real-node scenario's cluster (tests asking for it carry `on_the_real_node`)."""
    require_real_node()
    with cluster_for(REAL_NODE).api_client() as api:
        yield client.CoreV1Api(api)


@pytest.fixture
def ns(core: client.CoreV1Api, new_namespace: Callable[[client.ApiClient, str], str]) -> Iterator[str]:
    name = new_namespace(core.api_client, f"kaic-node-{uuid.uuid4().hex[:8]}")
    yield name
    core.delete_namespace(name)


def busybox_pod(name: str, script: str, **spec: Any) -> dict[str, Any]:
    """A pod on the real node running `script` in the local busybox image."""
    container = {
        "name": "main",
        "image": images.BUSYBOX,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
    }
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": node.placement() | {"containers": [container], "terminationGracePeriodSeconds": 1} | spec,
    }


def wait_pod(
    core: client.CoreV1Api, namespace: str, name: str, done: Callable[[client.V1Pod], bool]
) -> client.V1Pod:
    """Watch the pod until `done` holds for it; fail with its last status after POD_TIMEOUT seconds."""
    last = None
    for event in watch.Watch().stream(
        core.list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={name}",
        timeout_seconds=POD_TIMEOUT,
    ):
        last = event["object"]
        if done(last):
            return last
    raise AssertionError(f"pod {namespace}/{name} not there after {POD_TIMEOUT}s: {last and last.status}")


def ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def finished(pod: client.V1Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


@on_the_real_node
def test_node_is_real_and_tainted(core: client.CoreV1Api) -> None:
    worker = core.read_node(node.NODE_NAME)
    assert worker.status.node_info.container_runtime_version.startswith("containerd://")
    assert topology.KWOK_ANNOTATION not in (worker.metadata.annotations or {})
    assert [(t.key, t.effect) for t in worker.spec.taints] == [(node.TAINT["key"], node.TAINT["effect"])]
    assert worker.metadata.labels[node.POOL_LABEL] == node.POOL


@on_the_real_node
def test_busybox_httpd_through_pod_and_service_proxy(
    core: client.CoreV1Api, ns: str, wait_until: Callable[[Callable[[], Any], float, str], Any]
) -> None:
    token = uuid.uuid4().hex
    pod = busybox_pod(
        "web", f"mkdir -p /www && echo {token} > /www/index.html && exec httpd -f -p 8080 -h /www"
    )
    container = pod["spec"]["containers"][0]
    container["ports"] = [{"containerPort": 8080}]
    container["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    core.create_namespaced_pod(ns, pod)
    service = {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    core.create_namespaced_service(ns, {"metadata": {"name": "web"}, "spec": service})
    running = wait_pod(core, ns, "web", ready)
    assert running.spec.node_name == node.NODE_NAME
    assert ipaddress.ip_address(running.status.pod_ip) in ipaddress.ip_network(node.POD_SUBNET)

    through_pod = core.connect_get_namespaced_pod_proxy_with_path("web:8080", ns, "index.html")
    assert through_pod.strip() == token
    # The apiserver resolves the service from its EndpointSlice cache, which follows readiness shortly.
    through_service = wait_until(
        lambda: service_get(core, ns, "web:80", "index.html"), 30, "service endpoints"
    )
    assert through_service.strip() == token


def service_get(core: client.CoreV1Api, namespace: str, service: str, path: str) -> str | None:
    try:
        return core.connect_get_namespaced_service_proxy_with_path(service, namespace, path)
    except client.ApiException as error:
        if error.status == 503:
            return None
        raise


@on_the_real_node
def test_pods_reach_only_their_subnet(core: client.CoreV1Api, ns: str) -> None:
    """No default route, and no nameserver but the pod's own loopback (the host's resolver is private)."""
    script = "ip -4 route; echo ---; cat /etc/resolv.conf"
    core.create_namespaced_pod(ns, busybox_pod("routes", script, restartPolicy="Never"))
    assert wait_pod(core, ns, "routes", finished).status.phase == "Succeeded"
    routes, _, resolv = core.read_namespaced_pod_log("routes", ns).partition("---\n")
    assert [line.split()[0] for line in routes.splitlines()] == [node.POD_SUBNET], routes
    nameservers = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")]
    assert all(ipaddress.ip_address(server).is_loopback for server in nameservers), resolv


@on_the_real_node
def test_pod_logs_through_the_api(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(
        ns, busybox_pod("logs", "echo first line; echo second line", restartPolicy="Never")
    )
    done = wait_pod(core, ns, "logs", finished)
    assert done.status.phase == "Succeeded"
    assert core.read_namespaced_pod_log("logs", ns) == "first line\nsecond line\n"


@on_the_real_node
def test_termination_message_and_exit_code(core: client.CoreV1Api, ns: str) -> None:
    script = "echo probe-said-goodbye > /dev/termination-log; exit 3"
    core.create_namespaced_pod(ns, busybox_pod("quits", script, restartPolicy="Never"))
    done = wait_pod(core, ns, "quits", finished)
    assert done.status.phase == "Failed"
    terminated = done.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.message.strip()) == (3, "probe-said-goodbye")


@on_the_real_node
def test_dra_driver_injects_its_gpu_through_cdi(core: client.CoreV1Api, ns: str) -> None:
    resource = client.ResourceV1Api(core.api_client)
    request = {"name": "gpu", "exactly": {"deviceClassName": node.DRA_DRIVER}}
    resource.create_namespaced_resource_claim(
        ns, {"metadata": {"name": "gpu"}, "spec": {"devices": {"requests": [request]}}}
    )
    # Ready once the environment is in the log; the claim stays allocated while the pod runs.
    script = "env | sort; touch /tmp/printed; exec sleep 3600"
    pod = busybox_pod("gpu-user", script, resourceClaims=[{"name": "gpu", "resourceClaimName": "gpu"}])
    container = pod["spec"]["containers"][0]
    container["resources"] = {"claims": [{"name": "gpu"}]}
    container["readinessProbe"] = {"exec": {"command": ["cat", "/tmp/printed"]}, "periodSeconds": 1}
    core.create_namespaced_pod(ns, pod)
    wait_pod(core, ns, "gpu-user", ready)

    (result,) = resource.read_namespaced_resource_claim("gpu", ns).status.allocation.devices.results
    assert (result.driver, result.pool) == (node.DRA_DRIVER, node.NODE_NAME)
    environment = core.read_namespaced_pod_log("gpu-user", ns).splitlines()
    assert f"DRA_RESOURCE_DRIVER_NAME={node.DRA_DRIVER}" in environment
    assert f"KUBERNETES_NODE_NAME={node.NODE_NAME}" in environment
    assert any(line.startswith("GPU_DEVICE_") and line.endswith(f"={result.device}") for line in environment)
