"""One real worker node beside the kwok nodes: kubelet, containerd, runc and a CNI bridge on this host.

Probes that need a pod which really serves (metrics endpoints, webhooks, adapters, gateway backends)
schedule onto it; everything else stays on kwok. The node is tainted so that only pods which ask for
it land there, and pods use the locally built images of `images.py` (no registry is reachable).

Network: the launcher makes the bridge `kaic0` with the node address 100.64.128.1/24; the CNI bridge
plugin attaches each pod to it with an address from 100.64.128.0/24 (kwok keeps 100.64.0.0/17). Pods
get no default route and the host does not forward, so pods reach only each other and the node
address. The apiserver reaches the kubelet and pods through the egress proxy, which lets this subnet
through besides loopback.

Everything a node leaves on the host is accounted for, so `teardown` can remove it exactly: mounts
under the state directory and the kubelet's root directory, the cgroup subtree `/kaic-worker` of every
cgroup hierarchy, the bridge, containerd's shim sockets, and the kernel settings the kubelet changes
(restored to what they were).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from kaic.kube.conditions import is_ready
from kaic.localcluster import images, kubeconfig, topology
from kaic.localcluster.pki import DRA_DRIVER as DRIVER_IDENTITY
from kaic.localcluster.pki import ClusterPKI, Pair
from kaic.localcluster.processes import (
    ClusterError,
    Managed,
    free_ports,
    resident_bytes,
    run_command,
    wait_healthy,
    wait_unix_socket,
)

NODE_NAME = "kaic-worker"
POD_SUBNET = "100.64.128.0/24"
NODE_IP = "100.64.128.1"
BRIDGE = "kaic0"
# Pods that may run here tolerate this taint and select the node by name or by the pool label. It is the taint
# GPU node pools commonly carry (key = the accelerator resource), so accelerator probes, whose profiles
# tolerate it, can use the node's DRA GPUs, while the kwok-only tests' pods stay off it.
TAINT = {"key": topology.EXTENDED_RESOURCE, "value": "present", "effect": "NoSchedule"}
POOL_LABEL = "kaic.io/node-pool"
POOL = "real"
COMPONENTS = ("containerd", "kubelet", "dra-driver")
# The upstream dra-example-driver's kubelet plugin: GPUs of this driver name, published as this node's
# ResourceSlice and handed to containers through CDI (environment variables GPU_DEVICE_<n>).
DRA_DRIVER = "gpu.example.com"
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_PARENT = NODE_NAME
SHIM_SOCKETS = Path("/run/containerd/s")
# The kubelet's --root-dir holds unix sockets (pod resources, device and DRA plugins) whose paths must stay
# under 108 bytes, so it cannot live in a state directory of any length. One real node per host anyway.
KUBELET_ROOT = Path("/var/lib/kaic-worker")
# What the kubelet sets at start (pkg/kubelet/cm: setupKernelTunables); restored at teardown.
KERNEL_TUNABLES = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
_MNT_DETACH = 2
MAX_SOCKET_PATH = 104


def components(info: dict[str, Any]) -> tuple[str, ...]:
    """The processes a real node started, from what `RealNode.up` returned (kept in the cluster's state)."""
    return COMPONENTS if info.get("dra_driver") else COMPONENTS[:-1]


def placement() -> dict[str, Any]:
    """The pod spec fields that put a pod on the real node: its name as selector, the taint tolerated."""
    return {
        "nodeSelector": {"kubernetes.io/hostname": NODE_NAME},
        "tolerations": [{"key": TAINT["key"], "operator": "Exists", "effect": TAINT["effect"]}],
    }


@dataclass(frozen=True)
class NodeBinaries:
    """containerd, its shim, ctr, runc, the CNI plugins and the image contents, all from `make cluster`."""

    directory: Path

    @property
    def containerd(self) -> Path:
        return self.directory / "containerd"

    @property
    def ctr(self) -> Path:
        return self.directory / "ctr"

    @property
    def runc(self) -> Path:
        return self.directory / "runc"

    @property
    def kaic_runsc(self) -> Path:
        """gVisor's runsc behind the runc shim (cluster/gvisor); runsc itself lies beside it."""
        return self.directory / "kaic-runsc"

    @property
    def cni(self) -> Path:
        return self.directory / "cni"

    def required(self) -> list[Path]:
        names = (
            "containerd",
            "containerd-shim-runc-v2",
            "ctr",
            "runc",
            "kaic-pause",
            "busybox",
            "dra-example-kubeletplugin",
        )
        plugins = [self.cni / name for name in ("bridge", "host-local", "loopback")]
        return [self.directory / name for name in names] + plugins

    def gvisor(self) -> list[Path]:
        """Needed only by a node with the runtime handler runsc."""
        return [self.directory / "runsc", self.kaic_runsc]


def find_node_binaries(directory: Path, gvisor: bool = False) -> NodeBinaries:
    found = NodeBinaries(directory)
    wanted = found.required() + (found.gvisor() if gvisor else [])
    missing = [str(path) for path in wanted if not os.access(path, os.X_OK)]
    if missing:
        raise ClusterError(
            f"real-node binaries missing: {', '.join(missing)}; build them with `make cluster`"
        )
    return found


def host_problem() -> str | None:
    """Why this host cannot run the real node, or None."""
    if os.geteuid() != 0:
        return "the real node needs root (it mounts, makes cgroups and a bridge)"
    if shutil.which("ip") is None:
        return "the real node needs iproute2's `ip` for its bridge"
    if not Path(CGROUP_ROOT, "memory", "cgroup.procs").exists():
        return f"the real node expects cgroup v1 hierarchies under {CGROUP_ROOT}"
    if Path("/sys/class/net", BRIDGE).exists():
        return f"bridge {BRIDGE} exists: another real node runs on this host (one at a time)"
    if KUBELET_ROOT.exists():
        return f"{KUBELET_ROOT} exists: another real node runs on this host, or one was not torn down"
    return None


class RealNode:
    """The real node of the cluster whose state lives in `state_dir`; its files are in `state_dir/node`."""

    def __init__(self, state_dir: Path, pki: ClusterPKI, process: Callable[[str], Managed]) -> None:
        self.state_dir = state_dir
        self.dir = state_dir / "node"
        self.pki = pki
        self.process = process
        # containerd also listens on this path plus ".ttrpc", and refuses socket paths over 104 bytes.
        self.containerd_socket = self.dir / "ctd.sock"
        self.containerd_state = self.dir / "containerd" / "state"
        self.runsc_root = self.dir / "containerd" / "runsc"

    @property
    def record(self) -> Path:
        return self.dir / "host.json"

    def shim_resident_bytes(self) -> tuple[int, int]:
        """How many containerd shims (and runsc watchers) the node runs outside its pods' cgroups, and their
        resident memory."""
        pids = _shim_pids(str(self.containerd_socket), str(self.runsc_root))
        return len(pids), sum(resident_bytes(pid) for pid in pids)

    def up(
        self, server: str, directory: Path, timeout: float, dra_driver: bool, gvisor: bool = False
    ) -> dict[str, Any]:
        """Set up the host side, start containerd with the local images, the kubelet and the DRA driver;
        with `gvisor`, containerd also offers the runtime handler runsc."""
        if problem := host_problem():
            raise ClusterError(problem)
        binaries = find_node_binaries(directory, gvisor)
        if len(f"{self.containerd_socket}.ttrpc") > MAX_SOCKET_PATH:
            raise ClusterError(
                f"state directory path too long for containerd's sockets: {self.containerd_socket}"
            )
        self.dir.mkdir(parents=True)
        # Recorded first, so teardown can undo a start that fails half way.
        self.record.write_text(
            json.dumps(
                {
                    "tunables": {
                        name: Path("/proc/sys", name).read_text().strip() for name in KERNEL_TUNABLES
                    },
                    # Shims put their sockets here whatever containerd's state directory, and a shim that
                    # failed to start leaves its socket behind: whatever appears later is this node's.
                    "shim_sockets_before": _listing(SHIM_SOCKETS),
                }
            )
        )
        run_command("ip", "link", "add", BRIDGE, "type", "bridge")
        run_command("ip", "addr", "add", f"{NODE_IP}/{POD_SUBNET.split('/')[1]}", "dev", BRIDGE)
        run_command("ip", "link", "set", BRIDGE, "up")
        self._make_cgroup_parent()

        containerd = self.process("containerd")
        containerd.start(
            [str(binaries.containerd), "--config", str(self._write_containerd_config(binaries, gvisor))],
            env=os.environ | {"PATH": f"{directory}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
        )
        wait_unix_socket(containerd, self.containerd_socket, timeout)
        try:
            images.import_images(
                binaries.ctr, self.containerd_socket, images.local_images(directory), self.dir / "images"
            )
        except subprocess.CalledProcessError as error:
            raise ClusterError(f"importing images into containerd failed: {error.stderr}") from error

        kubelet_port, healthz_port = free_ports(2)
        client_pair, serving = self.pki.issue_kubelet(NODE_NAME, NODE_IP)
        kubelet_kubeconfig = self.dir / "kubelet.kubeconfig"
        kubeconfig.write(
            kubelet_kubeconfig, server, self.pki.ca.cert, client_pair, f"system:node:{NODE_NAME}"
        )
        config = self.dir / "kubelet.yaml"
        config.write_text(yaml.safe_dump(self._kubelet_config(kubelet_port, healthz_port, serving)))
        kubelet = self.process("kubelet")
        kubelet.start(
            [
                str(directory / "kaic-cluster"),
                "kubelet",
                f"--config={config}",
                f"--kubeconfig={kubelet_kubeconfig}",
                f"--root-dir={KUBELET_ROOT}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                f"--node-labels={POOL_LABEL}={POOL}",
            ]
        )
        wait_healthy(kubelet, f"http://127.0.0.1:{healthz_port}/healthz", timeout)
        if dra_driver:
            self._start_dra_driver(server, directory)
        return {
            "node": NODE_NAME,
            "pod_subnet": POD_SUBNET,
            "kubelet_port": kubelet_port,
            "dra_driver": dra_driver,
        }

    def _start_dra_driver(self, server: str, directory: Path) -> None:
        """The kubelet plugin registers through the kubelet's plugin registry; containerd reads its CDI."""
        identity = self.pki.client(DRIVER_IDENTITY)
        config = self.dir / "dra-driver.kubeconfig"
        kubeconfig.write(config, server, self.pki.ca.cert, identity, DRIVER_IDENTITY.user)
        self.process("dra-driver").start(
            [
                str(directory / "dra-example-kubeletplugin"),
                f"--node-name={NODE_NAME}",
                f"--kubeconfig={config}",
                f"--cdi-root={self.dir / 'cdi'}",
                f"--kubelet-registrar-directory-path={KUBELET_ROOT / 'plugins_registry'}",
                f"--kubelet-plugins-directory-path={KUBELET_ROOT / 'plugins'}",
                "--device-profile=gpu",
                f"--driver-name={DRA_DRIVER}",
            ],
            # The driver names the node in the CDI environment it injects from $NODE_NAME.
            env=os.environ | {"NODE_NAME": NODE_NAME},
        )

    def wait_ready(self, api: client.ApiClient, timeout: float, dra_driver: bool) -> None:
        """Wait for the node to be Ready and, with the driver, for its ResourceSlice."""
        core, resource = client.CoreV1Api(api), client.ResourceV1Api(api)
        watched = ["kubelet", "dra-driver"] if dra_driver else ["kubelet"]

        def ready() -> bool:
            with contextlib.suppress(client.ApiException):
                return is_ready(api.sanitize_for_serialization(core.read_node(NODE_NAME)))
            return False

        def published() -> bool:
            slices = resource.list_resource_slice(field_selector=f"spec.nodeName={NODE_NAME}").items
            return any(s.spec.driver == DRA_DRIVER for s in slices)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in watched:
                if not self.process(name).alive():
                    raise ClusterError(f"{name} exited:\n{self.process(name).log_tail()}")
            if ready() and (not dra_driver or published()):
                return
            time.sleep(0.25)
        raise ClusterError(
            f"node {NODE_NAME} not Ready{' with its slice' if dra_driver else ''} after {timeout:.0f}s; "
            f"logs in {self.process('kubelet').log.parent}\n{self.process(watched[-1]).log_tail()}"
        )

    def _make_cgroup_parent(self) -> None:
        """The kubelet's --cgroup-root must exist in every hierarchy; a v1 cpuset starts empty, so fill it."""
        for hierarchy in _hierarchies():
            (hierarchy / CGROUP_PARENT).mkdir(exist_ok=True)
        cpuset = Path(CGROUP_ROOT, "cpuset")
        for name in ("cpuset.cpus", "cpuset.mems"):
            (cpuset / CGROUP_PARENT / name).write_text((cpuset / name).read_text())

    def _write_containerd_config(self, binaries: NodeBinaries, gvisor: bool) -> Path:
        """containerd with CRI, everything under the state directory; nothing may be pulled."""
        base = self.dir / "containerd"
        cni_conf = self.dir / "cni" / "net.d"
        cni_conf.mkdir(parents=True)
        (cni_conf / "10-kaic.conflist").write_text(json.dumps(self._cni_config(), indent=2))
        # Every registry resolves to a closed loopback port: a missing image fails at once, no traffic leaves.
        hosts = base / "certs.d" / "_default"
        hosts.mkdir(parents=True)
        (hosts / "hosts.toml").write_text('server = "https://127.0.0.1:1"\n')
        config = f"""version = 3
root = {json.dumps(str(base / "root"))}
state = {json.dumps(str(self.containerd_state))}
# /opt/containerd and /var/run/nri would live outside the state directory; neither is needed.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri"]

[grpc]
  address = {json.dumps(str(self.containerd_socket))}

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = {json.dumps(images.PAUSE)}
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = {json.dumps(str(base / "certs.d"))}

[plugins."io.containerd.cri.v1.runtime"]
  netns_mounts_under_state_dir = true
  # The host withholds CAP_SYS_RESOURCE: no process may lower its OOM score below containerd's own.
  restrict_oom_score_adj = true
  enable_cdi = true
  cdi_spec_dirs = [{json.dumps(str(self.dir / "cdi"))}]
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [{json.dumps(str(binaries.cni))}]
    conf_dir = {json.dumps(str(cni_conf))}
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = {json.dumps(str(binaries.runc))}
      Root = {json.dumps(str(base / "runc"))}
      SystemdCgroup = false
{self._runsc_runtime(binaries) if gvisor else ""}
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
"""
        path = base / "config.toml"
        path.write_text(config)
        return path

    def _runsc_runtime(self, binaries: NodeBinaries) -> str:
        """gVisor behind containerd's runc shim, through kaic-runsc: gVisor's own shim cannot start here (it
        lowers its OOM score to -999, which needs CAP_SYS_RESOURCE; cluster/README.md). runsc reads the CRI
        annotations that put a pod's containers into one sandbox, with its default systrap platform and its
        own network stack on the pod's interface."""
        return f"""  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runsc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runsc.options]
      BinaryName = {json.dumps(str(binaries.kaic_runsc))}
      Root = {json.dumps(str(self.runsc_root))}
      SystemdCgroup = false
"""

    def _cni_config(self) -> dict[str, Any]:
        """Bridge without gateway, masquerade or default route: pods reach the subnet and nothing else."""
        return {
            "cniVersion": "1.0.0",
            "name": "kaic",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": False,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                        "dataDir": str(self.dir / "cni" / "ipam"),
                    },
                }
            ],
        }

    def _kubelet_config(self, port: int, healthz_port: int, serving: Pair) -> dict[str, Any]:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # Kubernetes 1.35+ refuses cgroup v1 unless told otherwise; this host has only v1 controllers.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{CGROUP_PARENT}",
            "failSwapOn": False,
            # Lowering an OOM score needs CAP_SYS_RESOURCE, which this host withholds.
            "oomScoreAdj": 0,
            "address": NODE_IP,
            "port": port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz_port,
            "tlsCertFile": str(serving.cert),
            "tlsPrivateKeyFile": str(serving.key),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.pki.ca.cert)},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "podLogsDir": str(self.dir / "pod-logs"),
            # The host's resolver is a private address; pods get no nameserver.
            "resolvConf": "",
            "registerWithTaints": [TAINT],
            # The local images cannot be pulled again: never collect them; evict only when truly full.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "50Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
        }

    def teardown(self) -> None:
        """Stop the kubelet, kill containers and shims, unmount, remove cgroups and bridge, restore sysctls.

        Safe to repeat and a no-op when this cluster never had a real node.
        """
        if not self.record.exists():
            return
        record = json.loads(self.record.read_text())
        self.process("dra-driver").stop()
        self.process("kubelet").stop()
        _kill_cgroup_processes()
        self.process("containerd").stop()
        _kill_shims(str(self.containerd_socket), str(self.runsc_root))
        _remove_shim_sockets(record.get("shim_sockets_before"))
        unmount_below(self.state_dir)
        # The kubelet bind-mounts its root directory onto itself to make it shared.
        unmount_below(KUBELET_ROOT, itself=True)
        shutil.rmtree(KUBELET_ROOT, ignore_errors=True)
        _remove_cgroups()
        if Path("/sys/class/net", BRIDGE).exists():
            run_command("ip", "link", "delete", BRIDGE)
        for name, value in record.get("tunables", {}).items():
            Path("/proc/sys", name).write_text(value)
        self.record.unlink()


