"""AI operators: a robust CRD controller with a working admission webhook."""

from kaic.facts import crds_in, require
from kaic.probe import probe

OPERATOR_GROUPS = (
    "trainer.kubeflow.org",
    "kubeflow.org",
    "ray.io",
    "serving.kserve.io",
    "nvidia.com",
    "apps.nvidia.com",
    "slinky.slurm.net",
)


@probe("robust_controller", "discovery", test="TestKaicDiscovery/RobustController", kind="discovery")
def test_robust_controller_discovery(facts, evidence):
    """AI operators known by their CRDs (Kubeflow Trainer, KubeRay, KServe, Dynamo, NIM, Slinky)."""
    require(facts, "crds")
    evidence.add("fact", "operatorCrds", crds_in(facts, *OPERATOR_GROUPS))
