"""Kueue on the real node: the upstream controller manager, which admits queued Jobs by quota.

Built from its module (cluster/trainer, `make kueue`) and run as Kubeflow Trainer is (`operator.py`, whose
install this shares): a host-network pod of the real node with its webhook and health servers on the node
address, certificates from the cluster's PKI, and the manifests `make kueue` copies out of the module
(cluster/bin/kueue-manifests) with what Kueue's `config/default` kustomization does to them (namespace
`kueue-system`, name prefix `kueue-`, its labels and patches, the CRDs' conversion webhooks). Left out: the
visibility API server and its APIServices (feature gate VisibilityOnDemand off), the metrics server, leader
election and the internal certificate rotator. Kueue manages batch/v1 Jobs only, and `waitForPodsReady`
evicts an admitted Job whose pods are not all Ready in time, so an admitted gang that cannot start is
requeued whole.

`no-job-integration`: Kueue is set up for JobSets only. Nothing reconciles Jobs, so a queued Job gets no
Workload and is never admitted. Its Job webhooks (`mjob.kb.io`, `vjob.kb.io`) are left out of the webhook
configurations, as Kueue's handler for a disabled Job integration answers every Job create with a 500
(cluster/README.md, "Kueue").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kaic.localcluster import images
from kaic.localcluster.manifests import COLLECTIONS, load
from kaic.localcluster.operator import CERT_DIR, NodeInstall, manager_image, placed
from kaic.localcluster.pki import ClusterPKI

NAMESPACE = "kueue-system"
PREFIX = "kueue-"
SERVICE = f"{PREFIX}webhook-service"
IMAGE = "kaic.local/kueue:1"
BINARY = "kueue-controller-manager"
MANIFESTS = "kueue-manifests"
API = "kueue.x-k8s.io/v1beta2"
MODES = ("serving", "no-job-integration")
# Beside Trainer's and JobSet's ports on the node address (operator.PORTS).
PORTS = {"webhook": 9445, "health": 8083}
# Read at start even with the metrics server off (cmd/kueue/main.go): the serving certificate again.
METRICS_CERT_DIR = "/etc/kueue/metrics/certs"
JOB_FRAMEWORK = "batch/job"
# `no-job-integration`'s only framework: its API is not served here, so Kueue waits for it and does nothing.
OTHER_FRAMEWORK = "jobset.x-k8s.io/jobset"
JOB_WEBHOOKS = ("mjob.kb.io", "vjob.kb.io")
# Kueue evicts an admitted workload whose pods are not all Ready within this (kwok's pods are Ready in
# seconds).
PODS_READY_TIMEOUT = "30s"
# From components/rbac: the manager's own identity and roles (the user-facing editor/viewer roles are not
# needed).
RBAC = (
    "service_account",
    "role",
    "role_binding",
    "leader_election_role",
    "leader_election_role_binding",
    "manager_secrets_role",
    "manager_secrets_role_binding",
)


def image(bin_dir: Path) -> images.Image:
    return manager_image(IMAGE, bin_dir / BINARY)


def labelled(obj: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What a kustomization's `labels` do to a Deployment or Service: every pair on the object, and on its pod
    template and selectors where the entry includes them."""
    for entry in entries:
        pairs = entry["pairs"]
        obj["metadata"].setdefault("labels", {}).update(pairs)
        if obj["kind"] == "Deployment":
            spec = obj["spec"]
            if entry.get("includeSelectors") or entry.get("includeTemplates"):
                spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
            if entry.get("includeSelectors"):
                spec.setdefault("selector", {}).setdefault("matchLabels", {}).update(pairs)
        elif obj["kind"] == "Service" and entry.get("includeSelectors"):
            obj["spec"].setdefault("selector", {}).update(pairs)
    return obj


