"""The pure parts of the cluster autoscaling probes and of the local autoscaler's set-up."""

from __future__ import annotations

import pytest
import yaml

from kaic.areas import autoscaling
from kaic.localcluster import autoscaler, karpenter, topology
from kaic.localcluster.launcher import components
from kaic.localcluster.scenarios import SCENARIOS


def node(name, uid="u", labels=None, ready=True, taints=(), unschedulable=False):
    return {
        "metadata": {"name": name, "uid": uid, "labels": labels or {"pool": "gpu"}},
        "spec": {"taints": list(taints), "unschedulable": unschedulable},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def pod(
    name,
    ns="other",
    node_name="",
    selector=None,
    resources=None,
    phase="Pending",
    owner=None,
    annotations=None,
):
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "ownerReferences": [owner] if owner else [],
            "annotations": annotations or {},
        },
        "spec": {
            "nodeName": node_name,
            "nodeSelector": selector or {},
            "containers": [{"name": "c", "resources": resources or {}}],
        },
        "status": {"phase": phase},
    }


@pytest.mark.parametrize("value", ["pool=gpu", "kaic.io/node-pool=autoscale", "a.b/c_d=e-f.g"])
def test_pool_label_accepted(value):
    key, label = autoscaling.parse_pool_label(value)
    assert f"{key}={label}" == value


@pytest.mark.parametrize("value", ["pool", "a=b=c", "=x", "x=", "bad key=x", "k=-bad"])
def test_pool_label_refused(value):
    with pytest.raises(ValueError):
        autoscaling.parse_pool_label(value)


def test_pool_nodes_only_usable_members():
    nodes = [
        node("a", "1"),
        node("b", "2", ready=False),
        node("c", "3", unschedulable=True),
        node("d", "4", taints=[{"key": autoscaling.TO_BE_DELETED_TAINT, "effect": "NoSchedule"}]),
        node("e", "5", labels={"pool": "cpu"}),
    ]
    assert autoscaling.pool_nodes(nodes, "pool", "gpu") == {"a": "1"}


def test_foreign_workloads():
    gpu = {"limits": {"example.com/gpu": "1"}}
    pods = [
        pod("mine", ns="kaic", selector={"pool": "gpu"}),
        pod("on-pool", node_name="a", phase="Running"),
        pod("waiting", selector={"pool": "gpu"}),
        pod("wants-gpu", resources=gpu),
        pod("done", node_name="a", phase="Succeeded"),
        pod("daemon", node_name="a", phase="Running", owner={"kind": "DaemonSet", "controller": True}),
        pod("mirror", node_name="a", phase="Running", annotations={"kubernetes.io/config.mirror": "x"}),
        pod("elsewhere", node_name="z", phase="Running", resources=gpu),
    ]
    assert autoscaling.foreign_workloads(pods, "kaic", {"a": "1"}, "pool", "gpu", "example.com/gpu") == [
        "other/on-pool runs on pool node a",
        "other/waiting is pending for the pool",
        "other/wants-gpu is pending for example.com/gpu",
    ]
    empty = autoscaling.foreign_workloads(pods, "kaic", {}, "pool", "gpu", "example.com/gpu")
    assert empty == [
        "other/waiting is pending for the pool",
        "other/wants-gpu is pending for example.com/gpu",
    ], "an empty (Karpenter) pool is isolated only while nothing else waits for it"


def test_scaled_down_needs_the_exact_baseline():
    baseline = {"a": "1"}
    assert autoscaling.scaled_down({"a": "1"}, baseline, ("b", "2"))
    assert not autoscaling.scaled_down({"a": "1", "b": "2"}, baseline, ("b", "2"))
    assert not autoscaling.scaled_down({"a": "9"}, baseline, ("b", "2")), (
        "a replaced baseline node is no return"
    )
    assert not autoscaling.scaled_down({}, baseline, ("b", "2"))
    assert autoscaling.scaled_down({}, {}, ("b", "2")), "an empty pool is back once the added node is gone"
    assert not autoscaling.scaled_down({"b": "2"}, {}, ("b", "2"))


def test_back_to_baseline_tells_a_deleted_node_from_one_only_marked():
    baseline, added = {"a": "1"}, ("b", "2")
    marked = node("b", "2", taints=[{"key": autoscaling.TO_BE_DELETED_TAINT, "effect": "NoSchedule"}])
    assert (
        autoscaling.back_to_baseline([node("a", "1"), marked], "pool", "gpu", baseline, added) == "unusable"
    )
    assert autoscaling.back_to_baseline([node("a", "1")], "pool", "gpu", baseline, added) == "deleted"
    # Registered again under its name (a new uid), even NotReady, it is not gone.
    again = node("b", "3", ready=False)
    assert autoscaling.back_to_baseline([node("a", "1"), again], "pool", "gpu", baseline, added) == "unusable"
    assert (
        autoscaling.back_to_baseline([node("a", "1"), node("b", "2")], "pool", "gpu", baseline, added) == ""
    )
    assert autoscaling.back_to_baseline([], "pool", "gpu", baseline, added) == "", "a baseline node went too"


def test_karpenter_pools_by_template_label_or_single_value_requirement():
    def nodepool(name, labels=None, requirements=()):
        template = {"metadata": {"labels": labels or {}}, "spec": {"requirements": list(requirements)}}
        return {"metadata": {"name": name}, "spec": {"template": template}}

    pools = [
        nodepool("labelled", {"pool": "gpu"}),
        nodepool("required", requirements=[{"key": "pool", "operator": "In", "values": ["gpu"]}]),
        nodepool("either", requirements=[{"key": "pool", "operator": "In", "values": ["gpu", "cpu"]}]),
        nodepool("other", {"pool": "cpu"}),
        {"metadata": {"name": "bare"}, "spec": {}},
    ]
    assert autoscaling.karpenter_pools(pools, "pool", "gpu") == ["labelled", "required"]
    local = SCENARIOS["karpenter"].karpenter
    assert local is not None
    key, value = autoscaling.parse_pool_label(local.label)
    assert autoscaling.karpenter_pools([karpenter.node_pool(local)], key, value) == [karpenter.NODE_POOL]


