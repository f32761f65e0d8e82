"""`kaic run --rerun-failed` end to end, in subprocesses, against the real local reference cluster.

A run of an in-house profile fails one MUST because the cluster lacks an object; the object is created (the
cluster is fixed) and `--rerun-failed` runs that probe alone, carries the other result over and judges the
merge conformant; sign, verify, diff and submission create accept the merged run. tests/unit/engine/
test_rerun.py covers the same without a cluster, case by case.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import kaic_cli
import pytest
import yaml
from acme import product_file

from kaic.kube import client as kube
from kaic.results.run_dir import ENVELOPE_FILE, PYTEST_LOG_FILE, REPORT_FILE, RUN_SETTINGS_FILE, SUMMARY_FILE

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT.parent / "shared" / "reference" / "checklists" / "AIConformance-1.37.yaml"
MARKER = "/api/v1/namespaces/default/configmaps/kaic-e2e-rerun-fixed"
PASSWORD = "e2e-rerun"

PROBES = f'''
from kaic.probe import Rule, probe

@probe("steady", "answers", test="TestKaicSteady/Answers", rbac=(Rule("", "namespaces", ("get",)),))
def test_answers(cluster):
    """Passes on any cluster: the API answers."""
    assert cluster.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"

@probe("fixable", "marker", test="TestKaicFixable/Marker", rbac=(Rule("", "configmaps", ("get",)),))
def test_marker(cluster):
    """Fails until the cluster holds the marker ConfigMap (the test "fixes" the cluster by creating it)."""
    assert cluster.get_or_none("{MARKER}") is not None, "the marker ConfigMap is missing"
'''


def kaic(*args: str | Path, kubeconfig: Path | str) -> subprocess.CompletedProcess[str]:
    return kaic_cli.kaic(
        *args, env={"KUBECONFIG": str(kubeconfig), "KAIC_KEY_PASSWORD": PASSWORD}, timeout=300
    )


def _profile(tmp_path: Path) -> tuple[Path, Path]:
    """An in-house profile of two MUSTs, `steady` and `fixable`, and the folder of their probes."""
    base = yaml.safe_load((ROOT / "profiles/ai-v1.0.yaml").read_text())
    base.update(id="inhouse-rerun", version="0.0.1", description="Two MUSTs, one fixable (rerun e2e test).")
    base["requirements"] = [
        {
            "id": name,
            "category": "testing",
            "levels": dict.fromkeys(base["checklists"], "MUST"),
            "summary": summary,
            "probes": [probe],
            "outcomes": {"unknown": "never", "failed": failed},
        }
        for name, probe, summary, failed in (
            ("steady", "steady.answers", "The API answers.", "never"),
            ("fixable", "fixable.marker", "The marker ConfigMap exists.", "when the marker is missing"),
        )
    ]
    probes = tmp_path / "probes"
    probes.mkdir()
    (probes / "test_rerun_probes.py").write_text(PROBES)
    profile = tmp_path / "inhouse-rerun.yaml"
    profile.write_text(yaml.safe_dump(base, sort_keys=False))
    return profile, probes


def test_rerun_failed_runs_only_the_failed_probe_after_the_fix_and_the_merge_is_signed_and_gated(
    local_cluster, tmp_path
):
    admin = kube.connect(str(local_cluster.kubeconfig))
    kc = local_cluster.kubeconfig
    if admin.get_or_none(MARKER) is not None:
        admin.delete(MARKER)
    profile, probes = _profile(tmp_path)
    source, merged = tmp_path / "source", tmp_path / "merged"
    try:
        proc = kaic(
            "run",
            "--profile",
            profile,
            "--probe-dir",
            probes,
            "--mode",
            "certified",
            "-d",
            source,
            kubeconfig=kc,
        )
        assert proc.returncode == 1, proc.stderr  # the fixable MUST failed
        before = json.loads((source / REPORT_FILE).read_text())
        outcomes = {p["name"]: p["outcome"] for r in before["requirements"] for p in r["probes"]}
        assert outcomes == {"steady.answers": "passed", "fixable.marker": "failed"}

        admin.create(
            "/api/v1/namespaces/default/configmaps", {"metadata": {"name": MARKER.rsplit("/", 1)[1]}}
        )  # the fix
        proc = kaic("run", "--rerun-failed", source, "-d", merged, kubeconfig=kc)  # options from the source
        assert proc.returncode == 0, proc.stderr
        after = json.loads((merged / REPORT_FILE).read_text())
        assert after["verdict"]["result"] == "conformant"
        assert after["run"]["rerunOf"]["runId"] == before["run"]["id"]
        assert after["run"]["rerunOf"]["probes"] == ["fixable.marker"]
        assert (after["run"]["mode"], after["profile"]["sha256"]) == (
            "certified",
            before["profile"]["sha256"],
        )
        probes_after = {p["name"]: p for r in after["requirements"] for p in r["probes"]}
        steady = next(p for r in before["requirements"] for p in r["probes"] if p["name"] == "steady.answers")
        assert probes_after["steady.answers"] == {**steady, "carriedFrom": before["run"]["id"]}
        assert probes_after["fixable.marker"]["outcome"] == "passed"
        assert "carriedFrom" not in probes_after["fixable.marker"]
        log = (merged / PYTEST_LOG_FILE).read_text()  # only the failed probe ran
        assert "test_marker" in log and "test_answers" not in log
        assert set(json.loads((merged / RUN_SETTINGS_FILE).read_text())["probes"]) == {"fixable.marker"}
        assert f"Rerun of:** run {before['run']['id']}" in (merged / SUMMARY_FILE).read_text()

        assert kaic("keys", "generate", tmp_path / "kaic", kubeconfig=kc).returncode == 0
        signed = kaic("sign", merged, "--key", tmp_path / "kaic.key", kubeconfig=kc)
        assert signed.returncode == 0, signed.stderr
        statement = json.loads(base64.b64decode(json.loads((merged / ENVELOPE_FILE).read_text())["payload"]))
        assert statement["predicate"]["rerunOf"]["runId"] == before["run"]["id"]
        assert (
            statement["predicate"]["rerunOf"]["digest"]["sha256"] == after["run"]["rerunOf"]["reportSha256"]
        )
        verified = kaic("verify", merged, "--key", tmp_path / "kaic.pub", kubeconfig=kc)
        assert verified.returncode == 0, verified.stdout + verified.stderr

        gate = kaic("diff", source, merged, "-o", "json", kubeconfig=kc)
        assert gate.returncode == 0, gate.stdout + gate.stderr
        changed = {
            p["name"]: p["change"]
            for r in json.loads(gate.stdout)["requirements"]
            for p in r["probes"]
            if p["change"] != "unchanged"
        }
        assert changed == {"fixable.marker": "fix"}

        if TEMPLATE.is_file():
            product = product_file(tmp_path / "product.yaml")
            created = kaic(
                "submission",
                "create",
                merged,
                "--checklist",
                TEMPLATE,
                "--product",
                product,
                "--out",
                tmp_path / "submission",
                kubeconfig=kc,
            )
            # 1: lint finds the official requirements this in-house profile never ran
            assert created.returncode in (0, 1), created.stderr
            readme = Path(created.stdout.strip()) / "README.md"
            assert f"| rerun of | run {before['run']['id']} " in readme.read_text()
    finally:
        if admin.get_or_none(MARKER) is not None:
            admin.delete(MARKER)
