"""The local cluster's Gateway API implementation: the standard Gateway API CRDs and Traefik as a host
process.

The CRDs are the standard install of the sigs.k8s.io/gateway-api module (`make cluster` copies them into
cluster/bin/gateway-api-crds); Traefik (cluster/gateway, upstream's main) runs its kubernetesGateway provider
beside the real node's daemons: it reads the API server over loopback with a client certificate bound to the
ClusterRole Traefik documents for that provider, proxies on the node address 100.64.128.1 (pods reach it over
the bridge; it reaches the backend pods the same way) and writes GatewayClass, Gateway and route status
itself. The GatewayClass `traefik` names Traefik's controller, as an install by Traefik's chart would.

`wrong-entrypoint`: Traefik's HTTP entrypoint listens on :8000 (its chart's container port) while Gateways ask
for port 80, as the Gateway API conformance suite's do: Traefik accepts the class but has no entrypoint for
the listener, so such a Gateway is never Programmed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kaic.kube import client as kube
from kaic.localcluster import kubeconfig
from kaic.localcluster.manifests import create, load, wait_condition
from kaic.localcluster.node import NODE_IP
from kaic.localcluster.pki import ClientIdentity, ClusterPKI
from kaic.localcluster.processes import ClusterError, Managed, free_ports, wait_healthy

NAME = "traefik"
IDENTITY = ClientIdentity("gateway", "kaic-traefik")
CLASS = "traefik"
CONTROLLER = "traefik.io/gateway-controller"  # Traefik's controllerName (pkg/provider/kubernetes/gateway)
LISTENER_PORT = 80
WRONG_PORT = 8000
MODES = ("serving", "wrong-entrypoint")
CRDS_DIR = "gateway-api-crds"
# Traefik's docs/content/reference/dynamic-configuration/kubernetes-gateway-rbac.yml
RBAC_FILE = "traefik-gateway-rbac.yml"


class GatewayInstall:
    """CRDs, Traefik's RBAC for kaic's client identity, the GatewayClass and the Traefik process."""

    def __init__(
        self, bin_dir: Path, pki: ClusterPKI, kubeconfig_path: Path, state_dir: Path, process: Any
    ) -> None:
        self.bin_dir, self.pki, self.state_dir, self.process = bin_dir, pki, state_dir, process
        self.cluster = kube.connect(str(kubeconfig_path))
        for needed in (bin_dir / NAME, bin_dir / CRDS_DIR, bin_dir / RBAC_FILE):
            if not needed.exists():
                raise ClusterError(f"{needed} is missing; build it with `make cluster`")

    def install_crds(self, timeout: float) -> None:
        """The standard install, in its kustomization's order; every CRD Established before Traefik starts."""
        directory = self.bin_dir / CRDS_DIR
        order = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
        crds = []
        for resource in order:
            for doc in load(directory / Path(resource).name):
                create(self.cluster, doc)
                if doc["kind"] == "CustomResourceDefinition":
                    crds.append(doc["metadata"]["name"])
        for name in crds:
            wait_condition(self.cluster, "CustomResourceDefinition", name, "Established", timeout)

    def grant(self) -> None:
        """Traefik's documented ClusterRole, bound to kaic's user for Traefik instead of a ServiceAccount."""
        role = next(doc for doc in load(self.bin_dir / RBAC_FILE) if doc["kind"] == "ClusterRole")
        name = f"kaic-{role['metadata']['name']}"
        create(self.cluster, {**role, "metadata": {"name": name}})
        create(
            self.cluster,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [
                    {"kind": "User", "name": IDENTITY.user, "apiGroup": "rbac.authorization.k8s.io"}
                ],
            },
        )

    def start(self, server: str, mode: str, timeout: float) -> dict[str, Any]:
        """Traefik with the kubernetesGateway provider only; /ping on loopback tells when it serves."""
        if mode not in MODES:
            raise ClusterError(f"unknown gateway mode {mode!r} (one of {', '.join(MODES)})")
        config = self.state_dir / f"{IDENTITY.file_stem}.kubeconfig"
        kubeconfig.write(config, server, self.pki.ca.cert, self.pki.issue_client(IDENTITY), IDENTITY.user)
        web = LISTENER_PORT if mode == "serving" else WRONG_PORT
        (ping,) = free_ports(1)
        argv = [
            str(self.bin_dir / NAME),
            f"--entrypoints.web.address={NODE_IP}:{web}",
            f"--entrypoints.traefik.address=127.0.0.1:{ping}",
            "--ping=true",
            "--providers.kubernetesgateway=true",
            f"--providers.kubernetesgateway.statusaddress.ip={NODE_IP}",
            "--global.checknewversion=false",  # nothing leaves this host
            "--global.sendanonymoususage=false",
            "--log.level=INFO",
            "--log.nocolor=true",
        ]
        process: Managed = self.process(NAME)
        # Traefik's transports honour the proxy variables; its backends are pods on the node's bridge, reached
        # directly.
        no_proxy = {name: "" for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
        process.start(argv, env={"KUBECONFIG": str(config), **no_proxy})
        wait_healthy(process, f"http://127.0.0.1:{ping}/ping", timeout)
        return {"web": f"{NODE_IP}:{web}", "ping": ping, "mode": mode}

    def offer_class(self, timeout: float) -> None:
        """The GatewayClass an install of Traefik creates; Traefik itself must accept it."""
        create(
            self.cluster,
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "GatewayClass",
                "metadata": {"name": CLASS},
                "spec": {"controllerName": CONTROLLER},
            },
        )
        wait_condition(self.cluster, "GatewayClass", CLASS, "Accepted", timeout, self.process(NAME))


def install(
    bin_dir: Path,
    pki: ClusterPKI,
    kubeconfig_path: Path,
    state_dir: Path,
    process: Any,
    server: str,
    mode: str,
    timeout: float,
) -> dict[str, Any]:
    """CRDs, RBAC, Traefik, then its GatewayClass Accepted."""
    gateway = GatewayInstall(bin_dir, pki, kubeconfig_path, state_dir, process)
    gateway.install_crds(timeout)
    gateway.grant()
    info = gateway.start(server, mode, timeout)
    gateway.offer_class(timeout)
    return info
