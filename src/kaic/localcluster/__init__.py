"""kaic's local reference AI cluster: upstream Kubernetes components with simulated GPU nodes."""
