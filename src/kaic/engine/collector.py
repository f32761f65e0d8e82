"""Turns pytest's per-phase reports into kaic probe results, wherever the probe ran.

The kaic pytest plugin calls `classify` and `assemble` in the process that ran the probe (an xdist worker or
the engine's own process) and ships the finished result in the teardown report's `user_properties`, which
xdist carries to the controller; there the `Collector` hands it to the engine.

pytest knows passed/failed/skipped; kaic needs five outcomes. The mapping:
setup problem → error; call: no exception → passed, assertion or pytest.fail → failed, NotApplicable/Unknown/
ProbeError → that outcome, pytest-timeout → error, any other exception → error (a crash proves nothing about
the cluster), pytest.skip → error (probes must say not-applicable or unknown, with a reason); a teardown
(cleanup) failure turns a pass into an error and is a warning otherwise. In setup or call, a create that the
cluster's admission policy or quota refused is unknown, naming the policy (`kaic.areas.policy.api_denial`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from kaic.areas.policy import api_denial
from kaic.probe import ProbeSpec
from kaic.results.outcomes import Outcome, ProbeOutcome
from kaic.results.report import Evidence, ProbeResult, Recorder, shorten

TIMEOUT_PREFIX = "Timeout"  # pytest-timeout fails a test with "Timeout (>Ns) from pytest-timeout."
RESULT_PROPERTY = "kaic.result"
FULL_REASON = "full reason"  # evidence name of a reason too long to show whole


@dataclass
class Phase:
    when: str  # setup | call | teardown
    outcome: Outcome
    reason: str
    traceback: str = ""


def classify(excinfo: pytest.ExceptionInfo[BaseException] | None, when: str) -> tuple[Outcome, str]:
    if excinfo is None:
        return Outcome.PASSED, ""
    exc = excinfo.value
    if isinstance(exc, ProbeOutcome):
        return exc.outcome, exc.reason
    if when != "teardown" and (denied := api_denial(exc)):
        return (
            Outcome.UNKNOWN,
            denied,
        )  # the cluster's policy refused a create: not a verdict, not kaic's fault
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


def assemble(
    spec: ProbeSpec, phases: list[Phase], recorder: Recorder, started: datetime, duration_s: float
) -> ProbeResult:
    """One result from the three phases: the first non-pass decides; a failed cleanup never hides a finding.

    A reason longer than people read is shortened (`shorten`) and kept whole as the first evidence.
    """
    outcome, reason, warnings = Outcome.PASSED, "", list(recorder.warnings)
    evidence = list(recorder.evidence)
    for phase in phases:
        if phase.traceback:
            evidence.append(
                Evidence(kind="log", name=f"{phase.when} traceback", content=_tail(phase.traceback))
            )
        if phase.when == "teardown" and phase.outcome is not Outcome.PASSED:
            if outcome is Outcome.PASSED:
                outcome, reason = Outcome.ERROR, f"cleanup: {phase.reason}"
            else:
                warnings.append(f"cleanup: {phase.reason}")
        elif phase.outcome is not Outcome.PASSED and outcome is Outcome.PASSED:
            outcome, reason = phase.outcome, phase.reason
    if shorten(reason) != reason:
        evidence.insert(0, Evidence(kind="text", name=FULL_REASON, content=reason))
    return ProbeResult(
        name=spec.name,
        requirement=spec.requirement,
        test=spec.test,
        kind=spec.kind,
        outcome=outcome,
        reason=shorten(reason),
        warnings=warnings,
        evidence=evidence,
        started_at=started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        duration_s=round(duration_s, 3),
    )


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


class Collector:
    """The engine's in-process plugin: progress events and finished results, from this process or xdist's,
    and, under xdist, the scheduler that keeps each lane's probes apart."""

    def __init__(
        self,
        planned: list[ProbeSpec],
        on_start: Callable[[ProbeSpec], None],
        on_result: Callable[[ProbeResult], None],
        lanes: Mapping[str, str] | None = None,
    ) -> None:
        self.planned = {p.name: p for p in planned}
        self.by_location = {p.location: p for p in planned}
        self.lanes = lanes or {}  # probe name -> lane (Plan.lanes); a probe not named has a lane of its own
        self.finished: set[str] = set()
        self.on_start = on_start
        self.on_result = on_result

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """One worker per lane, its probes one after another; other lanes run beside it. Not xdist's own
        loadgroup: it marks groups by a suffix it appends to node ids, which pytest 9.2's node ids no longer
        take, so every probe became a group of its own and consumers of the same devices ran at once."""
        from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

        lane_of = {
            location: self.lanes.get(spec.name, location) for location, spec in self.by_location.items()
        }

        class LaneScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return lane_of.get(nodeid.rsplit("/", 1)[-1], nodeid)

        return LaneScheduling(config, log)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        spec = self.by_location.get(nodeid.rsplit("/", 1)[-1])
        if spec is not None:
            self.on_start(spec)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == RESULT_PROPERTY and isinstance(value, str):  # the JSON kaic's plugin wrote
                result = ProbeResult.from_json(json.loads(value))
                self.finished.add(result.name)
                self.on_result(result)

    def missing(self) -> list[ProbeSpec]:
        """Planned probes that produced no result (not collected, or their worker died)."""
        return [spec for name, spec in self.planned.items() if name not in self.finished]
