"""The human summary of a run: `summary.md`, and the same content on a terminal for `kaic results DIR`.

Both renderings come from one `Summary`, so the file and the terminal never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kaic.results.outcomes import ExitCode, Outcome
from kaic.results.report import ProbeResult, Report, shorten
from kaic.results.writers.text import outcome_message, probe_details

EXIT_MEANING = {
    ExitCode.CONFORMANT: "every MUST requirement passed",
    ExitCode.NOT_CONFORMANT: "a MUST requirement failed",
    ExitCode.USAGE: "usage or input error",
    ExitCode.INCOMPLETE: (
        "the run is incomplete (preflight failed, a MUST errored, a timeout or an interrupt)"
    ),
    ExitCode.UNDETERMINED: "nothing failed, but a MUST requirement needs manual attestation or did not run",
}
PROBLEMS = (Outcome.FAILED, Outcome.ERROR, Outcome.UNKNOWN)  # outcomes whose evidence a reader must see
_STYLE = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "bold red",
    Outcome.ERROR: "red",
    Outcome.UNKNOWN: "yellow",
    Outcome.NOT_APPLICABLE: "dim",
}


@dataclass
class Summary:
    verdict: str
    warnings: list[str]
    facts: list[tuple[str, str]]  # (label, value) lines: run, profile, checklist, cluster
    rows: list[tuple[str, str, str, str]]  # requirement, level, outcome, reason; left-out ones "excluded"
    outcomes: list[Outcome | None]  # per row, for styling
    problems: list[tuple[str, ProbeResult]]  # (requirement id, probe) for failures, errors and unknowns


def _verdict_line(report: Report) -> str:
    """The verdict and what its exit code means (where one is recorded); quick mode and unjudged runs say why
    there is none."""
    result, code, said = (report.verdict.get(k) for k in ("result", "exitCode", "summary"))
    if result:
        left_out = ", ".join(report.verdict.get("mustsNotRun") or [])
        not_run = f"; MUSTs not run: {left_out}" if left_out else ""
        exit_code = "" if code is None else f" (exit code {code}: {EXIT_MEANING[ExitCode(code)]})"
        return f"Verdict: {result}{exit_code}{not_run}"
    if code is not None:
        return f"No verdict: {said or 'none recorded'} (exit code {code})"
    return "No verdict: the run was not judged"


def _join(*parts: Any) -> str:
    return ", ".join(str(p) for p in parts if p not in (None, ""))


def _facts(report: Report) -> list[tuple[str, str]]:
    run, checklist, cluster = report.run, report.checklist, report.cluster
    state = "complete" if run.get("complete") else f"INCOMPLETE: {run.get('incompleteReason') or 'no reason'}"
    chosen = f"{checklist.get('chosen') or '?'} (detected {checklist.get('detected') or 'nothing'}"
    chosen += f": {checklist['reason']})" if checklist.get("reason") else ")"
    facts = [
        ("Run", _join(run.get("id"), f"mode {run.get('mode') or '?'}", run.get("startedAt"), state)),
        ("Profile", _join(report.profile.get("id"), report.profile.get("version"))),
        ("Checklist", chosen),
        (
            "Cluster",
            _join(cluster.get("serverVersion"), cluster.get("context"), cluster.get("server")) or "-",
        ),
        (
            "kaic",
            _join(report.kaic.get("kaic"), report.kaic.get("python") and f"python {report.kaic['python']}"),
        ),
    ]
    if source := run.get("rerunOf"):
        carried = report.carried_over()
        rerun = ", ".join(source["probes"]) or "none"
        said = (
            f"run {source['runId']} (report.json sha256 {source['reportSha256']}): re-ran {rerun}; "
            f"{len(carried)} result(s) carried over: {', '.join(carried) or 'none'}"
        )
        facts.append(("Rerun of", said))
    return facts


def build(report: Report) -> Summary:
    rows, outcomes, problems = [], [], []
    for req in report.requirements:
        outcome = req.outcome
        reason = shorten(" ".join(req.reason.split()))
        rows.append((req.id, req.level, str(outcome) if outcome else "not run", reason))
        outcomes.append(outcome)
        problems += [(req.id, p) for p in req.probes if p.outcome in PROBLEMS]
    for req_id, why in (report.run.get("excluded") or {}).items():
        rows.append((req_id, report.level(req_id) or "?", "excluded", f"left out of the run: {why}"))
        outcomes.append(None)
    return Summary(
        verdict=_verdict_line(report),
        warnings=[str(w) for w in report.verdict.get("warnings", [])],
        facts=_facts(report),
        rows=rows,
        outcomes=outcomes,
        problems=problems,
    )


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _fence(text: str) -> str:
    """A code fence longer than any backtick run inside the text."""
    ticks = 3
    while "`" * ticks in text:
        ticks += 1
    return "`" * ticks


def markdown(report: Report) -> str:
    summary = build(report)
    out = ["# kaic conformance summary", "", f"**{summary.verdict}**", ""]
    out += [f"- warning: {w}" for w in summary.warnings] + ([""] if summary.warnings else [])
    out += [f"- **{label}:** {value}" for label, value in summary.facts] + [""]
    out += ["## Requirements", "", "| Requirement | Level | Outcome | Reason |", "|---|---|---|---|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in summary.rows] + [""]
    if summary.problems:
        out += ["## Failures, errors and unknowns", ""]
    for req_id, probe in summary.problems:
        out += [f"### {probe.name}", "", f"**{outcome_message(probe)}** (requirement `{req_id}`)", ""]
        details = "\n".join(probe_details(probe))
        if details:
            fence = _fence(details)
            out += [fence + "text", details, fence, ""]
    return "\n".join(out)


def render_summary(report: Report, console: Console) -> None:
    """Print the summary on a terminal (`kaic results DIR`): the same content as summary.md."""
    summary = build(report)
    console.print(Text(summary.verdict, style="bold"))
    for warning in summary.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
    for label, value in summary.facts:
        console.print(Text.assemble((f"{label}: ", "bold"), value))
    table = Table("Requirement", "Level", "Outcome", "Reason")
    for row, outcome in zip(summary.rows, summary.outcomes, strict=True):
        style = "" if outcome is None else _STYLE.get(outcome, "")  # None: not run or left out
        table.add_row(*row[:2], Text(row[2], style=style), row[3])
    console.print(table)
    for req_id, probe in summary.problems:
        console.print(Text(f"{probe.name} ({req_id}): {outcome_message(probe)}", style=_STYLE[probe.outcome]))
        if probe.outcome in (
            Outcome.FAILED,
            Outcome.ERROR,
        ):  # unknowns: the reason says it; evidence in summary.md
            for detail in probe_details(probe):
                console.print(Text(detail, style="dim"))
