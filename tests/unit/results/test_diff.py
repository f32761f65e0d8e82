"""kaic diff: requirement and probe changes, watched facts, warnings, the gate's exit code and JSON shape."""

import json
import subprocess
import sys
from datetime import date

import pytest
from click.testing import CliRunner

from kaic.cli.diff import diff as diff_command
from kaic.results.diff import RANK, classify, diff
from kaic.results.outcomes import Outcome
from kaic.results.run_dir import REPORT_FILE

TODAY = date(2026, 9, 20)
NEGATIVE = "secure_accelerator_access.negative-isolation"


def gpu_facts(*nodes: str, devices: int = 8, dra: str = "v1") -> dict:
    return {
        "nodes": {
            "total": 4,
            "ready": 4,
            "withExtendedResources": [
                {"name": n, "extendedResources": {"nvidia.com/gpu": "8"}} for n in nodes
            ],
        },
        "dra": {"servedVersions": [dra], "version": dra},
        "resourceSlices": {"gpu.nvidia.com": {"pools": {"gpu-1": {"devices": devices, "nodes": ["gpu-1"]}}}},
        "gatewayClasses": [{"name": "istio", "controllerName": "istio.io/gateway-controller"}],
        "runtimeClasses": [{"name": "nvidia", "handler": "nvidia"}],
    }


@pytest.fixture
def pair(run_pair):
    """The sample runs on a cluster with two GPU nodes."""
    run_pair.old.facts, run_pair.new.facts = gpu_facts("gpu-1", "gpu-2"), gpu_facts("gpu-1", "gpu-2")
    return run_pair


def change_of(result, req_id):
    return next(r for r in result.requirements if r.id == req_id)


def test_outcome_rank_follows_the_verdict_and_classifies_every_move():
    assert [o for o in sorted(Outcome, key=RANK.get, reverse=True)] == [
        Outcome.PASSED,
        Outcome.NOT_APPLICABLE,
        Outcome.UNKNOWN,
        Outcome.ERROR,
        Outcome.FAILED,
    ]
    assert classify(Outcome.PASSED, Outcome.UNKNOWN) == "regression"
    assert classify(Outcome.NOT_APPLICABLE, Outcome.FAILED) == "regression"
    assert classify(Outcome.UNKNOWN, Outcome.ERROR) == "regression"
    assert classify(Outcome.FAILED, Outcome.ERROR) == "fix"
    assert classify(Outcome.PASSED, Outcome.NOT_APPLICABLE) == "changed"
    assert classify(Outcome.ERROR, Outcome.ERROR) == "unchanged"
    assert (classify(None, Outcome.PASSED), classify(Outcome.PASSED, None)) == ("new", "removed")


def test_identical_runs_pass_with_nothing_to_say(pair):
    result = diff(pair.old, pair.new, [], TODAY)
    assert {r.change for r in result.requirements} == {"unchanged"}
    assert (result.facts, result.warnings, result.exit_code) == ([], [], 0)


def test_must_regression_fails_the_gate_and_is_listed_first_in_red(pair):
    pair.set(pair.new, NEGATIVE, "failed", "a pod without a claim sees /dev/nvidia0")
    result = diff(pair.old, pair.new, [], TODAY)
    first = result.requirements[0]
    assert (first.id, first.change, first.blocking) == ("secure_accelerator_access", "regression", True)
    assert [(p.name, p.change, p.old, p.new) for p in first.probes] == [
        (NEGATIVE, "regression", "passed", "failed")
    ]
    cli = pair.diff()
    assert cli.exit_code == 1, cli.output
    rows = [line for line in cli.output.splitlines() if line.startswith("│ ")]
    assert rows[0].startswith("│ regression │ secure_accelerator_access ")
    assert (
        "blocks the gate (rule failed): secure_accelerator_access.negative-isolation: a pod without a claim"
        in cli.output
    )
    assert (
        "rule failed: secure_accelerator_access: MUST in NEW's checklist, passed in OLD, failed in NEW: "
        "secure_accelerator_access.negative-isolation: a pod without a claim sees /dev/nvidia0"
    ) in cli.output
    assert "gate: FAILED, MUST regression without a valid waiver: secure_accelerator_access" in cli.output


def test_red_is_what_a_terminal_sees_for_a_regression(pair):
    pair.set(pair.new, NEGATIVE, "failed", "broken")
    cli = CliRunner().invoke(
        diff_command,
        [str(folder) for folder in pair.save()],
        env={"FORCE_COLOR": "1", "NO_COLOR": None, "COLUMNS": "200"},
    )
    assert "\x1b[1;31mregression" in cli.output


def test_should_regression_is_listed_and_does_not_fail_the_gate(pair):
    pair.set(pair.new, "driver_runtime_management.versions", "failed", "driver 550 with runtime 1.17")
    change = change_of(diff(pair.old, pair.new, [], TODAY), "driver_runtime_management")
    assert (change.change, change.level, change.blocking) == ("regression", "SHOULD", False)
    cli = pair.diff()
    assert cli.exit_code == 0, cli.output
    assert "driver_runtime_management" in cli.output
    assert "gate: passed, 1 regression(s) but none of an unwaived MUST (0 waived)" in cli.output


