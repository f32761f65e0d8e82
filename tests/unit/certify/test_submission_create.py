"""kaic submission create: a certified run filled into the official templates, linted, and every refusal."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from acme import PRODUCT
from click.testing import CliRunner

from kaic.certify.submission import SubmissionError
from kaic.certify.submission.create import create
from kaic.certify.submission.lint import lint
from kaic.cli.submission import submission
from kaic.profile import load_profile
from kaic.results.outcomes import TABLE
from kaic.results.report import ProbeResult, Report, RequirementResult, save
from kaic.results.run_dir import E2E_LOG_FILE
from kaic.results.writers import write_all

CHECKLISTS = Path(__file__).resolve().parents[4] / "shared" / "reference" / "checklists"
TEMPLATE = CHECKLISTS / "AIConformance-1.37.yaml"
pytestmark = pytest.mark.skipif(
    not TEMPLATE.is_file(), reason=f"the official checklists are not at {CHECKLISTS}"
)

ARTIFACTS = ("junit.xml", "results.json", "e2e.log")
# The certified fixture run, requirement by requirement, as PRODUCT.yaml must say it.
STATUS = {
    "ai_inference": "Implemented",  # passed, under a kaic test name
    "robust_controller": "Implemented",  # passed, under the upstream test name
    "workload_sandboxing": "Partially Implemented",  # a SHOULD that failed with a probe passing
    "virtualized_accelerator": "Not Implemented",  # a SHOULD that failed outright
    "gpu_sharing": "N/A",
    "cluster_autoscaling": "N/A",  # a MUST
    "secure_accelerator_access": "Not Implemented",  # a MUST that failed with a probe passing
    "ai_service_metrics": "",  # errored
    "driver_runtime_management": "",  # unknown
    "gang_scheduling": "",  # in the run, never probed
}
EVIDENCE = {
    "ai_inference": ["file://junit.xml#TestKaicGatewayRouting", "file://results.json", "file://e2e.log"],
    "robust_controller": [
        "file://junit.xml#TestRobustCRDControllerOperation",
        "file://results.json",
        "file://e2e.log",
    ],
    "workload_sandboxing": ["file://junit.xml#TestWorkloadSandboxing/SchedulingAndExecution"],
    "gpu_sharing": ["file://junit.xml#TestKaicGpuSharing", "file://results.json", "file://e2e.log"],
    "cluster_autoscaling": [
        "file://junit.xml#TestAcceleratorClusterAutoscaling",
        "file://results.json",
        "file://e2e.log",
    ],
}
# What lint says of it: an error for every MUST that is not Implemented, except cluster_autoscaling, whose
# N/A with notes the validator accepts with a warning; nothing else (the three artifacts are of one run).
MUST_NOT_IMPLEMENTED = [
    "spec.schedulingOrchestration[0] (gang_scheduling).status",
    "spec.schedulingOrchestration[2] (pod_autoscaling).status",  # not in the run
    "spec.observability[0] (accelerator_metrics).status",  # not in the run
    "spec.observability[1] (ai_service_metrics).status",
    "spec.security[0] (secure_accelerator_access).status",
]
MUST_NA = "spec.schedulingOrchestration[1] (cluster_autoscaling).status"


def save_run(report: Report, folder: Path) -> Path:
    folder.mkdir(parents=True)
    save(report, folder)
    write_all(report, folder)
    return folder


def write_product(path: Path, **changes: Any) -> Path:
    product = {**PRODUCT, **changes}
    path.write_text(yaml.safe_dump({k: v for k, v in product.items() if v is not None}), encoding="utf-8")
    return path


def invoke_create(run: Path, product: Path, out: Path, template: Path = TEMPLATE) -> Any:
    args = ["create", run, "--checklist", template, "--product", product, "--out", out]
    return CliRunner().invoke(submission, [str(a) for a in args])


@pytest.fixture
def run_dir(tmp_path: Path, certified_report: Report) -> Path:
    return save_run(certified_report, tmp_path / "run")


@pytest.fixture
def product_file(tmp_path: Path) -> Path:
    return write_product(tmp_path / "product.yaml")


@pytest.fixture
def created(run_dir: Path, product_file: Path, tmp_path: Path) -> Path:
    return create(run_dir, TEMPLATE, product_file, tmp_path / "out")


def entries(folder: Path) -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((folder / "PRODUCT.yaml").read_text(encoding="utf-8"))
    return {e["id"]: e for items in doc["spec"].values() for e in items}


def test_the_folder_is_vX_Y_and_the_platform(created: Path, tmp_path: Path) -> None:
    assert created == tmp_path / "out" / "v1.37" / "acme-ai-platform"
    assert sorted(p.name for p in created.iterdir()) == sorted(["PRODUCT.yaml", "README.md", *ARTIFACTS])


def test_statuses_follow_the_outcome_table(created: Path, certified_report: Report) -> None:
    filled = entries(created)
    assert {i: e["status"] for i, e in filled.items() if i in STATUS} == STATUS
    assert {e["status"] for i, e in filled.items() if i not in STATUS} == {""}  # not in the run
    for req in certified_report.requirements:
        if req.outcome is not None and req.id in filled and req.id != "workload_sandboxing":
            assert filled[req.id]["status"] == TABLE[req.outcome].product_status, req.id


def test_evidence_cites_only_tests_whose_result_backs_the_status(created: Path) -> None:
    filled = entries(created)
    assert {i: e["evidence"] for i, e in filled.items() if e["evidence"]} == EVIDENCE
    cases = {case.get("name") for case in ET.parse(created / "junit.xml").iter("testcase")}
    fragments = [ref.partition("#")[2] for refs in EVIDENCE.values() for ref in refs if "#" in ref]
    assert fragments and set(fragments) <= cases


def test_notes_carry_the_reasons(created: Path) -> None:
    filled = entries(created)
    assert "no cluster autoscaler is installed" in filled["cluster_autoscaling"]["notes"]
    assert "partitions probe: not-applicable on purpose" in filled["gpu_sharing"]["notes"]
    assert "a pod without a claim sees /dev/nvidia0" in filled["secure_accelerator_access"]["notes"]
    assert "TestWorkloadSandboxing/SchedulingAndExecution passed" in filled["workload_sandboxing"]["notes"]
    for req_id in ("driver_runtime_management", "ai_service_metrics", "gang_scheduling", "pod_autoscaling"):
        assert filled[req_id]["notes"].startswith("Manual attestation needed"), req_id
    assert "unrecognised accelerator vendor" in filled["driver_runtime_management"]["notes"]
    assert (
        filled["ai_inference"]["notes"]
        == "Checked by kaic 0.1.0 in certified run r1: TestKaicGatewayRouting passed."
    )


def test_it_lints_with_exactly_the_musts_that_did_not_pass(created: Path) -> None:
    found = [(f.level, f.field) for f in lint(created, TEMPLATE)]
    errors = [("error", field) for field in MUST_NOT_IMPLEMENTED]
    assert found == [errors[0], ("warning", MUST_NA), *errors[1:]]


def test_the_templates_text_is_kept_and_only_values_are_filled(created: Path) -> None:
    template = TEMPLATE.read_text(encoding="utf-8").split("\n")
    written = (created / "PRODUCT.yaml").read_text(encoding="utf-8").split("\n")
    inserted = written.index(f'  k8sConformanceUrl: "{PRODUCT["k8sConformanceUrl"]}"')
    assert written[inserted - 1].startswith("  contactEmailAddress:")  # after the template's last field
    del written[inserted]
    assert len(written) == len(template) and written[-1] != ""  # 1.37 has no final newline, nor has its copy
    filled = {"status", "evidence", "notes", *PRODUCT, "repoUrl"}
    for mine, theirs in zip(written, template, strict=True):
        if mine != theirs:
            key = theirs.split(":")[0].strip()
            assert key in filled and mine.split(":")[0] == theirs.split(":")[0], (theirs, mine)
    official = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    doc = yaml.safe_load((created / "PRODUCT.yaml").read_text(encoding="utf-8"))
    assert list(doc["spec"]) == list(official["spec"])
    for category, items in official["spec"].items():
        for theirs, mine in zip(items, doc["spec"][category], strict=True):
            assert [mine[k] for k in ("id", "description", "level")] == [
                theirs[k] for k in ("id", "description", "level")
            ]
    assert doc["metadata"] == {"kubernetesVersion": "v1.37", "repoUrl": "", **PRODUCT}


def test_comments_beside_the_fields_survive(tmp_path: Path, certified_report: Report) -> None:
    certified_report.checklist.update(chosen="1.35", sha256=load_profile("ai-v1.0").checklists["1.35"])
    run = save_run(certified_report, tmp_path / "run")
    template = CHECKLISTS / "AIConformance-1.35.yaml"
    folder = create(run, template, write_product(tmp_path / "p.yaml"), tmp_path / "out")
    text = (folder / "PRODUCT.yaml").read_text(encoding="utf-8")
    assert (
        '      status: ""   # Implemented, Not Implemented, Partially Implemented, N/A' in text
    )  # dra_support
    assert "      evidence: [] # List of URLs or references to documentation/test results" in text
    notes = next(line for line in text.split("\n") if "Must provide a justification" in line)
    assert notes.startswith('      notes: "Manual attestation needed: kaic 0.1.0 could not decide')
    assert notes.endswith('."    # Must provide a justification when status is N/A')
    assert text.count("k8sConformanceUrl:") == 1  # the 1.35 template has the field: filled in place
    assert text.startswith("# Kubernetes AI Conformance Checklist\n")


def test_artifacts_are_copied_byte_for_byte(created: Path, run_dir: Path) -> None:
    for name in ARTIFACTS:
        assert (created / name).read_bytes() == (run_dir / name).read_bytes(), name


def test_the_readme_says_how_to_reproduce(created: Path, certified_report: Report) -> None:
    readme = (created / "README.md").read_text(encoding="utf-8")
    assert "kaic run --mode certified --profile ai-v1.0 --kubernetes-version 1.37" in readme
    assert "kaic submission lint v1.37/acme-ai-platform" in readme
    assert certified_report.profile["sha256"] in readme
    assert certified_report.checklist["sha256"] in readme  # the template's digest: the official one
    assert "| `workload_sandboxing` | SHOULD | Partially Implemented |" in readme
    assert "| `pod_autoscaling` | MUST | (to attest) |" in readme


def passing(report: Report) -> Report:
    """Every 1.37 requirement passed, under the upstream test name where there is one."""
    report.requirements = []
    for req, level in load_profile("ai-v1.0").for_version("1.37"):
        test = req.upstream_test or "TestKaic" + "".join(word.title() for word in req.id.split("_"))
        probe = ProbeResult(f"{req.id}.check", req.id, f"{test}/Check", "behavioural", "passed")  # type: ignore[arg-type]
        result = RequirementResult(
            req.id, req.category, level, upstream_test=req.upstream_test or "", probes=[probe]
        )
        result.settle()
        report.requirements.append(result)
    return report


def test_a_run_where_everything_passed_lints_clean_and_create_exits_0(
    tmp_path: Path, certified_report: Report, product_file: Path
) -> None:
    run = save_run(passing(certified_report), tmp_path / "run")
    result = invoke_create(run, product_file, tmp_path / "out")
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip())
    assert folder == tmp_path / "out" / "v1.37" / "acme-ai-platform"
    assert lint(folder, TEMPLATE) == []
    assert {e["status"] for e in entries(folder).values()} == {"Implemented"}


def test_a_pass_cites_only_the_tests_that_passed(
    tmp_path: Path, certified_report: Report, product_file: Path
) -> None:
    report = passing(certified_report)
    skipped = ProbeResult(
        "ai_inference.mesh",
        "ai_inference",
        "TestKaicMeshRouting/Istio",
        "behavioural",
        "not-applicable",
        "no mesh",  # type: ignore[arg-type]
    )
    report.requirement("ai_inference").probes.append(skipped)
    report.requirement("ai_inference").settle()
    folder = create(save_run(report, tmp_path / "run"), TEMPLATE, product_file, tmp_path / "out")
    assert entries(folder)["ai_inference"]["evidence"][0] == "file://junit.xml#TestKaicAiInference"
    assert lint(folder, TEMPLATE) == []


def test_cli_create_exits_1_when_the_result_has_lint_errors(
    run_dir: Path, product_file: Path, tmp_path: Path
) -> None:
    result = invoke_create(run_dir, product_file, tmp_path / "out")
    assert result.exit_code == 1
    assert result.stdout.strip() == str(tmp_path / "out" / "v1.37" / "acme-ai-platform")
    assert result.stderr.count("error: ") == len(MUST_NOT_IMPLEMENTED)


def test_the_directory_can_be_named(run_dir: Path, tmp_path: Path) -> None:
    folder = create(run_dir, TEMPLATE, write_product(tmp_path / "p.yaml", directory="acme"), tmp_path / "out")
    assert folder == tmp_path / "out" / "v1.37" / "acme"
    assert (
        "directory" not in yaml.safe_load((folder / "PRODUCT.yaml").read_text(encoding="utf-8"))["metadata"]
    )


# --- refusals ----------------------------------------------------------------------------------------------


def test_a_run_that_is_not_certified_is_refused(
    tmp_path: Path, sample_report: Report, product_file: Path
) -> None:
    run = save_run(sample_report, tmp_path / "run")
    with pytest.raises(
        SubmissionError, match="non-disruptive mode; a submission needs `kaic run --mode certified`"
    ):
        create(run, TEMPLATE, product_file, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_incomplete_run_is_refused(tmp_path: Path, certified_report: Report, product_file: Path) -> None:
    certified_report.run.update(complete=False, incompleteReason="run timeout")
    run = save_run(certified_report, tmp_path / "run")
    with pytest.raises(SubmissionError, match=r"incomplete \(run timeout\)"):
        create(run, TEMPLATE, product_file, tmp_path / "out")


def test_a_run_that_left_musts_out_is_refused(
    tmp_path: Path, certified_report: Report, product_file: Path
) -> None:
    certified_report.run["excluded"] = {"gang_scheduling": "--skip"}
    certified_report.requirements = [r for r in certified_report.requirements if r.id != "gang_scheduling"]
    run = save_run(certified_report, tmp_path / "run")
    with pytest.raises(SubmissionError, match=r"left out MUST requirements \(gang_scheduling\)"):
        create(run, TEMPLATE, product_file, tmp_path / "out")


def test_an_unknown_template_is_refused_naming_the_expected_one_unless_drift_is_accepted(
    tmp_path: Path, run_dir: Path, product_file: Path
) -> None:
    drifted = tmp_path / "AIConformance-1.37.yaml"
    drifted.write_text(
        TEMPLATE.read_text(encoding="utf-8").replace("makes they available", "makes them available")
    )
    expected = load_profile("ai-v1.0").checklists["1.37"]
    with pytest.raises(
        SubmissionError,
        match=f"not the official AIConformance-1.37.yaml kaic expects \\(sha256 {expected}\\)",
    ):
        create(run_dir, drifted, product_file, tmp_path / "out")
    folder = create(run_dir, drifted, product_file, tmp_path / "out", accept_drift=True)
    warnings = [f for f in lint(folder, drifted) if f.level == "warning"]
    assert [f.field for f in warnings] == ["template", MUST_NA]
    assert expected in warnings[0].message
    result = invoke_create(run_dir, product_file, tmp_path / "o2", drifted)
    assert result.exit_code == 2 and "AIConformance-1.37.yaml" in result.output


def test_a_template_for_another_version_is_refused(run_dir: Path, product_file: Path, tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="template for v1.36, but the run judged v1.37"):
        create(run_dir, CHECKLISTS / "AIConformance-1.36.yaml", product_file, tmp_path / "out")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vendorName": None}, "field 'vendorName' is missing or empty"),
        ({"k8sConformanceUrl": ""}, "field 'k8sConformanceUrl' is missing or empty"),
        ({"platformVersion": 2.1}, "field 'platformVersion' must be a string"),
        ({"vendor": "Acme"}, "unknown field 'vendor'"),
        ({"directory": "../up"}, "field 'directory' must be one folder name"),
    ],
)
def test_a_bad_product_file_exits_2_naming_file_and_field(
    run_dir: Path, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    product = write_product(tmp_path / "product.yaml", **changes)
    result = invoke_create(run_dir, product, tmp_path / "out")
    assert result.exit_code == 2
    assert f"{product}: {message}" in result.output
    assert not (tmp_path / "out").exists()


def test_other_bad_input_exits_2(run_dir: Path, product_file: Path, tmp_path: Path) -> None:
    def invoke(run: Path, out: Path) -> Any:
        return invoke_create(run, product_file, out)

    assert invoke(run_dir, tmp_path / "out").exit_code == 1
    again = invoke(run_dir, tmp_path / "out")
    assert again.exit_code == 2 and "exists and is not empty" in again.output
    assert invoke(tmp_path, tmp_path / "o2").exit_code == 2  # not a run folder
    (run_dir / E2E_LOG_FILE).unlink()
    lacking = invoke(run_dir, tmp_path / "o3")
    assert lacking.exit_code == 2 and "lacks e2e.log" in lacking.output
