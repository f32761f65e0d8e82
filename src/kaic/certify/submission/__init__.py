"""CNCF Kubernetes AI Conformance submissions: `kaic submission create | lint`.

A submission is the folder `vX.Y/<dir>/` of cncf/k8s-ai-conformance: the vendor's filled copy of the official
checklist (PRODUCT.yaml) plus evidence files. kaic keeps no copy of the checklists; it knows their digests.
"""


class SubmissionError(ValueError):
    """A run, checklist, product file or folder that cannot be used; the message names it and says what would
    be valid (the CLI shows it as bad input, exit 2)."""
