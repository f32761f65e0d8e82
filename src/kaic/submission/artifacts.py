"""Read back the go-test artifacts a submission cites (junit.xml, results.json, e2e.log) as test -> result.

From v1.37 the validator parses these files and fails a cited test that failed, so lint needs each test's
terminal result. A test reported more than once (several packages, `-count`) folds as Go folds subtests.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path

from kaic.writers.gotest import E2E_LOG_FILE, RESULTS_FILE, fold_actions
from kaic.writers.junit import JUNIT_FILE

_RESULT_LINE = re.compile(r"^\s*--- (PASS|FAIL|SKIP): (\S+) \(")
_PACKAGE_LINE = re.compile(r"^(PASS|FAIL|ok  )")


class ArtifactError(Exception):
    """The file is not the go-test artifact its name says."""


def _fold(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, list[str]] = {}
    for test, action in pairs:
        seen.setdefault(test, []).append(action)
    return {test: fold_actions(actions) for test, actions in seen.items()}


def _junit(text: str) -> dict[str, str]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ArtifactError(f"not well-formed XML ({exc})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ArtifactError(f"root element is <{root.tag}>, not <testsuites> or <testsuite>")

    def action(case: ET.Element) -> str:
        if case.find("failure") is not None or case.find("error") is not None:
            return "fail"
        return "skip" if case.find("skipped") is not None else "pass"

    return _fold((case.get("name", ""), action(case)) for case in root.iter("testcase"))


def _results_json(text: str) -> dict[str, str]:
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict) or "Action" not in event:
            raise ArtifactError(f"line {number} is not a `go test -json` event")
        if event.get("Test") and event["Action"] in ("pass", "fail", "skip"):
            pairs.append((event["Test"], event["Action"]))
    return _fold(pairs)


def _e2e_log(text: str) -> dict[str, str]:
    lines = text.splitlines()
    results = [m for m in map(_RESULT_LINE.match, lines) if m]
    if not results and not any(_PACKAGE_LINE.match(line) for line in lines):
        raise ArtifactError("no `--- PASS|FAIL|SKIP:` or package result line of `go test -v` output")
    return _fold((m[2], m[1].lower()) for m in results)


PARSERS: dict[str, Callable[[str], dict[str, str]]] = {
    JUNIT_FILE: _junit,
    RESULTS_FILE: _results_json,
    E2E_LOG_FILE: _e2e_log,
}


def read_results(path: Path) -> dict[str, str]:
    """test name -> pass | fail | skip, read by the parser for the file's name."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot be read ({exc})") from None
    return PARSERS[path.name](text)