def merge_webhooks(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A strategic-merge patch of a webhook configuration: each patched webhook, found by name, takes the
    patch's fields."""
    by_name = {webhook["name"]: webhook for webhook in doc["webhooks"]}
    for change in patch.get("webhooks") or []:
        by_name[change["name"]].update({k: v for k, v in change.items() if k != "name"})
    return doc


class KueueInstall(NodeInstall):
    """Everything the kueue scenarios put into the cluster, in dependency order."""

    def __init__(self, bin_dir: Path, pki: ClusterPKI, kubeconfig: Path, server_port: int, mode: str) -> None:
        super().__init__(pki, kubeconfig, server_port)
        self.manifests = bin_dir / MANIFESTS
        self.mode = mode
        kustomization = yaml.safe_load((self.manifests / "default/kustomization.yaml").read_text())
        self.labels: list[dict[str, Any]] = kustomization["labels"]

    def objects(self) -> list[dict[str, Any]]:
        return [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            *self._crds(),
            *(
                placed(doc, NAMESPACE, PREFIX)
                for name in RBAC
                for doc in load(self.manifests / f"rbac/{name}.yaml")
            ),
            self._certificate(NAMESPACE, f"{PREFIX}webhook-server-cert", SERVICE),
            *self._manager(),
            *self._webhooks(),
        ]

    def _crds(self) -> list[dict[str, Any]]:
        """The CRDs in their kustomization's order, with its conversion-webhook patches (v1beta1 is served
        through Kueue's /convert)."""
        directory = self.manifests / "crd"
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        conversions = {}
        for patch in kustomization["patches"]:
            (doc,) = load(directory / patch["path"])
            conversions[doc["metadata"]["name"]] = doc["spec"]["conversion"]
        crds = []
        for resource in kustomization["resources"]:
            (crd,) = load(directory / resource)
            if conversion := conversions.get(crd["metadata"]["name"]):
                crd["spec"]["conversion"] = conversion
                crd = self._trusted(placed(crd, NAMESPACE, PREFIX))
            crds.append(crd)
        return crds

    def config(self) -> dict[str, Any]:
        """Upstream's controller_manager_config.yaml, changed as cluster/README.md's Kueue section says."""
        (config,) = load(self.manifests / "manager/controller_manager_config.yaml")
        config = self._servers(config, PORTS)
        frameworks = [JOB_FRAMEWORK if self.mode == "serving" else OTHER_FRAMEWORK]
        config.update(
            namespace=NAMESPACE,
            internalCertManagement={"enable": False},
            featureGates={"VisibilityOnDemand": False},
            integrations={"frameworks": frameworks},
            waitForPodsReady={"timeout": PODS_READY_TIMEOUT},
        )
        return config

    def _manager(self) -> list[dict[str, Any]]:
        (deployment,) = [
            d for d in load(self.manifests / "manager/manager.yaml") if d["kind"] == "Deployment"
        ]
        deployment = labelled(placed(deployment, NAMESPACE, PREFIX), self.labels)
        config_map = f"{PREFIX}manager-config"
        self._on_the_node(deployment, IMAGE, PORTS, config_map)
        # What the default overlay adds (manager_webhook_patch.yaml), and the metrics path Kueue reads anyway.
        spec = deployment["spec"]["template"]["spec"]
        spec["volumes"].append({"name": "cert", "secret": {"secretName": f"{PREFIX}webhook-server-cert"}})
        spec["containers"][0]["volumeMounts"] += [
            {"name": "cert", "mountPath": path, "readOnly": True} for path in (CERT_DIR, METRICS_CERT_DIR)
        ]
        (service,) = load(self.manifests / "webhook/service.yaml")
        service = labelled(placed(service, NAMESPACE, PREFIX), self.labels)
        service["spec"]["ports"][0]["targetPort"] = PORTS["webhook"]
        return [
            self._config_map(config_map, NAMESPACE, "controller_manager_config.yaml", self.config()),
            deployment,
            service,
        ]

    def _webhooks(self) -> list[dict[str, Any]]:
        """Both webhook configurations with their kustomization's patches (namespace selectors), trusting the
        cluster CA; without the Job webhooks when Kueue does not manage Jobs."""
        directory = self.manifests / "webhook"
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        patches = [yaml.safe_load(patch["patch"]) for patch in kustomization["patches"]]
        found = []
        for doc in load(directory / "manifests.yaml"):
            for patch in patches:
                if (patch["kind"], patch["metadata"]["name"]) == (doc["kind"], doc["metadata"]["name"]):
                    merge_webhooks(doc, patch)
            if self.mode != "serving":
                doc["webhooks"] = [w for w in doc["webhooks"] if w["name"] not in JOB_WEBHOOKS]
            found.append(self._trusted(placed(doc, NAMESPACE, PREFIX)))
        return found

    def up(self, timeout: float) -> None:
        """Install, wait for the webhook Service's endpoint, then until Kueue's own webhooks answer (a
        dry-run ResourceFlavor passes its defaulting and validating webhooks)."""
        self._apply(self.objects(), timeout)
        self._wait_endpoints(NAMESPACE, SERVICE, timeout)
        flavor = {"apiVersion": API, "kind": "ResourceFlavor", "metadata": {"name": "kaic-check"}, "spec": {}}
        self._retry(lambda: self.cluster.create(COLLECTIONS["ResourceFlavor"], flavor, dry_run=True), timeout)
