"""An in-cluster run's objects and stored results, as pure logic: what the runner is allowed, how it is
labelled, and that retrieved results are exactly what the runner stored."""

from __future__ import annotations

import base64
import io
import json
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest

from kaic.engine.plan import RunOptions, plan_only
from kaic.engine.rbac import role_object
from kaic.incluster import objects, store
from kaic.kube.labels import RUN_ID_LABEL, RUNNER_LABEL
from kaic.settings import Gang, Settings

RUN = "0123abcd"


def _manifests(**runner: Any) -> dict[str, dict]:
    plan, _ = plan_only(RunOptions(focus=("secure_accelerator_access",)))
    built = objects.manifests(
        RUN, role_object(plan), ["{}", "0.1.0"], objects.Runner(image="reg/kaic:1", **runner)
    )
    return {m["kind"]: m for m in built}


def test_the_runner_is_bound_to_exactly_the_plans_cluster_role_and_may_write_only_its_own_configmaps() -> (
    None
):
    plan, _ = plan_only(RunOptions(focus=("secure_accelerator_access",)))
    made = _manifests()
    assert made["ClusterRole"]["rules"] == role_object(plan)["rules"]
    binding = made["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == made["ClusterRole"]["metadata"]["name"] == f"kaic-{RUN}-runner"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": objects.SERVICE_ACCOUNT, "namespace": f"kaic-{RUN}"}
    ]
    assert made["Role"]["metadata"]["namespace"] == f"kaic-{RUN}"
    assert made["Role"]["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "update"]}
    ]
    assert made["Job"]["spec"]["template"]["spec"]["serviceAccountName"] == objects.SERVICE_ACCOUNT


