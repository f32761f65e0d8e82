"""ResourceSlice pools as the scheduler sees them: a pool exists only at its newest generation, and its
devices count only once that generation is complete. Discovery computes this once (facts `resourceSlices`);
probes that read slices live filter them the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _pool_key(rs: Mapping[str, Any]) -> tuple[str, str]:
    spec = rs.get("spec") or {}
    return spec.get("driver", ""), (spec.get("pool") or {}).get("name", "")


def _generation(rs: Mapping[str, Any]) -> int:
    return int(((rs.get("spec") or {}).get("pool") or {}).get("generation", 0))


def _by_pool(slices: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """Slices grouped by pool: a pool name is unique per driver."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for rs in slices:
        grouped.setdefault(_pool_key(rs), []).append(rs)
    return grouped


def _newest(group: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    newest = max(_generation(rs) for rs in group)
    return [rs for rs in group if _generation(rs) == newest]


def current_slices(slices: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Only each pool's newest generation: the scheduler reads nothing else, and a driver may not yet have
    deleted the slices of an older one (their devices no longer exist)."""
    return [rs for group in _by_pool(slices).values() for rs in _newest(group)]


def inventory(slices: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per driver, the devices the scheduler can allocate: a pool counts at its newest generation and only
    once that generation is complete (`resourceSliceCount` slices of it seen). Counted pools (`pools`) record
    their generation and the older slices ignored; pools whose newest generation is incomplete are
    `incompletePools`, counted nowhere."""
    drivers: dict[str, Any] = {}
    for (driver_name, pool_name), group in _by_pool(slices).items():
        driver = drivers.setdefault(
            driver_name,
            {"pools": {}, "incompletePools": {}, "devices": 0, "attributes": set(), "staleSlices": 0},
        )
        current = _newest(group)
        generation, stale = _generation(current[0]), len(group) - len(current)
        expected = max(
            int(((rs.get("spec") or {}).get("pool") or {}).get("resourceSliceCount", 1)) for rs in current
        )
        driver["staleSlices"] += stale
        if len(current) < expected:
            driver["incompletePools"][pool_name] = {
                "generation": generation,
                "slices": len(current),
                "expectedSlices": expected,
                "staleSlices": stale,
            }
            continue
        devices = [d for rs in current for d in (rs.get("spec") or {}).get("devices") or []]
        nodes = sorted({rs["spec"]["nodeName"] for rs in current if (rs.get("spec") or {}).get("nodeName")})
        driver["pools"][pool_name] = {
            "generation": generation,
            "nodes": nodes,
            "devices": len(devices),
            "slices": len(current),
            "staleSlices": stale,
        }
        driver["devices"] += len(devices)
        for device in devices:
            driver["attributes"].update((device.get("attributes") or {}).keys())
    for driver in drivers.values():
        driver["attributes"] = sorted(driver["attributes"])
    return drivers


def uncounted(driver: Mapping[str, Any]) -> str:
    """What a driver's slices show beyond its counted devices: incomplete pools, stale slices ("" if
    nothing)."""
    found = [
        f"pool {name} generation {pool['generation']} has {pool['slices']} of {pool['expectedSlices']} "
        "slices (incomplete, not counted)"
        for name, pool in sorted((driver.get("incompletePools") or {}).items())
    ]
    if driver.get("staleSlices"):
        found.append(f"{driver['staleSlices']} slice(s) of older pool generations ignored")
    return "; ".join(found)
