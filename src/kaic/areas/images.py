"""The one map of every image a probe runs, with overrides for air-gapped clusters.

Probes name images by key (`@probe(images=(...))`, `kaic.areas.images.DEFAULTS`); a run resolves each key
once: an explicit `--image KEY=REF` wins, otherwise `--image-mirror` replaces the default's registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kaic import __version__
from kaic.settings import Settings


@dataclass(frozen=True)
class Image:
    ref: str
    purpose: str


DEFAULTS: dict[str, Image] = {
    "ubuntu": Image("docker.io/library/ubuntu:22.04", "accelerator identity script (as the upstream suite)"),
    "busybox": Image("docker.io/library/busybox:1.36.1", "small shell workloads"),
    "pause": Image("registry.k8s.io/pause:3.10", "placeholder pods that only need to be scheduled"),
    "agnhost": Image("registry.k8s.io/e2e-test-images/agnhost:2.53", "HTTP backends and network checks"),
    "python": Image("docker.io/library/python:3.13-alpine", "metric-exposing sample services"),
    # Tags unverified against a running Inference Extension (none can be built here).
    "inference-sim": Image(
        "ghcr.io/llm-d/llm-d-inference-sim:v0.7.1", "model servers behind the probe's InferencePool"
    ),
    "inference-epp": Image(
        "registry.k8s.io/gateway-api-inference-extension/epp:v1.2.1", "the InferencePool's endpoint picker"
    ),
    # The tag is from KubeRay's samples (unverified against a running KubeRay): its head must start Ray.
    "ray": Image("docker.io/rayproject/ray:2.46.0", "KubeRay head of the operator probe's RayCluster"),
    # NVIDIA's CUDA sample with nbody (tag unverified: no GPU Kubernetes node was available to kaic's tests).
    "cuda-sample": Image(
        "nvcr.io/nvidia/k8s/cuda-sample:nbody-cuda11.7.1", "load on one GPU for accelerator_metrics"
    ),
    # Published nowhere: `make image` builds it (docs/in-cluster.md); push it to a registry the cluster pulls
    # from and name it with --runner-image, or import it into the nodes' containerd.
    "runner": Image(f"kaic.local/kaic-runner:{__version__}", "kaic itself, for `kaic run --in-cluster`"),
}


class ImageError(ValueError):
    """An override names a key kaic does not know, or is not KEY=REF."""


def registry_split(ref: str) -> tuple[str, str]:
    """(registry, repository:tag) of a fully qualified reference."""
    registry, _, rest = ref.partition("/")
    return registry, rest


def resolve(overrides: Mapping[str, str] | None = None, mirror: str | None = None) -> dict[str, str]:
    """Every key's image for this run: overrides first, then the mirror prefix, then the default."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ImageError(f"unknown image key(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}")
    resolved = {}
    for key, image in DEFAULTS.items():
        if key in overrides:
            resolved[key] = overrides[key]
        elif mirror:
            resolved[key] = f"{mirror.rstrip('/')}/{registry_split(image.ref)[1]}"
        else:
            resolved[key] = image.ref
    return resolved


def for_run(settings: Settings) -> dict[str, str]:
    """The image map of a run (its --image overrides and --image-mirror)."""
    return resolve(settings.images, settings.image_mirror)
