"""From a profile, a checklist version, a mode and a selection to the list of probes that will run.

The plan is computed before anything touches the cluster: `kaic plan` prints it (probes, objects they create,
images they pull, the RBAC they need) and `kaic run` executes exactly it. kaic's own probes are read from
their catalog file, which `python -m kaic.engine.plan` prints, so planning imports no probe module (nor the
kubernetes client, pytest and the areas those load).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaic.kube import facts as facts_mod
from kaic.probe import MODES, ProbeSpec, Rule
from kaic.profile import Profile, Requirement, choose_version, load_profile
from kaic.resources import resource_dir
from kaic.settings import PARALLEL, REQUEST_TIMEOUT_S, Settings

# kaic's own probes' declarations, beside their modules (`make docs`; tests/unit/engine/test_plan.py keeps it
# current).
CATALOG_FILE = "catalog.json"
CATALOG_GENERATOR = (
    "python -m kaic.engine.plan > conformance/catalog.json (make docs), from the @probe declarations"
)
# Every probe that creates namespaced objects gets its own namespace from the `namespace` fixture.
NAMESPACE_RULE = Rule("", "namespaces", ("create", "delete", "get", "list"), namespaced=False)


class PlanError(Exception):
    """A selection that cannot be planned (usage error: exit 2)."""


@dataclass
class RunOptions:
    """What a run is asked to do (the CLI's flags): planned here, executed by kaic.engine.run."""

    profile: str = "ai-v1.0"
    mode: str = "non-disruptive"
    focus: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    kubernetes_version: str | None = None
    output_dir: Path | None = None
    kubeconfig: str | None = None
    context: str | None = None
    request_timeout: float = REQUEST_TIMEOUT_S
    probe_timeout_s: float | None = None
    run_timeout_s: float | None = None
    probe_dirs: tuple[Path, ...] = ()  # in-house probe modules a profile file may list
    parallel: int = PARALLEL
    settings: Settings = field(default_factory=Settings)  # what probes read (cleanup_timeout_s too)
    run_id: str | None = None  # chosen by `kaic run --in-cluster`, which names the runner's objects by it

    def to_json(self) -> dict[str, Any]:
        """What an in-cluster runner needs to run the same plan; the client's own files stay behind (its
        kubeconfig, output folder and probe folders: `kaic run --in-cluster` refuses the last)."""
        return {
            "profile": self.profile,
            "mode": self.mode,
            "focus": list(self.focus),
            "skip": list(self.skip),
            "kubernetes_version": self.kubernetes_version,
            "request_timeout": self.request_timeout,
            "probe_timeout_s": self.probe_timeout_s,
            "run_timeout_s": self.run_timeout_s,
            "parallel": self.parallel,
            "run_id": self.run_id,
            "settings": self.settings.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOptions:
        """The options `to_json` wrote."""
        return cls(
            **{
                **data,
                "focus": tuple(data["focus"]),
                "skip": tuple(data["skip"]),
                "settings": Settings.from_json(data["settings"]),
            }
        )


def probe_dirs(extra: tuple[Path, ...] = ()) -> list[Path]:
    """kaic's own probes, then in-house ones (--probe-dir) that a profile file may list."""
    for directory in extra:
        if not directory.is_dir():
            raise PlanError(f"--probe-dir {directory}: not a directory of probe modules (test_*.py)")
    return [resource_dir("conformance"), *extra]


def catalog(directories: list[Path] | None = None) -> dict[str, ProbeSpec]:
    """Every probe declared in the probe directories, by name: kaic's own read from its catalog file, in-house
    ones (--probe-dir) by importing their modules, once per process (runs nothing)."""
    return dict(_catalog(tuple(directories or probe_dirs())))


@functools.cache
def _catalog(directories: tuple[Path, ...]) -> dict[str, ProbeSpec]:
    specs: dict[str, ProbeSpec] = {}
    for index, directory in enumerate(directories):
        if directory == resource_dir("conformance"):
            found = _shipped(directory)
        else:
            found = declared(directory, f"kaic_catalog_{index}", in_house=True)
        for spec in found:
            if spec.name in specs:
                raise PlanError(f"{directory / spec.location}: probe {spec.name} is declared twice")
            specs[spec.name] = spec
    return specs


def _shipped(directory: Path) -> list[ProbeSpec]:
    """kaic's own probes, read from the catalog file `catalog_json` wrote."""
    data = json.loads((directory / CATALOG_FILE).read_text(encoding="utf-8"))
    return [ProbeSpec.from_json(item) for item in data["probes"]]


def declared(directory: Path, prefix: str, in_house: bool) -> list[ProbeSpec]:
    """The specs `@probe` attached in the directory's test_*.py modules, each imported as `<prefix>_<stem>`.

    A module that cannot be imported is a PlanError for in-house probes (bad input), a crash for kaic's own
    (a bug in kaic)."""
    specs: list[ProbeSpec] = []
    for path in sorted(directory.glob("test_*.py")):
        module_name = f"{prefix}_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            if not in_house:
                raise
            raise PlanError(
                f"--probe-dir {directory}: {path.name} cannot be imported: {_one_line(exc)}; "
                "fix the module or leave out that --probe-dir"
            ) from None
        specs.extend(
            probe
            for obj in vars(module).values()
            if isinstance(probe := getattr(obj, "kaic_probe", None), ProbeSpec)
        )
    return specs


def catalog_json() -> str:
    """conformance/catalog.json as `make docs` writes it: every spec kaic's probe modules declare."""
    specs = declared(resource_dir("conformance"), "kaic_catalog", in_house=False)
    document = {"generatedBy": CATALOG_GENERATOR, "probes": [spec.to_json() for spec in specs]}
    return json.dumps(document, indent=2) + "\n"


def _one_line(exc: Exception) -> str:
    """An import failure as people read it: a syntax error's line, else the exception's own words."""
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} (line {exc.lineno})"
    return " ".join(f"{type(exc).__name__}: {exc}".split())


@dataclass
class Plan:
    profile: Profile
    version: str
    mode: str
    requirements: list[tuple[Requirement, str]]
    probes: list[ProbeSpec]
    excluded: dict[str, str] = field(default_factory=dict)  # requirement id -> why it is not run
    skipped: dict[str, str] = field(default_factory=dict)  # disruptive probe -> why this mode does not run it

    def rbac(self) -> list[Rule]:
        """Discovery's rules, the namespace rule when needed, and every selected probe's own rules."""
        rules = list(facts_mod.RULES)
        if any(p.creates for p in self.probes):
            rules.append(NAMESPACE_RULE)
        for probe in self.probes:
            rules.extend(probe.rbac)
        return merge_rules(rules)

    def lanes(self) -> dict[str, str]:
        """Probe name -> lane. Probes consuming a common thing (devices, a node pool, quota) share a lane and
        run one after another; every other probe has a lane of its own and may run beside the rest."""
        root: dict[str, str] = {}

        def find(item: str) -> str:
            while root.setdefault(item, item) != item:
                item = root[item]
            return item

        for probe in self.probes:
            for other in probe.consumes[1:]:
                root[find(other)] = find(probe.consumes[0])
        return {p.name: f"consumes-{find(p.consumes[0])}" if p.consumes else p.name for p in self.probes}

    def workers(self, cap: int) -> int:
        """How many probes may run at once: behavioural lanes only (discovery probes take milliseconds)."""
        lanes = self.lanes()
        busy = {lanes[p.name] for p in self.probes if p.kind == "behavioural"}
        return max(1, min(cap, len(busy)))

    def cleanup_kinds(self) -> frozenset[str]:
        """What the post-run sweep must look at: the namespaces probes get, and cluster-scoped kinds they
        create."""
        kinds = {kind for p in self.probes for kind in p.creates}
        return frozenset(kinds | {"namespaces"} if kinds else kinds)

    def images(self) -> list[str]:
        return sorted({image for p in self.probes for image in p.images})

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile.id,
            "checklist": self.version,
            "mode": self.mode,
            "requirements": [
                {"id": r.id, "level": level, "probes": [p.name for p in self.probes if p.requirement == r.id]}
                for r, level in self.requirements
            ],
            "excluded": self.excluded,
            "skippedProbes": self.skipped,
            "probes": [
                {
                    "name": p.name,
                    "test": p.test,
                    "kind": p.kind,
                    "consumes": list(p.consumes),
                    "creates": list(p.creates),
                    "images": list(p.images),
                    "timeoutSeconds": p.timeout_s,
                }
                for p in self.probes
            ],
            "images": self.images(),
            "rbac": [rule_dict(r) for r in self.rbac()],
        }


