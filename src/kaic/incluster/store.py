"""An in-cluster run's progress and results, kept in ConfigMaps of its namespace.

Why ConfigMaps: they outlive the runner's pod without it waiting (a pod that waits to be collected holds a
node's resources, and its results die with an eviction), they need no volume or storage class, reading them
needs only `get` (no `pods/exec` for the client), and each is owned by the Job, so the Job's
`ttlSecondsAfterFinished` takes them with it. The results folder goes in as one gzip tar split into chunks
below the 1 MiB object limit; the manifest, written last, lists the chunks and each file's sha256, so
`retrieve` knows the results are whole and checks every file on arrival.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from kaic.incluster.objects import JOB, namespace
from kaic.kube.client import Cluster
from kaic.kube.labels import runner_labels

STATUS = "kaic-status"
RESULTS = "kaic-results"
KEY = "data"
CHUNK_BYTES = 700 * 1024  # base64 makes it 933 KiB of the object's 1 MiB
CHUNK_NAME = re.compile(rf"^{RESULTS}-\d{{3}}$")


class ResultsError(Exception):
    """Stored results that are missing a part or do not match their digests."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def archive(folder: Path) -> tuple[bytes, dict[str, str]]:
    """The folder's files as a gzip tar (sorted, no owners or times) and each file's sha256 by relative
    path."""
    digests: dict[str, str] = {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            data = path.read_bytes()
            digests[name] = sha256(data)
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), digests


def unpack(blob: bytes, digests: dict[str, str], folder: Path) -> list[str]:
    """Write the archive's files under `folder`, each checked against its digest; the archive must hold
    exactly the listed files. Returns their names."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if not member.isfile() or name.startswith("/") or ".." in Path(name).parts:
                raise ResultsError(f"the results archive holds an unexpected entry {name!r}")
            extracted = tar.extractfile(member)
            assert extracted is not None
            files[name] = extracted.read()
    if set(files) != set(digests):
        odd = sorted(set(files) ^ set(digests))
        raise ResultsError(f"the results archive and its manifest disagree on {', '.join(odd)}")
    for name, data in files.items():
        if sha256(data) != digests[name]:
            raise ResultsError(
                f"{name}: sha256 {sha256(data)} is not the {digests[name]} the runner recorded"
            )
    for name, data in sorted(files.items()):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return sorted(files)


def _path(run_id: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace(run_id)}/configmaps"
    return f"{base}/{name}" if name else base


def _config_map(run_id: str, name: str, owner_uid: str, **content: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace(run_id),
            "labels": runner_labels(run_id),
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": JOB, "uid": owner_uid}],
        },
        **content,
    }


class Store:
    """The runner's side: status after each probe, the results folder once at the end."""

    def __init__(self, cluster: Cluster, run_id: str, owner_uid: str) -> None:
        self.cluster, self.run_id, self.owner_uid = cluster, run_id, owner_uid
        self.status_written = False

    def status(self, status: dict[str, Any]) -> None:
        """Create the status, then replace it; a create that the server made though its answer was lost
        (409 next time) turns into a replace."""
        body = _config_map(self.run_id, STATUS, self.owner_uid, data={KEY: json.dumps(status)})
        if not self.status_written:
            try:
                self.cluster.create(_path(self.run_id), body)
                self.status_written = True
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
                self.status_written = True
        self.cluster.replace(_path(self.run_id, STATUS), body)

    def publish(self, folder: Path, exit_code: int) -> dict[str, Any]:
        """Chunks first, manifest last: a manifest is there only when every chunk is."""
        blob, digests = archive(folder)
        chunks = [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
        names = [f"{RESULTS}-{index:03d}" for index in range(len(chunks))]
        for name, chunk in zip(names, chunks, strict=True):
            body = _config_map(
                self.run_id, name, self.owner_uid, binaryData={KEY: base64.b64encode(chunk).decode()}
            )
            self.cluster.create(_path(self.run_id), body)
        manifest = {
            "exitCode": exit_code,
            "archive": {"sha256": sha256(blob), "size": len(blob), "chunks": names},
            "files": digests,
        }
        self.cluster.create(
            _path(self.run_id),
            _config_map(self.run_id, RESULTS, self.owner_uid, data={KEY: json.dumps(manifest)}),
        )
        return manifest


def read(cluster: Cluster, run_id: str, name: str) -> dict[str, Any] | None:
    """A stored status or manifest, or None while there is none."""
    found = cluster.get_or_none(_path(run_id, name))
    return json.loads(found["data"][KEY]) if found else None


def fetch(cluster: Cluster, run_id: str, manifest: dict[str, Any]) -> bytes:
    """The results archive from its chunks, checked against the manifest's digest."""
    parts = []
    for name in manifest["archive"]["chunks"]:
        if not CHUNK_NAME.match(name):
            raise ResultsError(f"the results manifest names {name!r}, not one of its chunks")
        found = cluster.get_or_none(_path(run_id, name))
        if found is None:
            raise ResultsError(f"configmap {namespace(run_id)}/{name} of the results is gone")
        parts.append(base64.b64decode((found.get("binaryData") or {}).get(KEY, "")))
    blob = b"".join(parts)
    if sha256(blob) != manifest["archive"]["sha256"]:
        raise ResultsError(
            f"the results archive's sha256 {sha256(blob)} is not the {manifest['archive']['sha256']} the "
            "runner recorded"
        )
    return blob
