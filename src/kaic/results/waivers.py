"""Waivers: a named person's reasoned, dated decision to accept one regression in an upgrade gate.

A waiver file is YAML (kube-bench users have asked for one since 2020, aquasecurity/kube-bench#571):

    waivers:
      - requirement: accelerator_metrics   # required: the requirement id
        probe: scrape                      # optional: only this probe (short or full "<requirement>.<probe>")
        reason: exporter restarts after the driver upgrade, vendor case 1234   # required
        owner: platform-team@example.com   # required: who answers for it
        expires: 2026-12-31                # required: YYYY-MM-DD, valid through that day

Every waiver expires, so an accepted regression cannot be forgotten: once expired it no longer applies and
`kaic diff` says so. A bad file is refused whole, naming the file, the entry and the field.

A requirement waiver covers each rule of the gate for that requirement (failed, error, unknown, not-run,
excluded, missing); a probe waiver only outcomes its probe decided. No waiver covers an incomplete NEW run:
incompleteness concerns the run, not a requirement (kaic.results.diff).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

_FIELDS = ("requirement", "probe", "reason", "owner", "expires")
_REQUIRED = ("requirement", "reason", "owner", "expires")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Loader(yaml.SafeLoader):
    """Safe YAML that leaves dates as text, so a bad date is reported against its entry, not as a YAML
    error."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class WaiverError(ValueError):
    """The waiver file cannot be used; `kaic diff` exits 2 on it."""


@dataclass(frozen=True)
class Waiver:
    requirement: str
    reason: str
    owner: str
    expires: date
    probe: str | None = None  # full probe name "<requirement>.<probe>"; None waives the whole requirement

    @property
    def target(self) -> str:
        return self.probe or self.requirement

    def expired(self, today: date) -> bool:
        """A waiver holds through its expiry day."""
        return today > self.expires

    def expiry_note(self) -> str:
        return f"waiver for {self.target} expired on {self.expires.isoformat()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "requirement": self.requirement,
            "probe": self.probe,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }


def load(path: Path) -> list[Waiver]:
    """Read and check a waiver file; any problem is a WaiverError naming the file, entry index and field."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader subclass
    except OSError as exc:
        raise WaiverError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WaiverError(f"{path}: not UTF-8 text; a waiver file is YAML") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise WaiverError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or set(data) != {"waivers"} or not isinstance(data["waivers"], list):
        raise WaiverError(f"{path}: expected a mapping with one key, 'waivers', holding a list of waivers")
    return [_entry(path, index, entry) for index, entry in enumerate(data["waivers"])]


def _entry(path: Path, index: int, entry: Any) -> Waiver:
    where = f"{path}: waivers[{index}]"
    if not isinstance(entry, dict):
        raise WaiverError(f"{where}: expected a mapping with {', '.join(_REQUIRED)} and optionally probe")
    for key in entry:
        if key not in _FIELDS:
            raise WaiverError(f"{where}.{key}: unknown key; allowed: {', '.join(_FIELDS)}")
    for key in _REQUIRED:
        if key not in entry:
            raise WaiverError(f"{where}.{key}: required")
    values = {}
    for key, value in entry.items():
        if not isinstance(value, str) or not value.strip():
            raise WaiverError(f"{where}.{key}: expected a non-empty string, got {value!r}")
        values[key] = value.strip()
    return Waiver(
        requirement=values["requirement"],
        reason=values["reason"],
        owner=values["owner"],
        expires=_date(where, values["expires"]),
        probe=_probe(where, values["requirement"], values.get("probe")),
    )


def _date(where: str, text: str) -> date:
    try:
        if _DATE.match(text):
            return date.fromisoformat(text)
    except ValueError as exc:
        raise WaiverError(f"{where}.expires: {text!r} is not a date: {exc}") from None
    raise WaiverError(f"{where}.expires: {text!r} is not a date in the form YYYY-MM-DD")


def _probe(where: str, requirement: str, probe: str | None) -> str | None:
    """The full probe name; a short name is taken to be one of the requirement's probes."""
    if probe is None or "." not in probe:
        return probe and f"{requirement}.{probe}"
    if probe.split(".", 1)[0] != requirement:
        raise WaiverError(f"{where}.probe: {probe!r} is not a probe of requirement {requirement!r}")
    return probe
