"""kaic submission lint: every real submission, each validator rule on a small synthetic folder, the CLI and
the online check (against a server on 127.0.0.1 only; nothing here leaves the machine)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner

from kaic.certify.submission import SubmissionError
from kaic.certify.submission.lint import STATUSES, USER_AGENT, Finding, lint, unreachable
from kaic.certify.submission.official import read_template
from kaic.cli.submission import submission
from kaic.results.writers.gotest import Event, results_json, verbose_log
from kaic.results.writers.junit import gotest_junit

REFERENCE = Path(__file__).resolve().parents[4] / "shared" / "reference"
CHECKLISTS = REFERENCE / "checklists"
SUBMISSIONS = REFERENCE / "submissions"
PRODUCTS = sorted(SUBMISSIONS.glob("v*/*/PRODUCT.yaml"))
needs_corpus = pytest.mark.skipif(
    not PRODUCTS or not CHECKLISTS.is_dir(), reason=f"the real submissions are not at {SUBMISSIONS}"
)

# --- every real submission ---------------------------------------------------------------------------------

REQUIRED_METADATA = (
    "kubernetesVersion",
    "platformName",
    "platformVersion",
    "vendorName",
    "websiteUrl",
    "documentationUrl",
    "productLogoUrl",
    "description",
    "contactEmailAddress",
    "k8sConformanceUrl",
)


def corpus_id(product: Path) -> str:
    return f"{product.parent.parent.name}/{product.parent.name}"


def template_for(product: Path) -> Path:
    return CHECKLISTS / f"AIConformance-{product.parent.parent.name[1:]}.yaml"


def camel(key: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m[1].upper(), key)


def metadata_expectations(meta: dict[str, Any], minor: str) -> Counter[tuple[str, str]]:
    """What the file's metadata calls for: a required field absent in both spellings, a value that is no
    string, blank or a placeholder, a malformed k8sConformanceUrl; warnings for a raster logo, an odd email
    address and another minor (in kubernetesVersion or in the k8sConformanceUrl)."""
    spelled = {camel(k): k for k in meta} | {k: k for k in meta if k == camel(k)}
    want: Counter[tuple[str, str]] = Counter()
    for name in (*REQUIRED_METADATA, "repoUrl"):
        key = spelled.get(name, name)
        value, field = meta.get(key), f"metadata.{key}"
        required = name != "repoUrl"
        broken = (
            (value is None and required)
            or (value is not None and not isinstance(value, str))
            or (isinstance(value, str) and not value.strip() and required)
            or (isinstance(value, str) and value[:1] == "[" and value[-1:] == "]")
        )
        if broken or (name == "k8sConformanceUrl" and value and not _is_k8s_conformance_url(value)):
            want["error", field] += 1
            continue
        if not isinstance(value, str):
            continue
        raster = (
            name == "productLogoUrl"
            and value.startswith("http")
            and not value.endswith((".svg", ".ai", ".eps"))
        )
        odd_email = name == "contactEmailAddress" and value and "@" not in value
        other_minor = name == "kubernetesVersion" and not value.startswith(f"v{minor}")
        other_url_minor = name == "k8sConformanceUrl" and f"/v{minor}/" not in value
        want["warning", field] += bool(raster or odd_email or other_minor or other_url_minor)
    return +want


def _is_k8s_conformance_url(value: str) -> bool:
    head = "https://github.com/cncf/k8s-conformance/tree/"
    branch, _, rest = value.removeprefix(head).partition("/")
    return (
        value.startswith(head) and branch in ("master", "main") and re.fullmatch(r"v\d+\.\d+/[^/]+/?", rest)
    )


def expected_findings(product: Path, template: Path) -> Counter[tuple[str, str]]:
    """(level, field) of every finding the file's own content calls for, worked out from it here. (None of
    the folders has a go-test artifact the parser reads: DaoCloud's e2e.log is Ginkgo's, before v1.37.)"""
    doc = yaml.safe_load(product.read_text(encoding="utf-8"))
    wanted = yaml.safe_load(template.read_text(encoding="utf-8"))["spec"]
    want = metadata_expectations(doc["metadata"], product.parent.parent.name[1:])
    for category, template_entries in wanted.items():
        entries = doc["spec"].get(category)
        ids = {entry["id"]: i for i, entry in enumerate(entries or [])}
        for t in template_entries:
            if t["id"] not in ids:
                want["error", f"spec.{category} ({t['id']})"] += 1
                continue
            at = f"spec.{category}[{ids[t['id']]}] ({t['id']})"
            entry = entries[ids[t["id"]]]
            edited = " ".join(entry["description"].split()) != " ".join(t["description"].split())
            want["warning", f"{at}.description"] += edited
            want["warning", f"{at}.level"] += entry["level"] != t["level"]
            status, notes, evidence = (
                entry.get("status") or "",
                entry.get("notes") or "",
                entry.get("evidence"),
            )
            scalar = isinstance(evidence, str)
            items = [evidence] if scalar else evidence or []
            want["error", f"{at}.evidence"] += scalar
            if t["level"] == "SHOULD" and not status and not items:
                continue
            accepted_na = t["level"] == "MUST" and status == "N/A" and t["id"] == "cluster_autoscaling"
            must_broken = t["level"] == "MUST" and status != "Implemented" and not accepted_na
            want["error", f"{at}.status"] += must_broken or status not in STATUSES
            want["warning", f"{at}.status"] += accepted_na and bool(notes.strip())
            want["error", f"{at}.notes"] += status == "N/A" and not notes.strip()
            for j, item in enumerate(items):
                field = f"{at}.evidence" if scalar else f"{at}.evidence[{j}]"
                local = item and not item.startswith(("http://", "https://"))
                want["error", field] += bool(local and not (product.parent / item).exists())
    return +want


@needs_corpus
@pytest.mark.parametrize("product", PRODUCTS, ids=corpus_id)
def test_every_real_submission_gets_exactly_the_findings_its_file_calls_for(product: Path) -> None:
    found = lint(product.parent, template_for(product))
    assert Counter((f.level, f.field) for f in found) == expected_findings(product, template_for(product))


def must_na(product: Path) -> dict[str, str]:
    """status field -> requirement id of every MUST (by the template's level) marked N/A."""
    doc = yaml.safe_load(product.read_text(encoding="utf-8"))
    wanted = yaml.safe_load(template_for(product).read_text(encoding="utf-8"))["spec"]
    must = {t["id"] for entries in wanted.values() for t in entries if t["level"] == "MUST"}
    return {
        f"spec.{category}[{i}] ({entry['id']}).status": entry["id"]
        for category, entries in doc["spec"].items()
        for i, entry in enumerate(entries)
        if entry["id"] in must and entry.get("status") == "N/A"
    }


@needs_corpus
@pytest.mark.parametrize("product", PRODUCTS, ids=corpus_id)
def test_a_real_must_na_is_an_error_but_on_cluster_autoscaling_a_warning(product: Path) -> None:
    found = {f.field: f for f in lint(product.parent, template_for(product)) if "N/A on a MUST" in f.message}
    assert set(found) == set(must_na(product))
    for field, req_id in must_na(product).items():
        assert found[field].level == ("warning" if req_id == "cluster_autoscaling" else "error")


@needs_corpus
def test_the_corpus_holds_the_known_cases() -> None:
    """The 55 real submissions hold exactly these cases; the test above finds each one."""
    found = [(corpus_id(p), f) for p in PRODUCTS for f in lint(p.parent, template_for(p))]
    count = Counter(
        (f.level, f.field.rsplit(".", 1)[-1].split("[")[0]) for _, f in found if "missing" in f.message
    )
    assert len(PRODUCTS) == 55
    assert count["error", "k8sConformanceUrl"] == 24
    assert count["error", "contactEmailAddress"] == 9
    assert sum("N/A on a MUST" in f.message for _, f in found) == 7
    assert sum("is the string" in f.message for _, f in found) == 6


def rule_of(finding: Finding) -> str | None:
    """Which of the rules added in September 2026 a finding comes from, if any."""
    message = finding.message
    if "N/A on a MUST" in message:
        return f"MUST N/A ({finding.level})"
    if "is Implemented, but" in message:
        return "upstream test failed or skipped"
    if "names Kubernetes" in message:
        return "k8sConformanceUrl of another minor"
    if "comes from another run" in message:
        return "artifacts of different runs"
    if "ANSI" in message or "go: downloading" in message:
        return "e2e.log noise"
    return None


# What the rules added in September 2026 find in the 55 real submissions (v1.33 to v1.35): the MUST N/As of
# DaoCloud v1.33 and Talos v1.33/v1.34 (cluster_autoscaling with notes: warnings; Talos' accelerator_metrics
# and ai_service_metrics: errors, real findings). No folder has a go-test artifact (DaoCloud's e2e.log is
# Ginkgo's and unparsed), and every k8sConformanceUrl names the folder's minor.
NEW_RULE_COUNTS = {"MUST N/A (warning)": 3, "MUST N/A (error)": 4}


@needs_corpus
def test_what_the_new_rules_find_in_the_real_submissions() -> None:
    found = [f for p in PRODUCTS for f in lint(p.parent, template_for(p))]
    assert Counter(rule for f in found if (rule := rule_of(f))) == NEW_RULE_COUNTS


@needs_corpus
def test_every_requirement_finding_names_the_requirement_beside_its_path() -> None:
    fields = [
        f.field for p in PRODUCTS for f in lint(p.parent, template_for(p)) if f.field.startswith("spec.")
    ]
    assert fields and all(re.match(r"^spec\.\w+(\[\d+\])? \([a-z_]+\)", field) for field in fields)


# Named files and what each must get, in document order: (level, field, part of the message).
def talos_na(at: str, accepted: bool) -> list[tuple[str, str, str]]:
    return [
        ("error", f"{at}.evidence", "is the string 'N/A'"),
        ("warning", f"{at}.status", "N/A on a MUST: the validator accepts it here, with notes")
        if accepted
        else ("error", f"{at}.status", "N/A on a MUST is rejected: among MUSTs only cluster_autoscaling"),
        ("error", f"{at}.evidence", "'N/A' is not a file"),
    ]


NAMED: dict[str, list[tuple[str, str, str]]] = {
    # Talos: evidence written as the string "N/A" on three MUST N/As (only cluster_autoscaling may be N/A),
    # a level edit, prose as a path.
    "v1.33/talos": [
        ("error", "metadata.contactEmailAddress", "required but missing"),
        ("error", "metadata.k8sConformanceUrl", "required but missing"),
        ("warning", "spec.accelerators[0] (dra_support).level", "is 'MUST' but the checklist says 'SHOULD'"),
        *talos_na("spec.schedulingOrchestration[1] (cluster_autoscaling)", accepted=True),
        *talos_na("spec.observability[0] (accelerator_metrics)", accepted=False),
        *talos_na("spec.observability[1] (ai_service_metrics)", accepted=False),
        (
            "error",
            "spec.security[0] (secure_accelerator_access).evidence[0]",
            "'see secure_accelerator_access.md' is not a file",
        ),
    ],
    # CoreWeave CKS: snake_case metadata keys are accepted; only the field no 1.34 template had is missing.
    "v1.34/cks": [("error", "metadata.k8sConformanceUrl", "required but missing")],
    # ... and in 1.35 the three new accelerator SHOULDs are left out altogether.
    "v1.35/cks": [
        ("error", "metadata.k8sConformanceUrl", "required but missing"),
        ("error", "spec.accelerators (driver_runtime_management)", "'driver_runtime_management' is missing"),
        ("error", "spec.accelerators (gpu_sharing)", "'gpu_sharing' is missing"),
        ("error", "spec.accelerators (virtualized_accelerator)", "'virtualized_accelerator' is missing"),
    ],
    # Taichu: snake_case k8s_conformance_url counts; three descriptions shortened.
    "v1.34/Taichu": [
        (
            "warning",
            "spec.schedulingOrchestration[0] (gang_scheduling).description",
            "differs from the template",
        ),
        ("warning", "spec.observability[0] (accelerator_metrics).description", "differs from the template"),
        ("warning", "spec.observability[1] (ai_service_metrics).description", "differs from the template"),
    ],
    # DaoCloud: local e2e.log and junit_01.xml evidence exist; before v1.37 they are not parsed.
    "v1.34/daocloud": [],
    "v1.35/daocloud": [],
    "v1.33/daocloud": [
        ("error", "metadata.k8sConformanceUrl", "required but missing"),
        (
            "warning",
            "spec.schedulingOrchestration[1] (cluster_autoscaling).status",
            "the validator accepts it",
        ),
    ],
    # OVH: an unquoted version number, a wrong file name, markdown anchors on plain paths.
    "v1.34/ovh": [
        ("error", "metadata.platformVersion", "must be a string, not float"),
        ("error", "metadata.k8sConformanceUrl", "required but missing"),
        ("error", "spec.accelerators[0] (dra_support).evidence[0]", "'./dra.yaml' is not a file"),
        (
            "error",
            "spec.schedulingOrchestration[0] (gang_scheduling).evidence[0]",
            "write 'file://schedulingOrchestration.md#gang",
        ),
        (
            "error",
            "spec.schedulingOrchestration[2] (pod_autoscaling).evidence[0]",
            "write 'file://schedulingOrchestration.md#pod_",
        ),
        (
            "error",
            "spec.security[0] (secure_accelerator_access).evidence[0]",
            "write 'file://security.md#secure_accelerator_access'",
        ),
    ],
    # RKE2: dra_support written as SHOULD where 1.34 made it a MUST.
    "v1.34/rke2": [
        ("warning", "spec.accelerators[0] (dra_support).level", "is 'SHOULD' but the checklist says 'MUST'")
    ],
    # kOps: evidence in tests/<Test>/output.md subfolders.
    "v1.35/kops": [],
}


@needs_corpus
@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_real_submissions(name: str) -> None:
    product = SUBMISSIONS / name / "PRODUCT.yaml"
    found = lint(product.parent, template_for(product))
    assert [(f.level, f.field) for f in found] == [(level, field) for level, field, _ in NAMED[name]]
    for finding, (_, _, text) in zip(found, NAMED[name], strict=True):
        assert text in finding.message


@needs_corpus
@pytest.mark.parametrize("product", PRODUCTS, ids=corpus_id)
def test_without_the_template_a_real_submission_gets_the_same_findings_but_the_description_check(
    product: Path,
) -> None:
    """kaic's profile gives the same ids, levels and categories as each official template; only the wording
    is unknown, and the one note says so."""
    with_template = lint(product.parent, template_for(product))
    without = lint(product.parent)
    note, *rest = without
    assert (note.level, note.field) == ("note", "spec[*].description")
    assert f"--checklist AIConformance-{product.parent.parent.name[1:]}.yaml" in note.message
    assert rest == [f for f in with_template if not f.field.endswith(".description")]


# --- each rule on a synthetic folder ------------------------------------------------------------------------

TEMPLATE = """# A checklist shaped like the official ones, small enough to read.
metadata:
  kubernetesVersion: v{minor}
  platformName: "[Platform Name]"
  platformVersion: "[Platform Version]"
  vendorName: "[Vendor Name]"
  websiteUrl: "[Website URL]"
  repoUrl: "[Repository URL]"
  documentationUrl: "[Documentation URL]"
  productLogoUrl: "[Documentation URL]"
  description: "[Description]"
  contactEmailAddress: "[Contact Email Address]"

spec:
  accelerators:
    - id: gpu_sharing
      description: "Offer at least one way to share an accelerator."
      level: SHOULD
      status: ""   # Implemented, Not Implemented, Partially Implemented, N/A
      evidence: []
      notes: ""
  schedulingOrchestration:
    - id: cluster_autoscaling
      description: "Scale accelerator node groups on pending pods."
      level: MUST
      status: ""
      evidence: []
      notes: ""
  security:
    - id: secure_accelerator_access
      description: "Mediate accelerator access through device plugins or DRA."
      level: MUST
      status: ""
      evidence: []
      notes: ""
    - id: workload_sandboxing
      description: "Run workloads in a sandbox."
      level: SHOULD
      status: ""
      evidence: []
      notes: ""
"""


def make_template(root: Path, minor: str = "1.37") -> Path:
    path = root / "templates" / f"AIConformance-{minor}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(minor=minor), encoding="utf-8")
    return path


def good_product(minor: str = "1.37") -> dict[str, Any]:
    """A submission the synthetic template accepts without a finding."""
    template = yaml.safe_load(TEMPLATE.format(minor=minor))
    product = {
        "metadata": {
            "kubernetesVersion": f"v{minor}",
            "platformName": "Acme AI",
            "platformVersion": "2.1",
            "vendorName": "Acme",
            "websiteUrl": "https://acme.example/",
            "repoUrl": "https://github.com/acme/ai",
            "documentationUrl": "https://acme.example/docs",
            "productLogoUrl": "https://acme.example/logo.svg",
            "description": "Acme's AI platform.",
            "contactEmailAddress": "ai@acme.example",
            "k8sConformanceUrl": f"https://github.com/cncf/k8s-conformance/tree/master/v{minor}/acme",
        },
        "spec": template["spec"],
    }
    for entries in product["spec"].values():
        for entry in entries:
            if entry["level"] == "MUST" or entry["id"] == "workload_sandboxing":
                entry.update(status="Implemented", evidence=[f"https://acme.example/docs/{entry['id']}"])
    return product


def write_submission(root: Path, product: dict[str, Any], folder: str = "v1.37/acme") -> Path:
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / "PRODUCT.yaml").write_text(yaml.safe_dump(product, sort_keys=False), encoding="utf-8")
    return path


