"""Bring the local cluster up and down: etcd, the Kubernetes control plane, kwok and the simulated driver.

Everything listens on 127.0.0.1 at ports the kernel picks. Pod and service addresses come from the
CGNAT range 100.64.0.0/10, never from the private ranges, and the apiserver reaches the cluster network
only through the loopback-only egress proxy (`egress.py`), so it never dials a simulated address.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.config import new_client_from_config

from kaic.kube import client as kube
from kaic.kube.conditions import is_ready
from kaic.localcluster import (
    DEFAULT_STATE_DIR,
    ENV_STATE_DIR,
    autoscaler,
    gateway,
    images,
    karpenter,
    kubeconfig,
    kueue,
    manifests,
    metrics_adapter,
    node,
    operator,
    pki,
    prometheus,
    routes,
    topology,
)
from kaic.localcluster.node import POD_SUBNET, RealNode
from kaic.localcluster.processes import (
    ClusterError,
    Managed,
    free_ports,
    port_in_use,
    tls_context,
    wait_healthy,
    wait_unix_socket,
)
from kaic.localcluster.scenarios import Scenario, flag_value

SERVICE_CIDR = "100.96.0.0/16"
SERVICE_IP = "100.96.0.1"
STATE_FILE = "state.json"
ENV_BIN = "KAIC_CLUSTER_BIN"
# Start order; `down` stops in reverse. The Cluster Autoscaler, Karpenter, the metrics adapter and Traefik run
# only in their scenarios.
COMPONENTS = (
    "etcd",
    "egress",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    autoscaler.BINARY,
    karpenter.BINARY,
    metrics_adapter.NAME,
    gateway.NAME,
)
PORTS = (
    "etcd",
    "etcd-peer",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    autoscaler.BINARY,
)
# Unix socket paths are limited to 107 bytes.
MAX_SOCKET_PATH = 107
STAGES = Path(__file__).with_name("kwok-stages.yaml")


def components(scenario: Scenario) -> tuple[str, ...]:
    """What `up` starts for `scenario`, in start order."""
    optional = {
        autoscaler.BINARY: scenario.autoscaler,
        karpenter.BINARY: scenario.karpenter,
        metrics_adapter.NAME: scenario.metrics_adapter,
        gateway.NAME: scenario.gateway,
    }
    return tuple(name for name in COMPONENTS if optional.get(name, True))


def default_state_dir() -> Path:
    return Path(os.environ.get(ENV_STATE_DIR) or DEFAULT_STATE_DIR)


@dataclass(frozen=True)
class Binaries:
    kaic_cluster: Path
    kwok: Path
    cluster_autoscaler: Path
    karpenter: Path


def bin_dir() -> Path:
    """`$KAIC_CLUSTER_BIN`, else `cluster/bin` of the source checkout this package runs from."""
    if os.environ.get(ENV_BIN):
        return Path(os.environ[ENV_BIN])
    return Path(__file__).resolve().parents[3] / "cluster" / "bin"


def find_binaries() -> Binaries:
    directory = bin_dir()
    found = Binaries(
        directory / "kaic-cluster",
        directory / "kwok",
        directory / autoscaler.BINARY,
        directory / karpenter.BINARY,
    )
    missing = [str(path) for path in (found.kaic_cluster, found.kwok) if not os.access(path, os.X_OK)]
    if missing:
        raise ClusterError(
            f"cluster binaries missing: {', '.join(missing)}; build them with `make cluster` "
            f"or point {ENV_BIN} at a directory holding kaic-cluster and kwok"
        )
    return found


class LocalCluster:
    """One cluster, identified by its state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.absolute()
        self.pki = pki.ClusterPKI(self.state_dir / "pki")
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.config = self.state_dir / "kaic.yaml"  # kaic's config file for runs against this cluster
        self.egress_socket = self.state_dir / "egress.sock"

    def process(self, name: str) -> Managed:
        return Managed(name, self.state_dir / "run", self.state_dir / "logs")

    def real_node(self) -> RealNode:
        return RealNode(self.state_dir, self.pki, self.process)

    def running(self) -> list[str]:
        return [name for name in COMPONENTS if self.process(name).alive()]

    def state(self) -> dict[str, Any]:
        try:
            return json.loads((self.state_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return {}

    def _write_state(self, state: dict[str, Any]) -> None:
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def _prepare_state_dir(self) -> None:
        """Refuse a running cluster; clear a dead one's leftovers; never clear a directory that is not
        ours."""
        if running := self.running():
            raise ClusterError(
                f"cluster already up in {self.state_dir} ({', '.join(running)}); "
                "run `kaic cluster down` first"
            )
        if self.state_dir.exists() and any(self.state_dir.iterdir()):
            if not (self.state_dir / STATE_FILE).exists():
                raise ClusterError(f"{self.state_dir} is not empty and holds no kaic cluster; choose another")
            self._host_teardown()
            shutil.rmtree(self.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def up(self, scenario: Scenario, binaries: Binaries, timeout: float = 60.0) -> dict[str, Any]:
        """Start every component, wait until each is healthy, publish nodes and the driver's objects."""
        self._prepare_state_dir()
        started = time.monotonic()
        ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=True))
        state: dict[str, Any] = {
            "scenario": scenario.name,
            "server": f"https://127.0.0.1:{ports['kube-apiserver']}",
            "ports": ports,
            "kubeconfig": str(self.kubeconfig),
            "ready": False,
        }
        why_not = routes.unavailable()
        state["route_guard"] = (
            {"unreachable": str(routes.SIMULATED), "metric": ports["kube-apiserver"]}
            if why_not is None
            else f"none: {why_not}"
        )
        self._write_state(state)  # first, so teardown can undo a start that fails half way
        try:
            if why_not is None:
                routes.add(ports["kube-apiserver"])
            self.pki.create(SERVICE_IP)
            self._start(scenario, binaries, ports, timeout)
            self._publish(scenario, timeout)
            if scenario.autoscaler:
                self._start_autoscaler(scenario.autoscaler, binaries, ports, timeout)
            if scenario.karpenter:
                state["karpenter"] = self._start_karpenter(scenario.karpenter, binaries, timeout)
            if scenario.real_node:
                state["real_node"] = self._start_real_node(scenario, state["server"], binaries, timeout)
            if scenario.metrics_adapter:
                state["metrics_adapter"] = self._start_metrics_adapter(
                    scenario, state["server"], binaries, timeout
                )
            if scenario.monitoring:
                state["prometheus"] = self._install_prometheus(
                    scenario, ports["kube-apiserver"], binaries, timeout
                )
            if scenario.operator:
                self._install_operator(scenario, ports["kube-apiserver"], binaries, timeout)
            if scenario.kueue:
                self._install_kueue(scenario.kueue, ports["kube-apiserver"], binaries, timeout)
            if scenario.runtime_classes:
                self._create_runtime_classes(scenario.runtime_classes)
            if scenario.gateway:
                state["gateway"] = gateway.install(
                    binaries.kaic_cluster.parent,
                    self.pki,
                    self.kubeconfig,
                    self.state_dir,
                    self.process,
                    state["server"],
                    scenario.gateway,
                    timeout,
                )
        except BaseException:
            self.stop_processes()
            raise
        state |= {"ready": True, "startup_seconds": round(time.monotonic() - started, 1)}
        self._write_state(state)
        return state

    def _start(self, scenario: Scenario, binaries: Binaries, ports: dict[str, int], timeout: float) -> None:
        kaic_cluster = str(binaries.kaic_cluster)
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        ca = self.pki.ca.cert

        etcd = self.process("etcd")
        etcd.start([kaic_cluster, "etcd", *self._etcd_flags(ports)])
        wait_healthy(etcd, f"http://127.0.0.1:{ports['etcd']}/health", timeout)

        if len(str(self.egress_socket)) > MAX_SOCKET_PATH:
            raise ClusterError(f"state directory path too long for a unix socket: {self.egress_socket}")
        egress = self.process("egress")
        egress_networks = [POD_SUBNET] if scenario.real_node else []
        egress.start(
            [sys.executable, "-m", "kaic.localcluster.egress", str(self.egress_socket), *egress_networks]
        )
        wait_unix_socket(egress, self.egress_socket, timeout)
        egress_config = self.state_dir / "egress-selector.yaml"
        egress_config.write_text(yaml.safe_dump(self._egress_selector()))

        apiserver = self.process("kube-apiserver")
        apiserver.start([kaic_cluster, "kube-apiserver", *self._apiserver_flags(scenario, ports)])
        admin = self.pki.client(pki.ADMIN)
        readyz = f"{server}/readyz?{urlencode([('exclude', check) for check in scenario.readyz_exclude])}"
        wait_healthy(apiserver, readyz, timeout, tls_context(ca, admin.cert, admin.key))

        kubeconfig.write(self.kubeconfig, server, ca, admin, pki.ADMIN.user)
        self._write_config(scenario)
        component_configs = {}
        for name, identity in (
            ("kube-controller-manager", pki.CONTROLLER_MANAGER),
            ("kube-scheduler", pki.SCHEDULER),
            ("kwok", pki.KWOK),
        ):
            path = self.state_dir / f"{name}.kubeconfig"
            kubeconfig.write(path, server, ca, self.pki.client(identity), identity.user)
            component_configs[name] = path

        starts = {
            "kube-controller-manager": [
                kaic_cluster,
                "kube-controller-manager",
                *self._controller_manager_flags(
                    scenario, ports, component_configs["kube-controller-manager"]
                ),
            ],
            "kube-scheduler": [
                kaic_cluster,
                "kube-scheduler",
                *self._scheduler_flags(scenario, ports, component_configs["kube-scheduler"]),
            ],
            "kwok": [str(binaries.kwok), *self._kwok_flags(ports, component_configs["kwok"])],
        }
        for name, argv in starts.items():
            self.process(name).start(argv)
        context = tls_context(ca)
        for name in starts:
            wait_healthy(self.process(name), f"https://127.0.0.1:{ports[name]}/healthz", timeout, context)

    def _write_config(self, scenario: Scenario) -> None:
        """kaic's config file for this cluster, so a plain `kaic run` works: the local images as --image, and
        what a user would name about their own cluster, which kaic cannot discover: the operator's training
        runtime and the autoscaled accelerator pool."""
        settings: dict[str, Any] = {"image": [f"{key}={ref}" for key, ref in images.PROBE_IMAGES.items()]}
        if scenario.operator:
            settings["operator-runtime"] = operator.RUNTIME
        if pool := scenario.autoscaler or scenario.karpenter:
            settings["autoscaler-node-pool-label"] = pool.label
        if scenario.real_node:  # `kaic run --in-cluster` puts its runner on the real node, as operators are
            settings["runner-node-selector"] = [f"kubernetes.io/hostname={node.NODE_NAME}"]
            settings["runner-toleration"] = [f"{node.TAINT['key']}:{node.TAINT['effect']}"]
            settings["runner-host-network"] = True  # no kube-proxy: the `kubernetes` Service is not routed
        self.config.write_text(
            "# Written by `kaic cluster up`: use with `export KAIC_CONFIG=<this file>` or --config.\n"
            + yaml.safe_dump(settings, sort_keys=False)
        )

    def _etcd_flags(self, ports: dict[str, int]) -> list[str]:
        client_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        return [
            "--name=kaic",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=kaic={peer_url}",
            # A throw-away test store: durability buys nothing and fsync dominates start-up on slow disks.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    def _serving_flags(self, port: int) -> list[str]:
        return [
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={self.pki.serving.cert}",
            f"--tls-private-key-file={self.pki.serving.key}",
        ]

    def _apiserver_flags(self, scenario: Scenario, ports: dict[str, int]) -> list[str]:
        front_proxy = self.pki.client(pki.FRONT_PROXY_CLIENT)
        kubelet_client = self.pki.client(pki.APISERVER_KUBELET)
        flags = [
            *self._serving_flags(ports["kube-apiserver"]),
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            f"--egress-selector-config-file={self.state_dir / 'egress-selector.yaml'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # The `kubernetes` Service gets no endpoints: Endpoints may not hold loopback addresses.
            "--endpoint-reconciler-type=none",
            f"--client-ca-file={self.pki.ca.cert}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.pki.service_account.cert}",
            f"--service-account-signing-key-file={self.pki.service_account.key}",
            f"--kubelet-client-certificate={kubelet_client.cert}",
            f"--kubelet-client-key={kubelet_client.key}",
            f"--kubelet-certificate-authority={self.pki.ca.cert}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--requestheader-client-ca-file={self.pki.front_proxy_ca.cert}",
            f"--requestheader-allowed-names={pki.FRONT_PROXY_CLIENT.user}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={front_proxy.cert}",
            f"--proxy-client-key-file={front_proxy.key}",
            "--allow-privileged=true",
            "--profiling=false",
        ]
        if scenario.gates:
            flags.append(f"--feature-gates={flag_value(scenario.gates)}")
        if scenario.real_node:
            # Webhooks and aggregated APIs served by real pods: dial an endpoint, not the unrouted ClusterIP.
            flags.append("--enable-aggregator-routing=true")
        if scenario.runtime_config:
            flags.append(f"--runtime-config={flag_value(scenario.runtime_config)}")
        return flags

    def _egress_selector(self) -> dict[str, Any]:
        """Send the apiserver's cluster-network traffic through the loopback-only egress proxy."""
        return {
            "apiVersion": "apiserver.k8s.io/v1beta1",
            "kind": "EgressSelectorConfiguration",
            "egressSelections": [
                {
                    "name": "cluster",
                    "connection": {
                        "proxyProtocol": "HTTPConnect",
                        "transport": {"uds": {"udsName": str(self.egress_socket)}},
                    },
                }
            ],
        }

    def _component_flags(self, port: int, config: Path) -> list[str]:
        return [
            *self._serving_flags(port),
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def _controller_manager_flags(self, scenario: Scenario, ports: dict[str, int], config: Path) -> list[str]:
        flags = [
            *self._component_flags(ports["kube-controller-manager"], config),
            f"--service-account-private-key-file={self.pki.service_account.key}",
            f"--root-ca-file={self.pki.ca.cert}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={self.pki.ca.cert}",
            f"--cluster-signing-key-file={self.pki.ca.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
        ]
        if scenario.gates:
            flags.append(f"--feature-gates={flag_value(scenario.gates)}")
        return flags

    def _scheduler_flags(self, scenario: Scenario, ports: dict[str, int], config: Path) -> list[str]:
        flags = self._component_flags(ports["kube-scheduler"], config)
        if scenario.scheduler_disabled_plugins:
            # With --config the scheduler ignores --kubeconfig (and --profiling): both move into the file.
            scheduler_config = self.state_dir / "kube-scheduler.yaml"
            scheduler_config.write_text(yaml.safe_dump(self._scheduler_config(scenario, config)))
            flags = [
                f for f in flags if not f.startswith(("--kubeconfig=", "--leader-elect=", "--profiling="))
            ]
            flags.append(f"--config={scheduler_config}")
        if scenario.scheduler_emulated_version:
            flags.append(f"--emulated-version=kube={scenario.scheduler_emulated_version}")
        if gates := scenario.gates_for_scheduler():
            flags.append(f"--feature-gates={flag_value(gates)}")
        return flags

    @staticmethod
    def _scheduler_config(scenario: Scenario, kubeconfig_path: Path) -> dict[str, Any]:
        """The default profile less `scenario.scheduler_disabled_plugins` (multiPoint: every extension
        point)."""
        return {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig_path)},
            "leaderElection": {"leaderElect": False},
            "enableProfiling": False,
            "profiles": [
                {
                    "schedulerName": "default-scheduler",
                    "plugins": {
                        "multiPoint": {
                            "disabled": [{"name": name} for name in scenario.scheduler_disabled_plugins]
                        }
                    },
                }
            ],
        }

    def _kwok_flags(self, ports: dict[str, int], config: Path) -> list[str]:
        return [
            f"--kubeconfig={config}",
            # Only our stages: without --config kwok would read ~/.kwok/kwok.yaml.
            f"--config={STAGES}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={topology.KWOK_ANNOTATION}=fake",
            f"--cidr={topology.POD_CIDR}",
            "--node-ip=127.0.0.1",
            # kwok's default applies only with a KwokConfiguration in --config; without it no Leases.
            "--node-lease-duration-seconds=40",
            f"--node-port={ports['kwok']}",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            f"--tls-cert-file={self.pki.serving.cert}",
            f"--tls-private-key-file={self.pki.serving.key}",
        ]

    def api_client(self) -> client.ApiClient:
        return new_client_from_config(config_file=str(self.kubeconfig))

    def _publish(self, scenario: Scenario, timeout: float) -> None:
        """Create the nodes and what the simulated driver publishes; wait for Ready nodes and the default
        SA."""
        with self.api_client() as api:
            core = client.CoreV1Api(api)
            resource = client.ResourceV1Api(api)
            node_objects = topology.nodes(scenario.pools)
            for node in node_objects:
                core.create_node(client.V1Node.model_validate(node))
            if scenario.driver_installed:
                for obj in topology.driver_objects(
                    scenario.pools, scenario.publish_slices, scenario.class_selects_driver
                ):
                    if obj["kind"] == "DeviceClass":
                        resource.create_device_class(client.V1DeviceClass.model_validate(obj))
                    else:
                        resource.create_resource_slice(client.V1ResourceSlice.model_validate(obj))
            names = {node["metadata"]["name"] for node in node_objects}
            _wait_for(lambda: names <= _ready_nodes(api), timeout, f"nodes {sorted(names)} Ready (kwok)")
            _wait_for(
                lambda: _exists(lambda: core.read_namespaced_service_account("default", "default")),
                timeout,
                "the default ServiceAccount (kube-controller-manager)",
            )

    def _start_autoscaler(
        self, pool: autoscaler.AutoscaledPool, binaries: Binaries, ports: dict[str, int], timeout: float
    ) -> None:
        """Install the ProvisioningRequest CRD and the kwok provider's ConfigMaps, start CA, and wait until
        it has brought its node group to the minimum size."""
        if not os.access(binaries.cluster_autoscaler, os.X_OK):
            raise ClusterError(
                f"{binaries.cluster_autoscaler} missing: the autoscaling scenarios need the Cluster "
                "Autoscaler (a kwok-provider build placed in cluster/bin, see cluster/README.md)"
            )
        crd = yaml.safe_load(
            (binaries.cluster_autoscaler.parent / autoscaler.PROVISIONING_REQUEST_CRD).read_text()
        )
        path = self.state_dir / f"{autoscaler.BINARY}.kubeconfig"
        kubeconfig.write(
            path,
            self.state()["server"],
            self.pki.ca.cert,
            self.pki.client(pki.CLUSTER_AUTOSCALER),
            pki.CLUSTER_AUTOSCALER.user,
        )
        with self.api_client() as api:
            client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
            core = client.CoreV1Api(api)
            for config_map in autoscaler.config_maps(pool):
                core.create_namespaced_config_map(
                    autoscaler.NAMESPACE, client.V1ConfigMap.model_validate(config_map)
                )
            process = self.process(autoscaler.BINARY)
            port = ports[autoscaler.BINARY]
            process.start(
                [str(binaries.cluster_autoscaler), *autoscaler.flags(pool, path, port)],
                env=autoscaler.env(path),
            )
            wait_healthy(process, f"http://127.0.0.1:{port}/health-check", timeout)

            def at_min_size() -> bool:
                if not process.alive():
                    raise ClusterError(f"{autoscaler.BINARY} exited:\n{process.log_tail()}")
                nodes = api.sanitize_for_serialization(core.list_node().items)
                return len(autoscaler.group_nodes(nodes)) >= pool.min_size

            _wait_for(
                at_min_size,
                timeout,
                f"the Cluster Autoscaler's node group at its minimum of {pool.min_size} Ready node(s)",
            )

    def _start_karpenter(
        self, pool: karpenter.KarpenterPool, binaries: Binaries, timeout: float
    ) -> dict[str, Any]:
        """CRDs Established, the instance types, Karpenter Ready, then its NodeClass and NodePool, and the
        NodePool Ready (Karpenter validated it and resolved the class)."""
        crds = binaries.karpenter.parent / karpenter.CRDS_DIR
        if not os.access(binaries.karpenter, os.X_OK) or not crds.is_dir():
            raise ClusterError(
                f"{binaries.karpenter} or {crds} missing: the karpenter scenarios need Karpenter "
                "(`make karpenter`, see cluster/README.md)"
            )
        cluster = kube.connect(str(self.kubeconfig))
        for path in sorted(crds.glob("*.yaml")):
            for doc in manifests.load(path):
                manifests.create(cluster, doc)
                manifests.wait_condition(
                    cluster, "CustomResourceDefinition", doc["metadata"]["name"], "Established", timeout
                )
        types = self.state_dir / karpenter.INSTANCE_TYPES_FILE
        types.write_text(json.dumps(karpenter.instance_types(pool), indent=2) + "\n")
        config = self.state_dir / f"{karpenter.BINARY}.kubeconfig"
        kubeconfig.write(
            config,
            self.state()["server"],
            self.pki.ca.cert,
            self.pki.issue_client(pki.KARPENTER),
            pki.KARPENTER.user,
        )
        metrics_port, health_port = free_ports(2)
        process = self.process(karpenter.BINARY)
        process.start(
            [str(binaries.karpenter), *karpenter.flags(metrics_port, health_port, types)],
            env={"KUBECONFIG": str(config)},
        )
        wait_healthy(process, f"http://127.0.0.1:{health_port}/readyz", timeout)
        manifests.create(cluster, karpenter.node_class())
        manifests.create(cluster, karpenter.node_pool(pool))
        manifests.wait_condition(cluster, "NodePool", karpenter.NODE_POOL, "Ready", timeout, process)
        return {"metrics_port": metrics_port, "health_port": health_port, "node_pool": karpenter.NODE_POOL}

    def _start_metrics_adapter(
        self, scenario: Scenario, server: str, binaries: Binaries, timeout: float
    ) -> dict[str, Any]:
        with self.api_client() as api:
            metrics_adapter.grant(api)
            info = metrics_adapter.start(
                self.pki,
                self.process,
                self.state_dir,
                server,
                binaries.kaic_cluster.parent,
                stale=scenario.metrics_adapter == "stale",
            )
            metrics_adapter.register(api, self.pki.ca.cert.read_bytes(), info["port"])
            metrics_adapter.wait_available(api, timeout, self.process)
        return info

    def _install_prometheus(
        self, scenario: Scenario, server_port: int, binaries: Binaries, timeout: float
    ) -> dict[str, Any]:
        """Prometheus as a pod of the real node, behind its Service (src/kaic/localcluster/prometheus.py)."""
        real_node = self.real_node()
        bin_dir = binaries.kaic_cluster.parent
        node_binaries = node.find_node_binaries(bin_dir)
        images.import_images(
            node_binaries.ctr,
            real_node.containerd_socket,
            [prometheus.image(bin_dir)],
            real_node.dir / "images",
        )
        cluster = kube.connect(str(self.kubeconfig))
        return prometheus.install(cluster, scenario.monitoring == "dropping", server_port, timeout)

    def _start_real_node(
        self, scenario: Scenario, server: str, binaries: Binaries, timeout: float
    ) -> dict[str, Any]:
        """The real node; its DRA driver runs where the simulated one publishes devices too."""
        real_node = self.real_node()
        dra_driver = scenario.driver_installed and scenario.publish_slices
        info = real_node.up(server, binaries.kaic_cluster.parent, timeout, dra_driver, scenario.gvisor)
        with self.api_client() as api:
            real_node.wait_ready(api, timeout, dra_driver)
        return info

    def _install_operator(self, scenario: Scenario, port: int, binaries: Binaries, timeout: float) -> None:
        """Kubeflow Trainer and JobSet as pods of the real node; their pods start, so allow more than
        `timeout`."""
        directory = binaries.kaic_cluster.parent
        operator.import_images(self.real_node(), directory, operator.operator_images(directory))
        install = operator.TrainerInstall(directory, self.pki, self.kubeconfig, port)
        install.up(max(timeout, operator.START_TIMEOUT), scenario.operator_broken)

    def _install_kueue(self, mode: str, port: int, binaries: Binaries, timeout: float) -> None:
        """Kueue as a pod of the real node; its pod starts, so allow more than `timeout`."""
        directory = binaries.kaic_cluster.parent
        if not (directory / kueue.BINARY).exists() or not (directory / kueue.MANIFESTS).exists():
            raise ClusterError(
                f"{directory / kueue.BINARY} or its manifests missing: build them with `make kueue`"
            )
        operator.import_images(self.real_node(), directory, [kueue.image(directory)])
        install = kueue.KueueInstall(directory, self.pki, self.kubeconfig, port, mode)
        install.up(max(timeout, operator.START_TIMEOUT))

    def _create_runtime_classes(self, runtime_classes: tuple[tuple[str, str], ...]) -> None:
        with self.api_client() as api:
            node_api = client.NodeV1Api(api)
            for name, handler in runtime_classes:
                node_api.create_runtime_class(
                    client.V1RuntimeClass(metadata=client.V1ObjectMeta(name=name), handler=handler)
                )

    def load_image(self, archive: Path) -> None:
        """Import an OCI image archive (`make image`'s runner) into the real node's containerd."""
        ctr = node.find_node_binaries(find_binaries().kaic_cluster.parent).ctr
        images.import_archive(ctr, self.real_node().containerd_socket, archive)

    def stop_processes(self) -> None:
        self._host_teardown()
        for name in reversed(COMPONENTS):
            self.process(name).stop()

    def _host_teardown(self) -> None:
        """Undo what the cluster changed on the host outside its state directory: the real node's side and
        the route guard."""
        self.real_node().teardown()
        if isinstance(guard := self.state().get("route_guard"), dict):
            routes.remove(guard["metric"])

    def down(self) -> list[int]:
        """Stop everything and remove the state directory; return ports still in use (should be none)."""
        ports = self.state().get("ports", {})
        self.stop_processes()
        if self.state_dir.exists():
            if not (self.state_dir / STATE_FILE).exists() and any(self.state_dir.iterdir()):
                raise ClusterError(f"{self.state_dir} holds no kaic cluster; not removing it")
            shutil.rmtree(self.state_dir)
        return [port for port in ports.values() if port_in_use(port)]

    def real_node_pods(self) -> dict[str, str]:
        """The pods bound to the real node, `namespace/name` by UID."""
        with self.api_client() as api:
            listed = client.CoreV1Api(api).list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={node.NODE_NAME}", _request_timeout=10
            )
            pods = api.sanitize_for_serialization(listed.items)
        return {p["metadata"]["uid"]: f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods}

    def resident_bytes(self) -> dict[str, int]:
        return {name: self.process(name).rss_bytes() for name in COMPONENTS}


def _ready_nodes(api: client.ApiClient) -> set[str]:
    nodes = api.sanitize_for_serialization(client.CoreV1Api(api).list_node().items)
    return {node["metadata"]["name"] for node in nodes if is_ready(node)}


def _exists(read: Any) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def _wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
