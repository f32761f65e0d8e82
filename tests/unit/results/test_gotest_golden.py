"""kaic's go-test artifacts against the real thing.

tests/golden/gotest is a Go package whose tests carry the names, outcomes and log lines of the sample report
(build_sample_report in tests/unit/conftest.py). Go and gotestsum run it; kaic writes the same run from the
report; once file:line prefixes, durations and times are normalised the two must agree line for line.
gotestsum also replays kaic's own results.json, which must give kaic's junit.xml exactly.

Without `go` or `gotestsum` these tests skip, except in CI (CI=true), where they fail. gotestsum is looked
for on PATH, then in .tools/bin (`GOBIN=$PWD/.tools/bin go install gotest.tools/gotestsum@v1.13.0`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kaic.results.outcomes import TABLE, Outcome
from kaic.results.report import Report
from kaic.results.run_dir import JUNIT_FILE, RESULTS_FILE
from kaic.results.writers import gotest, junit, tool_version, write_all

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "golden" / "gotest"
_FILE_LINE = re.compile(r"^( +)[\w.-]+\.go:\d+: ", re.MULTILINE)  # t.Log's "file.go:NN: " prefix
_DURATION = re.compile(r"\(\d+\.\d\ds\)")
_PACKAGE_TIME = re.compile(r"\t\d+\.\d{3}s")
_TIME_ATTRS = {"time", "timestamp"}


def _tool(name: str) -> str:
    found = shutil.which(name) or next((str(p) for p in [REPO / ".tools" / "bin" / name] if p.exists()), None)
    if found:
        return found
    message = f"`{name}` not found on PATH or in .tools/bin; the golden go-test comparison needs it"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _run(args: list[str], **env: str) -> str:
    """Run a Go tool in the golden package; a failing test run exits 1, which is expected here."""
    proc = subprocess.run(
        args,
        check=False,
        cwd=GOLDEN,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "", **env},
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


def _normalise(text: str) -> str:
    return _PACKAGE_TIME.sub("\tXs", _DURATION.sub("(Xs)", _FILE_LINE.sub(r"\1", text)))


@pytest.fixture(scope="module")
def go_events() -> list[dict]:
    out = _run([_tool("go"), "test", "-count=1", "-json", "."])
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def go_verbose() -> str:
    return _run([_tool("go"), "test", "-count=1", "-v", "."])


@pytest.fixture(scope="module")
def gotestsum_junit(tmp_path_factory: pytest.TempPathFactory) -> ET.Element:
    go, gotestsum = _tool("go"), _tool("gotestsum")
    path = tmp_path_factory.mktemp("gotestsum") / "junit.xml"
    _run(
        [gotestsum, "--format", "standard-quiet", "--junitfile", str(path), "--", "-count=1", "."],
        PATH=f"{Path(go).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return ET.parse(path).getroot()


def _shape(element: ET.Element) -> tuple:
    """Tag, attribute names in order, values (times aside), normalised text and children, recursively."""
    attrs = tuple(
        (k, "" if k in _TIME_ATTRS or k == "value" else _normalise(v)) for k, v in element.attrib.items()
    )
    text = _normalise(element.text or "").strip()
    return element.tag, attrs, text, tuple(_shape(child) for child in element)


def test_events_match_go_test_json(sample_report: Report, go_events: list[dict]) -> None:
    ours = gotest.events(sample_report)
    assert [(e["Action"], e.get("Test")) for e in ours] == [(e["Action"], e.get("Test")) for e in go_events]
    assert [list(e) for e in ours] == [list(e) for e in go_events]  # same keys, in Go's order
    assert [_normalise(e.get("Output", "")) for e in ours] == [
        _normalise(e.get("Output", "")) for e in go_events
    ]


def test_e2e_log_matches_go_test_v(sample_report: Report, go_verbose: str) -> None:
    assert _normalise(gotest.verbose_log(gotest.events(sample_report))) == _normalise(go_verbose)


def test_junit_matches_gotestsum(sample_report: Report, gotestsum_junit: ET.Element) -> None:
    ours = ET.fromstring(junit.gotest_junit(gotest.events(sample_report), tool_version(sample_report)))
    assert _shape(ours) == _shape(gotestsum_junit)


@pytest.mark.parametrize("complete", [True, False], ids=["complete", "incomplete"])
def test_gotestsum_replays_kaic_events(sample_report: Report, tmp_path: Path, complete: bool) -> None:
    """gotestsum reading kaic's results.json writes kaic's junit.xml (only the wall-clock total differs)."""
    gotestsum = _tool("gotestsum")
    if not complete:  # interrupted before anything failed: gotestsum's TestMain case
        sample_report.run.update(complete=False, incompleteReason="interrupted (SIGINT)")
        for probe in sample_report.probes():
            if TABLE[probe.outcome].gotest_action == "fail":
                probe.outcome = Outcome.PASSED
    write_all(sample_report, tmp_path)
    replayed = tmp_path / "replayed.xml"
    _run(
        [
            gotestsum,
            "--raw-command",
            "--format",
            "standard-quiet",
            "--junitfile",
            str(replayed),
            "--",
            "cat",
            str(tmp_path / RESULTS_FILE),
        ],
        GOVERSION=tool_version(sample_report),
    )
    theirs = ET.parse(replayed).getroot()
    ours = ET.parse(tmp_path / JUNIT_FILE).getroot()
    theirs.set("time", ours.get("time", ""))  # gotestsum's own elapsed time, not the package's
    assert ET.tostring(ours) == ET.tostring(theirs)
    if not complete:
        assert ours.find("testsuite/testcase[@name='TestMain']") is not None
