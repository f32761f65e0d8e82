"""Compare two runs requirement by requirement, to gate a cluster upgrade on what got worse.

Outcomes are ranked by how well a requirement holds, in the order the verdict weighs them:

    passed = not-applicable (3)  >  unknown (2)  >  error (1)  >  failed (0)

A move down the rank is a *regression*, a move up a *fix*; passed <-> not-applicable keeps the rank and is a
*change* (a justified not-applicable counts as passing in the verdict; the facts say why it moved). A
requirement of the checklist without an outcome ranks as unknown, as in the verdict, and its *state* says
why: `not-run` (in the report, no probe decided it), `excluded` (the plan left it out: --focus, --skip) or
`missing` (absent from the report; a NEW report that records no checklist levels is assumed to lack it
wrongly, which fails closed). Requirements are matched by id, whatever checklist each run judged.

The gate fails closed. A regression of a requirement that is a MUST in the NEW run's checklist blocks
(exit 1) unless a waiver that has not expired covers it; its *rule* is its state in NEW: failed, error,
unknown, not-run, excluded or missing. A requirement waiver covers any of them; probe waivers cover a
failed, error or unknown requirement when they name every probe that decided it. SHOULD regressions are
listed and never block. A NEW run that did not complete blocks too (rule `new-incomplete`; no waiver
covers it: it concerns the run, not a requirement); otherwise an incomplete OLD run, the baseline, leaves
the gate undecided (rule `old-incomplete`, exit 3).

Besides outcomes, the diff reports the facts an upgrade can change under a passing result: accelerator
inventory, served DRA version, Kubernetes version, checklist and profile, gateway and runtime classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from kaic.results.outcomes import Outcome
from kaic.results.report import ProbeResult, Report, RequirementResult
from kaic.results.waivers import Waiver

DIFF_SCHEMA_VERSION = "kaic.dev/diff/v1"

# States of a requirement of the checklist that has no outcome in a run; each ranks as unknown.
NOT_RUN, EXCLUDED, MISSING = "not-run", "excluded", "missing"
RANK = {
    Outcome.PASSED: 3,
    Outcome.NOT_APPLICABLE: 3,
    Outcome.UNKNOWN: 2,
    NOT_RUN: 2,
    EXCLUDED: 2,
    MISSING: 2,
    Outcome.ERROR: 1,
    Outcome.FAILED: 0,
}
# Run-level rules of the gate.
NEW_INCOMPLETE, OLD_INCOMPLETE = "new-incomplete", "old-incomplete"

# Change kinds, in the order a reader wants them: what blocks first, what stayed the same last.
REGRESSION, FIX, CHANGED, NEW, REMOVED, UNCHANGED = (
    "regression",
    "fix",
    "changed",
    "new",
    "removed",
    "unchanged",
)
CHANGE_ORDER = (REGRESSION, FIX, CHANGED, NEW, REMOVED, UNCHANGED)


def classify(old: str | None, new: str | None) -> str:
    """The change from OLD to NEW (outcomes or states); None means absent from that run and its checklist."""
    if old is None:
        return NEW
    if new is None:
        return REMOVED
    if old == new:
        return UNCHANGED
    if RANK[new] < RANK[old]:
        return REGRESSION
    return FIX if RANK[new] > RANK[old] else CHANGED


@dataclass
class ProbeChange:
    name: str
    change: str
    old: Outcome | None
    new: Outcome | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "change": self.change, "outcome": {"old": self.old, "new": self.new}}


@dataclass
class RequirementChange:
    id: str
    change: str
    old_level: str | None
    new_level: str | None
    old: Outcome | None
    new: Outcome | None
    old_state: str | None = None  # the outcome, or not-run / excluded / missing; None: not in the checklist
    new_state: str | None = None
    reason: str = ""  # why the NEW state (or the OLD one for a removed requirement)
    probes: list[ProbeChange] = field(default_factory=list)
    waived_by: list[Waiver] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def level(self) -> str:
        return self.new_level or self.old_level or ""

    @property
    def level_changed(self) -> bool:
        return bool(self.old_level and self.new_level and self.old_level != self.new_level)

    @property
    def rule(self) -> str | None:
        """The gate's rule this change falls under (its state in NEW), for a regression of a NEW MUST."""
        return self.new_state if self.change == REGRESSION and self.new_level == "MUST" else None

    @property
    def blocking(self) -> bool:
        return self.rule is not None and not self.waived_by

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "change": self.change,
            "blocking": self.blocking,
            "rule": self.rule,
            "level": {"old": self.old_level, "new": self.new_level},
            "outcome": {"old": self.old, "new": self.new},
            "state": {"old": self.old_state, "new": self.new_state},
            "reason": self.reason,
            "waivedBy": [w.to_json() for w in self.waived_by],
            "notes": self.notes,
            "probes": [p.to_json() for p in self.probes],
        }


