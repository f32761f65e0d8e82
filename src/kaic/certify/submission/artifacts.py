"""Read back the go-test artifacts of a submission (junit.xml, results.json, e2e.log) as test -> result.

The validator parses these files by name, from v1.37, and fails a target test that failed; lint reads them in
every version to hold each requirement's status against its upstream test, and compares them with each other
(they must come from one run). A test reported more than once (several packages, `-count`) folds as Go folds
subtests.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kaic.certify.submission import SubmissionError
from kaic.results.run_dir import E2E_LOG_FILE, JUNIT_FILE, RESULTS_FILE
from kaic.results.writers.gotest import fold_actions
from kaic.results.writers.text import strip_ansi

_RESULT_LINE = re.compile(r"^\s*--- (PASS|FAIL|SKIP): (\S+) \(")
_PACKAGE_LINE = re.compile(r"^(PASS|FAIL|ok  )")
_DOWNLOADING = "go: downloading "


class ArtifactError(Exception):
    """The file is not the go-test artifact its name says."""


@dataclass(frozen=True)
class Artifact:
    """One artifact read back: each test's result, when the run began (where the format records it with a
    time zone), and what in an e2e.log is not the tests' own output."""

    results: dict[str, str]
    started: datetime | None = None
    noise: tuple[str, ...] = field(default=())


def rolled_up(results: dict[str, str], test: str) -> str | None:
    """`test`'s result with its subtests rolled up (as the validator reads them): any failed subtest fails
    it; else its own result, or, where only subtests were reported, theirs folded as Go folds them."""
    own = results.get(test)
    subtests = [result for name, result in results.items() if name.startswith(test + "/")]
    if "fail" in subtests:
        return "fail"
    return own or (fold_actions(subtests) if subtests else None)


def _fold(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, list[str]] = {}
    for test, action in pairs:
        seen.setdefault(test, []).append(action)
    return {test: fold_actions(actions) for test, actions in seen.items()}


def _moment(text: str | None) -> datetime | None:
    """An RFC 3339 time; None when absent, malformed or without a zone (its instant is then unknown)."""
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return moment if moment and moment.tzinfo else None


def _junit(text: str) -> Artifact:
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

    stamps = [_moment(suite.get("timestamp")) for suite in root.iter("testsuite")]
    return Artifact(
        _fold((case.get("name", ""), action(case)) for case in root.iter("testcase")),
        min((s for s in stamps if s), default=None),
    )


def _results_json(text: str) -> Artifact:
    pairs, times = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict) or "Action" not in event:
            raise ArtifactError(f"line {number} is not a `go test -json` event")
        times.append(_moment(event.get("Time")))
        if event.get("Test") and event["Action"] in ("pass", "fail", "skip"):
            pairs.append((event["Test"], event["Action"]))
    return Artifact(_fold(pairs), min((t for t in times if t), default=None))


def _noise(lines: list[str]) -> tuple[str, ...]:
    """ANSI escape codes and `go: downloading` lines: not the tests' output, and both hinder a reviewer."""
    found = []
    for what, hit, advice in (
        (
            "ANSI escape codes",
            lambda line: "\x1b" in line,
            "reviewers read the log as plain text; record it without colour",
        ),
        (
            "`go: downloading` lines",
            lambda line: line.startswith(_DOWNLOADING),
            "module downloads are not test output; download modules before the recorded run",
        ),
    ):
        numbers = [n for n, line in enumerate(lines, 1) if hit(line)]
        if numbers:
            found.append(f"{what} on {len(numbers)} line(s), first line {numbers[0]}: {advice}")
    return tuple(found)


def _e2e_log(text: str) -> Artifact:
    raw = text.splitlines()
    lines = [strip_ansi(line) for line in raw]  # a coloured `--- FAIL` still fails
    results = [m for m in map(_RESULT_LINE.match, lines) if m]
    if not results and not any(_PACKAGE_LINE.match(line) for line in lines):
        raise ArtifactError("no `--- PASS|FAIL|SKIP:` or package result line of `go test -v` output")
    return Artifact(_fold((m[2], m[1].lower()) for m in results), noise=_noise(raw))


PARSERS: dict[str, Callable[[str], Artifact]] = {
    JUNIT_FILE: _junit,
    RESULTS_FILE: _results_json,
    E2E_LOG_FILE: _e2e_log,
}


def parser_for(path: Path) -> Callable[[str], Artifact] | None:
    """The parser the validator picks by the file's name, in any case; None for any other file."""
    return PARSERS.get(path.name.lower())


def read_artifact(path: Path) -> Artifact:
    """The artifact at `path`, read by the parser for its name; a file that cannot be read is bad input."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SubmissionError(
            f"{path}: cannot be read ({exc.strerror or exc}); lint needs to read every file of the folder"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"is not UTF-8 text ({exc})") from None
    return PARSERS[path.name.lower()](text)