def test_fix_and_passed_to_not_applicable_do_not_block(pair):
    pair.set(pair.new, "ai_service_metrics.scrape", "passed")
    for probe in ("secure_accelerator_access.positive-access", NEGATIVE):
        pair.set(pair.new, probe, "not-applicable", "no accelerator node")
    result = diff(pair.old, pair.new, [], TODAY)
    assert change_of(result, "ai_service_metrics").change == "fix"
    assert change_of(result, "secure_accelerator_access").change == "changed"
    assert result.exit_code == 0


def test_new_and_removed_requirements(pair):
    """A requirement NEW's checklist no longer has is removed; one OLD's checklist did not have is new."""
    pair.old.requirements = [r for r in pair.old.requirements if r.id != "gang_scheduling"]
    pair.new.requirements = [r for r in pair.new.requirements if r.id != "dra_support"]
    pair.record_levels(pair.new)
    result = diff(pair.old, pair.new, [], TODAY)
    added, removed = change_of(result, "gang_scheduling"), change_of(result, "dra_support")
    assert (added.change, added.old, added.new, added.old_level) == ("new", None, "unknown", None)
    assert (added.old_state, added.new_state) == (None, "not-run")
    assert (removed.change, removed.old, removed.new, removed.new_level) == ("removed", "unknown", None, None)
    assert result.exit_code == 0


def test_level_change_is_reported_and_a_regression_blocks_at_the_new_level(pair):
    pair.new.requirement("driver_runtime_management").level = "MUST"
    result = diff(pair.old, pair.new, [], TODAY)
    assert result.to_json()["levelChanges"] == [
        {"id": "driver_runtime_management", "old": "SHOULD", "new": "MUST"}
    ]
    assert result.exit_code == 0
    assert "SHOULD → MUST" in pair.diff().output
    pair.set(pair.new, "driver_runtime_management.versions", "failed", "driver too old")
    assert [r.id for r in diff(pair.old, pair.new, [], TODAY).blocking] == ["driver_runtime_management"]


def test_probe_added_and_removed_inside_a_requirement(pair):
    req = pair.new.requirement("secure_accelerator_access")
    req.probes = [p for p in req.probes if p.name != "secure_accelerator_access.multi-container"]
    change = change_of(diff(pair.old, pair.new, [], TODAY), "secure_accelerator_access")
    assert change.change == "unchanged"
    assert [(p.name, p.change) for p in change.probes] == [
        ("secure_accelerator_access.multi-container", "removed")
    ]


def test_a_gpu_node_gone_and_other_watched_facts(pair):
    pair.new.facts = gpu_facts("gpu-1", devices=4, dra="v1beta2")
    pair.new.facts["runtimeClasses"] = []
    pair.old.cluster["serverVersion"] = "v1.35.2"  # the server's gitVersion, as the report schema says
    pair.new.cluster["serverVersion"] = "v1.36.0"
    facts = {f.fact: f for f in diff(pair.old, pair.new, [], TODAY).facts}
    assert set(facts) == {"kubernetesVersion", "draVersion", "acceleratorNodes", "draPools", "runtimeClasses"}
    assert (facts["kubernetesVersion"].old, facts["kubernetesVersion"].new) == ("v1.35.2", "v1.36.0")
    assert facts["acceleratorNodes"].removed == {"gpu-2": {"nvidia.com/gpu": "8"}}
    assert facts["draPools"].changed == {
        "gpu.nvidia.com/gpu-1": {
            "old": {"devices": 8, "nodes": ["gpu-1"]},
            "new": {"devices": 4, "nodes": ["gpu-1"]},
        }
    }
    assert facts["runtimeClasses"].removed == {"nvidia": "nvidia"}
    cli = pair.diff("--waivers", str(_no_waivers(pair.root)))
    assert cli.exit_code == 0, cli.output
    assert "- gpu-2: nvidia.com/gpu=8 (gone)" in cli.output
    assert "v1.35.2 → v1.36.0" in cli.output
    assert "~ gpu.nvidia.com/gpu-1: devices=8, nodes=[gpu-1] → devices=4, nodes=[gpu-1]" in cli.output


def _no_waivers(folder):
    path = folder / "waivers.yaml"
    path.write_text("waivers: []\n")
    return path


def test_unreadable_facts_show_as_a_change_to_nothing(pair):
    pair.new.facts = {"errors": {"nodes": "403 Forbidden"}, "nodes": None}
    facts = {f.fact: f for f in diff(pair.old, pair.new, [], TODAY).facts}
    assert facts["acceleratorNodes"].new is None
    assert facts["acceleratorNodes"].changed is None  # no key-by-key comparison against nothing


