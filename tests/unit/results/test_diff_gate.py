"""The upgrade gate fails closed: a case per rule over Report objects, and the CLI's exit code for each."""

import json
from datetime import date

import pytest

from kaic.results.diff import diff
from kaic.results.waivers import Waiver

TODAY = date(2026, 9, 20)
SAA = "secure_accelerator_access"  # a MUST that OLD passes (RunPair)
NEGATIVE = f"{SAA}.negative-isolation"


@pytest.fixture
def pair(run_pair):
    for report in (run_pair.old, run_pair.new):
        run_pair.record_levels(report)
    return run_pair


def drop(report, req_id, why=None):
    """Take a requirement out of a run: left out by its plan when `why` is given, else just absent."""
    report.requirements = [r for r in report.requirements if r.id != req_id]
    if why:
        report.run["excluded"] = {**(report.run.get("excluded") or {}), req_id: why}


def not_run(report, req_id):
    req = report.requirement(req_id)
    req.probes, req.outcome, req.reason = [], None, ""


def waiver(req_id=SAA, probe=None):
    return Waiver(req_id, "accepted for this window", "sre@example.com", date(2026, 12, 31), probe)


def the_change(result, req_id=SAA):
    return next(r for r in result.requirements if r.id == req_id)


# Each requirement rule: how NEW loses a MUST that OLD passed, its state in NEW and what the gate says.
RULES = {
    "failed": (lambda r: r.set(r.new, NEGATIVE, "failed", "pod sees /dev/nvidia0"), "failed in NEW"),
    "error": (lambda r: r.set(r.new, NEGATIVE, "error", "image pull failed"), "errored in NEW"),
    "unknown": (lambda r: r.set(r.new, NEGATIVE, "unknown", "node runs no containers"), "unknown in NEW"),
    "not-run": (lambda r: not_run(r.new, SAA), "not run in NEW"),
    "excluded": (lambda r: drop(r.new, SAA, "--skip"), "left out of NEW by its plan: --skip"),
    "missing": (lambda r: drop(r.new, SAA), "absent from the NEW report"),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_every_rule_blocks_a_must_that_old_passed(pair, rule):
    make, said = RULES[rule]
    make(pair)
    result = diff(pair.old, pair.new, [], TODAY)
    change = the_change(result)
    assert (change.change, change.rule, change.blocking) == ("regression", rule, True)
    assert change.new_level == "MUST"
    assert change.new_state == rule
    assert result.exit_code == 1
    (reason,) = result.reasons
    assert (reason.rule, reason.requirement) == (rule, SAA)
    assert reason.text.startswith(f"MUST in NEW's checklist, passed in OLD, {said}")


@pytest.mark.parametrize("rule", list(RULES))
def test_every_rule_blocks_a_justified_not_applicable_too(pair, rule):
    for name in (f"{SAA}.positive-access", NEGATIVE):
        pair.set(pair.old, name, "not-applicable", "no accelerator node")
    RULES[rule][0](pair)
    assert the_change(diff(pair.old, pair.new, [], TODAY)).rule == rule


@pytest.mark.parametrize("rule", list(RULES))
def test_every_rule_names_itself_in_the_text_and_json_and_exits_1(pair, rule):
    RULES[rule][0](pair)
    cli = pair.diff()
    assert cli.exit_code == 1, cli.output
    assert f"rule {rule}: {SAA}: MUST in NEW's checklist, passed in OLD, {RULES[rule][1]}" in cli.output
    assert f"blocks the gate (rule {rule})" in cli.output
    assert "gate: FAILED, MUST regression without a valid waiver: secure_accelerator_access" in cli.output
    doc = json.loads(pair.diff("-o", "json").stdout)
    assert doc["gate"]["exitCode"] == 1 and doc["gate"]["passed"] is False
    assert [(r["rule"], r["requirement"]) for r in doc["gate"]["reasons"]] == [(rule, SAA)]
    (req,) = [r for r in doc["requirements"] if r["id"] == SAA]
    assert (req["rule"], req["state"]["new"], req["blocking"]) == (rule, rule, True)


@pytest.mark.parametrize("rule", list(RULES))
def test_a_requirement_waiver_covers_every_rule(pair, rule):
    RULES[rule][0](pair)
    result = diff(pair.old, pair.new, [waiver()], TODAY)
    change = the_change(result)
    assert (change.rule, change.blocking, change.waived_by, result.exit_code) == (rule, False, [waiver()], 0)
    assert result.reasons == []


@pytest.mark.parametrize("rule", ["not-run", "excluded", "missing"])
def test_a_probe_waiver_cannot_cover_a_requirement_that_did_not_run(pair, rule):
    RULES[rule][0](pair)
    result = diff(pair.old, pair.new, [waiver(probe=NEGATIVE)], TODAY)
    assert (result.exit_code, [w.probe for w in result.unused]) == (1, [NEGATIVE])


def test_a_should_left_out_or_missing_is_listed_and_never_blocks(pair):
    pair.set(pair.old, "driver_runtime_management.versions", "passed")
    drop(pair.new, "driver_runtime_management", "not in --focus")
    result = diff(pair.old, pair.new, [], TODAY)
    change = the_change(result, "driver_runtime_management")
    assert (change.change, change.new_state, change.rule) == ("regression", "excluded", None)
    assert result.exit_code == 0


def test_a_must_old_did_not_pass_does_not_block_when_left_out(pair):
    """ai_service_metrics errored in OLD: NEW leaving it out proves nothing worse."""
    drop(pair.new, "ai_service_metrics", "--skip")
    change = the_change(diff(pair.old, pair.new, [], TODAY), "ai_service_metrics")
    assert (change.change, change.old_state, change.new_state) == ("fix", "error", "excluded")
    assert not change.blocking


def test_a_focus_run_as_new_blocks_on_every_must_it_left_out(pair):
    """NEW ran only dra_support (--focus): every other MUST OLD passed closes the gate."""
    pair.set(pair.old, "ai_service_metrics.scrape", "passed")
    for req in [r.id for r in pair.new.requirements if r.id != "dra_support"]:
        drop(pair.new, req, "not in --focus")
    result = diff(pair.old, pair.new, [], TODAY)
    assert sorted(r.id for r in result.blocking) == ["ai_service_metrics", "cluster_autoscaling", SAA]
    assert {r.rule for r in result.blocking} == {"excluded"}


def test_a_new_report_without_requirements_or_levels_fails_closed(pair):
    """A report that lists nothing and records no checklist: OLD's passes count as missing at OLD's level."""
    pair.new.requirements, pair.new.checklist = [], {"detected": "1.35", "chosen": "1.35"}
    result = diff(pair.old, pair.new, [], TODAY)
    assert sorted(r.id for r in result.blocking) == ["cluster_autoscaling", SAA]
    change = the_change(result)
    assert (change.rule, change.new_level) == ("missing", "MUST")
    assert "the NEW report records no checklist levels; its level is taken from OLD" in change.notes
    assert pair.diff().exit_code == 1


def test_a_requirement_new_checklist_dropped_is_removed_not_missing(pair):
    drop(pair.new, SAA)
    del pair.new.checklist["levels"][SAA]
    change = the_change(diff(pair.old, pair.new, [], TODAY))
    assert (change.change, change.new_state, change.blocking) == ("removed", None, False)


def test_different_checklists_are_compared_by_id_at_new_levels(pair):
    """OLD judged 1.35, where driver_runtime_management is a SHOULD; NEW judged 1.36, where it is a MUST."""
    pair.set(pair.old, "driver_runtime_management.versions", "passed")
    pair.new.checklist["chosen"] = "1.36"
    pair.new.requirement("driver_runtime_management").level = "MUST"
    drop(pair.new, "driver_runtime_management", "--skip")
    pair.record_levels(pair.new, driver_runtime_management="MUST")
    result = diff(pair.old, pair.new, [], TODAY)
    change = the_change(result, "driver_runtime_management")
    assert (change.old_level, change.new_level, change.rule) == ("SHOULD", "MUST", "excluded")
    compared = "the runs judged different checklists, so requirements are compared by id and gated at NEW's"
    assert any(w.startswith(compared) for w in result.warnings)
    assert "warning: the runs judged different checklists" in pair.diff().output


def test_an_incomplete_new_run_blocks_and_no_waiver_covers_it(pair):
    pair.new.run |= {"complete": False, "incompleteReason": "run timeout"}
    result = diff(pair.old, pair.new, [waiver(r.id) for r in pair.new.requirements], TODAY)
    assert (result.exit_code, result.blocking) == (1, [])
    said = "the NEW run r2 is incomplete: run timeout"
    assert [(r.rule, r.text) for r in result.reasons] == [("new-incomplete", said)]
    cli = pair.diff()
    assert cli.exit_code == 1
    assert "rule new-incomplete: the NEW run r2 is incomplete: run timeout" in cli.output
    assert "gate: FAILED, the NEW run is incomplete" in cli.output
    doc = json.loads(pair.diff("-o", "json").stdout)
    assert doc["gate"]["reasons"] == [
        {"rule": "new-incomplete", "requirement": None, "text": "the NEW run r2 is incomplete: run timeout"}
    ]
    assert doc["new"]["incompleteReason"] == "run timeout"


def test_an_incomplete_old_run_leaves_the_gate_undecided_exit_3(pair):
    pair.old.run |= {"complete": False, "incompleteReason": "interrupted"}
    result = diff(pair.old, pair.new, [], TODAY)
    assert result.exit_code == 3
    assert [r.rule for r in result.reasons] == ["old-incomplete"]
    cli = pair.diff()
    assert cli.exit_code == 3, cli.output
    assert "gate: UNDECIDED, the OLD run (the baseline) is incomplete; rerun it and diff again" in cli.output
    assert json.loads(pair.diff("-o", "json").stdout)["gate"]["exitCode"] == 3


def test_both_runs_incomplete_fails_the_gate_naming_both(pair):
    for report in (pair.old, pair.new):
        report.run |= {"complete": False, "incompleteReason": "run timeout"}
    result = diff(pair.old, pair.new, [], TODAY)
    assert (result.exit_code, [r.rule for r in result.reasons]) == (1, ["new-incomplete", "old-incomplete"])
    assert pair.diff().exit_code == 1


def test_a_regression_against_an_incomplete_baseline_still_fails(pair):
    """A pass OLD proved is a pass, even in a run that did not finish: losing it is a proven regression."""
    pair.old.run |= {"complete": False, "incompleteReason": "interrupted"}
    RULES["failed"][0](pair)
    result = diff(pair.old, pair.new, [], TODAY)
    assert (result.exit_code, [r.rule for r in result.reasons]) == (1, ["failed", "old-incomplete"])
