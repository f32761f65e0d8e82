"""Cluster access without a cluster: retry policy, kubeconfig errors, credential-free messages."""

import pytest
from kubernetes.client.exceptions import ApiException

from kaic import kube


@pytest.mark.parametrize(
    ("method", "status", "retried"),
    [
        ("GET", 429, True),
        ("POST", 429, True),  # the server did not act: safe to send again
        ("GET", 503, True),
        ("DELETE", 500, True),
        ("POST", 503, False),  # might have been applied: never replayed
        ("PATCH", 502, False),
        ("GET", 404, False),
        ("GET", 403, False),
    ],
)
def test_retry_policy(method, status, retried):
    assert kube._retry().is_retry(method, status) is retried


def test_retries_are_bounded():
    policy = kube._retry()
    for _ in range(policy.total):
        policy = policy.increment(method="GET", url="/api")
    assert policy.is_retry("GET", 429) is False


def test_bad_kubeconfig_names_the_file(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\nusers: []\n")
    with pytest.raises(kube.KubeconfigError, match=f"--context missing: no such context in {path}"):
        kube.connect(str(path), context="missing")


def test_no_kubeconfig_at_all(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(kube.KubeconfigError, match="--kubeconfig: none given and none found"):
        kube.connect()


def test_api_errors_are_described_without_headers_or_tokens():
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = '{"kind":"Status","message":"nodes is forbidden: User \\"alice\\" cannot list"}'
    exc.headers = {"Authorization": "Bearer secret-token"}
    text = kube.describe_error(exc)
    assert text.startswith('HTTP 403 Forbidden: nodes is forbidden: User "alice" cannot list (Forbidden: ')
    assert "secret-token" not in text


def test_watch_lines_survive_chunks_split_anywhere():
    from kaic.kube import _lines

    stream = [b'{"type":"ADDED"}\n{"ty', b'pe":"MODIFIED"}', b"\n\n", b'{"type":"DELETED"}']
    assert list(_lines(iter(stream))) == [b'{"type":"ADDED"}', b'{"type":"MODIFIED"}', b'{"type":"DELETED"}']
