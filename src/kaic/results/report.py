"""The result tree: one canonical `report.json` from which every other artifact is derived.

The tree is plain dataclasses so writers and readers need no cluster. It is written after every probe
(atomically, via a temporary file and rename) so an interrupted or killed run still leaves a valid report
that says it is incomplete.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import orjson

from kaic.results.atomic import atomic_write_text
from kaic.results.outcomes import REASON_REQUIRED, Outcome, Verdict, aggregate, verdict
from kaic.results.run_dir import REPORT_FILE

REPORT_SCHEMA_VERSION = "kaic.dev/report/v1"
OMIT_EMPTY = "omitEmpty"  # field metadata: left out of report.json while empty
# report.json spells every key in camelCase, like Kubernetes objects; these fields differ from their Python
# names.
_JSON_NAMES = {
    "upstream_test": "upstreamTest",
    "started_at": "startedAt",
    "duration_s": "durationSeconds",
    "carried_from": "carriedFrom",
}
_PY_NAMES = {v: k for k, v in _JSON_NAMES.items()}
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "report.schema.json"


_EXPECTED = f"expected a kaic result folder or its {REPORT_FILE} ({REPORT_SCHEMA_VERSION})"


class ReportError(ValueError):
    """A report.json that cannot be used: unreadable, not JSON, or not valid against kaic's report schema."""


REASON_CHARS = 200  # a reason people read (terminal, summary.md, PRODUCT.yaml notes); the rest is evidence
_SENTENCE_ENDS = (". ", "; ", "? ", "! ")
_CLAUSE_ENDS = (", ", ": ", " — ", " (")


def shorten(text: str, limit: int = REASON_CHARS) -> str:
    """A long text as one line of at most `limit` characters, ending "…" where it was cut.

    The cut falls at the last sentence end, else clause end, else space that keeps at least half the limit,
    so what is shown is whole findings. A text within the limit is returned as it is.
    """
    if len(text) <= limit:
        return text
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[: limit - 1]
    for ends in (_SENTENCE_ENDS, _CLAUSE_ENDS, (" ",)):
        cut = max(head.rfind(end) for end in ends)
        if cut >= limit // 2:
            return head[:cut].rstrip(" .,;:—(") + "…"
    return head + "…"


# What evidence can be; report.schema.json lists the same (a unit test keeps them equal).
EVIDENCE_KINDS = ("event", "object", "log", "fact", "text", "metric")


@dataclass
class Evidence:
    """Something a person can read to check a verdict: an event, an object's YAML, a log excerpt, a fact, a
    metric reading."""

    kind: str  # one of EVIDENCE_KINDS
    name: str
    content: str


@dataclass
class Recorder:
    """What a probe saw, kept in its result: facts it relied on, objects, events, log excerpts, warnings."""

    evidence: list[Evidence] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, content: Any) -> None:
        import yaml  # here, not at the top: commands that only read a report do not load it

        if kind not in EVIDENCE_KINDS:
            # Refused here, in the probe, rather than in a report that `kaic results` then cannot read.
            raise ValueError(f"evidence kind {kind!r} is not one of {', '.join(EVIDENCE_KINDS)}")
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        self.evidence.append(Evidence(kind=kind, name=name, content=text))

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@dataclass
class ProbeResult:
    name: str  # unique probe name, "<requirement>.<probe>"
    requirement: str
    test: str  # go-test name, "TestX/Sub"; upstream names only for checks identical to upstream ones
    kind: str  # "behavioural" decides the requirement; "discovery" gathers facts and can only error
    outcome: Outcome
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    started_at: str = ""
    duration_s: float = 0.0
    # A rerun (`kaic run --rerun-failed`) keeps an earlier result instead of running the probe again: the id
    # of the run that produced it. Written only when set, so other reports keep their shape.
    carried_from: str = field(default="", metadata={OMIT_EMPTY: True})

    def __post_init__(self) -> None:
        self.outcome = Outcome(self.outcome)
        if self.outcome in REASON_REQUIRED and not self.reason:
            raise ValueError(f"probe {self.name}: outcome {self.outcome} needs a reason")

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeResult:
        """A result as report.json holds it, or as a pytest worker sends it to the engine (the same shape)."""
        named = _from_json(data)
        return cls(**{**named, "evidence": [Evidence(**e) for e in named.get("evidence", [])]})


