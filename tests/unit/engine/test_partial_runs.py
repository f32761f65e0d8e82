"""Runs that left MUSTs out, did not complete or errored never claim conformance: verdict, exit code,
summary, kaic-junit.xml and the signed predicate agree."""

from __future__ import annotations

import json

import jsonschema
import pytest
from junitparser import Error, JUnitXml, Properties, Skipped
from rich.console import Console

from kaic.certify import sign as signer
from kaic.engine.run import finalize
from kaic.resources import resource_dir
from kaic.results.outcomes import Outcome
from kaic.results.report import ProbeResult, Report, RequirementResult
from kaic.results.writers import junit, summary

SCHEMA = json.loads((resource_dir("schemas") / "report.schema.json").read_text(encoding="utf-8"))
LEVELS = {"dra_support": "MUST", "ai_inference": "MUST", "gang_scheduling": "MUST", "gpu_sharing": "SHOULD"}


def selected_run(outcome: Outcome = Outcome.PASSED, **excluded: str) -> Report:
    """A run of dra_support only (its probe ends in `outcome`); the rest of the checklist as `excluded`."""
    probe = ProbeResult(
        name="dra_support.allocate",
        requirement="dra_support",
        test="TestKaicDraSupport/Allocate",
        kind="behavioural",
        outcome=outcome,
        reason="" if outcome is Outcome.PASSED else f"{outcome} on purpose",
        started_at="2026-09-15T10:00:00Z",
        duration_s=1.0,
    )
    return Report(
        run={
            "id": "r",
            "mode": "non-disruptive",
            "startedAt": "2026-09-15T10:00:00Z",
            "complete": False,
            "focus": ["dra_support"],
            "skip": [],
            "excluded": excluded,
        },
        kaic={"kaic": "0.1.0"},
        profile={"id": "ai-v1.0", "version": "1.0.0"},
        checklist={"detected": "1.35", "chosen": "1.35", "levels": LEVELS},
        requirements=[RequirementResult("dra_support", "accelerators", "MUST", probes=[probe])],
    )


FOCUSED = dict.fromkeys(("ai_inference", "gang_scheduling", "gpu_sharing"), "not in --focus")


def test_a_focused_run_whose_selection_passed_is_partial_exit_4_naming_the_musts_not_run():
    report = selected_run(**FOCUSED)
    finalize(report, complete=True, why_incomplete="")
    assert (report.verdict["result"], report.verdict["exitCode"]) == ("partial", 4)
    assert report.verdict["summary"] == (
        "partial: every selected MUST passed, but these MUSTs did not run: "
        "ai_inference (not in --focus), gang_scheduling (not in --focus)"
    )
    assert report.verdict["mustsNotRun"] == ["ai_inference", "gang_scheduling"]  # not the SHOULD gpu_sharing
    jsonschema.validate(report.to_dict(), SCHEMA)


def test_leaving_out_only_shoulds_can_still_be_conformant():
    report = selected_run(gpu_sharing="--skip")
    finalize(report, complete=True, why_incomplete="")
    assert (report.verdict["result"], report.verdict["exitCode"], report.verdict["mustsNotRun"]) == (
        "conformant",
        0,
        [],
    )


@pytest.mark.parametrize(
    ("outcome", "result", "code"),
    [
        (Outcome.FAILED, "not-conformant", 1),
        (Outcome.ERROR, "incomplete", 3),
        (Outcome.UNKNOWN, "undetermined", 4),
    ],
)
def test_a_selection_that_did_not_pass_keeps_its_verdict_and_warns_of_musts_left_out(outcome, result, code):
    report = selected_run(outcome, ai_inference="--skip")
    finalize(report, complete=True, why_incomplete="")
    assert (report.verdict["result"], report.verdict["exitCode"]) == (result, code)
    assert (
        "MUST requirements left out of this run, so not judged: ai_inference (--skip)"
        in (report.verdict["warnings"])
    )


def test_summary_and_run_output_never_say_conformant_for_a_partial_run():
    report = selected_run(**FOCUSED)
    finalize(report, complete=True, why_incomplete="")
    text = summary.markdown(report)
    assert (
        "**Verdict: partial (exit code 4: nothing failed, but a MUST requirement needs manual attestation or "
        "did not run); MUSTs not run: ai_inference, gang_scheduling**"
    ) in text
    assert "| ai_inference | MUST | excluded | left out of the run: not in --focus |" in text
    assert "| gpu_sharing | SHOULD | excluded | left out of the run: not in --focus |" in text
    console = Console(record=True, width=250)
    summary.render_summary(report, console)  # what `kaic run` prints at the end
    printed = console.export_text()
    assert "Verdict: partial" in printed and "conformant" not in printed.replace("not-conformant", "")


def kaic_cases(report: Report):
    (suite,) = list(JUnitXml.fromstring(junit.kaic_junit(report)))
    return suite, {(c.classname, c.name): c for c in suite}


def test_kaic_junit_of_a_partial_run_skips_each_must_left_out():
    report = selected_run(**FOCUSED)
    finalize(report, complete=True, why_incomplete="")
    suite, cases = kaic_cases(report)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (3, 0, 0, 2)
    (skipped,) = cases[("kaic.run", "excluded: ai_inference")].result
    assert isinstance(skipped, Skipped)
    assert skipped.message == "NOT RUN: MUST requirement left out of the run (not in --focus)"
    props = {p.name: p.value for p in cases[("kaic.run", "excluded: gang_scheduling")].child(Properties)}
    assert props == {"requirement.id": "gang_scheduling", "requirement.level": "MUST", "outcome": "excluded"}
    suite_props = {p.name: p.value for p in suite.properties()}
    assert suite_props["run.excluded"] == "ai_inference,gang_scheduling,gpu_sharing"
    assert suite_props["verdict"] == "partial"


def test_kaic_junit_of_an_incomplete_run_has_an_error_even_without_probes():
    report = selected_run()
    report.requirements[0].probes.clear()
    finalize(report, complete=False, why_incomplete="preflight: missing create on namespaces")
    suite, cases = kaic_cases(report)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (1, 0, 1, 0)
    (error,) = cases[("kaic.run", "incomplete")].result
    assert isinstance(error, Error)
    assert error.message == "run incomplete: preflight: missing create on namespaces"
    assert error.type == "incomplete"


def test_kaic_junit_of_a_run_whose_must_errored_has_a_run_error_naming_it():
    report = selected_run(Outcome.ERROR)
    finalize(report, complete=True, why_incomplete="")
    suite, cases = kaic_cases(report)
    assert (suite.tests, suite.errors) == (2, 2)
    (error,) = cases[("kaic.run", "incomplete")].result
    assert error.message == "incomplete: errored: dra_support"


def test_kaic_junit_of_a_conformant_run_has_no_run_level_testcase():
    report = selected_run()
    finalize(report, complete=True, why_incomplete="")
    suite, cases = kaic_cases(report)
    assert report.verdict["result"] == "conformant"
    assert (suite.tests, suite.errors, list(cases)) == (1, 0, [("kaic.accelerators", "dra_support.allocate")])


def test_the_signed_predicate_of_a_partial_run_is_not_passed_and_names_the_musts_not_run():
    report = selected_run(**FOCUSED)
    finalize(report, complete=True, why_incomplete="")
    predicate = signer.predicate(report)
    assert (predicate["result"], predicate["verdict"]) == ("FAILED", "partial")
    assert predicate["mustsNotRun"] == ["ai_inference", "gang_scheduling"]
