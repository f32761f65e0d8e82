"""Scheduling and orchestration: gang scheduling, cluster autoscaling, pod autoscaling."""

from kaic.facts import crds_in, require
from kaic.probe import probe

GANG_GROUPS = ("kueue.x-k8s.io", "scheduling.volcano.sh", "scheduling.x-k8s.io", "scheduling.run.ai")


@probe("gang_scheduling", "discovery", test="TestKaicDiscovery/GangScheduling", kind="discovery")
def test_gang_scheduling_discovery(facts, evidence):
    """Gang-scheduling solutions: Kueue, Volcano, coscheduling, KAI CRDs, and the native Workload API."""
    require(facts, "crds", "apiGroups")
    evidence.add("fact", "gangCrds", crds_in(facts, *GANG_GROUPS))
    evidence.add("fact", "nativeSchedulingVersions", facts["apiGroups"].get("scheduling.k8s.io", {}))


@probe("cluster_autoscaling", "discovery", test="TestKaicDiscovery/ClusterAutoscaling", kind="discovery")
def test_cluster_autoscaling_discovery(facts, evidence):
    """Node autoscalers known by their APIs: Karpenter, Cluster API, ProvisioningRequest."""
    require(facts, "crds")
    evidence.add(
        "fact",
        "autoscalerCrds",
        crds_in(facts, "karpenter.sh", "cluster.x-k8s.io", "autoscaling.x-k8s.io"),
    )


@probe("pod_autoscaling", "discovery", test="TestKaicDiscovery/PodAutoscaling", kind="discovery")
def test_pod_autoscaling_discovery(facts, evidence):
    """Metrics APIs an HPA can scale on (resource, custom, external) and whether each is Available."""
    require(facts, "apiServices")
    evidence.add(
        "fact",
        "metricsApiServices",
        [s for s in facts["apiServices"] if "metrics.k8s.io" in s["name"]],
    )
