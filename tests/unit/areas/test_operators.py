"""Operator profiles and the pure parts of the robust_controller probes and the operator install."""

from __future__ import annotations

import pytest

from kaic.areas import operators
from kaic.areas.operators import KUBERAY, TRAINER
from kaic.cli.run import _options
from kaic.localcluster import operator as install
from kaic.settings import Operator

LABELS = {"kaic.dev/run-id": "r1"}
IMAGES = {"ray": "registry.example/ray:1"}


@pytest.mark.parametrize(
    ("crds", "expected"),
    [
        (
            ["trainjobs.trainer.kubeflow.org", "rayclusters.ray.io"],
            "kubeflow-trainer",
        ),  # the first profile wins
        (["rayclusters.ray.io", "rayjobs.ray.io"], "kuberay"),
    ],
)
def test_auto_picks_the_first_installed_operator(crds, expected):
    profile, found = operators.select("auto", crds)
    assert profile.name == expected and found and set(found) <= set(crds)


def test_nothing_installed_names_every_supported_operator():
    with pytest.raises(operators.NotInstalled, match="no supported AI operator.*Kubeflow Trainer.*KubeRay"):
        operators.select("auto", ["widgets.example.com"])


def test_an_operator_asked_for_but_absent_says_how_to_install_it():
    with pytest.raises(operators.NotInstalled, match="KubeRay was asked for .* with its validating webhook"):
        operators.select("kuberay", ["trainjobs.trainer.kubeflow.org"])


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (
            (
                'admission webhook "validator.trainjob.trainer.kubeflow.org" denied the request: '
                "spec.RuntimeRef: ..."
            ),
            "webhook",
        ),
        ('admission webhook "policy.example.com" denied the request: no', "other"),  # someone else's webhook
        (
            (
                'Internal error occurred: failed calling webhook "defaulter.trainjob.trainer.kubeflow.org": '
                "connection refused"
            ),
            "unreachable",
        ),
        (
            'TrainJob.trainer.kubeflow.org "x" is invalid: spec.runtimeRef.name: Required value',
            "other",
        ),  # schema
    ],
)
def test_only_the_operators_own_denial_counts(message, kind):
    assert operators.denial(message, TRAINER.validator) == kind


def test_the_webhook_is_found_by_its_entry_name_in_any_configuration():
    configurations = [
        {"metadata": {"name": "other"}, "webhooks": [{"name": "a.example.com"}]},
        {
            "metadata": {"name": "kuberay-validating-webhook-configuration"},
            "webhooks": [{"name": "vrayjob.kb.io"}, {"name": "vraycluster.kb.io", "failurePolicy": "Fail"}],
        },
    ]
    assert operators.find_webhook(configurations, KUBERAY.validator) == (
        "kuberay-validating-webhook-configuration",
        {"name": "vraycluster.kb.io", "failurePolicy": "Fail"},
    )
    assert operators.find_webhook(configurations, TRAINER.validator) is None


def test_ready_endpoints_leave_out_only_those_marked_not_ready():
    slices = [
        {
            "endpoints": [
                {"addresses": ["100.64.128.1"], "conditions": {"ready": True}},
                {"addresses": ["100.64.128.7"], "conditions": {"ready": False}},
                {"addresses": ["100.64.128.9"]},
            ]
        },
        {"endpoints": None},
    ]
    assert operators.ready_endpoints(slices) == ["100.64.128.1", "100.64.128.9"]


def condition(kind: str, status: str = "True", **extra: str) -> dict:
    return {"type": kind, "status": status, **extra}


@pytest.mark.parametrize(
    ("status", "succeeded", "failed"),
    [
        ({}, False, ""),
        ({"conditions": [condition("Created")]}, False, ""),
        ({"conditions": [condition("Complete")]}, True, ""),
        (
            {
                "conditions": [
                    condition("Complete", "False"),
                    condition("Failed", reason="JobsFailed", message="x"),
                ]
            },
            False,
            "JobsFailed: x",
        ),
    ],
)
def test_trainjob_success_is_the_complete_condition(status, succeeded, failed):
    progress = TRAINER.progress({"status": status})
    assert (progress.succeeded, progress.failed) == (succeeded, failed)


@pytest.mark.parametrize(
    ("status", "succeeded", "failed"),
    [
        ({"state": "ready"}, True, ""),
        ({"conditions": [condition("RayClusterProvisioned")]}, True, ""),
        ({"conditions": [condition("HeadPodReady", "False")]}, False, ""),
        ({"state": "failed", "reason": "bad head"}, False, "bad head"),
    ],
)
def test_raycluster_success_is_provisioned(status, succeeded, failed):
    progress = KUBERAY.progress({"status": status})
    assert (progress.succeeded, progress.failed) == (succeeded, failed)


