"""Locally built images: a valid OCI image layout whose digests, layer and name containerd will accept."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from kaic.localcluster import images


def read_archive(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers() if member.isfile()}


def test_archive_is_an_oci_layout_with_matching_digests(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF not really")
    image = images.Image(
        "kaic.local/tool:1", files={"usr/bin/tool": binary}, cmd=["tool"], links={"bin/t": "/usr/bin/tool"}
    )
    images.write_archive(image, tmp_path / "tool.tar")
    files = read_archive(tmp_path / "tool.tar")

    for name, blob in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(blob).hexdigest() == name.rsplit("/", 1)[1]
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "kaic.local/tool:1"
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
    config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"])
    (layer_descriptor,) = manifest["layers"]
    assert config["rootfs"]["diff_ids"] == [layer_descriptor["digest"]]
    assert config["config"]["Cmd"] == ["tool"] and "Entrypoint" not in config["config"]

    layer = files[f"blobs/sha256/{layer_descriptor['digest'].split(':')[1]}"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {member.name: member for member in tar.getmembers()}
        assert list(members) == ["bin", "bin/t", "usr", "usr/bin", "usr/bin/tool"]
        assert members["bin/t"].linkname == "/usr/bin/tool"
        assert tar.extractfile("usr/bin/tool").read() == binary.read_bytes()


def test_archive_is_reproducible(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"same")
    image = images.Image("kaic.local/tool:1", files={"tool": binary})
    images.write_archive(image, tmp_path / "a.tar")
    images.write_archive(image, tmp_path / "b.tar")
    assert read_archive(tmp_path / "a.tar") == read_archive(tmp_path / "b.tar")


def test_the_local_image_map_names_probe_image_keys_and_only_local_images() -> None:
    """The config file `kaic cluster up` writes gives these as --image: every key must be one a run knows,
    and every image kaic's own (never labelled as the upstream image it stands in for)."""
    from kaic.areas.images import DEFAULTS

    assert set(images.PROBE_IMAGES) <= set(DEFAULTS)
    assert all(ref.startswith("kaic.local/") for ref in images.PROBE_IMAGES.values())
