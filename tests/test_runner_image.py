"""The runner image `make image` writes (docs/in-cluster.md) is the OCI layout `ctr images import` reads, its
config runs kaic as a non-root user, and its layer is normalised for reproducibility. Reads the archive the
last `make image` left; skipped without one (building it needs root, apt and PyPI: minutes)."""

import hashlib
import json
import tarfile
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "dist" / "kaic-runner.tar"

pytestmark = pytest.mark.skipif(not ARCHIVE.exists(), reason="no dist/kaic-runner.tar: run `make image`")


def test_runner_image_archive_is_a_normalised_oci_layout(tmp_path):
    with tarfile.open(ARCHIVE) as archive:
        blobs = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]

    def blob(digest: str) -> bytes:
        return blobs["blobs/sha256/" + digest.removeprefix("sha256:")]

    (entry,) = json.loads(blobs["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"].startswith("kaic.local/kaic-runner:")
    manifest_bytes = blob(entry["digest"])
    assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == entry["digest"]
    assert (ROOT / "dist" / "kaic-runner.tar.digest").read_text().strip() == entry["digest"]
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    config = json.loads(blob(manifest["config"]["digest"]))
    assert config["config"]["Entrypoint"] == ["/usr/bin/python3", "-m", "kaic"]
    assert config["config"]["User"] == "65532:65532"

    (layer,) = manifest["layers"]
    layer_path = tmp_path / "layer.tar.gz"
    layer_path.write_bytes(blob(layer["digest"]))
    with tarfile.open(layer_path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert len(set(names)) == len(names)
    assert {m.mtime for m in members} == {datetime.fromisoformat(config["created"]).timestamp()}
    assert {(m.uid, m.gid) for m in members if m.name != "home/kaic"} == {(0, 0)}
    assert not [name for name in names if name.endswith(".pyc")]
    assert "usr/bin/python3.11" in names and "usr/lib/python3/dist-packages/kaic/__main__.py" in names
    assert not [
        name for name in names if name.startswith(("usr/share/doc/", "usr/share/man/", "usr/bin/dpkg"))
    ]
