"""Two JUnit views of a report.

`junit.xml` is what `gotestsum --junitfile` would make of kaic's go-test events (for the CNCF validator),
so it is built from those events, never from the outcomes a second time. `kaic-junit.xml` is for CI
dashboards: one testcase per probe, grouped by requirement category, with the element the outcome table
names, plus run-level testcases (classname `kaic.run`) so its counts agree with the exit code: `incomplete`
with an `<error>` when the run did not complete or a MUST errored (exit 3), and a `<skipped>` testcase per
MUST requirement the plan left out (`excluded: <id>`, a partial run's exit 4). Both are plain ElementTree
with characters XML 1.0 forbids removed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime

from kaic.results.outcomes import TABLE, ExitCode, Outcome
from kaic.results.report import Report
from kaic.results.writers.gotest import PACKAGE, Event
from kaic.results.writers.text import outcome_message, probe_messages, strip_ansi

KAIC_SUITE = "kaic"
RUN_CLASSNAME = "kaic.run"  # run-level testcases of kaic-junit.xml: what no probe's testcase can say
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean(text: str) -> str:
    """Text an XML 1.0 parser accepts: ANSI escapes and forbidden control characters removed."""
    return _ILLEGAL_XML.sub("", strip_ansi(text))


def _seconds(value: float) -> str:
    """Fixed decimals, as Go's `%f`: some JUnit readers choke on exponents."""
    return f"{value:f}"


def _element(
    parent: ET.Element | None, tag: str, attrs: dict[str, str], text: str | None = None
) -> ET.Element:
    element = ET.Element(tag) if parent is None else ET.SubElement(parent, tag)
    for key, value in attrs.items():
        element.set(key, clean(value))
    if text is not None:
        element.text = clean(text)
    return element


def _properties(parent: ET.Element, pairs: Iterable[tuple[str, str]]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in pairs:
        _element(props, "property", {"name": name, "value": value})


def _serialise(root: ET.Element) -> str:
    ET.indent(root, space="\t")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=False)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _timestamp(value: str) -> str:
    """RFC 3339 to the second, as gotestsum stamps a suite."""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gotest_junit(stream: Iterable[Event], tool_version: str) -> str:
    """gotestsum's report of one package: failed, then skipped, then passed testcases, each in finishing
    order.

    As gotestsum does, a top-level test's text includes its subtests' output unless one of them failed (the
    failed subtest then carries it), and a failed package without a failed test (an incomplete run) gets a
    `TestMain` failure holding the package output. `go.version` carries `tool_version`: no Go toolchain
    made these results.
    """
    outputs: dict[str, list[str]] = {}
    subtests: dict[str, list[str]] = {}  # top-level test -> its subtests at any depth, in run order
    failed_roots: set[str] = set()
    finished: list[tuple[str, str, float]] = []
    package_output: list[str] = []
    start, package_action, package_elapsed = "", "", 0.0
    for event in stream:
        test, action = event.get("Test"), event["Action"]
        root = test.split("/", 1)[0] if test else ""
        if action == "output":
            (outputs.setdefault(test, []) if test else package_output).append(event["Output"])
        elif action == "start":
            start = event["Time"]
        elif action == "run" and test and test != root:
            subtests.setdefault(root, []).append(test)
        elif action in ("pass", "fail", "skip") and test:
            finished.append((test, action, float(event.get("Elapsed", 0))))
            if action == "fail" and test != root:
                failed_roots.add(root)
        elif action in ("pass", "fail"):
            package_action, package_elapsed = action, float(event.get("Elapsed", 0))
    by_action = {a: [(t, e) for t, act, e in finished if act == a] for a in ("fail", "skip", "pass")}

    def text(name: str) -> str:
        lines = list(outputs.get(name, []))
        if "/" not in name and name not in failed_roots:
            lines += [line for sub in subtests.get(name, []) for line in outputs.get(sub, [])]
        return "".join(lines)

    test_main_failed = package_action == "fail" and not by_action["fail"]
    suites = _element(
        None,
        "testsuites",
        {
            "tests": str(len(finished)),
            "failures": str(len(by_action["fail"]) + test_main_failed),  # gotestsum counts TestMain only here
            "errors": "0",
            "time": _seconds(package_elapsed),
        },
    )
    suite_attrs = {"tests": str(len(finished)), "failures": str(len(by_action["fail"]))}
    if by_action["skip"]:
        suite_attrs["skipped"] = str(len(by_action["skip"]))
    suite_attrs |= {"time": _seconds(package_elapsed), "name": PACKAGE, "timestamp": _timestamp(start)}
    suite = _element(suites, "testsuite", suite_attrs)
    _properties(suite, [("go.version", tool_version)])

    def case(name: str, elapsed: float, classname: str = PACKAGE) -> ET.Element:
        return _element(suite, "testcase", {"classname": classname, "name": name, "time": _seconds(elapsed)})

    if test_main_failed:  # gotestsum leaves this one's classname empty
        _element(
            case("TestMain", 0.0, ""), "failure", {"message": "Failed", "type": ""}, "".join(package_output)
        )
    for name, elapsed in by_action["fail"]:
        _element(case(name, elapsed), "failure", {"message": "Failed", "type": ""}, text(name))
    for name, elapsed in by_action["skip"]:
        _element(case(name, elapsed), "skipped", {"message": text(name)})
    for name, elapsed in by_action["pass"]:
        case(name, elapsed)
    return _serialise(suites)


