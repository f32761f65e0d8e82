"""Named cluster shapes: the reference AI cluster, the focused shapes it is made of, and broken variants that
kaic must not pass.

`reference` (the default) runs every real component that builds here at once; `conformant` is its kwok-only
core. Each broken scenario changes one thing relative to its focused shape, so a probe's verdict can move
only in its own rows of the golden matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kaic.localcluster.autoscaler import AutoscaledPool
from kaic.localcluster.karpenter import KarpenterPool
from kaic.localcluster.topology import CPU_ONLY_POOLS, DEFAULT_POOLS, DRIVER, NodePool

# Native gang scheduling in 1.37 is the beta `GenericWorkload` gate (`GangScheduling` folded into it)
# serving scheduling.k8s.io/v1beta1 Workload and PodGroup; beta APIs are off unless runtime-config asks.
GANG_GATES = {"GenericWorkload": True}
GANG_RUNTIME_CONFIG = {"scheduling.k8s.io/v1beta1": True}
# Every resource.k8s.io version the 1.37 apiserver knows; `no-dra` switches all of them off.
DRA_VERSIONS = ("v1", "v1beta1", "v1beta2", "v1alpha3")
# kube-scheduler 1.37 builds its ResourceClaim/ResourceSlice/DeviceClass informers whenever
# DynamicResourceAllocation is on (pkg/scheduler/scheduler.go, independent of the profile's plugins) and
# waits for them before scheduling anything; the gate is locked on since 1.35. A scheduler for a cluster
# without the DRA API must therefore emulate 1.34, the newest version where the gate may be switched off,
# together with the gates that depend on it. 1.34 has no GenericWorkload, so that scheduler has no gang
# scheduling either.
NO_DRA_SCHEDULER_VERSION = "1.34"
# `broken-dra`: the class names a driver that publishes nothing here (a typo'd or renamed driver).
BROKEN_CLASS_DRIVER = "gpu.example.org"
NO_DRA_SCHEDULER_GATES = {
    "DynamicResourceAllocation": False,
    "DRAAdminAccess": False,
    "DRAPrioritizedList": False,
    "DRASchedulerFilterTimeout": False,
}


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    # Feature gates for the apiserver and controller-manager.
    gates: dict[str, bool] = field(default_factory=lambda: dict(GANG_GATES))
    # The scheduler's gates, when they differ from `gates`.
    scheduler_gates: dict[str, bool] | None = None
    runtime_config: dict[str, bool] = field(default_factory=lambda: dict(GANG_RUNTIME_CONFIG))
    pools: tuple[NodePool, ...] = DEFAULT_POOLS
    # Whether the simulated driver publishes its DeviceClass, and whether it publishes ResourceSlices.
    driver_installed: bool = True
    publish_slices: bool = True
    # The driver its DeviceClass's CEL selector names; anything but DRIVER matches none of the published
    # devices.
    class_selects_driver: str = DRIVER
    # Apiserver readiness checks this shape cannot pass (left out of the wait for /readyz).
    readyz_exclude: tuple[str, ...] = ()
    # kube-scheduler plugins switched off in its default profile (a KubeSchedulerConfiguration via --config).
    scheduler_disabled_plugins: tuple[str, ...] = ()
    # kube-scheduler --emulated-version, when it must not be the binary's own.
    scheduler_emulated_version: str | None = None
    # An accelerator node group run by the upstream Cluster Autoscaler (kwok provider), if any.
    autoscaler: AutoscaledPool | None = None
    # An accelerator NodePool run by Karpenter (kwok provider), starting at zero nodes, if any.
    karpenter: KarpenterPool | None = None
    # One real worker node (kubelet + containerd, `node.py`) beside the kwok nodes; needs root.
    real_node: bool = False
    # The custom metrics adapter (`metrics_adapter.py`) on the real node's network: "serving" or "stale".
    metrics_adapter: str | None = None
    # Prometheus (`prometheus.py`) scraping annotated pods on the real node: "scraping", or "dropping" with a
    # relabelling rule that drops the pods kaic labels.
    monitoring: str | None = None
    # Kubeflow Trainer (with JobSet) as pods on the real node (`operator.py`); `operator_broken`: its webhook
    # Service points at a port nothing serves.
    operator: bool = False
    operator_broken: bool = False
    # Kueue as a pod on the real node (`kueue.py`): "serving" (it manages batch/v1 Jobs) or
    # "no-job-integration" (it is set up for JobSets only).
    kueue: str | None = None
    # The real node's containerd also offers the runtime handler runsc (gVisor, cluster/README.md).
    gvisor: bool = False
    # RuntimeClasses (name, handler) created once the real node is up; the handler must be one of its
    # containerd's runtimes (runc, or runsc with `gvisor`).
    runtime_classes: tuple[tuple[str, str], ...] = ()
    # The standard Gateway API CRDs and Traefik's kubernetesGateway provider on the node address
    # (`gateway.py`): "serving", or "wrong-entrypoint" (Traefik listens where no Gateway listener asks for).
    gateway: str | None = None

    @property
    def scales_nodes(self) -> bool:
        """A node autoscaler runs: the Cluster Autoscaler or Karpenter."""
        return bool(self.autoscaler or self.karpenter)

    def gates_for_scheduler(self) -> dict[str, bool]:
        return self.gates if self.scheduler_gates is None else self.scheduler_gates


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "reference",
            "every real component that builds here, together: conformant's DRA, device-plugin and native "
            "gang scheduling, plus the real node (DRA GPUs through CDI), the custom metrics adapter, "
            "Prometheus, Kubeflow Trainer with JobSet, gVisor's runsc behind a RuntimeClass gvisor, "
            "Traefik with the Gateway API CRDs, and Karpenter (kwok provider) scaling a one-GPU pool",
            real_node=True,
            metrics_adapter="serving",
            monitoring="scraping",
            operator=True,
            gvisor=True,
            runtime_classes=(("gvisor", "runsc"),),
            gateway="serving",
            karpenter=KarpenterPool(),
        ),
        Scenario(
            "conformant",
            "DRA with a simulated GPU driver, device-plugin GPUs, native gang scheduling",
        ),
        Scenario(
            "no-dra",
            "resource.k8s.io not served at any version; no driver; the scheduler emulates 1.34 with DRA off, "
            "so there is no native gang scheduling either",
            # 1.34's scheduler cannot honour PodGroups, so the API is not served (absent, not broken).
            gates={"GenericWorkload": False},
            scheduler_gates=NO_DRA_SCHEDULER_GATES,
            runtime_config={f"resource.k8s.io/{v}": False for v in DRA_VERSIONS},
            driver_installed=False,
            publish_slices=False,
            # The Node authorizer's ResourceSlice informer can never sync without the API.
            readyz_exclude=("informer-sync",),
            scheduler_disabled_plugins=("DynamicResources",),
            scheduler_emulated_version=NO_DRA_SCHEDULER_VERSION,
        ),
        Scenario(
            "no-devices",
            "DRA API served but no driver: no DeviceClass, no ResourceSlices",
            driver_installed=False,
            publish_slices=False,
        ),
        Scenario(
            "no-gang",
            "no gang scheduling solution: GenericWorkload off, scheduling.k8s.io/v1beta1 not served",
            gates={"GenericWorkload": False},
            runtime_config={},
        ),
        Scenario(
            "broken-gang",
            "Workload/PodGroup API served but the scheduler ignores pod groups, so gangs bind partially",
            scheduler_gates={"GenericWorkload": False},
        ),
        Scenario(
            "broken-dra",
            "DRA API, driver and slices present, but the DeviceClass selects another driver's devices "
            "(a misconfigured class), so the scheduler allocates no claim of that class",
            class_selects_driver=BROKEN_CLASS_DRIVER,
        ),
        Scenario(
            "no-gpu-nodes",
            "only CPU nodes: the driver is installed but finds no GPU, no extended resource",
            pools=CPU_ONLY_POOLS,
            publish_slices=False,
        ),
        Scenario(
            "autoscaling",
            "as conformant, plus the upstream Cluster Autoscaler (kwok provider) running a one-GPU node "
            "group (min 1, max 2) labelled kaic.io/node-pool=autoscale, with ProvisioningRequests enabled",
            autoscaler=AutoscaledPool(),
        ),
        Scenario(
            "broken-autoscaling",
            "as autoscaling, but --max-nodes-total caps the cluster at its starting size: the autoscaler "
            "runs and reports, the pool says max 2, yet no node is ever added",
            autoscaler=AutoscaledPool(
                max_nodes_total=sum(p.nodes for p in DEFAULT_POOLS) + AutoscaledPool().min_size
            ),
        ),
        Scenario(
            "karpenter",
            "as conformant, plus Karpenter v1.15.0 (kwok provider) with one NodePool of one-GPU nodes "
            "labelled kaic.io/node-pool=autoscale, from zero up to 2 nodes, empty nodes removed after 10s",
            karpenter=KarpenterPool(),
        ),
        Scenario(
            "broken-karpenter",
            "as karpenter, but the NodePool's CPU limit (48) is below its only instance type's 96 CPUs: "
            "Karpenter runs and the NodePool is Ready, yet no node is ever added",
            karpenter=KarpenterPool(cpu_limit="48"),
        ),
        Scenario(
            "real-node",
            "as conformant, plus the real node (containers really run; its GPUs from the upstream "
            "dra-example-driver, injected through CDI) and a custom metrics API server scraping the pods "
            "there, so the real HPA controller scales on what pods serve",
            real_node=True,
            metrics_adapter="serving",
        ),
        Scenario(
            "broken-pod-autoscaling",
            "as real-node, but the metrics adapter serves each pod's first reading forever (a pipeline "
            "whose scrapes stopped): the metrics API is Available, the HPA never moves",
            real_node=True,
            metrics_adapter="stale",
        ),
        Scenario(
            "observability",
            "as conformant, plus the real node and upstream Prometheus (built from its module) discovering "
            "pods with kubernetes_sd and scraping those with the prometheus.io annotations every 5s",
            real_node=True,
            monitoring="scraping",
        ),
        Scenario(
            "broken-observability",
            "as observability, but a relabelling rule drops every pod labelled kaic.dev/run-id: Prometheus "
            "runs and answers queries, yet never collects a probe's workload",
            real_node=True,
            monitoring="dropping",
        ),
        Scenario(
            "operator",
            "as conformant, plus a real node running Kubeflow Trainer v2.3.0 and JobSet v0.12.0, built from "
            "their modules, with the ClusterTrainingRuntime kaic-busybox",
            real_node=True,
            operator=True,
        ),
        Scenario(
            "broken-operator",
            "as operator, but the Trainer webhook's Service "
            "sends the API server to a port nothing listens on",
            real_node=True,
            operator=True,
            operator_broken=True,
        ),
        Scenario(
            "kueue",
            "as no-gang (no native gang scheduling, so Kueue is the solution kaic finds), plus a real node "
            "running Kueue v0.17.0, built from its module, managing batch/v1 Jobs with waitForPodsReady",
            gates={"GenericWorkload": False},
            runtime_config={},
            real_node=True,
            kueue="serving",
        ),
        Scenario(
            "broken-kueue",
            "as kueue, but Kueue is set up for JobSets only: nothing reconciles a queued Job, so it is "
            "never admitted and never runs",
            gates={"GenericWorkload": False},
            runtime_config={},
            real_node=True,
            kueue="no-job-integration",
        ),
        Scenario(
            "sandbox",
            "as conformant, plus the real node with gVisor's runsc as the runtime handler runsc and a "
            "RuntimeClass gvisor: its pods run on gVisor's own kernel",
            real_node=True,
            gvisor=True,
            runtime_classes=(("gvisor", "runsc"),),
        ),
        Scenario(
            "broken-sandbox",
            "as conformant, plus the real node and a RuntimeClass named sandboxed whose handler is plain "
            "runc: it looks like a sandbox runtime, yet its pods share the node's kernel",
            real_node=True,
            runtime_classes=(("sandboxed", "runc"),),
        ),
        Scenario(
            "gateway",
            "as conformant, plus the real node, the standard Gateway API v1.6.3 CRDs and Traefik v3.6.12 as "
            "the Gateway implementation (GatewayClass traefik), proxying on the node address port 80",
            real_node=True,
            gateway="serving",
        ),
        Scenario(
            "broken-gateway",
            "as gateway, but Traefik's HTTP entrypoint listens on :8000 (its chart's container port) while "
            "Gateways ask for port 80: the class is Accepted, no port-80 Gateway is ever Programmed",
            real_node=True,
            gateway="wrong-entrypoint",
        ),
    )
}


def flag_value(settings: dict[str, bool]) -> str:
    """`a=true,b=false` as --feature-gates and --runtime-config take them."""
    return ",".join(f"{key}={str(value).lower()}" for key, value in sorted(settings.items()))
