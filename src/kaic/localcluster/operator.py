"""Kubeflow Trainer on the real node: the upstream controller manager and JobSet, which it drives TrainJobs
with.

Both are built from their Go modules (cluster/trainer) and run as pods of the real node, as their own
manifests deploy them, with the changes this host needs: local images, host networking (pods have no route to
the API server, whose Service is not routed; on the host network they reach it on loopback) and their webhook
and health servers bound to the node address 100.64.128.1, so their Services' endpoints are that address and
the API server calls the webhooks through the egress proxy. CRDs, RBAC, webhook configurations, Deployments
and Services come from the manifests `make cluster` copies out of the modules
(cluster/bin/operator-manifests); this module applies what their kustomizations would (namespace, name prefix,
their JSON patches) and no more. Certificates come from the cluster's PKI instead of the controllers' own
rotators (the kubelet would take a minute to project a rotated Secret), so the webhook configurations carry
the cluster CA as caBundle.

`broken`: the Trainer Service's webhook port points at a port nothing listens on, as when a controller's
webhook server is down while its pods report Ready.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from kaic.kube import client as kube
from kaic.localcluster import images, node
from kaic.localcluster.manifests import COLLECTIONS, create, load
from kaic.localcluster.pki import ClusterPKI
from kaic.localcluster.processes import ClusterError

TRAINER_NAMESPACE = "kubeflow-system"
JOBSET_NAMESPACE = "jobset-system"
TRAINER_SERVICE = "kubeflow-trainer-controller-manager"
JOBSET_PREFIX = "jobset-"
TRAINER_IMAGE = "kaic.local/trainer:1"
JOBSET_IMAGE = "kaic.local/jobset:1"
# The ClusterTrainingRuntime the local cluster offers (`kaic run --operator-runtime kaic-busybox`): one node,
# the local busybox image, placed on the real node; it only says it trained.
RUNTIME = "kaic-busybox"
# Host-network ports on the node address: distinct, since both pods share the node's network.
PORTS = {
    "trainer": {"webhook": 9443, "health": 8081, "metrics": 8443},
    "jobset": {"webhook": 9444, "health": 8082},
}
DEAD_PORT = 9449
START_TIMEOUT = 180.0
CERT_DIR = (
    "/tmp/k8s-webhook-server/serving-certs"  # controller-runtime's default, where both read tls.crt/key
)
RUN_AS = 65532
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ClusterTrainingRuntime",
}


def manifests_dir(bin_dir: Path) -> Path:
    return bin_dir / "operator-manifests"


def manager_image(ref: str, binary: Path) -> images.Image:
    """A controller manager alone in an image, at /manager as upstream's images have it."""
    return images.Image(ref, files={"manager": binary}, entrypoint=["/manager"], directories={"tmp": 0o1777})


def operator_images(bin_dir: Path) -> list[images.Image]:
    return [
        manager_image(ref, bin_dir / binary)
        for ref, binary in ((TRAINER_IMAGE, "trainer-controller-manager"), (JOBSET_IMAGE, "jobset"))
    ]


def import_images(real_node: node.RealNode, bin_dir: Path, wanted: list[images.Image]) -> None:
    binaries = node.find_node_binaries(bin_dir)
    images.import_images(binaries.ctr, real_node.containerd_socket, wanted, real_node.dir / "images")


def json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """The `add` and `replace` operations of RFC 6902, which are all these kustomizations use."""
    for op in ops:
        if op["op"] not in ("add", "replace"):
            raise ClusterError(f"unsupported patch operation {op['op']}")
        *parents, last = [token.replace("~1", "/").replace("~0", "~") for token in op["path"].split("/")[1:]]
        target: Any = doc
        for token in parents:
            target = target[int(token)] if isinstance(target, list) else target[token]
        if isinstance(target, list):
            if last == "-":
                target.append(op["value"])
            elif op["op"] == "add":
                target.insert(int(last), op["value"])
            else:
                target[int(last)] = op["value"]
        else:
            target[last] = op["value"]
    return doc


