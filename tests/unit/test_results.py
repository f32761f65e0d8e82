"""The result tree: settling requirements, round trips, atomic saves."""

import json

import pytest

from kaic.outcomes import Outcome
from kaic.results import ProbeResult, Report, RequirementResult, load, save


def probe(name, outcome, kind="behavioural", reason=""):
    return ProbeResult(name=f"r.{name}", requirement="r", test="TestX/Y", kind=kind, outcome=outcome, reason=reason)


def test_reason_required_for_na_and_unknown():
    with pytest.raises(ValueError, match="needs a reason"):
        probe("a", Outcome.UNKNOWN)


def test_discovery_alone_decides_nothing():
    req = RequirementResult("r", "c", "MUST", probes=[probe("d", Outcome.PASSED, kind="discovery")])
    req.settle()
    assert req.outcome is Outcome.UNKNOWN and "attest" in req.reason


def test_discovery_error_voids_a_pass():
    req = RequirementResult(
        "r", "c", "MUST", probes=[probe("b", Outcome.PASSED), probe("d", Outcome.ERROR, "discovery", "403")]
    )
    req.settle()
    assert req.outcome is Outcome.ERROR and "403" in req.reason


def test_behavioural_outcome_with_reason():
    req = RequirementResult("r", "c", "MUST", probes=[probe("b", Outcome.FAILED, reason="leak"), probe("c", "passed")])
    req.settle()
    assert (req.outcome, req.reason) == (Outcome.FAILED, "r.b: leak")


def test_round_trip_and_atomic_save(tmp_path):
    report = Report(
        run={"id": "x", "mode": "quick", "startedAt": "2026-09-15T10:00:00.000Z", "complete": False},
        kaic={}, profile={"id": "p", "version": "1"}, checklist={"detected": None, "chosen": "1.35"},
    )  # fmt: skip
    report.requirements.append(RequirementResult("r", "c", "MUST", probes=[probe("b", Outcome.PASSED)]))
    save(report, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    assert load(tmp_path) == report
    assert json.loads((tmp_path / "report.json").read_text())["requirements"][0]["probes"][0]["outcome"] == "passed"


def test_saved_artifacts_get_the_usual_mode(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        save(Report(run={"id": "x"}, kaic={}, profile={}, checklist={}), tmp_path)
    finally:
        os.umask(mask)
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o644
