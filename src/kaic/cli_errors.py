"""The one input-error type of every kaic command: message on stderr, exit 2, nothing written."""

from __future__ import annotations

from typing import IO, Any

import click

from kaic.outcomes import ExitCode


class InputError(click.ClickException):
    """A bad flag, file, profile or folder; the message names it and says what would be valid."""

    exit_code = ExitCode.USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"kaic: error: {self.format_message()}", err=True)
