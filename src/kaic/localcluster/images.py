"""Container images for the real worker node, built here because no registry is reachable.

Each image is one uncompressed layer holding a few host files (static binaries that `make cluster`
puts in cluster/bin), written as an OCI image layout archive and imported into containerd's `k8s.io`
namespace with containerd's own `ctr`. Pods use them with `imagePullPolicy: Never` or `IfNotPresent`.

Python rather than a Go tool: an OCI archive is three JSON documents and a tar, which the standard
library writes in a few lines, and the launcher that imports the images is Python already.

To add an image: give `make cluster` a rule for its binary in cluster/bin, add a function returning
its `Image` below and list it in `local_images`.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX = "kaic.local/busybox:1"
PAUSE = "kaic.local/pause:1"
# What `kaic run` uses for the probe image keys (kaic.areas.images) that this node can serve: the config file
# `kaic cluster up` writes gives these as --image, under kaic's own names, never the upstream ones they stand
# in for. "ubuntu" runs only the accelerator identity script, which needs no more than busybox's sh.
PROBE_IMAGES = {"busybox": BUSYBOX, "pause": PAUSE, "ubuntu": BUSYBOX}
NAMESPACE = "k8s.io"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYER = "application/vnd.oci.image.layer.v1.tar"
_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True)
class Image:
    """An image reference and the contents of its single layer."""

    ref: str
    # Path inside the image -> file on the host, copied with mode 0755.
    files: dict[str, Path]
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    # Symbolic links inside the image: path -> target.
    links: dict[str, str] = field(default_factory=dict)
    # Empty directories inside the image: path -> mode.
    directories: dict[str, int] = field(default_factory=dict)


def busybox(bin_dir: Path) -> Image:
    """Debian's static busybox with a link per applet (`sh`, `httpd`, `wget`, ...) at its usual path."""
    binary = bin_dir / "busybox"
    listing = subprocess.run(
        [str(binary), "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    links = {path: "/bin/busybox" for path in listing if path != "bin/busybox"}
    return Image(
        BUSYBOX,
        files={"bin/busybox": binary},
        cmd=["sh"],
        links=links,
        directories={"tmp": 0o1777, "etc": 0o755, "root": 0o700},
    )


def pause(bin_dir: Path) -> Image:
    """The pod sandbox: kaic-pause alone."""
    return Image(PAUSE, files={"pause": bin_dir / "kaic-pause"}, entrypoint=["/pause"])


def local_images(bin_dir: Path) -> list[Image]:
    return [pause(bin_dir), busybox(bin_dir)]


def _layer(image: Image) -> bytes:
    """A reproducible tar: fixed owner and time, parents before children."""
    entries: dict[str, tarfile.TarInfo] = {}
    contents: dict[str, bytes] = {}

    def add_parents(path: str) -> None:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            if parent not in entries:
                entries[parent] = _info(parent, tarfile.DIRTYPE, 0o755)

    for path, mode in image.directories.items():
        add_parents(path)
        entries[path] = _info(path, tarfile.DIRTYPE, mode)
    for path, source in image.files.items():
        add_parents(path)
        contents[path] = source.read_bytes()
        entries[path] = _info(path, tarfile.REGTYPE, 0o755, size=len(contents[path]))
    for path, target in image.links.items():
        add_parents(path)
        entries[path] = _info(path, tarfile.SYMTYPE, 0o777, linkname=target)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            data = contents.get(path)
            tar.addfile(entries[path], io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _info(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, linkname
    info.uid = info.gid = 0
    info.mtime = 0
    return info


def _descriptor(media_type: str, blob: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": _digest(blob), "size": len(blob)}


def _digest(blob: bytes) -> str:
    return f"sha256:{hashlib.sha256(blob).hexdigest()}"


def _json(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def write_archive(image: Image, path: Path) -> None:
    """Write `image` as an OCI image layout tar that `ctr images import` reads, named by annotation."""
    layer = _layer(image)
    config = _json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                key: value
                for key, value in (("Env", [PATH_ENV]), ("Entrypoint", image.entrypoint), ("Cmd", image.cmd))
                if value
            },
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        }
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": _MANIFEST,
            "config": _descriptor(_CONFIG, config),
            "layers": [_descriptor(_LAYER, layer)],
        }
    )
    index = _json(
        {
            "schemaVersion": 2,
            "mediaType": _INDEX,
            "manifests": [
                _descriptor(_MANIFEST, manifest)
                | {
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": image.ref,
                        "org.opencontainers.image.ref.name": image.ref.rpartition(":")[2],
                    },
                }
            ],
        }
    )
    files = {"oci-layout": _json({"imageLayoutVersion": "1.0.0"}), "index.json": index}
    for blob in (layer, config, manifest):
        files[f"blobs/sha256/{hashlib.sha256(blob).hexdigest()}"] = blob
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = _info(name, tarfile.REGTYPE, 0o644, size=len(data))
            tar.addfile(info, io.BytesIO(data))


def import_images(ctr: Path, address: Path, images: list[Image], work_dir: Path) -> None:
    """Write each image's archive under `work_dir` and import it into containerd's CRI namespace."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for image in images:
        archive = work_dir / f"{image.ref.replace('/', '_').replace(':', '_')}.tar"
        write_archive(image, archive)
        import_archive(ctr, address, archive)


def import_archive(ctr: Path, address: Path, archive: Path) -> None:
    """Import one OCI image layout archive into containerd's CRI namespace, under the name it carries."""
    subprocess.run(
        [str(ctr), "--address", str(address), "--namespace", NAMESPACE, "images", "import", str(archive)],
        check=True,
        capture_output=True,
        text=True,
    )
