"""kaic's error contract, in one place: what a user sees when something goes wrong, and the exit code.

- Bad input (a flag, file, config key, environment variable, report, profile, probe module, key or output
  location): one line `kaic: error: <file|flag|key>: <what is wrong>; <what would be valid>` on stderr, exit
  2, before a run id or an output folder exists. click's own usage errors are reworded into the same line.
- A bug inside kaic: `kaic: internal error: ...` naming a file that holds the traceback (in the run's output
  folder when there is one, else a temporary file), exit 3. No traceback reaches the terminal.
- Exit 1 is never used for either: it means a MUST failed (run), regressed (diff) or errors were found
  (lint, verify).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from kaic.results.outcomes import ExitCode
from kaic.results.run_dir import TRACEBACK_FILE

if TYPE_CHECKING:
    from kaic.results.report import Report

PREFIX = "kaic: error: "
CONFIG_KEY = "kaic.config"  # ctx.meta: the config file whose values became the context's default_map
CONFIG_ERROR = "kaic.config-error"  # ctx.meta: why that file cannot be used, raised when a command runs
_output_dir: list[Path] = []  # the folder of the run in progress, where an internal error's traceback goes


class InputError(click.ClickException):
    """A bad flag, file, profile or folder; the message names it and says what would be valid."""

    exit_code = ExitCode.USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(PREFIX + " ".join(self.format_message().split()), err=True)  # one line, whatever the cause


class OperationError(InputError):
    """Input was fine but the operation could not be completed (a local cluster that would not start): exit
    3."""

    exit_code = ExitCode.INCOMPLETE


def remember_output_dir(path: Path) -> None:
    """The run's output folder exists: an internal error from now on leaves its traceback there."""
    _output_dir[:] = [path]


def load_report(path: Path) -> Report:
    """A saved run (its folder or report.json), or an InputError naming the path: one message for every
    command."""
    from kaic.results import report as results

    try:
        return results.load(path)
    except results.ReportError as exc:
        raise InputError(str(exc)) from None


class _PipeClosed(Exception):
    """stdout's reader went away (`kaic ... | head`)."""


class KaicGroup(click.Group):
    """kaic's root command: click's standalone handling replaced by the error contract above, and its
    commands imported when used (`lazy`: name -> "module:attribute")."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """In the order `lazy` names them (help lists them so), then any added directly."""
        return [*self.lazy, *(name for name in self.commands if name not in self.lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (
            BrokenPipeError
        ) as exc:  # click would turn it into exit 1 ("a MUST failed") before main sees it
            raise _PipeClosed from exc

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _defer_config_error(cmd)
        super().add_command(cmd, name)

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        if extra.get("standalone_mode", True) is False:
            return super().main(args, prog_name, **extra)
        _output_dir.clear()
        try:
            code = super().main(args, prog_name, **{**extra, "standalone_mode": False})
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            click.echo(PREFIX + " ".join(usage_line(exc).split()), err=True)
            sys.exit(ExitCode.USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt, EOFError):
            click.echo("kaic: interrupted", err=True)
            sys.exit(ExitCode.INCOMPLETE)
        except (
            BrokenPipeError,
            _PipeClosed,
        ):  # the reader went away (`kaic ... | head`): nothing left to say to it
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
            sys.exit(ExitCode.INCOMPLETE)
        except Exception as exc:  # noqa: BLE001 - the one place where a bug in kaic becomes exit 3
            click.echo(f"kaic: internal error: {internal_error(exc)}", err=True)
            sys.exit(ExitCode.INCOMPLETE)
        sys.exit(code if isinstance(code, int) else ExitCode.CONFORMANT)  # ctx.exit(n) returns n here


def subcommands(command: click.Command) -> dict[str, click.Command]:
    """A group's commands by name, lazy ones imported (checking a config file walks the whole tree)."""
    if not isinstance(command, click.Group):
        return {}
    ctx = click.Context(command)
    return {name: sub for name in command.list_commands(ctx) if (sub := command.get_command(ctx, name))}