def placed(obj: dict[str, Any], namespace: str, prefix: str = "") -> dict[str, Any]:
    """What kustomize's `namespace` and `namePrefix` do to these kinds, service references included."""
    meta = obj["metadata"]
    if obj["kind"] != "CustomResourceDefinition":  # named by its group, which kustomize leaves alone
        meta["name"] = prefix + meta["name"]
    if obj["kind"] not in CLUSTER_SCOPED:
        meta["namespace"] = namespace
    for webhook in obj.get("webhooks") or []:
        service = webhook["clientConfig"]["service"]
        service.update(namespace=namespace, name=prefix + service["name"])
    if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
        obj["roleRef"]["name"] = prefix + obj["roleRef"]["name"]
        for subject in obj["subjects"]:
            subject.update(namespace=namespace, name=prefix + subject["name"])
    conversion = ((obj.get("spec") or {}).get("conversion") or {}).get("webhook")
    if obj["kind"] == "CustomResourceDefinition" and conversion:
        service = conversion["clientConfig"]["service"]
        service.update(namespace=namespace, name=prefix + service["name"])
    if obj["kind"] == "Deployment":
        spec = obj["spec"]["template"]["spec"]
        spec["serviceAccountName"] = prefix + spec["serviceAccountName"]
    return obj


class NodeInstall:
    """A controller manager as a pod of the real node, its webhooks trusted through the cluster CA: what the
    Trainer and Kueue installs share."""

    def __init__(self, pki: ClusterPKI, kubeconfig: Path, server_port: int) -> None:
        self.pki = pki
        self.cluster = kube.connect(str(kubeconfig))
        self.server_port = server_port
        self.ca_bundle = base64.b64encode(pki.ca.cert.read_bytes()).decode()

    def _certificate(self, namespace: str, secret: str, service: str) -> dict[str, Any]:
        """The webhook's serving certificate, for the name the API server dials (service.namespace.svc)."""
        dns = (f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local")
        pair = self.pki.issue_serving(f"webhook-{service}", dns, (node.NODE_IP,))
        data = {"tls.crt": pair.cert.read_bytes(), "tls.key": pair.key.read_bytes()}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": secret, "namespace": namespace},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }

    def _config_map(self, name: str, namespace: str, key: str, config: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {key: yaml.safe_dump(config)},
        }

    def _on_the_node(
        self, deployment: dict[str, Any], image: str, ports: dict[str, int], config: str
    ) -> None:
        """Host network on the real node, the local image, the API server on loopback, the config file
        mounted."""
        spec = deployment["spec"]["template"]["spec"]
        spec.update(node.placement(), hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
        spec.setdefault("volumes", []).append({"name": "config", "configMap": {"name": config}})
        (container,) = spec["containers"]
        container.update(
            image=image,
            imagePullPolicy="Never",
            args=["--config=/controller_manager_config.yaml", "--zap-log-level=2"],
            # Explicit env wins over the kubelet's service variables: the `kubernetes` ClusterIP is not
            # routed.
            env=[
                {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                {"name": "KUBERNETES_SERVICE_PORT", "value": str(self.server_port)},
            ],
            ports=[{"name": name, "containerPort": port, "protocol": "TCP"} for name, port in ports.items()],
            resources={"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}},
        )
        container["securityContext"] = {**container.get("securityContext", {}), "runAsUser": RUN_AS}
        for probe in ("livenessProbe", "readinessProbe"):
            container[probe]["httpGet"]["port"] = "health"
            container[probe]["initialDelaySeconds"] = 1
            container[probe]["periodSeconds"] = 2
        mounts = container.setdefault("volumeMounts", [])
        mounts.append(
            {
                "name": "config",
                "mountPath": "/controller_manager_config.yaml",
                "subPath": "controller_manager_config.yaml",
                "readOnly": True,
            }
        )

    def _servers(self, config: dict[str, Any], ports: dict[str, int]) -> dict[str, Any]:
        """Webhook and health servers on the node address, no metrics server, no leader election."""
        config["webhook"] = {**config.get("webhook", {}), "host": node.NODE_IP, "port": ports["webhook"]}
        config["health"] = {
            **config.get("health", {}),
            "healthProbeBindAddress": f"{node.NODE_IP}:{ports['health']}",
        }
        config["metrics"] = {"bindAddress": "0"}
        config["leaderElection"] = {"leaderElect": False}
        return config

    def _trusted(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A webhook configuration or a CRD with a conversion webhook, its clients trusting the cluster CA."""
        if doc["kind"] == "CustomResourceDefinition":
            doc["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"] = self.ca_bundle
        else:
            for webhook in doc["webhooks"]:
                webhook["clientConfig"]["caBundle"] = self.ca_bundle
        return doc

    def _apply(self, objects: list[dict[str, Any]], timeout: float) -> None:
        """Create `objects` in order, each CRD Established before what follows it."""
        for obj in objects:
            create(self.cluster, obj)
            if obj["kind"] == "CustomResourceDefinition":
                self._wait(
                    f"{COLLECTIONS['CustomResourceDefinition']}/{obj['metadata']['name']}",
                    lambda crd: any(
                        c["type"] == "Established" and c["status"] == "True"
                        for c in (crd.get("status") or {}).get("conditions") or []
                    ),
                    timeout,
                    "CRD Established",
                )

    def _wait(self, path: str, check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ((obj := self.cluster.get_or_none(path)) is not None and check(obj)):
            if time.monotonic() > deadline:
                raise ClusterError(f"{path}: not {what} after {timeout:.0f}s")
            time.sleep(0.25)

    def _wait_endpoints(self, namespace: str, service: str, timeout: float) -> None:
        path = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        deadline = time.monotonic() + timeout
        while not any(
            (e.get("conditions") or {}).get("ready")
            for s in self.cluster.list(path, labelSelector=f"kubernetes.io/service-name={service}")
            for e in s.get("endpoints") or []
        ):
            if time.monotonic() > deadline:
                pods = {
                    p["metadata"]["name"]: p.get("status", {}).get("conditions")
                    for p in self.cluster.list(f"/api/v1/namespaces/{namespace}/pods")
                }
                raise ClusterError(
                    f"no ready endpoint for {namespace}/{service} after {timeout:.0f}s; pods: {pods}"
                )
            time.sleep(0.5)

    def _retry(self, call: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                call()
                return
            except ApiException as error:
                if time.monotonic() > deadline:
                    raise ClusterError(f"{kube.describe_error(error)} (after {timeout:.0f}s)") from None
            time.sleep(0.5)


class TrainerInstall(NodeInstall):
    """Everything the operator scenario puts into the cluster, in dependency order."""

    def __init__(self, bin_dir: Path, pki: ClusterPKI, kubeconfig: Path, server_port: int) -> None:
        super().__init__(pki, kubeconfig, server_port)
        self.manifests = manifests_dir(bin_dir)

    def objects(self) -> list[dict[str, Any]]:
        trainer, jobset = self.manifests / "trainer", self.manifests / "jobset"
        return [
            *(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                for ns in (TRAINER_NAMESPACE, JOBSET_NAMESPACE)
            ),
            # JobSet's CRD has one version: its conversion-webhook patch would only add a dependency on the
            # webhook.
            *load(jobset / "crd/bases/jobset.x-k8s.io_jobsets.yaml"),
            *(
                doc
                for crd in sorted((trainer / "crds").glob("trainer.kubeflow.org_*.yaml"))
                for doc in load(crd)
            ),
            *(
                placed(doc, JOBSET_NAMESPACE, JOBSET_PREFIX)
                for name in ("service_account", "role", "role_binding")
                for doc in load(jobset / f"rbac/{name}.yaml")
            ),
            *(
                placed(doc, TRAINER_NAMESPACE)
                for name in ("service_account", "role", "role_binding")
                for doc in load(trainer / f"rbac/{name}.yaml")
            ),
            self._certificate(
                JOBSET_NAMESPACE, f"{JOBSET_PREFIX}webhook-server-cert", f"{JOBSET_PREFIX}webhook-service"
            ),
            self._certificate(TRAINER_NAMESPACE, "kubeflow-trainer-webhook-cert", TRAINER_SERVICE),
            *self._jobset_manager(jobset),
            *self._trainer_manager(trainer),
            *self._webhooks(
                jobset / "webhook",
                JOBSET_NAMESPACE,
                JOBSET_PREFIX,
                {
                    "patches/mutating-patch.yaml": "MutatingWebhookConfiguration",
                    "patches/validating-patch.yaml": "ValidatingWebhookConfiguration",
                },
            ),
            *self._webhooks(
                trainer / "webhook",
                TRAINER_NAMESPACE,
                "",
                {
                    "patch_mutating.yaml": "MutatingWebhookConfiguration",
                    "patch_validating.yaml": "ValidatingWebhookConfiguration",
                },
            ),
        ]

    def _trainer_manager(self, trainer: Path) -> list[dict[str, Any]]:
        deployment, service = (
            placed(doc, TRAINER_NAMESPACE) for doc in load(trainer / "manager/manager.yaml")
        )
        (config,) = load(trainer / "manager/controller_manager_config.yaml")
        config = self._servers(config, PORTS["trainer"])
        config["certManagement"] = {"enable": False}
        self._on_the_node(deployment, TRAINER_IMAGE, PORTS["trainer"], "kubeflow-trainer-config")
        service["spec"]["ports"] = [p for p in service["spec"]["ports"] if p["name"] == "webhook-server"]
        return [
            self._config_map(
                "kubeflow-trainer-config", TRAINER_NAMESPACE, "controller_manager_config.yaml", config
            ),
            deployment,
            service,
        ]

    def _jobset_manager(self, jobset: Path) -> list[dict[str, Any]]:
        docs = [placed(doc, JOBSET_NAMESPACE, JOBSET_PREFIX) for doc in load(jobset / "manager/manager.yaml")]
        (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
        (config,) = load(jobset / "manager/controller_manager_config.yaml")
        config = self._servers(config, PORTS["jobset"])
        config["internalCertManagement"] = {"enable": False}
        self._on_the_node(deployment, JOBSET_IMAGE, PORTS["jobset"], f"{JOBSET_PREFIX}manager-config")
        spec = deployment["spec"]["template"]["spec"]
        # What JobSet's default overlay adds (config/default/manager_webhook_patch.yaml): the certificate
        # volume.
        spec["volumes"].append(
            {"name": "cert", "secret": {"secretName": f"{JOBSET_PREFIX}webhook-server-cert"}}
        )
        spec["containers"][0]["volumeMounts"].append(
            {"name": "cert", "mountPath": CERT_DIR, "readOnly": True}
        )
        (service,) = [
            placed(doc, JOBSET_NAMESPACE, JOBSET_PREFIX) for doc in load(jobset / "webhook/service.yaml")
        ]
        service["spec"]["ports"][0]["targetPort"] = PORTS["jobset"]["webhook"]
        return [
            self._config_map(
                f"{JOBSET_PREFIX}manager-config", JOBSET_NAMESPACE, "controller_manager_config.yaml", config
            ),
            deployment,
            service,
        ]

    def _webhooks(
        self, directory: Path, namespace: str, prefix: str, patches: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The module's webhook configurations with its kustomization's patches, trusting the cluster CA."""
        found = []
        for doc in load(directory / "manifests.yaml"):
            for patch, kind in patches.items():
                if doc["kind"] == kind:
                    json_patch(doc, yaml.safe_load((directory / patch).read_text()))
            found.append(self._trusted(placed(doc, namespace, prefix)))
        return found

    def runtime(self) -> dict[str, Any]:
        """kaic's runtime: torch-distributed's shape (one `node` job, the trainer step) with the local
        busybox."""
        container = {
            "name": "node",
            "image": images.BUSYBOX,
            "imagePullPolicy": "Never",
            "command": ["sh", "-c", "echo kaic-busybox trained"],
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": True,
                "runAsUser": RUN_AS,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }
        pod = {"metadata": {}, "spec": {**node.placement(), "containers": [container]}}
        job = {
            "name": "node",
            "template": {
                "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
                "spec": {"template": pod},
            },
        }
        return {
            "apiVersion": "trainer.kubeflow.org/v1alpha1",
            "kind": "ClusterTrainingRuntime",
            "metadata": {"name": RUNTIME},
            "spec": {"mlPolicy": {"numNodes": 1}, "template": {"spec": {"replicatedJobs": [job]}}},
        }

    def up(self, timeout: float, broken: bool) -> None:
        """Install, wait for both webhooks to serve, offer the runtime; break the Trainer webhook if asked."""
        self._apply(self.objects(), timeout)
        for namespace, name in (
            (JOBSET_NAMESPACE, f"{JOBSET_PREFIX}webhook-service"),
            (TRAINER_NAMESPACE, TRAINER_SERVICE),
        ):
            self._wait_endpoints(namespace, name, timeout)
        # Created through the real webhook: it answers once its runtimes' informers are synced.
        self._retry(
            lambda: self.cluster.create(COLLECTIONS["ClusterTrainingRuntime"], self.runtime()), timeout
        )
        if broken:
            path = f"/api/v1/namespaces/{TRAINER_NAMESPACE}/services/{TRAINER_SERVICE}"
            service = self.cluster.get(path)
            service["spec"]["ports"][0]["targetPort"] = DEAD_PORT
            self.cluster.request("PUT", path, body=service)
