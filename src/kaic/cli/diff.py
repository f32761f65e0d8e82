"""`kaic diff OLD NEW`: the upgrade gate, comparing a run before an upgrade with one after it.

Only what `kaic` loads anyway is imported up front, so registering the command costs `kaic --help` nothing;
rich, the result model and the waiver reader load when the command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kaic.cli.errors import InputError, load_report

# kaic's one -o table|json option and table printer (fits a terminal or a CI log); `kaic` loads them anyway
from kaic.cli.profiles import _output, _print

if TYPE_CHECKING:
    from kaic.results.diff import Diff, FactChange, RequirementChange

_STYLE = {
    "regression": "red",
    "fix": "green",
    "changed": "yellow",
    "new": "cyan",
    "removed": "magenta",
    "unchanged": "dim",
}


@click.command()
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option(
    "--waivers",
    "waiver_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML file of named, reasoned, dated waivers for regressions.",
)
@_output
@click.option(
    "--today", type=click.DateTime(["%Y-%m-%d"]), hidden=True, help="Judge waiver expiry on this day."
)
def diff(old: Path, new: Path, waiver_file: Path | None, output: str, today: Any) -> None:
    """Compare two runs requirement by requirement: OLD and NEW are result folders or report.json files.

    The gate fails closed. Exit codes: 0 nothing blocks; 1 a requirement that is a MUST in NEW's checklist
    got worse without a valid waiver (failed, error, unknown, not run, left out by --focus/--skip or missing
    in NEW where OLD passed it), or the NEW run is incomplete (no waiver covers that); 2 usage or input
    error (unreadable report, bad waiver file); 3 the OLD run, the baseline, is incomplete. SHOULD
    regressions are listed and never change the exit code.
    """
    from datetime import date

    from kaic.results.diff import diff as compare
    from kaic.results.waivers import WaiverError
    from kaic.results.waivers import load as load_waivers

    try:
        waivers = load_waivers(waiver_file) if waiver_file else []
    except WaiverError as exc:
        raise InputError(str(exc)) from None
    result = compare(load_report(old), load_report(new), waivers, today.date() if today else date.today())
    if output == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        _render(result, old, new)
    raise SystemExit(result.exit_code)


def _render(result: Diff, old: Path, new: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from kaic.results.diff import run_summary

    console = Console()
    for name, path, report in (("OLD", old, result.old), ("NEW", new, result.new)):
        summary = run_summary(report)
        console.print(
            f"{name} {path}: run {summary['runId']}, {summary['profile']['id']} "
            f"{summary['profile']['version']}, checklist {summary['checklist']['chosen']}, Kubernetes "
            f"{summary['kubernetesVersion']}, mode {summary['mode']}, verdict {summary['verdict']}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    table = Table("Change", "Requirement", "Level", "OLD", "NEW", "Notes", title="Requirements")
    for req in result.requirements:
        style = "bold red" if req.blocking else _STYLE[req.change]
        old_state, new_state = req.old_state or "–", req.new_state or "–"
        _row(table, style, req.change, req.id, _level(req), old_state, new_state, _notes(req))
        for probe in req.probes:
            _row(
                table,
                _STYLE[probe.change],
                "",
                f"  {probe.name}",
                "",
                probe.old or "–",
                probe.new or "–",
                f"probe {probe.change}",
            )
    _print(table)
    if result.facts:
        facts = Table("Fact", "Change", title="Changed facts")
        for fact in result.facts:
            _row(facts, "", fact.fact, "\n".join(_fact_lines(fact)))
        _print(facts)
    for warning in result.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False, highlight=False, soft_wrap=True)
    for reason in result.reasons:
        said = f"{reason.requirement}: {reason.text}" if reason.requirement else reason.text
        console.print(
            f"rule {reason.rule}: {said}", style="red", markup=False, highlight=False, soft_wrap=True
        )
    style = "bold green" if result.exit_code == 0 else "bold red"
    console.print(_gate_line(result), style=style, markup=False, highlight=False, soft_wrap=True)


def _row(table: Any, style: str, *cells: str) -> None:
    """Cells as plain text: ids, reasons and facts may hold brackets that rich would take for markup."""
    from rich.text import Text

    table.add_row(*(Text(cell) for cell in cells), style=style)


def _level(req: RequirementChange) -> str:
    return f"{req.old_level} → {req.new_level}" if req.level_changed else req.level


def _notes(req: RequirementChange) -> str:
    lines = [f"waived by {w.owner} until {w.expires.isoformat()}: {w.reason}" for w in req.waived_by]
    if req.blocking:
        lines.append(f"blocks the gate (rule {req.rule})" + (f": {req.reason}" if req.reason else ""))
    return "\n".join(lines + req.notes)


def _fact_lines(fact: FactChange) -> list[str]:
    if fact.changed is None:
        return [f"{_show(fact.old)} → {_show(fact.new)}"]
    return (
        [f"+ {key}: {_show(value)}" for key, value in (fact.added or {}).items()]
        + [f"- {key}: {_show(value)} (gone)" for key, value in (fact.removed or {}).items()]
        + [f"~ {key}: {_show(both['old'])} → {_show(both['new'])}" for key, both in fact.changed.items()]
    )


def _show(value: Any) -> str:
    """Facts compactly: mappings as k=v, lists in brackets, an absent or unreadable fact as a dash."""
    if value is None:
        return "–"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _gate_line(result: Diff) -> str:
    from kaic.results.diff import NEW_INCOMPLETE

    if result.exit_code == 1:
        ids = ", ".join(r.id for r in result.blocking)
        parts = [f"MUST regression without a valid waiver: {ids}"] if ids else []
        if any(r.rule == NEW_INCOMPLETE for r in result.reasons):
            parts.append("the NEW run is incomplete")
        return f"gate: FAILED, {'; '.join(parts)}"
    if result.exit_code == 3:
        return "gate: UNDECIDED, the OLD run (the baseline) is incomplete; rerun it and diff again"
    regressions = result.of("regression")
    if not regressions:
        return "gate: passed, nothing regressed"
    waived = sum(1 for r in regressions if r.waived_by)
    return f"gate: passed, {len(regressions)} regression(s) but none of an unwaived MUST ({waived} waived)"
