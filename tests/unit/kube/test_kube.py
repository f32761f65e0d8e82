"""Cluster access without a cluster: retry policy, kubeconfig errors, credential-free messages."""

import pytest
from kubernetes.client.exceptions import ApiException

from kaic.kube import client as kube


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
    from kaic.kube.client import _lines

    stream = [b'{"type":"ADDED"}\n{"ty', b'pe":"MODIFIED"}', b"\n\n", b'{"type":"DELETED"}']
    assert list(_lines(iter(stream))) == [b'{"type":"ADDED"}', b'{"type":"MODIFIED"}', b'{"type":"DELETED"}']


KUBECONFIG = (
    "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
    "clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
    "users: [{{name: u, user: {{token: secret-token-value}}}}]\n"
    "contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n"
)


def _cluster(tmp_path, server: str, request_timeout: float = 2.0, name: str = "kubeconfig") -> kube.Cluster:
    path = tmp_path / name
    path.write_text(KUBECONFIG.format(server=server))
    return kube.connect(str(path), request_timeout=request_timeout)


def test_connecting_names_server_context_and_file(tmp_path):
    cluster = _cluster(tmp_path, "https://127.0.0.1:9")
    assert cluster.connecting() == f"connecting to https://127.0.0.1:9 (context c, {tmp_path / 'kubeconfig'})"


def test_a_refused_connection_is_said_as_kubectl_says_it(tmp_path):
    """A closed loopback port (nothing else is ever dialled)."""
    with pytest.raises(Exception) as err:
        _cluster(tmp_path, "https://127.0.0.1:9").get("/version")
    text = kube.describe_error(err.value)
    assert text.startswith("connection refused") and "Error" not in text and "Pool" not in text


def test_a_silent_server_times_out_after_the_request_timeout(tmp_path):
    """A loopback listener that accepts and never answers."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(Exception) as err:
            _cluster(tmp_path, f"https://127.0.0.1:{port}", request_timeout=0.5).get("/version")
    assert kube.describe_error(err.value) == "timed out after 0.5s"


def test_certificate_problems_and_refused_credentials_name_their_cause():
    import ssl

    import urllib3

    cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    cause.verify_message = "self-signed certificate"
    wrapped = urllib3.exceptions.SSLError(cause)
    wrapped.__cause__ = cause
    failed = urllib3.exceptions.MaxRetryError(None, "/version", wrapped)  # type: ignore[arg-type]
    assert kube.describe_error(failed) == "tls: failed to verify certificate: self-signed certificate"
    unauthorized = ApiException(status=401, reason="Unauthorized")
    unauthorized.body = '{"kind":"Status","message":"Unauthorized"}'
    assert "the server did not accept the kubeconfig's credentials" in kube.describe_error(unauthorized)


def test_kubeconfig_lists_merge_like_kubectl(tmp_path, monkeypatch):
    """KUBECONFIG=a:b: contexts of both files; the first current-context wins; missing files are skipped."""
    first = tmp_path / "a"
    first.write_text(KUBECONFIG.format(server="https://127.0.0.1:9"))
    second = tmp_path / "b"
    second.write_text(
        KUBECONFIG.format(server="https://127.0.0.1:10")
        .replace("name: c", "name: d")
        .replace("cluster: c", "cluster: d")
        .replace("current-context: c", "current-context: d")
    )
    listed = f"{tmp_path / 'gone'}:{first}:{second}"
    assert kube.connect(listed).context == "c"
    assert kube.connect(listed, context="d").server() == "https://127.0.0.1:10"
    with pytest.raises(kube.KubeconfigError, match="--context e: no such context in .*; contexts: c, d"):
        kube.connect(listed, context="e")


def test_a_deferred_namespace_is_created_by_the_first_write_into_it(tmp_path, monkeypatch):
    """Reads and deletes leave it uncreated; the first POST, PUT or PATCH under it creates it first, once."""
    cluster = _cluster(tmp_path, "https://127.0.0.1:1")
    sent: list[tuple[str, str]] = []

    class Answer:
        status = 200

        def read(self) -> bytes:
            return b"{}"

    def call_api(method, url, *args, **kwargs):
        sent.append((method, url.split("127.0.0.1:1", 1)[1].split("?")[0]))
        return Answer()

    monkeypatch.setattr(cluster.api, "call_api", call_api)
    cluster.defer_namespace({"metadata": {"name": "kaic-ns"}})
    cluster.get("/api/v1/namespaces/kaic-ns/pods")
    cluster.delete("/api/v1/namespaces/kaic-ns/pods/p")
    cluster.create("/api/v1/namespaces/other/pods", {})
    assert sent == [
        ("GET", "/api/v1/namespaces/kaic-ns/pods"),
        ("DELETE", "/api/v1/namespaces/kaic-ns/pods/p"),
        ("POST", "/api/v1/namespaces/other/pods"),
    ]
    sent.clear()
    cluster.create("/api/v1/namespaces/kaic-ns/pods", {})
    cluster.create("/api/v1/namespaces/kaic-ns/pods", {})
    assert sent == [
        ("POST", "/api/v1/namespaces"),
        ("POST", "/api/v1/namespaces/kaic-ns/pods"),
        ("POST", "/api/v1/namespaces/kaic-ns/pods"),
    ]
    assert cluster.deferred == {}


def test_a_logs_blank_lines_are_kept_where_a_watch_drops_them() -> None:
    from kaic.kube.client import _lines

    chunks = [b"a\n\nb", b"\n\n"]
    assert list(_lines(iter(chunks))) == [b"a", b"b"]
    assert list(_lines(iter(chunks), blank=True)) == [b"a", b"", b"b", b""]
