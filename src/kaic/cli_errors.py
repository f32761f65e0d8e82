"""The one input-error type of every kaic command: message on stderr, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from kaic.outcomes import ExitCode

if TYPE_CHECKING:
    from kaic.results import Report


class InputError(click.ClickException):
    """A bad flag, file, profile or folder; the message names it and says what would be valid."""

    exit_code = ExitCode.USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"kaic: error: {self.format_message()}", err=True)


def load_report(path: Path) -> Report:
    """A saved run (its folder or report.json), or an InputError naming the path: one message for every command."""
    from kaic import results

    try:
        return results.load(path)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{path}: not a kaic result folder or report.json: {exc}") from None