def pod_resident_bytes() -> dict[str, int]:
    """Resident memory of each pod on the node, by pod UID: every process in the pod's memory cgroup, its
    containers, its pause process and a gVisor sandbox alike."""
    kubepods = Path(CGROUP_ROOT, "memory", CGROUP_PARENT, "kubepods")
    pods = {}
    # Guaranteed pods sit directly under kubepods, the others under their QoS class's cgroup.
    for pod in [*kubepods.glob("pod*"), *kubepods.glob("*/pod*")]:
        pids = set()
        for root, _, _ in os.walk(pod):
            with contextlib.suppress(OSError):
                pids |= {int(line) for line in Path(root, "cgroup.procs").read_text().split()}
        pods[pod.name.removeprefix("pod")] = sum(resident_bytes(pid) for pid in pids)
    return pods


def _hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, name=systemd and the hybrid v2 one)."""
    return [path for path in Path(CGROUP_ROOT).iterdir() if (path / "cgroup.procs").exists()]


def _cgroup_dirs() -> list[Path]:
    """The node's cgroups in every hierarchy, children before parents."""
    found = []
    for hierarchy in _hierarchies():
        parent = hierarchy / CGROUP_PARENT
        if parent.is_dir():
            found += [Path(root) for root, _, _ in os.walk(parent)]
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def _cgroup_pids() -> set[int]:
    pids = set()
    for directory in _cgroup_dirs():
        # A cgroup that runc removes while we look reads as missing or as ENODEV.
        with contextlib.suppress(OSError):
            pids |= {int(line) for line in (directory / "cgroup.procs").read_text().split()}
    return pids