@dataclass
class FactChange:
    """One watched fact that differs; keyed facts (nodes, pools, classes) also say which keys moved."""

    fact: str
    old: Any
    new: Any
    added: dict[str, Any] | None = None
    removed: dict[str, Any] | None = None
    changed: dict[str, dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"fact": self.fact, "old": self.old, "new": self.new}
        if self.changed is not None:
            data |= {"added": self.added, "removed": self.removed, "changed": self.changed}
        return data


@dataclass
class GateReason:
    """One fail-closed rule that shut the gate: a requirement's (its state in NEW) or a run's."""

    rule: str
    requirement: str | None
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "requirement": self.requirement, "text": self.text}


@dataclass
class Diff:
    old: Report
    new: Report
    requirements: list[RequirementChange]
    facts: list[FactChange]
    applied: list[Waiver]
    expired: list[Waiver]
    unused: list[Waiver]
    warnings: list[str]

    def of(self, change: str) -> list[RequirementChange]:
        return [r for r in self.requirements if r.change == change]

    @property
    def blocking(self) -> list[RequirementChange]:
        return [r for r in self.requirements if r.blocking]

    @property
    def reasons(self) -> list[GateReason]:
        """Every rule that shuts the gate, the unwaived requirements first, then the runs'."""
        reasons = [GateReason(str(r.rule), r.id, _rule_text(r)) for r in self.blocking]
        for rule, name, report in ((NEW_INCOMPLETE, "NEW", self.new), (OLD_INCOMPLETE, "OLD", self.old)):
            if not report.run.get("complete"):
                why = report.run.get("incompleteReason") or "no reason recorded"
                said = f"the {name} run {report.run.get('id')} is incomplete: {why}"
                reasons.append(GateReason(rule, None, said))
        return reasons

    @property
    def exit_code(self) -> int:
        """1: an unwaived MUST regression or an incomplete NEW run; else 3: an incomplete OLD run (the
        baseline proves nothing to compare with); else 0. (2, usage, is the CLI's.)"""
        rules = {r.rule for r in self.reasons}
        if rules - {OLD_INCOMPLETE}:
            return 1
        return 3 if rules else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": DIFF_SCHEMA_VERSION,
            "old": run_summary(self.old),
            "new": run_summary(self.new),
            "gate": {
                "passed": self.exit_code == 0,
                "exitCode": self.exit_code,
                "blocking": [r.id for r in self.blocking],
                "reasons": [r.to_json() for r in self.reasons],
            },
            "counts": {kind: len(self.of(kind)) for kind in CHANGE_ORDER}
            | {"waived": sum(1 for r in self.requirements if r.waived_by)},
            "requirements": [r.to_json() for r in self.requirements],
            "levelChanges": [
                {"id": r.id, "old": r.old_level, "new": r.new_level}
                for r in self.requirements
                if r.level_changed
            ],
            "facts": [f.to_json() for f in self.facts],
            "waivers": {
                "applied": [w.to_json() for w in self.applied],
                "expired": [w.to_json() for w in self.expired],
                "unused": [w.to_json() for w in self.unused],
            },
            "warnings": self.warnings,
        }


_RULE_TEXT = {
    Outcome.FAILED: "failed in NEW",
    Outcome.ERROR: "errored in NEW",
    Outcome.UNKNOWN: "unknown in NEW",
    NOT_RUN: "not run in NEW",
    EXCLUDED: "left out of NEW by its plan",
    MISSING: "absent from the NEW report",
}


def _rule_text(change: RequirementChange) -> str:
    """What the rule says about one requirement: its level, where it was and where it is."""
    said = _RULE_TEXT[str(change.new_state)]
    why = f": {change.reason}" if change.reason else ""
    return f"MUST in NEW's checklist, {change.old_state} in OLD, {said}{why}"


