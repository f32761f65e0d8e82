"""The labels on everything kaic creates: how a run finds, and `kaic cleanup` sweeps, only its own objects."""

from __future__ import annotations

RUN_ID_LABEL = "kaic.dev/run-id"
# An in-cluster run's own objects (kaic.incluster) carry this label instead of RUN_ID_LABEL: the run's closing
# sweep, which deletes what carries RUN_ID_LABEL, must not delete the runner that is sweeping.
RUNNER_LABEL = "kaic.dev/runner-of"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kaic"}


def run_labels(run_id: str) -> dict[str, str]:
    """The labels of one run's objects."""
    return {RUN_ID_LABEL: run_id, **MANAGED_BY}


def selector(run_id: str | None, label: str = RUN_ID_LABEL) -> str:
    """A label selector for one run's objects, or (None) every kaic run's objects; `label` RUNNER_LABEL
    selects in-cluster runs' own objects instead."""
    managed = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    return f"{label}={run_id},{managed}" if run_id else f"{label},{managed}"


def runner_labels(run_id: str) -> dict[str, str]:
    """The labels of an in-cluster run's namespace, runner, RBAC and stored results."""
    return {RUNNER_LABEL: run_id, **MANAGED_BY}
