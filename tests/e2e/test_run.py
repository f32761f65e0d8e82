"""`kaic run` end to end, in a subprocess, against the real local reference cluster.

Covers what only a real API server can show: discovery of the simulated GPU pools, preflight with a
restricted identity (RBAC examples applied for real), and interrupt/kill mid-probe leaving no labelled object.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
import yaml
from junitparser import JUnitXml

from kaic.kube import client as kube
from kaic.kube.labels import RUN_ID_LABEL
from kaic.results.run_dir import (
    BUNDLE_FILE,
    ENVELOPE_FILE,
    JUNIT_FILE,
    KAIC_JUNIT_FILE,
    REPORT_FILE,
    RESULTS_FILE,
    SIGNATURE_FILE,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "src/kaic/schemas/report.schema.json").read_text())


def kaic(*args: str, kubeconfig: Path | str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": "true", "KUBECONFIG": str(kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "kaic", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def report_of(out: Path) -> dict:
    report = json.loads((out / REPORT_FILE).read_text())
    jsonschema.validate(report, SCHEMA)
    return report


def labelled_leftovers(admin: kube.Cluster) -> list[str]:
    return [ns["metadata"]["name"] for ns in admin.list("/api/v1/namespaces", labelSelector=RUN_ID_LABEL)]


@pytest.fixture
def admin(local_cluster) -> kube.Cluster:
    return kube.connect(str(local_cluster.kubeconfig))


def test_quick_mode_discovers_the_simulated_gpu_pools(local_cluster, admin, tmp_path):
    out = tmp_path / "quick"
    proc = kaic("run", "--mode", "quick", "--output-dir", str(out), kubeconfig=local_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr
    report = report_of(out)
    assert report["run"]["complete"] is True and report["verdict"]["result"] is None
    assert report["checklist"]["chosen"] == "1.37" and report["checklist"]["detected"].startswith("1.37")
    assert report["cluster"]["uid"] == admin.get("/api/v1/namespaces/kube-system")["metadata"]["uid"]

    facts = report["facts"]
    assert facts["errors"] == {}
    assert facts["dra"]["version"] == "v1"
    driver = facts["resourceSlices"]["gpu.example.com"]
    assert driver["devices"] > 0 and {"uuid", "model", "index"} <= set(driver["attributes"])
    assert driver["pools"] and driver["incompletePools"] == {} and driver["staleSlices"] == 0
    assert all(pool["generation"] >= 1 and pool["staleSlices"] == 0 for pool in driver["pools"].values())
    slice_nodes = {n for pool in driver["pools"].values() for n in pool["nodes"]}
    plugin_nodes = {
        n["name"]
        for n in facts["nodes"]["withExtendedResources"]
        if "example.com/gpu" in n["extendedResources"]
    }
    assert plugin_nodes and slice_nodes and not plugin_nodes & slice_nodes  # never the same GPU both ways
    assert all(not n["runsContainers"] for n in facts["nodes"]["withExtendedResources"])  # kwok nodes

    for req in report["requirements"]:
        assert [p["outcome"] for p in req["probes"]] == ["passed"], req["id"]
        assert req["outcome"] == "unknown"  # discovery alone decides nothing
    suites = JUnitXml.fromfile(str(out / JUNIT_FILE))
    assert sum(s.tests for s in suites) == 1 + len(report["requirements"])  # TestKaicDiscovery + subtests
    events = [json.loads(line) for line in (out / RESULTS_FILE).read_text().splitlines()]
    assert events[-1]["Action"] == "pass" and "Test" not in events[-1]
    assert labelled_leftovers(admin) == []


def test_signed_at_run_time_and_verified(local_cluster, tmp_path):
    env_key = {"KAIC_KEY_PASSWORD": "e2e-passphrase"}
    os.environ.update(env_key)
    try:
        assert (
            kaic("keys", "generate", str(tmp_path / "kaic"), kubeconfig=local_cluster.kubeconfig).returncode
            == 0
        )
        out = tmp_path / "signed"
        proc = kaic(
            "run",
            "--mode",
            "quick",
            "-d",
            str(out),
            "--sign-key",
            str(tmp_path / "kaic.key"),
            kubeconfig=local_cluster.kubeconfig,
        )
        assert proc.returncode == 0, proc.stderr
        assert {ENVELOPE_FILE, BUNDLE_FILE, SIGNATURE_FILE} <= {p.name for p in out.iterdir()}
        verified = kaic(
            "verify", str(out), "--key", str(tmp_path / "kaic.pub"), kubeconfig=local_cluster.kubeconfig
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        for name in env_key:
            os.environ.pop(name)


def test_default_mode_verdict_follows_the_musts(local_cluster, tmp_path):
    out = tmp_path / "default"
    proc = kaic("run", "--output-dir", str(out), kubeconfig=local_cluster.kubeconfig)
    report = report_of(out)
    assert proc.returncode == report["verdict"]["exitCode"]
    musts = {r["outcome"] for r in report["requirements"] if r["level"] == "MUST"}
    if "failed" in musts:
        assert proc.returncode == 1
    elif "error" in musts:
        assert proc.returncode == 3
    elif "unknown" in musts:
        assert proc.returncode == 4
    else:
        assert proc.returncode == 0


def test_focused_runs_are_partial_and_the_gate_refuses_a_must_the_new_one_left_out(local_cluster, tmp_path):
    """dra_support passes and cluster_autoscaling is not-applicable on the conformant scenario (1.35): each
    run leaves MUSTs out, so neither says conformant; NEW leaving out a MUST that OLD justified closes the
    gate."""
    old, new = tmp_path / "old", tmp_path / "new"
    for out, focus in ((old, "dra_support,cluster_autoscaling"), (new, "dra_support")):
        proc = kaic(
            "run",
            "--focus",
            focus,
            "--kubernetes-version",
            "1.35",
            "-d",
            str(out),
            kubeconfig=local_cluster.kubeconfig,
        )
        assert proc.returncode == 4, proc.stderr
        report = report_of(out)
        assert (
            report["verdict"]["result"] == "partial" and "gang_scheduling" in report["verdict"]["mustsNotRun"]
        )
        (suite,) = JUnitXml.fromfile(str(out / KAIC_JUNIT_FILE))
        excluded = {c.name for c in suite if c.classname == "kaic.run"}
        assert "excluded: gang_scheduling" in excluded and suite.skipped >= len(excluded)
    gate = kaic("diff", str(old), str(new), "-o", "json", kubeconfig=local_cluster.kubeconfig)
    assert gate.returncode == 1, gate.stderr
    reasons = json.loads(gate.stdout)["gate"]["reasons"]
    assert [(r["rule"], r["requirement"]) for r in reasons] == [("excluded", "cluster_autoscaling")]
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n  - {requirement: cluster_autoscaling, reason: r, owner: o, expires: 2999-01-01}\n"
    )
    waived = kaic("diff", str(old), str(new), "--waivers", str(waivers), kubeconfig=local_cluster.kubeconfig)
    assert waived.returncode == 0, waived.stdout + waived.stderr


def _restricted_kubeconfig(
    admin: kube.Cluster, local_cluster, tmp_path: Path, role_file: str, drop: str
) -> Path:
    """A ServiceAccount bound to examples/rbac/<role_file> (minus the rule for `drop`), as a token
    kubeconfig."""
    suffix = f"{os.getpid()}-{drop or 'full'}".replace("/", "-").replace(".", "-")
    ns = admin.create("/api/v1/namespaces", {"metadata": {"generateName": "kaic-e2e-rbac-"}})["metadata"][
        "name"
    ]
    admin.create(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "kaic"}})
    role = yaml.safe_load((ROOT / "examples/rbac" / role_file).read_text())
    role["metadata"]["name"] = f"kaic-e2e-{suffix}"
    role["rules"] = [r for r in role["rules"] if r["resources"] != [drop]]
    admin.create("/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
    admin.create(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": f"kaic-e2e-{suffix}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role["metadata"]["name"],
            },
            "subjects": [{"kind": "ServiceAccount", "name": "kaic", "namespace": ns}],
        },
    )
    token = admin.create(
        f"/api/v1/namespaces/{ns}/serviceaccounts/kaic/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )["status"]["token"]
    config = yaml.safe_load(Path(local_cluster.kubeconfig).read_text())
    config["users"] = [{"name": "kaic-restricted", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "kaic-restricted"
    path = tmp_path / f"kubeconfig-{suffix}"
    path.write_text(yaml.safe_dump(config))
    return path


def test_preflight_with_a_restricted_identity(local_cluster, admin, tmp_path):
    """The shipped quick-mode ClusterRole is enough; without one of its rules preflight names what is
    missing."""
    enough = _restricted_kubeconfig(admin, local_cluster, tmp_path, "kaic-quick.yaml", drop="")
    proc = kaic("run", "--mode", "quick", "--output-dir", str(tmp_path / "ok"), kubeconfig=enough)
    assert proc.returncode == 0, proc.stderr

    short = _restricted_kubeconfig(admin, local_cluster, tmp_path, "kaic-quick.yaml", drop="nodes")
    out = tmp_path / "refused"
    proc = kaic("run", "--mode", "quick", "--output-dir", str(out), kubeconfig=short)
    assert proc.returncode == 3, proc.stderr
    report = report_of(out)
    assert report["run"]["preflight"]["missing"] == ["list core/nodes"]
    assert "missing permissions: list core/nodes" in report["run"]["incompleteReason"]
    assert report["requirements"] and all(not r["probes"] for r in report["requirements"])
    (suite,) = JUnitXml.fromfile(str(out / KAIC_JUNIT_FILE))  # never all zeros for a run that did not finish
    assert (suite.tests, suite.errors) == (1, 1)


SLOW_PROBE = '''
import time
from kaic.probe import Rule, probe

@probe("held_namespace", "hold", test="TestKaicHeld/Hold", creates=("configmaps",),
       rbac=(Rule("", "configmaps", ("create",)),), timeout_s=300)
def test_hold(cluster, namespace, run):
    """Creates a labelled object, says so, then waits to be interrupted."""
    cluster.create(f"/api/v1/namespaces/{namespace}/configmaps",
                   {"metadata": {"name": "held", "labels": run.labels}})
    (run.out_dir / "probe-holding").write_text(namespace)
    time.sleep(240)
'''


def _held_profile(tmp_path: Path) -> tuple[Path, Path]:
    """An in-house profile with one MUST whose probe holds a labelled namespace until interrupted."""
    base = yaml.safe_load((ROOT / "profiles/ai-v1.0.yaml").read_text())
    base.update(id="inhouse-held", version="0.0.1", description="A probe that holds a namespace (e2e test).")
    base["requirements"] = [
        {
            "id": "held_namespace",
            "category": "testing",
            "levels": dict.fromkeys(base["checklists"], "MUST"),
            "summary": "Holds a labelled namespace so interruption and cleanup can be observed.",
            "probes": ["held_namespace.hold"],
            "outcomes": {"unknown": "never", "failed": "never"},
        }
    ]
    probes = tmp_path / "probes"
    probes.mkdir()
    (probes / "test_held.py").write_text(SLOW_PROBE)
    profile = tmp_path / "inhouse.yaml"
    profile.write_text(yaml.safe_dump(base, sort_keys=False))
    return profile, probes


# Run the rest of the command line with SIGINT ignored, as `&` in a script or nohup starts a command.
IGNORE_THEN_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
IGNORING_SIGINT = ("-c", IGNORE_THEN_EXEC)


def _start_held_run(
    local_cluster, tmp_path: Path, out: Path, ignoring_sigint: bool = False
) -> subprocess.Popen[str]:
    profile, probes = _held_profile(tmp_path)
    env = {**os.environ, "CI": "true", "KUBECONFIG": str(local_cluster.kubeconfig)}
    proc = subprocess.Popen(
        [
            sys.executable,
            *(IGNORING_SIGINT if ignoring_sigint else ()),
            "-m",
            "kaic",
            "run",
            "--profile",
            str(profile),
            "--probe-dir",
            str(probes),
            "--output-dir",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not (out / "probe-holding").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the probe never started"
        time.sleep(0.2)
    return proc


@pytest.mark.parametrize("ignoring_sigint", [False, True], ids=["default", "ignored-by-parent"])
def test_sigint_mid_probe_cleans_up_and_keeps_an_incomplete_report(
    local_cluster, admin, tmp_path, ignoring_sigint
):
    """Also when started with SIGINT ignored (by `&` in a script, or nohup): the run still stops on it."""
    out = tmp_path / "interrupted"
    proc = _start_held_run(local_cluster, tmp_path, out, ignoring_sigint)
    held = (out / "probe-holding").read_text()
    assert admin.get_or_none(f"/api/v1/namespaces/{held}") is not None
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 3, stderr
    report = report_of(out)
    assert report["run"]["complete"] is False and report["run"]["incompleteReason"] == "interrupted"
    assert (
        f"namespaces/{held}" in report["run"]["cleanup"]["deleted"] or not report["run"]["cleanup"]["error"]
    )
    assert labelled_leftovers(admin) == []


def test_sigkill_leaves_a_valid_report_and_kaic_cleanup_removes_the_rest(local_cluster, admin, tmp_path):
    out = tmp_path / "killed"
    proc = _start_held_run(local_cluster, tmp_path, out)
    held = (out / "probe-holding").read_text()
    proc.kill()
    proc.communicate(timeout=30)
    report = report_of(out)
    assert report["run"]["complete"] is False and report["run"]["incompleteReason"] == "run in progress"
    assert labelled_leftovers(admin) == [held]
    cleanup = kaic("cleanup", "--run-id", report["run"]["id"], kubeconfig=local_cluster.kubeconfig)
    assert cleanup.returncode == 0, cleanup.stderr
    assert f"deleted namespaces/{held}" in cleanup.stdout
    assert labelled_leftovers(admin) == []


def test_run_timeout_stops_the_run_cleans_up_and_says_so(local_cluster, admin, tmp_path):
    profile, probes = _held_profile(tmp_path)
    out = tmp_path / "timed-out"
    proc = kaic(
        "run",
        "--profile",
        str(profile),
        "--probe-dir",
        str(probes),
        "--output-dir",
        str(out),
        "--timeout",
        "20s",
        kubeconfig=local_cluster.kubeconfig,
    )
    assert proc.returncode == 3, proc.stderr
    report = report_of(out)
    assert report["run"]["complete"] is False and report["run"]["incompleteReason"] == "run timeout"
    started, finished = (datetime.fromisoformat(report["run"][k]) for k in ("startedAt", "finishedAt"))
    assert (finished - started).total_seconds() < 120  # the probe sleeps 240 s: the timeout cut it short
    assert labelled_leftovers(admin) == []
