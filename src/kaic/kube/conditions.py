"""Status conditions, read one way wherever kaic asks whether a node or pod is Ready, a CRD Established or a
Gateway Programmed: probes, discovery and the local cluster alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def condition(status: Mapping[str, Any], kind: str) -> str:
    """The status ("True", "False", "Unknown") of condition `kind` in a status block (an object's `status`, a
    Gateway listener's, a route parent's), "" when absent."""
    return next((c.get("status", "") for c in status.get("conditions") or [] if c.get("type") == kind), "")


def is_true(obj: Mapping[str, Any], kind: str) -> bool:
    """The object's condition `kind` is True."""
    return condition(obj.get("status") or {}, kind) == "True"


def is_ready(obj: Mapping[str, Any]) -> bool:
    """A node or pod is Ready."""
    return is_true(obj, "Ready")