@dataclass
class RequirementResult:
    id: str
    category: str
    level: str  # MUST | SHOULD, for the chosen checklist version
    conditional: str = ""
    upstream_test: str = ""
    outcome: Outcome | None = None  # None until its probes have run
    reason: str = ""
    probes: list[ProbeResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    def settle(
        self, undecided: str = "no behavioural probe decided this requirement; attest it manually"
    ) -> None:
        """Recompute the outcome from the probes (discovery probes only count when they errored)."""
        behavioural = [p.outcome for p in self.probes if p.kind == "behavioural"]
        errors = [p for p in self.probes if p.kind != "behavioural" and p.outcome is Outcome.ERROR]
        outcome = aggregate(behavioural + [p.outcome for p in errors])
        if outcome is None:
            self.outcome = Outcome.UNKNOWN if self.probes else None
            self.reason = undecided
            return
        self.outcome = outcome
        self.reason = _findings([p for p in self.probes if p.outcome is outcome and p.reason])


def _findings(deciding: list[ProbeResult]) -> str:
    """The one or two probes that decided, each reason shortened so the whole stays near REASON_CHARS."""
    shown = deciding[:2]
    more = f" (+{len(deciding) - len(shown)} more)" if len(deciding) > len(shown) else ""
    each = (REASON_CHARS - len(more)) // max(len(shown), 1) - 2
    return "; ".join(f"{p.name}: {shorten(p.reason, max(each - len(p.name) - 2, 60))}" for p in shown) + more


@dataclass
class Report:
    # The header's keys as kaic.engine.run writes them; report.schema.json states each one's type.
    # id, mode, startedAt, finishedAt, complete, incompleteReason, focus, skip, excluded; preflight, cleanup
    run: dict[str, Any]
    kaic: dict[str, Any]  # kaic, python; pytest, pytest-timeout, kubernetes where installed (name -> version)
    profile: dict[str, Any]  # id, version, path, sha256
    checklist: dict[str, Any]  # detected, chosen, reason, sha256, levels (every requirement id -> level)
    cluster: dict[str, Any] = field(default_factory=dict)  # context, server; serverVersion, uid (from facts)
    facts: dict[str, Any] = field(default_factory=dict)
    requirements: list[RequirementResult] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=dict)  # result, exitCode, summary, warnings; mustsNotRun
    schema: str = REPORT_SCHEMA_VERSION

    def requirement(self, req_id: str) -> RequirementResult:
        for req in self.requirements:
            if req.id == req_id:
                return req
        raise KeyError(req_id)

    def probes(self) -> list[ProbeResult]:
        return [p for r in self.requirements for p in r.probes]

    def carried_over(self) -> list[str]:
        """The probes whose results a rerun carried over from its source (none for other runs)."""
        return [p.name for p in self.probes() if p.carried_from]

    def level(self, req_id: str) -> str | None:
        """The requirement's level in this run's checklist, whether the plan ran it or left it out; None
        when the checklist lacks it or the report predates `checklist.levels`."""
        for req in self.requirements:
            if req.id == req_id:
                return req.level
        return (self.checklist.get("levels") or {}).get(req_id)

    def excluded_musts(self) -> list[str]:
        """Requirements the plan left out (--focus, --skip) that are MUSTs of the checklist; one whose level
        the report does not record counts as a MUST (fail closed)."""
        return [r for r in self.run.get("excluded") or {} if self.level(r) in ("MUST", None)]

    def judge(self, complete: bool) -> Verdict:
        musts = [r.outcome or Outcome.UNKNOWN for r in self.requirements if r.level == "MUST"]
        return verdict(musts, complete, bool(self.excluded_musts()))

    def to_dict(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        reqs = []
        for r in (_from_json(r) for r in data.get("requirements", [])):
            probes = [ProbeResult.from_json(p) for p in r.get("probes", [])]
            outcome = Outcome(r["outcome"]) if r.get("outcome") else None
            reqs.append(RequirementResult(**{**r, "outcome": outcome, "probes": probes}))
        return cls(**{**data, "requirements": reqs})


def _to_json(value: Any) -> Any:
    """Dataclasses to dicts with JSON field names. Plain dicts (facts, run metadata, evidence data) hold no
    dataclass and are passed as they are: a big cluster's facts are not walked on every save."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            _JSON_NAMES.get(f.name, f.name): _to_json(getattr(value, f.name))
            for f in fields(value)
            if getattr(value, f.name) or not f.metadata.get(OMIT_EMPTY)
        }
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def _from_json(data: dict[str, Any]) -> dict[str, Any]:
    return {_PY_NAMES.get(k, k): v for k, v in data.items()}


def write_json_atomic(path: Path, data: Any) -> None:
    """Indented JSON, encoded by orjson: the report is rewritten after every probe, and a cluster of thousands
    of nodes makes its facts megabytes that the standard library's indenting encoder takes a second on."""
    atomic_write_text(
        path, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE).decode()
    )


def save(report: Report, out_dir: Path) -> Path:
    path = out_dir / REPORT_FILE
    write_json_atomic(path, report.to_dict())
    return path


def load(out_dir_or_file: Path) -> Report:
    """A saved run from its folder or its report.json; any problem is a ReportError naming the file."""
    path = out_dir_or_file / REPORT_FILE if out_dir_or_file.is_dir() else out_dir_or_file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}; {_EXPECTED}") from None
    return parse(data, path)


def parse(data: bytes, path: Path | str) -> Report:
    """report.json's bytes, checked against kaic's published report schema before anything trusts them."""
    import jsonschema  # here, not at the top: only commands that read a saved run pay for it

    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ReportError(f"{path}: not JSON ({' '.join(str(exc).split())}); {_EXPECTED}") from None
    try:
        error = jsonschema.exceptions.best_match(_report_validator().iter_errors(doc))
    except RecursionError:
        raise ReportError(f"{path}: nested too deeply; {_EXPECTED}") from None
    if error is not None:
        raise ReportError(f"{path}: {error.json_path}: {_short(error.message)}; {_EXPECTED}")
    try:
        return Report.from_dict(doc)
    except (
        ValueError,
        TypeError,
        KeyError,
    ) as exc:  # rules beyond the schema, e.g. an unknown needs a reason
        raise ReportError(f"{path}: {exc}; {_EXPECTED}") from None


@functools.cache
def _report_validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def _short(message: str, limit: int = 200) -> str:
    """jsonschema quotes the offending value whole; a line on a terminal needs only its start."""
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"
