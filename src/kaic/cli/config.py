"""kaic's config file: defaults for any flag, below flags and environment variables.

Precedence (tested): flags > environment variables > config file > built-in defaults. click gives that order
when the file becomes the context's `default_map`; this module only reads and checks the file.

    # ~/.config/kaic/config.yaml (or --config PATH, or $KAIC_CONFIG)
    context: gpu-staging          # top-level keys apply to every command that has the option
    run:                          # a command's own section wins over top-level keys
      mode: certified
      output-dir: /var/lib/kaic/latest
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kaic.cli.errors import subcommands

if TYPE_CHECKING:
    import yaml


class ConfigError(Exception):
    """The config file cannot be used; the message names the file and the key (`run.timeout`)."""


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kaic" / "config.yaml"


def _params(command: click.Command) -> dict[str, click.Option]:
    """The options a config file may set, by every spelling (parameter name, long flag; `-` or `_`): not
    --help or --version, which act rather than set."""
    found: dict[str, click.Option] = {}
    for p in command.params:
        if isinstance(p, click.Option) and p.name and p.expose_value and not p.is_eager:
            for spelling in [p.name, *(o.lstrip("-") for o in p.opts if o.startswith("--"))]:
                found[spelling.replace("-", "_")] = p
    return found


def _flags(params: dict[str, click.Option]) -> set[str]:
    """How the valid keys are listed: as the long flags are spelled."""
    return {max(p.opts, key=len).lstrip("-") for p in params.values()}


def _defaults(command: click.Command, flat: dict[str, Any], sections: dict[str, Any]) -> dict[str, Any]:
    params = _params(command)
    mine = {params[k].name: v for k, v in flat.items() if k in params}
    for name, sub in subcommands(command).items():
        mine[name] = _defaults(sub, flat, sections.get(name) or {})
    return {**mine, **{params[k].name: v for k, v in sections.items() if not isinstance(v, dict)}}


def _check(node: dict[Any, Any], command: click.Command, path: Path, where: str) -> dict[str, Any]:
    """The node with every value checked by its option's own click type and callback, as the flag would be,
    and spelled as on the command line (click converts default_map values again when a command runs)."""
    subs = subcommands(command)
    checked: dict[str, Any] = {}
    for raw, value in node.items():
        field, key = f"{where}{raw}", str(raw).replace("-", "_")
        if isinstance(value, dict):
            if str(raw) not in subs:
                raise ConfigError(
                    f"{path}: {field}: no such command; valid: {', '.join(sorted(subs)) or 'none'}"
                )
            checked[str(raw)] = _check(value, subs[str(raw)], path, f"{field}.")
            continue
        # A top-level key sets that option of every command that has it; a section sets its command's own.
        owners = (
            _owners(command, key, "kaic") if not where else [("", command)] if key in _params(command) else []
        )
        if not owners:
            valid = (
                set().union(*(_all_flags(s) for s in subs.values()))
                if not where
                else _flags(_params(command))
            )
            raise ConfigError(f"{path}: {field}: unknown option; valid: {', '.join(sorted(valid)) or 'none'}")
        texts = [
            _value(f"{path}: {field}", name, owner, _params(owner)[key], value) for name, owner in owners
        ]
        checked[key] = texts[0]
    return checked


def _owners(command: click.Command, key: str, name: str) -> list[tuple[str, click.Command]]:
    """The subcommands (at any depth), by command path, that have option `key`."""
    found: list[tuple[str, click.Command]] = []
    for sub_name, sub in subcommands(command).items():
        path = f"{name} {sub_name}"
        found += ([(path, sub)] if key in _params(sub) else []) + _owners(sub, key, path)
    return found


def _value(where: str, name: str, command: click.Command, param: click.Option, value: Any) -> Any:
    """The value as its flag would take it; anything the flag would refuse is a ConfigError naming the key."""
    flag = max(param.opts, key=len) + (f" of `{name}`" if name else "")
    if value is None:
        raise ConfigError(f"{where}: has no value; give one (as for {flag}) or remove the key")
    if param.is_flag:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not true or false ({flag} is a switch)")
        return value
    if isinstance(value, list) and not param.multiple:
        raise ConfigError(f"{where}: expected one value, not a list (as for {flag})")
    items = value if isinstance(value, list) else [value]
    texts = [_text(where, flag, param, item) for item in items]
    raw = texts if param.multiple else texts[0]
    try:
        param.process_value(click.Context(command, info_name=command.name), raw)
    except click.BadParameter as exc:
        message = exc.message.rstrip(".")
        raise ConfigError(
            f"{where}: {message}" + ("" if ";" in message else f"; give a value as for {flag}")
        ) from None
    return raw


def _text(where: str, flag: str, param: click.Option, item: Any) -> str:
    """One scalar as a command-line word; YAML's booleans and unquoted decimals would be read wrongly."""
    if isinstance(item, bool):
        raise ConfigError(
            f"{where}: {str(item).lower()} is not a {param.type.name}; give a value as for {flag}"
        )
    if isinstance(item, float) and param.type is click.STRING:
        raise ConfigError(f"{where}: {item!r} is a number; quote it (YAML reads 1.30 as 1.3)")
    if not isinstance(item, (str, int, float)):
        kind = {type(None): "null", dict: "a mapping", list: "a list"}.get(
            type(item), f"a YAML {type(item).__name__}"
        )
        raise ConfigError(
            f"{where}: {kind} is not a {param.type.name}; give a value as for {flag} (quote it)"
        )
    return str(item)


def _all_flags(command: click.Command) -> set[str]:
    flags = _flags(_params(command))
    for sub in subcommands(command).values():
        flags |= _all_flags(sub)
    return flags


def load(path: Path | None, root: click.Group) -> dict[str, Any]:
    """The default_map for `root` from the file (explicit path must exist; the default one may not)."""
    explicit = path is not None
    path = path or default_path()
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: no such config file; pass an existing YAML file to --config")
        return {}
    import yaml  # here: without a config file, commands that read no YAML load no YAML parser

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; a config file is YAML") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_one_line(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply; a config file is a mapping of option names") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option names to values")
    try:
        data = _check(data, root, path, "")
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply, or refers to itself through a YAML alias") from None
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    sections = {k: v for k, v in data.items() if isinstance(v, dict)}
    return _defaults(root, flat, sections)


def _one_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{getattr(exc, 'problem', None) or exc}{where}".replace("\n", " ")