def rule_dict(rule: Rule) -> dict[str, Any]:
    return {
        "apiGroup": rule.group,
        "resource": rule.resource,
        "verbs": list(rule.verbs),
        "namespaced": rule.namespaced,
    }


def merge_rules(rules: list[Rule]) -> list[Rule]:
    """One rule per (group, resource), verbs unioned, in a stable order."""
    merged: dict[tuple[str, str], Rule] = {}
    for rule in rules:
        key = (rule.group, rule.resource)
        if key in merged:
            old = merged[key]
            verbs = tuple(sorted(set(old.verbs) | set(rule.verbs)))
            merged[key] = Rule(rule.group, rule.resource, verbs, old.namespaced and rule.namespaced)
        else:
            merged[key] = Rule(rule.group, rule.resource, tuple(sorted(rule.verbs)), rule.namespaced)
    return [merged[k] for k in sorted(merged)]


def build_plan(
    profile: Profile,
    version: str,
    mode: str,
    focus: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
    probes: dict[str, ProbeSpec] | None = None,
) -> Plan:
    if mode not in MODES:
        raise PlanError(f"--mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "certified" and (focus or skip):
        raise PlanError("--mode certified runs every requirement: drop --focus/--skip")
    selected = profile.for_version(version)
    known = {r.id for r, _ in selected}
    for flag, ids in (("--focus", focus), ("--skip", skip)):
        unknown = sorted(set(ids) - known)
        if unknown:
            raise PlanError(
                f"{flag} {', '.join(unknown)}: not a requirement of {profile.id} for {version}; "
                f"valid: {', '.join(sorted(known))}"
            )
    excluded: dict[str, str] = {}
    requirements = []
    for req, level in selected:
        if focus and req.id not in focus:
            excluded[req.id] = "not in --focus"
        elif req.id in skip:
            excluded[req.id] = "--skip"
        else:
            requirements.append((req, level))
    available = catalog() if probes is None else probes
    chosen: list[ProbeSpec] = []
    skipped: dict[str, str] = {}
    for req, _ in requirements:
        for name in req.probes:
            if name not in available:
                raise PlanError(
                    f"profile {profile.id}: requirement {req.id} lists probe {name}, which kaic lacks"
                )
            spec = available[name]
            if spec.requirement != req.id:
                raise PlanError(
                    f"profile {profile.id}: probe {name} belongs to {spec.requirement}, not {req.id}"
                )
            if spec.runs_in(mode):
                chosen.append(spec)
            elif mode != "quick":  # quick mode skips every behavioural probe, and says so once
                skipped[name] = (
                    "disruptive (changes the cluster, e.g. adds nodes): runs only in --mode certified"
                )
    return Plan(profile, version, mode, requirements, chosen, excluded, skipped)


def plan_for(profile: Profile, opts: RunOptions, version: str) -> Plan:
    """The plan for one checklist version (PlanError is a usage error)."""
    probes = catalog(probe_dirs(opts.probe_dirs))
    return build_plan(profile, version, opts.mode, opts.focus, opts.skip, probes)


def server_minor(version: dict[str, Any]) -> str:
    """The `major.minor` a server's /version names, as checklists are keyed."""
    return f"{version.get('major', '')}.{version.get('minor', '')}"


def plan_for_server(plan: Plan, opts: RunOptions, detected: str | None) -> tuple[Plan, str]:
    """The plan for the checklist the server's minor selects (`plan` itself unless it picks another), and
    why that checklist."""
    chosen, why = choose_version(plan.profile, detected, opts.kubernetes_version)
    return (plan if chosen == plan.version else plan_for(plan.profile, opts, chosen)), why


def plan_only(opts: RunOptions) -> tuple[Plan, str]:
    """The plan before any cluster is asked (`kaic plan`, `run --dry-run`, the start of a run): the checklist
    is --kubernetes-version or the newest."""
    profile = load_profile(opts.profile)
    version, why = choose_version(profile, None, opts.kubernetes_version)
    return plan_for(profile, opts, version), why


if __name__ == "__main__":
    sys.stdout.write(catalog_json())