def diff(old: Report, new: Report, waivers: list[Waiver], today: date) -> Diff:
    """Compare OLD with NEW requirement by requirement id and apply the waivers valid on `today`."""
    active = [w for w in waivers if not w.expired(today)]
    expired = [w for w in waivers if w.expired(today)]
    ids = [r.id for r in new.requirements] + list(new.run.get("excluded") or {})
    ids += [r.id for r in old.requirements if r.id not in ids]
    changes = [_requirement(req_id, old, new) for req_id in dict.fromkeys(ids)]
    changes = [c for c in changes if c.old_state or c.new_state]
    used: list[Waiver] = []
    for change in changes:
        if change.change == REGRESSION:
            used += _waive(change, _find(new, change.id), active, expired)
    changes.sort(key=lambda c: (CHANGE_ORDER.index(c.change), not c.blocking))
    unused = [w for w in active if w not in used]
    warnings = _run_warnings(old, new)
    warnings += [w.expiry_note() for w in expired]
    warnings += [f"waiver for {w.target} matched no regression (unused)" for w in unused]
    applied = [w for w in active if w in used]
    return Diff(old, new, changes, _facts(old, new), applied, expired, unused, warnings)


def _find(report: Report, req_id: str) -> RequirementResult | None:
    return next((r for r in report.requirements if r.id == req_id), None)


def _state(report: Report, req_id: str, fail_closed: bool) -> str | None:
    """The requirement's outcome in a run, else why it has none; None when the run's checklist lacks it.

    A report that records no checklist levels cannot tell a requirement its checklist lacks from one that
    went missing: with `fail_closed` (for NEW) it counts as missing.
    """
    req = _find(report, req_id)
    if req is not None:
        return str(req.outcome) if req.outcome else NOT_RUN
    if req_id in (report.run.get("excluded") or {}):
        return EXCLUDED
    levels = report.checklist.get("levels")
    if req_id in (levels or {}) or (levels is None and fail_closed):
        return MISSING
    return None


def _requirement(req_id: str, old_run: Report, new_run: Report) -> RequirementChange:
    old, new = _find(old_run, req_id), _find(new_run, req_id)
    old_state, new_state = _state(old_run, req_id, False), _state(new_run, req_id, True)
    new_level = new_run.level(req_id)
    change = RequirementChange(
        id=req_id,
        change=classify(old_state, new_state),
        old_level=old_run.level(req_id) if old_state else None,
        new_level=new_level if new_state else None,
        old=_outcome(old) if old else None,
        new=_outcome(new) if new else None,
        old_state=old_state,
        new_state=new_state,
        reason=_reason(new_run, req_id, new) if new_state else old.reason if old else "",
    )
    if new_state and new_level is None:  # a report without checklist levels: OLD's level, failing closed
        change.new_level = change.old_level
        change.notes.append("the NEW report records no checklist levels; its level is taken from OLD")
    if old and new:
        old_probes = {p.name: p.outcome for p in old.probes}
        new_probes = {p.name: p.outcome for p in new.probes}
        for name in [*new_probes, *(n for n in old_probes if n not in new_probes)]:
            before, after = old_probes.get(name), new_probes.get(name)
            kind = classify(before, after)
            if kind != UNCHANGED:
                change.probes.append(ProbeChange(name, kind, before, after))
    return change


def _reason(report: Report, req_id: str, req: RequirementResult | None) -> str:
    """Why the requirement stands as it does in a run; for one left out, the plan's reason."""
    if req is not None:
        return req.reason
    excluded = report.run.get("excluded") or {}
    return excluded.get(req_id, "")


def _outcome(req: RequirementResult) -> Outcome:
    """A requirement that has not run counts as unknown, as in the verdict."""
    return req.outcome or Outcome.UNKNOWN


def _deciding(req: RequirementResult | None) -> list[ProbeResult]:
    """The probes whose outcome is the requirement's: what a probe waiver must cover (none when the
    requirement did not run: only a requirement waiver covers that)."""
    return [p for p in req.probes if p.outcome is req.outcome] if req and req.outcome else []


def _waive(
    change: RequirementChange, req: RequirementResult | None, active: list[Waiver], expired: list[Waiver]
) -> list[Waiver]:
    """Mark a regression waived when the active waivers cover it; return the waivers that matched it."""
    deciding = {p.name for p in _deciding(req)}

    def matches(w: Waiver) -> bool:
        return w.requirement == change.id and (w.probe is None or w.probe in deciding)

    change.notes += [w.expiry_note() for w in expired if matches(w)]
    matched = [w for w in active if matches(w)]
    whole = [w for w in matched if w.probe is None]
    covered = {w.probe for w in matched if w.probe}
    if whole:
        change.waived_by = whole
    elif deciding and covered == deciding:
        change.waived_by = matched
    elif covered:
        change.notes.append(f"not waived: no waiver for {', '.join(sorted(deciding - covered))}")
    return matched


