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
from typing import Any

import click
import yaml


class ConfigError(Exception):
    pass


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kaic" / "config.yaml"


def _options(command: click.Command) -> set[str]:
    return {p.name for p in command.params if isinstance(p, click.Option) and p.name}


def _defaults(command: click.Command, flat: dict[str, Any], sections: dict[str, Any]) -> dict[str, Any]:
    mine = {k: v for k, v in flat.items() if k in _options(command)}
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            mine[name] = _defaults(sub, flat, sections.get(name) or {})
    values = {**mine, **{k: v for k, v in sections.items() if not isinstance(v, dict)}}
    # A repeatable option takes a list; one value alone (`toleration: KEY:EFFECT`) is a list of one.
    repeatable = {p.name for p in command.params if isinstance(p, click.Option) and p.multiple}
    return {k: [v] if k in repeatable and not isinstance(v, list) else v for k, v in values.items()}


def _check(node: dict[str, Any], command: click.Command, path: Path, where: str) -> None:
    known = _options(command)
    subs = command.commands if isinstance(command, click.Group) else {}
    everything = _all_options(command)
    for key, value in node.items():
        field = f"{where}{key}"
        if isinstance(value, dict):
            if key not in subs:
                raise ConfigError(f"{path}: {field}: no such command; valid: {', '.join(sorted(subs)) or 'none'}")
            _check(value, subs[key], path, f"{field}.")
        elif key not in (everything if not where else known):
            valid = everything if not where else known
            raise ConfigError(f"{path}: {field}: unknown option; valid: {', '.join(sorted(valid))}")


def _all_options(command: click.Command) -> set[str]:
    names = set(_options(command))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            names |= _all_options(sub)
    return names


def load(path: Path | None, root: click.Group) -> dict[str, Any]:
    """The default_map for `root` from the file (explicit path must exist; the default one may not)."""
    explicit = path is not None
    path = path or default_path()
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: no such config file")
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option names to values")
    data = _normalise(data)
    _check(data, root, path, "")
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    sections = {k: v for k, v in data.items() if isinstance(v, dict)}
    return _defaults(root, flat, sections)


def _normalise(node: dict[str, Any]) -> dict[str, Any]:
    """Accept the flag spelling (output-dir) as well as the parameter name (output_dir)."""
    return {
        str(k).replace("-", "_") if not isinstance(v, dict) else str(k): _normalise(v) if isinstance(v, dict) else v
        for k, v in node.items()
    }
