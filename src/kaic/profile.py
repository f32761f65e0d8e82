"""Profiles: which requirements kaic judges, at which level, for each Kubernetes minor.

A profile is one YAML file. The built-in ones ship with kaic and are checked against the JSON Schema by the
unit tests; any other file (a vendor's subset, stricter in-house levels) is validated when loaded and refused
with the file, the field and what is allowed. jsonschema is imported only for such files, so listing and
showing the built-in profiles stays fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kaic.resources import resource_dir

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "profile.schema.json"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MINOR = re.compile(r"v?(\d+)\D*\.(\d+)")


class ProfileError(Exception):
    """A profile, or the Kubernetes version asked of it, cannot be used; commands exit 2 on it."""

    def __init__(self, file: str | Path, field: str, message: str) -> None:
        self.file = str(file)
        self.field = field
        self.message = message
        super().__init__(": ".join(part for part in (self.file, field, message) if part))


@dataclass(frozen=True)
class Requirement:
    id: str
    category: str  # checklist category key (spec.<category>)
    kar: str | None
    levels: dict[str, str]  # minor -> MUST | SHOULD; absent where that checklist lacks the id
    conditional: str | None  # platform | hardware: only these may end not-applicable
    upstream_test: str | None  # upstream Go test that checks the same thing
    summary: str
    probes: tuple[str, ...]  # "<id>.<name>"
    outcomes: dict[str, str]  # unknown | notApplicable | failed -> when that outcome is due


@dataclass(frozen=True)
class Profile:
    id: str
    version: str
    description: str
    checklists: dict[str, str]  # minor -> SHA-256 of the official checklist it was built from
    requirements: tuple[Requirement, ...]
    source: Path
    sha256: str  # of the file's bytes: a report names exactly what judged it

    def minors(self) -> list[str]:
        """The Kubernetes minors this profile has a checklist for, oldest first."""
        return sorted(self.checklists, key=minor_key)

    def for_version(self, minor: str) -> list[tuple[Requirement, str]]:
        """The requirements that minor's checklist has, each with its level there."""
        return [(req, req.levels[minor]) for req in self.requirements if minor in req.levels]


def builtin_dir() -> Path:
    """The profiles shipped with kaic (see kaic.resources for wheel versus checkout)."""
    return resource_dir("profiles")


def list_profiles() -> list[Profile]:
    """Every built-in profile; not schema-validated here because the unit tests validate them."""
    return [_load(path, validate=False) for path in _builtin_files()]


def builtin_names() -> list[str]:
    """The names `--profile` takes for the built-in profiles."""
    return [p.stem for p in _builtin_files()]


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name, or a profile file: anything with a path separator or a YAML suffix."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or os.sep in text or "/" in text or text.endswith((".yaml", ".yml")):
        return _load(Path(text), validate=True)
    path = builtin_dir() / f"{text}.yaml"
    if not path.is_file():
        available = ", ".join(builtin_names()) or "none"
        hint = "a file path must contain '/' or end in .yaml"
        raise ProfileError(text, "", f"no built-in profile of that name (available: {available}); {hint}")
    return _load(path, validate=False)


def choose_version(profile: Profile, detected: str | None, override: str | None) -> tuple[str, str]:
    """Pick the checklist minor to judge, and say why (the report records both detected and chosen).

    An override must be a minor the profile covers. Otherwise the server's minor, else the nearest lower one
    the profile covers (kube-bench's version mapping); a server older than every checklist is refused.
    """
    supported = profile.minors()
    if override is not None:
        try:
            chosen = _parse_minor(override, profile)
        except ProfileError as exc:
            raise ProfileError("--kubernetes-version", "", exc.message) from None
        if chosen not in supported:
            raise ProfileError(
                "--kubernetes-version",
                "",
                _version_error(
                    profile, f"Kubernetes {chosen} is not covered by profile {profile.id} ({profile.source})"
                ).message,
            )
        seen = f"server reports {detected}" if detected else "server version not detected"
        return chosen, f"set by --kubernetes-version; {seen}"
    if detected is None:
        return supported[-1], f"server version not detected; using the newest checklist, {supported[-1]}"
    minor = _parse_minor(detected, profile)
    if minor in supported:
        return minor, f"server version {minor}"
    lower = [m for m in supported if minor_key(m) < minor_key(minor)]
    if not lower:
        raise _version_error(profile, f"server version {minor} is older than every checklist")
    nearest = lower[-1]
    if nearest == supported[-1]:
        return nearest, f"server version {minor} is newer than every checklist; using the newest, {nearest}"
    return nearest, f"no checklist for server version {minor}; using the nearest lower one, {nearest}"


