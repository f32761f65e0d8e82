"""The one outcome table: probe outcomes, how a requirement aggregates them, what each maps to, exit codes.

Every writer, the verdict and the exit code read this module; nothing else defines an outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "not-applicable"  # reason required: the requirement's context is absent
    UNKNOWN = "unknown"  # reason required: needs manual attestation
    ERROR = "error"  # the environment or the probe broke; the result is void


REASON_REQUIRED = frozenset({Outcome.NOT_APPLICABLE, Outcome.UNKNOWN})


@dataclass(frozen=True)
class Mapping:
    """What one outcome becomes in each artifact."""

    product_status: str  # PRODUCT.yaml `status`
    junit: str  # element inside <testcase> of kaic-junit.xml ("" = none: a pass)
    gotest_action: str  # go test -json terminal action (junit.xml, results.json, e2e.log follow it)
    summary_result: str  # per-requirement result in the signed summary


TABLE: dict[Outcome, Mapping] = {
    Outcome.PASSED: Mapping("Implemented", "", "pass", "PASSED"),
    Outcome.FAILED: Mapping("Not Implemented", "failure", "fail", "FAILED"),
    Outcome.NOT_APPLICABLE: Mapping("N/A", "skipped", "skip", "NOT_APPLICABLE"),
    Outcome.UNKNOWN: Mapping("", "skipped", "skip", "UNKNOWN"),
    Outcome.ERROR: Mapping("", "error", "fail", "ERROR"),
}

# Aggregation precedence, strongest first; all not-applicable is the only way to not-applicable.
_PRECEDENCE = (Outcome.FAILED, Outcome.ERROR, Outcome.UNKNOWN)


def aggregate(outcomes: Iterable[Outcome]) -> Outcome | None:
    """Fold probe outcomes into a requirement outcome; None when no probe ran."""
    seen = set(outcomes)
    if not seen:
        return None
    for outcome in _PRECEDENCE:
        if outcome in seen:
            return outcome
    if seen == {Outcome.NOT_APPLICABLE}:
        return Outcome.NOT_APPLICABLE
    return Outcome.PASSED


class ExitCode(IntEnum):
    CONFORMANT = 0  # every MUST passed (a justified not-applicable MUST passes with a warning)
    NOT_CONFORMANT = 1  # a MUST failed
    USAGE = 2  # usage or input error
    INCOMPLETE = 3  # preflight failed, a MUST errored, timeout, interrupt
    UNDETERMINED = 4  # nothing failed, a MUST is unknown or was left out (focus/skip)


class Verdict(StrEnum):
    CONFORMANT = "conformant"
    NOT_CONFORMANT = "not-conformant"
    INCOMPLETE = "incomplete"
    UNDETERMINED = "undetermined"
    PARTIAL = "partial"  # every selected MUST passed, but the plan left MUSTs out: conformance undetermined


VERDICT_EXIT = {
    Verdict.CONFORMANT: ExitCode.CONFORMANT,
    Verdict.NOT_CONFORMANT: ExitCode.NOT_CONFORMANT,
    Verdict.INCOMPLETE: ExitCode.INCOMPLETE,
    Verdict.UNDETERMINED: ExitCode.UNDETERMINED,
    Verdict.PARTIAL: ExitCode.UNDETERMINED,
}


def verdict(musts: Iterable[Outcome], complete: bool, musts_left_out: bool = False) -> Verdict:
    """Judge a run from its MUST outcomes.

    A proven MUST failure stands even in an incomplete run; otherwise an incomplete run or an errored MUST
    voids the result before an unknown MUST can make it undetermined. A run whose plan left MUSTs out
    (--focus, --skip) never says conformant: at best its selection passed. SHOULDs never change the verdict.
    """
    seen = set(musts)
    if Outcome.FAILED in seen:
        return Verdict.NOT_CONFORMANT
    if not complete or Outcome.ERROR in seen:
        return Verdict.INCOMPLETE
    if Outcome.UNKNOWN in seen:
        return Verdict.UNDETERMINED
    return Verdict.PARTIAL if musts_left_out else Verdict.CONFORMANT


class ProbeOutcome(Exception):
    """Raised by a probe to end with an outcome other than passed or failed."""

    outcome: Outcome

    def __init__(self, reason: str) -> None:
        if not reason.strip():
            raise ValueError(f"{type(self).__name__} needs a reason")
        super().__init__(reason)
        self.reason = reason


class NotApplicable(ProbeOutcome):
    """The requirement's context is absent here (say why, with the detection trail)."""

    outcome = Outcome.NOT_APPLICABLE


class Unknown(ProbeOutcome):
    """kaic cannot decide; a person must attest (say what was found)."""

    outcome = Outcome.UNKNOWN


class ProbeError(ProbeOutcome):
    """The environment broke in a way that says nothing about conformance."""

    outcome = Outcome.ERROR
