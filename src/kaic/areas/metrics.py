"""Reading what monitoring systems and exporters say: exposition text, PromQL answers, per-device series.

The observability probes judge numbers other software produced, so everything here parses with the real
formats' own rules (prometheus_client's exposition parser, the Prometheus HTTP API's JSON) and none of it
talks to a cluster: the probes fetch, these functions decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.samples import Sample

# Labels exporters put the device on (upstream's TestAcceleratorPerformanceMetrics list).
DEVICE_LABELS = (
    "gpu",
    "UUID",
    "uuid",
    "device_id",
    "dev_id",
    "card_id",
    "GPU_I_ID",
    "minor_number",
    "pci_bus_id",
)
# Upstream's generic rule when the vendor's names are not known: utilisation and memory by name.
GENERIC_UTILISATION = re.compile(r"util", re.IGNORECASE)
GENERIC_MEMORY = re.compile(r"mem|fb|vram|hbm", re.IGNORECASE)


@dataclass(frozen=True)
class Exporter:
    """One vendor's exporter: how to recognise it in a cluster and which series answer the requirement."""

    vendor: str
    name_pattern: str  # matched against Service/DaemonSet names and app labels
    port: int
    utilisation: tuple[str, ...]
    memory: tuple[str, ...]


EXPORTERS = {
    "nvidia": Exporter(
        "nvidia",
        r"dcgm",
        9400,
        ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"),
        ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"),
    ),
    "amd": Exporter(
        "amd",
        r"amd.*(metrics|exporter)|device-metrics-exporter",
        5000,
        ("gpu_gfx_activity",),
        ("gpu_used_vram", "gpu_total_vram"),
    ),
    "intel": Exporter(
        "intel",
        r"habana|gaudi|xpu-?(manager|smi)",
        41611,
        ("habanalabs_utilization",),
        ("habanalabs_memory_used_bytes",),
    ),
}


def exporter_with(vendor: str, utilisation: str | None = None, memory: str | None = None) -> Exporter | None:
    """The vendor's exporter conventions, with the series named by --metrics-utilization-metric and
    --metrics-memory-metric (upstream's flags) in place of its own where given."""
    known = EXPORTERS.get(vendor)
    if not (utilisation or memory):
        return known
    return Exporter(
        vendor,
        known.name_pattern if known else r"$^",
        known.port if known else 0,
        (utilisation,) if utilisation else known.utilisation if known else (),
        (memory,) if memory else known.memory if known else (),
    )


