"""`kaic profiles list|show`: what a profile judges, per Kubernetes minor, without touching a cluster.

Kept apart from the run machinery so these commands import neither the kubernetes client nor pytest, and
jsonschema only when the profile is a file from outside kaic.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from kaic.cli.errors import InputError

if TYPE_CHECKING:
    from kaic.profile import Profile, Requirement

_output = click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


@contextmanager
def _input_errors() -> Iterator[None]:
    from kaic.profile import ProfileError

    try:
        yield
    except ProfileError as exc:
        raise InputError(str(exc)) from exc


@click.group()
def profiles() -> None:
    """Built-in conformance profiles and profile files."""


@profiles.command("list")
@_output
def list_command(output: str) -> None:
    """The built-in profiles."""
    from kaic.profile import list_profiles

    with _input_errors():
        found = list_profiles()
    if output == "json":
        click.echo(json.dumps([_summary(p) for p in found], indent=2))
        return
    table = _table("Profile", "Version", "Kubernetes", "Requirements", "Description")
    for p in found:
        table.add_row(p.id, p.version, ", ".join(p.minors()), str(len(p.requirements)), p.description)
    _print(table)


@profiles.command("show")
@click.argument("profile")
@click.option(
    "--kubernetes-version",
    metavar="MINOR",
    help="Show only that checklist's requirements and levels (e.g. 1.35); default: every minor.",
)
@_output
def show_command(profile: str, kubernetes_version: str | None, output: str) -> None:
    """A profile's requirements: PROFILE is a built-in name or a profile file (validated)."""
    from kaic.profile import choose_version, load_profile

    with _input_errors():
        loaded = load_profile(profile)
        chosen = choose_version(loaded, None, kubernetes_version) if kubernetes_version else None
    minors = [chosen[0]] if chosen else loaded.minors()
    rows = [req for req, _ in loaded.for_version(chosen[0])] if chosen else loaded.requirements
    if output == "json":
        doc = _summary(loaded) | {
            "checklists": loaded.checklists,
            "kubernetesVersion": {"chosen": chosen[0], "reason": chosen[1]} if chosen else None,
            "requirements": [_requirement(req, minors) for req in rows],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    title = f"{loaded.id} {loaded.version}" + (f", checklist {chosen[0]}" if chosen else "")
    table = _table("Requirement", *minors, "Category", "Conditional", "Upstream test", title=title)
    for req in rows:
        levels = [req.levels.get(m, "–") for m in minors]
        table.add_row(req.id, *levels, req.category, req.conditional or "", req.upstream_test or "")
    table.caption = f"{loaded.source}\nsha256 {loaded.sha256}"
    _print(table)


def _summary(profile: Profile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "version": profile.version,
        "description": profile.description,
        "kubernetesVersions": profile.minors(),
        "requirementCount": len(profile.requirements),
        "path": str(profile.source),
        "sha256": profile.sha256,
    }


def _requirement(req: Requirement, minors: list[str]) -> dict[str, Any]:
    """One requirement in the profile file's own camelCase terms, levels limited to the minors shown."""
    return {
        "id": req.id,
        "category": req.category,
        "kar": req.kar,
        "levels": {m: req.levels[m] for m in minors if m in req.levels},
        "conditional": req.conditional,
        "upstreamTest": req.upstream_test,
        "summary": req.summary,
        "probes": list(req.probes),
        "outcomes": req.outcomes,
    }


def _table(*columns: str, title: str | None = None) -> Any:
    from rich.table import Table  # only tables need rich; -o json stays lean

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _print(table: Any) -> None:
    """Fit a terminal; give pipes and CI logs the whole table rather than rich's 80 columns."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console.width = 1000  # the table takes its natural width, up to this (measuring first costs a render)
    console.print(table)