def _defer_config_error(cmd: click.Command) -> None:
    """A broken config file stops every command when it runs, not before: `kaic CMD --help` still helps."""
    if isinstance(cmd, click.Group):
        for sub in subcommands(cmd).values():
            _defer_config_error(sub)
        return
    callback = cmd.callback
    if callback is None or getattr(callback, "_kaic_config_checked", False):
        return

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if error := click.get_current_context().meta.get(CONFIG_ERROR):
            raise error
        return callback(*args, **kwargs)

    checked._kaic_config_checked = True  # type: ignore[attr-defined]
    cmd.callback = checked


def internal_error(exc: BaseException) -> str:
    """Save the traceback and say where: a bug report needs it, a user's terminal does not."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(exc))
    summary = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    try:
        if _output_dir and _output_dir[0].is_dir():
            path = _output_dir[0] / TRACEBACK_FILE
            path.write_text(text, encoding="utf-8")
        else:
            stem, suffix = os.path.splitext(TRACEBACK_FILE)
            fd, name = tempfile.mkstemp(prefix=f"{stem}-", suffix=suffix)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            path = Path(name)
    except OSError as error:
        return f"{summary}; the traceback could not be saved ({error.strerror}); please report this bug"
    return f"{summary}; traceback saved to {path}; please report this bug with that file"


def usage_line(exc: click.UsageError) -> str:
    """click's usage error as `<flag|argument|command>: <what is wrong>; <what would be valid>`."""
    ctx = exc.ctx
    command = ctx.command_path if ctx else "kaic"
    see = f"see `{command} --help`" if ctx else "see the command's --help"
    message = exc.message.strip().rstrip(".")
    if isinstance(exc, click.BadParameter):
        subject = _param_subject(exc, ctx)
        if isinstance(exc, click.MissingParameter):
            return f"{subject}: missing; it is required ({see})"
        return f"{subject}: {message}" + ("" if ";" in message else f"; {see}")
    if isinstance(exc, click.NoSuchOption):
        close = f"did you mean {', '.join(exc.possibilities)}? " if exc.possibilities else ""
        return f"{exc.option_name}: no such option of `{command}`; {close}{see}"
    name = getattr(exc, "command_name", None)
    if name is not None and ctx is not None and isinstance(ctx.command, click.Group):
        valid = ", ".join(sorted(ctx.command.list_commands(ctx)))
        return f"{name}: no such command of `{command}`; valid: {valid}"
    if isinstance(exc, click.BadOptionUsage):
        message = message.replace(f"Option {exc.option_name!r} requires an argument", "needs a value")
        return f"{exc.option_name}: {message}; {see}"
    return f"{command}: {message}; {see}"


def _param_subject(exc: click.BadParameter, ctx: click.Context | None) -> str:
    """The flag or argument at fault, and where its value came from when that was not the command line."""
    param = exc.param
    if param is None:
        hint = exc.param_hint
        return hint if isinstance(hint, str) else " / ".join(hint or ()) or "value"
    if isinstance(param, click.Argument):
        return param.make_metavar(ctx) if ctx else (param.name or "argument").upper()
    return _source_subject(param, ctx)


def named_input_error(exc: Exception) -> InputError:
    """A usage error whose message starts with a flag, renamed for where the value came from (an environment
    variable, a config file's key), so a user fixes the right place."""
    text = str(exc)
    flag = text.split(" ", 1)[0].rstrip(":")
    ctx = click.get_current_context(silent=True)
    if ctx is not None and flag.startswith("--"):
        param = next((p for p in ctx.command.params if isinstance(p, click.Option) and flag in p.opts), None)
        source = ctx.get_parameter_source(param.name) if param is not None and param.name else None
        if param is not None and source in (
            click.core.ParameterSource.ENVIRONMENT,
            click.core.ParameterSource.DEFAULT_MAP,
        ):
            text = _source_subject(param, ctx) + text[len(flag) :]
    return InputError(text)


def _source_subject(param: click.Parameter, ctx: click.Context | None) -> str:
    flag = (
        next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if param.opts
        else param.name or "option"
    )
    source = ctx.get_parameter_source(param.name) if ctx and param.name else None
    if source is click.core.ParameterSource.ENVIRONMENT and isinstance(param, click.Option):
        names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
        set_vars = [name for name in names if name in os.environ] or names
        return f"${set_vars[0]} ({flag})" if set_vars else flag
    if source is click.core.ParameterSource.DEFAULT_MAP and ctx is not None:
        config = ctx.meta.get(CONFIG_KEY)
        return f"{config}: {param.name} ({flag})" if config else flag
    return flag
