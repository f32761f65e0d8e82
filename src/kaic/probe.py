"""The probe author's one import: `@probe` and its `Rule`s, the outcomes a probe ends with, the evidence
recorder, the fact readers and kaic's labels (in-house probes under `--probe-dir` import only this module).

A probe is a pytest test function in `conformance/` decorated with `@probe(...)`. The declaration is what
`kaic plan` shows, what preflight checks access for, what the RBAC examples are generated from, and what keeps
probes that compete for the same devices, pool or quota from overlapping.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kaic.kube.labels import RUN_ID_LABEL, run_labels
from kaic.results.outcomes import NotApplicable, ProbeError, Unknown
from kaic.settings import Settings

if TYPE_CHECKING:
    from kaic.kube.client import Cluster
    from kaic.results.report import Recorder

__all__ = [
    "RUN_ID_LABEL",
    "Cluster",
    "Facts",
    "NotApplicable",
    "ProbeError",
    "ProbeSpec",
    "Recorder",
    "Rule",
    "RunContext",
    "Unknown",
    "crds_in",
    "probe",
    "require",
    "run_labels",
]

MODES = ("quick", "non-disruptive", "certified")
KINDS = ("behavioural", "discovery")
CONSUMABLES = ("devices", "node-pool", "quota")
_TEST_NAME = re.compile(r"^Test[A-Z][A-Za-z0-9]*(/[A-Za-z0-9_]+)?$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9-]*$")

F = TypeVar("F", bound=Callable[..., Any])

Facts = dict[str, Any]  # what the engine discovered once per run (kaic.kube.facts), the `facts` fixture


def __getattr__(name: str) -> Any:
    """`Cluster` and `Recorder` (the `cluster` and `evidence` fixtures' types) are imported on first use: the
    kubernetes client and the result model, which commands that only read probe metadata do without."""
    if name == "Cluster":
        from kaic.kube.client import Cluster

        return Cluster
    if name == "Recorder":
        from kaic.results.report import Recorder

        return Recorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class RunContext:
    """The `run` fixture: the run's id, mode, checklist and knobs, as `kaic run` wrote them for pytest."""

    id: str
    mode: str
    checklist: str  # the chosen checklist's Kubernetes minor, e.g. "1.35"
    out_dir: Path
    kubeconfig: str | None
    context: str | None
    request_timeout: float
    settings: Settings  # the run's knobs (--gang-negative-window, --toleration, ...)
    probes: dict[str, dict[str, Any]]  # planned probe -> timeout and lane

    @property
    def labels(self) -> dict[str, str]:
        return run_labels(self.id)


@dataclass(frozen=True)
class Rule:
    """One permission a probe needs: verbs on a resource of an API group ("" = core)."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    namespaced: bool = True


@dataclass(frozen=True)
class ProbeSpec:
    name: str  # "<requirement>.<probe>", unique, listed by profiles
    requirement: str
    test: str  # go-test name; an upstream name only when the check is identical to upstream's
    kind: str = "behavioural"
    disruptive: bool = False  # scales nodes or otherwise changes the cluster beyond its own objects
    consumes: tuple[str, ...] = ()
    creates: tuple[str, ...] = ()  # "group/resource" of objects it creates ("namespaces" etc. for core)
    images: tuple[str, ...] = ()  # keys of kaic.areas.images.DEFAULTS
    rbac: tuple[Rule, ...] = ()
    timeout_s: float = 300.0
    location: str = field(default="", compare=False)  # "<module file>::<function>", as in pytest node ids

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeSpec:
        """The spec `to_json` wrote (kaic's probe catalog): equal, by value, to the one `@probe` made."""
        return cls(
            **{
                **data,
                "consumes": tuple(data["consumes"]),
                "creates": tuple(data["creates"]),
                "images": tuple(data["images"]),
                "rbac": tuple(Rule(**{**rule, "verbs": tuple(rule["verbs"])}) for rule in data["rbac"]),
            }
        )

    def runs_in(self, mode: str) -> bool:
        if self.kind == "discovery":
            return True
        if mode == "quick":
            return False
        return mode == "certified" or not self.disruptive


def probe(
    requirement: str,
    name: str,
    *,
    test: str,
    kind: str = "behavioural",
    disruptive: bool = False,
    consumes: tuple[str, ...] = (),
    creates: tuple[str, ...] = (),
    images: tuple[str, ...] = (),
    rbac: tuple[Rule, ...] = (),
    timeout_s: float = 300.0,
) -> Callable[[F], F]:
    """Declare a probe: attach its spec and the `requirement` marker pytest selects on."""
    import pytest

    spec = ProbeSpec(
        name=f"{requirement}.{name}",
        requirement=requirement,
        test=test,
        kind=kind,
        disruptive=disruptive,
        consumes=consumes,
        creates=creates,
        images=images,
        rbac=rbac,
        timeout_s=timeout_s,
    )
    _check(spec)

    def decorate(fn: F) -> F:
        fn.kaic_probe = dataclasses.replace(  # type: ignore[attr-defined]
            spec, location=f"{Path(fn.__code__.co_filename).name}::{fn.__name__}"
        )
        return pytest.mark.requirement(requirement)(fn)

    return decorate


def _check(spec: ProbeSpec) -> None:
    problems = []
    if not _NAME.match(spec.name):
        problems.append(f"name {spec.name!r} must look like '<requirement>.<kebab-name>'")
    if not _TEST_NAME.match(spec.test):
        problems.append(f"test {spec.test!r} must look like 'TestParent' or 'TestParent/Sub'")
    if spec.kind not in KINDS:
        problems.append(f"kind {spec.kind!r} must be one of {KINDS}")
    for item in spec.consumes:
        if item not in CONSUMABLES:
            problems.append(f"consumes {item!r} must be one of {CONSUMABLES}")
    if problems:
        raise ValueError(f"probe {spec.name}: " + "; ".join(problems))


def require(facts: dict[str, Any], *sections: str) -> None:
    """Stop a probe with an error when a fact it judges could not be read (a 403 proves nothing)."""
    broken = {name: facts["errors"][name] for name in sections if name in facts.get("errors", {})}
    if broken:
        raise ProbeError("; ".join(f"cannot read {name}: {why}" for name, why in broken.items()))


def crds_in(facts: dict[str, Any], *groups: str) -> dict[str, Any]:
    """Installed CRDs of the given API groups (a CRD name is '<plural>.<group>')."""
    return {name: crd for name, crd in (facts.get("crds") or {}).items() if name.split(".", 1)[-1] in groups}
