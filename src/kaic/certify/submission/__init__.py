"""CNCF Kubernetes AI Conformance submissions: `kaic submission create | lint`.

A submission is the folder `vX.Y/<dir>/` of cncf/k8s-ai-conformance: the vendor's filled copy of the official
checklist (PRODUCT.yaml) plus evidence files. kaic keeps no copy of the checklists; it knows their digests.
"""

from kaic.cli.errors import InputError

__all__ = ["InputError"]
