"""Text shared by every human-readable artifact: outcome labels, a probe's messages, bounded excerpts.

One place decides what a reader sees about a probe, so e2e.log, both JUnit files and summary.md agree.
"""

from __future__ import annotations

import re

from kaic.results.outcomes import TABLE, Outcome
from kaic.results.report import Evidence, ProbeResult
from kaic.results.run_dir import REPORT_FILE

# CSI sequences (colours, cursor moves), the two-byte escapes, else a lone ESC: terminals' noise in logs.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]?")
EXCERPT_LINES = 20
EXCERPT_CHARS = 2000


def strip_ansi(text: str) -> str:
    """`text` without terminal escapes, so a coloured line reads (and parses) as the plain one."""
    return _ANSI.sub("", text)


def outcome_label(outcome: Outcome) -> str:
    """The tag readers know: "N/A" as in PRODUCT.yaml, otherwise the signed-summary result (FAILED,
    UNKNOWN…)."""
    return "N/A" if outcome is Outcome.NOT_APPLICABLE else TABLE[outcome].summary_result


def outcome_message(probe: ProbeResult) -> str:
    """The line a skip or failure is known by, "LABEL: reason"; a pass shows only its reason, if any."""
    if probe.outcome is Outcome.PASSED:
        return probe.reason
    return f"{outcome_label(probe.outcome)}: {probe.reason}" if probe.reason else outcome_label(probe.outcome)


def excerpt(
    text: str, tail: bool = False, max_lines: int = EXCERPT_LINES, max_chars: int = EXCERPT_CHARS
) -> str:
    """At most `max_lines` lines and about `max_chars` characters; the full text stays in report.json.

    Logs keep their tail (where the error is), everything else its head.
    """
    lines = strip_ansi(text).rstrip().splitlines()
    kept = lines[-max_lines:] if tail else lines[:max_lines]
    body = "\n".join(kept)
    if len(kept) == len(lines) and len(body) <= max_chars:
        return body
    body = body[-max_chars:] if tail else body[:max_chars]
    note = f"[excerpt of {len(lines)} lines; the full text is in {REPORT_FILE}]"
    return f"{note}\n{body}" if tail else f"{body}\n{note}"


def evidence_message(evidence: Evidence) -> str:
    head = f"evidence {evidence.kind} {evidence.name}"
    content = excerpt(evidence.content, tail=evidence.kind == "log")
    if not content:
        return head
    return f"{head}:\n" + "\n".join(f"  {line}" if line else "" for line in content.split("\n"))


def probe_details(probe: ProbeResult) -> list[str]:
    """Warnings and evidence excerpts: what backs a probe's outcome."""
    return [f"warning: {w}" for w in probe.warnings] + [evidence_message(e) for e in probe.evidence]


def carried(probe: ProbeResult) -> list[str]:
    """The line a rerun's carried-over result is known by (none for a result of this run)."""
    if not probe.carried_from:
        return []
    return [
        f"carried over from run {probe.carried_from} (started {probe.started_at or 'unrecorded'}), not re-run"
    ]


def probe_messages(probe: ProbeResult) -> list[str]:
    """What a probe "logged", in the order a Go test would: who it is, the details, then the verdict."""
    messages = [f"kaic probe {probe.name}", *carried(probe), *probe_details(probe)]
    final = outcome_message(probe)
    if final:
        messages.append(final)
    return [m.rstrip() for m in messages]