def samples(text: str) -> list[Sample]:
    """Every sample of a text exposition; a malformed exposition raises ValueError."""
    from prometheus_client.parser import text_string_to_metric_families  # here: checking flags parses none

    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def total(found: Iterable[Sample], name: str, labels: Mapping[str, str]) -> float | None:
    """Sum of the samples named `name` carrying all of `labels` (None: no such sample)."""
    values = [
        s.value for s in found if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(values) if values else None


@dataclass
class DeviceSeries:
    """Which devices an exporter's exposition describes, and the series that name no device."""

    utilisation: dict[str, list[str]] = field(default_factory=dict)  # device -> series names
    memory: dict[str, list[str]] = field(default_factory=dict)
    unlabelled: list[str] = field(default_factory=list)

    def complete(self) -> set[str]:
        return set(self.utilisation) & set(self.memory)

    def problems(self, expected_devices: int) -> list[str]:
        """Why the exposition does not answer the requirement (empty: it does)."""
        found = []
        if self.unlabelled:
            found.append(
                f"series without a device label ({', '.join(DEVICE_LABELS)}): {sorted(set(self.unlabelled))}"
            )
        if not self.utilisation:
            found.append("no utilisation series")
        if not self.memory:
            found.append("no memory series")
        for device in sorted(set(self.utilisation) ^ set(self.memory)):
            missing = "memory" if device in self.utilisation else "utilisation"
            found.append(f"device {device} has no {missing} series")
        if len(self.complete()) < expected_devices:
            found.append(
                f"{len(self.complete())} device(s) have utilisation and memory series, "
                f"{expected_devices} expected"
            )
        return found


def _kind(sample: Sample, exporter: Exporter | None) -> str | None:
    """The sample's kind (utilisation, memory, or None): the vendor's names, else upstream's generic rule."""
    if exporter:
        names = (("utilisation", exporter.utilisation), ("memory", exporter.memory))
        return next((kind for kind, known in names if sample.name in known), None)
    rules = (("utilisation", GENERIC_UTILISATION), ("memory", GENERIC_MEMORY))
    return next((kind for kind, rule in rules if rule.search(sample.name)), None)


def _device(sample: Sample) -> str | None:
    return next((sample.labels[k] for k in DEVICE_LABELS if sample.labels.get(k)), None)


def device_series(found: Iterable[Sample], exporter: Exporter | None) -> DeviceSeries:
    """Group utilisation and memory samples by device."""
    result = DeviceSeries()
    for sample in found:
        if (kind := _kind(sample, exporter)) is None:
            continue
        if (device := _device(sample)) is None:
            result.unlabelled.append(sample.name)
            continue
        getattr(result, kind).setdefault(device, []).append(sample.name)
    return result


# Utilisation series that are a ratio (0-1); every other one is a percentage. A device under load must rise by
# at least this share of its series' full scale over its idle reading.
RATIO_SERIES = frozenset({"DCGM_FI_PROF_GR_ENGINE_ACTIVE"})
MIN_RISE = 0.10


def utilisation(
    found: Iterable[Sample], exporter: Exporter | None, identities: Iterable[str] = ()
) -> dict[tuple[str, str], float]:
    """(series, device) -> utilisation, of the devices any of whose device labels is one of `identities`
    (every device when none are given)."""
    wanted = set(identities)
    return {
        (sample.name, device): sample.value
        for sample in found
        if _kind(sample, exporter) == "utilisation"
        and (device := _device(sample)) is not None
        and (not wanted or wanted & {sample.labels.get(k) for k in DEVICE_LABELS})
    }


def risen(
    idle: Mapping[tuple[str, str], float], loaded: Mapping[tuple[str, str], float]
) -> list[tuple[str, str]]:
    """The (series, device) readings that rose under load by MIN_RISE of their full scale."""
    return sorted(
        key
        for key, value in loaded.items()
        if value - idle.get(key, 0.0) >= MIN_RISE * (1.0 if key[0] in RATIO_SERIES else 100.0)
    )


def exporter_for(name: str, labels: Mapping[str, str]) -> Exporter | None:
    """The vendor exporter a Service or pod looks like, by its name or its app labels."""
    keys = (name, labels.get("app", ""), labels.get("app.kubernetes.io/name", ""))
    for exporter in EXPORTERS.values():
        if any(re.search(exporter.name_pattern, key, re.IGNORECASE) for key in keys if key):
            return exporter
    return None


def query_scalar(answer: Mapping[str, Any]) -> float | None:
    """The one value of an instant PromQL query (Prometheus HTTP API JSON); None for an empty result.

    An error answer or a result of several series is not a reading, so it raises ValueError."""
    if answer.get("status") != "success":
        raise ValueError(f"query failed: {answer.get('errorType', '')} {answer.get('error', answer)}".strip())
    data = answer.get("data") or {}
    result: Any = data.get("result")
    if data.get("resultType") == "scalar":
        return float(result[1])
    if data.get("resultType") != "vector":
        raise ValueError(f"expected a vector or scalar, got {data.get('resultType')!r}")
    if not result:
        return None
    if len(result) > 1:
        raise ValueError(f"expected one series, got {len(result)}: {[r.get('metric') for r in result]}")
    return float(result[0]["value"][1])


def service_ref(text: str) -> tuple[str, str, int | None]:
    """NAMESPACE/NAME[:PORT] (--prometheus-service) as (namespace, name, port or None)."""
    found = re.fullmatch(r"([a-z0-9-]{1,63})/([a-z0-9-]{1,63})(?::(\d{1,5}))?", text)
    if not found:
        raise ValueError(
            f"{text!r}: use NAMESPACE/NAME or NAMESPACE/NAME:PORT of a Service, e.g. "
            "monitoring/prometheus-operated:9090"
        )
    namespace, name, port = found.groups()
    return namespace, name, int(port) if port else None


def query_port(service: Mapping[str, Any]) -> int | None:
    """The port a Prometheus Service serves its HTTP API on: named web/http, or numbered 9090."""
    return next(
        (
            p["port"]
            for p in (service.get("spec") or {}).get("ports") or []
            if p.get("name") in ("web", "http", "http-web") or p.get("port") == 9090
        ),
        None,
    )


def prometheus_service(services: Iterable[Mapping[str, Any]]) -> tuple[str, str, int] | None:
    """(namespace, name, port) of the Prometheus server a cluster runs, as the operator or a chart names it.

    The operator's governing Service `prometheus-operated` comes first, then any Service named or labelled
    prometheus with a port named web/http or numbered 9090 (never an exporter or an operator's own)."""
    candidates = []
    for svc in services:
        meta = svc.get("metadata") or {}
        labels = meta.get("labels") or {}
        name = meta.get("name", "")
        named = "prometheus" in name or labels.get("app.kubernetes.io/name") == "prometheus"
        if not named or re.search(r"operator|exporter|adapter|alertmanager|pushgateway|node", name):
            continue
        if (port := query_port(svc)) is not None:
            candidates.append((name != "prometheus-operated", meta.get("namespace", ""), name, port))
    if not candidates:
        return None
    _, namespace, name, port = min(candidates)
    return namespace, name, port
