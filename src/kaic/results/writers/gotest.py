"""The go-test view of a report: `results.json` (`go test -json` events) and `e2e.log` (`go test -v` text).

The CNCF validator reads these as if the upstream Go suite had run, so they follow Go's shapes to the byte
where a shape exists (checked against a real Go package in tests/golden/gotest). Each probe is a test or a
subtest named by `ProbeResult.test`; its action comes only from `TABLE[outcome].gotest_action`. Tests run
one after another in report order, as Go runs non-parallel tests.

A parent's action folds its own probes and its subtests: fail if any failed, else pass if any passed, else
skip. Plain Go would pass a parent whose subtests all skipped; kaic skips it, because nothing was shown, and
the golden package reproduces that with an explicit `t.SkipNow()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kaic.results.outcomes import TABLE
from kaic.results.report import ProbeResult, Report
from kaic.results.writers.text import probe_messages

PACKAGE = "kaic.dev/conformance"  # kaic's own package: its events never pose as the upstream suite's
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # when a report carries no times: output stays deterministic

Event = dict[str, Any]


@dataclass
class _Node:
    """One Go test: the probes reported under exactly this name, and its subtests in first-seen order."""

    name: str
    probes: list[ProbeResult] = field(default_factory=list)
    children: dict[str, _Node] = field(default_factory=dict)

    def action(self) -> str:
        return fold_actions(
            [TABLE[p.outcome].gotest_action for p in self.probes]
            + [c.action() for c in self.children.values()]
        )

    def span(self, default: datetime) -> tuple[datetime, datetime]:
        spans = [_probe_span(p, default) for p in self.probes] + [
            c.span(default) for c in self.children.values()
        ]
        return min(s for s, _ in spans), max(e for _, e in spans)


def fold_actions(actions: Iterable[str]) -> str:
    """Go's outcome of a test from its parts: any fail fails it, else any pass passes it, else it skipped."""
    seen = set(actions)
    return "fail" if "fail" in seen else "pass" if "pass" in seen else "skip"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _probe_span(probe: ProbeResult, default: datetime) -> tuple[datetime, datetime]:
    start = _parse_time(probe.started_at) or default
    return start, start + timedelta(seconds=probe.duration_s)


def _tree(probes: Iterable[ProbeResult]) -> list[_Node]:
    roots: dict[str, _Node] = {}
    for probe in probes:
        level, parts = roots, probe.test.split("/")
        for depth in range(1, len(parts) + 1):
            node = level.setdefault("/".join(parts[:depth]), _Node("/".join(parts[:depth])))
            level = node.children
        node.probes.append(probe)
    return list(roots.values())


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with Go's RFC3339Nano trimming of trailing zeros."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return f"{text}Z"


def _elapsed(seconds: float, digits: int) -> float | int:
    """Go prints whole floats without a fraction (`"Elapsed":0`)."""
    value = round(max(seconds, 0.0), digits)
    return int(value) if value == int(value) else value


def _event(
    moment: datetime,
    action: str,
    test: str | None = None,
    output: str | None = None,
    elapsed: float | None = None,
) -> Event:
    """One event, keys in Go's order (Time, Action, Package, Test, Output, Elapsed), absent ones left out."""
    event: Event = {"Time": format_time(moment), "Action": action, "Package": PACKAGE}
    if test is not None:
        event["Test"] = test
    if output is not None:
        event["Output"] = output
    if elapsed is not None:
        event["Elapsed"] = elapsed
    return event


def log_lines(message: str) -> list[str]:
    """A message as `t.Log` prints it: first line indented 4 spaces, continuation lines 8 (no file:line)."""
    first, *rest = message.split("\n")
    return [f"    {first}\n"] + [f"        {line}\n" for line in rest]


def _test_events(node: _Node, default: datetime) -> Iterator[Event]:
    start, end = node.span(default)
    action = node.action()
    yield _event(start, "run", node.name)
    yield _event(start, "output", node.name, f"=== RUN   {node.name}\n")
    for child in node.children.values():
        yield from _test_events(child, default)
    for probe in node.probes:
        for message in probe_messages(probe):
            for line in log_lines(message):
                yield _event(end, "output", node.name, line)
    seconds = _elapsed((end - start).total_seconds(), 2)
    yield _event(end, "output", node.name, f"--- {action.upper()}: {node.name} ({seconds:.2f}s)\n")
    yield _event(end, action, node.name, elapsed=seconds)


def events(report: Report) -> list[Event]:
    """The `go test -json` event stream for the whole report, package events included.

    An incomplete run fails the package (as a Go test binary that was killed or timed out does), saying why.
    """
    run_start = _parse_time(report.run.get("startedAt"))
    default = run_start or _EPOCH
    roots = _tree(report.probes())
    spans = [root.span(default) for root in roots]
    start = run_start or min((s for s, _ in spans), default=_EPOCH)
    end = _parse_time(report.run.get("finishedAt")) or max((e for _, e in spans), default=start)
    seconds = _elapsed((end - start).total_seconds(), 3)

    stream = [_event(start, "start")]
    for root in roots:
        stream.extend(_test_events(root, default))
    trailer, note = [], ""
    complete = bool(report.run.get("complete"))
    if not complete:
        why = " ".join(str(report.run.get("incompleteReason") or "no reason recorded").split())
        trailer.append(f"kaic: run incomplete: {why}\n")  # one line, as every Output is
    if not roots:
        trailer.append("testing: warning: no tests to run\n")
        note = " [no tests to run]"
    failed = not complete or any(root.action() == "fail" for root in roots)
    if failed:
        trailer += ["FAIL\n", f"FAIL\t{PACKAGE}\t{seconds:.3f}s{note}\n"]
    else:
        trailer += ["PASS\n", f"ok  \t{PACKAGE}\t{seconds:.3f}s{note}\n"]
    stream.extend(_event(end, "output", output=line) for line in trailer)
    stream.append(_event(end, "fail" if failed else "pass", elapsed=seconds))
    return stream


def results_json(stream: Iterable[Event]) -> str:
    """One compact JSON object per line, as `go test -json` writes them."""
    return "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in stream)


def verbose_log(stream: Iterable[Event]) -> str:
    """What `go test -v` prints for the same run (the upstream recipe: `go test -v ./test | tee e2e.log`).

    It differs from the events' concatenated Output in two ways Go has: a subtest's `--- RESULT` line is held
    until its top-level test ends and is then printed under it, indented 4 spaces per level; and a line
    logged by a test other than the one last announced is preceded by `=== NAME  <test>`. A failed package
    ends with the go command's own `FAIL` line.
    """
    out: list[str] = []
    held: dict[str, list[str]] = {}
    last = None
    package_action = None
    for event in stream:
        test, action = event.get("Test"), event["Action"]
        if test is None and action in ("pass", "fail"):
            package_action = action
        if action != "output":
            continue
        line = event["Output"]
        if test is None:
            out.append(line)
        elif line.startswith("--- "):
            depth = test.count("/")
            block = ["    " * depth + line] + held.pop(test, [])
            if depth:
                held.setdefault(test.rsplit("/", 1)[0], []).extend(block)
            else:
                out.extend(block)
        else:
            if not line.startswith("=== RUN") and test != last:
                out.append(f"=== NAME  {test}\n")
            last = test
            out.append(line)
    if package_action == "fail":
        out.append("FAIL\n")
    return "".join(out)