def test_detection_trail_and_findings():
    nothing = {"karpenterCrds": [], "clusterApiCrds": [], "provisioningRequestCrd": False}
    assert autoscaling.found_autoscalers(nothing) == []
    trail = autoscaling.trail(nothing)
    assert (
        "cluster-autoscaler-status" in trail
        and "Karpenter CRDs absent" in trail
        and "Cluster API CRDs absent" in trail
    )
    assert autoscaling.found_autoscalers({"clusterAutoscalerStatus": "health: Healthy"})
    assert autoscaling.found_autoscalers({"karpenterNodePools": ["gpu"]}) == ["Karpenter NodePools ['gpu']"]
    deployment = {
        "metadata": {"name": "ca"},
        "spec": {
            "template": {
                "spec": {"containers": [{"image": "registry.k8s.io/autoscaling/cluster-autoscaler:v1.36.1"}]}
            }
        },
    }
    assert autoscaling.is_cluster_autoscaler(deployment)
    assert not autoscaling.is_cluster_autoscaler({"metadata": {"name": "web"}, "spec": {}})
    assert autoscaling.found_autoscalers({"clusterAutoscalerDeployments": ["ca"]})
    crds_only = {"karpenterCrds": ["nodepools.karpenter.sh"], "karpenterNodePools": []}
    assert autoscaling.found_autoscalers(crds_only) == [], "CRDs without a NodePool scale nothing"


def test_local_autoscaler_objects():
    pool = SCENARIOS["autoscaling"].autoscaler
    assert pool is not None and (pool.min_size, pool.max_size, pool.gpus_per_node) == (1, 2, 1)
    config, templates = autoscaler.config_maps(pool)
    assert yaml.safe_load(config["data"]["config"])["nodegroups"] == {
        "fromNodeAnnotationKey": autoscaler.GROUP_ANNOTATION
    }
    (template,) = yaml.safe_load(templates["data"]["templates"])["items"]
    assert template["metadata"]["annotations"][autoscaler.MAX_ANNOTATION] == "2"
    assert template["status"]["allocatable"]["example.com/gpu"] == "1"
    assert "kubernetes.io/hostname" not in template["metadata"]["labels"], "CA would copy it onto every node"
    assert autoscaling.parse_pool_label(pool.label) == ("kaic.io/node-pool", "autoscale")
    assert not any(f.startswith("--max-nodes-total") for f in autoscaler.flags(pool, "k", 1))


def test_broken_autoscaling_caps_the_cluster_at_its_start():
    broken = SCENARIOS["broken-autoscaling"].autoscaler
    assert broken is not None
    assert f"--max-nodes-total={4 + broken.min_size}" in autoscaler.flags(broken, "k", 1)


def test_ca_status_gist():
    text = yaml.safe_dump(
        {
            "autoscalerStatus": "Running",
            "clusterWide": {"health": {"status": "Healthy"}},
            "nodeGroups": [{"name": "g", "health": {"minSize": 1, "maxSize": 2, "status": "Healthy"}}],
        }
    )
    assert autoscaling.ca_status(text) == {
        "autoscalerStatus": "Running",
        "health": "Healthy",
        "nodeGroups": [{"name": "g", "minSize": 1, "maxSize": 2, "health": "Healthy"}],
    }
    assert (
        autoscaling.ca_status("Cluster-autoscaler status at 2020: Healthy")
        == "Cluster-autoscaler status at 2020: Healthy"
    )


def test_local_karpenter_objects():
    pool = SCENARIOS["karpenter"].karpenter
    assert pool is not None and pool.label == SCENARIOS["autoscaling"].autoscaler.label
    (kind,) = karpenter.instance_types(pool)
    assert kind["name"] == "kaic-sim-1gpu" and kind["resources"]["example.com/gpu"] == "1"
    assert kind["resources"]["cpu"] == topology.NODE_RESOURCES["cpu"] == "96"
    keys = {r["key"] for r in kind["offerings"][0]["requirements"]}
    assert keys == {"karpenter.sh/capacity-type", "topology.kubernetes.io/zone"}, "kwok reads no other key"
    body = karpenter.node_pool(pool)
    template = body["spec"]["template"]
    assert template["metadata"]["labels"][topology.POOL_LABEL] == topology.AUTOSCALED_POOL
    assert template["spec"]["nodeClassRef"]["name"] == karpenter.node_class()["metadata"]["name"]
    assert template["spec"]["requirements"] == [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [kind["name"]]}
    ]
    assert body["spec"]["limits"] == {"nodes": "2"}
    assert body["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert "--disable-leader-election" in karpenter.flags(1, 2, "types.json")


def test_broken_karpenter_limits_cpu_below_its_only_instance_type():
    broken = SCENARIOS["broken-karpenter"].karpenter
    assert broken is not None
    limit = karpenter.node_pool(broken)["spec"]["limits"]["cpu"]
    (kind,) = karpenter.instance_types(broken)
    assert 0 < int(limit) < int(kind["resources"]["cpu"])


def test_only_the_karpenter_scenarios_and_the_reference_run_karpenter():
    running = {name for name, scenario in SCENARIOS.items() if karpenter.BINARY in components(scenario)}
    assert running == {"reference", "karpenter", "broken-karpenter"}
    assert all(SCENARIOS[name].scales_nodes for name in running)
