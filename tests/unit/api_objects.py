"""API objects as the API server returns them, for unit tests in more than one subfolder.

Imported by name: pytest's default import mode puts tests/unit on sys.path when it loads its conftest.py.
"""

from __future__ import annotations


def rslice(
    driver: str,
    pool: str,
    generation: int,
    devices: int,
    node: str | None = None,
    count: int = 1,
    name: str = "",
    attributes: dict | None = None,
) -> dict:
    """A resource.k8s.io/v1 ResourceSlice as the API server returns it."""
    spec: dict = {
        "driver": driver,
        "pool": {"name": pool, "generation": generation, "resourceSliceCount": count},
        "devices": [
            {"name": f"dev-{i}", "attributes": attributes or {"uuid": {"string": f"{pool}-{generation}-{i}"}}}
            for i in range(devices)
        ],
    }
    if node:
        spec["nodeName"] = node
    else:
        spec["allNodes"] = True
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name or f"{node or 'cluster'}-{driver}-{pool}-{generation}"},
        "spec": spec,
    }
