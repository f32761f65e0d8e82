"""Kueue's install on the real node, checked without a cluster: what the kustomization would do, and what
the broken variant leaves out."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from kaic.localcluster import kueue, launcher
from kaic.localcluster.operator import placed
from kaic.localcluster.pki import ClusterPKI
from kaic.localcluster.scenarios import SCENARIOS

LABELS = [
    {"pairs": {"app.kubernetes.io/name": "kueue"}, "includeTemplates": True},
    {"pairs": {"control-plane": "controller-manager"}, "includeSelectors": True},
]


def test_labels_reach_templates_and_selectors_as_the_entries_say():
    deployment = {"kind": "Deployment", "metadata": {"name": "m"}, "spec": {"template": {"spec": {}}}}
    service = {"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": []}}
    kueue.labelled(deployment, LABELS)
    kueue.labelled(service, LABELS)
    both = {"app.kubernetes.io/name": "kueue", "control-plane": "controller-manager"}
    assert deployment["metadata"]["labels"] == deployment["spec"]["template"]["metadata"]["labels"] == both
    assert deployment["spec"]["selector"] == {"matchLabels": {"control-plane": "controller-manager"}}
    assert service["spec"]["selector"] == {"control-plane": "controller-manager"}


def test_a_webhook_patch_merges_by_name():
    doc = {"webhooks": [{"name": "mpod.kb.io", "sideEffects": "None"}, {"name": "mjob.kb.io"}]}
    selector = {"matchExpressions": [{"key": "k", "operator": "NotIn", "values": ["kube-system"]}]}
    kueue.merge_webhooks(doc, {"webhooks": [{"name": "mpod.kb.io", "namespaceSelector": selector}]})
    assert doc["webhooks"] == [
        {"name": "mpod.kb.io", "sideEffects": "None", "namespaceSelector": selector},
        {"name": "mjob.kb.io"},
    ]


def test_placed_keeps_crd_names_and_places_their_conversion_service_and_role_bindings():
    crd = {
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "workloads.kueue.x-k8s.io"},
        "spec": {
            "conversion": {
                "webhook": {"clientConfig": {"service": {"name": "webhook-service", "namespace": "x"}}}
            }
        },
    }
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "leader-election-rolebinding", "namespace": "system"},
        "roleRef": {"kind": "Role", "name": "leader-election-role"},
        "subjects": [{"kind": "ServiceAccount", "name": "controller-manager", "namespace": "system"}],
    }
    placed(crd, "kueue-system", "kueue-")
    placed(binding, "kueue-system", "kueue-")
    assert crd["metadata"] == {"name": "workloads.kueue.x-k8s.io"}
    assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"] == {
        "name": "kueue-webhook-service",
        "namespace": "kueue-system",
    }
    assert binding["metadata"] == {"name": "kueue-leader-election-rolebinding", "namespace": "kueue-system"}
    assert binding["roleRef"]["name"] == "kueue-leader-election-role"
    assert binding["subjects"][0]["name"] == "kueue-controller-manager"


def test_only_the_kueue_scenarios_run_kueue_without_native_gang_scheduling():
    running = {name: shape for name, shape in SCENARIOS.items() if shape.kueue}
    assert set(running) == {"kueue", "broken-kueue"}
    assert {shape.kueue for shape in running.values()} == set(kueue.MODES)
    for shape in running.values():
        assert shape.real_node and shape.gates == {"GenericWorkload": False} and shape.runtime_config == {}


@pytest.fixture
def install() -> object:
    """The install of either mode over the manifests `make kueue` copied (skipped without them)."""
    bin_dir = launcher.bin_dir()
    if not (bin_dir / kueue.MANIFESTS).exists():
        pytest.skip(f"needs {bin_dir / kueue.MANIFESTS} (`make kueue`)")

    def make(mode: str, tmp: Path) -> kueue.KueueInstall:
        pki = ClusterPKI(tmp / "pki")
        pki.create("100.96.0.1")
        with mock.patch("kaic.kube.client.connect"):
            return kueue.KueueInstall(bin_dir, pki, tmp / "kubeconfig", 6443, mode)

    return make


def webhook_names(objects: list[dict]) -> set[str]:
    return {w["name"] for o in objects if o["kind"].endswith("WebhookConfiguration") for w in o["webhooks"]}


def test_the_broken_mode_differs_only_in_the_job_integration(install, tmp_path):
    serving, broken = install("serving", tmp_path / "a"), install("no-job-integration", tmp_path / "b")
    assert serving.config()["integrations"] == {"frameworks": [kueue.JOB_FRAMEWORK]}
    assert broken.config()["integrations"] == {"frameworks": [kueue.OTHER_FRAMEWORK]}
    assert {k: v for k, v in serving.config().items() if k != "integrations"} == {
        k: v for k, v in broken.config().items() if k != "integrations"
    }
    assert webhook_names(serving.objects()) - webhook_names(broken.objects()) == set(kueue.JOB_WEBHOOKS)


def test_the_config_serves_on_the_node_address_without_what_is_left_out(install, tmp_path):
    config = install("serving", tmp_path).config()
    assert config["webhook"] == {"host": "100.64.128.1", "port": kueue.PORTS["webhook"]}
    assert config["health"]["healthProbeBindAddress"] == f"100.64.128.1:{kueue.PORTS['health']}"
    assert config["internalCertManagement"] == {"enable": False}
    assert config["featureGates"] == {"VisibilityOnDemand": False}
    assert config["waitForPodsReady"] == {"timeout": kueue.PODS_READY_TIMEOUT}


def test_every_conversion_webhook_and_webhook_trusts_the_cluster_ca(install, tmp_path):
    made = install("serving", tmp_path)
    objects = made.objects()
    conversions = [
        o["spec"]["conversion"]["webhook"]["clientConfig"]
        for o in objects
        if o["kind"] == "CustomResourceDefinition" and "conversion" in o["spec"]
    ]
    hooks = [
        w["clientConfig"]
        for o in objects
        if o["kind"].endswith("WebhookConfiguration")
        for w in o["webhooks"]
    ]
    assert len(conversions) == 5 and hooks
    for client_config in conversions + hooks:
        assert client_config["service"]["name"] == kueue.SERVICE
        assert client_config["service"]["namespace"] == kueue.NAMESPACE
        assert client_config["caBundle"] == made.ca_bundle
    assert not [o for o in objects if o["kind"] == "APIService"]
