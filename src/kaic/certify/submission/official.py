"""What kaic knows about the official program without keeping its files: template digests, upstream tests.

The templates (cncf/k8s-ai-conformance `docs/AIConformance-1.NN.yaml`) stay the authority on ids,
descriptions and levels, and they change after being called frozen, so kaic pins their SHA-256 in its
profile and compares every template it is given against that pin.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from kaic.certify.submission import SubmissionError
from kaic.profile import Profile, load_profile

PROFILE = "ai-v1.0"  # the profile whose `checklists:` pins the official templates
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: lint reads many files
VERSION_IN_PATH = re.compile(r"(?:^|/)(v\d+\.\d+)/")  # the validator's own pattern
# The upstream tests the validator looks for in a folder's artifacts (scripts/validate.go with PR #141); which
# requirement each checks is the profile's `upstreamTest`.
TARGET_TESTS = frozenset(
    {"TestSecureAcceleratorAccess", "TestGangScheduling", "TestAcceleratorClusterAutoscaling"}
)
# The one MUST the validator accepts as N/A (with notes, printing a warning); any other MUST N/A is an error.
MUST_NA_ALLOWED = "cluster_autoscaling"
_TEMPLATE_HINT = "give the official AIConformance-X.Y.yaml (cncf/k8s-ai-conformance docs/)"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?$")


@dataclass(frozen=True)
class Template:
    """One checklist template: its text (to fill in place), its parsed form and its digest."""

    path: Path
    text: str
    data: dict[str, Any]
    sha256: str

    @property
    def minor(self) -> str | None:
        """The minor the template says it is for (`metadata.kubernetesVersion: v1.37` -> 1.37)."""
        value = (self.data.get("metadata") or {}).get("kubernetesVersion")
        return minor_of(str(value)) if value is not None else None

    def requirements(self) -> list[tuple[str, dict[str, Any]]]:
        """(category, entry) for every requirement, in template order."""
        return [(cat, entry) for cat, entries in self.data["spec"].items() for entry in entries]


@cache
def _profile() -> Profile:
    return load_profile(PROFILE)


def known_digests() -> dict[str, str]:
    """minor -> SHA-256 of the official template kaic was built from."""
    return dict(_profile().checklists)


def upstream_tests() -> dict[str, str]:
    """requirement id -> the upstream Go test that checks it (what the validator looks up without
    #fragment)."""
    return {r.id: r.upstream_test for r in _profile().requirements if r.upstream_test}


def profile_checklist(minor: str) -> dict[str, list[dict[str, str]]] | None:
    """The checklist of `minor` as kaic's profile has it: category -> entries with id and level, in the
    profile's order, without the descriptions (kaic keeps no copy of them); None for a minor it lacks."""
    profile = _profile()
    if minor not in profile.checklists:
        return None
    spec: dict[str, list[dict[str, str]]] = {}
    for requirement, level in profile.for_version(minor):
        spec.setdefault(requirement.category, []).append({"id": requirement.id, "level": level})
    return spec


def official_minor(sha256: str) -> str | None:
    """The minor whose official template has this digest, if any."""
    return next((minor for minor, digest in known_digests().items() if digest == sha256), None)


def minor_of(text: str) -> str | None:
    """'v1.37', '1.37' or 'v1.37.2' -> '1.37'; anything else -> None."""
    match = _VERSION.match(text.strip())
    return f"{int(match[1])}.{int(match[2])}" if match else None


def read_template(path: Path) -> Template:
    """Load a template, refusing (exit 2) anything without the `metadata` and `spec` of a checklist."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
        data = yaml.load(text, Loader=YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problem = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        raise SubmissionError(
            f"{path}: cannot read the checklist template ({problem}); {_TEMPLATE_HINT}"
        ) from None
    spec = data.get("spec") if isinstance(data, dict) else None
    if not isinstance(spec, dict) or not all(
        isinstance(entries, list) and all(isinstance(e, dict) and "id" in e for e in entries)
        for entries in spec.values()
    ):
        raise SubmissionError(
            f"{path}: not a checklist template (no spec.<category> lists of requirements); {_TEMPLATE_HINT}"
        )
    return Template(path, text, data, hashlib.sha256(raw).hexdigest())


def find_template(product_dir: Path, minor: str) -> Path | None:
    """`docs/AIConformance-<minor>.yaml` in the nearest folder above the submission: a clone of the
    program's repository, where the validator itself looks."""
    for folder in product_dir.resolve().parents:
        candidate = folder / "docs" / f"AIConformance-{minor}.yaml"
        if candidate.is_file():
            return candidate
    return None
