"""`kaic submission create | lint`: CNCF AI Conformance submission folders from the command line.

Registered by kaic's main command group. Only PyYAML and the standard library load on import, so the
commands start fast; the profile is read when a command needs it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click

_ERRORS_FOUND = 1  # lint found errors (or create wrote a folder the validator would reject)
_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@contextlib.contextmanager
def _bad_input() -> Iterator[None]:
    """A submission that cannot be used is bad input: the one-line error and exit 2 of every command."""
    from kaic.certify.submission import SubmissionError
    from kaic.cli.errors import InputError

    try:
        yield
    except SubmissionError as exc:
        raise InputError(str(exc)) from None


@click.group()
def submission() -> None:
    """CNCF Kubernetes AI Conformance submissions: fill the official checklist from a run, lint a folder."""


@submission.command()
@click.argument("run_dir", metavar="DIR", type=_DIR)
@click.option("--checklist", required=True, type=_FILE, help="The official docs/AIConformance-X.Y.yaml.")
@click.option(
    "--product", required=True, type=_FILE, help="Product metadata YAML (vendorName, platformName, ...)."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Where vX.Y/<dir>/ is written (e.g. a clone of cncf/k8s-ai-conformance).",
)
@click.option("--accept-drift", is_flag=True, help="Fill a template whose digest kaic does not know.")
def create(run_dir: Path, checklist: Path, product: Path, out: Path, accept_drift: bool) -> None:
    """Write vX.Y/<dir>/ for a pull request from the certified, complete run in DIR.

    Exit codes: 0 written (lint warnings are printed), 1 written but lint finds errors (e.g. a MUST that
    did not pass), 2 bad input (a run that is not certified or complete, an unknown template, a product
    file field missing).
    """
    from kaic.certify.submission.create import create as create_submission
    from kaic.certify.submission.lint import lint

    with _bad_input():
        folder = create_submission(run_dir, checklist, product, out, accept_drift=accept_drift)
        click.echo(str(folder))
        findings = lint(folder, checklist)
    for finding in findings:
        click.echo(str(finding), err=True)
    if any(f.level == "error" for f in findings):
        sys.exit(_ERRORS_FOUND)


def _allow_must_na_ignored(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """--allow-must-na emulated a validator change that has since landed narrower than it: ignoring the
    flag can only make lint stricter, never pass what CI rejects, so scripts that pass it keep working."""
    if value:
        from kaic.certify.submission.official import MUST_NA_ALLOWED

        click.echo(
            "kaic: warning: --allow-must-na: ignored and to be removed; the validator now accepts N/A on a "
            f"MUST only for {MUST_NA_ALLOWED} (with notes, as a warning), as lint does without a flag",
            err=True,
        )


@submission.command("lint")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--checklist",
    type=click.Path(path_type=Path),
    help="The official AIConformance-X.Y.yaml, to check descriptions verbatim "
    "[default: docs/AIConformance-X.Y.yaml above DIR, else kaic's profile without descriptions].",
)
@click.option(
    "--version",
    "version",
    help="The checklist version, e.g. v1.37 "
    "[default: vX.Y/ in DIR's path, else PRODUCT.yaml's kubernetesVersion].",
)
@click.option(
    "--allow-must-na", is_flag=True, hidden=True, expose_value=False, callback=_allow_must_na_ignored
)
@click.option("--online", is_flag=True, help="Also check that every URL answers, as the validator does.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def lint_command(
    directory: Path, checklist: Path | None, version: str | None, online: bool, output: str
) -> None:
    """Check a submission folder (or its PRODUCT.yaml) against the program validator's rules, offline, and
    what the validator misses (upstream test results, artifacts of one run, clean e2e.log).

    Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 bad input (a folder or file that cannot be
    read, no PRODUCT.yaml, no version, a checklist that is not one).
    """
    from kaic.certify.submission.lint import ERROR, WARNING, lint

    with _bad_input():
        findings = lint(directory, checklist, online=online, version=version)
    errors = sum(f.level == ERROR for f in findings)
    warnings = sum(f.level == WARNING for f in findings)
    if output == "json":
        payload = {
            "path": str(directory),
            "errors": errors,
            "warnings": warnings,
            "findings": [f.to_dict() for f in findings],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
        click.echo(f"{directory}: {errors} error(s), {warnings} warning(s)", err=True)
    if errors:
        sys.exit(_ERRORS_FOUND)