def test_the_invalid_objects_break_only_a_webhook_rule():
    invalid = TRAINER.invalid("bad", LABELS, IMAGES)
    assert invalid["spec"]["runtimeRef"] == {
        "name": "kaic-no-such-runtime",
        "apiGroup": "trainer.kubeflow.org",
        "kind": "ClusterTrainingRuntime",
    }
    assert (
        TRAINER.valid("good", LABELS, "kaic-busybox", IMAGES)["spec"]["runtimeRef"]["name"] == "kaic-busybox"
    )
    groups = [g["groupName"] for g in KUBERAY.invalid("bad", LABELS, IMAGES)["spec"]["workerGroupSpecs"]]
    assert groups == ["workers", "workers"]  # unique names are the webhook's rule, not the CRD's
    valid = KUBERAY.valid("good", LABELS, "", IMAGES)
    assert [g["groupName"] for g in valid["spec"]["workerGroupSpecs"]] == ["workers"]
    assert valid["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] == IMAGES["ray"]
    assert all(body["metadata"]["labels"] == LABELS for body in (invalid, valid))


def test_resource_paths():
    assert TRAINER.resource.path("ns", "x") == "/apis/trainer.kubeflow.org/v1alpha1/namespaces/ns/trainjobs/x"
    assert TRAINER.runtime.path(name="r") == "/apis/trainer.kubeflow.org/v1alpha1/clustertrainingruntimes/r"


def test_flags_reach_the_probes_settings():
    opts = _options(
        profile="ai-v1.0",
        mode="non-disruptive",
        focus=(),
        skip=(),
        operator="kuberay",
        operator_runtime="mine",
        operator_ready_timeout=60.0,
        operator_reconcile_timeout=90.0,
    )
    assert opts.settings.operator == Operator("kuberay", "mine", 60.0, 90.0)


def test_json_patch_does_what_the_kustomizations_ask():
    doc = {
        "metadata": {"name": "validating-webhook-configuration"},
        "webhooks": [{"name": "a", "clientConfig": {"service": {"name": "webhook-service"}}}, {"name": "b"}],
    }
    ops = [
        {"op": "replace", "path": "/webhooks/0/clientConfig/service/name", "value": "trainer"},
        {"op": "replace", "path": "/metadata/name", "value": "validator.trainer.kubeflow.org"},
        {"op": "add", "path": "/webhooks/1/objectSelector", "value": {"matchLabels": {"x": "y"}}},
        {"op": "replace", "path": "/webhooks/1", "value": {"name": "c"}},
        {"op": "add", "path": "/webhooks/-", "value": {"name": "d"}},
    ]
    patched = install.json_patch(doc, ops)
    assert patched["metadata"]["name"] == "validator.trainer.kubeflow.org"
    assert [w["name"] for w in patched["webhooks"]] == ["a", "c", "d"]
    assert patched["webhooks"][0]["clientConfig"]["service"]["name"] == "trainer"
    with pytest.raises(install.ClusterError, match="unsupported patch operation remove"):
        install.json_patch(doc, [{"op": "remove", "path": "/metadata"}])


def test_placed_applies_namespace_and_prefix_like_kustomize():
    webhook = {
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "mutating-webhook-configuration"},
        "webhooks": [{"clientConfig": {"service": {"name": "webhook-service", "namespace": "system"}}}],
    }
    binding = {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "manager-rolebinding"},
        "roleRef": {"name": "manager-role"},
        "subjects": [{"kind": "ServiceAccount", "name": "controller-manager", "namespace": "system"}],
    }
    account = {"kind": "ServiceAccount", "metadata": {"name": "controller-manager", "namespace": "system"}}
    webhook, binding, account = (
        install.placed(d, "jobset-system", "jobset-") for d in (webhook, binding, account)
    )
    assert (
        "namespace" not in webhook["metadata"]
        and webhook["metadata"]["name"] == "jobset-mutating-webhook-configuration"
    )
    assert webhook["webhooks"][0]["clientConfig"]["service"] == {
        "name": "jobset-webhook-service",
        "namespace": "jobset-system",
    }
    assert binding["roleRef"]["name"] == "jobset-manager-role"
    assert binding["subjects"][0] | {"kind": "ServiceAccount"} == {
        "kind": "ServiceAccount",
        "name": "jobset-controller-manager",
        "namespace": "jobset-system",
    }
    assert account["metadata"] == {"name": "jobset-controller-manager", "namespace": "jobset-system"}