def _builtin_files() -> list[Path]:
    return sorted(builtin_dir().glob("*.yaml"))


def minor_key(minor: str) -> tuple[int, ...]:
    return tuple(int(part) for part in minor.split("."))


def _parse_minor(text: str, profile: Profile) -> str:
    """'1.36', 'v1.36.2' or '1.36+' (a managed server's minor) -> '1.36'."""
    match = _MINOR.match(text.strip())
    if match is None:
        raise _version_error(profile, f"{text!r} is not a Kubernetes version such as 1.35")
    return f"{int(match[1])}.{int(match[2])}"


def _version_error(profile: Profile, problem: str) -> ProfileError:
    return ProfileError(profile.source, "checklists", f"{problem}; supported: {', '.join(profile.minors())}")


def _load(path: Path, validate: bool) -> Profile:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProfileError(path, "", "no such file") from None
    except OSError as exc:
        raise ProfileError(path, "", exc.strerror or str(exc)) from None
    try:
        data = yaml.load(raw, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ProfileError(path, where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if validate:
        _validate(data, path)
    return _build(data, path, hashlib.sha256(raw).hexdigest())


def _validate(data: Any, path: Path) -> None:
    import jsonschema  # here, not at the top: only files from outside kaic pay for it

    try:
        _check_keys(data, path, [])
    except RecursionError:
        raise ProfileError(path, "", "nested too deeply, or refers to itself through a YAML alias") from None
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        message = error.message
        if error.validator == "additionalProperties" and "properties" in error.schema:
            message += f"; allowed: {sorted(error.schema['properties'])}"
        raise ProfileError(path, _field(error.absolute_path), message)


def _check_keys(node: Any, path: Path, where: list[str | int]) -> None:
    """YAML reads an unquoted 1.30 as the number 1.3; refuse every non-string key rather than guess."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ProfileError(path, _field(where), f"key {key!r} must be a quoted string such as '1.35'")
            _check_keys(value, path, [*where, key])
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _check_keys(item, path, [*where, index])


def _field(parts: Iterable[str | int]) -> str:
    """jsonschema's error path as people write it: requirements[3].levels.1.34."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else part
    return out


def _build(data: dict[str, Any], path: Path, digest: str) -> Profile:
    """The model, plus the rules that span fields and so are beyond the schema."""
    checklists = dict(data["checklists"])
    requirements: list[Requirement] = []
    first: dict[str, int] = {}
    for index, item in enumerate(data["requirements"]):
        where = f"requirements[{index}]"
        req = Requirement(
            id=item["id"],
            category=item["category"],
            kar=item.get("kar"),
            levels=dict(item["levels"]),
            conditional=item.get("conditional"),
            upstream_test=item.get("upstreamTest"),
            summary=item["summary"],
            probes=tuple(item["probes"]),
            outcomes=dict(item["outcomes"]),
        )
        if req.id in first:
            raise ProfileError(path, f"{where}.id", f"{req.id!r} repeats requirements[{first[req.id]}].id")
        first[req.id] = index
        for n, probe in enumerate(req.probes):
            prefix, _, name = probe.partition(".")
            if prefix != req.id or not name:
                raise ProfileError(path, f"{where}.probes[{n}]", f"{probe!r} must be named '{req.id}.<name>'")
        for minor in req.levels:
            if minor not in checklists:
                have = ", ".join(checklists)
                raise ProfileError(path, f"{where}.levels.{minor}", f"not under checklists (has {have})")
        if ("notApplicable" in req.outcomes) != (req.conditional is not None):
            raise ProfileError(
                path,
                f"{where}.outcomes",
                "notApplicable is given exactly when the requirement is conditional (platform or hardware)",
            )
        requirements.append(req)
    return Profile(
        id=data["id"],
        version=data["version"],
        description=data["description"],
        checklists=checklists,
        requirements=tuple(requirements),
        source=path,
        sha256=digest,
    )
