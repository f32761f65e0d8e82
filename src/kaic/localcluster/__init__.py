"""kaic's local reference AI cluster: upstream Kubernetes components with simulated GPU nodes."""

from pathlib import Path

# Here rather than in the launcher and the scenarios so `kaic --help` can show them without loading the
# kubernetes client or the scenarios' manifests.
ENV_STATE_DIR = "KAIC_CLUSTER_DIR"
DEFAULT_STATE_DIR = Path(".kaic/cluster")
DEFAULT_SCENARIO = "reference"  # `kaic cluster up`, one of kaic.localcluster.scenarios.SCENARIOS
