"""The run's knobs, typed, each with its one default.

The CLI's flags take their defaults from here, the engine hands the chosen values to every probe process (in
the run's settings file) and probes read them as `run.settings`. It imports nothing of kaic, so the cluster
access layer, the engine, the areas and the CLI all read the same defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

REQUEST_TIMEOUT_S = 30.0  # one API request
PARALLEL = 4  # most probes at once; probes that consume the same thing never overlap
CLEANUP_TIMEOUT_S = 120.0  # how long deleted namespaces may take to go
RESULTS_TTL_S = 7 * 24 * 3600.0  # how long an in-cluster run's results wait to be retrieved
ALLOCATION_MODES = ("auto", "dra", "device-plugin")  # how probes ask for devices (Settings.allocation_mode)
GANG_SCHEDULERS = ("auto", "native", "kueue", "volcano", "coscheduling")  # Gang.scheduler


@dataclass(frozen=True)
class Gang:
    """Which gang-scheduling solution the gang probes judge and how to reach it (upstream's -gang-* flags)."""

    scheduler: str = "auto"
    namespace: str = ""  # a pre-made namespace wired to the solution (e.g. holding a Kueue LocalQueue)
    job_labels: dict[str, str] = field(default_factory=dict)
    scheduler_name: str = ""  # pods' spec.schedulerName; "" = the adapter's usual one
    window_s: float = 30.0  # the longest a gang that cannot fit is watched for binds
    bind_timeout_s: float = 120.0  # how long a gang that fits may take to be bound whole, then started


@dataclass(frozen=True)
class Operator:
    """Which AI operator the robust_controller probes judge (upstream's -operator* flags)."""

    operator: str = "auto"
    runtime: str = ""  # "" = the operator profile's default runtime
    ready_timeout_s: float = 300.0
    reconcile_timeout_s: float = 180.0


@dataclass(frozen=True)
class Autoscaler:
    """The isolated accelerator pool cluster_autoscaling may grow, and how long each step may take."""

    node_pool_label: str | None = None  # key=value; unset: the scale-up check is unknown
    scale_up_timeout_s: float = 20 * 60
    scale_down_timeout_s: float = 30 * 60


@dataclass(frozen=True)
class Metrics:
    """Where the metrics probes read accelerator and workload series."""

    endpoint: str | None = None  # the accelerator exporter's /metrics (a URL or an API server path)
    query_url: str | None = None  # a Prometheus-compatible query API
    prometheus_service: str | None = None  # NAMESPACE/NAME[:PORT], reached through the service proxy
    utilization_metric: str | None = None  # None: the exporter's own name
    memory_metric: str | None = None
    collection_timeout_s: float = 180.0  # how long the query API may take to report a workload's series
    custom_metrics_timeout_s: float = 120.0  # how long the custom metrics API may take to report a value


@dataclass(frozen=True)
class Network:
    """What high_performance_networking and advanced_inference_ingress judge."""

    gaie_conformance_dir: str | None = None  # a gateway-api-inference-extension checkout whose suite to run
    device_class: str | None = None  # None: the first whose selector names the network driver
    attribute: str = "rdma"  # the boolean device attribute the network claim selects on
    attachment: str | None = None  # NAMESPACE/NAME of a NetworkAttachmentDefinition; None: the first


@dataclass(frozen=True)
class Disaggregated:
    """The disaggregated serving stack disaggregated_inference judges."""

    namespace: str = ""
    roles: dict[str, str] = field(default_factory=dict)  # ROLE -> label selector; empty: the llm-d roles
    endpoint: str = ""  # the stack's OpenAI-style API as reached from inside the cluster
    model: str = ""  # "": the first the stack lists


@dataclass(frozen=True)
class Settings:
    """Every knob a probe reads."""

    accelerator_profile: str = "auto"
    allocation_mode: str = "auto"
    tolerations: tuple[dict[str, str], ...] = ()  # added to every probe pod (--toleration)
    images: dict[str, str] = field(default_factory=dict)  # --image overrides by key
    image_mirror: str | None = None
    sandbox_runtime_class: str | None = None  # None: the first that names a sandbox
    gateway_class: str | None = None  # None: the first Accepted one by name
    cleanup_timeout_s: float = CLEANUP_TIMEOUT_S
    schedule_timeout_s: float = 90.0  # how long the scheduler may take to bind a pod that fits or refuse one
    gang: Gang = field(default_factory=Gang)
    operator: Operator = field(default_factory=Operator)
    autoscaler: Autoscaler = field(default_factory=Autoscaler)
    metrics: Metrics = field(default_factory=Metrics)
    network: Network = field(default_factory=Network)
    disaggregated: Disaggregated = field(default_factory=Disaggregated)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        """The settings `to_json` wrote (the run's settings file, read in every probe process)."""
        # Any: mypy deems is_dataclass(f.default_factory) never true, so would keep MISSING among the values
        groups: dict[str, Any] = {
            f.name: f.default_factory
            for f in dataclasses.fields(cls)
            if dataclasses.is_dataclass(f.default_factory)
        }
        values = {name: groups[name](**value) if name in groups else value for name, value in data.items()}
        values["tolerations"] = tuple(values.get("tolerations") or ())
        return cls(**values)