def run_summary(report: Report) -> dict[str, Any]:
    """What identifies a run in a diff: its id, how it was made, what it judged and of which cluster."""
    return {
        "runId": report.run.get("id"),
        "mode": report.run.get("mode"),
        "complete": report.run.get("complete"),
        "profile": {k: report.profile.get(k) for k in ("id", "version", "sha256")},
        "checklist": {k: report.checklist.get(k) for k in ("chosen", "sha256")},
        "kubernetesVersion": _kubernetes_version(report),
        "clusterUid": report.cluster.get("uid"),
        "verdict": report.verdict.get("result"),
        "incompleteReason": report.run.get("incompleteReason") or "",
        "excluded": report.run.get("excluded") or {},
        "rerunOf": (report.run.get("rerunOf") or {}).get("runId"),
    }


def _run_warnings(old: Report, new: Report) -> list[str]:
    """Differences in how the runs were made, which change results without the cluster changing."""
    warnings = []

    def differs(what: str, read: Callable[[Report], Any], say: str) -> None:
        before, after = read(old), read(new)
        if before != after:
            warnings.append(f"{say}: {what} {before} in OLD, {after} in NEW")

    differs("profile", _profile, "the runs used different profiles")
    if old.profile.get("id") == new.profile.get("id"):
        differs("profile sha256", WATCHED_FACTS["profileDigest"], "the profile file changed between the runs")
    differs(
        "checklist",
        WATCHED_FACTS["checklistVersion"],
        "the runs judged different checklists, so requirements are compared by id and gated at NEW's levels",
    )
    if old.checklist.get("chosen") == new.checklist.get("chosen"):
        differs("checklist sha256", WATCHED_FACTS["checklistDigest"], "the checklist template changed")
    differs("mode", lambda r: r.run.get("mode"), "the runs used different modes")
    for option in ("focus", "skip"):
        differs(f"--{option}", _selection(option), "the runs selected differently")
    differs("cluster uid", lambda r: r.cluster.get("uid"), "the runs are of different clusters")
    return warnings


def _profile(report: Report) -> str:
    return f"{report.profile.get('id')} {report.profile.get('version')}"


def _selection(option: str) -> Callable[[Report], list[str]]:
    """What a run's --focus or --skip selected, in a comparable order."""
    return lambda report: sorted(report.run.get(option) or [])


def _kubernetes_version(report: Report) -> str | None:
    """The server's gitVersion; the engine records the whole /version answer."""
    version = report.cluster.get("serverVersion")
    return version.get("gitVersion") if isinstance(version, dict) else version


def _accelerator_nodes(report: Report) -> dict[str, Any] | None:
    nodes = report.facts.get("nodes")
    if nodes is None:
        return None
    return {n["name"]: n.get("extendedResources", {}) for n in nodes.get("withExtendedResources") or []}


def _dra_pools(report: Report) -> dict[str, Any] | None:
    drivers = report.facts.get("resourceSlices")
    if drivers is None:
        return None
    return {
        f"{driver}/{pool}": {"devices": info.get("devices"), "nodes": info.get("nodes", [])}
        for driver, found in drivers.items()
        for pool, info in (found.get("pools") or {}).items()
    }


def _named(section: str, value: str) -> Callable[[Report], dict[str, Any] | None]:
    def read(report: Report) -> dict[str, Any] | None:
        items = report.facts.get(section)
        return None if items is None else {i["name"]: i.get(value, "") for i in items}

    return read


# The facts an upgrade gate watches: name in the diff -> how to read it from a report.
WATCHED_FACTS: dict[str, Callable[[Report], Any]] = {
    "kubernetesVersion": _kubernetes_version,
    "checklistVersion": lambda r: r.checklist.get("chosen"),
    "checklistDigest": lambda r: r.checklist.get("sha256"),
    "profile": _profile,
    "profileDigest": lambda r: r.profile.get("sha256"),
    "draVersion": lambda r: (r.facts.get("dra") or {}).get("version"),
    "acceleratorNodes": _accelerator_nodes,
    "draPools": _dra_pools,
    "gatewayClasses": _named("gatewayClasses", "controllerName"),
    "runtimeClasses": _named("runtimeClasses", "handler"),
}


def _facts(old: Report, new: Report) -> list[FactChange]:
    changes = []
    for name, read in WATCHED_FACTS.items():
        before, after = read(old), read(new)
        if before == after:
            continue
        change = FactChange(name, before, after)
        if isinstance(before, dict) and isinstance(after, dict):
            change.added = {k: v for k, v in after.items() if k not in before}
            change.removed = {k: v for k, v in before.items() if k not in after}
            change.changed = {
                k: {"old": before[k], "new": v} for k, v in after.items() if k in before and before[k] != v
            }
        changes.append(change)
    return changes