def kaic_junit(report: Report, strict: bool = False) -> str:
    """One testcase per probe: classname `kaic.<category>`, requirement id/level and outcome as properties;
    then the run-level testcases (`_run_cases`).

    `strict` drops testcase properties, which the Jenkins xUnit schema rejects. (classname, name) pairs are
    unique, since GitLab keeps only the first of a duplicate. A probe's messages (warnings, evidence) go in
    the failure or error text, else in `system-out`.
    """
    probes = report.probes()
    run_cases = _run_cases(report)
    outcomes = [TABLE[p.outcome].junit for p in probes] + [tag for _, tag, _, _ in run_cases]
    totals = {
        "tests": str(len(outcomes)),
        "failures": str(outcomes.count("failure")),
        "errors": str(outcomes.count("error")),
        "skipped": str(outcomes.count("skipped")),
        "time": _seconds(sum(p.duration_s for p in probes)),
    }
    suites = _element(None, "testsuites", totals)
    suite_attrs = {"name": KAIC_SUITE, **totals}
    if report.run.get("startedAt"):
        suite_attrs["timestamp"] = _timestamp(report.run["startedAt"])
    suite = _element(suites, "testsuite", suite_attrs)
    _properties(
        suite,
        [
            ("run.id", str(report.run.get("id", ""))),
            ("run.mode", str(report.run.get("mode", ""))),
            ("run.complete", str(bool(report.run.get("complete"))).lower()),
            ("run.excluded", ",".join(report.run.get("excluded") or {})),
            ("profile", f"{report.profile.get('id', '')} {report.profile.get('version', '')}".strip()),
            ("checklist", str(report.checklist.get("chosen", ""))),
            ("verdict", str(report.verdict.get("result", ""))),
            *_rerun_properties(report),
        ],
    )
    seen: set[tuple[str, str]] = set()

    def case(classname: str, name: str, seconds: float, properties: list[tuple[str, str]]) -> ET.Element:
        unique, n = name, 1
        while (classname, unique) in seen:
            n += 1
            unique = f"{name} #{n}"
        seen.add((classname, unique))
        element = _element(
            suite, "testcase", {"classname": classname, "name": unique, "time": _seconds(seconds)}
        )
        if not strict:
            _properties(element, properties)
        return element

    for req in report.requirements:
        for probe in req.probes:
            properties = [
                ("requirement.id", req.id),
                ("requirement.level", req.level),
                ("outcome", str(probe.outcome)),
                *([("carriedFrom", probe.carried_from)] if probe.carried_from else []),
            ]
            testcase = case(f"kaic.{req.category}", probe.name, probe.duration_s, properties)
            tag, details = TABLE[probe.outcome].junit, "\n".join(probe_messages(probe))
            if tag in ("failure", "error"):
                attrs = {"message": outcome_message(probe), "type": str(probe.outcome)}
                _element(testcase, tag, attrs, details)
                continue
            if tag:
                _element(testcase, tag, {"message": outcome_message(probe)})
            _element(testcase, "system-out", {}, details)
    for name, tag, message, properties in run_cases:
        attrs = {"message": message, "type": name} if tag == "error" else {"message": message}
        _element(case(RUN_CLASSNAME, name, 0.0, properties), tag, attrs)
    return _serialise(suites)


def _rerun_properties(report: Report) -> list[tuple[str, str]]:
    """A rerun's source and the results carried over from it (testcase properties, dropped by `strict`, say it
    per probe)."""
    source = report.run.get("rerunOf")
    if not source:
        return []
    return [("run.rerunOf", source["runId"]), ("run.carriedOver", ",".join(report.carried_over()))]


RunCase = tuple[str, str, str, list[tuple[str, str]]]  # name, element, message, testcase properties


def _run_cases(report: Report) -> list[RunCase]:
    """`incomplete` (an error) when the run did not complete or its verdict is incomplete (a MUST, or in
    quick mode a discovery probe, errored); a skipped `excluded: <id>` per MUST the plan left out."""
    cases: list[RunCase] = []
    complete = bool(report.run.get("complete"))
    run = [("run.complete", str(complete).lower()), ("verdict", str(report.verdict.get("result") or ""))]
    if not complete:
        why = report.run.get("incompleteReason") or "no reason recorded"
        cases.append(("incomplete", "error", f"run incomplete: {why}", run))
    elif report.verdict.get("exitCode") == ExitCode.INCOMPLETE:
        errored = [r.id for r in report.requirements if r.level == "MUST" and r.outcome is Outcome.ERROR]
        errored = errored or [p.name for p in report.probes() if p.outcome is Outcome.ERROR]
        cases.append(("incomplete", "error", f"incomplete: errored: {', '.join(errored) or '?'}", run))
    excluded = report.run.get("excluded") or {}
    for req_id in report.excluded_musts():
        properties = [("requirement.id", req_id), ("requirement.level", "MUST"), ("outcome", "excluded")]
        message = f"NOT RUN: MUST requirement left out of the run ({excluded[req_id]})"
        cases.append((f"excluded: {req_id}", "skipped", message, properties))
    return cases
