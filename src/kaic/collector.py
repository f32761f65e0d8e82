"""Turns pytest's per-phase reports into kaic probe results (an in-process pytest plugin object).

pytest knows passed/failed/skipped; kaic needs five outcomes. The mapping (reference §8.1.7, refined):
setup problem → error; call: no exception → passed, assertion or pytest.fail → failed, NotApplicable/Unknown/
ProbeError → that outcome, pytest-timeout → error, any other exception → error (a crash proves nothing about
the cluster), pytest.skip → error (probes must say not-applicable or unknown, with a reason); a teardown
(cleanup) failure turns a pass into an error and is a warning otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from kaic.outcomes import Outcome, ProbeOutcome
from kaic.probe import ProbeSpec
from kaic.pytest_plugin import EVIDENCE_KEY, Recorder
from kaic.results import Evidence, ProbeResult

TIMEOUT_PREFIX = "Timeout"  # pytest-timeout fails a test with "Timeout (>Ns) from pytest-timeout."
_STATE = pytest.StashKey[dict[str, Any]]()


def classify(excinfo: pytest.ExceptionInfo[BaseException] | None, when: str) -> tuple[Outcome, str]:
    if excinfo is None:
        return Outcome.PASSED, ""
    exc = excinfo.value
    if isinstance(exc, ProbeOutcome):
        return exc.outcome, exc.reason
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if when != "call":
        return Outcome.ERROR, f"{when} failed: {type(exc).__name__}: {message}"
    if isinstance(exc, pytest.skip.Exception):
        return Outcome.ERROR, f"probe skipped without a kaic outcome: {message}"
    if isinstance(exc, pytest.fail.Exception) and message.startswith(TIMEOUT_PREFIX):
        return Outcome.ERROR, f"probe timed out ({message})"
    if isinstance(exc, (AssertionError, pytest.fail.Exception)):
        return Outcome.FAILED, message
    return Outcome.ERROR, f"{type(exc).__name__}: {message}"


class Collector:
    """Selects the planned probes and reports each finished probe to `on_result`."""

    def __init__(
        self,
        planned: list[ProbeSpec],
        on_start: Callable[[ProbeSpec], None],
        on_result: Callable[[ProbeResult], None],
        probe_timeout_s: float | None,
    ) -> None:
        self.planned = {p.name: p for p in planned}
        self.collected: set[str] = set()
        self.on_start = on_start
        self.on_result = on_result
        self.probe_timeout_s = probe_timeout_s

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        keep, drop = [], []
        for item in items:
            spec = getattr(getattr(item, "function", None), "kaic_probe", None)
            if spec is not None and spec.name in self.planned:
                keep.append(item)
                self.collected.add(spec.name)
                timeout = spec.timeout_s if self.probe_timeout_s is None else self.probe_timeout_s
                item.add_marker(pytest.mark.timeout(timeout))
            else:
                drop.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep

    def missing(self) -> list[ProbeSpec]:
        """Planned probes pytest did not collect (an import error in a probe module, say)."""
        return [spec for name, spec in self.planned.items() if name not in self.collected]

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        spec: ProbeSpec = item.function.kaic_probe  # type: ignore[attr-defined]
        item.stash[_STATE] = {"started": datetime.now(UTC), "t0": time.monotonic(), "phases": []}
        self.on_start(spec)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        state = item.stash.get(_STATE, None)
        if state is None:
            return report
        outcome, reason = classify(call.excinfo, call.when)
        if call.excinfo is not None and isinstance(call.excinfo.value, ProbeOutcome):
            # Show kaic's own outcomes as skips in pytest.log rather than as crashes.
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, f"{outcome}: {reason}")
        state["phases"].append((call.when, outcome, reason, report.longreprtext if report.failed else ""))
        if call.when == "teardown":
            self.on_result(self._result(item, state))
        return report

    def _result(self, item: pytest.Item, state: dict[str, Any]) -> ProbeResult:
        spec: ProbeSpec = item.function.kaic_probe  # type: ignore[attr-defined]
        recorder: Recorder = item.stash.get(EVIDENCE_KEY, Recorder())
        outcome, reason, warnings = Outcome.PASSED, "", list(recorder.warnings)
        evidence = list(recorder.evidence)
        for when, phase_outcome, phase_reason, text in state["phases"]:
            if text:
                evidence.append(Evidence(kind="log", name=f"{when} traceback", content=_tail(text)))
            if when == "teardown" and phase_outcome is not Outcome.PASSED:
                if outcome is Outcome.PASSED:
                    outcome, reason = Outcome.ERROR, f"cleanup: {phase_reason}"
                else:
                    warnings.append(f"cleanup: {phase_reason}")
            elif phase_outcome is not Outcome.PASSED and outcome is Outcome.PASSED:
                outcome, reason = phase_outcome, phase_reason
        return ProbeResult(
            name=spec.name,
            requirement=spec.requirement,
            test=spec.test,
            kind=spec.kind,
            outcome=outcome,
            reason=reason,
            warnings=warnings,
            evidence=evidence,
            started_at=state["started"].isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            duration_s=round(time.monotonic() - state["t0"], 3),
        )


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])
