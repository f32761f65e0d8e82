"""kaic: the Kubernetes AI Conformance CLI."""

__version__ = "0.1.0"
