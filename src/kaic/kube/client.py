"""Cluster access: one configured client, raw JSON requests, pagination and retries.

kaic talks to the API with plain JSON over the official client's transport (auth, TLS, proxies from the
kubeconfig) rather than typed models: typed models drop fields newer than the client and
deserialising thousands of nodes into them is slow. Credentials never leave this module.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import ssl
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from kaic.settings import REQUEST_TIMEOUT_S

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class AccessError(Exception):
    """The cluster cannot be reached or refuses kaic (no credentials in the message)."""


class KubeconfigError(Exception):
    """The kubeconfig is missing, malformed or lacks the context asked for: bad input (exit 2), checked before
    a run writes anything; the message names the file or flag and what would be valid."""


class _Retry(urllib3.Retry):
    """Retry 429 on any verb (the server did not act) and 5xx only on idempotent verbs."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if self.total is not None and self.total <= 0:
            return False
        if status_code == 429:
            return True
        return status_code in (500, 502, 503, 504) and method.upper() in IDEMPOTENT


def _retry() -> urllib3.Retry:
    return _Retry(
        total=5,
        connect=2,
        read=0,
        backoff_factor=0.5,
        allowed_methods=None,
        status_forcelist=(429, 500, 502, 503, 504),
        raise_on_status=False,
        respect_retry_after_header=True,
    )


def default_kubeconfig() -> str | None:
    """$KUBECONFIG (read now, not at import time as the client does), else ~/.kube/config if present."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    home = Path.home() / ".kube" / "config"
    return str(home) if home.exists() else None


@dataclass
class Cluster:
    api: k8s.ApiClient
    context: str
    request_timeout: float
    source: str = ""  # the kubeconfig file(s), or "in-cluster service account"
    # Namespaces created by the first write into them (name -> Namespace body): see `defer_namespace`.
    deferred: dict[str, dict[str, Any]] = field(default_factory=dict)

    def connecting(self) -> str:
        """What kaic is about to talk to, said before the first request (which may take a while to fail)."""
        return f"connecting to {self.server()} (context {self.context}, {self.source})"

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        """Send one request and return the decoded JSON body; raise ApiException on HTTP errors."""
        data = self.request_bytes(method, path, body, query)
        return json.loads(data) if data else None

    def request_bytes(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> bytes:
        """The raw response body: what a pod or service answers through the API server's proxy is not JSON."""
        if self.deferred and method in ("POST", "PUT", "PATCH"):
            self._create_deferred(path)
        serialized = self.api.param_serialize(
            method,
            path,
            query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
            header_params={"Accept": "application/json, */*", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(*serialized, _request_timeout=self.request_timeout)
        data = resp.read()
        if not 200 <= resp.status <= 299:
            raise ApiException.from_response(http_resp=resp, body=data.decode(errors="replace"), data=None)
        return data or b""

    def defer_namespace(self, body: dict[str, Any]) -> None:
        """Create this namespace only when something is first written into it. A probe that decides from the
        facts alone then leaves no namespace behind, and its run's closing sweep need not wait the 5 s that
        the namespace controller takes to start deleting one."""
        self.deferred[body["metadata"]["name"]] = body

    def _create_deferred(self, path: str) -> None:
        for name in [n for n in self.deferred if f"/namespaces/{n}/" in path]:
            self.create("/api/v1/namespaces", self.deferred.pop(name))

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def get_or_none(self, path: str, **query: Any) -> Any:
        """GET, but an API or object that is not there is None rather than an error."""
        try:
            return self.get(path, **query)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, path: str, body: dict[str, Any], dry_run: bool = False) -> Any:
        return self.request("POST", path, body=body, query={"dryRun": "All" if dry_run else None})

    def replace(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PUT", path, body=body)

    def stream_lines(self, path: str, read_timeout_s: float, **query: Any) -> Iterator[str]:
        """A streamed text response (a pod's log with follow=true) line by line, as it arrives; a silence
        longer than `read_timeout_s` raises urllib3's ReadTimeoutError, so a dead connection never hangs."""
        for line in self._stream(path, query, read_timeout_s, blank=True):
            yield line.decode(errors="replace")

    def _stream(
        self, path: str, query: dict[str, Any], read_timeout_s: float, blank: bool = False
    ) -> Generator[bytes, None, None]:
        """The lines of a streamed GET (a watch's events, a followed log); blank ones only with `blank`."""
        resp = self.api.call_api(
            *self.api.param_serialize(
                "GET",
                path,
                query_params=[(k, v) for k, v in query.items() if v is not None],
                header_params={"Accept": "application/json, */*"},
                auth_settings=["BearerToken"],
            ),
            _request_timeout=(self.request_timeout, read_timeout_s),
        )
        if resp.status != 200:
            body = resp.read().decode(errors="replace")
            raise ApiException.from_response(http_resp=resp, body=body, data=None)
        try:
            yield from _lines(resp.response.stream(65536), blank)
        finally:
            resp.response.release_conn()

    def delete(self, path: str, **query: Any) -> Any:
        try:
            return self.request("DELETE", path, query=query)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, path: str, page_size: int = 500, **query: Any) -> Iterator[dict[str, Any]]:
        """Every item of a collection, a page at a time (bounded memory on big clusters)."""
        token = None
        while True:
            page = self.get(path, limit=page_size, **{"continue": token}, **query)
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def watch(
        self, path: str, timeout_s: float, resource_version: str = "", **query: Any
    ) -> Generator[tuple[str, dict[str, Any]], None, None]:
        """A collection's current items as ADDED, then its changes as (type, object) until `timeout_s` is
        spent.

        One list then a watch from its resourceVersion, so no change slips between state and events (a caller
        that already listed passes `resource_version` and gets only the changes); a watch the server ends
        early is resumed, an expired resourceVersion (410) starts over with a fresh list. The caller stops
        whenever it has seen enough; the deadline bounds the loop when it never does.
        """
        deadline = time.monotonic() + timeout_s
        version = resource_version or (yield from self._relist(path, query))
        while (left := deadline - time.monotonic()) > 0:
            params = {
                **query,
                "watch": "true",
                "allowWatchBookmarks": "true",
                "resourceVersion": version,
                "timeoutSeconds": max(1, int(left)),
            }
            with contextlib.closing(self._stream(path, params, left + self.request_timeout)) as lines:
                for line in lines:
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") != 410:
                            raise AccessError(f"watch {path}: {obj.get('message', obj)}")
                        version = yield from self._relist(path, query)
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    if kind != "BOOKMARK":
                        yield kind, obj

    def _relist(self, path: str, query: dict[str, Any]) -> Generator[tuple[str, dict[str, Any]], None, str]:
        page = self.get(path, **query)
        for item in page.get("items") or []:
            yield "ADDED", item
        return (page.get("metadata") or {}).get("resourceVersion", "")

    def wait_gone(self, paths: Sequence[str], timeout_s: float) -> None:
        """Wait, bounded, until every object is gone; a stuck one is an error naming it, never a hang."""
        deadline = time.monotonic() + timeout_s
        while paths := [p for p in paths if self.get_or_none(p) is not None]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"still present after {timeout_s:.0f}s: {', '.join(paths)}")
            time.sleep(0.5)  # a GET per object: any kind, with no watch permission needed

    def server(self) -> str:
        return self.api.configuration.host


