"""The result tree: settling requirements, round trips, atomic saves."""

import json

import pytest

from kaic.results.outcomes import Outcome
from kaic.results.report import (
    EVIDENCE_KINDS,
    REASON_CHARS,
    SCHEMA_FILE,
    Evidence,
    ProbeResult,
    Recorder,
    Report,
    RequirementResult,
    load,
    save,
    shorten,
)
from kaic.results.run_dir import REPORT_FILE


def probe(name, outcome, kind="behavioural", reason=""):
    return ProbeResult(
        name=f"r.{name}", requirement="r", test="TestX/Y", kind=kind, outcome=outcome, reason=reason
    )


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
    req = RequirementResult(
        "r", "c", "MUST", probes=[probe("b", Outcome.FAILED, reason="leak"), probe("c", "passed")]
    )
    req.settle()
    assert (req.outcome, req.reason) == (Outcome.FAILED, "r.b: leak")


def test_round_trip_and_atomic_save(tmp_path):
    report = Report(
        run={"id": "x", "mode": "quick", "startedAt": "2026-09-15T10:00:00.000Z", "complete": False},
        kaic={},
        profile={"id": "p", "version": "1"},
        checklist={"detected": None, "chosen": "1.35"},
    )
    report.requirements.append(RequirementResult("r", "c", "MUST", probes=[probe("b", Outcome.PASSED)]))
    save(report, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [REPORT_FILE]
    assert load(tmp_path) == report
    assert (
        json.loads((tmp_path / REPORT_FILE).read_text())["requirements"][0]["probes"][0]["outcome"]
        == "passed"
    )


def test_a_probe_result_travels_from_a_worker_as_report_json_holds_it():
    """The engine's collector and the report loader read a result with the same decoder."""
    result = ProbeResult(
        "r.b",
        "r",
        "TestR/B",
        "behavioural",
        Outcome.FAILED,
        reason="leak",
        warnings=["slow"],
        evidence=[Evidence("log", "pod", "boom")],
        started_at="2026-09-15T10:00:00.000Z",
        duration_s=1.5,
    )
    sent = json.loads(json.dumps(result.to_json()))
    assert (sent["startedAt"], sent["durationSeconds"], sent["outcome"]) == (
        "2026-09-15T10:00:00.000Z",
        1.5,
        "failed",
    )
    assert ProbeResult.from_json(sent) == result


def test_saved_artifacts_get_the_usual_mode(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        save(Report(run={"id": "x"}, kaic={}, profile={}, checklist={}), tmp_path)
    finally:
        os.umask(mask)
    assert (tmp_path / REPORT_FILE).stat().st_mode & 0o777 == 0o644


# A reason as long as the accelerator detection trail: every vendor profile's findings on both paths.
TRAIL = (
    "no recognised accelerator on allocation path auto ("
    + "; ".join(
        f"{vendor}: dra no DeviceClass selects driver {vendor}.example.com, device-plugin no node advertises "
        f"{vendor}.com/gpu"
        for vendor in ("nvidia", "amd", "intel", "google-tpu", "simulated")
    )
    + "); inventory 4 nodes, 0 ResourceSlices"
)


def test_a_short_reason_is_kept_as_it_is():
    assert shorten("no autoscaler installed") == "no autoscaler installed"
    assert shorten("two\nlines") == "two\nlines"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            TRAIL,
            (
                "no recognised accelerator on allocation path auto (nvidia: dra no DeviceClass selects "
                "driver nvidia.example.com, device-plugin no node advertises nvidia.com/gpu…"
            ),
        ),
        ("First finding. " + "x" * 300, ("First finding. " + "x" * 300)[:199] + "…"),  # no end past half
        ("a" * 120 + ". " + "b " * 100, "a" * 120 + "…"),
        ("word " * 100, ("word " * 39).strip() + "…"),
        ("z" * 300, "z" * 199 + "…"),
    ],
)
def test_a_long_reason_is_cut_at_a_sentence_or_clause_end_with_an_ellipsis(text, expected):
    short = shorten(text)
    assert len(short) <= REASON_CHARS
    assert short == expected


def test_a_requirement_names_at_most_two_deciding_probes():
    req = RequirementResult(
        "r", "c", "MUST", probes=[probe(n, Outcome.UNKNOWN, reason=TRAIL) for n in "abcd"]
    )
    req.settle()
    assert req.reason.startswith("r.a: no recognised accelerator")
    assert "; r.b: no recognised accelerator" in req.reason and "r.c" not in req.reason
    assert req.reason.endswith("… (+2 more)")
    assert len(req.reason) <= REASON_CHARS
    one = RequirementResult("r", "c", "MUST", probes=[probe("a", Outcome.FAILED, reason=TRAIL)])
    one.settle()
    assert one.reason == "r.a: " + shorten(TRAIL, REASON_CHARS - len("r.a: ") - 2)


def test_excluded_musts_come_from_the_checklist_levels_or_fail_closed():
    report = Report(
        run={"id": "x", "excluded": {"a": "--skip", "b": "not in --focus"}},
        kaic={},
        profile={},
        checklist={"levels": {"a": "MUST", "b": "SHOULD", "c": "MUST"}},
    )
    report.requirements.append(RequirementResult("c", "k", "MUST", outcome=Outcome.PASSED))
    assert report.excluded_musts() == ["a"]
    assert (report.level("c"), report.level("b"), report.level("zz")) == ("MUST", "SHOULD", None)
    assert report.judge(complete=True).value == "partial"
    del report.checklist["levels"]  # a report from before levels were recorded: its level is not known
    assert report.excluded_musts() == ["a", "b"]
    report.run["excluded"] = {}
    assert report.judge(complete=True).value == "conformant"


def test_every_evidence_kind_a_probe_may_record_is_one_the_report_schema_accepts():
    """A kind the schema refuses would make the run's own report.json unreadable by `kaic results`."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert tuple(schema["$defs"]["evidence"]["properties"]["kind"]["enum"]) == EVIDENCE_KINDS


def test_the_recorder_refuses_an_evidence_kind_the_report_cannot_hold():
    recorder = Recorder()
    recorder.add("metric", "reading", {"value": 1})
    with pytest.raises(ValueError, match="evidence kind 'metrics'"):
        recorder.add("metrics", "reading", 1)
