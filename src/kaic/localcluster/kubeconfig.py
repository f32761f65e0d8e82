"""Kubeconfig files for the cluster's users: the admin (written for people) and each component."""

from __future__ import annotations

from pathlib import Path

import yaml

from kaic.localcluster.pki import Pair

CONTEXT = "kaic-local"


def write(path: Path, server: str, ca: Path, client: Pair, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [
            {
                "name": user,
                "user": {"client-certificate": str(client.cert), "client-key": str(client.key)},
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
