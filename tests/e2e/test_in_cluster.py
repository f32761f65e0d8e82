"""`kaic run --in-cluster` end to end on the local cluster's real node, in subprocesses, as a user runs it.

The runner image is the one `make image` left in dist/ (the `load_runner_image` fixture). Runs judge
secure_accelerator_access, whose probes run containers holding DRA GPUs on the real node. Covered: the same
outcomes as a local run, results that verify after signing here, the runner's ServiceAccount refused what the
plan does not grant, a client killed mid-run, results retrieved later and then expired, `delete` leaving
nothing, and the bad-input contract of the run commands. The detached certified run a vendor submits is on the
reference cluster (tests/probes/test_reference_probes.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import kaic_cli
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from kaic.kube import client as kube
from kaic.kube.labels import RUNNER_LABEL
from kaic.results.run_dir import REPORT_FILE

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.scenario("real-node")]

FOCUS = ("--focus", "secure_accelerator_access")
PASSWORD = "e2e-in-cluster"


@pytest.fixture(scope="module")
def node_cluster(cluster_for, require_real_node, load_runner_image):
    """The real-node scenario's cluster with the runner image in its node's containerd."""
    require_real_node()
    cluster = cluster_for("real-node")
    load_runner_image(cluster)
    return cluster


@pytest.fixture
def kaic(node_cluster, tmp_path) -> Iterator:
    """`kaic(*args)`: the CLI in a subprocess with what `kaic cluster up` tells a user to export, and a state
    folder of its own (where the client remembers the runs it launched)."""
    env = {
        "KUBECONFIG": str(node_cluster.kubeconfig),
        "KAIC_CONFIG": str(node_cluster.config),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "KAIC_KEY_PASSWORD": PASSWORD,
    }

    def run(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return kaic_cli.kaic(*args, env=env, timeout=timeout)

    run.env = {**os.environ, **env}  # type: ignore[attr-defined]
    yield run


def outcomes(folder: Path) -> dict[str, str]:
    report = json.loads((folder / REPORT_FILE).read_text())
    return {p["name"]: p["outcome"] for r in report["requirements"] for p in r["probes"]}


def test_an_in_cluster_run_judges_as_a_local_run_and_its_results_verify_after_signing(
    kaic, node_cluster, tmp_path
):
    local = kaic("run", *FOCUS, "-d", tmp_path / "local")
    assert local.returncode in (0, 1, 4), local.stderr
    assert kaic("keys", "generate", tmp_path / "kaic").returncode == 0
    inside = kaic(
        "run",
        "--in-cluster",
        *FOCUS,
        "-d",
        tmp_path / "inside",
        "--sign-key",
        tmp_path / "kaic.key",
        "-o",
        "json",
    )
    assert inside.returncode == local.returncode, inside.stderr
    assert re.search(r"^\[  1/\d+\] start ", inside.stderr, re.MULTILINE)  # the runner's progress, followed
    assert outcomes(tmp_path / "inside") == outcomes(tmp_path / "local")
    report = json.loads((tmp_path / "inside" / REPORT_FILE).read_text())
    assert (
        report["cluster"]["context"] == "in-cluster"
    )  # judged from inside, with the runner's ServiceAccount
    verified = kaic("verify", tmp_path / "inside", "--key", tmp_path / "kaic.pub")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert kaic_cli.left_behind(node_cluster.kubeconfig, json.loads(inside.stdout)["run"]["id"]) == []


def test_the_runner_may_do_what_the_plan_grants_and_the_api_refuses_it_the_rest(kaic, node_cluster):
    launched = kaic("run", "--in-cluster", "--detach", *FOCUS, "-o", "json")
    assert launched.returncode == 0, launched.stderr
    run_id = json.loads(launched.stdout)["run"]
    admin = kube.connect(str(node_cluster.kubeconfig))
    try:
        minor = admin.get("/version")["minor"]
        role = yaml.safe_load(kaic("plan", *FOCUS, "--kubernetes-version", f"1.{minor}", "--rbac").stdout)
        bound = admin.get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/kaic-{run_id}-runner")
        assert bound["rules"] == role["rules"]  # exactly what `kaic plan --rbac` prints, nothing more
        subject = {"kind": "ServiceAccount", "name": "kaic-runner", "namespace": f"kaic-{run_id}"}
        grants = [
            f"{kind}/{b['metadata']['name']}->{b['roleRef']['name']}"
            for kind in ("ClusterRoleBinding", "RoleBinding")
            for b in admin.list(f"/apis/rbac.authorization.k8s.io/v1/{kind.lower()}s")
            if subject in (b.get("subjects") or [])
        ]
        assert sorted(grants) == sorted(
            [
                f"ClusterRoleBinding/kaic-{run_id}-runner->kaic-{run_id}-runner",
                "RoleBinding/kaic-runner-results->kaic-runner-results",
            ]
        )
        runner = kube.connect(str(node_cluster.kubeconfig))
        runner.api.set_default_header("Impersonate-User", f"system:serviceaccount:kaic-{run_id}:kaic-runner")
        for rule in role["rules"]:
            if "list" in rule["verbs"] and rule["apiGroups"] == [""] and rule["resources"] == ["nodes"]:
                assert runner.get("/api/v1/nodes", limit=1)["items"]  # granted: answered
        refused = {
            "list secrets": "/api/v1/secrets",
            "read configmaps of kube-system": "/api/v1/namespaces/kube-system/configmaps",
        }
        for what, path in refused.items():
            with pytest.raises(ApiException) as caught:
                runner.get(path)
            assert caught.value.status == 403, what
        with pytest.raises(ApiException) as caught:
            runner.create(
                "/api/v1/namespaces/kube-system/configmaps", {"metadata": {"name": "kaic-not-allowed"}}
            )
        assert caught.value.status == 403
        user = f"system:serviceaccount:kaic-{run_id}:kaic-runner"
        for rule in role["rules"]:
            for verb in rule["verbs"]:
                review = admin.create(
                    "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                    {
                        "apiVersion": "authorization.k8s.io/v1",
                        "kind": "SubjectAccessReview",
                        "spec": {
                            "user": user,
                            "groups": ["system:serviceaccounts", f"system:serviceaccounts:kaic-{run_id}"],
                            "resourceAttributes": {
                                "group": rule["apiGroups"][0],
                                "resource": rule["resources"][0],
                                "verb": verb,
                            },
                        },
                    },
                )
                assert review["status"]["allowed"], (rule, verb)
    finally:
        kaic_cli.wait_finished(kaic, run_id)
        assert kaic("delete", run_id).returncode == 0
    assert kaic_cli.left_behind(node_cluster.kubeconfig, run_id) == []


def test_a_client_killed_mid_run_leaves_the_run_going_its_results_are_retrieved_later_then_expire(
    kaic, node_cluster, tmp_path
):
    client = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kaic",
            "run",
            "--in-cluster",
            *FOCUS,
            "-d",
            tmp_path / "never",
            "--results-ttl",
            "1m",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=kaic.env,
    )
    assert client.stderr is not None
    run_id = ""
    for line in client.stderr:
        if " launched in namespace " in line:
            run_id = line.split("run ", 1)[1].split()[0]
        if "] start " in line:  # the runner is probing
            break
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=30)
    assert run_id, "the client never said its run id"
    done = kaic_cli.wait_finished(kaic, run_id)
    assert done["phase"] == "finished", done
    got = kaic("retrieve", run_id, "-d", tmp_path / "later")
    assert got.returncode == done["exitCode"], got.stderr
    assert json.loads((tmp_path / "later" / REPORT_FILE).read_text())["run"]["complete"] is True
    # The killed client had claimed its folder (an empty report.json); it never got results.
    assert [(f.name, f.stat().st_size) for f in (tmp_path / "never").iterdir()] == [(REPORT_FILE, 0)]

    # A minute after the runner ended, its Job's TTL passes, and the results owned by the Job go with it.
    admin = kube.connect(str(node_cluster.kubeconfig))
    deadline = time.monotonic() + 180
    while (status := kaic("status", run_id, "-o", "json")).returncode == 0 and json.loads(status.stdout)[0][
        "phase"
    ] != "expired":
        assert time.monotonic() < deadline, status.stdout
        time.sleep(5)
    assert "`kaic delete" in json.loads(status.stdout)[0]["detail"]
    while list(
        admin.list(f"/api/v1/namespaces/kaic-{run_id}/configmaps", labelSelector=f"{RUNNER_LABEL}={run_id}")
    ):
        assert time.monotonic() < deadline, "the garbage collector left the results"
        time.sleep(2)
    expired = kaic("retrieve", run_id, "-d", tmp_path / "too-late")
    assert expired.returncode == 3 and "expired" in expired.stderr, expired.stderr
    assert not (tmp_path / "too-late").exists()
    assert kaic("delete", run_id).returncode == 0
    assert kaic_cli.left_behind(node_cluster.kubeconfig, run_id) == []


def test_unknown_runs_and_runs_of_another_cluster_are_bad_input(kaic, tmp_path):
    unknown = kaic("status", "feedf00d")
    assert unknown.returncode == 2 and "no in-cluster run of that id on this cluster" in unknown.stderr
    records = tmp_path / "state" / "kaic" / "runs"
    records.mkdir(parents=True)
    (records / "abad1dea.json").write_text(
        json.dumps({"server": "https://127.0.0.2:6443", "context": "other"})
    )
    for command in ("status", "logs", "retrieve", "delete"):
        elsewhere = kaic(command, "abad1dea")
        assert elsewhere.returncode == 2, (command, elsewhere.stderr)
        assert (
            "was launched on another cluster (server https://127.0.0.2:6443, context other)"
            in elsewhere.stderr
        )
        assert "--context other" in elsewhere.stderr and len(elsewhere.stderr.splitlines()) == 1