def connect(
    kubeconfig: str | None = None, context: str | None = None, request_timeout: float = REQUEST_TIMEOUT_S
) -> Cluster:
    """A client from the kubeconfig (flag, $KUBECONFIG, ~/.kube/config) or, in a pod, the service account.

    Only files are read here, nothing is sent: every problem is a KubeconfigError before a run starts.
    """
    path = kubeconfig or default_kubeconfig()
    configuration = k8s.Configuration()
    if path:
        chosen = _checked_context(path, context)
        try:
            k8s_config.load_kube_config(
                config_file=path, context=chosen, client_configuration=configuration, persist_config=False
            )
        except (k8s_config.ConfigException, OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise KubeconfigError(
                f"{path}: context {chosen}: {exc}; fix the kubeconfig or pick another --context"
            )
        source = path
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except (k8s_config.ConfigException, OSError, ValueError) as exc:
            raise KubeconfigError(f"in-cluster service account: {exc}; pass --kubeconfig instead") from None
        chosen, source = "in-cluster", "in-cluster service account"
    else:
        raise KubeconfigError(
            "--kubeconfig: none given and none found (KUBECONFIG unset, no ~/.kube/config, not in a pod); "
            "pass --kubeconfig FILE or set KUBECONFIG"
        )
    configuration.retries = _retry()
    return Cluster(k8s.ApiClient(configuration), chosen, request_timeout, source)


def _checked_context(path: str, context: str | None) -> str:
    """The context to use, after reading every file of a KUBECONFIG-style list as kubectl merges them."""
    files = [os.path.expanduser(p) for p in path.split(os.pathsep) if p]
    found = [f for f in files if os.path.exists(f)]
    if not found:
        raise KubeconfigError(f"{path}: no such kubeconfig file; pass an existing file to --kubeconfig")
    names: list[str] = []
    current = None
    for file in found:
        data = _read_kubeconfig(file)
        for section in ("clusters", "contexts", "users"):
            items = data.get(section) or []
            if not isinstance(items, list) or not all(
                isinstance(i, dict) and isinstance(i.get("name"), str) for i in items
            ):
                raise KubeconfigError(f"{file}: {section}: expected a list of entries each with a name")
        names += [c["name"] for c in data.get("contexts") or [] if c["name"] not in names]
        if current is None and data.get("current-context"):
            current = str(data["current-context"])
    valid = f"contexts: {', '.join(names)}" if names else "it has no contexts"
    if context is not None:
        if context not in names:
            raise KubeconfigError(f"--context {context}: no such context in {path}; {valid}")
        return context
    if not current:
        raise KubeconfigError(f"{path}: no current-context; pass --context ({valid})")
    if current not in names:
        raise KubeconfigError(f"{path}: current-context {current} does not exist; pass --context ({valid})")
    return current


def _read_kubeconfig(file: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(file).read_bytes().decode("utf-8"))
    except OSError as exc:
        raise KubeconfigError(f"{file}: cannot read the kubeconfig: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise KubeconfigError(f"{file}: not a kubeconfig (not UTF-8 text); pass a YAML kubeconfig") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise KubeconfigError(f"{file}: kubeconfig is not valid YAML: {problem}{where}") from None
    if not isinstance(data, dict):
        what = "empty" if data is None else "not a mapping"
        raise KubeconfigError(f"{file}: kubeconfig is {what}; expected apiVersion, clusters, contexts, users")
    return data


def _lines(chunks: Iterator[bytes], blank: bool = False) -> Iterator[bytes]:
    """Newline-delimited records of a chunked stream (a watch sends one JSON event per line); blank lines only
    with `blank` (a log's)."""
    rest = b""
    for chunk in chunks:
        *whole, rest = (rest + chunk).split(b"\n")
        yield from (line for line in whole if blank or line.strip())
    if rest.strip():
        yield rest


def describe_error(exc: BaseException) -> str:
    """A one-line, credential-free description of a failed call, in kubectl's words (no client class
    names)."""
    if isinstance(exc, ApiException):
        message = ""
        try:
            message = json.loads(exc.body or "{}").get("message", "")
        except (ValueError, AttributeError):
            message = (exc.body or "")[:200] if isinstance(exc.body, str) else ""
        text = f"HTTP {exc.status} {exc.reason}: {message}".strip().rstrip(":")
        return f"{text} ({_CAUSES[exc.status]})" if exc.status in _CAUSES else text
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return _connection_problem(exc)
    return f"{type(exc).__name__}: {exc}"


_CAUSES = {
    401: "Unauthorized: the server did not accept the kubeconfig's credentials; the token or client "
    "certificate may have expired or been revoked: log in again",
    403: "Forbidden: the credentials are valid but RBAC does not allow this; see `kaic plan --rbac`",
}
_ERRNO = {
    errno.ECONNREFUSED: "connection refused (is the API server running, and are host and port right?)",
    errno.ECONNRESET: "connection reset by peer",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
}


def _connection_problem(exc: BaseException) -> str:
    """What went wrong on the wire: refused, timed out, no such host, a certificate problem, ..."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for link in chain:
        if isinstance(link, ssl.SSLCertVerificationError):
            return f"tls: failed to verify certificate: {link.verify_message or link.reason}"
        if isinstance(link, ssl.SSLError):
            return f"tls: {link.reason or link}"
        if isinstance(link, socket.gaierror):
            return f"no such host ({link.strerror})"
        if isinstance(link, OSError) and link.errno in _ERRNO:
            return _ERRNO[link.errno]
    if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError, socket.timeout)):
        seconds = re.search(r"timeout=([\d.]+)", str(exc))
        return f"timed out after {float(seconds[1]):g}s" if seconds else "timed out"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "the connection was closed before the server answered"
    strerror = next((link.strerror for link in chain if isinstance(link, OSError) and link.strerror), "")
    return f"cannot reach the API server: {strerror or 'connection failed'}"
