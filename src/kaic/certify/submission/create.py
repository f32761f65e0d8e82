"""`kaic submission create`: the vendor's copy of the official template, filled from a certified kaic run.

The template is filled in place: its text stays byte for byte (header comments, key order, the comments
beside `status:`, even a missing final newline) and only the values of the metadata and of each
requirement's status, evidence and notes are replaced, at the positions PyYAML's composer reports. So the
diff a reviewer sees against `docs/AIConformance-X.Y.yaml` is exactly what the vendor claims.

Status follows the outcome table. One refinement: a SHOULD that failed while some of its behavioural
probes passed is "Partially Implemented", citing the passing subtests. Evidence points only at tests whose
result backs the status (the validator rejects a cited test that failed), so a failed, unknown or errored
requirement cites none and its notes say why; an unknown one asks for manual attestation.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from kaic.certify.submission import SubmissionError
from kaic.certify.submission.lint import METADATA
from kaic.certify.submission.official import (
    YAML_LOADER,
    Template,
    known_digests,
    official_minor,
    read_template,
)
from kaic.results import report as results
from kaic.results.atomic import atomic_write_text
from kaic.results.outcomes import TABLE, Outcome
from kaic.results.report import Report, RequirementResult
from kaic.results.run_dir import E2E_LOG_FILE, JUNIT_FILE, PRODUCT_FILE, RESULTS_FILE

README_FILE = "README.md"
COPIED = (JUNIT_FILE, RESULTS_FILE, E2E_LOG_FILE)
PARTIAL = "Partially Implemented"
DIRECTORY = "directory"  # optional product field: the folder under vX.Y/ (default: from platformName)
PRODUCT_FIELDS = {name: required for name, required in METADATA.items() if name != "kubernetesVersion"}
PRODUCT_FIELDS[DIRECTORY] = False
_NOTES = {
    Outcome.PASSED: "Checked by {kaic} in certified run {run}: {tests} passed.",
    Outcome.NOT_APPLICABLE: "Not applicable here, as detected by {kaic} in certified run {run}: {reason}",
    Outcome.FAILED: "{kaic} found this not implemented in certified run {run}: {reason}",
    Outcome.UNKNOWN: "Manual attestation needed: {kaic} could not decide in certified run {run} ({reason}).",
    Outcome.ERROR: "Manual attestation needed: {kaic}'s check broke in certified run {run} ({reason}).",
}
_PARTIAL_NOTES = "Checked by {kaic} in certified run {run}: {tests} passed, but {reason}"
_NOT_RUN = "Manual attestation needed: {kaic} did not check this requirement in certified run {run}."


def create(
    run_dir: Path, template_path: Path, product_file: Path, out_root: Path, accept_drift: bool = False
) -> Path:
    """Write `<out_root>/vX.Y/<dir>/` (PRODUCT.yaml, the run's go-test artifacts, README.md); return it.

    Refuses (SubmissionError) a run that is not certified and complete, a template whose digest kaic does not
    know for the run's checklist (unless `accept_drift`), an incomplete product file, and an existing
    non-empty folder. The caller lints the result.
    """
    run_dir, out_root = Path(run_dir), Path(out_root)
    report = _certified_run(run_dir)
    minor = str(report.checklist.get("chosen"))
    template = _template(Path(template_path), minor, accept_drift)
    product = read_product(Path(product_file))
    missing = [name for name in COPIED if not (run_dir / name).is_file()]
    if missing:
        raise SubmissionError(f"{run_dir}: the run folder lacks {', '.join(missing)}")
    folder = out_root / f"v{minor}" / (product.pop(DIRECTORY, "") or _slug(product["platformName"]))
    if folder.exists() and any(folder.iterdir()):
        raise SubmissionError(
            f"{folder} exists and is not empty; remove it or choose another --out or directory"
        )
    texts = {
        PRODUCT_FILE: render(template, report, product),
        README_FILE: readme(report, template, product, folder.name),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copyfile(run_dir / name, folder / name)
    for name, text in texts.items():
        atomic_write_text(folder / name, text)
    return folder


def _certified_run(run_dir: Path) -> Report:
    """Only a certified run that ran to its end is evidence a reviewer can accept."""
    try:
        report = results.load(run_dir)
    except results.ReportError as exc:
        raise SubmissionError(str(exc)) from None
    run_id, mode = report.run.get("id"), report.run.get("mode")
    if mode != "certified":
        raise SubmissionError(
            f"{run_dir}: run {run_id} ran in {mode} mode; a submission needs `kaic run --mode certified`"
        )
    if not report.run.get("complete"):
        why = report.run.get("incompleteReason") or "no reason recorded"
        raise SubmissionError(
            f"{run_dir}: run {run_id} is incomplete ({why}); a submission needs a complete run"
        )
    left_out = report.excluded_musts()
    if left_out:  # certified mode refuses --focus/--skip; a report that says otherwise is not one kaic wrote
        raise SubmissionError(
            f"{run_dir}: run {run_id} left out MUST requirements ({', '.join(left_out)}); "
            "a submission needs a run of every requirement"
        )
    return report


def _template(path: Path, minor: str, accept_drift: bool) -> Template:
    """The official template for the run's checklist, known by digest; another one only when told."""
    template = read_template(path)
    if template.minor not in (None, minor):
        raise SubmissionError(f"{path} is the template for v{template.minor}, but the run judged v{minor}")
    if official_minor(template.sha256) != minor and not accept_drift:
        expected = known_digests().get(minor)
        known = f"(sha256 {expected})" if expected else "(kaic knows no digest for it)"
        raise SubmissionError(
            f"{path} (sha256 {template.sha256}) is not the official AIConformance-{minor}.yaml kaic expects "
            f"{known}: give that file from cncf/k8s-ai-conformance docs/, or --accept-drift to fill this one"
        )
    return template


def read_product(path: Path) -> dict[str, str]:
    """The small product file: the metadata only the vendor knows (camelCase keys, as kaic writes them)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SubmissionError(f"{path}: cannot read the product file: {exc}") from None
    if not isinstance(data, dict):
        raise SubmissionError(f"{path}: must be a mapping of {', '.join(PRODUCT_FIELDS)}")
    unknown = sorted(set(map(str, data)) - set(PRODUCT_FIELDS))
    if unknown:
        raise SubmissionError(f"{path}: unknown field {unknown[0]!r} (allowed: {', '.join(PRODUCT_FIELDS)})")
    product = {}
    for name, required in PRODUCT_FIELDS.items():
        value = data.get(name)
        if value is None or value == "":
            if required:
                raise SubmissionError(f"{path}: field {name!r} is missing or empty")
            continue
        if not isinstance(value, str):
            raise SubmissionError(f"{path}: field {name!r} must be a string (quote it)")
        product[name] = value
    directory = product.get(DIRECTORY)
    if directory is not None and (directory in (".", "..") or re.search(r"[/\\]", directory)):
        raise SubmissionError(f"{path}: field {DIRECTORY!r} must be one folder name, not {directory!r}")
    return product


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.") or "product"


def _quote(value: str) -> str:
    """A YAML double-quoted scalar on one line, as the templates write their values."""
    return yaml.dump(value, default_style='"', allow_unicode=True, width=float("inf")).rstrip("\n")


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(map(_quote, items)) + "]"


def fill(req: RequirementResult | None, level: str, report: Report) -> tuple[str, list[str], str]:
    """(status, evidence, notes) for one requirement from its result in the run."""
    names = {"kaic": f"kaic {report.kaic.get('kaic', '')}".strip(), "run": report.run.get("id", "")}
    if req is None or req.outcome is None:
        return "", [], _NOT_RUN.format(**names)
    behavioural = [p for p in req.probes if p.kind == "behavioural"]
    passed = list(dict.fromkeys(p.test for p in behavioural if p.outcome is Outcome.PASSED))
    status = TABLE[req.outcome].product_status
    if req.outcome is Outcome.FAILED and level == "SHOULD" and passed:
        junit = [f"file://{JUNIT_FILE}#{test}" for test in passed]
        return PARTIAL, junit, _PARTIAL_NOTES.format(**names, tests=", ".join(passed), reason=req.reason)
    deciding = [p for p in behavioural if p.outcome is req.outcome]  # a pass never cites a skipped test
    tests = list(dict.fromkeys(p.test.split("/")[0] for p in deciding))
    notes = _NOTES[req.outcome].format(**names, tests=", ".join(tests), reason=req.reason)
    if req.outcome not in (Outcome.PASSED, Outcome.NOT_APPLICABLE):
        return status, [], notes
    junit = [f"file://{JUNIT_FILE}#{test}" for test in tests]
    return status, [*junit, f"file://{RESULTS_FILE}", f"file://{E2E_LOG_FILE}"], notes


def answers(template: Template, report: Report) -> dict[str, tuple[str, list[str], str]]:
    """requirement id -> (status, evidence, notes), for every requirement of the template."""
    by_id = {r.id: r for r in report.requirements}
    return {
        entry["id"]: fill(by_id.get(entry["id"]), str(entry.get("level", "")), report)
        for _, entry in template.requirements()
    }


def render(template: Template, report: Report, product: dict[str, str]) -> str:
    """The template's text with the product's metadata and the run's answers spliced in."""
    root = yaml.compose(template.text, Loader=yaml.SafeLoader)  # pure Python: its marks count characters
    assert root is not None  # the text parsed to Template.data, a mapping
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in the template's text
    metadata = _child(root, "metadata", template)
    wanted = {"kubernetesVersion": f"v{report.checklist.get('chosen')}", "repoUrl": "", **product}
    for key, value in metadata.value:
        if key.value in wanted and value.value != wanted[key.value]:
            edits.append((value.start_mark.index, value.end_mark.index, _quote(wanted.pop(key.value))))
        wanted.pop(key.value, None)
    wanted = {name: value for name, value in wanted.items() if value}
    if wanted:  # fields the template lacks (k8sConformanceUrl in 1.36 and 1.37): after its last one
        first_key, last_value = metadata.value[0][0], metadata.value[-1][1]
        end = template.text.find("\n", last_value.end_mark.index)
        end = len(template.text) if end < 0 else end
        indent = " " * first_key.start_mark.column
        lines = "".join(
            f"\n{indent}{name}: {_quote(wanted[name])}" for name in PRODUCT_FIELDS if name in wanted
        )
        edits.append((end, end, lines))
    filled = answers(template, report)
    for category, entries in _child(root, "spec", template).value:
        for entry in entries.value:
            fields = {key.value: value for key, value in entry.value}
            req_id = fields["id"].value
            status, evidence, notes = filled[req_id]
            answer = {"status": _quote(status), "evidence": _flow(evidence), "notes": _quote(notes)}
            for name, text in answer.items():
                if name not in fields:
                    raise SubmissionError(
                        f"{template.path}: spec.{category.value} {req_id} has no {name} field to fill"
                    )
                edits.append((fields[name].start_mark.index, fields[name].end_mark.index, text))
    out = template.text
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    return out


def _child(node: yaml.Node, key: str, template: Template) -> Any:
    for key_node, value in node.value:
        if key_node.value == key:
            return value
    raise SubmissionError(f"{template.path}: no {key} section")


def readme(report: Report, template: Template, product: dict[str, str], directory: str) -> str:
    """How the submission was made and how to make it again."""
    minor = report.checklist.get("chosen")
    kaic = report.kaic.get("kaic", "")
    profile = report.profile
    selection = "".join(
        f" --{flag} {','.join(report.run[key])}"
        for flag, key in (("focus", "focus"), ("skip", "skip"))
        if report.run.get(key)
    )
    filled = answers(template, report)
    rows = "\n".join(
        f"| `{entry['id']}` | {entry.get('level')} | {filled[entry['id']][0] or '(to attest)'} |"
        for _, entry in template.requirements()
    )
    copied = ", ".join(f"`{name}`" for name in COPIED[:-1]) + f" and `{COPIED[-1]}`"
    source = report.run.get("rerunOf")
    merge = (
        f"| rerun of | run {source['runId']} (report.json sha256 `{source['reportSha256']}`): re-ran "
        f"{', '.join(source['probes']) or 'none'}; its other results carried over "
        "(`kaic run --rerun-failed`) |\n"
        if source
        else ""
    )
    return f"""# {product["platformName"]} {product["platformVersion"]}: Kubernetes AI Conformance v{minor}

{PRODUCT_FILE} is the official `AIConformance-{minor}.yaml` filled from a certified, complete kaic run: \
statuses,
evidence and notes come from the run; the metadata from the vendor. {copied}
are the run's own files, copied unchanged; tests named `TestKaic…` are kaic's, the others repeat the upstream
suite's checks of the same name.

| | |
|---|---|
| kaic | {kaic} (python {report.kaic.get("python", "")}) |
| profile | {profile.get("id")} {profile.get("version")}, sha256 `{profile.get("sha256")}` |
| checklist | v{minor}, template sha256 `{template.sha256}` |
| run | {report.run.get("id")}, certified, {report.run.get("startedAt")} to {report.run.get("finishedAt")} |
{merge}| verdict | {report.verdict.get("result", "")} |
| cluster | {report.cluster.get("serverVersion", "")} |

| requirement | level | status |
|---|---|---|
{rows}

## Reproduce

```sh
pip install kaic=={kaic}
kaic run --mode certified --profile {profile.get("id")} --kubernetes-version {minor}{selection} \
--output-dir results
kaic submission create results --checklist AIConformance-{minor}.yaml --product product.yaml
kaic submission lint v{minor}/{directory} --checklist AIConformance-{minor}.yaml --online
```
"""
