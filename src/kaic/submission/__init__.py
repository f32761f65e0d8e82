"""CNCF Kubernetes AI Conformance submissions: `kaic submission create | lint`.

A submission is the folder `vX.Y/<dir>/` of cncf/k8s-ai-conformance: the vendor's filled copy of the official
checklist (PRODUCT.yaml) plus evidence files. kaic keeps no copy of the checklists; it knows their digests.
"""

from __future__ import annotations

import click

from kaic.outcomes import ExitCode


class InputError(click.ClickException):
    """Input kaic cannot work from (a missing file or field, an unknown template): exit 2, nothing judged."""

    exit_code = ExitCode.USAGE