def _kill_cgroup_processes(timeout: float = 15.0) -> None:
    """SIGKILL every process in the node's cgroups (the containers) until none is left."""
    deadline = time.monotonic() + timeout
    while pids := _cgroup_pids():
        if time.monotonic() > deadline:
            raise ClusterError(f"container processes survive SIGKILL: {sorted(pids)}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _remove_cgroups() -> None:
    for directory in _cgroup_dirs():
        with contextlib.suppress(FileNotFoundError):
            directory.rmdir()


def _listing(directory: Path) -> list[str] | None:
    return sorted(entry.name for entry in directory.iterdir()) if directory.is_dir() else None


def _remove_shim_sockets(before: list[str] | None) -> None:
    """Remove the shim sockets that appeared since the node started, and their directory if it is new."""
    for name in set(_listing(SHIM_SOCKETS) or ()) - set(before or ()):
        (SHIM_SOCKETS / name).unlink(missing_ok=True)
    if before is None:
        for directory in (SHIM_SOCKETS, SHIM_SOCKETS.parent):
            with contextlib.suppress(OSError):
                directory.rmdir()


def _kill_shims(containerd_socket: str, runsc_root: str, timeout: float = 10.0) -> None:
    """Shims outlive containerd by design; ours are those started with our containerd's address. kaic-runsc's
    watchers are children of a shim that outlive it when their container never started; ours name our runsc
    root."""
    deadline = time.monotonic() + timeout
    while shims := _shim_pids(containerd_socket, runsc_root):
        if time.monotonic() > deadline:
            raise ClusterError(f"containerd shims survive SIGKILL: {shims}")
        for pid in shims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _shim_pids(containerd_socket: str, runsc_root: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        shim = argv[0].endswith(b"containerd-shim-runc-v2") and containerd_socket.encode() in argv
        watcher = argv[0].endswith(b"kaic-runsc") and any(a.startswith(runsc_root.encode()) for a in argv)
        if state != "Z" and (shim or watcher):
            pids.append(int(proc.name))
    return pids


def mounts_below(directory: Path, itself: bool = False) -> list[str]:
    """Mount points under `directory` (and `directory` itself if asked), deepest first."""
    top = str(directory.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point.startswith(f"{top}/") or (itself and point == top):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_below(directory: Path, itself: bool = False, rounds: int = 5) -> None:
    """Detach every mount under `directory` (rootfs overlays, netns, volumes, the kubelet's bind mount)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(rounds):
        points = mounts_below(directory, itself)
        if not points:
            return
        for point in points:
            libc.umount2(point.encode(), _MNT_DETACH)
    if left := mounts_below(directory, itself):
        raise ClusterError(f"mounts left under {directory}: {left}")