def test_runner_objects_carry_the_runner_label_and_never_the_run_id_label_the_closing_sweep_deletes_by() -> (
    None
):
    for manifest in _manifests().values():
        labels = manifest["metadata"]["labels"]
        assert labels[RUNNER_LABEL] == RUN and RUN_ID_LABEL not in labels, manifest["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "kaic"


def test_the_job_runs_once_keeps_its_results_for_the_ttl_and_runs_unprivileged() -> None:
    job = _manifests(results_ttl_s=60)["Job"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 60
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert "hostNetwork" not in pod and pod["terminationGracePeriodSeconds"] > 120  # time to sweep and store
    env = {e["name"]: e for e in container["env"]}
    assert env[objects.JOB_UID_ENV]["valueFrom"]["fieldRef"]["fieldPath"].endswith(
        f"['{objects.JOB_UID_LABEL}']"
    )
    assert "KUBERNETES_SERVICE_HOST" not in env


def test_on_the_host_network_the_runner_reaches_the_api_server_at_the_clients_address() -> None:
    pod = _manifests(
        api_server=("127.0.0.1", "6443"),
        node_selector={"a": "b"},
        tolerations=({"key": "k", "operator": "Exists"},),
    )["Job"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert pod["hostNetwork"] is True and pod["nodeSelector"] == {"a": "b"}
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1" and env["KUBERNETES_SERVICE_PORT"] == "6443"
    assert pod["tolerations"] == [{"key": "k", "operator": "Exists"}]


def test_every_manifest_is_created_in_its_own_collection() -> None:
    paths = {kind: objects.path(m) for kind, m in _manifests().items()}
    assert paths == {
        "Namespace": "/api/v1/namespaces",
        "ServiceAccount": f"/api/v1/namespaces/kaic-{RUN}/serviceaccounts",
        "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "Role": f"/apis/rbac.authorization.k8s.io/v1/namespaces/kaic-{RUN}/roles",
        "RoleBinding": f"/apis/rbac.authorization.k8s.io/v1/namespaces/kaic-{RUN}/rolebindings",
        "Job": f"/apis/batch/v1/namespaces/kaic-{RUN}/jobs",
    }


def test_run_options_travel_to_the_runner_whole_but_the_clients_own_files() -> None:
    opts = RunOptions(
        profile="ai-v1.0",
        mode="certified",
        focus=("a", "b"),
        skip=("c",),
        kubeconfig="/home/me/.kube/config",
        output_dir=Path("out"),
        run_timeout_s=60.0,
        parallel=2,
        run_id=RUN,
        settings=Settings(tolerations=({"key": "k", "effect": "NoSchedule"},), gang=Gang(scheduler="kueue")),
    )
    back = RunOptions.from_json(json.loads(json.dumps(opts.to_json())))
    assert back.kubeconfig is None and back.output_dir is None
    assert back == RunOptions(**{**vars(opts), "kubeconfig": None, "output_dir": None})


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    (folder / "sub").mkdir(parents=True)
    (folder / "report.json").write_text('{"a": 1}')
    (folder / "sub" / "x.bin").write_bytes(bytes(range(256)) * 10)
    return folder


def test_results_come_back_byte_for_byte_with_every_file_checked(tmp_path: Path) -> None:
    blob, digests = store.archive(_folder(tmp_path))
    assert sorted(digests) == ["report.json", "sub/x.bin"]
    assert store.archive(_folder(tmp_path / "again"))[0] == blob  # the same folder gives the same archive
    out = tmp_path / "out"
    assert store.unpack(blob, digests, out) == ["report.json", "sub/x.bin"]
    assert (out / "sub" / "x.bin").read_bytes() == (tmp_path / "run" / "sub" / "x.bin").read_bytes()


def test_a_file_that_does_not_match_its_digest_or_list_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    blob, digests = store.archive(_folder(tmp_path))
    out = tmp_path / "out"
    with pytest.raises(store.ResultsError, match="report.json: sha256"):
        store.unpack(blob, {**digests, "report.json": "0" * 64}, out)
    with pytest.raises(store.ResultsError, match="disagree on extra.txt"):
        store.unpack(blob, {**digests, "extra.txt": "0" * 64}, out)
    assert not out.exists()


def test_an_archive_entry_outside_the_folder_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(store.ResultsError, match="unexpected entry '../escape'"):
        store.unpack(buffer.getvalue(), {"../escape": store.sha256(b"")}, tmp_path / "out")


class _FakeConfigMaps:
    """Stands in for the API's configmaps collection: what was created, by name (pure storage logic)."""

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}

    def create(self, path: str, body: dict) -> dict:
        self.items[body["metadata"]["name"]] = body
        return body

    def get_or_none(self, path: str) -> dict | None:
        return self.items.get(path.rsplit("/", 1)[1])


def test_published_results_are_chunked_below_the_object_limit_and_fetched_whole(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "big.bin").write_bytes(
        random.Random(1).randbytes(2 * store.CHUNK_BYTES)
    )  # gzip cannot shrink it
    fake = _FakeConfigMaps()
    manifest = store.Store(fake, RUN, "uid-1").publish(folder, 4)  # type: ignore[arg-type]
    names = manifest["archive"]["chunks"]
    assert len(names) > 1 and list(fake.items)[-1] == store.RESULTS  # the manifest comes last
    for name in names:
        body = fake.items[name]
        assert len(json.dumps(body)) < 1024 * 1024
        assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert store.read(fake, RUN, store.RESULTS) == manifest  # type: ignore[arg-type]
    blob = store.fetch(fake, RUN, manifest)  # type: ignore[arg-type]
    store.unpack(blob, manifest["files"], tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == (folder / "big.bin").read_bytes()
    first = fake.items[names[0]]["binaryData"]
    first[store.KEY] = base64.b64encode(b"tampered").decode()
    with pytest.raises(store.ResultsError, match="archive's sha256"):
        store.fetch(fake, RUN, manifest)  # type: ignore[arg-type]


class _FakeRun:
    """Canned API answers for one run's namespace, Job, pod and ConfigMaps: the phase logic alone."""

    def __init__(self, job: dict | None, pod: dict | None, status: dict | None, manifests: list) -> None:
        self.job, self.pod, self.status = job, pod, status
        self.manifests = manifests  # what successive reads of the results manifest return
        ns = f"kaic-{RUN}"
        self.objects: dict[str, Any] = {
            f"/api/v1/namespaces/{ns}": {
                "metadata": {"labels": {RUNNER_LABEL: RUN}, "creationTimestamp": "t"}
            },
            f"/apis/batch/v1/namespaces/{ns}/jobs/{objects.JOB}": job,
        }

    def server(self) -> str:
        return "https://127.0.0.1:1"

    context = "test"

    def get_or_none(self, path: str) -> Any:
        if path.endswith(f"/configmaps/{store.STATUS}"):
            return {"data": {store.KEY: json.dumps(self.status)}} if self.status else None
        if path.endswith(f"/configmaps/{store.RESULTS}"):
            found = self.manifests.pop(0) if self.manifests else None
            return {"data": {store.KEY: json.dumps(found)}} if found else None
        return self.objects.get(path)

    def list(self, path: str, **query: Any) -> list:
        return [self.pod] if self.pod else []


def _pod(phase: str, waiting: str = "") -> dict:
    state = {"waiting": {"reason": waiting, "message": "m"}} if waiting else {}
    return {
        "metadata": {"name": "p", "creationTimestamp": "t"},
        "status": {"phase": phase, "containerStatuses": [{"state": state}]},
    }


JOB = {"status": {}}
FAILED_JOB = {
    "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
}


@pytest.mark.parametrize(
    ("job", "pod", "status", "manifests", "phase", "detail"),
    [
        (JOB, None, None, [], "pending", "no runner pod yet"),
        (JOB, _pod("Pending", "ContainerCreating"), None, [], "pending", "starting"),
        (JOB, _pod("Pending", "ErrImageNeverPull"), None, [], "pending", "ErrImageNeverPull: m"),
        (JOB, _pod("Running"), {"phase": "running"}, [], "running", ""),
        (JOB, _pod("Running"), {"phase": "finished"}, [{"exitCode": 0}], "finished", "results stored"),
        # The runner stored its results and exited between the two reads: finished, not failed.
        (JOB, _pod("Succeeded"), {"phase": "running"}, [None, {"exitCode": 1}], "finished", "results stored"),
        (JOB, _pod("Failed"), {"phase": "running"}, [], "failed", "the runner pod ended (Failed)"),
        # An evicted or deleted pod leaves no pod, and the Job failed: failed, never pending for ever.
        (
            FAILED_JOB,
            None,
            {"phase": "running"},
            [],
            "failed",
            "the runner's Job failed (BackoffLimitExceeded)",
        ),
        (
            JOB,
            _pod("Failed"),
            {"phase": "failed", "error": "storing the results failed"},
            [],
            "failed",
            "storing",
        ),
        (None, None, {"phase": "finished"}, [], "expired", "gone (TTL or deleted)"),
    ],
)
def test_a_runs_phase_follows_its_results_job_and_pod(job, pod, status, manifests, phase, detail) -> None:
    from kaic.incluster import control

    current = control.state(_FakeRun(job, pod, status, manifests), RUN)  # type: ignore[arg-type]
    assert (current.phase, detail in current.detail) == (phase, True), current
    assert current.stuck is (detail == "ErrImageNeverPull: m"), current  # a dead end, not a wait


def test_a_run_id_that_cannot_be_one_is_bad_input_before_any_request() -> None:
    from kaic.incluster import control

    for bad in ("../x", "ABC", "a" * 60, "-a"):
        with pytest.raises(control.RunNotFound, match="not a kaic run id"):
            control.state(None, bad)  # type: ignore[arg-type]


def test_a_status_create_whose_answer_was_lost_becomes_a_replace() -> None:
    from kubernetes.client.exceptions import ApiException

    calls = []

    class Conflicting:
        def create(self, path: str, body: dict) -> None:
            calls.append("create")
            raise ApiException(status=409)

        def replace(self, path: str, body: dict) -> None:
            calls.append("replace")

    saved = store.Store(Conflicting(), RUN, "uid")  # type: ignore[arg-type]
    saved.status({"phase": "running"})
    saved.status({"phase": "running", "done": 1})
    assert calls == ["create", "replace", "replace"]
