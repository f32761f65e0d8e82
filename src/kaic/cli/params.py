"""Parameter types shared by kaic's commands (kept light: every command module may import it)."""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}


class Duration(click.ParamType):
    """Seconds, or a Go-style duration such as 90s, 5m, 1h; more than zero (every one is a wait), never a
    boolean."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        seconds = math.nan
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif not isinstance(value, bool) and (match := _DURATION.match(str(value).strip())):
            seconds = float(match[1]) * _UNIT[match[2]]
        if not 0 < seconds <= threading.TIMEOUT_MAX:  # also NaN; zero would wait for nothing
            self.fail(
                f"{value} is not a duration; use seconds above 0 (300) or a Go duration such as 90s, 5m, 1h",
                param,
                ctx,
            )
        return seconds


class LazyChoice(click.Choice[str]):
    """A choice among values read on first use, from a module that `kaic --help` (which shows no subcommand's
    options) and a command left at the option's default need not load."""

    def __init__(self, values: Callable[[], Iterable[str]]) -> None:
        # click.Choice.__init__ would read the values now
        self._values = values
        self.case_sensitive = True

    @functools.cached_property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self._values())

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if param is not None and value == param.default:
            return str(value)  # one of the values (tests/unit/cli/test_cli.py checks), known without them
        return super().convert(value, param, ctx)


def duration_option(*decls: str, seconds: float, **attrs: Any) -> Callable[[F], F]:
    """A Duration flag defaulting to `seconds` (a typed setting's default), shown in --help as 30s or 5m."""
    shown = f"{seconds / 60:g}m" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g}s"
    return click.option(*decls, type=Duration(), default=shown, show_default=True, **attrs)


def key_value_pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """KEY=VALUE, repeatable."""
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key.strip() or not item.strip():
            raise click.BadParameter(f"{value!r}: use KEY=VALUE", ctx, param)
        pairs[key.strip()] = item.strip()
    return pairs


def split_commas(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Repeatable and comma-separated: --focus a,b --focus c."""
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())
