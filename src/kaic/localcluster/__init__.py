"""kaic's local reference AI cluster: upstream Kubernetes components with simulated GPU nodes."""

from pathlib import Path

# Here rather than in the launcher so `kaic --help` can show them without loading the kubernetes client.
ENV_STATE_DIR = "KAIC_CLUSTER_DIR"
DEFAULT_STATE_DIR = Path(".kaic/cluster")