def test_different_checklists_profiles_modes_and_clusters_warn(pair):
    pair.new.checklist |= {"chosen": "1.36", "sha256": "2" * 64}
    pair.new.profile |= {"version": "1.1.0", "sha256": "3" * 64}
    pair.new.run["mode"] = "certified"
    pair.new.run["skip"] = ["gang_scheduling"]
    pair.old.cluster["uid"], pair.new.cluster["uid"] = "uid-a", "uid-b"
    result = diff(pair.old, pair.new, [], TODAY)
    assert result.warnings == [
        "the runs used different profiles: profile ai-v1.0 1.0.0 in OLD, ai-v1.0 1.1.0 in NEW",
        f"the profile file changed between the runs: profile sha256 {'0' * 64} in OLD, {'3' * 64} in NEW",
        (
            "the runs judged different checklists, so requirements are compared by id and gated at NEW's "
            "levels: checklist 1.35 in OLD, 1.36 in NEW"
        ),
        "the runs used different modes: mode non-disruptive in OLD, certified in NEW",
        "the runs selected differently: --skip [] in OLD, ['gang_scheduling'] in NEW",
        "the runs are of different clusters: cluster uid uid-a in OLD, uid-b in NEW",
    ]
    assert {f.fact for f in result.facts} >= {
        "checklistVersion",
        "checklistDigest",
        "profile",
        "profileDigest",
    }
    cli = pair.diff()
    assert "warning: the runs judged different checklists" in cli.output


def test_json_shape_is_stable_and_documented(pair):
    pair.set(pair.new, NEGATIVE, "failed", "broken")
    pair.new.facts = gpu_facts("gpu-1")
    cli = pair.diff("-o", "json")
    assert cli.exit_code == 1
    doc = json.loads(cli.stdout)
    assert list(doc) == [
        "schema",
        "old",
        "new",
        "gate",
        "counts",
        "requirements",
        "levelChanges",
        "facts",
        "waivers",
        "warnings",
    ]
    assert doc["schema"] == "kaic.dev/diff/v1"
    assert doc["gate"] == {
        "passed": False,
        "exitCode": 1,
        "blocking": ["secure_accelerator_access"],
        "reasons": [
            {
                "rule": "failed",
                "requirement": "secure_accelerator_access",
                "text": f"MUST in NEW's checklist, passed in OLD, failed in NEW: {NEGATIVE}: broken",
            }
        ],
    }
    assert doc["counts"] == {
        "regression": 1,
        "fix": 0,
        "changed": 0,
        "new": 0,
        "removed": 0,
        "unchanged": 5,
        "waived": 0,
    }
    assert list(doc["old"]) == [
        "runId",
        "mode",
        "complete",
        "profile",
        "checklist",
        "kubernetesVersion",
        "clusterUid",
        "verdict",
        "incompleteReason",
        "excluded",
        "rerunOf",
    ]
    first = doc["requirements"][0]
    assert first == {
        "id": "secure_accelerator_access",
        "change": "regression",
        "blocking": True,
        "rule": "failed",
        "level": {"old": "MUST", "new": "MUST"},
        "outcome": {"old": "passed", "new": "failed"},
        "state": {"old": "passed", "new": "failed"},
        "reason": f"{NEGATIVE}: broken",
        "waivedBy": [],
        "notes": [],
        "probes": [{"name": NEGATIVE, "change": "regression", "outcome": {"old": "passed", "new": "failed"}}],
    }
    assert doc["facts"] == [
        {
            "fact": "acceleratorNodes",
            "old": {"gpu-1": {"nvidia.com/gpu": "8"}, "gpu-2": {"nvidia.com/gpu": "8"}},
            "new": {"gpu-1": {"nvidia.com/gpu": "8"}},
            "added": {},
            "removed": {"gpu-2": {"nvidia.com/gpu": "8"}},
            "changed": {},
        }
    ]
    assert doc["waivers"] == {"applied": [], "expired": [], "unused": []}


@pytest.mark.parametrize("content", [None, "not json", '{"run": {}}'])
def test_unreadable_report_is_a_usage_error(pair, content):
    broken = pair.root / "broken" / REPORT_FILE
    if content is not None:
        broken.parent.mkdir()
        broken.write_text(content)
    cli = CliRunner().invoke(diff_command, [str(pair.save()[0]), str(broken)])
    assert cli.exit_code == 2
    assert f"kaic: error: {broken}: " in cli.output
    assert "expected a kaic result folder or its report.json" in cli.output


def test_report_json_file_paths_work_like_folders(pair):
    before, after = pair.save()
    cli = CliRunner().invoke(diff_command, [str(before / REPORT_FILE), str(after)])
    assert cli.exit_code == 0, cli.output
    assert "gate: passed, nothing regressed" in cli.output


def test_the_command_imports_no_heavy_module(pair):
    """Registering it costs nothing; a JSON diff loads neither rich nor the cluster or test machinery
    (jsonschema it does: every report is checked against the report schema before use)."""
    a, b = pair.save()
    code = (
        "import sys\nfrom kaic.cli.diff import diff\n"
        "early = sorted(m for m in ('rich', 'kaic.results.report', 'kaic.results.waivers') "
        "if m in sys.modules)\n"
        f"try:\n    diff([{str(a)!r}, {str(b)!r}, '-o', 'json'])\nexcept SystemExit:\n    pass\n"
        "late = sorted(m for m in ('rich', 'kubernetes', 'pytest') if m in sys.modules)\n"
        "print('HEAVY', early, late, file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert "HEAVY [] []" in proc.stderr, proc.stderr