def findings(folder: Path, template: Path, **options: Any) -> list[tuple[str, str]]:
    """(level, field) of each finding, leaving out the warning that the synthetic template is not official."""
    return [(f.level, f.field) for f in lint(folder, template, **options) if f.field != "template"]


def entry(product: dict[str, Any], req_id: str) -> dict[str, Any]:
    return next(e for entries in product["spec"].values() for e in entries if e["id"] == req_id)


def meta(**changes: Any) -> Callable[[dict[str, Any]], None]:
    """Set metadata fields; None removes one."""

    def change(product: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is None:
                product["metadata"].pop(key)
            else:
                product["metadata"][key] = value

    return change


def req(req_id: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda product: entry(product, req_id).update(changes)


def snake_case_metadata(product: dict[str, Any]) -> None:
    product["metadata"] = {
        re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", k).lower(): v for k, v in product["metadata"].items()
    }


SECURE, SANDBOX, SHARING, AUTOSCALING = (
    "spec.security[0] (secure_accelerator_access)",
    "spec.security[1] (workload_sandboxing)",
    "spec.accelerators[0] (gpu_sharing)",
    "spec.schedulingOrchestration[0] (cluster_autoscaling)",
)
K8S_URL = "https://github.com/cncf/k8s-conformance/tree/main/v1.36/acme/"
RULES: list[tuple[str, Callable[[dict[str, Any]], Any], list[tuple[str, str]]]] = [
    ("clean", lambda p: None, []),
    ("k8sConformanceUrl missing", meta(k8sConformanceUrl=None), [("error", "metadata.k8sConformanceUrl")]),
    (
        "contactEmailAddress missing",
        meta(contactEmailAddress=None),
        [("error", "metadata.contactEmailAddress")],
    ),
    ("snake_case keys", snake_case_metadata, []),
    ("camelCase wins over snake_case", meta(website_url="[x]"), []),
    ("required empty", meta(platformName=""), [("error", "metadata.platformName")]),
    ("required blank", meta(description="  "), [("error", "metadata.description")]),
    ("placeholder", meta(vendorName="[Vendor Name]"), [("error", "metadata.vendorName")]),
    ("not a string", meta(platformVersion=2.1), [("error", "metadata.platformVersion")]),
    ("null is missing", meta(vendorName=None), [("error", "metadata.vendorName")]),
    ("optional repoUrl absent", meta(repoUrl=None), []),
    ("optional repoUrl empty", meta(repoUrl=""), []),
    ("optional repoUrl placeholder", meta(repoUrl="[Repository URL]"), [("error", "metadata.repoUrl")]),
    (
        "k8sConformanceUrl pattern",
        meta(k8sConformanceUrl="https://github.com/cncf/k8s-conformance/pull/1"),
        [("error", "metadata.k8sConformanceUrl")],
    ),
    ("k8sConformanceUrl main, slash", meta(k8sConformanceUrl=K8S_URL.replace("v1.36", "v1.37")), []),
    (
        "k8sConformanceUrl of another minor",
        meta(k8sConformanceUrl=K8S_URL),
        [("warning", "metadata.k8sConformanceUrl")],
    ),
    (
        "raster logo",
        meta(productLogoUrl="https://acme.example/logo.png"),
        [("warning", "metadata.productLogoUrl")],
    ),
    ("odd email", meta(contactEmailAddress="ai at acme"), [("warning", "metadata.contactEmailAddress")]),
    ("other minor", meta(kubernetesVersion="v1.36"), [("warning", "metadata.kubernetesVersion")]),
    ("patch version", meta(kubernetesVersion="v1.37.2"), []),
    ("no metadata", lambda p: p.pop("metadata"), [("error", "metadata")]),
    ("no spec", lambda p: p.pop("spec"), [("error", "spec")]),
    ("category missing", lambda p: p["spec"].pop("security"), [("error", "spec.security")]),
    (
        "id missing",
        lambda p: p["spec"]["security"].pop(1),
        [("error", "spec.security (workload_sandboxing)")],
    ),
    (
        "id in another category",
        lambda p: p["spec"]["security"].append(p["spec"].pop("accelerators")[0]),
        [("error", "spec.accelerators")],
    ),
    ("extra id ignored", lambda p: p["spec"]["security"].append({"id": "mine", "status": "Nope"}), []),
    ("entry not a mapping", lambda p: p["spec"]["security"].append("oops"), [("error", "spec.security[2]")]),
    (
        "description edited",
        req("secure_accelerator_access", description="Ours."),
        [("warning", f"{SECURE}.description")],
    ),
    ("description reflowed", req("workload_sandboxing", description="Run workloads\nin a sandbox.\n"), []),
    ("level edited", req("workload_sandboxing", level="MUST"), [("warning", f"{SANDBOX}.level")]),
    (
        "the template's level applies",
        req("cluster_autoscaling", level="SHOULD", status="Not Implemented"),
        [
            ("warning", f"{AUTOSCALING}.level"),
            ("error", f"{AUTOSCALING}.status"),
        ],
    ),
    ("status unknown", req("workload_sandboxing", status="Done"), [("error", f"{SANDBOX}.status")]),
    ("status case", req("workload_sandboxing", status="implemented"), [("error", f"{SANDBOX}.status")]),
    ("SHOULD unanswered", req("workload_sandboxing", status="", evidence=[]), []),
    ("SHOULD unanswered, evidence null", req("workload_sandboxing", status=None, evidence=None), []),
    (
        "SHOULD evidence without status",
        req("gpu_sharing", evidence=["https://acme.example/x"]),
        [("error", f"{SHARING}.status")],
    ),
    ("SHOULD partially", req("workload_sandboxing", status="Partially Implemented"), []),
    ("SHOULD not implemented", req("workload_sandboxing", status="Not Implemented", evidence=[]), []),
    (
        "SHOULD N/A with notes",
        req("gpu_sharing", status="N/A", notes="No accelerator here can be shared."),
        [],
    ),
    ("N/A without notes", req("gpu_sharing", status="N/A", notes=" "), [("error", f"{SHARING}.notes")]),
    (
        "MUST not implemented",
        req("secure_accelerator_access", status="Not Implemented"),
        [("error", f"{SECURE}.status")],
    ),
    (
        "MUST partially",
        req("secure_accelerator_access", status="Partially Implemented"),
        [("error", f"{SECURE}.status")],
    ),
    (
        "MUST unanswered",
        req("secure_accelerator_access", status="", evidence=[]),
        [("error", f"{SECURE}.status")],
    ),
    (
        "MUST N/A",
        req("secure_accelerator_access", status="N/A", notes="No accelerators."),
        [("error", f"{SECURE}.status")],
    ),
    (
        "cluster_autoscaling N/A",
        req("cluster_autoscaling", status="N/A", notes="On-premises: no autoscaler."),
        [("warning", f"{AUTOSCALING}.status")],
    ),
    (
        "cluster_autoscaling N/A without notes",
        req("cluster_autoscaling", status="N/A"),
        [("error", f"{AUTOSCALING}.notes")],
    ),
    (
        "evidence a URL string",
        req("secure_accelerator_access", evidence="https://acme.example/x"),
        [("error", f"{SECURE}.evidence")],
    ),
    (
        "evidence the string N/A",
        req("secure_accelerator_access", evidence="N/A"),
        [
            ("error", f"{SECURE}.evidence"),
            ("error", f"{SECURE}.evidence"),
        ],
    ),
    (
        "evidence a mapping",
        req("secure_accelerator_access", evidence={"a": 1}),
        [("error", f"{SECURE}.evidence")],
    ),
    (
        "evidence item a number",
        req("secure_accelerator_access", evidence=[1]),
        [("error", f"{SECURE}.evidence[0]")],
    ),
    (
        "empty evidence item skipped",
        req("secure_accelerator_access", evidence=["", "https://acme.example/x"]),
        [],
    ),
    ("notes a list", req("secure_accelerator_access", notes=["x"]), [("error", f"{SECURE}.notes")]),
]


@pytest.mark.parametrize(("change", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(
    tmp_path: Path, change: Callable[[dict[str, Any]], Any], expected: list[tuple[str, str]]
) -> None:
    product = good_product()
    change(product)
    assert findings(write_submission(tmp_path, product), make_template(tmp_path)) == expected


def test_must_na_messages(tmp_path: Path) -> None:
    product = good_product()
    entry(product, "cluster_autoscaling").update(status="N/A", notes="On-premises: no autoscaler.")
    entry(product, "secure_accelerator_access").update(status="N/A", notes="No accelerators.")
    folder, template = write_submission(tmp_path, product), make_template(tmp_path)
    found = [f for f in lint(folder, template) if f.field != "template"]
    assert [str(f) for f in found] == [
        (
            f"warning: {AUTOSCALING}.status: N/A on a MUST: the validator accepts it here, with notes, and "
            "prints a warning; reviewers check that the notes show the platform has nothing to autoscale"
        ),
        (
            f"error: {SECURE}.status: N/A on a MUST is rejected: among MUSTs only cluster_autoscaling may be "
            "N/A; secure_accelerator_access must be 'Implemented'"
        ),
    ]


# Local evidence: paths must exist inside the folder, in both file:// forms, and never climb out.
PATHS = [
    ("notes.md", True),
    ("./notes.md", True),
    ("sub/deep.md", True),
    ("sub", True),
    ("file://notes.md", True),
    ("file://notes.md#part", True),
    ("file://sub/deep.md", True),
    ("file://v1.37/acme/notes.md", True),
    ("absent.md", False),
    ("notes.md#part", False),
    ("file://absent.md", False),
    ("file://", False),
    ("file://v1.37/other/notes.md", False),
    ("file://v1.36/acme/notes.md", False),
    ("../secret.txt", False),
    ("sub/../../secret.txt", False),
    ("file://../secret.txt", False),
    ("file://v1.37/acme/../../secret.txt", False),
    ("{root}/secret.txt", False),
    ("file://{root}/secret.txt", False),
    ("link.md", False),
]


@pytest.mark.parametrize(("ref", "ok"), PATHS, ids=[p[0] for p in PATHS])
def test_local_evidence(tmp_path: Path, ref: str, ok: bool) -> None:
    product = good_product()
    entry(product, "secure_accelerator_access")["evidence"] = [ref.format(root=tmp_path)]
    folder = write_submission(tmp_path, product)
    (folder / "notes.md").write_text("evidence\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.md").write_text("evidence\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    (folder / "link.md").symlink_to(tmp_path / "secret.txt")
    expected = [] if ok else [("error", f"{SECURE}.evidence[0]")]
    assert findings(folder, make_template(tmp_path)) == expected


def test_a_plain_path_with_an_anchor_gets_the_file_url_to_write(tmp_path: Path) -> None:
    product = good_product()
    entry(product, "secure_accelerator_access")["evidence"] = ["./notes.md#isolation"]
    folder = write_submission(tmp_path, product)
    (folder / "notes.md").write_text("evidence\n")
    (finding,) = [f for f in lint(folder, make_template(tmp_path)) if f.field != "template"]
    assert "write 'file://notes.md#isolation'" in finding.message


# Go-test artifacts: from v1.37 the cited test (the #fragment, else the upstream test mapped to the id) must
# not have failed, and a skipped one backs only N/A.
JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" failures="1" errors="0" time="1.600000">
\t<testsuite tests="4" failures="1" skipped="1" time="1.600000" name="example.com/test">
\t\t<testcase classname="example.com/test" name="TestSecureAcceleratorAccess" time="1.000000">
\t\t\t<failure message="Failed" type="">device visible</failure>
\t\t</testcase>
\t\t<testcase classname="example.com/test" name="TestKaicGpuSharing" time="0.000000">
\t\t\t<skipped message="no sharing"></skipped>
\t\t</testcase>
\t\t<testcase classname="example.com/test" name="TestSecureAcceleratorAccess/PositiveAccessTest" \
time="0.500000"/>
\t\t<testcase classname="example.com/test" name="TestWorkloadSandboxing" time="0.100000"/>
\t</testsuite>
</testsuites>
"""
EVENTS = [
    ("TestSecureAcceleratorAccess/PositiveAccessTest", "pass"),
    ("TestSecureAcceleratorAccess", "fail"),
    ("TestKaicGpuSharing", "skip"),
    ("TestWorkloadSandboxing", "pass"),
]
RESULTS = (
    "".join(
        json.dumps({"Time": "2026-09-15T10:00:00Z", "Action": a, "Package": "example.com/test", "Test": t})
        + "\n"
        for t, a in EVENTS
    )
    + json.dumps({"Time": "2026-09-15T10:00:01Z", "Action": "fail", "Package": "example.com/test"})
    + "\n"
)
E2E_LOG = """=== RUN   TestSecureAcceleratorAccess
=== RUN   TestSecureAcceleratorAccess/PositiveAccessTest
--- FAIL: TestSecureAcceleratorAccess (1.00s)
    --- PASS: TestSecureAcceleratorAccess/PositiveAccessTest (0.50s)
=== RUN   TestKaicGpuSharing
--- SKIP: TestKaicGpuSharing (0.00s)
=== RUN   TestWorkloadSandboxing
--- PASS: TestWorkloadSandboxing (0.10s)
FAIL
FAIL\texample.com/test\t1.600s
"""
ARTIFACTS = {"junit.xml": JUNIT, "results.json": RESULTS, "e2e.log": E2E_LOG}
# (requirement, status, evidence with {f} for the artifact's name, findings at its evidence[0]). Beside them,
# secure_accelerator_access (Implemented) gets an error at its status for the failed
# TestSecureAcceleratorAccess in the folder, unless its own evidence already cites that test in that file.
CITED = [
    ("secure_accelerator_access", "Implemented", "file://{f}", 1),  # the mapped upstream test failed
    ("secure_accelerator_access", "Implemented", "{f}", 1),  # a plain path is parsed too
    ("secure_accelerator_access", "Implemented", "file://v1.37/acme/{f}", 1),  # and the repository form
    ("secure_accelerator_access", "Implemented", "file://{f}#TestSecureAcceleratorAccess", 1),
    (
        "secure_accelerator_access",
        "Implemented",
        "file://{f}#TestSecureAcceleratorAccess/PositiveAccessTest",
        0,  # the subtest passed, but its parent failed: the status error says so
    ),
    (
        "secure_accelerator_access",
        "Implemented",
        "file://v1.37/acme/{f}#TestSecureAcceleratorAccess/Positive",
        1,
    ),
    ("secure_accelerator_access", "Implemented", "file://{f}#TestNoSuchTest", 1),
    ("workload_sandboxing", "Implemented", "file://{f}", 0),  # mapped TestWorkloadSandboxing passed
    ("workload_sandboxing", "Implemented", "file://{f}#TestKaicGpuSharing", 1),  # skipped, yet not N/A
    ("workload_sandboxing", "Not Implemented", "file://{f}#TestKaicGpuSharing", 1),
    ("gpu_sharing", "N/A", "file://{f}#TestKaicGpuSharing", 0),  # skipped backs N/A
    ("gpu_sharing", "Implemented", "file://{f}", 0),  # no upstream test for the id: parsed only
]


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
@pytest.mark.parametrize(("req_id", "status", "ref", "errors"), CITED, ids=[c[2] + "-" + c[0] for c in CITED])
def test_cited_test_results(
    tmp_path: Path, name: str, req_id: str, status: str, ref: str, errors: int
) -> None:
    product = good_product()
    entry(product, req_id).update(status=status, evidence=[ref.format(f=name)], notes="Context absent.")
    folder = write_submission(tmp_path, product)
    (folder / name).write_text(ARTIFACTS[name], encoding="utf-8")
    at = next(p for p in (SECURE, SANDBOX, SHARING) if f"({req_id})" in p)
    judged = req_id == "secure_accelerator_access" and ref.partition("#")[2] in (
        "",
        "TestSecureAcceleratorAccess",
    )
    expected = [("error", f"{at}.evidence[0]")] * errors + [("error", f"{SECURE}.status")] * (not judged)
    assert sorted(findings(folder, make_template(tmp_path))) == sorted(expected)


BROKEN = {
    "junit.xml": ["<testsuites><testsuite>", "<html><body>hello</body></html>"],
    "results.json": ["not json\n", '{"Time": "2026-09-15T10:00:00Z"}\n'],
    "e2e.log": ["hello, reviewer\n"],
}


@pytest.mark.parametrize(
    ("name", "text"), [(n, t) for n, texts in BROKEN.items() for t in texts], ids=lambda v: v[:16]
)
def test_an_artifact_that_does_not_parse_is_an_error(tmp_path: Path, name: str, text: str) -> None:
    product = good_product()
    entry(product, "workload_sandboxing")["evidence"] = [f"file://{name}", f"file://{name}#TestX"]
    folder = write_submission(tmp_path, product)
    (folder / name).write_text(text, encoding="utf-8")
    assert findings(folder, make_template(tmp_path)) == [
        ("error", f"{SANDBOX}.evidence[0]"),
        ("error", f"{SANDBOX}.evidence[1]"),
    ]


def test_before_v1_37_the_validator_only_requires_artifacts_to_exist_but_lint_reads_them(
    tmp_path: Path,
) -> None:
    """The cited #fragment is not judged before v1.37 (nor is an unparseable artifact), as by the validator;
    the folder's upstream test results still are, which is lint's own rule."""
    product = good_product("1.36")
    entry(product, "secure_accelerator_access")["evidence"] = ["file://junit.xml#TestNoSuchTest"]
    entry(product, "workload_sandboxing")["evidence"] = ["file://e2e.log"]
    folder = write_submission(tmp_path, product, "v1.36/acme")
    (folder / "junit.xml").write_text(JUNIT, encoding="utf-8")
    (folder / "e2e.log").write_text("Running Suite: a Ginkgo log\n", encoding="utf-8")
    found = [f for f in lint(folder, make_template(tmp_path, "1.36")) if f.field != "template"]
    assert [(f.level, f.field) for f in found] == [("error", f"{SECURE}.status")]
    assert found[0].message == "is Implemented, but TestSecureAcceleratorAccess failed in junit.xml"


def test_artifacts_are_found_under_their_name_anywhere_in_the_folder(tmp_path: Path) -> None:
    product = good_product()
    entry(product, "secure_accelerator_access")["evidence"] = ["file://results/e2e.log"]
    folder = write_submission(tmp_path, product)
    (folder / "results").mkdir()
    (folder / "results" / "e2e.log").write_text(E2E_LOG, encoding="utf-8")
    assert findings(folder, make_template(tmp_path)) == [("error", f"{SECURE}.evidence[0]")]


# --- the rules on a real submission: v1.35/kops copied, given its test run, and broken one way at a time ----

KOPS = SUBMISSIONS / "v1.35" / "kops"
UPSTREAM = "sigs.k8s.io/ai-conformance/test"
RUN_START = "2026-09-15T10:00:00Z"
# The run kOps' artifacts record, as the upstream suite reports it: test -> result, subtests by their parent.
KOPS_RUN = [
    ("TestSecureAcceleratorAccess/PositiveAccessTest", "pass"),
    ("TestSecureAcceleratorAccess/NegativeIsolationTest", "pass"),
    ("TestSecureAcceleratorAccess", "pass"),
    ("TestGangScheduling", "pass"),
    ("TestAcceleratorClusterAutoscaling", "pass"),
    ("TestAIServiceMetrics", "pass"),
    ("TestParseFlags", "pass"),  # a unit test that rides along
]
GANG, AUTOSCALE, POD_AUTOSCALING, SERVICE_METRICS, ACCESS = (
    "spec.schedulingOrchestration[0] (gang_scheduling)",
    "spec.schedulingOrchestration[1] (cluster_autoscaling)",
    "spec.schedulingOrchestration[2] (pod_autoscaling)",
    "spec.observability[1] (ai_service_metrics)",
    "spec.security[0] (secure_accelerator_access)",
)
TARGETS = [
    ("TestSecureAcceleratorAccess", ACCESS),
    ("TestGangScheduling", GANG),
    ("TestAcceleratorClusterAutoscaling", AUTOSCALE),
]
KINDS = ("junit.xml", "results.json", "e2e.log")


def go_test_events(tests: list[tuple[str, str]], start: str = RUN_START) -> list[Event]:
    """A `go test -json` stream of the upstream package: each top-level test runs its subtests (listed before
    it) and then finishes, one test a second, as `go test` reports them."""
    began = datetime.fromisoformat(start)
    second = 0

    def event(action: str, test: str | None = None, **rest: Any) -> Event:
        moment = (began + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")
        return {
            "Time": moment,
            "Action": action,
            "Package": UPSTREAM,
            **({"Test": test} if test else {}),
            **rest,
        }

    def run(test: str) -> list[Event]:
        return [event("run", test), event("output", test, Output=f"=== RUN   {test}\n")]

    def finish(test: str, action: str) -> list[Event]:
        line = f"--- {action.upper()}: {test} (1.00s)\n"
        return [event("output", test, Output=line), event(action, test, Elapsed=1.0)]

    stream = [event("start")]
    results = dict(tests)
    for root in dict.fromkeys(name.split("/")[0] for name, _ in tests):
        second += 1
        subtests = [name for name in results if name.startswith(root + "/")]
        stream += run(root) if root in results else []
        for name in subtests:
            stream += run(name) + finish(name, results[name])
        stream += finish(root, results[root]) if root in results else []
    second += 1
    failed = "fail" in results.values()
    summary = f"FAIL\t{UPSTREAM}\t{second}.000s\n" if failed else f"ok  \t{UPSTREAM}\t{second}.000s\n"
    return [
        *stream,
        event("output", Output="FAIL\n" if failed else "PASS\n"),
        event("output", Output=summary),
        event("fail" if failed else "pass", Elapsed=float(second)),
    ]


def go_test_artifacts(tests: list[tuple[str, str]], start: str = RUN_START) -> dict[str, str]:
    """The three files of one run, rendered by kaic's own writers (golden-tested against real Go)."""
    events = go_test_events(tests, start)
    return {
        "junit.xml": gotest_junit(events, "go1.26.0"),
        "results.json": results_json(events),
        "e2e.log": verbose_log(events),
    }


def with_result(test: str, result: str) -> list[tuple[str, str]]:
    return [(name, result if name == test else action) for name, action in KOPS_RUN]


@pytest.fixture
def kops(tmp_path: Path) -> Path:
    """A writable copy of the real kOps v1.35 submission under tmp_path/v1.35/kops, no docs/ above it."""
    folder = tmp_path / "v1.35" / "kops"
    shutil.copytree(KOPS, folder, copy_function=shutil.copyfile)
    for root, _, _ in os.walk(folder):
        os.chmod(root, 0o755)
    return folder


def kops_findings(folder: Path, **options: Any) -> list[Finding]:
    return lint(folder, CHECKLISTS / "AIConformance-1.35.yaml", **options)


def edit(folder: Path, req_id: str | None = None, **changes: Any) -> None:
    """Change one requirement's fields (or, without req_id, the metadata) of the copied PRODUCT.yaml."""
    doc = yaml.safe_load((folder / "PRODUCT.yaml").read_text(encoding="utf-8"))
    target = doc["metadata"] if req_id is None else entry(doc, req_id)
    target.update(changes)
    (folder / "PRODUCT.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def put(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def said(found: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.level, f.field, f.message) for f in found]


@needs_corpus
def test_kops_with_the_artifacts_of_its_run_is_clean(kops: Path) -> None:
    put(kops, go_test_artifacts(KOPS_RUN))
    assert kops_findings(kops) == []


@needs_corpus
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("test", "at"), TARGETS, ids=[t for t, _ in TARGETS])
def test_a_failed_upstream_test_in_any_artifact_is_an_error(
    kops: Path, kind: str, test: str, at: str
) -> None:
    put(kops, {kind: go_test_artifacts(with_result(test, "fail"))[kind]})
    assert said(kops_findings(kops)) == [
        ("error", f"{at}.status", f"is Implemented, but {test} failed in {kind}")
    ]


@needs_corpus
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("test", "at"), TARGETS, ids=[t for t, _ in TARGETS])
def test_a_skipped_target_test_in_any_artifact_is_an_error(kops: Path, kind: str, test: str, at: str) -> None:
    put(kops, {kind: go_test_artifacts(with_result(test, "skip"))[kind]})
    assert said(kops_findings(kops)) == [
        (
            "error",
            f"{at}.status",
            (
                f"is Implemented, but {test} was skipped in {kind}; "
                "the validator accepts a skipped target test only for status N/A"
            ),
        )
    ]


@needs_corpus
def test_every_artifact_that_shows_the_failure_is_named_once(kops: Path) -> None:
    put(kops, go_test_artifacts(with_result("TestGangScheduling", "fail")))
    put(kops, {"results/JUnit.XML": go_test_artifacts(KOPS_RUN)["junit.xml"]})  # any case, any folder: read
    assert said(kops_findings(kops)) == [
        (
            "error",
            f"{GANG}.status",
            "is Implemented, but TestGangScheduling failed in junit.xml, results.json, e2e.log",
        ),
        (
            "warning",
            "results/JUnit.XML",
            "comes from another run than junit.xml: TestGangScheduling passed here but failed in junit.xml",
        ),
    ]


@needs_corpus
@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_subtest_fails_its_parent(kops: Path, kind: str) -> None:
    """A parent reported as passed (an edited file, or a harness that lies) still fails by its subtest."""
    run = [*KOPS_RUN, ("TestGangScheduling/fitting-gang", "fail")]
    put(kops, {kind: go_test_artifacts(run)[kind]})
    assert said(kops_findings(kops)) == [
        ("error", f"{GANG}.status", f"is Implemented, but TestGangScheduling failed in {kind}")
    ]


@needs_corpus
@pytest.mark.parametrize("kind", KINDS)
def test_a_skipped_subtest_under_a_passed_parent_is_no_finding(kops: Path, kind: str) -> None:
    """MultiContainerIsolationTest needs two devices: skipped on one, while the test as a whole passes."""
    run = [*KOPS_RUN, ("TestSecureAcceleratorAccess/MultiContainerIsolationTest", "skip")]
    put(kops, {kind: go_test_artifacts(run)[kind]})
    assert kops_findings(kops) == []


@needs_corpus
@pytest.mark.parametrize("kind", ["junit.xml", "results.json"])  # an e2e.log never shows a subtest alone
def test_subtests_without_their_parent_roll_up_to_it(kops: Path, kind: str) -> None:
    skipped = [("TestGangScheduling/fitting-gang", "skip"), ("TestGangScheduling/unfit-gang", "skip")]
    run = [t for t in KOPS_RUN if t[0] != "TestGangScheduling"] + skipped
    put(kops, {kind: go_test_artifacts(run)[kind]})
    assert [(f.level, f.field) for f in kops_findings(kops)] == [("error", f"{GANG}.status")]
    assert "TestGangScheduling was skipped in" in kops_findings(kops)[0].message


@needs_corpus
def test_other_upstream_tests_failed_are_errors_skipped_warnings(kops: Path) -> None:
    """TestAIServiceMetrics is not one of the validator's targets: a manual attestation may stand beside its
    skip, but not beside its failure."""
    put(kops, {"e2e.log": go_test_artifacts(with_result("TestAIServiceMetrics", "skip"))["e2e.log"]})
    assert said(kops_findings(kops)) == [
        (
            "warning",
            f"{SERVICE_METRICS}.status",
            (
                "is Implemented, but TestAIServiceMetrics was skipped in e2e.log; "
                "reviewers will look for the evidence that replaces it"
            ),
        )
    ]
    put(kops, {"e2e.log": go_test_artifacts(with_result("TestAIServiceMetrics", "fail"))["e2e.log"]})
    assert [(f.level, f.field) for f in kops_findings(kops)] == [("error", f"{SERVICE_METRICS}.status")]


@needs_corpus
def test_only_implemented_requirements_answer_for_their_upstream_test(kops: Path) -> None:
    """cluster_autoscaling N/A beside a skipped TestAcceleratorClusterAutoscaling: what the validator
    wants."""
    put(kops, go_test_artifacts(with_result("TestAcceleratorClusterAutoscaling", "skip")))
    edit(kops, "cluster_autoscaling", status="N/A", notes="On-premises: no node groups to scale.")
    assert [(f.level, f.field) for f in kops_findings(kops)] == [("warning", f"{AUTOSCALE}.status")]


@needs_corpus
def test_must_na_on_a_real_submission(kops: Path) -> None:
    edit(kops, "pod_autoscaling", status="N/A", notes="No custom metrics API here.")
    edit(kops, "cluster_autoscaling", status="N/A", notes="")
    assert said(kops_findings(kops)) == [
        ("error", f"{AUTOSCALE}.notes", "N/A needs notes saying why the requirement does not apply"),
        (
            "error",
            f"{POD_AUTOSCALING}.status",
            (
                "N/A on a MUST is rejected: among MUSTs only cluster_autoscaling may be N/A; "
                "pod_autoscaling must be 'Implemented'"
            ),
        ),
    ]
    edit(kops, "cluster_autoscaling", notes="On-premises: no node groups to scale.")
    assert [(f.level, f.field) for f in kops_findings(kops)] == [
        ("warning", f"{AUTOSCALE}.status"),
        ("error", f"{POD_AUTOSCALING}.status"),
    ]


@needs_corpus
def test_a_k8s_conformance_url_of_another_minor_is_a_warning(kops: Path) -> None:
    edit(kops, k8sConformanceUrl="https://github.com/cncf/k8s-conformance/tree/master/v1.34/kops")
    assert said(kops_findings(kops)) == [
        (
            "warning",
            "metadata.k8sConformanceUrl",
            (
                "names Kubernetes v1.34, but the submission is for v1.35; "
                "link the product's k8s-conformance entry under v1.35/"
            ),
        )
    ]


OTHER_RUNS = [
    (  # e2e.log of a run with one more test
        {"e2e.log": [*KOPS_RUN, ("TestNewCheck", "pass")]},
        "e2e.log",
        "other tests (only in junit.xml: none; only here: TestNewCheck)",
    ),
    (  # results.json of the same tests, two hours later
        {"results.json": KOPS_RUN, "start": "2026-09-15T12:00:00Z"},
        "results.json",
        "started 2026-09-15T12:00:00+00:00, but junit.xml at 2026-09-15T10:00:00+00:00",
    ),
    (  # e2e.log of a run where a unit test failed
        {"e2e.log": with_result("TestParseFlags", "fail")},
        "e2e.log",
        "TestParseFlags failed here but passed in junit.xml",
    ),
]


@needs_corpus
@pytest.mark.parametrize(("other", "field", "reason"), OTHER_RUNS, ids=["tests", "start", "result"])
def test_artifacts_of_different_runs_are_a_warning(
    kops: Path, other: dict[str, Any], field: str, reason: str
) -> None:
    put(kops, go_test_artifacts(KOPS_RUN))
    start = other.pop("start", RUN_START)
    put(kops, {name: go_test_artifacts(run, start)[name] for name, run in other.items()})
    assert said(kops_findings(kops)) == [
        ("warning", field, f"comes from another run than junit.xml: {reason}")
    ]


@needs_corpus
def test_ansi_codes_and_go_downloading_in_e2e_log_are_warnings(kops: Path) -> None:
    files = go_test_artifacts(with_result("TestGangScheduling", "fail"))
    coloured = re.sub(
        r"--- (PASS|FAIL)", lambda m: f"\x1b[{31 if m[1] == 'FAIL' else 32}m{m[0]}\x1b[0m", files["e2e.log"]
    )
    put(
        kops,
        {
            "e2e.log": "go: downloading k8s.io/api v0.36.0\ngo: downloading k8s.io/client-go v0.36.0\n"
            + coloured
        },
    )
    assert said(kops_findings(kops)) == [
        (
            "error",
            f"{GANG}.status",
            "is Implemented, but TestGangScheduling failed in e2e.log",
        ),  # colour or not
        (
            "warning",
            "e2e.log",
            (
                "has ANSI escape codes on 7 line(s), first line 6: reviewers read the log as plain text; "
                "record it without colour"
            ),
        ),
        (
            "warning",
            "e2e.log",
            (
                "has `go: downloading` lines on 2 line(s), first line 1: module downloads are not test "
                "output; download modules before the recorded run"
            ),
        ),
    ]


@needs_corpus
def test_lint_without_checklist_on_a_real_submission(kops: Path) -> None:
    """The CLI with no --checklist and no clone of the program's repository above the folder."""
    result = invoke(kops)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("note: spec[*].description: not compared with the official wording")
    assert "--checklist AIConformance-1.35.yaml" in result.stdout
    edit(kops, "pod_autoscaling", status="N/A", notes="No custom metrics API here.", level="SHOULD")
    result = invoke(kops, "-o", "json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert [(f["level"], f["field"]) for f in payload["findings"]] == [
        ("note", "spec[*].description"),
        ("warning", f"{POD_AUTOSCALING}.level"),  # the profile's level for 1.35 is MUST
        ("error", f"{POD_AUTOSCALING}.status"),
    ]
    assert (payload["errors"], payload["warnings"]) == (1, 1)


# --- versions, templates and input errors ------------------------------------------------------------------


def test_the_version_comes_from_version_the_path_or_the_file(tmp_path: Path) -> None:
    template = make_template(tmp_path)
    product = good_product()
    folder = write_submission(tmp_path, product, "elsewhere/acme")
    assert findings(folder, template) == []  # metadata.kubernetesVersion: v1.37
    product["metadata"]["kubernetesVersion"] = "v1.36"
    write_submission(tmp_path, product, "v1.37/acme")  # the path wins, as for the validator
    assert findings(tmp_path / "v1.37" / "acme", template) == [("warning", "metadata.kubernetesVersion")]
    product["metadata"].pop("kubernetesVersion")
    write_submission(tmp_path, product, "elsewhere/acme")
    with pytest.raises(SubmissionError, match="no vX.Y/ in the path and no metadata.kubernetesVersion"):
        lint(folder, template)
    assert findings(folder, template, version="v1.37") == [("error", "metadata.kubernetesVersion")]
    assert findings(folder, template, version="1.37") == [("error", "metadata.kubernetesVersion")]
    with pytest.raises(SubmissionError, match="not a checklist version"):
        lint(folder, template, version="latest")


def test_a_template_for_another_version_is_refused(tmp_path: Path) -> None:
    folder = write_submission(tmp_path, good_product())
    with pytest.raises(SubmissionError, match="template for v1.36, but the submission is for v1.37"):
        lint(folder, make_template(tmp_path, "1.36"))


def test_without_checklist_the_template_is_found_in_a_clone_of_the_program_repository(tmp_path: Path) -> None:
    folder = write_submission(tmp_path, good_product())
    assert next(f.level for f in lint(folder)) == "note"  # none there: kaic's profile
    docs = tmp_path / "docs"
    docs.mkdir()
    make_template(tmp_path).rename(docs / "AIConformance-1.37.yaml")
    assert [f.field for f in lint(folder)] == ["template"]
    assert [f.field for f in lint(folder / "PRODUCT.yaml")] == ["template"]


def test_a_template_kaic_does_not_know_is_a_warning(tmp_path: Path) -> None:
    folder = write_submission(tmp_path, good_product())
    (finding,) = lint(folder, make_template(tmp_path))
    assert (finding.level, finding.field) == ("warning", "template")
    assert "differs from the official AIConformance-1.37.yaml" in finding.message


@pytest.mark.skipif(not CHECKLISTS.is_dir(), reason=f"the official checklists are not at {CHECKLISTS}")
def test_the_official_template_raises_no_template_warning(tmp_path: Path) -> None:
    official = CHECKLISTS / "AIConformance-1.37.yaml"
    product = yaml.safe_load(official.read_text(encoding="utf-8"))
    product["metadata"] = good_product()["metadata"]
    for entries in product["spec"].values():
        for item in entries:
            if item["level"] == "MUST":
                item.update(status="Implemented", evidence=["https://acme.example/docs"])
    assert lint(write_submission(tmp_path, product), official) == []


def test_input_errors(tmp_path: Path) -> None:
    template = make_template(tmp_path)
    empty = tmp_path / "v1.37" / "empty"
    empty.mkdir(parents=True)
    with pytest.raises(SubmissionError, match="no PRODUCT.yaml"):
        lint(empty, template)
    not_a_template = tmp_path / "x.yaml"
    not_a_template.write_text("metadata: {}\n")
    with pytest.raises(SubmissionError, match="not a checklist template"):
        read_template(not_a_template)


@pytest.mark.parametrize("text", ["metadata: [unclosed\n", "- a list\n"])
def test_a_product_file_that_is_no_mapping_is_one_error(tmp_path: Path, text: str) -> None:
    folder = tmp_path / "v1.37" / "acme"
    folder.mkdir(parents=True)
    (folder / "PRODUCT.yaml").write_text(text)
    assert findings(folder, make_template(tmp_path)) == [("error", "PRODUCT.yaml")]


# --- the command -------------------------------------------------------------------------------------------


def invoke(*args: str | Path) -> Any:
    return CliRunner().invoke(submission, ["lint", *map(str, args)])


def test_cli_lint_exit_codes_and_json(tmp_path: Path) -> None:
    template = make_template(tmp_path)
    clean = write_submission(tmp_path, good_product())
    result = invoke(clean, "--checklist", template)
    assert result.exit_code == 0, result.output
    assert "warning: template:" in result.output

    product = good_product()
    entry(product, "cluster_autoscaling").update(status="N/A", notes="On-premises: no autoscaler.")
    onprem = write_submission(tmp_path, product, "v1.37/onprem")
    assert invoke(onprem, "--checklist", template).exit_code == 0  # a warning only
    entry(product, "secure_accelerator_access").update(status="N/A", notes="No accelerators.")
    must_na = write_submission(tmp_path, product, "v1.37/no-gpus")
    result = invoke(must_na, "--checklist", template, "-o", "json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["errors"] == 1 and payload["warnings"] == 2
    levels = [(f["level"], f["field"]) for f in payload["findings"]]
    assert levels == [
        ("warning", "template"),
        ("warning", f"{AUTOSCALING}.status"),
        ("error", f"{SECURE}.status"),
    ]
    assert invoke(must_na, "--checklist", template, "--version", "v1.36").exit_code == 2


def test_allow_must_na_is_ignored_with_a_warning(tmp_path: Path) -> None:
    """It used to lint a MUST N/A as the warning a pending validator change would print; that change landed
    for cluster_autoscaling alone, so the flag can only have loosened lint below the validator: ignoring it
    never passes what CI rejects, and scripts that still pass it keep running."""
    product = good_product()
    entry(product, "secure_accelerator_access").update(status="N/A", notes="No accelerators.")
    folder, template = write_submission(tmp_path, product), make_template(tmp_path)
    result = invoke(folder, "--checklist", template, "--allow-must-na")
    assert result.exit_code == 1
    assert result.stderr.startswith("kaic: warning: --allow-must-na: ignored and to be removed;")
    assert f"error: {SECURE}.status: N/A on a MUST is rejected" in result.stdout
    assert "--allow-must-na" not in invoke("--help").output


def test_cli_lint_without_checklist_says_what_it_skipped(tmp_path: Path) -> None:
    """The profile stands in for the template: ids and levels are checked, descriptions are not."""
    product = good_product()
    entry(product, "secure_accelerator_access")["description"] = "Edited."
    folder = write_submission(tmp_path, product)
    result = invoke(folder)
    assert result.exit_code == 1  # the synthetic product lacks most of the v1.37 requirements
    assert result.stdout.startswith(
        "note: spec[*].description: not compared with the official wording (kaic keeps no copy of it; ids "
        "and levels are from its profile ai-v1.0): give --checklist AIConformance-1.37.yaml to check them "
        "verbatim\n"
    )
    assert "error: spec.accelerators (driver_runtime_management): requirement" in result.stdout
    assert f"{SECURE}.description" not in result.stdout


BAD_INPUT = [
    (
        ["{root}/nowhere"],
        "{root}/nowhere: no such file or folder; give a vX.Y/<dir>/ submission folder or its ",
    ),
    (
        ["{root}/v1.37/acme", "--checklist", "{root}/absent.yaml"],
        "{root}/absent.yaml: cannot read the checklist template (No such file or directory); give the ",
    ),
    (
        ["{root}/v1.37/acme", "--checklist", "{root}/templates"],
        "{root}/templates: cannot read the checklist template (Is a directory); give the official ",
    ),
    (
        ["{root}/v1.37/acme", "--checklist", "{root}/templates/AIConformance-1.36.yaml"],
        "{root}/templates/AIConformance-1.36.yaml: is the template for v1.36, but the submission is for ",
    ),
    (
        ["{root}/v1.37/acme", "--checklist", "{root}/templates/AIConformance-1.37.yaml", "--version", "x"],
        "--version: 'x' is not a checklist version; give one such as v1.37",
    ),
    (["{root}/v1.37/empty"], "{root}/v1.37/empty: no PRODUCT.yaml in this folder; give a vX.Y/<dir>/ "),
    (
        ["{root}/v1.38/acme"],
        "{root}/v1.38/acme/PRODUCT.yaml: kaic's profile ai-v1.0 has no checklist v1.38 (it ",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[m.split(":")[1] for _, m in BAD_INPUT])
def test_cli_lint_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    make_template(tmp_path)
    make_template(tmp_path, "1.36")
    write_submission(tmp_path, good_product())
    write_submission(tmp_path, good_product("1.38"), "v1.38/acme")
    (tmp_path / "v1.37" / "empty").mkdir()
    result = invoke(*(a.format(root=tmp_path) for a in args))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("kaic: error: " + message.format(root=tmp_path)), line
    assert "; " in line


def test_an_unreadable_file_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(The tests run as root, who reads every file: the refusal is simulated where the bytes are read.)"""
    folder, template = write_submission(tmp_path, good_product()), make_template(tmp_path)
    (folder / "e2e.log").write_text(E2E_LOG, encoding="utf-8")
    read_bytes = Path.read_bytes

    def refuse(path: Path, name: str) -> None:
        def guarded(self: Path) -> bytes:
            if self.name == name:
                raise PermissionError(13, "Permission denied", str(self))
            return read_bytes(self)

        monkeypatch.setattr(Path, "read_bytes", guarded)

    for name in ("PRODUCT.yaml", "e2e.log"):
        refuse(folder, name)
        result = invoke(folder, "--checklist", template)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"kaic: error: {folder / name}: cannot be read (Permission denied); ")


# --- online: only ever against a server on 127.0.0.1 ------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, str | None]]] = []
    codes: ClassVar[dict[str, int]] = {
        "/ok": 200,
        "/logo.svg": 200,
        "/missing": 404,
        "/busy": 429,
        "/moved": 301,
    }

    def do_HEAD(self) -> None:
        self.answer(405 if self.path == "/no-head" else self.codes.get(self.path, 500))

    def do_GET(self) -> None:
        self.answer(200 if self.path == "/no-head" else self.codes.get(self.path, 500))

    def answer(self, code: int) -> None:
        self.seen.append((self.command, self.path, self.headers.get("User-Agent")))
        self.send_response(code)
        if code == 301:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_reachability_is_head_then_get_with_the_validators_user_agent(server: str) -> None:
    assert unreachable(f"{server}/ok") is None
    assert unreachable(f"{server}/moved") is None
    assert unreachable(f"{server}/no-head") is None
    assert unreachable(f"{server}/missing") == "HTTP 404"
    assert "429" in str(unreachable(f"{server}/busy"))
    methods = [(method, path) for method, path, _ in _Handler.seen if path == "/no-head"]
    assert methods == [("HEAD", "/no-head"), ("GET", "/no-head")]
    assert {agent for *_, agent in _Handler.seen} == {USER_AGENT}


def test_a_refused_connection_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert unreachable(f"http://127.0.0.1:{port}/", timeout=5)


def test_online_lint_checks_metadata_and_evidence_urls(tmp_path: Path, server: str) -> None:
    product = good_product()
    urls = {
        "websiteUrl": "/ok",
        "repoUrl": "/moved",
        "documentationUrl": "/missing",
        "productLogoUrl": "/logo.svg",
    }
    product["metadata"].update({key: f"{server}{path}" for key, path in urls.items()})
    product["metadata"].pop("k8sConformanceUrl")  # it must name github.com, which a test never asks
    for req_id, path in (
        ("secure_accelerator_access", "/busy"),
        ("cluster_autoscaling", "/ok"),
        ("workload_sandboxing", "/busy"),
    ):
        entry(product, req_id)["evidence"] = [f"{server}{path}"]
    folder, template = write_submission(tmp_path, product), make_template(tmp_path)
    assert findings(folder, template) == [("error", "metadata.k8sConformanceUrl")]
    assert findings(folder, template, online=True) == [
        ("error", "metadata.k8sConformanceUrl"),
        ("error", "metadata.documentationUrl"),
        ("error", f"{SECURE}.evidence[0]"),
        ("error", f"{SANDBOX}.evidence[0]"),
    ]
    assert sum(path == "/busy" for _, path, _ in _Handler.seen) == 2  # HEAD and GET, once for both citations


def test_lint_imports_no_heavy_module(tmp_path: Path) -> None:
    """kubernetes, pytest and jsonschema stay unloaded: lint runs in a vendor's CI, not only beside a
    cluster."""
    folder, template = write_submission(tmp_path, good_product()), make_template(tmp_path)
    code = (
        "import sys\nfrom kaic.cli.submission import submission\n"
        f"try:\n    submission(['lint', {str(folder)!r}, '--checklist', {str(template)!r}])\n"
        "except SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('kubernetes', 'pytest', 'jsonschema') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
