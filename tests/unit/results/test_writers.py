"""The derived artifacts: parsed back with the tools their readers use, and checked against the outcome
table."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
from junitparser import Error, Failure, JUnitXml, Properties, Skipped
from rich.console import Console

from kaic.results.outcomes import REASON_REQUIRED, TABLE, ExitCode, Outcome, Verdict
from kaic.results.report import (
    REPORT_SCHEMA_VERSION,
    SCHEMA_FILE,
    Evidence,
    ProbeResult,
    Report,
    RequirementResult,
    save,
)
from kaic.results.writers import gotest, junit, summary, tool_version, write_all
from kaic.results.writers.text import excerpt, strip_ansi

SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
GO_KEY_ORDER = ["Time", "Action", "Package", "Test", "Output", "Elapsed"]
ARTIFACTS = {"results.json", "e2e.log", "junit.xml", "kaic-junit.xml", "summary.md"}
REASONS = {o: f"because of {o}" for o in Outcome}


def one_probe_report(outcome: Outcome, test: str = "TestKaicX/Sub", **probe_fields: object) -> Report:
    probe = ProbeResult(
        name="req_x.probe",
        requirement="req_x",
        test=test,
        kind="behavioural",
        outcome=outcome,
        reason=REASONS[outcome],
        started_at="2026-09-15T10:00:00Z",
        duration_s=0.5,
        **probe_fields,  # type: ignore[arg-type]
    )
    req = RequirementResult("req_x", "security", "MUST", probes=[probe])
    req.settle()
    return Report(
        run={"id": "r", "mode": "non-disruptive", "startedAt": "2026-09-15T10:00:00Z", "complete": True},
        kaic={"kaic": "0.1.0"},
        profile={"id": "ai-v1.0", "version": "1"},
        checklist={"detected": "1.35", "chosen": "1.35"},
        requirements=[req],
    )


def replay(text: str) -> dict[str, dict]:
    """Replay a go test -json stream as a consumer would; assert its invariants; return per-test state."""
    events = [json.loads(line) for line in text.splitlines()]
    assert events[0]["Action"] == "start" and "Test" not in events[0]
    assert events[-1]["Action"] in ("pass", "fail") and "Test" not in events[-1]
    tests: dict[str, dict] = {}
    for event in events:
        keys = list(event)
        assert keys == [k for k in GO_KEY_ORDER if k in event], keys
        assert event["Package"] == gotest.PACKAGE
        datetime.fromisoformat(event["Time"])
        assert ("Elapsed" in event) == (event["Action"] in ("pass", "fail", "skip"))
        name = event.get("Test")
        if name is None:
            continue
        state = tests.setdefault(name, {"events": [], "action": None, "output": ""})
        if event["Action"] == "run":
            assert not state["events"], f"{name} ran twice"
            parent = name.rsplit("/", 1)[0]
            if parent != name:
                assert tests[parent]["action"] is None, f"{name} ran after its parent ended"
        else:
            assert state["events"] and state["action"] is None, f"{name}: event outside run…end"
        state["events"].append(event["Action"])
        if event["Action"] == "output":
            state["output"] += event["Output"]
        if event["Action"] in ("pass", "fail", "skip"):
            state["action"] = event["Action"]
    for name, state in tests.items():
        assert state["action"], f"{name} never ended"
        children = [s["action"] for n, s in tests.items() if n.rsplit("/", 1)[0] == name and n != name]
        if children:
            assert state["action"] == gotest.fold_actions(children)
    return tests


def test_write_all_writes_every_artifact_atomically_and_deterministically(
    sample_report: Report, tmp_path: Path
) -> None:
    paths = write_all(sample_report, tmp_path)
    assert {p.name for p in paths} == ARTIFACTS
    assert {p.name for p in tmp_path.iterdir()} == ARTIFACTS  # no temporary files left behind
    first = {p.name: p.read_bytes() for p in paths}
    write_all(Report.from_dict(json.loads(json.dumps(sample_report.to_dict()))), tmp_path)
    assert {p.name: p.read_bytes() for p in paths} == first


def test_results_json_replays_as_go_test_events(sample_report: Report) -> None:
    tests = replay(gotest.results_json(gotest.events(sample_report)))
    for probe in sample_report.probes():
        assert tests[probe.test]["action"] == TABLE[probe.outcome].gotest_action
    assert tests["TestSecureAcceleratorAccess"]["action"] == "fail"
    assert tests["TestKaicDraSupport"]["action"] == "pass"
    assert tests["TestKaicDriverRuntimeManagement"]["action"] == "skip"  # all its subtests skipped


def test_e2e_log_is_the_go_test_v_text(sample_report: Report) -> None:
    log = gotest.verbose_log(gotest.events(sample_report))
    assert log.startswith("=== RUN   TestSecureAcceleratorAccess\n")
    assert (
        "--- FAIL: TestSecureAcceleratorAccess (3.76s)\n    --- PASS: TestSecureAcceleratorAccess/Positive"
        in log
    )
    assert log.endswith(f"FAIL\nFAIL\t{gotest.PACKAGE}\t35.500s\nFAIL\n")


def test_verbose_log_nests_results_and_names_interleaved_output() -> None:
    """Three levels, and a parent that logs after its subtests (shape taken from a real `go test -v`)."""
    report = one_probe_report(Outcome.PASSED, test="TestA/B/C")
    parent = ProbeResult(
        "req_x.own", "req_x", "TestA", "behavioural", Outcome.NOT_APPLICABLE, reason="n/a here"
    )
    report.requirements[0].probes.append(parent)
    log = gotest.verbose_log(gotest.events(report))
    assert log.splitlines()[:8] == [
        "=== RUN   TestA",
        "=== RUN   TestA/B",
        "=== RUN   TestA/B/C",
        "    kaic probe req_x.probe",
        "    because of passed",
        "=== NAME  TestA",
        "    kaic probe req_x.own",
        "    N/A: n/a here",
    ]
    assert re.findall(r"^ *--- \w+: \S+", log, re.MULTILINE) == [
        "--- PASS: TestA",
        "    --- PASS: TestA/B",
        "        --- PASS: TestA/B/C",
    ]


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_maps_through_the_table(outcome: Outcome) -> None:
    report = one_probe_report(outcome)
    tests = replay(gotest.results_json(gotest.events(report)))
    action = TABLE[outcome].gotest_action
    assert tests["TestKaicX/Sub"]["action"] == action
    assert tests["TestKaicX"]["action"] == action
    output = tests["TestKaicX/Sub"]["output"]
    assert output.endswith(f"--- {action.upper()}: TestKaicX/Sub (0.50s)\n")
    if outcome in REASON_REQUIRED:  # as t.Skip prints it: the reason, then the SKIP line
        label = "N/A" if outcome is Outcome.NOT_APPLICABLE else "UNKNOWN"
        assert output.splitlines()[-2] == f"    {label}: {REASONS[outcome]}"

    gotest_cases = {
        c.name: c for s in JUnitXml.fromstring(junit.gotest_junit(gotest.events(report), "v")) for c in s
    }
    kinds = {"pass": [], "fail": [Failure], "skip": [Skipped]}[action]
    assert [type(r) for r in gotest_cases["TestKaicX/Sub"].result] == kinds

    (case,) = [c for s in JUnitXml.fromstring(junit.kaic_junit(report)) for c in s]
    element = TABLE[outcome].junit
    expected = {"failure": [Failure], "error": [Error], "skipped": [Skipped], "": []}[element]
    assert [type(r) for r in case.result] == expected
    if element:
        (result,) = case.result
        assert REASONS[outcome] in result.message
    if outcome in REASON_REQUIRED:
        assert case.result[0].message in (f"N/A: {REASONS[outcome]}", f"UNKNOWN: {REASONS[outcome]}")


def test_gotest_junit_counts_and_messages(sample_report: Report) -> None:
    xml = JUnitXml.fromstring(junit.gotest_junit(gotest.events(sample_report), tool_version(sample_report)))
    (suite,) = list(xml)
    assert suite.name == gotest.PACKAGE
    assert (suite.tests, suite.failures, suite.skipped, suite.errors) == (11, 4, 4, 0)
    assert [(p.name, p.value) for p in suite.properties()] == [("go.version", "kaic 0.1.0 (python 3.12.3)")]
    cases = {c.name: c for c in suite}
    assert all(c.classname == gotest.PACKAGE for c in cases.values())
    (skip,) = cases["TestAcceleratorClusterAutoscaling"].result
    assert "N/A: no cluster autoscaler is installed" in skip.message
    (fail,) = cases["TestSecureAcceleratorAccess/NegativeIsolationTest"].result
    assert fail.message == "Failed" and "FAILED: a pod without a claim sees /dev/nvidia0" in fail.text
    assert cases["TestKaicDraSupport/Discovery"].time == pytest.approx(0.3)


def test_incomplete_run_fails_the_package_with_its_reason() -> None:
    report = one_probe_report(Outcome.PASSED)
    report.run.update(complete=False, incompleteReason="interrupted (SIGINT)")
    tests = replay(gotest.results_json(gotest.events(report)))
    assert tests["TestKaicX"]["action"] == "pass"
    stream = gotest.events(report)
    assert stream[-1]["Action"] == "fail"
    assert "kaic: run incomplete: interrupted (SIGINT)\n" in [e.get("Output") for e in stream]
    root = ET.fromstring(junit.gotest_junit(stream, "v"))
    assert root.find("testsuite/testcase[@name='TestMain']/failure") is not None


def test_a_run_without_probes_is_an_empty_passing_package() -> None:
    report = one_probe_report(Outcome.PASSED)
    report.requirements[0].probes.clear()
    stream = gotest.events(report)
    tail = f"testing: warning: no tests to run\nPASS\nok  \t{gotest.PACKAGE}\t0.000s [no tests to run]\n"
    assert gotest.verbose_log(stream) == tail
    assert gotest.results_json(stream).endswith(
        f'"Action":"pass","Package":"{gotest.PACKAGE}","Elapsed":0}}\n'
    )


def test_kaic_junit_has_a_testcase_per_probe_with_properties(sample_report: Report) -> None:
    (suite,) = list(JUnitXml.fromstring(junit.kaic_junit(sample_report)))
    assert suite.name == junit.KAIC_SUITE
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (7, 1, 1, 3)
    cases = {(c.classname, c.name): c for c in suite}
    assert len(cases) == len(sample_report.probes())
    case = cases[("kaic.security", "secure_accelerator_access.multi-container")]
    props = {p.name: p.value for p in case.child(Properties)}
    assert props == {
        "requirement.id": "secure_accelerator_access",
        "requirement.level": "MUST",
        "outcome": "not-applicable",
    }
    assert case.result[0].message == "N/A: no node offers two devices"
    (unknown,) = cases[("kaic.accelerators", "driver_runtime_management.versions")].result
    assert isinstance(unknown, Skipped) and unknown.message == "UNKNOWN: unrecognised accelerator vendor"
    (error,) = cases[("kaic.observability", "ai_service_metrics.scrape")].result
    assert isinstance(error, Error)
    (failure,) = cases[("kaic.security", "secure_accelerator_access.negative-isolation")].result
    assert "evidence log container probe:" in failure.text and "/dev/nvidia0" in failure.text


def test_kaic_junit_strict_drops_testcase_properties_only(sample_report: Report) -> None:
    root = ET.fromstring(junit.kaic_junit(sample_report, strict=True))
    assert root.findall("testsuite/testcase/properties") == []
    assert root.find("testsuite/properties") is not None


def test_kaic_junit_names_are_unique() -> None:
    report = one_probe_report(Outcome.PASSED)
    report.requirements[0].probes.append(report.requirements[0].probes[0])
    names = [(c.classname, c.name) for s in JUnitXml.fromstring(junit.kaic_junit(report)) for c in s]
    assert len(set(names)) == len(names) == 2


def test_xml_illegal_characters_and_ansi_escapes_are_removed() -> None:
    dirty = "\x1b[31mred\x1b[0m\x00\x07\x0b\x0c bell \ufffe"
    report = one_probe_report(Outcome.FAILED, evidence=[Evidence("log", "c\x01", f"line {dirty}")])
    report.requirements[0].probes[0].reason = dirty
    for text in (junit.kaic_junit(report), junit.gotest_junit(gotest.events(report), dirty)):
        root = ET.fromstring(text)  # would raise on an illegal character
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x1b]", text)
        assert "red bell" in ET.tostring(root, encoding="unicode")


def test_report_validates_against_its_schema(sample_report: Report, tmp_path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(json.loads(save(sample_report, tmp_path).read_text(encoding="utf-8")), SCHEMA)
    interrupted = one_probe_report(Outcome.PASSED).to_dict()
    interrupted["run"].update(complete=False, finishedAt=None, incompleteReason="killed")
    interrupted["requirements"].append(RequirementResult("req_y", "security", "SHOULD").to_json())
    jsonschema.validate(interrupted, SCHEMA)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("schema",), "kaic.dev/report/v0"),
        (("requirements", 0, "outcome"), "skipped"),
        (("requirements", 0, "probes", 0, "outcome"), "skipped"),
        (("requirements", 0, "probes", 0, "test"), "TestX/with space"),
        (("requirements", 0, "probes", 0, "extra"), 1),
        (("verdict", "exitCode"), 7),
    ],
)
def test_schema_rejects_what_the_model_cannot_hold(path: tuple, value: object) -> None:
    data = one_probe_report(Outcome.PASSED).to_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


def test_schema_requires_a_reason_where_the_model_does() -> None:
    data = one_probe_report(Outcome.UNKNOWN).to_dict()
    data["requirements"][0]["probes"][0]["reason"] = ""
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


def test_schema_enums_follow_the_outcome_table() -> None:
    defs, top = SCHEMA["$defs"], SCHEMA["properties"]
    assert defs["outcome"]["enum"] == [o.value for o in Outcome]
    assert set(defs["probe"]["if"]["properties"]["outcome"]["enum"]) == {o.value for o in REASON_REQUIRED}
    assert top["verdict"]["properties"]["result"]["enum"] == [v.value for v in Verdict] + [None]
    assert top["verdict"]["properties"]["exitCode"]["enum"] == [int(c) for c in ExitCode]
    assert top["schema"]["const"] == REPORT_SCHEMA_VERSION


def test_summary_markdown(sample_report: Report) -> None:
    text = summary.markdown(sample_report)
    assert "**Verdict: not-conformant (exit code 1: a MUST requirement failed)**" in text
    assert "- **Checklist:** 1.35 (detected 1.36: --kubernetes-version 1.35)" in text
    for req in sample_report.requirements:
        assert re.search(rf"^\| {req.id} \| {req.level} \| {req.outcome or 'not run'} \|", text, re.MULTILINE)
    problems = text.split("## Failures, errors and unknowns", 1)[1]
    assert [h for h in problems.splitlines() if h.startswith("### ")] == [
        "### secure_accelerator_access.negative-isolation",
        "### ai_service_metrics.scrape",
        "### driver_runtime_management.versions",
    ]
    assert "  $ ls /dev" in problems


def test_summary_truncates_evidence_and_escapes_tables() -> None:
    report = one_probe_report(
        Outcome.FAILED, evidence=[Evidence("object", "pod", "\n".join(f"line {i} ```" for i in range(500)))]
    )
    report.requirements[0].reason = "a | b\nc"
    text = summary.markdown(report)
    assert "line 19" in text and "line 20 " not in text
    assert "[excerpt of 500 lines; the full text is in report.json]" in text
    assert "````text" in text  # a fence longer than the backticks inside
    assert "| a \\| b c |" in text


def test_summary_says_why_there_is_no_verdict() -> None:
    report = one_probe_report(Outcome.PASSED)
    assert "No verdict: the run was not judged" in summary.markdown(report)
    report.verdict = {"result": None, "exitCode": 0, "summary": "quick mode: discovery only, no verdict"}
    assert "No verdict: quick mode: discovery only, no verdict (exit code 0)" in summary.markdown(report)


def test_a_judged_report_without_an_exit_code_still_summarises() -> None:
    report = one_probe_report(Outcome.PASSED)
    report.verdict = {"result": "partial", "mustsNotRun": ["gang_scheduling"]}
    assert "**Verdict: partial; MUSTs not run: gang_scheduling**" in summary.markdown(report)
    console = Console(record=True, width=200)
    summary.render_summary(report, console)
    assert "Verdict: partial; MUSTs not run: gang_scheduling" in console.export_text()


def test_every_exit_code_has_a_meaning() -> None:
    assert set(summary.EXIT_MEANING) == set(ExitCode)


def test_render_summary_prints_the_same_content(sample_report: Report) -> None:
    console = Console(record=True, width=200)
    summary.render_summary(sample_report, console)
    printed = console.export_text()
    built = summary.build(sample_report)
    assert built.verdict in printed
    for row in built.rows:
        assert row[0] in printed and row[2] in printed
    assert "FAILED: a pod without a claim sees /dev/nvidia0" in printed


def test_excerpt_keeps_the_head_or_a_logs_tail() -> None:
    text = "\n".join(str(i) for i in range(100))
    assert excerpt(text, max_lines=3).splitlines()[:3] == ["0", "1", "2"]
    assert excerpt(text, tail=True, max_lines=3).splitlines()[1:] == ["97", "98", "99"]
    assert excerpt("short") == "short"
    assert len(excerpt("x" * 10_000)) < 2100


def test_strip_ansi_removes_csi_sequences_two_byte_escapes_and_a_lone_esc() -> None:
    assert strip_ansi("\x1b[1;31m--- FAIL\x1b[0m: x \x1b[?25l(") == "--- FAIL: x ("
    assert strip_ansi("\x1bMup\x1b\\ end\x1b") == "up end"


def test_a_long_reason_reads_short_in_every_artifact_and_whole_in_the_evidence() -> None:
    from kaic.certify.submission.create import fill
    from kaic.engine.collector import Phase, assemble
    from kaic.probe import ProbeSpec
    from kaic.results.report import Recorder

    whole = " ".join(f"Finding {i}: vendor profile {i} saw no driver on either path." for i in range(12))
    spec = ProbeSpec("req_x.probe", "req_x", "TestKaicX/Sub")
    started = datetime.fromisoformat("2026-09-15T10:00:00+00:00")
    probe = assemble(spec, [Phase("call", Outcome.UNKNOWN, whole)], Recorder(), started, 0.5)
    assert len(probe.reason) <= 200 and probe.reason.endswith("saw no driver on either path…")
    report = one_probe_report(Outcome.UNKNOWN)
    req = report.requirements[0]
    req.probes = [probe]
    req.settle()
    assert len(req.reason) <= 200
    output = replay(gotest.results_json(gotest.events(report)))["TestKaicX/Sub"]["output"]
    assert output.splitlines()[-2] == f"    UNKNOWN: {probe.reason}"  # what a reviewer reads first
    assert "    evidence text full reason:\n" in output and f"          {whole}\n" in output
    (case,) = [c for s in JUnitXml.fromstring(junit.kaic_junit(report)) for c in s]
    assert case.result[0].message == f"UNKNOWN: {probe.reason}"
    assert summary.build(report).rows[0][3] == req.reason
    _, _, notes = fill(req, "MUST", report)
    assert req.reason in notes and len(notes) < 320
